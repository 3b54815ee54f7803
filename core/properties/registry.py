"""Conditioning properties by name: the function that measures each on a structure, in dataset units."""

from __future__ import annotations

from core.errors import UserError
from core.properties.composition import li_concentration
from core.properties.elastic import shear_modulus, young_modulus
from core.properties.rings import ring_size_mean

PROPERTIES = {"shear_modulus": shear_modulus, "ring_size_mean": ring_size_mean,
              "youngs_modulus": young_modulus, "li_concentration": li_concentration}
"""Property name (as in the datasets and checkpoints) -> function(atoms) -> float: shear and Young's
modulus in GPa (LAMMPS, relaxed, seconds to minutes; MEG oxides by their BMP-shrm protocol), mean
Si–O ring size in Si atoms per ring (about a second), Li molar concentration in % (instant)."""

RELAXED = frozenset({"shear_modulus", "youngs_modulus"})
"""Properties measured on a relaxed structure: they take the relaxation's ``fmax`` (eV/Å) and
``steps`` (L-BFGS steps) as keyword options."""


def measure_property(name: str, atoms, **relax) -> float:
    """The named property of one structure; ``relax`` options (fmax, steps) reach the properties in
    ``RELAXED`` only. ``UserError`` for a name no function measures."""
    if name not in PROPERTIES:
        raise UserError(f"no function measures property {name!r}; known: {', '.join(PROPERTIES)}")
    return float(PROPERTIES[name](atoms, **(relax if name in RELAXED else {})))
