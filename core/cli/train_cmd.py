"""`amshortcut train`: train a Material ODE / SDE / AMShortcut model on a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from core.cli import app
from core.errors import UserError

HELP = (
    "Train a generative model and write a checkpoint (config.json + weights.pt) to --out.\n\n"
    "--data is a dataset directory (train/val splits, see `amshortcut dataset`) or one structure "
    "file. The EMA weights are saved every --ckpt-every steps; --resume continues a stopped run "
    "in --out exactly (same data order and random numbers). Multi-GPU / multi-node: launch with "
    "`torchrun --nproc-per-node N $(which amshortcut) train ...` (gloo on CPU).\n\n"
    "Example: amshortcut train --framework shortcut --data assets/data/a-Si --out runs/a-Si --steps 2000"
)


@app.command("train", help=HELP)
def train_command(
    data: Path = typer.Option(..., help="Dataset directory or structure file."),
    out: Path = typer.Option(..., help="Output directory (checkpoint, logs, training state)."),
    framework: str = typer.Option("shortcut", help="ode | sde | shortcut"),
    properties: str = typer.Option("", help="Comma-separated property names to condition on."),
    steps: int = typer.Option(2000, help="Total optimisation steps (also the target when resuming)."),
    batch_size: int = typer.Option(4, help="Structures per step (per process)."),
    lr: float = typer.Option(1e-3, help="AdamW learning rate."),
    lr_decay_start: int = typer.Option(0, help="Step from which the learning rate follows a cosine down to "
                                               "--lr-final at --steps (0 = constant after the warmup)."),
    lr_final: float = typer.Option(1e-5, help="Learning rate reached at --steps when --lr-decay-start is set."),
    seed: int = typer.Option(0),
    ema_decay: float = typer.Option(0.999, help="Decay of the weight EMA that is saved as the checkpoint and, for "
                                                "AMShortcut, builds the self-consistency targets (may change on "
                                                "--resume; lower = targets follow the network sooner)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --out."),
    width: int = typer.Option(128, help="Hidden width of the EGNN."),
    layers: int = typer.Option(4, help="EGNN layers."),
    vector_channels: int = typer.Option(8, help="Vector channels k per atom."),
    cutoff: float = typer.Option(6.5, help="Graph cutoff radius (Å)."),
    distance_rbf: int = typer.Option(0, help="Gaussian radial basis functions on edge distances, added to the "
                                             "paper's single tanh(r^2) feature (0 = paper; 32 resolves sharp bonds "
                                             "such as Si-O)."),
    sigma_x_max: float = typer.Option(12.0, help="Position noise at t = 1 (Å); the paper uses 1.7."),
    sigma_x_power: float = typer.Option(1.0, help="Position noise sigma_x_max * t^p (1 = the paper's linear schedule; "
                                              "2 = time warp toward low noise, for few-step sampling)."),
    sc_fraction: float = typer.Option(0.25, help="Share of batches with the self-consistency loss (shortcut)."),
    sc_level_power: float = typer.Option(0.0, help="Self-consistency levels: step size 2d is drawn with probability "
                                                   "~ (2d)^power (0 = uniform, as Frans et al.; 0.5 trains the 1-step map "
                                                   "2.3x and the 2-step map 1.6x as often; may change on --resume)."),
    sc_units: str = typer.Option("noise", help="Units of the self-consistency loss: 'noise' (as L_SDE) or 'drift' "
                                               "(SPEC's |u - target|^2 in Å per unit time; weights big jumps "
                                               "by drift_scale(t)^2)."),
    ghost_target: str = typer.Option("noise", help="Position target of ghost atoms (SDE, shortcut): 'noise' (their "
                                                   "random noise, like real atoms) or 'mean' (0, its conditional "
                                                   "mean: same optimum, less gradient noise)."),
    t_power: float = typer.Option(1.0, help="Training times t = u^p, u ~ U(0,1); p > 1 favours low noise."),
    rho_max: float = typer.Option(0.0, help="Atoms/Å^3 incl. ghosts (0 = 1.1 x densest structure)."),
    max_structures: int = typer.Option(0, help="Train on the first N structures only (0 = all)."),
    init_from: Path = typer.Option(None, help="AMShortcut only: start from this trained Material SDE checkpoint "
                                              "(same size and schedule); the step-size inputs start at zero, so "
                                              "training begins at the SDE network for every step size."),
    property_dropout: float = typer.Option(0.0, help="Probability that a structure's property is hidden (the null "
                                                     "embedding) in a training batch; 0 = all always given, as the "
                                                     "paper. ~0.3 teaches the model what 'unset' means, so partial "
                                                     "and unconditioned sampling work (may change on --resume)."),
    val_every: int = typer.Option(500, help="Validate (RDF/ADF RMSD of EMA samples) every N steps; 0 = never."),
    val_samples: int = typer.Option(4, help="Structures generated per validation (more = less noisy RMSD)."),
    val_steps: str = typer.Option("1,10", help="Comma-separated sampling step counts for validation."),
    ckpt_every: int = typer.Option(500, help="Save a checkpoint every N steps."),
    bf16: bool = typer.Option(False, "--bf16", help="bfloat16 autocast (faster on CPUs with AMX)."),
    fast: bool = typer.Option(False, "--fast", help="The network's fast path: the same network and loss with fewer "
                                                    "kernels (benchmarks/throughput.py; may change on --resume)."),
    threads: int = typer.Option(0, help="Torch CPU threads (0 = default)."),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
):
    from core.frameworks import FRAMEWORKS
    from core.frameworks.base import GHOST_TARGETS, SC_UNITS
    from core.training import TrainConfig, train

    if framework not in FRAMEWORKS:
        raise UserError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    if not data.exists():
        raise UserError(f"{data}: no such dataset directory or file")
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise UserError("steps and batch size must be positive, and the learning rate above 0")
    if not 1.0 <= sigma_x_power <= 4.0:
        raise UserError(f"--sigma-x-power must be between 1 and 4, got {sigma_x_power}")
    if lr_decay_start and not 0 < lr_decay_start < steps:
        raise UserError(f"--lr-decay-start must be between 1 and --steps - 1 ({steps - 1}), got {lr_decay_start}")
    if not 0.0 <= lr_final <= lr:
        raise UserError(f"--lr-final must be between 0 and --lr ({lr}), got {lr_final}")
    if distance_rbf < 0:
        raise UserError(f"--distance-rbf must be 0 or a positive count, got {distance_rbf}")
    if not 0.0 <= ema_decay < 1.0:
        raise UserError(f"--ema-decay must be in [0, 1), got {ema_decay}")
    if sc_units not in SC_UNITS:
        raise UserError(f"--sc-units must be one of {', '.join(SC_UNITS)}, got {sc_units!r}")
    if ghost_target not in GHOST_TARGETS:
        raise UserError(f"--ghost-target must be one of {', '.join(GHOST_TARGETS)}, got {ghost_target!r}")
    if ghost_target != "noise" and framework == "ode":
        raise UserError("--ghost-target applies to the sde and shortcut frameworks (the ode has no noise target)")
    if not 0.0 <= property_dropout < 1.0:
        raise UserError(f"--property-dropout must be in [0, 1), got {property_dropout}")
    if property_dropout and not properties.strip():
        raise UserError("--property-dropout needs --properties to condition on")
    if val_samples < 1:
        raise UserError(f"--val-samples must be at least 1, got {val_samples}")
    if t_power <= 0:
        raise UserError(f"--t-power must be positive, got {t_power}")
    if not 0.0 <= sc_fraction <= 1.0:
        raise UserError(f"--sc-fraction must be between 0 and 1, got {sc_fraction}")
    if not 0.0 <= sc_level_power <= 4.0:
        raise UserError(f"--sc-level-power must be between 0 and 4, got {sc_level_power}")
    if sc_level_power and framework != "shortcut":
        raise UserError("--sc-level-power applies to the shortcut framework only")
    try:
        vsteps = [int(s) for s in val_steps.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--val-steps must be comma-separated whole numbers, got {val_steps!r}") from None
    cfg = TrainConfig(framework=framework, data=str(data), out=str(out),
                      properties=[p.strip() for p in properties.split(",") if p.strip()], steps=steps,
                      batch_size=batch_size, lr=lr, lr_decay_start=lr_decay_start,
                      lr_final=lr_final, seed=seed, ema_decay=ema_decay, width=width, layers=layers,
                      vector_channels=vector_channels, cutoff=cutoff, distance_rbf=distance_rbf, sigma_x_max=sigma_x_max, sigma_x_power=sigma_x_power, sc_fraction=sc_fraction,
                      sc_level_power=sc_level_power, sc_units=sc_units,
                      ghost_target=ghost_target, t_power=t_power,
                      rho_max=rho_max,
                      max_structures=max_structures, init_from=str(init_from or ""),
                      property_dropout=property_dropout, val_every=val_every, val_samples=val_samples, val_steps=vsteps,
                      ckpt_every=ckpt_every, bf16=bf16, fast=fast, threads=threads, device=device)
    trainer = train(cfg, resume=resume)
    if trainer.rank == 0:
        typer.echo(f"checkpoint written to {out} (step {trainer.step})")
