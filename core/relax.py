"""Local relaxation of generated structures with the system's classical potential (LAMMPS).

A fixed-cell energy minimisation pulls pressed-together atoms apart and sets bond lengths to the
potential's; it does not rebuild a wrong bond network, so the report gives the structure checks
before and after. Off by default everywhere: relaxed structures are no longer the model's output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from core.errors import UserError
from core.material import GHOST


@dataclass(frozen=True)
class Potential:
    """How one system's structures are relaxed: the potential (a `core.lammps` function giving the
    pair commands, species in LAMMPS type order, atom style) and the LAMMPS minimiser with its stop
    rule (``minimize 0 ftol max_iterations max_evaluations``, ftol in eV/Å on ``norm``)."""

    name: str
    pair: str
    species: tuple[str, ...]
    atom_style: str = "atomic"
    min_style: str = "cg"
    ftol: float = 1e-4
    norm: str = "two"  # LAMMPS min_modify norm: two = 2-norm of the global force vector, inf = largest component
    max_iterations: int = 2000
    max_evaluations: int = 20000
    requires: tuple[str, ...] = ()  # elements a structure must hold for this potential to be chosen

    @property
    def tolerance(self) -> str:
        force = "global force 2-norm" if self.norm == "two" else "largest force component"
        return (f"fixed cell; LAMMPS {'CG' if self.min_style == 'cg' else self.min_style.upper()} until the {force} "
                f"is below {self.ftol:g} eV/Å or for {self.max_iterations:,} iterations")

    def commands(self) -> list[str]:
        """The minimisation, after the pair commands (FIRE starts from a 1 fs step, as the MEG build's)."""
        lines = [f"min_style {self.min_style}", f"min_modify norm {self.norm}"]
        if self.min_style == "fire":
            lines.insert(0, "timestep 0.001")
        return lines + [f"minimize 0 {self.ftol:g} {self.max_iterations} {self.max_evaluations}"]


POTENTIALS = {
    "a-Si": Potential("Stillinger–Weber Si (Si.sw)", "pair_sw_si", ("Si",)),
    "a-SiO2": Potential("Tersoff Si–O, Munetoh et al. 2007 (SiO.tersoff)", "pair_tersoff_sio", ("Si", "O")),
    "MEG": Potential("BMP-shrm, Bertani, Menziani, Pedone 2021 (BMP-shrm.lammps)", "pair_bmp_shrm",
                     ("Si", "P", "Al", "Li", "Be", "K", "Ca", "Ti", "Ba", "Zn", "O"), atom_style="charge",
                     min_style="fire", ftol=0.01, norm="inf", max_iterations=1000, max_evaluations=10000,
                     requires=("O",)),
}
"""Per system: the potential its training data was made with and how it minimises. Stillinger–Weber
and Tersoff: conjugate gradients to a global force 2-norm below 1e-4 eV/Å. BMP-shrm (MEG oxides):
FIRE, as the MEG build (conjugate gradients stall on its three-body cutoffs), until no force component
exceeds 0.01 eV/Å, at most 1,000 iterations. A pilot glass of the data meets that in 0.8 s; one with an
O pressed onto a P (1 Å) loses its close pairs and 0.71 eV/atom within 200 iterations, then FIRE
hovers with one atom on a three-body cutoff (0.45 eV/Å left): the report counts it unconverged."""


def relax_system(symbols: Iterable[str]) -> str:
    """The system whose potential covers these chemical symbols (the one with the fewest species);
    UserError when none does."""
    present = set(symbols) - {"X"}
    fits = [s for s, p in POTENTIALS.items() if present <= set(p.species) and set(p.requires) <= present]
    if not fits:
        raise UserError(f"no classical potential to relax {'/'.join(sorted(present)) or 'empty structures'}: "
                        f"relaxation knows {', '.join(POTENTIALS)}")
    return min(fits, key=lambda s: len(POTENTIALS[s].species))


def relax(structures, system: str | None = None, progress: Callable[[int, int], None] | None = None):
    """Relax each structure's positions at fixed cell with ``system``'s potential (default: the one
    fitting the elements present). Ghost atoms are dropped first; empty structures pass through.

    Returns (relaxed structures, report). Each relaxed Atoms keeps its ``info`` and gains
    ``energy_unrelaxed`` and ``energy_relaxed`` (eV/atom). The report holds ``system``,
    ``potential``, ``tolerance``, ``n_structures``, ``seconds`` (the minimisations, wall clock),
    ``converged`` (structures that met the force tolerance before the iteration limit),
    ``max_force`` (largest force component after, eV/Å) and ``before`` / ``after``: the set's
    `core.metrics.network_checks` plus ``energy_per_atom`` (mean, eV/atom). ``progress(done, total)``
    is called before each structure (it may raise to cancel).
    """
    from core import lammps
    from core.metrics import network_checks

    real = [(a.to_atoms() if hasattr(a, "to_atoms") else a) for a in
            ([structures] if isinstance(structures, Atoms) else list(structures))]
    real = [a[a.numbers != GHOST].copy() for a in real]
    if not real:
        raise UserError("no structures to relax")
    symbols = {s for a in real for s in a.get_chemical_symbols()}
    system = system or relax_system(symbols)
    if system not in POTENTIALS:
        raise UserError(f"no classical potential for system {system!r}: relaxation knows {', '.join(POTENTIALS)}")
    potential = POTENTIALS[system]
    name, species = potential.name, list(potential.species)
    if not symbols <= set(species):
        raise UserError(f"the {system} potential ({name}) has no parameters for {sorted(symbols - set(species))}")
    if not set(potential.requires) <= symbols:
        raise UserError(f"the {system} potential ({name}) needs {'/'.join(potential.requires)} in the structures "
                        f"(these hold {'/'.join(sorted(symbols)) or 'no atoms'})")
    for k, atoms in enumerate(real):
        cell = atoms.cell.array
        if len(atoms) and not (atoms.pbc.all() and np.allclose(cell, np.diag(np.diag(cell)), atol=1e-8)):
            raise UserError(f"structure {k}: relaxation needs a periodic orthorhombic cell")
    pair = getattr(lammps, potential.pair)()

    relaxed, before, after, fmax, converged = [], [], [], 0.0, 0
    started = time.perf_counter()
    for k, atoms in enumerate(real):
        if progress is not None:
            progress(k, len(real))
        if len(atoms) == 0:
            relaxed.append(atoms)
            continue
        with lammps.Lammps(atoms, species, pair, atom_style=potential.atom_style) as lmp:
            lmp.cmd("thermo_style custom step pe fmax fnorm", "run 0")
            e0 = lmp.thermo("pe") / len(atoms)
            lmp.cmd(*potential.commands())
            e1 = lmp.thermo("pe") / len(atoms)
            fmax = max(fmax, lmp.thermo("fmax"))
            converged += lmp.thermo("fnorm" if potential.norm == "two" else "fmax") < potential.ftol
            out = atoms.copy()
            out.positions = lmp.atoms().positions  # ordered by atom id, i.e. as given
        out.info.update(energy_unrelaxed=e0, energy_relaxed=e1)
        relaxed.append(out)
        before.append(e0)
        after.append(e1)
    seconds = time.perf_counter() - started
    if progress is not None:
        progress(len(real), len(real))

    filled = [k for k, a in enumerate(real) if len(a)]
    report = {"system": system, "potential": name, "tolerance": potential.tolerance, "n_structures": len(filled),
              "seconds": seconds, "converged": converged, "max_force": fmax, "before": {}, "after": {}}
    if filled:
        for key, frames, energies in (("before", real, before), ("after", relaxed, after)):
            report[key] = {**network_checks([frames[k] for k in filled], system),
                           "energy_per_atom": float(np.mean(energies))}
    return relaxed, report


def report_rows(report: dict) -> list[tuple[str, str, str]]:
    """(check, before, after) as display strings: the network checks (shares in %) and the energy."""
    from core.metrics import network_columns

    def cell(value, factor):
        return "–" if value is None or value != value else (f"{100 * value:.1f}" if factor == 100 else f"{value:.4g}")

    b, a = report["before"], report["after"]
    rows = [(label, cell(b.get(key), factor), cell(a.get(key), factor))
            for key, label, factor in network_columns(report["system"])]
    rows.append(("energy eV/atom", cell(b.get("energy_per_atom"), 1), cell(a.get("energy_per_atom"), 1)))
    return rows
