"""The paper's Table 1 / Figure 4 on our data: structural accuracy vs sampling steps and time.

For every framework checkpoint (AMShortcut, Material SDE, Material ODE) and every step count
n_s, generate N structures, each in a cell drawn from the training split (so the cells and
atom counts follow the training set, paper §5.4), then compare the set's averaged RDF
(5 Å, 100 bins, g(r) dimensionless) and ADF (3 Å, 180 bins, probability per degree) with
the training split's averaged curves (`reference.npz`, or recomputed). Time per structure
(seconds, wall clock, generation only, after one untimed warm-up call per model) is measured
in the same run on the same machine for all models.

Two data floors say what "perfect" looks like: the split-half RMSD of the training set
(`reference.npz`: two disjoint halves of n_half structures) and the RMSD of N held-out (val)
structures against the same reference, i.e. the sampling noise of a perfect generator with
the N structures used here.

Beside the curves, every row (and the held-out data, recorded in the summary's floors) carries the
system's bond-network checks (`core.metrics.network_checks`): first-shell shares, close pairs per
atom and the share of structures with any, and for a multi-element system the per-structure
composition; for a system of several cation species (MEG) also each cation's share of all cations
(`core.metrics.cation_shares`). The RDF can look close while the bond network is wrong; these say so.

    .venv/bin/python benchmarks/structure.py --n 32 --threads 1          # shipped a-Si checkpoints
    .venv/bin/python benchmarks/structure.py --checkpoint shortcut=runs/a-Si-shortcut --steps 1,5,25

Writes structure_<system>[_<tag>].{csv,json,png} to --out-dir and prints a markdown table. The
default directory is outside the repository (``core.benchmarking.default_results_dir``); a result
that BENCHMARKS.md reports is recorded with ``--out-dir benchmarks/results``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from core import benchmarking as bench
from core.errors import UserError

PAPER_STEPS = "1,2,3,4,5,10,25,50,100,250"
RDF_R_MAX, RDF_BINS, ADF_CUTOFF, ADF_BINS = 5.0, 100, 3.0, 180


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--system", default="a-Si", help="dataset/checkpoint system name (default a-Si)")
    p.add_argument("--data", default=None, help="dataset directory (default assets/data/<system>)")
    p.add_argument("--checkpoints", default=None,
                   help="directory with one <framework>/ checkpoint per framework "
                        "(default assets/checkpoints/<system>)")
    p.add_argument("--checkpoint", action="append", default=[],
                   help="extra or overriding checkpoint, FRAMEWORK=PATH or PATH (repeatable)")
    p.add_argument("--frameworks", default="", help="only these frameworks, comma-separated (default all found)")
    p.add_argument("--steps", default=PAPER_STEPS, help=f"step counts n_s (default {PAPER_STEPS})")
    p.add_argument("--n", type=int, default=32, help="structures per (framework, n_s) (default 32)")
    p.add_argument("--batch", action="store_true",
                   help="generate the N structures in one batch in the training set's mean cell instead of "
                        "one call per cell drawn from the training set (faster on a GPU)")
    p.add_argument("--recompute-reference", action="store_true",
                   help="recompute the training curves from the shards instead of reading reference.npz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; 0 = torch default)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="results directory (default $AMSHORTCUT_RESULTS or ~/.cache/amshortcut/benchmarks; "
                        "benchmarks/results to record a result in the repository)")
    p.add_argument("--tag", default="", help="suffix of the output file names")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.n < 1:
        raise UserError("--n must be at least 1")
    args.out_dir = args.out_dir or bench.default_results_dir()
    return args


# ----------------------------------------------------------------------------- inputs


def select_models(args, data_system: str) -> dict:
    """{framework: Checkpoint} from --checkpoints (or the shipped directory) and --checkpoint."""
    from core.catalog import assets_root, available_checkpoints, framework_name
    from core.checkpoint import load_checkpoint

    directory = Path(args.checkpoints) if args.checkpoints else assets_root() / "checkpoints" / data_system
    models = bench.load_framework_checkpoints(directory) if directory.is_dir() else {}
    for name, path in bench.parse_named_paths(args.checkpoint).items():
        models[name] = load_checkpoint(path)
    wanted = [framework_name(f) for f in args.frameworks.split(",") if f.strip()]
    if wanted:
        models = {f: m for f, m in models.items() if f in wanted}
    if not models:
        found = ", ".join(f"{s}/{f}" for s, fws in available_checkpoints().items() for f in fws) or "none"
        raise UserError(f"no checkpoint to benchmark in {directory} (shipped checkpoints: {found}); "
                        "pass --checkpoints DIR or --checkpoint FRAMEWORK=PATH")
    order = {"shortcut": 0, "sde": 1, "ode": 2}
    return dict(sorted(models.items(), key=lambda kv: (order.get(kv[0], 9), kv[0])))


def reference(data_dir: Path, train, recompute: bool) -> dict:
    """Averaged training curves and the split-half floor: from reference.npz unless recompute."""
    from core.metrics import adf, averaged, curve_rmsd, rdf

    npz = data_dir / "reference.npz"
    if npz.is_file() and not recompute:
        with np.load(npz) as ref:
            return {"rdf": ref["rdf"].astype(float), "adf": ref["adf"].astype(float), "n": int(ref["n"]),
                    "rdf_split_half": float(ref["rdf_split_half_rmsd"]),
                    "adf_split_half": float(ref["adf_split_half_rmsd"]),
                    "n_half": int(ref["n_half"]) if "n_half" in ref else int(ref["n"]) // 2, "source": str(npz)}
    _, g = rdf(train, RDF_R_MAX, RDF_BINS)
    _, p = adf(train, ADF_CUTOFF, ADF_BINS)
    perm = np.random.default_rng(0).permutation(len(train))
    h = len(train) // 2
    a, b = perm[:h], perm[h:2 * h]
    return {"rdf": averaged(g), "adf": averaged(p), "n": len(train), "n_half": h,
            "rdf_split_half": curve_rmsd(g[a], g[b]) if h else math.nan,
            "adf_split_half": curve_rmsd(p[a], p[b]) if h else math.nan,
            "source": f"recomputed from the train split of {data_dir}"}


def set_rmsd(structures, ref, system: str) -> dict:
    """RDF/ADF RMSD of a structure set vs the reference curves and its bond-network checks under
    ``system``'s rules; structures with < 2 atoms are left out and counted (their curves are undefined)."""
    from core.metrics import adf, cation_share_columns, cation_shares, curve_rmsd, network_checks, network_columns, rdf

    usable = [a for a in structures if int((a.numbers != 0).sum()) >= 2]
    out = {"n_structures": len(structures), "n_empty": len(structures) - len(usable),
           "mean_atoms": float(np.mean([len(a) for a in structures])) if structures else math.nan}
    if not usable:
        return {**out, "rdf_rmsd": math.nan, "adf_rmsd": math.nan,
                **{key: math.nan for key, _, _ in network_columns(system)},
                **{key: math.nan for key, _, _ in cation_share_columns(system)}}
    _, g = rdf(usable, RDF_R_MAX, RDF_BINS)
    _, p = adf(usable, ADF_CUTOFF, ADF_BINS)
    return {**out, "rdf_rmsd": curve_rmsd(g, ref["rdf"]), "adf_rmsd": curve_rmsd(p, ref["adf"]),
            **network_checks(usable, system), **cation_shares(usable, system)}


def held_out_floor(data_dir: Path, train, n: int, ref, seed: int, system: str) -> dict:
    """RMSD of n held-out (val) structures vs the reference: a perfect generator's noise at n.

    Falls back to n random training structures (which are part of the reference, so slightly
    optimistic) when the val split has fewer than n; the 'set' field says which.
    """
    from core.datasets import load_dataset

    pool, name = load_dataset(data_dir, split="val"), "val"
    if len(pool) < n:
        pool, name = train, "train"
    rng = np.random.default_rng(seed)
    pick = [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]
    return {**set_rmsd(pick, ref, system), "set": name}


# ----------------------------------------------------------------------------- the run


def run(models: dict, steps: list[int], cells: list[np.ndarray], ref: dict, args) -> list[dict]:
    """One row per (framework, n_s): RMSDs, seconds per structure, structures used."""
    from tqdm.auto import tqdm

    total = sum(len(cells) * s for s in steps) * len(models)
    bar = tqdm(total=total, desc="generate", unit="struct-step", disable=args.quiet)
    rows = []
    mean_cell = np.mean(cells, axis=0)
    for framework, model in models.items():
        bench.timed_generate(model, 1, 1, cells[0], seed=args.seed, device=args.device)  # warm-up
        for n_s in steps:
            bar.set_postfix_str(f"{framework} n_s={n_s}")
            if args.batch:
                structures, seconds = bench.timed_generate(model, len(cells), n_s, mean_cell, seed=args.seed,
                                                             device=args.device, bar=bar)
            else:
                structures, seconds = [], 0.0
                for k, cell in enumerate(cells):
                    out, dt = bench.timed_generate(model, 1, n_s, cell, seed=args.seed + k,
                                                     device=args.device, bar=bar)
                    structures += out
                    seconds += dt
            rows.append({"framework": framework, "n_s": n_s, **set_rmsd(structures, ref, args.system),
                         "seconds_per_structure": seconds / len(cells), "seconds_total": seconds,
                         "minutes_per_10k": seconds / len(cells) * 1e4 / 60})  # the paper's time unit
    bar.close()
    return rows


def _row(rows, framework, n_s):
    return next((r for r in rows if r["framework"] == framework and r["n_s"] == n_s), None)


def comparisons(rows: list[dict], floors: dict) -> list[dict]:
    """The paper's side-by-side claims (Sec. 5.4, Table 1), evaluated on the measured rows that exist."""
    out = []
    sde_steps = [r["n_s"] for r in rows if r["framework"] == "sde"]
    sc1 = _row(rows, "shortcut", 1)
    if sc1 and sde_steps:
        sde = _row(rows, "sde", max(sde_steps))
        frac = sc1["seconds_per_structure"] / sde["seconds_per_structure"]
        out.append({"claim": f"AMShortcut@1 ADF RMSD <= Material SDE@{sde['n_s']} using <= 1% of its time",
                    "measured": f"ADF {sc1['adf_rmsd']:.3g} vs {sde['adf_rmsd']:.3g}; time {100 * frac:.2f}%",
                    "met": bool(sc1["adf_rmsd"] <= sde["adf_rmsd"] and frac <= 0.01)})
    few = [r for r in rows if r["framework"] == "shortcut" and r["n_s"] <= 5 and math.isfinite(r["rdf_rmsd"])]
    if few:
        best = min(few, key=lambda r: r["rdf_rmsd"])
        for label, floor in (("split-half floor", floors["rdf_split_half"]),
                             (f"held-out floor at N={floors['held_out']['n_structures']}",
                              floors["held_out"]["rdf_rmsd"])):
            out.append({"claim": f"AMShortcut@<=5 RDF RMSD within 2x the data's {label}",
                        "measured": f"best {best['rdf_rmsd']:.3g} at n_s={best['n_s']} vs 2 x {floor:.3g}",
                        "met": bool(best["rdf_rmsd"] <= 2 * floor)})
    sc5 = _row(rows, "shortcut", 5)
    if sc5 and sde_steps:
        sde = _row(rows, "sde", max(sde_steps))
        frac = sc5["seconds_per_structure"] / sde["seconds_per_structure"]
        out.append({"claim": f"AMShortcut@5 RDF RMSD <= Material SDE@{sde['n_s']} (paper: 2.93% of the time)",
                    "measured": f"RDF {sc5['rdf_rmsd']:.3g} vs {sde['rdf_rmsd']:.3g}; time {100 * frac:.2f}%",
                    "met": bool(sc5["rdf_rmsd"] <= sde["rdf_rmsd"])})
    return out


# ----------------------------------------------------------------------------- output


def table(rows: list[dict], models: dict, steps: list[int]) -> str:
    """Paper-style table: one line per n_s, one column per framework, 'RDF / ADF (s/structure)'."""
    from core.catalog import FRAMEWORK_LABELS

    headers = ["n_s"] + [FRAMEWORK_LABELS.get(f, f) for f in models]
    lines = []
    for n_s in steps:
        cells = [str(n_s)]
        for f in models:
            r = _row(rows, f, n_s)
            cells.append(f"{bench.fmt(r['rdf_rmsd'])} / {bench.fmt(r['adf_rmsd'])} "
                         f"({bench.fmt(r['seconds_per_structure'], 3)} s)" if r else "")
        lines.append(cells)
    return bench.markdown_table(headers, lines)


def _sets_table(rows: list[dict], models: dict, held_out: dict, cols: list[tuple[str, str, float]]) -> str:
    """Per-set values (``cols``: key, label, display factor): the held-out data first, then one line
    per (framework, n_s)."""
    from core.catalog import FRAMEWORK_LABELS

    lines = []
    for label, n_s, r in [("data (held-out)", "", held_out)] + [
            (FRAMEWORK_LABELS.get(r["framework"], r["framework"]), r["n_s"], r) for r in rows if r["framework"] in models]:
        lines.append([label, str(n_s)] + [bench.fmt(r.get(key, math.nan) * factor, 3) for key, _, factor in cols])
    return bench.markdown_table(["set", "n_s"] + [name for _, name, _ in cols], lines)


def network_table(rows: list[dict], models: dict, held_out: dict, system: str) -> str:
    """The bond-network checks of every set."""
    from core.metrics import network_columns

    return _sets_table(rows, models, held_out, network_columns(system))


def cation_table(rows: list[dict], models: dict, held_out: dict, system: str) -> str:
    """Each cation's share of all cations (%) and O per cation of every set; empty for a system with
    one cation species."""
    from core.metrics import cation_share_columns

    cols = cation_share_columns(system)
    return _sets_table(rows, models, held_out, cols) if cols else ""


def plot(rows: list[dict], floors: dict, path: Path) -> Path:
    """Figure 4 style: RDF and ADF RMSD vs time per structure (log x), points labelled with n_s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.catalog import FRAMEWORK_LABELS

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "rdf", "RDF RMSD"), (axes[1], "adf", "ADF RMSD")):
        for f in dict.fromkeys(r["framework"] for r in rows):
            pts = [r for r in rows if r["framework"] == f]
            x = [r["seconds_per_structure"] for r in pts]
            y = [r[f"{key}_rmsd"] for r in pts]
            ax.plot(x, y, "o-", label=FRAMEWORK_LABELS.get(f, f))
            for r, xi, yi in zip(pts, x, y):
                ax.annotate(str(r["n_s"]), (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=7)
        ax.axhline(floors[f"{key}_split_half"], ls="--", c="grey", lw=1,
                   label=f"data split-half ({floors['n_half']} vs {floors['n_half']})")
        ax.axhline(floors["held_out"][f"{key}_rmsd"], ls=":", c="k", lw=1,
                   label=f"data held-out, N={floors['held_out']['n_structures']}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("generation time per structure (s)")
        ax.set_ylabel(label + " vs training set")
        ax.legend(fontsize=7)
    n = rows[0]["n_structures"] if rows else 0
    fig.suptitle(f"Structural accuracy vs generation time ({n} structures per point; labels = n_s)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> dict:
    """Run the benchmark; returns {'rows', 'summary', 'table', 'files'}."""
    from core.catalog import data_dir as shipped_data
    from core.datasets import load_dataset

    args = parse_args(argv)
    bench.set_threads(args.threads)
    data = Path(args.data) if args.data else shipped_data(args.system)
    steps = bench.parse_steps(args.steps)
    started = time.time()
    train = load_dataset(data, split="train")
    if not train:
        raise UserError(f"{data}: no training structures")
    models = select_models(args, args.system)
    ref = reference(data, train, args.recompute_reference)
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(len(train), size=args.n, replace=len(train) < args.n)
    cells = [np.asarray(train[i].cell[:], dtype=float) for i in picks]
    train_atoms = float(np.mean([len(train[i]) for i in picks]))
    floors = {"rdf_split_half": ref["rdf_split_half"], "adf_split_half": ref["adf_split_half"],
              "n_half": ref["n_half"], "held_out": held_out_floor(data, train, args.n, ref, args.seed, args.system)}
    rows = run(models, steps, cells, ref, args)
    claims = comparisons(rows, floors)
    summary = {
        "system": args.system, "data": str(data), "reference": ref["source"], "reference_n": ref["n"],
        "n_structures_per_point": args.n, "cells": "one batch in the mean training cell" if args.batch
        else "one call per cell drawn from the training split", "mean_training_atoms_of_drawn_cells": train_atoms,
        "steps": steps, "floors": floors, "claims": claims, "machine": bench.machine_info(args.device),
        "checkpoints": {f: {"path": m.path, "training_step": m.training.get("step")} for f, m in models.items()},
        "wall_seconds": time.time() - started, "seed": args.seed,
    }
    stem = f"structure_{args.system}{'_' + args.tag if args.tag else ''}"
    files = bench.write_outputs(stem, rows, summary, args.out_dir)
    if not args.no_plot:
        files["png"] = plot(rows, floors, args.out_dir / f"{stem}.png")
    text = report(rows, models, steps, summary)
    print(text)
    print(f"\nresults in {args.out_dir}")
    return {"rows": rows, "summary": summary, "table": text, "files": files}


def report(rows, models, steps, summary) -> str:
    """Markdown: scale line, the table, data floors and the side-by-side claims."""
    f = summary["floors"]
    ho = f["held_out"]
    lines = [
        f"{summary['system']}: {summary['n_structures_per_point']} generated structures per table cell "
        f"({summary['cells']}; mean {summary['mean_training_atoms_of_drawn_cells']:.0f} atoms in the drawn "
        f"training cells); reference = {summary['reference_n']} training structures "
        f"({summary['reference']}); {summary['machine']['device']}, {summary['machine']['torch_threads']} "
        f"torch thread(s). Cell format: RDF / ADF RMSD (seconds per structure).", "",
        table(rows, models, steps), "",
        f"Bond network ({summary['system']} rules of core.metrics.checks):", "",
        network_table(rows, models, f["held_out"], summary["system"]), "",
    ]
    cations = cation_table(rows, models, f["held_out"], summary["system"])
    if cations:
        lines += ["Cation shares (% of all cations) and O per cation:", "", cations, ""]
    lines += [
        f"Data floors: split-half RDF {bench.fmt(f['rdf_split_half'])} / ADF {bench.fmt(f['adf_split_half'])} "
        f"({f['n_half']} vs {f['n_half']} structures); {ho['n_structures']} held-out ({ho['set']}) structures vs "
        f"the reference: RDF {bench.fmt(ho['rdf_rmsd'])} / ADF {bench.fmt(ho['adf_rmsd'])}.",
    ]
    empty = sum(r["n_empty"] for r in rows)
    if empty:
        lines.append(f"{empty} generated structures had fewer than 2 atoms and were left out of the RMSDs.")
    if summary["claims"]:
        lines += ["", bench.markdown_table(["claim", "measured", "met"],
                                             [[c["claim"], c["measured"], "yes" if c["met"] else "no"]
                                              for c in summary["claims"]])]
    return "\n".join(lines)


if __name__ == "__main__":
    bench.run_script(main)
