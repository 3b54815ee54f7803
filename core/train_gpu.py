"""Continue a shipped model on one GPU for a fixed wall time, then benchmark what it became.

GPU time comes in short windows on machines with torch and CUDA but no network, so this is
one call (``scripts/train_gpu.sh SYSTEM FRAMEWORK MINUTES OUTDIR`` wraps it):

1. ``recipe_config`` builds the run from the shipped model's recipe file
   (``configs/<system>/<framework>.toml``, ``core.recipe.shipped_fork``): the same network,
   data and loss settings, with a large batch, the fast network path, a constant learning
   rate and no in-training validation;
2. ``train_for`` forks the shipped weights (a fresh optimiser) or, with ``--resume``, continues
   the run an earlier window left in OUTDIR (its optimiser and step count), trains until the
   wall-time limit and saves (checkpoint + train state) at the step it stopped;
3. ``benchmarks/structure.py`` scores the result against the training data.

OUTDIR gets ``checkpoint/`` (a loadable checkpoint, resumable with ``amshortcut train
--resume --out OUTDIR/checkpoint`` or by this script's ``--resume``), ``results/`` (the
structure benchmark) and ``summary.json``. Without a GPU the
same runs on CPU (the recipe's batch size), which the tests use with a wall time of seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
GPU_BATCH = 64
"""Structures per step on a GPU (the shipped recipes use 4 on one CPU core)."""


def shipped_dir(system: str, framework: str) -> Path:
    from core.errors import UserError

    path = ROOT / "assets" / "checkpoints" / system / framework
    if not (path / "config.json").is_file():
        raise UserError(f"no shipped {framework} model of {system} at {path}")
    return path


def recipe_config(system: str, framework: str, device: str, batch_size: int = 0, data: str = "", sets=()):
    """The Recipe that continues the shipped SYSTEM/FRAMEWORK model on ``device`` (paths relative
    to the repository root).

    Everything the network and loss depend on comes from the model's recipe file; changed here:
    the batch (``batch_size``, default GPU_BATCH on a GPU and the recipe's on CPU), a constant
    learning rate (the recipe's last) after a short warmup (the wall time, not a step count,
    ends the run), the fast path, no validation; ``data`` replaces the recipe's dataset; ``sets``
    are ``SECTION.KEY=VALUE`` overrides applied last (e.g. ``schedule.t_band_fraction=0.5``)."""
    from core.recipe import LrSegment, shipped_fork

    recipe = shipped_fork(system, framework, shipped_dir(system, framework).relative_to(ROOT))
    opt = recipe.optimisation
    recipe = replace(
        recipe,
        data=replace(recipe.data, path=data or recipe.data.path),
        optimisation=replace(opt, batch_size=batch_size or (GPU_BATCH if device == "cuda" else opt.batch_size),
                             lr_schedule=[LrSegment(lr=opt.lr_schedule[-1].lr)], steps=10**9, warmup_steps=50),
        validation=replace(recipe.validation, every=0),
        runtime=replace(recipe.runtime, device=device, fast=True, progress=False, threads=0, checkpoint_every=200))
    return recipe.with_overrides(sets) if sets else recipe


def train_for(recipe, out, seconds: float, resume: bool = False):
    """Train ``recipe`` into ``out`` until ``seconds`` of wall time have passed; save at the step reached.
    Returns the Trainer."""
    from core.training import Trainer

    trainer = Trainer(recipe, out, resume=resume)
    deadline = time.monotonic() + seconds

    def stop_at_deadline(step, logs):
        if time.monotonic() >= deadline:
            trainer.recipe.optimisation.steps = step  # Trainer.run's loop ends after this step

    trainer.run(on_step=stop_at_deadline)
    trainer._save()
    trainer.close()
    return trainer


def main(argv=None) -> dict:
    from core.errors import UserError

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("system", help="a-Si | a-SiO2")
    parser.add_argument("framework", help="shortcut | sde | ode (a shipped model with a recipe in configs/)")
    parser.add_argument("minutes", type=float, help="training wall time")
    parser.add_argument("outdir")
    parser.add_argument("--resume", action="store_true", help="continue the run an earlier call left in OUTDIR "
                                                              "(its optimiser and steps) instead of forking the "
                                                              "shipped weights")
    parser.add_argument("--batch-size", type=int, default=0, help=f"default {GPU_BATCH} on a GPU, the recipe's on CPU")
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu")
    parser.add_argument("--data", default="", help="dataset directory instead of the recipe's (resume: must be the same)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="recipe override applied last, repeatable (e.g. schedule.t_band_fraction=0.5)")
    parser.add_argument("--bench-n", type=int, default=32, help="structures per step count in the structure benchmark")
    parser.add_argument("--bench-steps", default="1,2,5,10")
    args = parser.parse_args(argv)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.outdir).resolve()
    data = str(Path(args.data).resolve()) if args.data else ""
    ckpt = out / "checkpoint"
    os.chdir(ROOT)  # the saved recipes name their data relative to the repository root
    started = time.time()
    recipe = recipe_config(args.system, args.framework, device, args.batch_size, data, args.set)
    if args.resume and not (ckpt / "train_state.pt").is_file():
        raise UserError(f"cannot resume: {ckpt} holds no run (drop --resume to fork the shipped model)")
    trainer = train_for(recipe, ckpt, 60.0 * args.minutes, resume=args.resume)
    trained_s = time.time() - started

    from core.benchmarking import load_script

    structure = load_script("structure")
    bench = structure.main(["--system", args.system, "--data", recipe.data.path,
                            "--checkpoint", f"{args.framework}={ckpt}",
                            "--frameworks", args.framework, "--steps", args.bench_steps, "--n", str(args.bench_n),
                            "--device", device, "--threads", "0", "--out-dir", str(out / "results"),
                            "--tag", "train_gpu", "--quiet", "--no-plot"] + (["--batch"] if device == "cuda" else []))
    summary = {"system": args.system, "framework": args.framework, "device": device,
               "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
               "mode": "resume" if args.resume else "fork", "minutes": args.minutes,
               "batch_size": recipe.optimisation.batch_size,
               "step": trainer.step, "train_wall_s": round(trained_s, 1), "checkpoint": str(ckpt),
               "results": {k: str(v) for k, v in bench["files"].items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(bench["table"])
    print(f"trained {trainer.step} steps in {trained_s:.0f} s on {device}; wrote {out}")
    return summary


def cli(argv=None) -> int:
    """``main`` with a bad request (UserError) reported as one line, exit status 2."""
    from core.errors import UserError

    try:
        main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
