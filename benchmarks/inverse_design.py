"""The paper's Table 2 protocol (Sec. 5.5) scaled to a CPU: inverse design by partial conditioning.

One model trained on all its properties ("All") is given ONE property at a time, the others
left free (flexible property embedding). Each property is swept over
- the training range ("training"): `--targets` evenly spaced targets from the checkpoint's
  training min to max (or, `--training-targets quantiles`, the 5–95 % quantiles of the training
  split's values), and
- the paper's range ("paper"): the per-system table `PAPER_SWEEPS` (a-SiO2: G 10–50 GPa, mean
  ring size 4–6 Si; MEG: E 20–160 GPa with 15 % Li given, G 10–70 GPa), `--range NAME=LOW:HIGH`
  overriding or adding one,
with `--n` structures per target, for every step count n_s (default 1, 5, 10, 25 as Table 2).
Structure j of every target is generated in the cell of held-out (val) structure j with seed
`--seed` + j, so targets differ only in the condition (common random numbers: the slope of
achieved against target is not blurred by cell-to-cell noise).

Each structure's property is computed once with `core.properties` (G: Tersoff Si–O, L-BFGS
relaxation, ±0.02 shear strains, GPa; ring size: Si per ring) and reused wherever the same
structure is scored. Per (model, property, sweep, n_s): MAE, RMSE, MAPE (%) and the
least-squares slope of achieved against target (1 = follows the target, 0 = ignores it).
Structures whose property cannot be computed are counted as missing, never dropped silently.

Beside every row, with the same targets:
- control ("None"): the same model with nothing given (only a sweep's fixed conditions), structure
  j generated once per n_s and scored against every target; it ignores the target, so its slope
  is 0 by construction and shown as n/a;
- data: the stored property values of the held-out structures whose cells are used, i.e. what a
  perfect generator that ignores the target would score.
A property given beside a sweep at a fixed value (MEG: 15 % Li with every E target, the paper's Table 3
condition) is scored too, against that value, with the model given nothing as its control.
The output ends with a pass/fail line per goal in `GOALS` (targets the project set, not results).
Optional `--target-checkpoint`s, each trained on one property alone, give the paper's
"(All) vs (Target)" comparison.

    .venv/bin/python benchmarks/inverse_design.py --threads 1 --out-dir benchmarks/results
    .venv/bin/python benchmarks/inverse_design.py --sweep training --targets 3 --n 4 --steps 10
    .venv/bin/python benchmarks/inverse_design.py --system MEG --workers 2   # elastic constants on 2 cores

Writes inverse_<system>[_<tag>].{csv,json,png} and _samples.csv.gz (one line per structure and
property) to --out-dir and prints one markdown table per property. The default directory is outside
the repository (``core.benchmarking.default_results_dir``); a result that BENCHMARKS.md reports is
recorded with ``--out-dir benchmarks/results``.
"""

from __future__ import annotations

import argparse
import gzip
import math
import multiprocessing
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from core import benchmarking as bench
from core.errors import UserError

PAPER_SWEEPS = {
    "a-SiO2": {"shear_modulus": (10.0, 50.0), "ring_size_mean": (4.0, 6.0)},
    "MEG": {"youngs_modulus": (20.0, 160.0, {"li_concentration": 15.0}), "shear_modulus": (10.0, 70.0)},
}
"""The paper's target sweeps per system: property -> (low, high[, properties given beside it])."""

UNITS = {"shear_modulus": "GPa", "youngs_modulus": "GPa", "ring_size_mean": "Si/ring", "li_concentration": "%"}

GOALS = {
    "a-SiO2": {
        "shear_modulus": {"steps": 10, "slope": 0.5, "mape": 15.0, "control": 0.5},
        "ring_size_mean": {"steps": 10, "mape": 4.0, "control": 1.0},
    },
}
"""The project's targets per system and property, at `steps` sampling steps: slope >= `slope` over the
training sweep; MAPE <= `mape` % and below `control` x the control's MAPE on every sweep."""
DEFAULT_GOAL = {"steps": 10, "slope": 0.5, "control": 1.0}
"""Goal of a property `GOALS` does not name: it follows its target and beats the control."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--system", default="a-SiO2")
    p.add_argument("--checkpoint", default=None,
                   help="the all-property model (default the shipped assets/checkpoints/<system>/shortcut)")
    p.add_argument("--target-checkpoint", action="append", default=[],
                   help="a model trained on one property alone, PATH or PROPERTY=PATH (repeatable)")
    p.add_argument("--data", default=None,
                   help="dataset directory for the held-out cells and values (default assets/data/<system>)")
    p.add_argument("--properties", default="", help="properties to condition on, one at a time (default all "
                                                    "the model's)")
    p.add_argument("--sweep", choices=("training", "paper", "both"), default="both",
                   help="target ranges: the model's training range, the paper's (PAPER_SWEEPS), or both (default)")
    p.add_argument("--targets", type=int, default=5, help="targets per sweep (default 5)")
    p.add_argument("--training-targets", choices=("minmax", "quantiles"), default="minmax",
                   help="training sweep from the training min to max (default) or over the 5-95 %% quantiles "
                        "of the training split's values")
    p.add_argument("--range", action="append", default=[],
                   help="paper sweep NAME=LOW:HIGH, overriding or adding to the system's (repeatable)")
    p.add_argument("--no-control", action="store_true", help="skip the no-target control ('None')")
    p.add_argument("--steps", default="1,5,10,25", help="step counts n_s (default 1,5,10,25; paper also 50,100,250)")
    p.add_argument("--grid-power", type=float, default=1.0,
                   help="sampling grid t_k = (1 - k/n_s)^P for every model (default 1, uniform, the paper's)")
    p.add_argument("--guidance", type=float, default=0.0,
                   help="classifier-free guidance weight w for every conditioned model (default 0, none, the "
                        "paper's; core.model.GuidedDenoiser)")
    p.add_argument("--n", type=int, default=32, help="structures per target (default 32; paper 2,000 per sweep)")
    p.add_argument("--cell", default="held-out",
                   help="'held-out' (default: structure j in the cell of held-out structure j), 'training' "
                        "(the model's training cell), or a cubic edge / 'a,b,c' in Å")
    p.add_argument("--rho-max", type=float, default=0.0, help="atoms/Å^3 incl. ghosts (0 = the model's value)")
    p.add_argument("--fmax", type=float, default=0.05, help="relaxation force tolerance for moduli, eV/Å (paper 0.05)")
    p.add_argument("--relax-steps", type=int, default=None,
                   help="max steps per relaxation (default the data's protocol, "
                        "core.properties.elastic.protocol_steps: a-SiO2 1500 L-BFGS, the paper's; MEG 500 FIRE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1,
                   help="processes measuring the properties (elastic constants dominate a run): all structures "
                        "are generated first, then measured in parallel (default 1, in this process)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="results directory (default $AMSHORTCUT_RESULTS or ~/.cache/amshortcut/benchmarks; "
                        "benchmarks/results to record a result in the repository)")
    p.add_argument("--tag", default="")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.n < 1:
        raise UserError("--n must be at least 1")
    if args.targets < 2:
        raise UserError("--targets must be at least 2 (a slope needs two targets)")
    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    args.out_dir = args.out_dir or bench.default_results_dir()
    args.command = "benchmarks/inverse_design.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    return args


# ----------------------------------------------------------------------------- inputs


def paper_sweeps(system: str, items) -> dict[str, tuple[float, float, dict]]:
    """{property: (low, high, given)}: the system's `PAPER_SWEEPS`, overridden by NAME=LOW:HIGH items."""
    out = {n: (float(s[0]), float(s[1]), dict(s[2]) if len(s) > 2 else {})
           for n, s in PAPER_SWEEPS.get(system, {}).items()}
    for item in items:
        name, _, span = item.partition("=")
        try:
            low, high = (float(x) for x in span.split(":"))
        except ValueError:
            raise UserError(f"--range expects NAME=LOW:HIGH, got {item!r}") from None
        out[name.strip()] = (low, high, out.get(name.strip(), (0, 0, {}))[2])
    return out


def sweeps(names, args, stats, train_values) -> tuple[list[dict], list[str]]:
    """The sweeps to run: [{property, sweep, low, high, targets, given}], training first.
    A property with no range for a sweep is left out of it and named in the result's notes."""
    out, notes = [], []
    paper = paper_sweeps(args.system, args.range)
    for name in names:
        if args.sweep in ("training", "both"):
            if args.training_targets == "quantiles" and len(train_values.get(name, [])):
                targets = np.quantile(train_values[name], np.linspace(0.05, 0.95, args.targets))
            elif name in stats and "min" in stats[name]:
                targets = np.linspace(float(stats[name]["min"]), float(stats[name]["max"]), args.targets)
            else:
                targets = None
                notes.append(f"no training range recorded for {name}")
            if targets is not None:
                out.append({"property": name, "sweep": "training", "targets": [float(t) for t in targets],
                            "given": {}})
        if args.sweep in ("paper", "both"):
            if name in paper:
                low, high, given = paper[name]
                out.append({"property": name, "sweep": "paper", "given": given,
                            "targets": [float(t) for t in np.linspace(low, high, args.targets)]})
            else:
                notes.append(f"no paper sweep for {name} on {args.system} (give --range {name}=LOW:HIGH)")
    for s in out:
        s["low"], s["high"] = min(s["targets"]), max(s["targets"])
    if not out:
        raise UserError("nothing to sweep: " + "; ".join(notes))
    return sorted(out, key=lambda s: (names.index(s["property"]), s["sweep"] != "training")), notes


def load_models(args, names) -> list[tuple[str, object, list[str]]]:
    """[(label, Checkpoint, properties it is benchmarked on)]: 'All' first, then 'Target' models."""
    from core.catalog import shipped_checkpoint
    from core.checkpoint import load_checkpoint

    if args.checkpoint:
        path = Path(args.checkpoint)
    else:
        try:
            path = shipped_checkpoint(args.system, "shortcut")
        except UserError as exc:
            raise UserError(f"inverse design needs an {args.system} checkpoint conditioned on properties: "
                            f"{exc}") from None
    model = load_checkpoint(path)
    names = names or list(model.property_names)
    have = [n for n in names if n in model.property_names]
    if not have:
        raise UserError(f"{path} is conditioned on {model.property_names or 'nothing'}, none of {names}")
    out = [("All", model, have)]
    for item in args.target_checkpoint:
        prop, sep, p = item.partition("=")
        target = load_checkpoint(p if sep else prop)
        props = [prop] if sep else [n for n in have if n in target.property_names]
        if not props or any(n not in target.property_names for n in props):
            raise UserError(f"target checkpoint {item} is conditioned on {target.property_names}, not on {have}")
        out.append(("Target", target, props))
    return out


def held_out(args, n: int) -> tuple[list, str]:
    """n held-out (val) structures drawn with --seed (repeated when the split has fewer), and the
    dataset directory; [] when the dataset has no val split or is absent."""
    from core.catalog import data_dir
    from core.datasets import load_dataset

    data = Path(args.data) if args.data else data_dir(args.system)
    try:
        pool = load_dataset(data, split="val")
    except (FileNotFoundError, UserError):
        pool = []
    if not pool:
        if args.cell.strip().lower() == "held-out":
            raise UserError(f"{data}: no held-out (val) structures for the cells; give --data or --cell")
        return [], _shown(data)
    pick = np.random.default_rng(args.seed).choice(len(pool), size=n, replace=len(pool) < n)
    return [pool[i] for i in pick], _shown(data)


def _shown(path: Path) -> str:
    """A path as the results print it: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def training_values(args, names) -> dict[str, np.ndarray]:
    """The training split's stored values per property (only for --training-targets quantiles)."""
    if args.training_targets != "quantiles":
        return {}
    from core.catalog import data_dir
    from core.datasets import load_dataset

    train = load_dataset(Path(args.data) if args.data else data_dir(args.system), split="train")
    return {n: np.array([float(a.info[n]) for a in train if n in a.info]) for n in names}


def cell_of(text: str, model, held: list, j: int):
    """Cell of structure j: the held-out structure's, the checkpoint's training cell, or Å."""
    key = text.strip().lower()
    if key == "held-out":
        return np.asarray(held[j].cell[:], dtype=float)
    if key == "training":
        cell = model.training.get("cell")
        if cell is None:
            raise UserError("this checkpoint records no training cell; give --cell in Å or 'held-out'")
        return np.asarray(cell, dtype=float)
    try:
        lengths = [float(x) for x in text.split(",")]
    except ValueError:
        raise UserError(f"--cell expects 'held-out', 'training' or Å ('a,b,c'), got {text!r}") from None
    return lengths[0] if len(lengths) == 1 else lengths


# ----------------------------------------------------------------------------- the run


class Structures:
    """Generated structures and their measured properties, each made and measured once.

    A structure is named by (model label, n_s, condition, j): seed `seed + j` and cell j, so the
    same name is the same structure wherever it is scored."""

    def __init__(self, args, held, bar):
        self.args, self.held, self.bar, self.store = args, held, bar, {}
        self.options = {"fmax": args.fmax, "steps": args.relax_steps}

    def generated(self, label, model, n_s, condition: dict, j: int) -> dict:
        """The entry of one structure, generated on first use."""
        key = (label, n_s, tuple(sorted(condition.items())), j)
        entry = self.store.get(key)
        if entry is None:
            a = self.args
            (atoms,), dt = bench.timed_generate(model, 1, n_s, cell_of(a.cell, model, self.held, j), condition,
                                                  seed=a.seed + j, device=a.device, rho_max=a.rho_max or None,
                                                  grid_power=a.grid_power, guidance=a.guidance if condition else 0.0)
            entry = self.store[key] = {"atoms": atoms, "gen_s": dt, "values": {}, "prop_s": {}}
        return entry

    def get(self, label, model, n_s, condition: dict, j: int, prop: str) -> dict:
        """{'atoms', 'gen_s', prop: (value, why), 'prop_s': {prop: seconds}} of one structure."""
        entry = self.generated(label, model, n_s, condition, j)
        if prop not in entry["values"]:
            entry["values"][prop], entry["prop_s"][prop] = bench.measure_property_timed(prop, entry["atoms"],
                                                                                        self.options)
            self.bar.update(1)
        return entry

    def prefetch(self, wanted: dict, workers: int) -> None:
        """Generate every wanted {(label, n_s, condition, j, prop): model} here, then measure them in
        ``workers`` processes; ``get`` finds the values afterwards. Generation stays in this process."""
        from concurrent.futures import ProcessPoolExecutor

        todo = {}  # id(entry) -> (entry, properties): one task per structure
        for (label, n_s, condition, j, prop), model in sorted(wanted.items(), key=lambda kv: repr(kv[0])):
            entry = self.generated(label, model, n_s, dict(condition), j)
            if prop not in entry["values"]:
                todo.setdefault(id(entry), (entry, []))[1].append(prop)
        context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's thread pools
        with ProcessPoolExecutor(workers, mp_context=context, initializer=bench.set_threads, initargs=(1,)) as pool:
            futures = [(entry, props, pool.submit(bench.measure_properties_timed, props, entry["atoms"], self.options))
                       for entry, props in todo.values()]
            for entry, props, future in futures:
                for prop, (value, seconds) in zip(props, future.result()):
                    entry["values"][prop], entry["prop_s"][prop] = value, seconds
                    self.bar.update(1)


def score(targets, achieved, ignores_target: bool) -> dict:
    """MAE/RMSE/MAPE/slope (core.metrics.inverse_errors) of paired lists, NaN when nothing was
    measured; the slope is NaN for a set that ignores the target (it is 0 by construction)."""
    from core.metrics import MetricInputError, inverse_errors

    finite = [a for a in achieved if math.isfinite(a)]
    try:
        out = inverse_errors(targets, achieved)
    except MetricInputError:
        out = {"mae": math.nan, "rmse": math.nan, "mape": math.nan, "slope": math.nan, "n": 0,
               "n_missing": len(achieved)}
    return {k: out[k] for k in ("mae", "rmse", "mape")} | {
        "slope": math.nan if ignores_target else out["slope"], "n": out["n"], "n_missing": out["n_missing"],
        "mean_achieved": float(np.mean(finite)) if finite else math.nan}


def run(models, steps, plan, held, args) -> tuple[list[dict], list[dict]]:
    """Generate, measure and score: (one row per model/property/sweep/n_s, one per structure and property)."""
    from tqdm.auto import tqdm

    n = args.n
    wanted = {}  # (label, n_s, condition, j, prop) -> the model that makes it: what the bar counts

    def want(label, model, n_s, condition: dict, prop):
        wanted.update({(label, n_s, tuple(sorted(condition.items())), j, prop): model for j in range(n)})

    for label, model, props in models:
        for s in (s for s in plan if s["property"] in props):
            for n_s in steps:
                for t in s["targets"]:
                    for prop in (s["property"], *s["given"]):
                        want(label, model, n_s, {**s["given"], s["property"]: t}, prop)
                if label == "All" and not args.no_control:
                    want("None", model, n_s, s["given"], s["property"])
                    for g in s["given"]:
                        want("None", model, n_s, {}, g)
    bar = tqdm(total=len(wanted), desc="generate+measure", unit="structure", disable=args.quiet)
    made = Structures(args, held, bar)
    if args.workers > 1:
        made.prefetch(wanted, args.workers)
    rows, samples = [], []

    def add_row(label, s, n_s, pairs, entries, ignores, scored=None):
        """One row: the sweep's property, or (`scored`) a property given beside it at a fixed value."""
        prop = scored or s["property"]
        t, y = [p[0] for p in pairs], [p[1] for p in pairs]
        rows.append({"model": label, "property": prop, "sweep": s["sweep"], "n_s": n_s,
                     **score(t, y, ignores), "target_low": min(t), "target_high": max(t),
                     "n_targets": len(set(t)), "given": ";".join(f"{k}={v:g}" for k, v in s["given"].items()),
                     "with": s["property"] if scored else "",
                     "seconds_generate_per_structure": float(np.mean([e["gen_s"] for e in entries]))
                     if entries else math.nan,
                     "seconds_property_per_structure": float(np.mean([e["prop_s"][prop] for e in entries]))
                     if entries else math.nan})

    def data_row(s, prop, targets):
        values = [float(a.info[prop]) if prop in a.info else math.nan for a in held]
        rows.append({"model": "Data", "property": prop, "sweep": s["sweep"], "n_s": None,
                     **score([t for t in targets for _ in values], values * len(targets), True),
                     "target_low": min(targets), "target_high": max(targets), "n_targets": len(set(targets)),
                     "given": "", "with": "" if prop == s["property"] else s["property"]})

    for label, model, props in models:
        for s in (s for s in plan if s["property"] in props):
            prop = s["property"]
            for n_s in steps:
                bar.set_postfix_str(f"{label} {prop} {s['sweep']} n_s={n_s}")
                pairs, entries = [], []
                for t in s["targets"]:
                    for j in range(n):
                        e = made.get(label, model, n_s, {**s["given"], prop: t}, j, prop)
                        pairs.append((t, e["values"][prop][0]))
                        entries.append(e)
                add_row(label, s, n_s, pairs, entries, ignores=False)
                if label == "All" and not args.no_control:
                    ctrl = [made.get("None", model, n_s, dict(s["given"]), j, prop) for j in range(n)]
                    add_row("None", s, n_s, [(t, e["values"][prop][0]) for t in s["targets"] for e in ctrl],
                            ctrl, ignores=True)
            if label == "All" and held:
                data_row(s, prop, s["targets"])
            # a property given beside the swept one (the paper's E with 15 % Li): how well it is met, against
            # the same model given nothing (the control) and the held-out structures
            for g, v in s["given"].items():
                for n_s in steps:
                    entries = [made.get(label, model, n_s, {**s["given"], prop: t}, j, g)
                               for t in s["targets"] for j in range(n)]
                    add_row(label, s, n_s, [(v, e["values"][g][0]) for e in entries], entries, ignores=True, scored=g)
                    if label == "All" and not args.no_control:
                        ctrl = [made.get("None", model, n_s, {}, j, g) for j in range(n)]
                        add_row("None", s, n_s, [(v, e["values"][g][0]) for e in ctrl], ctrl, ignores=True, scored=g)
                if label == "All" and held:
                    data_row(s, g, [v])
    bar.close()
    for (label, n_s, condition, j), e in made.store.items():
        for prop, (value, why) in e["values"].items():
            given = dict(condition)
            samples.append({"model": label, "property": prop, "n_s": n_s, "j": j,
                            "target": given.get(prop, math.nan) if label != "None" else math.nan,
                            "given": {k: v for k, v in given.items() if k != prop},
                            "achieved": value, "n_atoms": int((e["atoms"].numbers != 0).sum()), "missing": why})
    for j, atoms in enumerate(held):
        for prop in dict.fromkeys(s["property"] for s in plan):
            samples.append({"model": "Data", "property": prop, "n_s": None, "j": j, "target": math.nan, "given": {},
                            "achieved": float(atoms.info.get(prop, math.nan)), "n_atoms": len(atoms), "missing": ""})
    return rows, samples


# ----------------------------------------------------------------------------- output


def goals(rows, plan, system: str = "a-SiO2") -> list[dict]:
    """Each goal of `GOALS` (or `DEFAULT_GOAL`) checked on the rows: {property, sweep, goal, value, passed}
    with passed None when the rows needed were not measured."""
    out = []
    for s in plan:
        prop, sweep = s["property"], s["sweep"]
        goal = GOALS.get(system, {}).get(prop, DEFAULT_GOAL)
        n_s = goal["steps"]
        pick = {r["model"]: r for r in rows
                if (r["property"], r["sweep"], r["n_s"], r.get("with", "")) == (prop, sweep, n_s, "")}
        all_row, ctrl = pick.get("All"), pick.get("None")

        def check(text, value, passed):
            out.append({"property": prop, "sweep": sweep, "steps": n_s, "goal": text, "value": value,
                        "passed": None if value is None or not math.isfinite(value) else bool(passed)})

        got = all_row or {}
        if "slope" in goal and sweep == "training":
            v = got.get("slope")
            check(f"slope >= {goal['slope']:g}", v, v is not None and v >= goal["slope"])
        if "mape" in goal:
            v = got.get("mape")
            check(f"MAPE <= {goal['mape']:g} %", v, v is not None and v <= goal["mape"])
        if "control" in goal:
            v, c = got.get("mape"), (ctrl or {}).get("mape", math.nan)
            limit = goal["control"] * c if c is not None else math.nan
            what = "the control's MAPE" if goal["control"] == 1 else f"{goal['control']:g} x the control's MAPE"
            check(f"MAPE below {what}" + (f" ({bench.fmt(limit, 3)} %)" if math.isfinite(limit) else ""),
                  v if math.isfinite(limit) else math.nan, v is not None and v < limit)
    return out


def goal_lines(checks) -> list[str]:
    word = {True: "PASS", False: "FAIL", None: "n/a "}
    return [f"{word[c['passed']]} {c['property']}, {c['sweep']} sweep, {c['steps']} steps: {c['goal']}: "
            + ("not measured" if c["passed"] is None else f"{bench.fmt(c['value'], 3)}") for c in checks]


def _triple(r) -> str:
    if r is None:
        return "–"
    miss = f" ({r['n']} of {r['n'] + r['n_missing']})" if r["n_missing"] else ""
    return f"{bench.fmt(r['mae'], 3)} / {bench.fmt(r['rmse'], 3)} / {bench.fmt(r['mape'], 3)} %{miss}"


def tables(rows, plan) -> str:
    """One markdown table per property: a line per (sweep, model, n_s) with MAE / RMSE / MAPE and the
    slope, the control's MAE / RMSE / MAPE at the same n_s and the held-out data's."""
    out = []
    scored = [(s, s["property"]) for s in plan] + [(s, g) for s in plan for g in s["given"]]
    for prop in dict.fromkeys(p for _, p in scored):
        unit = UNITS.get(prop, "")
        lines = []
        for s in (s for s, p in scored if p == prop):
            beside = s["property"] if prop != s["property"] else ""
            mine = [r for r in rows if (r["property"], r["sweep"], r.get("with", "")) == (prop, s["sweep"], beside)]
            data = next((r for r in mine if r["model"] == "Data"), None)
            given = ", ".join(f"{k} {v:g}" for k, v in s["given"].items())
            span = (f"{s['given'][prop]:g} given beside {beside} ({s['sweep']} sweep)" if beside else
                    f"{s['sweep']} {s['low']:.3g}–{s['high']:.3g}" + (f", {given} given" if given else ""))
            for r in (r for r in mine if r["model"] not in ("None", "Data")):
                ctrl = next((c for c in mine if c["model"] == "None" and c["n_s"] == r["n_s"]), None) \
                    if r["model"] == "All" else None
                lines.append([span, r["model"], str(r["n_s"]), _triple(r), bench.fmt(r["slope"], 2), _triple(ctrl),
                              _triple(data), bench.fmt(r["mean_achieved"], 3)])
        out += [f"{prop} [{unit}]" if unit else prop, "",
                bench.markdown_table(["sweep (targets)", "model", "n_s", "MAE / RMSE / MAPE", "slope",
                                      "control: MAE / RMSE / MAPE", "data: MAE / RMSE / MAPE", "mean achieved"],
                                     lines), ""]
    return "\n".join(out).rstrip()


def plot(rows, samples, plan, path: Path) -> Path:
    """Achieved vs target per property: the All model's mean ± std per target for each n_s, the control's
    mean (dotted) and the held-out data's mean ± std (grey band), with y = x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    props = list(dict.fromkeys(s["property"] for s in plan))
    fig, axes = plt.subplots(1, len(props), figsize=(5.2 * len(props), 4.4), squeeze=False)
    for ax, prop in zip(axes[0], props):
        # a structure belongs to this panel when it was conditioned as one of the property's sweeps is (not
        # when the property was only given beside another one's sweep)
        allowed = [set(s["given"]) for s in plan if s["property"] == prop]
        pts = [x for x in samples if x["property"] == prop and math.isfinite(x["achieved"])
               and any(set(x["given"]) <= a for a in allowed)]
        targets = [t for s in plan if s["property"] == prop for t in s["targets"]]
        data = [x["achieved"] for x in pts if x["model"] == "Data"]
        if data:
            m, sd = np.mean(data), np.std(data)
            ax.axhspan(m - sd, m + sd, color="0.85", label="held-out data, mean ± std")
        steps = sorted({x["n_s"] for x in pts if x["model"] == "All"})
        width = 0.012 * (max(targets) - min(targets) or 1.0)
        for k, n_s in enumerate(steps):
            colour = f"C{k}"
            sel = [x for x in pts if x["model"] == "All" and x["n_s"] == n_s]
            ts = sorted({x["target"] for x in sel})
            ys = [[x["achieved"] for x in sel if x["target"] == t] for t in ts]
            ax.errorbar(np.array(ts) + (k - len(steps) / 2) * width, [np.mean(y) for y in ys],
                        [np.std(y) for y in ys], fmt="o", ms=4, color=colour, capsize=2, label=f"All, n_s={n_s}")
            ctrl = [x["achieved"] for x in pts if x["model"] == "None" and x["n_s"] == n_s]
            if ctrl:
                ax.axhline(np.mean(ctrl), color=colour, ls=":", lw=1)
        lo, hi = min(targets), max(targets)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="achieved = target")
        ax.plot([], [], ":", color="0.3", label="control (no target), mean")
        unit = UNITS.get(prop, "")
        ax.set_xlabel(f"target {prop}" + (f" ({unit})" if unit else ""))
        ax.set_ylabel(f"achieved {prop}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_samples(path: Path, samples) -> Path:
    """The per-structure lines as gzipped CSV (the recorded run is thousands of lines)."""
    lines = [{**x, "given": ";".join(f"{k}={v:g}" for k, v in x["given"].items())} for x in samples]
    tmp = bench.write_csv(path.with_suffix(""), lines)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:  # no timestamp inside
        dst.write(tmp.read_bytes())
    tmp.unlink()
    return path


def main(argv=None) -> dict:
    """Run the protocol; returns {'rows', 'samples', 'summary', 'goals', 'table', 'files'}."""
    from core.properties.elastic import protocol_steps

    args = parse_args(argv)
    bench.set_threads(args.threads)
    names = [n.strip() for n in args.properties.split(",") if n.strip()]
    steps = bench.parse_steps(args.steps)
    models = load_models(args, names)
    names = models[0][2]
    plan, notes = sweeps(names, args, models[0][1].property_stats, training_values(args, names))
    held, data = held_out(args, args.n)
    started = time.time()
    rows, samples = run(models, steps, plan, held, args)
    checks = goals(rows, plan, args.system)
    all_model = models[0][1]
    cells = {"held-out": f"structure j in the cell of held-out structure j ({args.n} drawn from {data})",
             "training": "the training cell"}.get(args.cell.strip().lower(), f"cell {args.cell} Å")
    scale = (f"{args.n} structures per target, {len(plan[0]['targets'])} targets per sweep (paper: 2,000 per "
             f"sweep); {cells}; rho_max {args.rho_max or all_model.rho_max:.3g} atoms/Å^3; relaxations fmax "
             f"{args.fmax} eV/Å, ≤{args.relax_steps or protocol_steps(held[0])} steps"
             + (f"; sampling grid t_k = (1 - k/n_s)^{args.grid_power:g}" if args.grid_power != 1.0 else "")
             + (f"; classifier-free guidance w = {args.guidance:g}" if args.guidance else ""))
    summary = {"system": args.system, "command": args.command, "scale": scale, "steps": steps,
               "sweeps": plan, "notes": notes, "data": data, "goals": checks,
               "checkpoints": [{"model": m, "path": c.path, "properties": c.property_names, "benchmarked": p,
                                "training_step": c.training.get("step")} for m, c, p in models]
               + ([{"model": "None", "path": all_model.path, "properties": all_model.property_names,
                    "benchmarked": models[0][2], "training_step": all_model.training.get("step")}]
                  if not args.no_control else []),
               "machine": bench.machine_info(args.device), "wall_seconds": time.time() - started, "seed": args.seed,
               "grid_power": args.grid_power, "guidance": args.guidance}
    stem = f"inverse_{args.system}{'_' + args.tag if args.tag else ''}"
    files = bench.write_outputs(stem, rows, summary, args.out_dir)
    files["samples"] = write_samples(args.out_dir / f"{stem}_samples.csv.gz", samples)
    if not args.no_plot:
        files["png"] = plot(rows, samples, plan, args.out_dir / f"{stem}.png")
    text = "\n".join([f"{args.system} inverse design, scaled: {scale}.", "",
                      "Cells: MAE / RMSE / MAPE (measured of total where some could not be measured); slope of "
                      "achieved vs target; control = the same model given no target, data = the held-out "
                      "structures' own values, both scored against the same targets.", "",
                      tables(rows, plan), "", *(f"note: {n}" for n in notes),
                      "Goals (targets set for the model, checked on this run):", *goal_lines(checks)])
    print(text)
    print(f"\nresults in {args.out_dir}")
    return {"rows": rows, "samples": samples, "summary": summary, "goals": checks, "table": text, "files": files}


if __name__ == "__main__":
    bench.run_script(main)
