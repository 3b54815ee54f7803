"""RDF and ADF overlays (HoloViews): generated set vs training-set reference, RMSD in the title."""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401 - registers the Bokeh backend for .opts
import numpy as np

from studio.results import Analysis

GEN_COLOR, REF_COLOR = "#d62728", "#1f77b4"
PLOT_WIDTH = 520  # px


def _ylim(*curves):
    """(0, 1.08 x the highest value): set explicitly, since a plot updated in place keeps the
    empty plot's 0–1 range (P(θ) peaks near 0.02)."""
    top = max((float(np.nanmax(c)) for c in curves if c is not None and len(c)), default=1.0)
    return (0.0, 1.08 * top if top > 0 else 1.0)


def _overlay(x, gen, ref_x, ref, rmsd, xlabel, ylabel, name, n_ref=None, floor=None):
    curves = []
    if ref is not None and ref_x is not None:
        label = "training set" if n_ref is None else f"training set ({int(n_ref)})"
        curves.append(hv.Curve((ref_x, ref), xlabel, ylabel, label=label).opts(color=REF_COLOR))
    if gen is not None:
        curves.append(hv.Curve((x, gen), xlabel, ylabel, label="generated").opts(color=GEN_COLOR))
    title = name if rmsd is None else f"{name}  RMSD {rmsd:.3g}"
    if rmsd is not None and floor is not None:
        title += f"  (training vs itself {floor:.2g})"  # the noise floor of this comparison
    if not curves:
        curves = [hv.Curve([], xlabel, ylabel)]
        title = f"{name}: generate to see it"
    # the legend sits outside the axes, right of them: inside it covered the first RDF peak and the ADF maximum
    return hv.Overlay(curves).opts(title=title, legend_position="right", width=PLOT_WIDTH,
                                  height=260, show_grid=True, framewise=True, ylim=_ylim(gen, ref))


def rdf_plot(analysis: Analysis | None) -> hv.Overlay:
    """g(r) of generated vs training set (r in Å)."""
    a = analysis or Analysis()
    return _overlay(a.r, a.rdf, a.ref.get("r"), a.ref.get("rdf"), a.rmsd.get("rdf"),
                    "r (Å)", "g(r)", "RDF", a.ref.get("n"), a.ref.get("rdf_split_half_rmsd"))


def adf_plot(analysis: Analysis | None) -> hv.Overlay:
    """Bond-angle distribution P(θ) (per degree) of generated vs training set."""
    a = analysis or Analysis()
    return _overlay(a.theta, a.adf, a.ref.get("theta"), a.ref.get("adf"), a.rmsd.get("adf"),
                    "θ (degrees)", "P(θ) (1/degree)", "ADF", a.ref.get("n"), a.ref.get("adf_split_half_rmsd"))


RUN_COLORS = ("#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
"""One colour per kept run in the compare view (the first is the generated colour above)."""


def _compare(runs, x_key, y_key, xlabel, ylabel, name):
    curves = []
    ref = next((r.analysis.ref for r in runs if r.analysis.ref.get(y_key) is not None), {})
    if ref:
        n = ref.get("n")
        label = "training set" if n is None else f"training set ({int(n)})"
        curves.append(hv.Curve((ref[x_key], ref[y_key]), xlabel, ylabel, label=label).opts(color=REF_COLOR,
                                                                                            line_width=3))
    for run, color in zip(runs, RUN_COLORS):
        a = run.analysis
        if getattr(a, y_key) is not None:
            rmsd = a.rmsd.get(y_key)
            label = run.label if rmsd is None else f"{run.label} ({rmsd:.2g})"
            curves.append(hv.Curve((getattr(a, x_key), getattr(a, y_key)), xlabel, ylabel,
                                   label=label).opts(color=color))
    title = f"{name} of each kept run (RMSD to training)" if runs else f"{name}: generate to compare runs"
    if not curves:
        curves = [hv.Curve([], xlabel, ylabel)]
    ylim = _ylim(ref.get(y_key), *[getattr(r.analysis, y_key) for r in runs])
    return hv.Overlay(curves).opts(title=title, legend_position="right", width=COMPARE_WIDTH, height=300,
                                  show_grid=True, framewise=True, ylim=ylim)


COMPARE_WIDTH = 860  # px: the legend, outside the axes, names each run


def compare_rdf_plot(runs) -> hv.Overlay:
    """g(r) of every kept run over the training set's."""
    return _compare(runs, "r", "rdf", "r (Å)", "g(r)", "RDF")


def compare_adf_plot(runs) -> hv.Overlay:
    """P(θ) of every kept run over the training set's."""
    return _compare(runs, "theta", "adf", "θ (degrees)", "P(θ) (1/degree)", "ADF")


def coordination_plot(analysis: Analysis | None) -> hv.Bars:
    """First-shell coordination histogram, generated beside training (fraction of centre atoms)."""
    a = analysis or Analysis()
    rows = []
    for name, checks in (("training set", a.ref_checks), ("generated", a.checks)):
        if checks and "coordination" in checks:
            rows += [(str(k), name, float(v)) for k, v in zip(checks["counts"], checks["coordination"])]
    rule = (a.checks or a.ref_checks).get("rule", "")
    title = f"Coordination: {rule}" if rows else "Coordination: generate to see it"
    bars = hv.Bars(rows, ["neighbours", "set"], "fraction of atoms")
    return bars.opts(title=title, width=PLOT_WIDTH, height=260, show_grid=True, legend_position="right",
                     color=hv.dim("set").categorize({"training set": REF_COLOR, "generated": GEN_COLOR}),
                     multi_level=False, show_legend=True, framewise=True)
