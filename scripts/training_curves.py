"""Training curves of one or more runs: loss and validation RDF/ADF RMSD against step.

Reads each run's ``log.jsonl`` (written by ``amshortcut train``), smooths the per-step
losses with a running mean, and draws the validation RMSDs per sampling step count, with
the data's split-half floor (``reference.npz``) as a dashed line when it is available.

    .venv/bin/python scripts/training_curves.py assets/runs/a-Si-shortcut \\
        --data assets/data/a-Si --out docs/figures/training-a-Si-shortcut.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def read_log(run: Path) -> tuple[list[dict], list[dict]]:
    """(loss records, validation records) of a run directory's log.jsonl."""
    path = run / "log.jsonl" if run.is_dir() else run
    if not path.exists():
        raise SystemExit(f"{path}: no training log (expected log.jsonl of `amshortcut train`)")
    losses, vals = [], []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if "loss" in rec:
            losses.append(rec)
        if any(k.startswith("val_rdf_") for k in rec):
            vals.append(rec)
    return losses, vals


def running_mean(x: np.ndarray, window: int) -> np.ndarray:
    if len(x) < window:
        return x
    kernel = np.ones(window) / window
    return np.convolve(x, kernel, mode="valid")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories (or log.jsonl files)")
    p.add_argument("--labels", default="", help="comma-separated labels (default: directory names)")
    p.add_argument("--data", type=Path, default=None, help="dataset directory with reference.npz (draws the floor)")
    p.add_argument("--window", type=int, default=20, help="running-mean window over logged losses (default 20)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s.strip() for s in args.labels.split(",")] if args.labels else [r.name for r in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit("--labels needs one label per run")
    floor = None
    if args.data is not None and (args.data / "reference.npz").exists():
        with np.load(args.data / "reference.npz") as ref:
            floor = {"rdf": float(ref["rdf_split_half_rmsd"]), "adf": float(ref["adf_split_half_rmsd"])}

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for run, label in zip(args.runs, labels):
        losses, vals = read_log(run)
        if losses:
            steps = np.array([r["step"] for r in losses])
            loss = np.array([r["loss"] for r in losses])
            sm = running_mean(loss, args.window)
            axes[0].plot(steps[len(steps) - len(sm):], sm, label=label)
        counts = sorted({int(k.split("_")[-1]) for r in vals for k in r if k.startswith("val_rdf_")})
        for n in counts:
            pts = [(r["step"], r[f"val_rdf_{n}"], r[f"val_adf_{n}"]) for r in vals if f"val_rdf_{n}" in r]
            s, rdf, adf = (np.array(c) for c in zip(*pts))
            axes[1].plot(s, rdf, "o-", label=f"{label}, {n} step{'s' if n > 1 else ''}")
            axes[2].plot(s, adf, "o-", label=f"{label}, {n} step{'s' if n > 1 else ''}")
    axes[0].set(xlabel="optimisation step", ylabel=f"training loss (running mean of {args.window} logs)",
                yscale="log", title="loss")
    for ax, key in ((axes[1], "rdf"), (axes[2], "adf")):
        if floor is not None:
            ax.axhline(floor[key], ls="--", c="k", lw=1, label="data split-half floor")
        ax.set(xlabel="optimisation step", ylabel=f"validation {key.upper()} RMSD", yscale="log",
               title=f"{key.upper()} RMSD of EMA samples vs validation set")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
