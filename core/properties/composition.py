"""Composition properties."""

from __future__ import annotations

from ase import Atoms


def li_concentration(atoms: Atoms) -> float:
    """Li molar concentration 100 N_Li / N_atoms in % (as the paper's tables), ghosts (Z = 0) excluded."""
    z = atoms.numbers[atoms.numbers != 0]
    if len(z) == 0:
        raise ValueError("structure has no real (non-ghost) atoms")
    return float(100.0 * (z == 3).sum() / len(z))
