"""Continue a shipped model on one GPU for a fixed wall time, then benchmark what it became.

GPU time comes in short windows on machines with torch and CUDA but no network, so this is
one call (``scripts/train_gpu.sh SYSTEM FRAMEWORK MINUTES OUTDIR`` wraps it):

1. ``recipe_config`` builds the training command from the shipped model's saved training
   config (``assets/checkpoints/<system>/<framework>/train_config.json``): the same network,
   data and loss settings, with a large batch, the fast network path, a constant learning
   rate and no in-training validation;
2. ``train_for`` forks the shipped weights (``init_from``; a fresh optimiser) or resumes the
   shipped run's saved state (``--resume``: its optimiser and step count), trains until the
   wall-time limit and saves (checkpoint + train state) at the step it stopped;
3. ``benchmarks/structure.py`` scores the result against the training data.

OUTDIR gets ``checkpoint/`` (a loadable checkpoint, resumable with ``amshortcut train
--resume``), ``results/`` (the structure benchmark) and ``summary.json``. Without a GPU the
same runs on CPU (the recipe's batch size), which the tests use with a wall time of seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import fields
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
GPU_BATCH = 64
"""Structures per step on a GPU (the shipped recipes use 4 on one CPU core)."""
RUN_FILES = ("train_state.pt", "train_config.json", "log.jsonl", "config.json", "weights.pt")


def shipped_dir(system: str, framework: str) -> Path:
    from core.errors import UserError

    path = ROOT / "assets" / "checkpoints" / system / framework
    if not (path / "train_config.json").is_file():
        raise UserError(f"no shipped {framework} model of {system} with a training config at {path}")
    return path


def recipe_config(system: str, framework: str, out: Path, device: str, batch_size: int = 0, resume: bool = False,
                  data: str = ""):
    """TrainConfig for continuing the shipped SYSTEM/FRAMEWORK model into ``out`` on ``device``
    (run from the repository root).

    Everything the network and loss depend on comes from the saved config; changed here: the
    batch (``batch_size``, default GPU_BATCH on a GPU and the recipe's on CPU), a constant
    learning rate (the wall time, not a step count, ends the run), the fast path, no
    validation; ``data`` replaces the recipe's dataset directory. A fork starts from the
    shipped weights with its own step count; a resume continues the shipped run's optimiser
    and steps."""
    from core.training import TrainConfig

    src = shipped_dir(system, framework)
    saved = json.loads((src / "train_config.json").read_text())
    model = json.loads((src / "config.json").read_text())
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    cfg.out = str(out)  # data and init_from stay as saved: paths relative to the repository root
    cfg.data = data or cfg.data
    cfg.device = device
    cfg.batch_size = batch_size or (GPU_BATCH if device == "cuda" else cfg.batch_size)
    cfg.lr_decay_start = 0  # constant lr after warmup
    cfg.steps = 10**9  # the wall-time limit ends the run
    cfg.val_every, cfg.progress, cfg.fast, cfg.threads = 0, False, True, 0
    cfg.ckpt_every = 200
    # the shipped values (recomputing them on another device or data subset could differ)
    cfg.rho_max = model["rho_max"]
    cfg.aggregation_norm = model["model"]["aggregation_norm"]
    if not resume:
        cfg.init_from = str(src.relative_to(ROOT))
        cfg.warmup_steps = 50
    return cfg


def train_for(cfg, seconds: float, resume: bool = False):
    """Train ``cfg`` until ``seconds`` of wall time have passed; save at the step reached.
    Returns the Trainer."""
    from core.training import Trainer

    trainer = Trainer(cfg, resume=resume)
    deadline = time.monotonic() + seconds

    def stop_at_deadline(step, logs):
        if time.monotonic() >= deadline:
            trainer.cfg.steps = step  # Trainer.run's loop ends after this step

    trainer.run(on_step=stop_at_deadline)
    trainer._save()
    trainer.close()
    return trainer


def _prepare_resume(src: Path, out: Path):
    """Copy the shipped run's state into ``out`` (the resume starts from it there)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("system", help="a-Si | a-SiO2")
    parser.add_argument("framework", help="shortcut | sde | ode (a shipped model with a training config)")
    parser.add_argument("minutes", type=float, help="training wall time")
    parser.add_argument("outdir")
    parser.add_argument("--resume", action="store_true", help="continue the shipped run's optimiser and steps "
                                                              "instead of forking its weights")
    parser.add_argument("--batch-size", type=int, default=0, help=f"default {GPU_BATCH} on a GPU, the recipe's on CPU")
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu")
    parser.add_argument("--data", default="", help="dataset directory instead of the recipe's (resume: must be the same)")
    parser.add_argument("--bench-n", type=int, default=32, help="structures per step count in the structure benchmark")
    parser.add_argument("--bench-steps", default="1,2,5,10")
    args = parser.parse_args(argv)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.outdir).resolve()
    data = str(Path(args.data).resolve()) if args.data else ""
    ckpt = out / "checkpoint"
    os.chdir(ROOT)  # the saved recipes name their data relative to the repository root
    started = time.time()
    cfg = recipe_config(args.system, args.framework, ckpt, device, args.batch_size, args.resume, data)
    if args.resume and not (ckpt / "train_state.pt").is_file():
        _prepare_resume(shipped_dir(args.system, args.framework), ckpt)
    trainer = train_for(cfg, 60.0 * args.minutes, resume=args.resume)
    trained_s = time.time() - started

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import structure

    bench = structure.main(["--system", args.system, "--data", cfg.data, "--checkpoint", f"{args.framework}={ckpt}",
                            "--frameworks", args.framework, "--steps", args.bench_steps, "--n", str(args.bench_n),
                            "--device", device, "--threads", "0", "--out-dir", str(out / "results"),
                            "--tag", "train_gpu", "--quiet", "--no-plot"] + (["--batch"] if device == "cuda" else []))
    summary = {"system": args.system, "framework": args.framework, "device": device,
               "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
               "mode": "resume" if args.resume else "fork", "minutes": args.minutes, "batch_size": cfg.batch_size,
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
