"""Periodic material samples with ghost atoms, their extxyz io, and batching for the model.

A sample is M = (C, X, E) plus properties (paper Sec. 3, Definitions 1 and 2): cell C (3x3 Å,
rows are lattice vectors, periodic in all three directions), Cartesian positions X (n x 3 Å)
and atomic numbers. Ghost atoms carry atomic number 0 (``GHOST``): the model pads every sample with
them up to floor(rho_max * V) atoms so it can change density by turning atoms into ghosts
and back; they are stripped after generation and never reach a metric or a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from core.errors import StructureFileError, UserError

GHOST = 0
"""Atomic number used for ghost atoms (ASE's dummy element 'X')."""


@dataclass
class MaterialSample:
    """One periodic structure: cell (3,3) Å, positions (n,3) Å, atomic numbers (n,), 0 = ghost.

    ``properties`` maps a property name to its value; a missing property is absent or NaN.
    """

    cell: np.ndarray
    positions: np.ndarray
    numbers: np.ndarray
    properties: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        self.cell = np.asarray(self.cell, dtype=np.float64).reshape(3, 3)
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        if len(self.numbers) != len(self.positions):
            raise ValueError(f"{len(self.positions)} positions but {len(self.numbers)} atomic numbers")

    @classmethod
    def from_atoms(cls, atoms: Atoms, property_names=()) -> "MaterialSample":
        """Sample from ``ase.Atoms``; the named properties are read from ``atoms.info`` (NaN if absent)."""
        props = {name: float(atoms.info.get(name, math.nan)) for name in property_names}
        return cls(atoms.cell.array.copy(), atoms.positions.copy(), atoms.numbers.copy(), props)

    def to_atoms(self, strip_ghosts: bool = True) -> Atoms:
        """``ase.Atoms`` (pbc in all directions) with properties in ``info``; ghosts removed by default."""
        sample = self.strip_ghosts() if strip_ghosts else self
        atoms = Atoms(numbers=sample.numbers, positions=sample.positions, cell=sample.cell, pbc=True)
        atoms.info.update({k: v for k, v in sample.properties.items() if not math.isnan(v)})
        return atoms

    @property
    def volume(self) -> float:
        """Cell volume in Å^3."""
        return abs(float(np.linalg.det(self.cell)))

    @property
    def n_real(self) -> int:
        """Number of non-ghost atoms."""
        return int(np.count_nonzero(self.numbers != GHOST))

    @property
    def density(self) -> float:
        """Number density of real atoms in atoms/Å^3."""
        return self.n_real / self.volume

    def strip_ghosts(self) -> "MaterialSample":
        """The same sample without its ghost atoms."""
        keep = self.numbers != GHOST
        return MaterialSample(self.cell, self.positions[keep], self.numbers[keep], dict(self.properties))

    def pad_ghosts(self, rho_max: float, rng: np.random.Generator) -> "MaterialSample":
        """Add ghosts at uniform random positions until the sample holds floor(rho_max * V) atoms.

        Existing ghosts are replaced. Raises ``UserError`` when the real atoms alone exceed
        that count (rho_max is below the sample's density).
        """
        real = self.strip_ghosts()
        n_total = ghost_count_total(rho_max, self.volume)
        n_ghost = n_total - real.n_real
        if n_ghost < 0:
            raise UserError(
                f"rho_max={rho_max} atoms/Å^3 allows {n_total} atoms in this {self.volume:.1f} Å^3 cell, "
                f"but the structure has {real.n_real} real atoms (density {real.density:.4f} atoms/Å^3)"
            )
        frac = rng.random((n_ghost, 3))
        positions = np.concatenate([real.positions, frac @ self.cell])
        numbers = np.concatenate([real.numbers, np.full(n_ghost, GHOST, dtype=np.int64)])
        return MaterialSample(self.cell, positions, numbers, dict(real.properties))


def ghost_count_total(rho_max: float, volume: float) -> int:
    """Total atom count floor(rho_max * V) of a padded sample (rho_max in atoms/Å^3, V in Å^3)."""
    if not (math.isfinite(rho_max) and rho_max > 0):
        raise UserError(f"rho_max must be a positive number of atoms/Å^3, got {rho_max}")
    return int(math.floor(rho_max * volume + 1e-9))


# ----------------------------------------------------------------------------- file io


def validate_structure(atoms: Atoms, where: str = "structure") -> None:
    """Raise ``UserError`` unless ``atoms`` is a usable periodic structure.

    Checks: at least one atom, periodic in all directions, a non-degenerate cell, known
    elements (atomic numbers 1..118, or 0 for ghosts), finite positions.
    """
    if len(atoms) == 0:
        raise UserError(f"{where} has no atoms")
    if not np.all(atoms.pbc):
        raise UserError(f"{where} is not periodic in all three directions (pbc={atoms.pbc.tolist()}); "
                        "amorphous samples need a periodic cell")
    if abs(atoms.cell.volume) < 1e-6 or not np.all(np.isfinite(atoms.cell.array)):
        raise UserError(f"{where} has no cell (zero or undefined volume)")
    numbers = atoms.numbers
    bad = numbers[(numbers < 0) | (numbers >= len(chemical_symbols))]
    if len(bad):
        raise UserError(f"{where} has unknown element(s) with atomic number {sorted(set(bad.tolist()))}")
    if not np.all(np.isfinite(atoms.positions)):
        raise UserError(f"{where} has NaN or infinite positions")


def read_structures(path) -> list[Atoms]:
    """Read every frame of a structure file (extxyz or any ase.io format, .gz allowed), validated.

    Raises ``StructureFileError`` (one line naming the file and problem) for a missing,
    empty or malformed file and for frames without a periodic cell, with unknown elements
    or with NaN positions.
    """
    import ase.io

    path = Path(path)
    if not path.exists():
        raise StructureFileError(path, "file not found")
    if path.is_dir():
        raise StructureFileError(path, "is a directory, expected a structure file")
    if path.stat().st_size == 0:
        raise StructureFileError(path, "file is empty")
    try:
        frames = ase.io.read(str(path), index=":")
    except KeyError as exc:  # ase raises KeyError for unknown element symbols
        raise StructureFileError(path, f"unknown element {exc.args[0]!r}") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a malformed file to the user
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StructureFileError(path, f"cannot parse as a structure file ({message})") from None
    if not frames:
        raise StructureFileError(path, "contains no structures")
    for k, atoms in enumerate(frames):
        try:
            validate_structure(atoms, f"frame {k}")
        except UserError as exc:
            raise StructureFileError(path, str(exc)) from None
    return frames


def structure_format(path, n_frames: int = 1) -> str:
    """The ase.io format that writes ``n_frames`` structures to ``path``, from the file name.

    ``UserError`` unless ase can both write that format and read it back (so .png, an image
    of the atoms, is refused) and, for several structures, store more than one in a file
    (POSCAR holds one). ``.xyz`` and ``.extxyz`` are extended XYZ, which keeps the
    properties in ``info``.
    """
    from ase.io.formats import UnknownFileTypeError, filetype, ioformats

    name = Path(path).name
    try:
        fmt = ioformats[filetype(str(path), read=False, guess=False)]
    except (UnknownFileTypeError, KeyError, ValueError):
        fmt = None
    if fmt is None or not (fmt.can_write and fmt.can_read):
        what = "" if fmt is None else f" ({fmt.description}, not a structure file)"
        raise UserError(f"{name}: cannot tell a structure format from this name{what}; "
                        "end it in .extxyz (or another format ase reads and writes, e.g. .cif, .traj)")
    if n_frames > 1 and fmt.single:
        raise UserError(f"{name}: the {fmt.name} format holds one structure, not {n_frames}; use .extxyz")
    return fmt.name


def check_writable(path, make_parents: bool = False) -> Path:
    """``path`` as a Path, after proving a file can be created there (``UserError`` otherwise).

    Refuses a directory and a place the user cannot write to (e.g. /proc); with
    ``make_parents`` missing folders are created first. Leaves no file behind.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; give a file name")
    existed = path.exists()
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise UserError(f"{path}: cannot write there ({exc.strerror or type(exc).__name__})") from None
    if not existed:
        path.unlink()
    return path


def write_structures(path, structures, format: str | None = None) -> None:
    """Write ``ase.Atoms`` (or ``MaterialSample``, ghosts stripped); the format follows the file
    name (``structure_format``) unless given. Extended XYZ keeps the properties in ``info``."""
    import ase.io

    frames = [s.to_atoms() if isinstance(s, MaterialSample) else s for s in structures]
    ase.io.write(str(path), frames, format=format or structure_format(path, len(frames)))


# ----------------------------------------------------------------------------- batching


def element_classes(numbers: np.ndarray, species) -> np.ndarray:
    """Map atomic numbers to class indices: 0 = ghost, k = species[k-1]."""
    lookup = {GHOST: 0, **{int(z): k + 1 for k, z in enumerate(species)}}
    try:
        return np.array([lookup[int(z)] for z in numbers], dtype=np.int64)
    except KeyError as exc:
        allowed = ", ".join(chemical_symbols[z] for z in species)
        raise UserError(f"element {chemical_symbols[exc.args[0]]} is not one this model knows ({allowed})") from None


def collate(samples, species, property_names=()):
    """Batch samples into a ``torch_geometric.data.Batch``.

    Fields: ``pos`` (N,3) float32 Å, ``cell`` (B,3,3) float32 Å, ``element`` (N,) long class
    index (0 = ghost, k = species[k-1]), ``batch`` (N,), ``y`` (B,P) float32 with NaN where a
    property is missing, ``natoms`` (B,).
    """
    import torch
    from torch_geometric.data import Batch, Data

    data = []
    for s in samples:
        y = [s.properties.get(name, math.nan) for name in property_names]
        data.append(Data(
            pos=torch.as_tensor(s.positions, dtype=torch.float32),
            cell=torch.as_tensor(s.cell, dtype=torch.float32).unsqueeze(0),
            element=torch.as_tensor(element_classes(s.numbers, species)),
            y=torch.tensor([y], dtype=torch.float32).reshape(1, len(property_names)),
            natoms=torch.tensor([len(s.numbers)]),
            num_nodes=len(s.numbers),
        ))
    return Batch.from_data_list(data)
