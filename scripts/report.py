"""Write the benchmark tables into BENCHMARKS.md, README.md and each shipped model's MODEL_CARD.md.

Every figure in those files' generated blocks is read from the results files in
``benchmarks/results/`` (written by the scripts in ``benchmarks/``), so no figure is typed twice.
A generated block sits between ``<!-- begin generated: NAME -->`` and
``<!-- end generated: NAME -->``; the text around it is written by hand and carries no figures.

    .venv/bin/python scripts/report.py           # rewrite the generated blocks
    .venv/bin/python scripts/report.py --check   # exit 1 and name the stale files (a test runs this)

Which results file and which column of it is which shipped model is stated once, in ``STRUCTURE``
and ``INVERSE`` below: a paired run may hold rows of models that are not shipped (replaced models,
candidates), and only the columns named there are shown. A missing ``throughput.json`` is reported
as "not measured". The structure tables' bond-network columns are those `core.metrics.checks`
defines for the system; a results file written before a column existed shows "–" there.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

from core.metrics.checks import cation_share_columns, network_columns

ROOT = Path(__file__).resolve().parents[1]


def forked_shortcut(system: str, parent_step: int, n: int) -> dict:
    """A ``STRUCTURE`` entry of a shipped AMShortcut measured beside the Material SDE it was forked from
    (weights in ``init-sde-step<parent_step>/``, not a shipped model), ``n`` structures per cell."""
    stem = f"structure_{system}"
    return {
        "columns": [
            ("AMShortcut", f"{system}/shortcut", stem, "shortcut"),
            ("Material SDE (the AMShortcut's parent; not shipped)", None, stem, "sde"),
        ],
        "command": f".venv/bin/python benchmarks/structure.py --system {system} --frameworks shortcut,sde \\\n"
                   f"    --checkpoint sde=assets/checkpoints/{system}/shortcut/init-sde-step{parent_step} \\\n"
                   f"    --steps 1,5,10,25,100 --n {n} --threads 1 --out-dir benchmarks/results",
    }


# Table 1 of the paper on our data: (label, shipped model or None, results file stem, column).
# Columns with the same label are one model measured in two runs (same cells and seeds; the
# benchmark is deterministic on the CPU), merged by step count.
STRUCTURE = {
    "a-Si": {
        "columns": [
            ("AMShortcut", "a-Si/shortcut", "structure_a-Si", "shortcut"),
            ("Material SDE", "a-Si/sde", "structure_a-Si", "sde"),
            ("Material ODE", "a-Si/ode", "structure_a-Si", "ode"),
        ],
        "command": ".venv/bin/python benchmarks/structure.py --system a-Si --frameworks shortcut,sde,ode \\\n"
                   "    --steps 1,2,3,4,5,10,25,50,100,250 --n 16 --threads 1 --out-dir benchmarks/results",
    },
    "a-SiO2": forked_shortcut("a-SiO2", parent_step=11500, n=32),
    "MEG": forked_shortcut("MEG", parent_step=12000, n=16),
}

# Tables 2 and 3 of the paper on our data, per system: the shipped all-property AMShortcut and its
# results files (file stem, label suffix).
INVERSE = {
    "a-SiO2": {
        "model": "a-SiO2/shortcut",
        "files": [("inverse_a-SiO2", ""), ("inverse_a-SiO2_w2", ", guidance w = 2"),
                  ("inverse_a-SiO2_w5", ", guidance w = 5")],
        "command": ".venv/bin/python benchmarks/inverse_design.py --steps 10,25 --n 8 --threads 1 --cell 13\n"
                   ".venv/bin/python benchmarks/inverse_design.py --steps 10 --n 8 --threads 1 --cell 13 \\\n"
                   "    --properties shear_modulus --no-control --guidance 2   # and --guidance 5",
    },
    "MEG": {
        "model": "MEG/shortcut",
        "files": [("inverse_MEG", ""), ("inverse_MEG_w1", ", guidance w = 1")],
        "command": ".venv/bin/python benchmarks/inverse_design.py --system MEG --steps 1,5,10,25 --n 3 --targets 3 \\\n"
                   "    --threads 1 --workers 2 --out-dir benchmarks/results\n"
                   ".venv/bin/python benchmarks/inverse_design.py --system MEG --steps 10 --n 3 --targets 3 \\\n"
                   "    --threads 1 --workers 2 --guidance 1 --no-control --tag w1 --out-dir benchmarks/results",
    },
}

# The step counts each model card and the README status quote.
HEADLINE = {"a-Si/shortcut": [1, 5], "a-Si/sde": [10, 250], "a-Si/ode": [10, 25], "a-SiO2/shortcut": [10, 25],
            "MEG/shortcut": [10, 25]}
NAMES = {"a-Si/shortcut": "a-Si AMShortcut", "a-Si/sde": "a-Si Material SDE", "a-Si/ode": "a-Si Material ODE",
         "a-SiO2/shortcut": "a-SiO2 AMShortcut (shear modulus, ring size)",
         "MEG/shortcut": "MEG AMShortcut (Young's modulus, shear modulus, Li concentration)"}
PROPERTIES = {"shear_modulus": ("shear modulus G", "GPa"), "ring_size_mean": ("mean ring size", ""),
              "youngs_modulus": ("Young's modulus E", "GPa"), "li_concentration": ("Li concentration", "%")}

SYSTEM_HEADLINE_PROPERTY = {"a-SiO2": ["shear_modulus"], "MEG": ["youngs_modulus", "shear_modulus", "li_concentration"]}
"""The properties each model card quotes from the inverse-design table."""

BEGIN = "<!-- begin generated: {} -->"
END = "<!-- end generated: {} -->"


# -- reading --------------------------------------------------------------------------------------

def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _step(root: Path, model: str) -> int:
    """Training steps of a shipped model (its config.json)."""
    return int(_json(root / "assets" / "checkpoints" / model / "config.json")["training"]["step"])


def structure_columns(root: Path, system: str) -> list[dict]:
    """One dict per shown model: label, model, {n_s: row}, the files it comes from.

    A column named for a shipped model must have been measured at that model's training step
    (the results file records it), so a retrained model cannot keep its predecessor's figures."""
    results = root / "benchmarks" / "results"
    merged: dict[str, dict] = {}
    for label, model, stem, column in STRUCTURE[system]["columns"]:
        summary = _json(results / f"{stem}.json")["summary"]
        rows = [r for r in _csv(results / f"{stem}.csv") if r["framework"] == column]
        if not rows:
            raise SystemExit(f"{stem}.csv has no rows of column {column!r}")
        if model is not None:
            measured = summary["checkpoints"][column]["training_step"]
            if measured != _step(root, model):
                raise SystemExit(f"{stem}.csv column {column!r} was measured at training step {measured}, "
                                 f"but assets/checkpoints/{model} is at step {_step(root, model)}: rerun the benchmark")
        entry = merged.setdefault(label, {"label": label, "model": model, "rows": {}, "files": [],
                                          "floors": summary["floors"], "n": summary["n_structures_per_point"]})
        entry["files"].append(f"`benchmarks/results/{stem}.csv` ({column})")
        network = [key for key, _, _ in network_columns(system)] + [key for key, _, _ in cation_share_columns(system)]
        for r in rows:
            entry["rows"][int(r["n_s"])] = {k: float(r[k]) for k in ("rdf_rmsd", "adf_rmsd", "seconds_per_structure")}
            entry["rows"][int(r["n_s"])].update({k: float(r[k]) for k in network if r.get(k) not in (None, "")})
    return list(merged.values())


def inverse_rows(root: Path, system: str) -> list[dict]:
    """Every row of the system's INVERSE files, labelled; a file written before sweeps existed swept the
    training range, so its rows get sweep 'training'. 'Data' rows (held-out values) belong to no checkpoint."""
    results = root / "benchmarks" / "results"
    spec = INVERSE[system]
    out = []
    for stem, suffix in spec["files"]:
        summary = _json(results / f"{stem}.json")["summary"]
        steps = {c["model"]: c["training_step"] for c in summary["checkpoints"]}
        for r in _csv(results / f"{stem}.csv"):
            if r["model"] != "Data" and steps[r["model"]] != _step(root, spec["model"]):
                raise SystemExit(f"{stem}.csv was measured at training step {steps[r['model']]}, "
                                 f"but assets/checkpoints/{spec['model']} is at step {_step(root, spec['model'])}")
            out.append({**r, "sweep": r.get("sweep") or "training", "label": r["model"] + suffix,
                        "file": f"{stem}.csv", "scale": summary["scale"], "goals": summary.get("goals")})
    order = list(dict.fromkeys(r["property"] for r in out))
    return sorted(out, key=lambda r: order.index(r["property"]))  # stable: each property's rows together


# -- formatting -----------------------------------------------------------------------------------

def _cell(row: dict | None) -> str:
    if row is None:
        return ""
    return f"{row['rdf_rmsd']:.3f} / {row['adf_rmsd']:.5f} ({row['seconds_per_structure']:.3g} s)"


def _network_cell(row: dict, key: str, factor: float) -> str:
    """One bond-network value (shares in %), "–" when the results file does not hold it."""
    value = row.get(key)
    if value is None or value != value:  # absent, null or NaN
        return "–"
    return f"{value * factor:.1f}" if factor == 100 else f"{value:.3g}"


def _sets_lines(cols: list[dict], columns: list[tuple[str, str, float]]) -> list[str]:
    """A table of per-set values (``columns``: key, label, display factor): the held-out data first,
    then every shown model and step count."""
    held = cols[0]["floors"]["held_out"]
    sets = [("held-out data", "", held)] + [(c["label"], n, row) for c in cols for n, row in sorted(c["rows"].items())]
    lines = ["| set | n_s | " + " | ".join(label for _, label, _ in columns) + " |", "|---|---|" + "---|" * len(columns)]
    for label, n, row in sets:
        cells = [label, str(n)] + [_network_cell(row, k, f) for k, _, f in columns]
        lines.append("|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|")
    return lines


def network_lines(cols: list[dict], system: str) -> list[str]:
    """The bond-network table."""
    held = cols[0]["floors"]["held_out"]
    return [f"Bond network ({system} rules of `core.metrics.checks`; held-out: the {held['n_structures']} held-out "
            "structures of the floors):", "", *_sets_lines(cols, network_columns(system))]


def cation_lines(cols: list[dict], system: str) -> list[str]:
    """The cation-share table (each cation's share of all cations, O per cation) of a system with
    several cation species; nothing when no shown results file holds the shares."""
    shares = cation_share_columns(system)
    rows = [cols[0]["floors"]["held_out"]] + [row for c in cols for row in c["rows"].values()]
    if not shares or not any(row.get(key) is not None for row in rows for key, _, _ in shares):
        return []
    return ["Cation shares (each cation's share of all cations in %, pooled over the set; O atoms per cation):", "",
            *_sets_lines(cols, shares)]


def _sci(x: float) -> str:
    """6.6e-5 rather than 6.6e-05."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _pct(a: float, b: float) -> str:
    return f"{100 * a / b:.2g} %"


def structure_block(root: Path, system: str) -> str:
    cols = structure_columns(root, system)
    steps = sorted({n for c in cols for n in c["rows"]})
    lines = ["```bash", STRUCTURE[system]["command"], "```", "",
             f"RDF / ADF RMSD against the training split's averaged curves ({cols[0]['n']} structures per cell, "
             "each in a cell drawn from the training split; seconds per structure, one CPU thread):", "",
             "| n_s | " + " | ".join(c["label"] for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for n in steps:
        lines.append(f"| {n} | " + " | ".join(_cell(c["rows"].get(n)) for c in cols) + " |")
    fl = cols[0]["floors"]
    ho = fl["held_out"]
    lines += ["", f"Floors: the data's split-half RMSD {fl['rdf_split_half']:.4f} / {_sci(fl['adf_split_half'])}; "
                  f"{ho['n_structures']} held-out structures against the same reference {ho['rdf_rmsd']:.3f} / "
                  f"{ho['adf_rmsd']:.5f} (what a perfect generator scores with this many samples).",
              "", *network_lines(cols, system),
              *(["", *cations] if (cations := cation_lines(cols, system)) else []),
              "", "Results files (column): " + "; ".join(f"{c['label']}: " + ", ".join(c["files"]) for c in cols) + "."]
    if system == "a-Si":
        lines += ["", *claims(cols)]
    return "\n".join(lines)


def claims(cols: list[dict]) -> list[str]:
    """The paper's Table 1 claims, scored for the shipped AMShortcut against the shipped Material SDE."""
    sc = next(c for c in cols if c["model"] == "a-Si/shortcut")["rows"]
    sde = next(c for c in cols if c["model"] == "a-Si/sde")["rows"]
    floors = cols[0]["floors"]
    ref = sde[250]
    yes = {True: "**met**", False: "**not met**"}
    best_n = min((n for n in sc if n <= 5), key=lambda n: sc[n]["rdf_rmsd"])
    best = sc[best_n]["rdf_rmsd"]
    one, five = sc[1], sc[5]
    time1 = one["seconds_per_structure"] / ref["seconds_per_structure"]
    time5 = five["seconds_per_structure"] / ref["seconds_per_structure"]
    split, held = floors["rdf_split_half"], floors["held_out"]["rdf_rmsd"]
    return [
        "The paper's claims, for the shipped AMShortcut against the shipped Material SDE at 250 steps:",
        f"- 1-step ADF RMSD at most the SDE's, in at most 1 % of its time: {one['adf_rmsd']:.5f} against "
        f"{ref['adf_rmsd']:.5f}, in {_pct(time1, 1)} of its time: "
        f"{yes[one['adf_rmsd'] <= ref['adf_rmsd'] and time1 <= 0.01]}.",
        f"- RDF RMSD within 2x the data's split-half floor at 5 steps or fewer: best {best:.3f} ({best_n} steps) "
        f"against {2 * split:.3f}: {yes[best <= 2 * split]}; within 2x the held-out floor "
        f"({2 * held:.3f}): {yes[best <= 2 * held]}.",
        f"- 5-step RDF RMSD at most the SDE's at 250 steps: {five['rdf_rmsd']:.3f} against {ref['rdf_rmsd']:.3f}, "
        f"in {_pct(time5, 1)} of its time: {yes[five['rdf_rmsd'] <= ref['rdf_rmsd']]}.",
    ]


def _headline_inverse(r: dict, unit: str) -> str:
    """'training range, 10 steps: MAE 3.2 %, MAPE –, slope 0.40, mean achieved 5.5 %' (a guided
    row names its weight after the range)."""
    sep = " " if unit else ""
    return (f"{r['sweep']} range{r['label'][len('All'):]}, {r['n_s']} step{'s' if int(r['n_s']) > 1 else ''}: "
            f"MAE {_num(r, 'mae', '.3g', sep + unit)}, MAPE {_num(r, 'mape', '.1f', ' %')}, "
            f"slope {_num(r, 'slope', '.2f')}, mean achieved {_num(r, 'mean_achieved', '.3g', sep + unit)}")


def _num(row: dict | None, key: str, fmt: str, unit: str = "") -> str:
    """A figure of a results row, '–' where the file has no such row or column (an older file)."""
    value = (row or {}).get(key)
    if value in (None, "") or value != value or str(value).lower() == "nan":
        return "–"
    return format(float(value), fmt) + unit


def inverse_block(root: Path, system: str) -> str:
    rows, spec = inverse_rows(root, system), INVERSE[system]
    lines = ["```bash", spec["command"], "```", "",
             f"Scale: {rows[0]['scale']}. \"All\" is the shipped model given one target; the control is the same "
             "model given no target and \"data\" the held-out structures' own values, both scored against the same "
             "targets (how much of a score a model that ignores its target gets). MAE / RMSE / MAPE, the slope of "
             "achieved against target (1 = follows the target, 0 = ignores it) and the mean achieved value; "
             "'–' where a results file predates a column:", "",
             "| property (sweep, target range) | model | n_s | MAE | RMSE | MAPE | slope | control MAE / RMSE / MAPE | "
             "data MAPE | mean achieved |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if r["model"] not in ("None", "Data")):
        name, unit = PROPERTIES.get(r["property"], (r["property"], ""))
        u = f" {unit}" if unit else ""
        same = [c for c in rows if (c["file"], c["property"], c["sweep"], c.get("with", "")) ==
                (r["file"], r["property"], r["sweep"], r.get("with", ""))]
        ctrl = next((c for c in same if c["model"] == "None" and c["n_s"] == r["n_s"]), None) \
            if r["model"] == "All" else None
        data = next((c for c in same if c["model"] == "Data"), None)
        control = "–" if ctrl is None else " / ".join(
            [_num(ctrl, "mae", ".3g", u), _num(ctrl, "rmse", ".3g", u), _num(ctrl, "mape", ".1f", " %")])
        beside = r.get("with", "")
        span = (f"{float(r['target_low']):.3g}{u} given beside {PROPERTIES.get(beside, (beside,))[0]}, "
                f"{r['sweep']} sweep" if beside else f"{r['sweep']}, {float(r['target_low']):.3g}–{float(r['target_high']):.3g}{u}")
        lines.append(f"| {name} ({span}) | "
                     f"{r['label']} | {r['n_s']} | {_num(r, 'mae', '.3g', u)} | {_num(r, 'rmse', '.3g', u)} | "
                     f"{_num(r, 'mape', '.1f', ' %')} | {_num(r, 'slope', '.2f')} | {control} | "
                     f"{_num(data, 'mape', '.1f', ' %')} | {_num(r, 'mean_achieved', '.3g', u)} |")
    goals = [(stem, g) for stem, _ in spec["files"] for g in next(
        (r["goals"] for r in rows if r["file"] == f"{stem}.csv" and r["goals"]), None) or []]
    if goals:
        word = {True: "pass", False: "FAIL", None: "not measured"}
        lines += ["", "The project's goals for these models, checked on the runs above:", ""]
        lines += [f"- {word[g['passed']]}: {PROPERTIES.get(g['property'], (g['property'],))[0]}, {g['sweep']} sweep, "
                  f"{g['steps']} steps, {g['goal']}" + (f": {float(g['value']):.3g}" if g["passed"] is not None else "")
                  + f" (`{stem}.csv`)" for stem, g in goals]
    samples = [f"`{s}_samples.csv{ext}`" for s, _ in spec["files"] for ext in ("", ".gz")
               if (root / "benchmarks" / "results" / f"{s}_samples.csv{ext}").exists()]
    lines += ["", "Results files: " + "; ".join(f"`benchmarks/results/{s}.csv`" for s, _ in spec["files"])
              + (f" (per structure: {', '.join(samples)})" if samples else "") + "."]
    return "\n".join(lines)


def metrics_block(root: Path) -> str:
    data = _json(root / "benchmarks" / "results" / "metrics.json")
    return "\n".join(["```", "$ .venv/bin/python benchmarks/metrics.py", *data["table"], "```", "",
                      "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items())
                      + ". Results file: `benchmarks/results/metrics.json`."])


# The throughput table's columns, when its rows carry them (benchmarks/throughput.py); other rows
# are shown with all their keys.
THROUGHPUT_COLUMNS = [("system", "system"), ("task", "task"), ("threads", "threads"),
                      ("plain_precision", "plain: precision"),
                      ("plain_structures_per_core_s", "plain: structures per core-second"),
                      ("fast_precision", "fast: precision"),
                      ("fast_structures_per_core_s", "fast: structures per core-second"),
                      ("speedup", "speed-up"),
                      ("compiled_structures_per_core_s", "compiled: structures per core-second"),
                      ("speedup_compiled", "speed-up"),
                      ("fast_bf16_structures_per_core_s", "fast in bfloat16: structures per core-second"),
                      ("speedup_bf16", "speed-up"), ("plain_s_per_call", "plain: seconds per step or call"),
                      ("plain_system_share", "plain: kernel share of CPU time"),
                      ("fast_system_share", "fast: kernel share of CPU time")]


def throughput_block(root: Path) -> str:
    """The throughput run's table; its results file is optional."""
    path = root / "benchmarks" / "results" / "throughput.json"
    if not path.exists():
        return "Not measured: `benchmarks/results/throughput.json` does not exist."
    data = _json(path)
    rows = data.get("rows") if isinstance(data.get("rows"), list) else []
    lines = []
    if data.get("command"):
        lines += ["```bash", str(data["command"]), "```", ""]
    meta = data.get("meta") or {}
    if meta:
        lines += ["Run: " + ", ".join(f"{k} {_fmt(v)}" for k, v in meta.items() if not isinstance(v, (dict, list)))
                  + ".", ""]
    if rows:
        present = {k for r in rows for k in r}
        cols = ([c for c in THROUGHPUT_COLUMNS if c[0] in present]
                if all(c[0] in present for c in THROUGHPUT_COLUMNS[:3]) else [(k, k) for k in dict.fromkeys(
                    k for r in rows for k in r)])
        lines += ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
        for r in rows:
            lines.append("| " + " | ".join(_fmt(r.get(k, "")) for k, _ in cols) + " |")
    elif isinstance(data.get("table"), list):
        lines += [str(line) for line in data["table"]]
    else:
        lines.append("`benchmarks/results/throughput.json` holds no `rows`.")
    lines += ["", "Results file: `benchmarks/results/throughput.json`."]
    return "\n".join(lines)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def headline_rows(root: Path) -> dict[str, dict]:
    """{model: {n_s: row}} of every shipped model in the structure tables."""
    out: dict[str, dict] = {}
    for system in STRUCTURE:
        for c in structure_columns(root, system):
            if c["model"] is not None:
                out[c["model"]] = c["rows"]
    return out


def _acceptance(root: Path, model: str) -> dict:
    return _json(root / "assets" / "checkpoints" / model / "acceptance.json")


def status_block(root: Path) -> str:
    rows = headline_rows(root)
    lines = ["| shipped model | training steps | RDF / ADF RMSD (seconds per structure, one CPU thread) | "
             "CI limit (RDF RMSD) |", "|---|---|---|---|"]
    for model in HEADLINE:
        acc = _acceptance(root, model)
        cells = "; ".join(f"{n} step{'s' if n > 1 else ''}: {_cell(rows[model][n])}" for n in HEADLINE[model])
        lines.append(f"| [{NAMES[model]}](assets/checkpoints/{model}/MODEL_CARD.md) | {_step(root, model):,} | "
                     f"{cells} | {acc['max_rdf_rmsd']} at {acc['steps']} step{'s' if acc['steps'] > 1 else ''} |")
    return "\n".join(lines)


def card_block(root: Path, model: str) -> str:
    system = model.split("/")[0]
    col = next(c for c in structure_columns(root, system) if c["model"] == model)
    fl = col["floors"]
    acc = _acceptance(root, model)
    lines = [f"`benchmarks/structure.py`, {col['n']} structures per step count, each in a cell drawn from the "
             f"training split (BENCHMARKS.md, \"Structure: {system}\"):", "",
             "| steps | RDF RMSD | ADF RMSD | seconds per structure (one CPU thread) |", "|---|---|---|---|"]
    for n, r in sorted(col["rows"].items()):
        lines.append(f"| {n} | {r['rdf_rmsd']:.3f} | {r['adf_rmsd']:.5f} | {r['seconds_per_structure']:.3g} |")
    lines += ["", f"Data floors: split-half {fl['rdf_split_half']:.4f} / {_sci(fl['adf_split_half'])}; "
                  f"{fl['held_out']['n_structures']} held-out structures {fl['held_out']['rdf_rmsd']:.3f} / "
                  f"{fl['held_out']['adf_rmsd']:.5f}. CI acceptance (`acceptance.json`): RDF RMSD below "
                  f"{acc['max_rdf_rmsd']} at {acc['steps']} step{'s' if acc['steps'] > 1 else ''} "
                  f"({acc['n_samples']} samples, seed {acc['seed']})."]
    if system in INVERSE and model == INVERSE[system]["model"]:
        for prop in SYSTEM_HEADLINE_PROPERTY[system]:
            # the model given this one target (guided rows too), not a target given beside another's sweep
            g = [r for r in inverse_rows(root, system) if r["label"].startswith("All") and r["property"] == prop
                 and not r.get("with") and int(r["n_s"]) in HEADLINE[model]]
            name, unit = PROPERTIES[prop]
            lines += ["", f"Inverse design (BENCHMARKS.md, \"Inverse design: {system}\"), conditioned on the {name}: "
                          + "; ".join(_headline_inverse(r, unit) for r in g) + "."]
    return "\n".join(lines)


# -- writing --------------------------------------------------------------------------------------

def blocks(root: Path) -> dict[Path, dict[str, str]]:
    """{file: {block name: generated text}}."""
    out: dict[Path, dict[str, str]] = {
        root / "BENCHMARKS.md": {
            "structure-a-Si": structure_block(root, "a-Si"),
            "structure-a-SiO2": structure_block(root, "a-SiO2"),
            "structure-MEG": structure_block(root, "MEG"),
            **{f"inverse-{system}": inverse_block(root, system) for system in INVERSE},
            "metrics": metrics_block(root),
            "throughput": throughput_block(root),
        },
        root / "README.md": {"status": status_block(root)},
    }
    for model in HEADLINE:
        out[root / "assets" / "checkpoints" / model / "MODEL_CARD.md"] = {"metrics": card_block(root, model)}
    return out


def fill(text: str, name: str, body: str, path: Path) -> str:
    pattern = re.compile(re.escape(BEGIN.format(name)) + r"\n.*?" + re.escape(END.format(name)), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no generated block {name!r} (add the lines {BEGIN.format(name)} and "
                         f"{END.format(name)})")
    return pattern.sub(lambda _: f"{BEGIN.format(name)}\n{body}\n{END.format(name)}", text)


def render(root: Path) -> dict[Path, tuple[str, str]]:
    """{file: (current text, up-to-date text)}."""
    out = {}
    for path, named in blocks(root).items():
        text = path.read_text()
        new = text
        for name, body in named.items():
            new = fill(new, name, body, path)
        out[path] = (text, new)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is not up to date")
    p.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this script's)")
    args = p.parse_args(argv)
    stale = []
    for path, (text, new) in render(args.root).items():
        if text != new:
            stale.append(path.relative_to(args.root))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print("not up to date with benchmarks/results (run scripts/report.py): "
              + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
