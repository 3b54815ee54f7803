"""Inverse-design view: a sweep of property targets, and what the generated structures achieve.

The sweep asks for `n_targets` evenly spaced targets of one conditioning property, generates
`per_target` structures at each (the sidebar's steps, cell and seed) and measures the property
on every structure in the background (paper, Sec. 5.5 and App. B.7). Points on the identity
line are hits; the shaded band is the training data's range, outside it the model extrapolates.
The table gives each target's structures, how many could be measured and what they achieved;
the scores (MAE, RMSE, MAPE, slope of achieved against target) come from `core.metrics`.
"""

from __future__ import annotations

import math

import holoviews as hv
import numpy as np
import pandas as pd
import param

from studio.plots import GEN_COLOR, PLOT_WIDTH, REF_COLOR

MAX_TARGETS = 9
MAX_PER_TARGET = 8


class InverseSweep(param.Parameterized):
    """The sweep's request (property, target range, counts) and its measured points."""

    prop = param.Selector(default=None, objects=[], allow_None=True, doc="Conditioning property to sweep")
    low = param.Number(default=0.0, allow_None=True, doc="First target (dataset units)")
    high = param.Number(default=1.0, allow_None=True, doc="Last target (dataset units)")
    n_targets = param.Integer(default=3, bounds=(2, MAX_TARGETS), allow_None=True, doc="Targets in the sweep")
    per_target = param.Integer(default=2, bounds=(1, MAX_PER_TARGET), allow_None=True,
                               doc="Structures generated at each target")
    points = param.DataFrame(default=None, allow_None=True, doc="One row per structure: target, achieved")
    scores = param.Dict(default={}, doc="MAE, RMSE, MAPE (%) and slope of the last sweep")
    training = param.Tuple(default=(math.nan, math.nan), length=2, doc="Training range of the property")

    def set_targets(self, targets) -> None:
        """Offer the checkpoint's conditioning properties (`PropertyTarget`s); starts on the first one."""
        self._ranges = {t.name: (t.low, t.high) for t in targets}
        self.param.prop.objects = list(self._ranges)
        self.prop = next(iter(self._ranges), None)
        self._on_prop()

    @param.depends("prop", watch=True)
    def _on_prop(self):
        low, high = getattr(self, "_ranges", {}).get(self.prop, (math.nan, math.nan))
        self.training = (low, high)
        if math.isfinite(low) and math.isfinite(high):
            self.param.update(low=float(f"{low:.3g}"), high=float(f"{high:.3g}"))
        self.clear()

    def clear(self) -> None:
        self.param.update(points=None, scores={})

    def table(self) -> pd.DataFrame | None:
        """One row per target: structures, how many were measured, mean and spread of what they achieved."""
        if self.points is None:
            return None
        name = self.prop or "property"
        groups = self.points.groupby("target", sort=True)["achieved"]
        return pd.DataFrame({f"target {name}": list(groups.groups),
                             "structures": groups.size().to_numpy(),
                             "measured": groups.count().to_numpy(),
                             "mean achieved": groups.mean().round(4).to_numpy(),
                             "std": groups.std(ddof=0).round(4).to_numpy()})

    def targets(self) -> np.ndarray:
        return np.linspace(float(self.low), float(self.high), int(self.n_targets))

    def errors(self) -> list[str]:
        out = []
        if self.prop is None:
            out.append("this checkpoint has no conditioning property to sweep")
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is None or not math.isfinite(value):
                out.append(f"the {'first' if name == 'low' else 'last'} target is not a number")
        if self.n_targets is None or self.per_target is None:
            out.append("give the number of targets and of structures per target")
        return out

    def plot(self, *_) -> hv.Overlay:
        """Achieved vs target: identity line, training range shaded, MAE / MAPE in the title."""
        name = self.prop or "property"
        lo, hi = float(self.low or 0), float(self.high or 1)
        layers = []
        t_lo, t_hi = self.training
        if math.isfinite(t_lo) and math.isfinite(t_hi):
            layers.append(hv.VSpan(t_lo, t_hi, label="training range").opts(color=REF_COLOR, alpha=0.12))
        pts = self.points
        values = [lo, hi] + ([] if pts is None else list(pts["achieved"].dropna()))
        a, b = min(values), max(values)
        pad = 0.05 * (b - a or 1.0)
        layers.append(hv.Curve([(a - pad, a - pad), (b + pad, b + pad)], f"target {name}", f"achieved {name}",
                               label="achieved = target").opts(color="black", line_dash="dashed"))
        if pts is not None and len(pts):
            layers.append(hv.Scatter(pts, "target", "achieved", label="generated").opts(
                color=GEN_COLOR, size=8, alpha=0.8))
        title = f"Inverse design: {name}"
        if self.scores:
            title += "  " + ", ".join(f"{k} {v:.3g}" for k, v in self.scores.items() if k != "RMSE")  # table has all
        elif pts is None:
            title += ": run a sweep to see it"
        return hv.Overlay(layers).opts(title=title, width=PLOT_WIDTH + 140, height=360, show_grid=True,
                                       legend_position="right", xlabel=f"target {name}", ylabel=f"achieved {name}",
                                       framewise=True)


def sweep_points(targets, achieved) -> pd.DataFrame:
    """A points table from parallel lists (one entry per structure)."""
    return pd.DataFrame({"target": np.asarray(targets, dtype=float), "achieved": np.asarray(achieved, dtype=float)})
