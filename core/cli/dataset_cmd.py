"""`amshortcut dataset build asi|sio2|meg`: make (or continue) an MD dataset directory."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from core.cli import app
from core.errors import UserError

dataset_app = typer.Typer(help="Datasets made by molecular dynamics (LAMMPS): a-Si, a-SiO2, MEG.",
                          no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")

SYSTEMS = ("asi", "sio2", "meg")


@dataset_app.command("build")
def build_cmd(
    system: str = typer.Argument(..., help="asi (Stillinger–Weber a-Si, 256 atoms) or sio2 "
                                 "(Tersoff a-SiO2, 80–250 atoms, with shear modulus and ring size) or meg (BMP-shrm "
                                 "oxide glasses of 11 elements, ~250 atoms, with Young's and shear modulus and Li %)"),
    n: int = typer.Option(..., "--n", help="number of structures the directory should hold"),
    out: Path = typer.Option(..., "--out", help="dataset directory (created; resumed if it exists)"),
    seed: int = typer.Option(0, "--seed", help="master seed (unit seeds and the train/val split derive from it)"),
    workers: int = typer.Option(1, "--workers", help="worker processes of the local Dask cluster, one core "
                                f"each (this machine: {os.cpu_count()}); ignored with --scheduler"),
    scheduler: str = typer.Option(None, "--scheduler", help="address of a running Dask scheduler "
                                  "(e.g. tcp://host:8786) to run the units on instead of a local cluster; "
                                  "its workers must see --out"),
    recipe: str = typer.Option(None, "--recipe", help="recipe of the units still to build: asi: trajectory; "
                               "sio2: melt-quench (default, one melt per structure) or quench-series "
                               "(10 quenches from one melt); meg: melt-quench-evap-check (default: melts that "
                               "evaporate are redone cooler) or melt-quench (a fixed 3500 K melt)"),
    reference: bool = typer.Option(True, "--reference/--no-reference",
                                   help="write reference.npz (train RDF/ADF, split-half floor) at the end"),
):
    """Generate structures until OUT holds N of them; re-running continues where it stopped.

    Finished shards are never rewritten; an interrupted work unit is redone from its seed.
    Units run on a Dask cluster (local by default). A directory can hold units of several
    recipes; meta.json says which recipe made each shard.
    Example: amshortcut dataset build asi --n 2048 --out assets/data/a-Si --seed 0
    """
    if system not in SYSTEMS:
        raise UserError(f"unknown system {system!r}; choose one of: {', '.join(SYSTEMS)}")
    from core.datasets import write_reference
    import signal

    from core.datasets.build import SYSTEMS as BUILDERS
    from core.datasets.build import build

    def stop(signum, frame):  # `kill PID` stops like Ctrl-C: the cluster closes, meta.json is recounted
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    meta = build(system, n, out, seed=seed, workers=workers, scheduler=scheduler,
                 recipe=BUILDERS[system].recipe_type(recipe))
    if reference and meta.get("n_train", 0) >= 2:
        write_reference(out)
    typer.echo(f"{out}: {meta['n_structures']} structures "
               f"({meta['n_train']} train, {meta['n_val']} val)")
