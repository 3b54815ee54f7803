"""a-SiO2 workflows (paper App. B.8): Tersoff Si–O (Munetoh 2007), SiO2 cells of 80–250
atoms, random start in V = 4 sum_i (4/3) pi r_cov,i^3, minimise, NPT melt at 3500 K,
instantaneous quench (minimise), 10 ps NPT at 300 K. Each structure gets the paper's
properties (`core.properties`), computed on the stored 300 K snapshot: shear modulus
G = (C44 + C55 + C66)/3 in GPa (L-BFGS variable-cell relaxation to fmax 0.05 eV/Å, at most
1500 steps; shear strains +-0.02 with fixed-cell relaxation; central differences of the
stress) and mean ring size (Si atoms per ring; Si–O bonds d < 1.3 (1.11 + 0.66) Å; shortest
ring through each bond, periodic).

Two recipes: `SiO2Recipe` (melt-quench) melts every structure from its own random start
for `melt_ps` (default 100 ps; the paper: 2000 ps); `SiO2QuenchSeriesRecipe`
(quench-series) melts once per unit and quenches `frames_per_unit` snapshots of that melt,
`interval_ps` apart, after `equil_ps`: the melt runs 1200 ps, closer to the paper's
2000 ps, for the same melt time per structure. `melt_decorrelation` measures the melt's
decorrelation time that sets `interval_ps`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from core.lammps import Lammps, pair_tersoff_sio
from core.properties import ring_size_mean, shear_modulus

R_COV = {"Si": 1.11, "O": 0.66}  # Å, as in the ring definition (ASE covalent radii)


@dataclass(frozen=True)
class _SiO2Cells:
    """What both a-SiO2 recipes share: cell sizes, the random start, the melt and the 300 K hold
    after each quench (metal units: K, ps, bar, Å)."""

    min_atoms: int = 80
    max_atoms: int = 250
    volume_factor: float = 4.0  # V = volume_factor * sum of covalent-sphere volumes
    min_start_distance: float = 1.5  # Å, rejection distance of the random start
    timestep_ps: float = 0.001
    t_melt: float = 3500.0
    t_final: float = 300.0
    final_ps: float = 10.0
    pressure_bar: float = 0.0
    tdamp_ps: float = 0.1
    pdamp_ps: float = 1.0
    frames_per_unit: int = 10
    potential: str = "SiO.tersoff"
    citation: str = "S. Munetoh et al., Comput. Mater. Sci. 39, 334 (2007)"

    def steps(self, ps: float) -> int:
        return int(round(ps / self.timestep_ps))


@dataclass(frozen=True)
class SiO2Recipe(_SiO2Cells):
    """One melt of `melt_ps` and one instantaneous quench per structure."""

    melt_ps: float = 100.0


@dataclass(frozen=True)
class SiO2QuenchSeriesRecipe(_SiO2Cells):
    """One NPT melt per unit (one cell size per unit, drawn as in SiO2Recipe), equilibrated
    `equil_ps` at `t_melt`, then `frames_per_unit` instantaneous quenches taken
    `interval_ps` apart (at least the melt's decorrelation time), each minimised and held
    `final_ps` NPT at `t_final` like SiO2Recipe's single quench."""

    equil_ps: float = 300.0  # the glass density stops falling after ~300 ps of melt (docs/datasets.md)
    interval_ps: float = 100.0  # >= the melt's decorrelation time, 40-95 ps (scripts/sio2_decorrelation.py)


def random_start(n_sio2: int, r: SiO2Recipe, rng) -> Atoms:
    """n_sio2 formula units at uniform random positions in a cube of volume
    volume_factor * sum (4/3) pi r_cov^3, no pair closer than min_start_distance."""
    symbols = ["Si"] * n_sio2 + ["O"] * (2 * n_sio2)
    rng.shuffle(symbols)
    volume = r.volume_factor * sum(4 / 3 * np.pi * R_COV[s] ** 3 for s in symbols)
    length = volume ** (1 / 3)
    return random_cube(symbols, length, r.min_start_distance, rng)


def random_cube(symbols, length: float, min_distance: float, rng) -> Atoms:
    """``symbols`` at uniform random positions in a periodic cube of edge ``length`` (Å), each
    placed by rejection so that no pair is closer than ``min_distance`` (also used by MEG)."""
    pos = np.empty((0, 3))
    while len(pos) < len(symbols):
        trial = rng.uniform(0.0, length, 3)
        d = pos - trial
        d -= length * np.round(d / length)
        if len(pos) == 0 or np.min(np.einsum("ij,ij->i", d, d)) >= min_distance**2:
            pos = np.vstack([pos, trial])
    return Atoms(symbols, positions=pos, cell=[length] * 3, pbc=True)


def make_structure(r: SiO2Recipe, rng) -> Atoms:
    """One a-SiO2 structure by the melt / instantaneous-quench recipe (no properties)."""
    n_sio2 = int(rng.integers(-(-r.min_atoms // 3), r.max_atoms // 3 + 1))
    start = random_start(n_sio2, r, rng)
    npt = f"iso {r.pressure_bar} {r.pressure_bar} {r.pdamp_ps}"
    with Lammps(start, ["Si", "O"], pair_tersoff_sio()) as lmp:
        lmp.cmd(
            "minimize 0 1e-3 300 3000",  # removes the worst overlaps of the random start
            f"timestep {r.timestep_ps}",
            f"velocity all create {r.t_melt} {int(rng.integers(1, 2**31 - 1))} mom yes rot yes dist gaussian",
            f"fix md all npt temp {r.t_melt} {r.t_melt} {r.tdamp_ps} {npt}",
            f"run {r.steps(r.melt_ps)}",
            "unfix md",
            "minimize 0 1e-4 2000 20000",  # the instantaneous quench
            f"velocity all create {r.t_final} {int(rng.integers(1, 2**31 - 1))} mom yes rot yes dist gaussian",
            f"fix md all npt temp {r.t_final} {r.t_final} {r.tdamp_ps} {npt}",
            f"run {r.steps(r.final_ps)}",
            "unfix md",
        )
        return lmp.atoms()


def _with_properties(atoms: Atoms) -> Atoms:
    atoms.info["shear_modulus"] = shear_modulus(atoms)
    atoms.info["ring_size_mean"] = ring_size_mean(atoms)
    return atoms


def quench(melt: Atoms, r, rng) -> Atoms:
    """Instantaneous quench of a melt configuration (minimise), then `final_ps` NPT at
    `t_final`: the stored structure (no properties)."""
    npt = f"iso {r.pressure_bar} {r.pressure_bar} {r.pdamp_ps}"
    with Lammps(melt, ["Si", "O"], pair_tersoff_sio()) as lmp:
        lmp.cmd(
            f"timestep {r.timestep_ps}",
            "minimize 0 1e-4 2000 20000",
            f"velocity all create {r.t_final} {int(rng.integers(1, 2**31 - 1))} mom yes rot yes dist gaussian",
            f"fix md all npt temp {r.t_final} {r.t_final} {r.tdamp_ps} {npt}",
            f"run {r.steps(r.final_ps)}",
            "unfix md",
        )
        return lmp.atoms()


def quench_series(r: SiO2QuenchSeriesRecipe, rng, n_frames: int, on_frame=None) -> list[Atoms]:
    """One melt (one cell size drawn for the unit), `n_frames` quenches from it,
    `interval_ps` apart after `equil_ps`; each with its properties."""
    n_sio2 = int(rng.integers(-(-r.min_atoms // 3), r.max_atoms // 3 + 1))
    start = random_start(n_sio2, r, rng)
    npt = f"iso {r.pressure_bar} {r.pressure_bar} {r.pdamp_ps}"
    frames = []
    with Lammps(start, ["Si", "O"], pair_tersoff_sio()) as melt:
        melt.cmd(
            "minimize 0 1e-3 300 3000",
            f"timestep {r.timestep_ps}",
            f"velocity all create {r.t_melt} {int(rng.integers(1, 2**31 - 1))} mom yes rot yes dist gaussian",
            f"fix md all npt temp {r.t_melt} {r.t_melt} {r.tdamp_ps} {npt}",
            f"run {r.steps(r.equil_ps)}",
        )
        for k in range(n_frames):
            if k:
                melt.cmd(f"run {r.steps(r.interval_ps)}")
            frames.append(_with_properties(quench(melt.atoms(), r, rng)))
            if on_frame is not None:
                on_frame()
    return frames


def run_unit(r, seed: int, n_frames: int, on_frame=None) -> list[Atoms]:
    """`n_frames` structures with `shear_modulus` and `ring_size_mean` in info: independent
    melts (`SiO2Recipe`) or quenches from one melt (`SiO2QuenchSeriesRecipe`)."""
    rng = np.random.default_rng(seed)
    if isinstance(r, SiO2QuenchSeriesRecipe):
        return quench_series(r, rng, n_frames, on_frame)
    frames = []
    for _ in range(n_frames):
        frames.append(_with_properties(make_structure(r, rng)))
        if on_frame is not None:
            on_frame()
    return frames


def melt_decorrelation(r: SiO2Recipe, n_sio2: int, seed: int, equil_ps: float = 20.0,
                       sample_ps: float = 0.05, span_ps: float = 20.0, n_origins: int = 3,
                       q_inv_A: float = 1.7) -> dict:
    """Measure how fast the NPT melt at `r.t_melt` forgets its configuration.

    Random start of n_sio2 formula units, minimised, `equil_ps` of melt; then `n_origins`
    consecutive windows of `span_ps`, each a time origin. Returns, on lag times `t_ps`,
    per species ('Si', 'O'): the mean-squared displacement `msd_A2` (Å^2, centre-of-mass
    drift removed) and the self intermediate scattering function `fs` at `q_inv_A`
    (1.7 Å^-1: the first sharp diffraction peak of silica, the slowest structural scale);
    `bonds`: the fraction of the origin's Si–O bonds (d < 2.301 Å, the ring-bond rule)
    still present; `tau_ps`: for each curve the lag where it first drops below 1/e;
    and the equilibration trace `equil_t_ps`, `equil_volume_A3`, `equil_pe_eV`
    (1 ps apart) that shows when the melt has settled from its random start.
    """
    from ase.neighborlist import neighbor_list

    rng = np.random.default_rng(seed)
    start = random_start(n_sio2, r, rng)
    si = np.array(start.get_chemical_symbols()) == "Si"
    npt = f"iso {r.pressure_bar} {r.pressure_bar} {r.pdamp_ps}"
    with Lammps(start, ["Si", "O"], pair_tersoff_sio()) as lmp:
        lmp.cmd(
            "minimize 0 1e-3 300 3000",
            f"timestep {r.timestep_ps}",
            f"velocity all create {r.t_melt} {int(rng.integers(1, 2**31 - 1))} mom yes rot yes dist gaussian",
            f"fix md all npt temp {r.t_melt} {r.t_melt} {r.tdamp_ps} {npt}",
            "run 0",
        )
        trace_t, trace_v, trace_e = [], [], []
        for k in range(int(round(equil_ps))):
            lmp.cmd(f"run {r.steps(1.0)} pre no post no")
            trace_t.append(k + 1.0)
            trace_v.append(lmp.thermo("vol"))
            trace_e.append(lmp.thermo("pe"))

        def bonds(atoms):
            cut = [1.3 * (R_COV["Si"] if s else R_COV["O"]) for s in si]
            i, j = neighbor_list("ij", atoms, cut)
            keep = si[i] & ~si[j]
            return set(zip(i[keep].tolist(), j[keep].tolist()))

        n_lag = int(round(span_ps / sample_ps))
        msd = {"Si": np.zeros(n_lag + 1), "O": np.zeros(n_lag + 1)}
        fs = {"Si": np.zeros(n_lag + 1), "O": np.zeros(n_lag + 1)}
        kept = np.zeros(n_lag + 1)
        for _ in range(n_origins):
            x0, b0 = lmp.unwrapped_positions(), bonds(lmp.atoms())
            for k in range(n_lag + 1):
                if k:
                    lmp.cmd(f"run {r.steps(sample_ps)} pre no post no")
                d = lmp.unwrapped_positions() - x0
                d -= d.mean(axis=0)  # centre-of-mass drift from the barostat
                r2 = np.einsum("ij,ij->i", d, d)
                for name, mask in (("Si", si), ("O", ~si)):
                    msd[name][k] += r2[mask].mean()
                    # isotropic average of cos(q.d) = sin(q r) / (q r)
                    fs[name][k] += np.mean(np.sinc(q_inv_A * np.sqrt(r2[mask]) / np.pi))
                kept[k] += len(b0 & bonds(lmp.atoms())) / max(len(b0), 1)
    t = np.arange(n_lag + 1) * sample_ps
    curves = {f"fs_{s}": fs[s] / n_origins for s in fs} | {"bonds": kept / n_origins}

    def tau(y):
        below = np.nonzero(y < np.exp(-1))[0]
        return float(t[below[0]]) if len(below) else float("nan")

    return {
        "n_atoms": 3 * n_sio2, "t_ps": t, "q_inv_A": q_inv_A,
        "msd_A2": {s: msd[s] / n_origins for s in msd},
        "fs": {s: curves[f"fs_{s}"] for s in fs}, "bonds": curves["bonds"],
        "tau_ps": {name: tau(y) for name, y in curves.items()},
        "equil_t_ps": np.array(trace_t), "equil_volume_A3": np.array(trace_v),
        "equil_pe_eV": np.array(trace_e),
    }
