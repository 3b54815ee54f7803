"""Angular distribution function P(θ) of neighbour triplets j-i-k within a cutoff."""

from __future__ import annotations

import numpy as np

from core.metrics.structures import pair_batches, real_atoms


def _pairs_within_groups(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (a, b), a < b, of entries sharing a value of the sorted `group`."""
    n = len(group)
    counts = np.bincount(group)
    starts = np.cumsum(counts) - counts
    pos = np.arange(n) - starts[group]  # position of each entry inside its group
    n_later = counts[group] - 1 - pos  # partners after it in the same group
    a = np.repeat(np.arange(n), n_later)
    run_start = np.cumsum(n_later) - n_later
    b = a + 1 + (np.arange(len(a)) - np.repeat(run_start, n_later))
    return a, b


def adf(structures, r_cut: float = 3.0, n_bins: int = 180) -> tuple[np.ndarray, np.ndarray]:
    """Bond-angle distribution per structure, ghosts excluded.

    For every centre atom i, every unordered pair of its neighbours j, k (periodic images
    included) with d < r_cut (Å) contributes the angle θ_jik. Returns (bin centres in
    degrees, shape (n_bins,); P(θ), shape (n_structures, n_bins)), a probability density
    per degree: sum(P) · Δθ = 1 with Δθ = 180°/n_bins (so with 180 bins, sum(P) = 1).
    Bins are [kΔθ, (k+1)Δθ), the last one closed at 180°. A structure with no triplet
    gets an all-zero row.
    """
    atoms_list = real_atoms(structures)
    width = 180.0 / n_bins
    counts = np.zeros((len(atoms_list), n_bins))
    for start, batch in pair_batches(atoms_list, r_cut, full_list=True, vectors=True):
        a, b = _pairs_within_groups(batch.centre)
        cos = np.einsum("ij,ij->i", batch.vectors[a], batch.vectors[b])
        cos /= batch.distances[a] * batch.distances[b]
        theta = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        idx = np.minimum((theta / width).astype(np.int64), n_bins - 1)
        flat = batch.structure[a] * n_bins + idx
        block = np.bincount(flat, minlength=len(batch.n_atoms) * n_bins)
        counts[start:start + len(batch.n_atoms)] = block.reshape(-1, n_bins)
    total = counts.sum(axis=1, keepdims=True)
    p = np.divide(counts, total * width, out=np.zeros_like(counts), where=total > 0)
    edges = np.linspace(0.0, 180.0, n_bins + 1)
    return 0.5 * (edges[:-1] + edges[1:]), p
