"""a-SiO2 workflow (paper App. B.8): Tersoff Si–O (Munetoh 2007), SiO2 cells of 80–250
atoms, random start in V = 4 sum_i (4/3) pi r_cov,i^3, minimise, NPT melt at 3500 K,
instantaneous quench (minimise), 10 ps NPT at 300 K. Each structure gets the paper's
properties (`core.properties`), computed on the stored 300 K snapshot: shear modulus
G = (C44 + C55 + C66)/3 in GPa (L-BFGS variable-cell relaxation to fmax 0.05 eV/Å, at most
1500 steps; shear strains +-0.02 with fixed-cell relaxation; central differences of the
stress) and mean ring size (Si atoms per ring; Si–O bonds d < 1.3 (1.11 + 0.66) Å; shortest
ring through each bond, periodic).

Departure from the paper, for cost: the melt lasts `melt_ps` (default 100 ps) instead of
2000 ps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from core.lammps import Lammps, pair_tersoff_sio
from core.properties import ring_size_mean, shear_modulus

R_COV = {"Si": 1.11, "O": 0.66}  # Å, as in the ring definition (ASE covalent radii)


@dataclass(frozen=True)
class SiO2Recipe:
    """MD parameters (metal units: K, ps, bar, Å)."""

    min_atoms: int = 80
    max_atoms: int = 250
    volume_factor: float = 4.0  # V = volume_factor * sum of covalent-sphere volumes
    min_start_distance: float = 1.5  # Å, rejection distance of the random start
    timestep_ps: float = 0.001
    t_melt: float = 3500.0
    melt_ps: float = 100.0
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


def random_start(n_sio2: int, r: SiO2Recipe, rng) -> Atoms:
    """n_sio2 formula units at uniform random positions in a cube of volume
    volume_factor * sum (4/3) pi r_cov^3, no pair closer than min_start_distance."""
    symbols = ["Si"] * n_sio2 + ["O"] * (2 * n_sio2)
    rng.shuffle(symbols)
    volume = r.volume_factor * sum(4 / 3 * np.pi * R_COV[s] ** 3 for s in symbols)
    length = volume ** (1 / 3)
    pos = np.empty((0, 3))
    while len(pos) < len(symbols):
        trial = rng.uniform(0.0, length, 3)
        d = pos - trial
        d -= length * np.round(d / length)
        if len(pos) == 0 or np.min(np.einsum("ij,ij->i", d, d)) >= r.min_start_distance**2:
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


def run_unit(r: SiO2Recipe, seed: int, n_frames: int, on_frame=None) -> list[Atoms]:
    """`n_frames` independent structures with `shear_modulus` and `ring_size_mean` in info."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        atoms = make_structure(r, rng)
        atoms.info["shear_modulus"] = shear_modulus(atoms)
        atoms.info["ring_size_mean"] = ring_size_mean(atoms)
        frames.append(atoms)
        if on_frame is not None:
            on_frame()
    return frames
