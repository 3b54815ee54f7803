"""scripts/train_gpu.sh's logic (core.train_gpu) on CPU: fork the shipped a-Si AMShortcut, train
for a wall time of seconds, stop cleanly with a saved checkpoint, run the structure benchmark."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import ase.io
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.datasets.shards import shard_path, write_shard
from core.errors import UserError
from core.train_gpu import recipe_config

ROOT = Path(__file__).resolve().parents[1]


def test_recipe_config_comes_from_the_shipped_recipe_file():
    from core.recipe import load_recipe

    shipped = load_recipe(ROOT / "configs/a-Si/shortcut.toml")
    model = json.loads((ROOT / "assets/checkpoints/a-Si/shortcut/config.json").read_text())
    recipe = recipe_config("a-Si", "shortcut", "cuda")
    assert (recipe.network, recipe.schedule) == (replace(shipped.network, aggregation_norm=model["model"]["aggregation_norm"]),
                                                 shipped.schedule)
    # bfloat16 where the device computes it (an H100 does)
    assert (recipe.data.path, recipe.data.rho_max, recipe.runtime.bf16) == (shipped.data.path, model["rho_max"], "auto")
    assert (recipe.optimisation.batch_size, recipe.runtime.fast) == (64, True)
    assert (recipe.init.checkpoint, recipe.init.recipe, recipe.phases) == ("assets/checkpoints/a-Si/shortcut", "", [])
    # a constant lr, the recipe's last, after a 50-step warmup
    assert recipe.optimisation.lr_at(50) == recipe.optimisation.lr_at(10**6) == shipped.optimisation.lr_schedule[-1].lr
    assert recipe_config("a-Si", "shortcut", "cpu").optimisation.batch_size == shipped.optimisation.batch_size
    # --set overrides come last: a band of training times, on top of the GPU settings
    banded = recipe_config("a-SiO2", "shortcut", "cuda", sets=["schedule.t_band=[0.15, 0.35]",
                                                              "schedule.t_band_fraction=0.5"])
    assert (banded.schedule.t_band, banded.schedule.t_band_fraction) == ([0.15, 0.35], 0.5)
    assert (banded.optimisation.batch_size, banded.runtime.fast) == (64, True)
    with pytest.raises(UserError, match="schedule.t_band_fraction must be in"):
        recipe_config("a-SiO2", "shortcut", "cuda", sets=["schedule.t_band_fraction=2"]).check()


def _tiny_asi(path: Path) -> Path:
    """Seven structures of the a-Si data (five train, two val) as a dataset directory."""
    frames = ase.io.read(ROOT / "assets/data/a-Si/shard-0000.extxyz.gz", index=":7")
    for k, atoms in enumerate(frames):
        atoms.info.update(id=k, split="val" if k >= 5 else "train")
    path.mkdir()
    write_shard(shard_path(path, 0), frames)
    return path


def test_cpu_fallback_trains_for_the_wall_time_then_benchmarks(tmp_path, monkeypatch):
    from core import train_gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)  # main() goes to the repository root itself
    data = _tiny_asi(tmp_path / "data")
    summary = train_gpu.main(["a-Si", "shortcut", "0.05", "out", "--data", str(data),
                              "--bench-n", "1", "--bench-steps", "1", "--set", "schedule.t_band_fraction=0.5"])
    out = tmp_path / "out"
    assert summary["device"] == "cpu" and summary["mode"] == "fork" and summary["step"] >= 1
    assert json.loads((out / "summary.json").read_text())["step"] == summary["step"]
    state = torch.load(out / "checkpoint" / "train_state.pt", weights_only=True)
    assert state["step"] == summary["step"]  # saved at the step where the wall time ran out
    checkpoint = load_checkpoint(out / "checkpoint")
    assert checkpoint.training["step"] == summary["step"]
    assert checkpoint.training["recipe"]["schedule"]["t_band_fraction"] == 0.5  # --set reached the run
    rows = json.loads((out / "results" / "structure_a-Si_train_gpu.json").read_text())
    assert rows  # the structure benchmark ran on the trained checkpoint



def test_unknown_system_is_one_line(capsys):
    from core.train_gpu import cli

    assert cli(["a-Xx", "shortcut", "1", "out"]) == 2
    assert capsys.readouterr().err.startswith("error: no shipped shortcut model of a-Xx")


def test_resume_without_an_earlier_run_is_one_line(tmp_path, capsys):
    from core.train_gpu import cli

    assert cli(["a-Si", "shortcut", "1", str(tmp_path / "out"), "--resume", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot resume:")
