"""Compare view: several generations kept side by side, their curves overlaid, RMSD and seconds in one table.

Every finished generation of a session becomes a `Run` here (the same framework, steps, grid
and targets replace the older one). `PAPER_PLAN` is the comparison of the paper's Table 1
(Sec. 5.4): AMShortcut at 1 and 5 steps against the Material SDE, the best baseline, at 250.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import param

from core.catalog import FRAMEWORK_LABELS
from studio.results import Analysis

MAX_RUNS = 6
"""Runs kept; the oldest goes first (more overlaid curves stop being readable)."""
PAPER_PLAN = (("shortcut", 1), ("shortcut", 5), ("sde", 250))
"""(framework, steps) of the paper's point: AMShortcut's 1-step ADF RMSD is on par with the
Material SDE's at 250 steps, and its 5-step RDF RMSD lower, at 1-3 % of the time (paper, Sec. 5.4)."""


def run_label(framework: str, steps: int, grid_power: float = 1.0, targets: dict | None = None,
              guidance: float = 0.0) -> str:
    """'AMShortcut · 5 steps', plus the grid, conditioning targets and guidance when they are not the
    defaults (guidance only acts on given targets)."""
    text = f"{FRAMEWORK_LABELS.get(framework, framework)} · {steps} step{'s' if steps != 1 else ''}"
    if grid_power != 1.0:
        text += f" · t^{grid_power:g}"
    for name, value in (targets or {}).items():
        text += f" · {name}={value:g}"
    if targets and guidance:
        text += f" · guidance w={guidance:g}"
    return text


@dataclass
class Run:
    """One kept generation: what was asked, how long it took, and its measured curves."""

    label: str
    system: str
    framework: str
    steps: int
    n_structures: int
    seconds: float
    device: str
    analysis: Analysis  # curves, RMSD and structure checks


def paper_plan(frameworks) -> list[tuple[str, int]]:
    """`PAPER_PLAN` when every framework it needs has a checkpoint; ``UserError`` naming what is missing."""
    from core.errors import UserError

    missing = sorted({fw for fw, _ in PAPER_PLAN} - set(frameworks))
    if missing:
        names = " and ".join(FRAMEWORK_LABELS.get(f, f) for f in missing)
        raise UserError(f"the paper's comparison needs a {names} checkpoint for this system")
    return list(PAPER_PLAN)


class Comparison(param.Parameterized):
    """The kept runs of one session (all of one system: a system switch clears them)."""

    runs = param.List(default=[], item_type=Run, doc="Kept generations, oldest first")

    def add(self, *runs: Run) -> None:
        """Keep `runs` (one update); an older run with the same label is replaced, at most `MAX_RUNS` stay."""
        kept = list(self.runs)
        for run in runs:
            kept = [r for r in kept if r.label != run.label] + [run]
        self.runs = kept[-MAX_RUNS:]

    def clear(self, *_) -> None:
        self.runs = []

    def table(self) -> pd.DataFrame | None:
        """One row per run: structures, seconds (and the share of the slowest run's), RMSDs, checks."""
        if not self.runs:
            return None
        slowest = max((r.seconds for r in self.runs if math.isfinite(r.seconds)), default=math.nan)
        rows = []
        ref = next((r.analysis for r in self.runs if r.analysis.ref_checks), None)
        if ref is not None:  # the training structures' checks: what every run should match
            rows.append({"run": "training set", "structures": ref.ref_checks.get("n", math.nan),
                         **Analysis(checks=ref.ref_checks).summary()})
        for r in self.runs:
            row = {"run": r.label, "structures": r.n_structures, "seconds": round(r.seconds, 2),
                   "% of slowest": round(100 * r.seconds / slowest, 1) if slowest > 0 else math.nan,
                   "RDF RMSD": _rounded(r.analysis.rmsd.get("rdf"), 4),
                   "ADF RMSD": _rounded(r.analysis.rmsd.get("adf"), 6)}
            row.update(r.analysis.summary())
            rows.append(row)
        table = pd.DataFrame(rows)
        first = [c for c in ("run", "structures", "seconds", "% of slowest", "RDF RMSD", "ADF RMSD") if c in table]
        return table[first + [c for c in table.columns if c not in first]]


def _rounded(value, digits):
    return math.nan if value is None else round(float(value), digits)
