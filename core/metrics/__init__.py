"""Structural and inverse-design metrics (paper Sec. 5.3, App. B.5 and B.7).

All structure metrics take an `ase.Atoms` or a sequence of them, drop ghost atoms
(atomic number 0) and return one curve per structure, computed in batches: one vesin
neighbour list per structure, then a single vectorised histogram over all of them.
"""

from core.metrics.adf import adf
from core.metrics.bonds import coordination, neighbour_pairs
from core.metrics.checks import (cation_share_columns, cation_shares, charge_per_oxygen, close_pairs, composition_ratios,
                                 composition_values, network_checks, network_columns, structure_checks)
from core.metrics.inverse import inverse_errors, mae, mape, rmse, slope
from core.metrics.rdf import rdf
from core.metrics.rmsd import averaged, curve_rmsd, curve_rmsd_split, structure_rmsd
from core.metrics.structures import MetricInputError, real_atoms

__all__ = [
    "MetricInputError",
    "adf",
    "averaged",
    "cation_share_columns",
    "cation_shares",
    "charge_per_oxygen",
    "close_pairs",
    "composition_ratios",
    "composition_values",
    "coordination",
    "curve_rmsd",
    "curve_rmsd_split",
    "inverse_errors",
    "mae",
    "mape",
    "neighbour_pairs",
    "network_checks",
    "network_columns",
    "rdf",
    "real_atoms",
    "rmse",
    "slope",
    "structure_checks",
    "structure_rmsd",
]
