"""Input handling shared by the structure metrics: accept Atoms, drop ghosts, batch pairs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import vesin
from ase import Atoms

from core.errors import UserError
from core.material import GHOST

CHUNK_ATOMS = 65_536  # atoms per batched histogram (256 structures of 256 atoms); bounds peak memory


class MetricInputError(UserError, ValueError):
    """Structures or values a metric cannot use; a ValueError for library callers, one line in the CLI."""


def real_atoms(structures: Atoms | Iterable) -> list[Atoms]:
    """Return the structures as a list of fully periodic `ase.Atoms` without ghost atoms.

    Accepts one Atoms, an iterable of Atoms, or objects with a `to_atoms()` method
    (e.g. `core.material.MaterialSample`). Raises MetricInputError (a ValueError) for anything a
    periodic metric cannot use: no cell volume, non-periodic directions, NaN positions,
    no real atoms.
    """
    if isinstance(structures, Atoms) or hasattr(structures, "to_atoms"):
        structures = [structures]
    out = []
    for k, item in enumerate(structures):
        atoms = item.to_atoms() if hasattr(item, "to_atoms") else item
        if not isinstance(atoms, Atoms):
            raise MetricInputError(f"structure {k}: expected ase.Atoms, got {type(atoms).__name__}")
        if not atoms.pbc.all():
            raise MetricInputError(f"structure {k}: metrics need periodicity in all three directions")
        if abs(atoms.cell.volume) < 1e-10:
            raise MetricInputError(f"structure {k}: cell has zero volume")
        atoms = atoms[atoms.numbers != GHOST]
        if len(atoms) == 0:
            raise MetricInputError(f"structure {k}: no real (non-ghost) atoms")
        if not np.isfinite(atoms.positions).all():
            raise MetricInputError(f"structure {k}: positions contain NaN or inf")
        out.append(atoms)
    if not out:
        raise MetricInputError("no structures given")
    return out


@dataclass
class PairBatch:
    """Neighbour pairs of several structures, concatenated.

    `structure[e]` is the structure of pair e; `centre[e]` and `partner[e]` are the global
    indices of atoms i and j (atoms numbered consecutively over the batch); `vectors` are x_j + shift - x_i in Å;
    `distances` their norms in Å. With `full_list` every pair appears as i-j and j-i,
    sorted by centre; otherwise once.
    """

    structure: np.ndarray
    centre: np.ndarray
    partner: np.ndarray
    vectors: np.ndarray | None
    distances: np.ndarray
    n_atoms: np.ndarray  # atoms per structure in this batch


def _chunks(atoms_list: list[Atoms]) -> Iterator[tuple[int, list[Atoms]]]:
    """Consecutive runs of structures holding about CHUNK_ATOMS atoms (at least one structure each)."""
    start, n = 0, 0
    for k, atoms in enumerate(atoms_list):
        n += len(atoms)
        if n >= CHUNK_ATOMS:
            yield start, atoms_list[start:k + 1]
            start, n = k + 1, 0
    if start < len(atoms_list):
        yield start, atoms_list[start:]


def pair_batches(atoms_list: list[Atoms], cutoff: float, full_list: bool,
                 vectors: bool) -> Iterator[tuple[int, PairBatch]]:
    """Yield (first structure index, PairBatch) for chunks of `atoms_list`, pairs with d < cutoff (Å)."""
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=full_list, sorted=full_list)
    quantities = "ijdD" if vectors else "ijd"
    for start, block in _chunks(atoms_list):
        n_atoms = np.array([len(a) for a in block])
        atom_offset = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
        parts = [nl.compute(a.positions, a.cell.array, True, quantities) for a in block]
        counts = np.array([len(p[0]) for p in parts])
        structure = np.repeat(np.arange(len(block)), counts)
        shift = np.repeat(atom_offset, counts)
        centre = np.concatenate([p[0].astype(np.int64) for p in parts]) + shift
        partner = np.concatenate([p[1].astype(np.int64) for p in parts]) + shift
        distances = np.concatenate([p[2] for p in parts])
        vecs = np.concatenate([p[3] for p in parts]).reshape(-1, 3) if vectors else None
        yield start, PairBatch(structure, centre, partner, vecs, distances, n_atoms)
