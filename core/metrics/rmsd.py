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
