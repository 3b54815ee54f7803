"""Potential energy per atom with the classical potential the training data was made with.

A single point (no relaxation): how far a generated structure sits above the training glasses
on the same energy surface (Stillinger–Weber for a-Si, Tersoff Si–O for a-SiO2; core/potentials).
"""

from __future__ import annotations

from ase import Atoms
from ase.calculators.calculator import Calculator

from core.properties.elastic import _prepare


def energy_per_atom(atoms: Atoms, calculator: Calculator | None = None) -> float:
    """Potential energy in eV/atom of the real atoms (ghosts removed), by default with the
    composition's potential (`core.properties.default_calculator`)."""
    real = _prepare(atoms, calculator)
    return float(real.get_potential_energy()) / len(real)


def energies_per_atom(structures, calculator: Calculator | None = None) -> list[float]:
    """`energy_per_atom` of each structure, sharing one calculator (one LAMMPS instance for the set,
    chosen from the first structure's composition unless given)."""
    structures = list(structures)
    if not structures:
        return []
    if calculator is None:
        from core.properties.elastic import default_calculator

        calculator = default_calculator(structures[0][structures[0].numbers != 0])
    return [energy_per_atom(atoms, calculator) for atoms in structures]
