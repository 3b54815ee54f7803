"""What a generation request may ask for: the rules `core.sampling.generate`, the CLI and the
studio share, so each refuses (or warns about) the same inputs with the same words.

Light on purpose (numpy only, no torch): the studio checks a request while the user types.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from core.errors import UserError

SEED_MAX = 2**31 - 1
"""Seeds are whole numbers 0..2^31-1 (the range a browser's integer box and every RNG we seed accept)."""
MIN_SPACING_PER_CUTOFF = 2.0
"""Smallest cell plane spacing, in units of the model's neighbour cutoff. Below 2 x cutoff an atom
meets two images of one neighbour (or its own image) within the cutoff, which no training cell
showed; the generated structure would be an artefact of the tiny box."""


def check_seed(seed) -> int:
    """The seed as an int; ``UserError`` unless it is a whole number from 0 to ``SEED_MAX``."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        raise UserError(f"seed must be a whole number from 0 to {SEED_MAX}, got {seed!r}")
    return int(seed)


def as_cell(cell) -> np.ndarray:
    """Cell from an edge length (cubic), three lengths (orthorhombic) or a 3x3 matrix, in Å.

    Lengths must be positive; a matrix must be right-handed (positive volume) and hold at least 1 Å^3.
    """
    try:
        arr = np.asarray(cell, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"cell must be a length in Å, three lengths or a 3x3 matrix, got {cell!r}") from None
    if arr.size in (1, 3) and arr.ndim <= 1:
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            shown = ", ".join(f"{x:g}" for x in arr.reshape(-1))
            raise UserError(f"cell lengths must be positive numbers of Å, got {shown}")
        arr = np.eye(3) * float(arr.reshape(())) if arr.size == 1 else np.diag(arr)
    elif arr.shape != (3, 3):
        raise UserError(f"cell must be a length in Å, three lengths or a 3x3 matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.linalg.det(arr) < 1.0:
        raise UserError("cell must be finite and right-handed with a volume of at least 1 Å^3")
    return arr


def plane_spacings(cell) -> np.ndarray:
    """Distances (Å) between neighbouring lattice planes of the cell, one per cell face: V / |a_j x a_k|."""
    c = as_cell(cell)
    volume = abs(np.linalg.det(c))
    return np.array([volume / np.linalg.norm(np.cross(c[(i + 1) % 3], c[(i + 2) % 3])) for i in range(3)])


def min_cell_edge(cutoff: float) -> float:
    """Smallest cubic cell edge (Å) a model with this neighbour cutoff (Å) accepts."""
    return MIN_SPACING_PER_CUTOFF * float(cutoff)


def check_cell(cell, cutoff: float | None) -> np.ndarray:
    """The 3x3 cell, refused (``UserError``) when a plane spacing is below 2 x the model's cutoff (Å)."""
    c = as_cell(cell)
    if cutoff is not None and math.isfinite(cutoff) and cutoff > 0:
        spacing = float(plane_spacings(c).min())
        if spacing < min_cell_edge(cutoff) - 1e-9:
            raise UserError(f"cell too small for this model: a plane spacing of {spacing:.3g} Å is below "
                            f"{min_cell_edge(cutoff):g} Å (twice its {cutoff:g} Å neighbour cutoff); "
                            "use a larger cell")
    return c


def check_batch_size(batch_size) -> int | None:
    """None (as many as fit) or a positive whole number of structures per batch."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UserError(f"batch size must be a positive whole number of structures, got {batch_size!r}")
    return int(batch_size)


def extrapolation_warnings(ranges: Iterable, targets: Mapping[str, float]) -> list[str]:
    """One line per target outside its training range (``core.catalog.PropertyRange``-like objects
    with name, low, high): allowed, but the model extrapolates there."""
    out = []
    by_name = {r.name: r for r in ranges}
    for name, value in targets.items():
        r = by_name.get(name)
        if r is None or not (math.isfinite(r.low) and math.isfinite(r.high)):
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and not r.low <= value <= r.high:
            out.append(f"{name} = {value:.4g} is outside the training data ({r.low:.4g} – {r.high:.4g}): "
                       "extrapolation, expect larger errors")
    return out
