"""Conditioning properties by name: the function that measures each on a structure, in dataset units."""

from __future__ import annotations

from core.errors import UserError
from core.properties.elastic import shear_modulus
from core.properties.rings import ring_size_mean

PROPERTIES = {"shear_modulus": shear_modulus, "ring_size_mean": ring_size_mean}
"""Property name (as in the datasets and checkpoints) -> function(atoms) -> float: shear modulus in
GPa (LAMMPS, relaxed, seconds to minutes), mean Si–O ring size in Si atoms per ring (about a second)."""


def measure_property(name: str, atoms) -> float:
    """The named property of one structure; ``UserError`` for a name no function measures."""
    if name not in PROPERTIES:
        raise UserError(f"no function measures property {name!r}; known: {', '.join(PROPERTIES)}")
    return float(PROPERTIES[name](atoms))
