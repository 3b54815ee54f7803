"""Generated structures and what the studio shows about them (curves, RMSD, property table)."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import param

from studio.catalog import formula

AMU_PER_A3_IN_G_CM3 = 1.66053907  # 1 u/Å^3 = 1.6605 g/cm^3

@dataclass
class Analysis:
    """Generated-set curves beside the training-set reference (either may be missing)."""

    r: np.ndarray | None = None
    rdf: np.ndarray | None = None  # averaged over generated structures
    theta: np.ndarray | None = None
    adf: np.ndarray | None = None
    ref: dict = field(default_factory=dict)  # r, rdf, theta, adf of the training set
    rmsd: dict = field(default_factory=dict)  # {"rdf": float, "adf": float}
    notes: list = field(default_factory=list)  # why something is missing
    checks: dict = field(default_factory=dict)  # structure checks of the generated set (+ "energy" eV/atom)
    ref_checks: dict = field(default_factory=dict)  # the same for training structures (+ "n")

    def summary(self) -> dict:
        """The checks as table columns: ideal-coordination share (%), close pairs, energy (eV/atom)."""
        c = self.checks
        if not c:
            return {}
        out = {f"{c['ideal']}-fold %": round(100 * c["ideal_share"], 1), "close pairs": round(c["close_pairs"], 2)}
        if "energy" in c:
            out["eV/atom"] = round(c["energy"], 3)
        return out


def analyse(backend, structures, reference: dict | None, ref_checks: dict | None = None,
            system: str | None = None) -> Analysis:
    """RDF/ADF of the generated set and RMSD to the reference, structure checks (under ``system``'s
    rules) and energy per atom beside the training set's, all computed by `core`."""
    out = Analysis(ref=reference or {}, ref_checks=ref_checks or {})
    r, g = backend.rdf(structures)
    theta, p = backend.adf(structures)
    out.r, out.rdf, out.theta, out.adf = r, g.mean(axis=0), theta, p.mean(axis=0)
    try:
        out.checks = dict(backend.structure_checks(structures, system))
        out.checks["potential"] = backend.potential_name(system)
        out.checks["energy"] = float(np.mean(backend.energies_per_atom(structures)))
    except Exception as exc:  # noqa: BLE001 - a failing check must not hide the curves
        out.notes.append(f"Structure checks incomplete: {type(exc).__name__}: {exc}")
    if not reference:
        out.notes.append("No training-set reference for this system (neither reference.npz nor dataset shards)")
        return out
    for key in ("rdf", "adf"):
        if key in reference and len(reference[key]) == len(getattr(out, key)):
            out.rmsd[key] = backend.curve_rmsd(getattr(out, key), reference[key])
    return out


def property_rows(backend, structures, targets: dict[str, float], system: str | None = None) -> pd.DataFrame:
    """One row per structure: atoms, composition, density, the system's composition check, cheap
    properties, conditioning targets.

    The composition is the atom counts in the dataset's element order ('Si56 Al18 Ca19 O158',
    `core.catalog.formula`), not oxide mol %: a generated glass need not be charge-neutral, and
    oxide shares would hide a surplus or missing O that the counts and the Σq/N_O column show."""
    try:
        composition = backend.composition_values(structures, system) if system else None
    except Exception:  # noqa: BLE001 - e.g. an element without a nominal charge: leave the column out
        composition = None
    rows = []
    for i, atoms in enumerate(structures):
        row = {"#": i, "atoms": len(atoms), "composition": formula(atoms.get_chemical_symbols(), system),
               "density (atoms/Å³)": round(backend.density(atoms), 5),
               "density (g/cm³)": round(float(atoms.get_masses().sum()) / atoms.cell.volume * AMU_PER_A3_IN_G_CM3, 3)}
        if composition is not None:
            row[composition[0]] = round(composition[1][i], 4)
        try:
            row.update({k: round(v, 4) for k, v in backend.cheap_properties(atoms, system).items()})
        except Exception as exc:  # noqa: BLE001 - a failing property must not hide the others
            row["note"] = f"property failed: {exc}"
        for name, value in targets.items():
            row[f"{name} target"] = value
        rows.append(row)
    return pd.DataFrame(rows)


class Results(param.Parameterized):
    """The structures of the last finished generation and the selection in them."""

    structures = param.List(default=[], doc="Generated ase.Atoms (ghosts stripped)")
    selected = param.Integer(default=0, bounds=(0, None), doc="Index of the structure shown in 3D")
    analysis = param.ClassSelector(class_=Analysis, default=None, allow_None=True)
    table = param.DataFrame(default=None, allow_None=True)
    device = param.String(default="", doc="Device the last generation ran on")
    notes = param.List(default=[], doc="Caveats core raised about the last request")
    elapsed = param.Number(default=math.nan, doc="Seconds the last generation took")
    relax_report = param.Dict(default=None, allow_None=True, doc="core.relax's report when the structures "
                              "were relaxed (checks before and after, seconds)")

    def clear(self) -> None:
        """Forget the last generation (a new system makes it stale)."""
        self.param.update(structures=[], selected=0, analysis=None, table=None, device="", notes=[],
                          elapsed=math.nan, relax_report=None)

    @property
    def current(self):
        """The selected structure, or None."""
        if not self.structures:
            return None
        return self.structures[min(self.selected, len(self.structures) - 1)]

    def set_shear_modulus(self, index: int, value_gpa: float) -> None:
        """Store a shear modulus (GPa) computed in the background into the table."""
        table = self.table.copy()
        if "shear modulus (GPa)" not in table:
            table["shear modulus (GPa)"] = np.nan
        table.loc[table["#"] == index, "shear modulus (GPa)"] = round(value_gpa, 2)
        self.table = table

    def export(self, backend, which: str = "all") -> bytes:
        """extxyz bytes of all structures or only the selected one (via `core.material`)."""
        frames = self.structures if which == "all" else [self.current]
        frames = [f for f in frames if f is not None]
        if not frames:
            return b""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "structures.extxyz"
            backend.write_extxyz(path, frames)
            return path.read_bytes()
