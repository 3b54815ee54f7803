"""Material properties of a structure (ASE Atoms in, numbers out), as the paper computes
them (paper App. B.6). Ghost atoms (atomic number 0) are excluded everywhere."""

from core.properties.composition import li_concentration
from core.properties.energy import energies_per_atom, energy_per_atom
from core.properties.elastic import (
    bmp_shrm_calculator,
    default_calculator,
    elastic_constants,
    is_meg,
    meg_elastic_moduli,
    shear_modulus,
    stillinger_weber_si_calculator,
    tersoff_sio_calculator,
    young_modulus,
    young_modulus_from,
)
from core.properties.rings import find_rings, ring_size_distribution, ring_size_mean, ring_sizes
from core.properties.registry import PROPERTIES, measure_property

__all__ = [
    "PROPERTIES",
    "bmp_shrm_calculator",
    "default_calculator",
    "elastic_constants",
    "energies_per_atom",
    "energy_per_atom",
    "find_rings",
    "is_meg",
    "li_concentration",
    "meg_elastic_moduli",
    "measure_property",
    "ring_size_distribution",
    "ring_size_mean",
    "ring_sizes",
    "shear_modulus",
    "stillinger_weber_si_calculator",
    "tersoff_sio_calculator",
    "young_modulus",
    "young_modulus_from",
]
