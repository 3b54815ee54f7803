"""Local relaxation of generated structures with the system's classical potential (LAMMPS).

A fixed-cell energy minimisation (LAMMPS conjugate gradients) pulls pressed-together atoms apart
and sets bond lengths to the potential's; it does not rebuild a wrong bond network, so the report
gives the structure checks before and after. Off by default everywhere: relaxed structures are
no longer the model's output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
from ase import Atoms

from core.errors import UserError
from core.material import GHOST

MINIMIZE = (0.0, 1e-4, 2000, 20000)
"""LAMMPS ``minimize etol ftol maxiter maxeval``: no energy criterion; stop once the 2-norm of the
global force vector is below 1e-4 eV/Å, or after 2000 iterations or 20000 force evaluations."""
TOLERANCE = "fixed cell; LAMMPS CG until the global force 2-norm is below 1e-4 eV/Å or for 2,000 iterations"
POTENTIALS = {
    "a-Si": ("Stillinger–Weber Si (Si.sw)", "pair_sw_si", ["Si"]),
    "a-SiO2": ("Tersoff Si–O, Munetoh et al. 2007 (SiO.tersoff)", "pair_tersoff_sio", ["Si", "O"]),
}
"""Per system: (name, `core.lammps` function giving the pair commands, species in LAMMPS type order):
the potentials the training data was made with."""


def relax_system(symbols: Iterable[str]) -> str:
    """The system whose potential covers these chemical symbols (the one with the fewest species);
    UserError when none does."""
    present = set(symbols) - {"X"}
    fits = [s for s, (_, _, species) in POTENTIALS.items() if present <= set(species)]
    if not fits:
        raise UserError(f"no classical potential to relax {'/'.join(sorted(present)) or 'empty structures'}: "
                        f"relaxation knows {', '.join(POTENTIALS)}")
    return min(fits, key=lambda s: len(POTENTIALS[s][2]))


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
    name, pair_fn, species = POTENTIALS[system]
    if not symbols <= set(species):
        raise UserError(f"the {system} potential ({name}) has no parameters for {sorted(symbols - set(species))}")
    for k, atoms in enumerate(real):
        cell = atoms.cell.array
        if len(atoms) and not (atoms.pbc.all() and np.allclose(cell, np.diag(np.diag(cell)), atol=1e-8)):
            raise UserError(f"structure {k}: relaxation needs a periodic orthorhombic cell")
    pair = getattr(lammps, pair_fn)()

    relaxed, before, after, fmax, converged = [], [], [], 0.0, 0
    started = time.perf_counter()
    for k, atoms in enumerate(real):
        if progress is not None:
            progress(k, len(real))
        if len(atoms) == 0:
            relaxed.append(atoms)
            continue
        with lammps.Lammps(atoms, species, pair) as lmp:
            lmp.cmd("thermo_style custom step pe fmax fnorm", "run 0")
            e0 = lmp.thermo("pe") / len(atoms)
            lmp.cmd("minimize " + " ".join(f"{x:g}" for x in MINIMIZE))
            e1 = lmp.thermo("pe") / len(atoms)
            fmax = max(fmax, lmp.thermo("fmax"))
            converged += lmp.thermo("fnorm") < MINIMIZE[1]
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
    report = {"system": system, "potential": name, "tolerance": TOLERANCE, "n_structures": len(filled),
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
