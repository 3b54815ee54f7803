"""Elastic constants at 0 K by finite differences of the stress (paper App. B.6).

Recipe: variable-cell relaxation (quasi-Newton L-BFGS, fmax 0.05 eV/Å, at most 1500
steps), then for each Voigt strain component j a deformation +delta and -delta
(delta = 0.02; shear components are engineering strains, i.e. eps_ij = delta/2), a
fixed-cell relaxation of the positions, and C[:, j] = (sigma(+delta) - sigma(-delta)) / (2 delta)
(central differences). All moduli in GPa. Ghost atoms (atomic number 0) are removed first.

The default interactions are those that made the shipped data: Stillinger–Weber for pure
Si (the a-Si set), the Tersoff Si–O potential of Munetoh et al. (2007) for Si–O structures
and BMP-shrm (Bertani et al. 2021) for the oxide glasses of the MEG set (Si, P, Al, Li, Be,
K, Ca, Ti, Ba, Zn with O); any ASE calculator can be passed instead. MEG structures are
relaxed with FIRE (`meg_elastic_moduli`): the three-body term's hard cutoffs make the
energy surface discontinuous, where line-search methods stall; each relaxation stops after
500 steps (`MEG_STEPS`).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE, LBFGS
from ase.units import GPa

FMAX = 0.05  # eV/Å
MAX_STEPS = 1500
MEG_FMAX = 0.05  # eV/Å, the paper's tolerance; E moves by ~10 % down to 0.01 (docs/datasets.md)
MEG_STEPS = 500  # FIRE steps per relaxation: the time past 500 goes to relaxations held by an atom on a
# three-body cutoff, and moves E and G no more than recomputing them does (docs/datasets.md)
OPTIMIZERS = {"lbfgs": LBFGS, "fire": FIRE}
BMP_ELEMENTS = {"Si", "P", "Al", "Li", "Be", "K", "Ca", "Ti", "Ba", "Zn", "O"}
DELTA = 0.02
SHEAR = (3, 4, 5)  # Voigt indices yz, xz, xy


def tersoff_sio_calculator() -> Calculator:
    """Tersoff Si–O (Munetoh et al., Comput. Mater. Sci. 39, 334 (2007)) through LAMMPS."""
    from core.lammps import ase_calculator, pair_tersoff_sio

    return ase_calculator(pair_tersoff_sio(), ["Si", "O"])


def stillinger_weber_si_calculator() -> Calculator:
    """Stillinger–Weber Si (Stillinger & Weber, Phys. Rev. B 31, 5262 (1985)) through LAMMPS."""
    from core.lammps import ase_calculator, pair_sw_si

    return ase_calculator(pair_sw_si(), ["Si"])


def bmp_shrm_calculator() -> Calculator:
    """BMP-shrm oxide glasses (Bertani, Menziani, Pedone, Phys. Rev. Materials 5, 045602
    (2021)) through LAMMPS, with ionic charges."""
    from core.lammps import BMP_SPECIES, ase_calculator, pair_bmp_shrm

    return ase_calculator(pair_bmp_shrm(), BMP_SPECIES, atom_style="charge")


def is_meg(atoms: Atoms) -> bool:
    """True for an oxide glass of the MEG chemistry other than pure Si–O (those use Tersoff)."""
    symbols = set(atoms.get_chemical_symbols()) - {"X"}
    return "O" in symbols and bool(symbols - {"Si", "O"}) and symbols <= BMP_ELEMENTS


def default_calculator(atoms: Atoms) -> Calculator:
    """The potential of the shipped data for this composition: SW for pure Si, Tersoff Si–O
    for Si and O, BMP-shrm for other MEG oxides; ValueError for any other element."""
    symbols = set(atoms.get_chemical_symbols())
    if is_meg(atoms):
        return bmp_shrm_calculator()
    other = symbols - {"Si", "O"}
    if other:
        raise ValueError(
            f"the default potentials (Stillinger–Weber Si, Tersoff Si–O, BMP-shrm oxides of "
            f"{', '.join(sorted(BMP_ELEMENTS))}) have no parameters for {sorted(other - BMP_ELEMENTS) or sorted(other)}; "
            "pass a calculator for this chemistry"
        )
    return stillinger_weber_si_calculator() if symbols == {"Si"} else tersoff_sio_calculator()


def _prepare(atoms: Atoms, calculator: Calculator | None) -> Atoms:
    real = atoms[atoms.numbers != 0].copy()
    if len(real) == 0:
        raise ValueError("structure has no real (non-ghost) atoms")
    if calculator is None:
        calculator = default_calculator(real)
    real.pbc = True
    real.calc = calculator
    return real


def relax(atoms: Atoms, variable_cell: bool, fmax: float = FMAX, steps: int = MAX_STEPS,
          optimizer: str = "lbfgs") -> bool:
    """Relax in place with L-BFGS or FIRE (cell too if variable_cell); True if fmax was reached.

    BLAS runs single-threaded here: the cell filter's 3x3 matrix logarithms and exponentials
    gain nothing from threads, and a threaded BLAS on a busy machine made them 10x slower
    (a 201-atom a-SiO2 shear modulus: 41 s of CPU instead of 3.9 s, the same value)."""
    from threadpoolctl import threadpool_limits

    target = FrechetCellFilter(atoms) if variable_cell else atoms
    with threadpool_limits(limits=1, user_api="blas"):
        return bool(OPTIMIZERS[optimizer](target, logfile=None).run(fmax=fmax, steps=steps))


def _strained(atoms: Atoms, j: int, delta: float) -> Atoms:
    eps = np.zeros((3, 3))
    if j < 3:
        eps[j, j] = delta
    else:
        a, b = {3: (1, 2), 4: (0, 2), 5: (0, 1)}[j]
        eps[a, b] = eps[b, a] = delta / 2
    s = atoms.copy()
    s.calc = atoms.calc
    s.set_cell(np.asarray(atoms.cell) @ (np.eye(3) + eps), scale_atoms=True)
    return s


def _stress_columns(atoms: Atoms, columns, delta: float, fmax: float, steps: int,
                    optimizer: str = "lbfgs") -> np.ndarray:
    """dsigma/deps_j (6-vectors, GPa) for the given Voigt columns j, on a relaxed structure."""
    out = np.zeros((6, 6))
    for j in columns:
        sig = []
        for sign in (+1, -1):
            s = _strained(atoms, j, sign * delta)
            relax(s, variable_cell=False, fmax=fmax, steps=steps, optimizer=optimizer)
            sig.append(s.get_stress(voigt=True))  # ASE order xx yy zz yz xz xy, eV/Å^3
        out[:, j] = (sig[0] - sig[1]) / (2 * delta) / GPa
    return out


def elastic_constants(atoms: Atoms, calculator: Calculator | None = None, delta: float = DELTA,
                      fmax: float = FMAX, steps: int = MAX_STEPS, optimizer: str = "lbfgs") -> np.ndarray:
    """6x6 Voigt elastic constant matrix (GPa) of the relaxed structure, symmetrised."""
    s = _prepare(atoms, calculator)
    relax(s, variable_cell=True, fmax=fmax, steps=steps, optimizer=optimizer)
    c = _stress_columns(s, range(6), delta, fmax, steps, optimizer)
    return (c + c.T) / 2


_MEG_CACHE: dict = {}
_MEG_CACHE_SIZE = 64


def meg_elastic_moduli(atoms: Atoms, calculator: Calculator | None = None, delta: float = DELTA,
                       fmax: float = MEG_FMAX, steps: int = MEG_STEPS) -> tuple[float, float]:
    """(E, G) in GPa of an oxide glass by the MEG protocol: BMP-shrm (default), FIRE
    relaxations to `fmax`, all six strains; E from `young_modulus_from`, G = (C44 + C55 + C66)/3.

    With the default calculator the result is remembered per structure and settings (the last
    64), so E and G of one glass asked for one after the other cost one protocol run."""
    key = None
    if calculator is None:
        key = (atoms.numbers.tobytes(), atoms.positions.tobytes(), atoms.cell.array.tobytes(), delta, fmax, steps)
        if key in _MEG_CACHE:
            return _MEG_CACHE[key]
    c = elastic_constants(atoms, calculator or bmp_shrm_calculator(), delta, fmax, steps, optimizer="fire")
    moduli = young_modulus_from(c), float(np.mean([c[j, j] for j in SHEAR]))
    if key is not None:
        if len(_MEG_CACHE) >= _MEG_CACHE_SIZE:
            _MEG_CACHE.pop(next(iter(_MEG_CACHE)))  # the oldest entry
        _MEG_CACHE[key] = moduli
    return moduli


def protocol_steps(atoms: Atoms) -> int:
    """The most steps per relaxation of the protocol `atoms` is measured with when no calculator
    is given: `MEG_STEPS` for MEG oxides (`is_meg`), `MAX_STEPS` otherwise."""
    return MEG_STEPS if is_meg(atoms[atoms.numbers != 0]) else MAX_STEPS


def _meg_modulus(atoms, calculator, delta, fmax, steps, which: int) -> float | None:
    """E (which=0) or G (which=1) by the MEG protocol when it applies (a MEG oxide, no
    calculator given), else None."""
    if calculator is not None or not is_meg(atoms[atoms.numbers != 0]):
        return None
    return meg_elastic_moduli(atoms, delta=delta, fmax=fmax, steps=steps or MEG_STEPS)[which]


def shear_modulus(atoms: Atoms, calculator: Calculator | None = None, delta: float = DELTA,
                  fmax: float = FMAX, steps: int | None = None) -> float:
    """G = (C44 + C55 + C66) / 3 in GPa; only the three shear strains are applied. MEG
    oxides (`is_meg`) without a calculator go through `meg_elastic_moduli` (their protocol).
    `steps`: the most steps per relaxation (default: the protocol's, `protocol_steps`)."""
    meg = _meg_modulus(atoms, calculator, delta, fmax, steps, which=1)
    if meg is not None:
        return meg
    steps = steps or MAX_STEPS
    s = _prepare(atoms, calculator)
    relax(s, variable_cell=True, fmax=fmax, steps=steps)
    c = _stress_columns(s, SHEAR, delta, fmax, steps)
    return float(np.mean([c[j, j] for j in SHEAR]))


def young_modulus_from(c: np.ndarray) -> float:
    """E = (C11 - C12)(C11 + 2 C12) / (C11 + C12) in GPa, with C11 and C12 the averages of
    the three normal and the six normal-normal off-diagonal constants (isotropic glass)."""
    c11 = np.mean([c[i, i] for i in range(3)])
    c12 = np.mean([c[i, k] for i in range(3) for k in range(3) if i != k])
    return float((c11 - c12) * (c11 + 2 * c12) / (c11 + c12))


def young_modulus(atoms: Atoms, calculator: Calculator | None = None, delta: float = DELTA,
                  fmax: float = FMAX, steps: int | None = None) -> float:
    """Young's modulus E (GPa) from the elastic constants, see `young_modulus_from`; MEG
    oxides (`is_meg`) without a calculator go through `meg_elastic_moduli` (their protocol).
    `steps`: the most steps per relaxation (default: the protocol's, `protocol_steps`)."""
    meg = _meg_modulus(atoms, calculator, delta, fmax, steps, which=0)
    if meg is not None:
        return meg
    return young_modulus_from(elastic_constants(atoms, calculator, delta, fmax, steps or MAX_STEPS))
