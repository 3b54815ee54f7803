"""MEG (multi-element oxide glass) workflow (paper App. "Multi-Element Glass (MEG) Dataset"):
BMP-shrm potential (Bertani, Menziani, Pedone 2021; core/potentials/BMP-shrm.lammps) for
Si, P, Al, Li, Be, K, Ca, Ti, Ba, Zn, O; about 250 atoms a glass.

Composition (cation fractions, i.e. shares of the non-O atoms, on the grid of the paper's
authors' workflow): the formers SiO2 and P2O5 (Si alone, P alone, or both in steps of 1/6 of
the former share); 0 to 4 modifiers among Al2O3, Li2O, BeO, K2O, CaO, TiO2, BaO, ZnO, each
a multiple of 10 % (a quarter of the 40 % maximum) with at most 40 % together; one grid point
drawn uniformly per glass. Integer counts near those fractions, O from charge neutrality
with formal valences (`composition_counts`).

Recipe (`MEGRecipe`): random start in V = 4 sum_i (4/3) pi r_cov,i^3 (ASE covalent radii),
FIRE minimisation, NPT 1 bar melt at `t_melt` (2 fs steps, Nosé–Hoover, always
thermostatted: the three-body cutoffs break energy conservation), linear NPT quench to 300 K
at `cooling_rate_K_per_ps`, `final_ps` NPT at 300 K; the 300 K snapshot is stored. The MD
runs BMP-shrm's pair terms from tables (`pair_bmp_shrm(tabulated=True)`: the same forces within
1e-3 eV/Å, steps 1.5x faster); the elastic protocol runs the analytic styles. Melt
check: each element's mean-square displacement over the last `check_ps` of the melt must
reach 6 D t with D = `min_diffusivity`; if one does not, the melt goes on `melt_ps` longer
`melt_step_K` hotter, up to `t_melt_max`. Evaporation check (recipe `melt-quench-evap-check`,
`MEGEvapCheckRecipe`, the default; `melt-quench`, `MEGRecipe`, has none): the cell volume,
sampled every ps of the melt and the quench and averaged over 2 ps, may not grow past 1.3 x
its smallest value so far; a melt that does is begun again from the start `melt_step_K`
cooler and is never heated above that again, down to `t_melt_min`. The structure's info
records `melt_temperature` (K), `melt_diffusivity` (the slowest element's MSD / 6t, Å^2/ps),
`melt_slowest`, `melt_expansion` (the check's largest ratio; evaporation-check recipe only)
and the CPU seconds of its steps: `cpu_melt_s` (start, minimisation, melt, and any attempt
begun again), `cpu_quench_s` (quench and hold), `cpu_elastic_s` (relaxations and strains).

Properties (`core.properties`), on the stored snapshot relaxed with BMP-shrm (FIRE,
variable cell, fmax `fmax`): `youngs_modulus` E = (C11 - C12)(C11 + 2 C12)/(C11 + C12) and
`shear_modulus` G = (C44 + C55 + C66)/3 in GPa, from the elastic constants by central
finite differences of the stress (strain +-0.02, fixed-cell FIRE relaxations), C11, C12
averaged over the three axes; `li_concentration` = 100 N_Li / N_atoms (%).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from itertools import combinations

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from core.datasets.sio2 import random_cube
from core.lammps import BMP_SPECIES, Lammps, pair_bmp_shrm
from core.properties import li_concentration, meg_elastic_moduli
from core.properties.elastic import MEG_STEPS

ELEMENTS = tuple(BMP_SPECIES)  # Si, P, Al, Li, Be, K, Ca, Ti, Ba, Zn, O: the dataset's element order
FORMERS = ("Si", "P")
MODIFIERS = ("Al", "Li", "Be", "K", "Ca", "Ti", "Ba", "Zn")
VALENCE = {"Si": 4, "P": 5, "Al": 3, "Li": 1, "Be": 2, "K": 1, "Ca": 2, "Ti": 4, "Ba": 2, "Zn": 2, "O": -2}
MAX_MODIFIERS = 4
MODIFIER_MAX = 0.4  # all modifiers together, cation fraction
MODIFIER_STEPS = 4  # each modifier a multiple of MODIFIER_MAX / 4
FORMER_STEPS = 6  # former shares in steps of 1/6


@dataclass(frozen=True)
class MEGRecipe:
    """One MEG glass per structure: composition drawn on the grid, random start, FIRE
    minimisation, NPT melt (checked, hotter if needed), linear NPT quench, NPT hold at
    `t_final`; E and G from the relaxed glass (metal units: K, ps, bar, Å)."""

    n_atoms: int = 250  # target; the count is the integer composition nearest to it
    volume_factor: float = 4.0  # V = volume_factor * sum of covalent-sphere volumes
    min_start_distance: float = 1.5  # Å, rejection distance of the random start
    timestep_ps: float = 0.002
    t_melt: float = 3500.0
    melt_ps: float = 20.0
    check_ps: float = 10.0  # melt check window: the last check_ps of the melt
    min_diffusivity: float = 0.12  # Å^2/ps: 20 Å rms in ~540 ps, the authors' melt check
    melt_step_K: float = 500.0
    t_melt_max: float = 5000.0
    cooling_rate_K_per_ps: float = 100.0
    t_final: float = 300.0
    final_ps: float = 10.0
    pressure_bar: float = 1.0
    tdamp_ps: float = 0.2
    pdamp_ps: float = 2.0
    fmax: float = 0.05  # eV/Å, FIRE tolerance of the elastic relaxations (the paper's 0.05)
    max_relax_steps: int = MEG_STEPS  # FIRE steps per elastic relaxation (docs/datasets.md: why 500)
    frames_per_unit: int = 5
    potential: str = "BMP-shrm.lammps"
    citation: str = "M. Bertani, M. C. Menziani, A. Pedone, Phys. Rev. Materials 5, 045602 (2021)"

    def steps(self, ps: float) -> int:
        return int(round(ps / self.timestep_ps))


@dataclass(frozen=True)
class MEGEvapCheckRecipe(MEGRecipe):
    """MEGRecipe with an evaporation check (the authors' workflow rejects a melt whose volume
    grows past 1.6 x its start): the cell volume, sampled every `volume_sample_ps` of the melt
    and the quench and averaged over `expansion_window_ps`, may not grow past `max_expansion` x
    its smallest value so far; a melt that does is begun again `melt_step_K` cooler, down to
    `t_melt_min` (K-rich melts boil at 3500 K and 1 bar)."""

    max_expansion: float = 1.3
    expansion_window_ps: float = 2.0
    volume_sample_ps: float = 1.0
    t_melt_min: float = 2500.0


def _fractions(n: int, steps: int, sum_to_one: bool) -> list[tuple[int, ...]]:
    """All n-tuples of positive integers summing to `steps` (sum_to_one) or to at most `steps`."""
    out = []
    top, k = (steps - 1, n - 1) if sum_to_one else (steps, n)
    for cut in combinations(range(1, top + 1), k):  # increasing partial sums
        bounds = (0, *cut, steps) if sum_to_one else (0, *cut)
        out.append(tuple(b - a for a, b in zip(bounds, bounds[1:])))
    return out


@cache
def composition_grid() -> list[dict[str, float]]:
    """Every composition of the grid as cation fractions (sum 1): 7 former mixes x 495
    modifier sets = 3,465 compositions."""
    formers = [{el: f / FORMER_STEPS for el, f in zip(combo, fr)}
               for n in (1, 2) for combo in combinations(FORMERS, n)
               for fr in _fractions(n, FORMER_STEPS, sum_to_one=True)]
    modifiers = [{}] + [{el: MODIFIER_MAX * f / MODIFIER_STEPS for el, f in zip(combo, fr)}
                        for n in range(1, MAX_MODIFIERS + 1) for combo in combinations(MODIFIERS, n)
                        for fr in _fractions(n, MODIFIER_STEPS, sum_to_one=False)]
    grid = []
    for m in modifiers:
        rest = 1.0 - sum(m.values())
        for f in formers:
            grid.append({**{el: x * rest for el, x in f.items()}, **m})
    return grid


def composition_counts(fractions: dict[str, float], n_atoms: int) -> dict[str, int]:
    """Integer atom counts near the cation `fractions` with about `n_atoms` atoms in all and
    O from charge neutrality (formal valences). Each cation gets at least one atom; when the
    cation charge is odd, the odd-valence cation whose count is furthest above its target
    loses one atom (or the one furthest below gains one)."""
    o_per_cation = sum(x * VALENCE[el] for el, x in fractions.items()) / 2
    n_cat = n_atoms / (1 + o_per_cation)
    target = {el: x * n_cat for el, x in fractions.items()}
    counts = {el: max(1, int(round(t))) for el, t in target.items()}
    if sum(counts[el] * VALENCE[el] for el in counts) % 2:
        odd = [el for el in counts if VALENCE[el] % 2]
        el = max(odd, key=lambda e: abs(counts[e] - target[e]))
        counts[el] += -1 if counts[el] > target[el] and counts[el] > 1 else 1
    counts["O"] = sum(counts[el] * VALENCE[el] for el in counts) // 2
    return counts


def random_start(counts: dict[str, int], r: MEGRecipe, rng) -> Atoms:
    """The atoms at uniform random positions in a cube of volume volume_factor * sum
    (4/3) pi r_cov^3, no pair closer than min_start_distance."""
    symbols = [el for el in ELEMENTS for _ in range(counts.get(el, 0))]
    rng.shuffle(symbols)
    radii = covalent_radii[[atomic_numbers[s] for s in symbols]]
    length = (r.volume_factor * np.sum(4 / 3 * np.pi * radii**3)) ** (1 / 3)
    return random_cube(symbols, length, r.min_start_distance, rng)


def _diffusivities(x0: np.ndarray, x1: np.ndarray, symbols: np.ndarray, t_ps: float) -> dict[str, float]:
    """Per element MSD / (6 t) in Å^2/ps, centre-of-mass drift removed."""
    d = x1 - x0
    d -= d.mean(axis=0)
    r2 = np.einsum("ij,ij->i", d, d)
    return {el: float(r2[symbols == el].mean() / (6 * t_ps)) for el in np.unique(symbols)}


class _Evaporating(Exception):
    """The melt's volume grew past `max_expansion` of its smallest value so far."""


class _VolumeWatch:
    """The evaporation check of `MEGEvapCheckRecipe`: the cell volume sampled every
    `volume_sample_ps`, averaged over `expansion_window_ps`; `expansion` is the largest
    ratio of that average to its smallest earlier value (a liquid's barostat swings stay
    below ~1.25 at 3500 K; a boiling melt grows steadily). Raises `_Evaporating` past
    `max_expansion` when `strict`."""

    def __init__(self, r: "MEGEvapCheckRecipe", strict: bool):
        self.sample_steps = r.steps(r.volume_sample_ps)
        self.window = max(1, int(round(r.expansion_window_ps / r.volume_sample_ps)))
        self.limit, self.strict = r.max_expansion, strict
        self.volumes: list[float] = []
        self.smallest = np.inf
        self.expansion = 1.0

    def run(self, lmp: Lammps, steps: int, ramp: bool = False) -> None:
        """`run steps` in samples of `sample_steps`; with `ramp`, a fix's target ramps over all
        `steps` (LAMMPS `run N start stop`) as in one run."""
        begin = int(lmp.lmp.extract_global("ntimestep"))
        done = 0
        while done < steps:
            n = min(self.sample_steps, steps - done)
            lmp.cmd(f"run {n} start {begin} stop {begin + steps}" if ramp else f"run {n}")
            done += n
            self.volumes.append(lmp.thermo("vol"))
            if len(self.volumes) >= self.window:
                mean = float(np.mean(self.volumes[-self.window:]))
                self.smallest = min(self.smallest, mean)
                self.expansion = max(self.expansion, mean / self.smallest)
                if self.strict and self.expansion > self.limit:
                    raise _Evaporating


def _melt_quench_at(start: Atoms, r: MEGRecipe, t: float, t_max: float, seed: int, watch) -> tuple[Atoms, float]:
    """One attempt of `melt_quench`: melt at `t` (hotter, up to `t_max`, while the melt check
    fails), quench, hold; `watch` (a `_VolumeWatch` or None) samples the melt and the quench.
    Returns the 300 K snapshot and the CPU time at which the quench began."""
    symbols = np.array(start.get_chemical_symbols())
    npt = f"iso {r.pressure_bar} {r.pressure_bar} {r.pdamp_ps}"

    def run(lmp, steps, ramp=False):
        if watch is None:
            lmp.cmd(f"run {steps}")
        else:
            watch.run(lmp, steps, ramp)

    with Lammps(start, list(ELEMENTS), pair_bmp_shrm(tabulated=True), atom_style="charge") as lmp:
        lmp.cmd(
            "neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes",
            "timestep 0.001", "min_style fire",
            "minimize 0 0.1 2000 20000",  # removes the worst overlaps of the random start (FIRE)
            f"timestep {r.timestep_ps}",
            f"velocity all create {t} {seed} mom yes rot yes dist gaussian",
            f"fix md all npt temp {t} {t} {r.tdamp_ps} {npt}",
        )
        run(lmp, r.steps(r.melt_ps - r.check_ps))
        while True:
            x0 = lmp.unwrapped_positions()
            run(lmp, r.steps(r.check_ps))
            diff = _diffusivities(x0, lmp.unwrapped_positions(), symbols, r.check_ps)
            slowest = min(diff, key=diff.get)
            if diff[slowest] >= r.min_diffusivity or t + r.melt_step_K > t_max:
                break
            t += r.melt_step_K
            lmp.cmd("unfix md", f"fix md all npt temp {t} {t} {r.tdamp_ps} {npt}")
            run(lmp, r.steps(r.melt_ps - r.check_ps))
        t1 = time.process_time()
        lmp.cmd("unfix md", f"fix md all npt temp {t} {r.t_final} {r.tdamp_ps} {npt}")
        run(lmp, r.steps((t - r.t_final) / r.cooling_rate_K_per_ps), ramp=True)
        lmp.cmd("unfix md", f"fix md all npt temp {r.t_final} {r.t_final} {r.tdamp_ps} {npt}",
                f"run {r.steps(r.final_ps)}", "unfix md")
        atoms = lmp.atoms()
    atoms.info.update({"melt_temperature": float(t), "melt_diffusivity": diff[slowest], "melt_slowest": str(slowest)})
    return atoms, t1


def melt_quench(start: Atoms, r: MEGRecipe, rng) -> Atoms:
    """FIRE minimisation, checked NPT melt, linear quench and hold (see the module doc); the
    300 K snapshot with `melt_temperature`, `melt_diffusivity`, `melt_slowest`, `cpu_melt_s`,
    `cpu_quench_s` in info. With a `MEGEvapCheckRecipe`, a melt (or quench) that evaporates is
    begun again from the start `melt_step_K` cooler, never hotter than that again, down to
    `t_melt_min`; its info adds `melt_expansion` (the volume check's largest ratio)."""
    t0 = time.process_time()
    seed = int(rng.integers(1, 2**31 - 1))
    t, t_max = r.t_melt, r.t_melt_max
    checked = isinstance(r, MEGEvapCheckRecipe)
    while True:
        watch = _VolumeWatch(r, strict=t - r.melt_step_K >= r.t_melt_min) if checked else None
        try:
            atoms, t1 = _melt_quench_at(start, r, t, t_max, seed, watch)
            break
        except _Evaporating:
            t = t_max = t - r.melt_step_K
    if watch is not None:
        atoms.info["melt_expansion"] = watch.expansion
    atoms.info.update({"cpu_melt_s": t1 - t0, "cpu_quench_s": time.process_time() - t1})
    return atoms


def make_structure(r: MEGRecipe, rng) -> Atoms:
    """One MEG glass with its properties: composition, start, melt-quench, E, G, Li %."""
    grid = composition_grid()
    counts = composition_counts(grid[int(rng.integers(len(grid)))], r.n_atoms)
    atoms = melt_quench(random_start(counts, r, rng), r, rng)
    t0 = time.process_time()
    e, g = meg_elastic_moduli(atoms, fmax=r.fmax, steps=r.max_relax_steps)
    atoms.info.update({"youngs_modulus": e, "shear_modulus": g, "li_concentration": li_concentration(atoms),
                       "cpu_elastic_s": time.process_time() - t0})
    return atoms


def run_unit(r: MEGRecipe, seed: int, n_frames: int, on_frame=None) -> list[Atoms]:
    """`n_frames` independent glasses with `youngs_modulus`, `shear_modulus`,
    `li_concentration` and the melt check in info."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        frames.append(make_structure(r, rng))
        if on_frame is not None:
            on_frame()
    return frames
