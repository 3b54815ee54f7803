"""Coordination numbers and bond lengths between two species (ghosts excluded).

The RDF RMSD of a-SiO2 saturates once atoms are misplaced by more than ~0.15 Å (docs/model.md,
"Reading the a-SiO2 RDF RMSD"); counting neighbours does not: "how many Si have exactly 4 O within 2 Å"
and "how wide is the Si–O bond-length distribution" keep separating models whose RDF RMSDs tie.
"""

from __future__ import annotations

import numpy as np
from ase.data import atomic_numbers

from core.metrics.structures import MetricInputError, pair_batches, real_atoms


def _number(symbol: str) -> int:
    if symbol not in atomic_numbers or atomic_numbers[symbol] == 0:
        raise MetricInputError(f"unknown element symbol {symbol!r}")
    return atomic_numbers[symbol]


def neighbour_pairs(structures, centre: str, neighbour: str, r_cut: float):
    """(coordination number of every ``centre`` atom, all centre–neighbour distances in Å).

    A neighbour is an atom of element ``neighbour`` (periodic images included) closer than
    ``r_cut`` Å. Counts are concatenated over structures; with centre == neighbour an atom
    is not its own neighbour and each pair's distance appears twice, once per end.
    """
    if not (np.isfinite(r_cut) and r_cut > 0):
        raise MetricInputError(f"r_cut must be a positive distance in Å, got {r_cut!r}")
    zc, zn = _number(centre), _number(neighbour)
    atoms_list = real_atoms(structures)
    numbers = np.concatenate([a.numbers for a in atoms_list])
    counts, lengths = [], []
    offset = 0
    for _, batch in pair_batches(atoms_list, r_cut, full_list=True, vectors=False):
        n = int(batch.n_atoms.sum())
        z = numbers[offset:offset + n]
        keep = (z[batch.centre] == zc) & (z[batch.partner] == zn)
        per_atom = np.bincount(batch.centre[keep], minlength=n)
        counts.append(per_atom[z == zc])
        lengths.append(batch.distances[keep])
        offset += n
    return np.concatenate(counts).astype(np.int64), np.concatenate(lengths)


def coordination(structures, centre: str, neighbour: str, r_cut: float, max_count: int = 8):
    """Fraction of ``centre`` atoms with 0, 1, ..., max_count ``neighbour`` atoms within r_cut Å
    (the last entry counts max_count and more); sums to 1, all NaN when there is no centre atom."""
    counts, _ = neighbour_pairs(structures, centre, neighbour, r_cut)
    if len(counts) == 0:
        return np.full(max_count + 1, np.nan)
    return np.bincount(np.minimum(counts, max_count), minlength=max_count + 1) / len(counts)
