"""The paper's Table 2 protocol (§5.5) on a-SiO2, scaled to a CPU: inverse design by partial
conditioning.

One model trained on all properties ("All") is conditioned on one property at a time, the
other left free (flexible property embedding): targets are swept linearly over a range
(default: the model's training range of that property; the paper swept G 10–50 GPa and ring
size 4–6 with 2,000 samples, cubic 18 Å cells, rho_max 0.11 atoms/Å^3; `--range` sets any
sweep), one structure per target, for each step count n_s.
The achieved property of every generated structure is computed with `core.properties`
(G: Tersoff Si–O, L-BFGS relaxation, ±0.02 shear strains, GPa; ring size: Si atoms per
ring) and compared with its target: MAE, RMSE (property units) and MAPE (%), per n_s.
Structures whose property cannot be computed (no ring, relaxation failure) are counted as
missing, not dropped silently. Optional `--target-checkpoint`s, each trained on one
property alone, give the "(All) vs (Target)" comparison.

A control that the paper does not report: the All model with nothing conditioned ("None")
is scored against the same targets. Targets swept over a narrow training range sit close to
the data mean, so a model that ignores its target can still score a low MAPE; the control's
errors, and the slope of achieved against target (1 = perfect, 0 = target ignored), say how
much of a result is conditioning. `--no-control` skips it.

Scale: `--n` structures per (model, property, n_s) instead of 2,000 (default 8; the
output states N). A shear modulus costs seconds to minutes of CPU per structure.

    .venv/bin/python benchmarks/inverse_design.py --steps 1,5,10 --n 8 --threads 1
    .venv/bin/python benchmarks/inverse_design.py --checkpoint runs/sio2-all \\
        --target-checkpoint runs/sio2-G --target-checkpoint runs/sio2-ring

Writes inverse_<system>[_<tag>].{csv,json} (+ _samples.csv, .png) to --out-dir and prints a
markdown table. The default directory is outside the repository
(``core.benchmarking.default_results_dir``); a result that BENCHMARKS.md reports is recorded
with ``--out-dir benchmarks/results``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from core import benchmarking as bench
from core.errors import UserError

PAPER_RANGES = {"shear_modulus": (10.0, 50.0), "ring_size_mean": (4.0, 6.0)}
"""Target sweeps of the paper's Table 2 (GPa; Si atoms per ring)."""
UNITS = {"shear_modulus": "GPa", "ring_size_mean": "Si/ring"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--system", default="a-SiO2")
    p.add_argument("--checkpoint", default=None,
                   help="the all-property model (default the shipped assets/checkpoints/<system>/shortcut)")
    p.add_argument("--target-checkpoint", action="append", default=[],
                   help="a model trained on one property alone, PATH or PROPERTY=PATH (repeatable)")
    p.add_argument("--properties", default="shear_modulus,ring_size_mean",
                   help="properties to condition on, one at a time")
    p.add_argument("--range", action="append", default=[],
                   help="target sweep NAME=LOW:HIGH (default: the model's training range of NAME; "
                        "the paper's were shear_modulus=10:50, ring_size_mean=4:6)")
    p.add_argument("--no-control", action="store_true",
                   help="skip the unconditioned control ('None': the All model with no target)")
    p.add_argument("--steps", default="1,5,10", help="step counts n_s (paper: 1,5,10,25,50,100,250)")
    p.add_argument("--grid-power", type=float, default=1.0,
                   help="sampling grid t_k = (1 - k/n_s)^P for every model (default 1, uniform, the paper's)")
    p.add_argument("--guidance", type=float, default=0.0,
                   help="classifier-free guidance weight w for every conditioned model (default 0, none, the "
                        "paper's; core.model.GuidedDenoiser)")
    p.add_argument("--n", type=int, default=8, help="structures (targets) per model, property and n_s (paper 2000)")
    p.add_argument("--cell", default="18", help="cubic edge in Å, 'a,b,c', or 'training' (the model's training cell)")
    p.add_argument("--rho-max", type=float, default=0.0, help="atoms/Å^3 incl. ghosts (0 = the model's value)")
    p.add_argument("--fmax", type=float, default=0.05, help="relaxation force tolerance for G, eV/Å (paper 0.05)")
    p.add_argument("--relax-steps", type=int, default=1500, help="max L-BFGS steps per relaxation for G (paper 1500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", type=Path, default=None,
                   help="results directory (default $AMSHORTCUT_RESULTS or ~/.cache/amshortcut/benchmarks; "
                        "benchmarks/results to record a result in the repository)")
    p.add_argument("--tag", default="")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.n < 1:
        raise UserError("--n must be at least 1")
    args.out_dir = args.out_dir or bench.default_results_dir()
    return args


def target_ranges(names, items, stats=None) -> dict[str, tuple[float, float]]:
    """{property: (low, high)}: the training range in ``stats`` ({name: {min, max}}, from the
    checkpoint), else the paper's sweep, overridden by NAME=LOW:HIGH items."""
    stats = stats or {}
    ranges = {n: (float(stats[n]["min"]), float(stats[n]["max"])) if n in stats and "min" in stats[n]
              else PAPER_RANGES[n] for n in names if n in stats or n in PAPER_RANGES}
    for item in items:
        name, _, span = item.partition("=")
        try:
            low, high = (float(x) for x in span.split(":"))
        except ValueError:
            raise UserError(f"--range expects NAME=LOW:HIGH, got {item!r}") from None
        ranges[name.strip()] = (low, high)
    missing = [n for n in names if n not in ranges]
    if missing:
        raise UserError(f"no target range for {', '.join(missing)}; give --range NAME=LOW:HIGH")
    return ranges


def calculators(fmax: float, relax_steps: int) -> dict:
    """Property name -> function(Atoms) -> value, as the dataset computed them (core.properties)."""
    from core.properties import ring_size_mean, shear_modulus

    return {"shear_modulus": lambda a: shear_modulus(a, fmax=fmax, steps=relax_steps),
            "ring_size_mean": ring_size_mean}


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
            raise UserError(f"inverse design needs an {args.system} checkpoint conditioned on "
                            f"{', '.join(names)}: {exc}") from None
    model = load_checkpoint(path)
    have = [n for n in names if n in model.property_names]
    if not have:
        raise UserError(f"{path} is conditioned on {model.property_names or 'nothing'}, none of {names}")
    out = [("All", model, have)]
    if not args.no_control:
        out.append(("None", model, have))
    for item in args.target_checkpoint:
        prop, sep, p = item.partition("=")
        target = load_checkpoint(p if sep else prop)
        props = [prop] if sep else [n for n in names if n in target.property_names]
        if not props or any(n not in target.property_names for n in props):
            raise UserError(f"target checkpoint {item} is conditioned on {target.property_names}, not on {names}")
        out.append(("Target", target, props))
    return out


def resolve_cell(text: str, model):
    """Cell for generation: 'training' = the checkpoint's recorded training cell, else Å."""
    if text.strip().lower() == "training":
        cell = model.training.get("cell")
        if cell is None:
            raise UserError("this checkpoint records no training cell; give --cell in Å")
        return np.asarray(cell, dtype=float)
    try:
        lengths = [float(x) for x in text.split(",")]
    except ValueError:
        raise UserError(f"--cell expects Å, 'a,b,c' or 'training', got {text!r}") from None
    return lengths[0] if len(lengths) == 1 else lengths


def measure(value_of, atoms) -> tuple[float, str]:
    """(property value, '' or the reason it is missing); any calculator failure is a NaN."""
    if int((atoms.numbers != 0).sum()) == 0:
        return math.nan, "no atoms"
    try:
        value = float(value_of(atoms))
    except Exception as exc:  # noqa: BLE001 - LAMMPS/ASE raise many types for unphysical inputs
        return math.nan, f"{type(exc).__name__}: {str(exc)[:80]}"
    return value, "" if math.isfinite(value) else "undefined (e.g. no ring)"


def run(models, steps, ranges, args, calc) -> tuple[list[dict], list[dict]]:
    """Generate and measure: (summary rows per model/property/n_s, one row per structure).
    The 'None' model is generated with no property set and scored against the same targets."""
    from tqdm.auto import tqdm

    from core.metrics import inverse_errors

    total = sum(len(props) for _, _, props in models) * len(steps) * args.n
    bar = tqdm(total=total, desc="generate+measure", unit="structure", disable=args.quiet)
    rows, samples = [], []
    for label, model, props in models:
        cell = resolve_cell(args.cell, model)
        for prop in props:
            targets = np.linspace(*ranges[prop], args.n)
            for n_s in steps:
                bar.set_postfix_str(f"{label} {prop} n_s={n_s}")
                gen_s = prop_s = 0.0
                achieved = []
                for k, target in enumerate(targets):
                    condition = {} if label == "None" else {prop: float(target)}
                    (atoms,), dt = bench.timed_generate(model, 1, n_s, cell, condition,
                                                          seed=args.seed + k, device=args.device,
                                                          rho_max=args.rho_max or None,
                                                          grid_power=args.grid_power, guidance=args.guidance)
                    start = time.perf_counter()
                    value, why = measure(calc[prop], atoms)
                    prop_s += time.perf_counter() - start
                    gen_s += dt
                    achieved.append(value)
                    samples.append({"model": label, "property": prop, "n_s": n_s, "target": float(target),
                                    "achieved": value, "n_atoms": len(atoms), "missing": why})
                    bar.update(1)
                rows.append({"model": label, "property": prop, "n_s": n_s, **errors(inverse_errors, targets, achieved),
                             "target_low": ranges[prop][0], "target_high": ranges[prop][1],
                             "seconds_generate_per_structure": gen_s / len(targets),
                             "seconds_property_per_structure": prop_s / len(targets)})
    bar.close()
    return rows, samples


def errors(inverse_errors, targets, achieved) -> dict:
    """MAE/RMSE/MAPE of the measured pairs, and the least-squares slope of achieved against
    target; all NaN with n = 0 when nothing could be measured."""
    from core.metrics import MetricInputError

    finite = [a for a in achieved if math.isfinite(a)]
    mean = float(np.mean(finite)) if finite else math.nan
    pairs = [(t, a) for t, a in zip(targets, achieved) if math.isfinite(a)]
    slope = math.nan
    if len(pairs) >= 2 and np.ptp([t for t, _ in pairs]) > 0:
        slope = float(np.polyfit(*np.array(pairs).T, 1)[0])
    try:
        out = inverse_errors(targets, achieved)
    except MetricInputError:
        out = {"mae": math.nan, "rmse": math.nan, "mape": math.nan, "n": 0, "n_missing": len(achieved)}
    return {"mae": out["mae"], "rmse": out["rmse"], "mape": out["mape"], "n": out["n"],
            "n_missing": out["n_missing"], "mean_achieved": mean, "slope": slope}


def table(rows, steps) -> str:
    """Table 2 layout: one line per n_s, one column per (property, model): MAE / RMSE / MAPE%
    and the slope of achieved against target."""
    columns = list(dict.fromkeys((r["property"], r["model"]) for r in rows))
    headers = ["n_s"] + [f"{p} ({m}) [{UNITS.get(p, '')}]" for p, m in columns]
    lines = []
    for n_s in steps:
        line = [str(n_s)]
        for p, m in columns:
            r = next((r for r in rows if (r["property"], r["model"], r["n_s"]) == (p, m, n_s)), None)
            line.append(f"{bench.fmt(r['mae'], 3)} / {bench.fmt(r['rmse'], 3)} / {bench.fmt(r['mape'], 3)}%"
                        f" (slope {bench.fmt(r['slope'], 2)})"
                        + (f" ({r['n']} of {r['n'] + r['n_missing']})" if r["n_missing"] else "") if r else "")
        lines.append(line)
    return bench.markdown_table(headers, lines)


def plot(samples, path: Path) -> Path:
    """Achieved vs target per property (one marker colour per model and n_s), with y = x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    props = list(dict.fromkeys(s["property"] for s in samples))
    fig, axes = plt.subplots(1, len(props), figsize=(5 * len(props), 4.2), squeeze=False)
    for ax, prop in zip(axes[0], props):
        pts = [s for s in samples if s["property"] == prop]
        for key in dict.fromkeys((s["model"], s["n_s"]) for s in pts):
            sel = [s for s in pts if (s["model"], s["n_s"]) == key]
            ax.plot([s["target"] for s in sel], [s["achieved"] for s in sel], "o", ms=4, alpha=0.7,
                    label=f"{key[0]}, n_s={key[1]}")
        lo, hi = min(s["target"] for s in pts), max(s["target"] for s in pts)
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel(f"target {prop} ({UNITS.get(prop, '')})")
        ax.set_ylabel(f"achieved {prop}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> dict:
    """Run the protocol; returns {'rows', 'samples', 'summary', 'table', 'files'}."""
    args = parse_args(argv)
    bench.set_threads(args.threads)
    names = [n.strip() for n in args.properties.split(",") if n.strip()]
    steps = bench.parse_steps(args.steps)
    models = load_models(args, names)
    ranges = target_ranges(names, args.range, models[0][1].property_stats)
    started = time.time()
    rows, samples = run(models, steps, ranges, args, calculators(args.fmax, args.relax_steps))
    all_model = models[0][1]
    scale = (f"{args.n} structures per (model, property, n_s) (paper: 2,000); cell {args.cell} "
             f"{'(the training cell)' if args.cell == 'training' else 'Å'}; rho_max "
             f"{args.rho_max or all_model.rho_max:.3g} atoms/Å^3; G relaxations fmax {args.fmax} eV/Å, "
             f"≤{args.relax_steps} steps"
             + (f"; sampling grid t_k = (1 - k/n_s)^{args.grid_power:g}" if args.grid_power != 1.0 else "")
             + (f"; classifier-free guidance w = {args.guidance:g}" if args.guidance else ""))
    summary = {"system": args.system, "scale": scale, "steps": steps, "ranges": ranges,
               "checkpoints": [{"model": m, "path": c.path, "properties": c.property_names, "benchmarked": p,
                                "training_step": c.training.get("step")} for m, c, p in models],
               "machine": bench.machine_info(args.device), "wall_seconds": time.time() - started, "seed": args.seed,
               "grid_power": args.grid_power, "guidance": args.guidance}
    stem = f"inverse_{args.system}{'_' + args.tag if args.tag else ''}"
    files = bench.write_outputs(stem, rows, summary, args.out_dir)
    files["samples_csv"] = bench.write_csv(args.out_dir / f"{stem}_samples.csv", samples)
    if not args.no_plot:
        files["png"] = plot(samples, args.out_dir / f"{stem}.png")
    sweeps = ", ".join(f"{n} {lo:.3g}–{hi:.3g} {UNITS.get(n, '')}" for n, (lo, hi) in ranges.items())
    text = "\n".join([f"{args.system} inverse design, scaled: {scale}; targets {sweeps}. Cell format: "
                      "MAE / RMSE / MAPE (slope of achieved vs target; measured of total where some could "
                      "not be measured). 'None' = the All model with no target (control).", "",
                      table(rows, steps)])
    print(text)
    print(f"\nresults in {args.out_dir}")
    return {"rows": rows, "samples": samples, "summary": summary, "table": text, "files": files}


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
