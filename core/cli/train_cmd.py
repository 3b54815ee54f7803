"""`amshortcut train`: train a Material ODE / SDE / AMShortcut model from a recipe file."""

from __future__ import annotations

from pathlib import Path

import typer

from core.cli import app
from core.errors import UserError

HELP = (
    "Train a generative model from a recipe and write a checkpoint (config.json + weights.pt) to --out.\n\n"
    "A recipe is a TOML file with the sections data, network, schedule, optimisation (steps, batch, "
    "a piecewise learning rate), validation, runtime, init (a warm start) and phases (docs/recipes.md). "
    "configs/<system>/<framework>.toml reproduce the shipped models, each run phase of their history "
    "included; --set SECTION.KEY=VALUE changes one setting (the value is a "
    "TOML literal: 100, 5e-4, true, \"text\", [1, 2]; repeat --set for more). Every check names "
    "the key at fault.\n\n"
    "The run saves its recipe as recipe.toml beside the checkpoint (a valid --config) and the EMA "
    "weights every runtime.checkpoint_every steps. --resume continues the run in --out exactly "
    "(same data order and random numbers), with its saved recipe unless --config is given; "
    "settings such as optimisation.steps or the lr schedule may change, each change is logged in "
    "log.jsonl. A recipe whose init.recipe names a parent trains the parent first into "
    "--out/parent (resumed if stopped, skipped if finished) and forks it. Multi-GPU / multi-node: "
    "`torchrun --nproc-per-node N $(which amshortcut) train ...` (gloo on CPU).\n\n"
    "Example: amshortcut train --config configs/a-Si/shortcut.toml --out runs/a-Si-shortcut\n\n"
    "Two steps of it and of its parent: ... --set optimisation.steps=2 --set init.step=2"
)


@app.command("train", help=HELP)
def train_command(
    out: Path = typer.Option(..., help="Output directory (checkpoint, recipe.toml, log.jsonl, training state)."),
    config: Path = typer.Option(None, help="Recipe file (TOML), e.g. configs/a-Si/shortcut.toml; with --resume "
                                           "the default is the run's own --out/recipe.toml."),
    set_: list[str] = typer.Option(None, "--set", help="SECTION.KEY=VALUE override, e.g. optimisation.steps=100 "
                                                     "(repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --out."),
):
    from core.recipe import load_recipe, saved_recipe
    from core.training import train

    if config is not None:
        recipe = load_recipe(config, set_ or ())
    elif resume:
        recipe = saved_recipe(out)
        if recipe is None:
            raise UserError(f"cannot resume: {out} holds no recipe.toml (give --config)")
        recipe = recipe.with_overrides(set_) if set_ else recipe
    else:
        raise UserError("--config is required (a recipe file such as configs/a-Si/shortcut.toml)")
    recipe.check(paths=True, init=not resume)
    trainer = train(recipe, out, resume=resume)
    if trainer.rank == 0:
        typer.echo(f"checkpoint written to {out} (step {trainer.step})")
