"""Set-level comparison of structure curves: average over structures, then RMSD over bins."""

from __future__ import annotations

import numpy as np

from core.metrics.adf import adf
from core.metrics.rdf import rdf
from core.metrics.structures import MetricInputError


def averaged(curves) -> np.ndarray:
    """Mean curve over structures: (n_structures, n_bins) -> (n_bins,); a 1-D curve is returned as is."""
    curves = np.asarray(curves, dtype=float)
    if curves.ndim == 1:
        return curves
    if curves.ndim != 2 or curves.shape[0] == 0:
        raise MetricInputError(f"expected curves of shape (n_structures, n_bins), got {curves.shape}")
    return curves.mean(axis=0)


def curve_rmsd(a, b) -> float:
    """sqrt(mean over bins of (ā - b̄)²), where ā, b̄ are each set averaged over its structures (paper App. B.5)."""
    a, b = averaged(a), averaged(b)
    if a.shape != b.shape:
        raise MetricInputError(f"curves have different numbers of bins: {a.shape[0]} vs {b.shape[0]}")
    return float(np.sqrt(np.mean((a - b) ** 2)))


def curve_rmsd_split(a, b, r, bounds) -> dict[str, float]:
    """Where a set-level curve RMSD comes from: the share of the squared error in each distance band.

    ``bounds`` (ascending, Å) cut the bins at their centres ``r`` into ``len(bounds) + 1`` bands;
    returns {"< b0": share, "b0–b1": share, ..., "> bn": share} with shares summing to 1 (all 0
    when the curves agree), plus "without < b0": the RMSD the curves would have if every bin
    below the first bound matched. Used to tell close pairs (below the first shell) from a
    blurred first shell when a one-step RDF misses.
    """
    a, b = averaged(a), averaged(b)
    r = np.asarray(r, dtype=float)
    if not (a.shape == b.shape == r.shape):
        raise MetricInputError(f"curves and bin centres differ in length: {a.shape[0]}, {b.shape[0]}, {r.shape[0]}")
    bounds = [float(x) for x in bounds]
    if not bounds or any(hi <= lo for lo, hi in zip(bounds, bounds[1:])):
        raise MetricInputError(f"split bounds must be ascending and non-empty, got {bounds}")
    squared = (a - b) ** 2
    band = np.searchsorted(bounds, r, side="right")  # 0 below bounds[0], len(bounds) beyond the last
    total = float(squared.sum())
    names = ([f"< {bounds[0]:g}"] + [f"{lo:g}–{hi:g}" for lo, hi in zip(bounds, bounds[1:])]
             + [f"> {bounds[-1]:g}"])
    split = {name: (float(squared[band == k].sum()) / total if total > 0 else 0.0)
             for k, name in enumerate(names)}
    split[f"without < {bounds[0]:g}"] = float(np.sqrt(squared[band > 0].sum() / len(squared)))
    return split


def structure_rmsd(generated, reference, r_max: float = 5.0, rdf_bins: int = 100,
                   adf_cutoff: float = 3.0, adf_bins: int = 180) -> dict[str, float]:
    """RDF and ADF RMSD between two sets of structures (paper B.5): {"rdf": .., "adf": ..}.

    RDF in units of g(r) (dimensionless), ADF in probability per degree.
    """
    _, rdf_gen = rdf(generated, r_max, rdf_bins)
    _, rdf_ref = rdf(reference, r_max, rdf_bins)
    _, adf_gen = adf(generated, adf_cutoff, adf_bins)
    _, adf_ref = adf(reference, adf_cutoff, adf_bins)
    return {"rdf": curve_rmsd(rdf_gen, rdf_ref), "adf": curve_rmsd(adf_gen, adf_ref)}
