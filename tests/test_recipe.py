"""Recipes: every file in configs/ trains for two steps (parents included), a run's saved
recipe.toml is itself a valid --config, the checks name the key at fault, the piecewise lr
schedule equals the shipped runs' phases, and the recipes state the shipped runs' settings."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core.cli import main
from core.errors import UserError
from core.recipe import LrSegment, OptimisationConfig, Recipe, from_legacy, load_recipe, parse_value
from core.training import Trainer, load_structures, train, train_parent

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*/*.toml"))
# two steps, a tiny validation at step 2, a checkpoint at the end, parents forked at their step 2
TWO_STEPS = ["optimisation.steps=2", "validation.every=2", "validation.samples=1", "validation.steps=[1]",
             "runtime.checkpoint_every=2", "runtime.progress=false", "runtime.device='cpu'"]


def test_configs_cover_every_shipped_model():
    names = {str(p.relative_to(ROOT / "configs")) for p in CONFIGS}
    assert {"a-Si/shortcut.toml", "a-Si/sde.toml", "a-Si/ode.toml", "a-SiO2/shortcut.toml"} <= names


_DATASETS = {}


def _cached_load_structures(data, split, md_recipe=""):
    """core.training.load_structures, read once per (dataset, split) in this test module (the
    a-Si dataset takes seconds to parse, and four recipes and a parent train on it)."""
    key = (str(Path(data).resolve()), split, md_recipe)
    if key not in _DATASETS:
        _DATASETS[key] = load_structures(data, split, md_recipe)  # the real reader, imported above
    return list(_DATASETS[key])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_recipe_trains_two_steps(path, tmp_path, monkeypatch, one_thread):
    """`amshortcut train --config FILE --set ...` as CI runs it; a parent recipe is trained
    first into OUT/parent (two steps too) and forked; the saved recipe.toml round-trips."""
    monkeypatch.chdir(ROOT)  # recipe paths are relative to the repository root
    monkeypatch.setattr("core.training.load_structures", _cached_load_structures)
    out = tmp_path / "run"
    recipe = load_recipe(path)
    sets = TWO_STEPS + (["init.step=2"] if recipe.init.recipe else []) \
        + (["distillation.pairs=2", "distillation.teacher_steps=2"] if recipe.distillation.teacher else [])
    main(["train", "--config", str(path), "--out", str(out), *[a for s in sets for a in ("--set", s)]])
    want = load_recipe(path, sets)
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["step"] == 2 and config["framework"] == want.schedule.framework
    assert load_recipe(out / "recipe.toml") == want
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("val_rdf_1" in rec or "val_1_error" in rec for rec in log)
    if want.init.recipe:
        parent = json.loads((out / "parent" / "config.json").read_text())
        assert parent["training"]["step"] == 2 and parent["framework"] == "sde"
        assert load_recipe(out / "parent" / "recipe.toml").optimisation.steps == 2


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipe_files_round_trip(path):
    recipe = load_recipe(path)
    again = Recipe.from_dict(__import__("tomllib").loads(recipe.to_toml("header")))
    assert again == recipe and again.flat() == recipe.flat()


# The shipped a-Si AMShortcut's phases, from the resume records of its log.jsonl: (end of the
# phase, the flags it ran with: lr, lr_decay_start, steps). Steps 7,500-10,000 ran with
# --steps 15000 --lr-decay-start 12000 (a constant lr), 10,000-12,500 with 12500 / 11000.
A_SI_SHORTCUT_PHASES = [(3000, 1e-3, 1500, 3000), (7500, 5e-4, 5000, 7500), (10000, 5e-4, 12000, 15000),
                        (12500, 5e-4, 11000, 12500)]


def test_piecewise_lr_equals_the_shipped_phases_at_every_step():
    """One recipe's lr_schedule gives, at every step, the lr each resumed phase computed from its
    own flags (warmup 100, lr_final 1e-5)."""
    recipe = load_recipe(ROOT / "configs" / "a-Si" / "shortcut.toml").optimisation
    start = 0
    for end, lr, decay_start, steps in A_SI_SHORTCUT_PHASES:
        phase = OptimisationConfig(steps=steps, lr_schedule=[LrSegment(lr, steps, decay_start)])
        assert [recipe.lr_at(s) for s in range(start, end)] == [phase.lr_at(s) for s in range(start, end)]
        start = end
    # at the boundaries: the end of a decay, then the restart's lr
    assert recipe.lr_at(2999) == pytest.approx(1e-5, rel=1e-3) and recipe.lr_at(3000) == 5e-4
    assert recipe.lr_at(7499) == pytest.approx(1e-5, rel=1e-2) and recipe.lr_at(7500) == 5e-4
    assert recipe.lr_at(10999) == 5e-4 and recipe.lr_at(12499) == pytest.approx(1e-5, rel=1e-2)


@pytest.mark.parametrize("config, checkpoint", [
    ("a-Si/sde.toml", "a-Si/sde"), ("a-Si/ode.toml", "a-Si/ode"), ("a-Si/shortcut.toml", "a-Si/shortcut"),
    ("a-SiO2/shortcut.toml", "a-SiO2/shortcut"), ("a-Si/sde-parent.toml", "a-Si/shortcut/init-sde-step12500"),
    ("a-SiO2/sde-parent.toml", "a-SiO2/shortcut/init-sde-step11500"), ("MEG/shortcut.toml", "MEG/shortcut"),
    ("MEG/sde-parent.toml", "MEG/shortcut/init-sde-step12000")])
def test_recipes_state_the_shipped_runs_settings(config, checkpoint):
    """Each recipe equals the settings saved in its shipped checkpoint, except where the recipe
    says more: the whole lr history instead of the last phase, and the parent as a recipe.
    Older checkpoints saved flat training flags (``train_config``), newer ones their recipe."""
    path = ROOT / "assets" / "checkpoints" / checkpoint / "config.json"
    if not path.is_file():
        pytest.skip(f"{checkpoint} is not in this tree")
    training = json.loads(path.read_text())["training"]
    shipped = (Recipe.from_dict(training["recipe"]) if "recipe" in training
               else from_legacy(training["train_config"])).flat()
    recipe = load_recipe(ROOT / "configs" / config).flat()
    differ = {k for k in recipe if recipe[k] != shipped[k]}
    # data.md_recipe: the a-SiO2 runs trained when the directory held only melt-quench shards;
    # runtime.compile / fast: speed settings (the same network); runtime.bf16: the shipped runs
    # took bfloat16 on CPUs with AMX, which "auto" gives them there
    assert differ <= {"optimisation.lr_schedule", "init.checkpoint", "init.recipe", "init.step", "phases",
                      "data.md_recipe", "runtime.compile", "runtime.fast", "runtime.bf16"}, differ
    assert "runtime.bf16" not in differ or (recipe["runtime.bf16"], shipped["runtime.bf16"]) == ("auto", True)
    last = recipe["optimisation.lr_schedule"][-1]
    assert [last] == shipped["optimisation.lr_schedule"] or last["decay_start"] == 11000  # a-Si: see above
    if recipe["init.recipe"] and "recipe" not in training:  # a flat config named the parent's weights
        assert Path(shipped["init.checkpoint"]).name == f"init-sde-step{recipe['init.step']}"
    if recipe["init.recipe"]:  # the parent's weights ship beside the model
        assert (path.parent / f"init-sde-step{recipe['init.step']}" / "weights.pt").is_file()


def test_phases_set_the_settings_of_earlier_steps(tmp_path, one_thread):
    """The a-SiO2 parent SDE ran its first 9,500 steps without property dropout; a phase says so,
    and the trainer hides properties only from step 9,500 on."""
    recipe = load_recipe(ROOT / "configs" / "a-SiO2" / "sde-parent.toml")
    assert [recipe.at(s).data.property_dropout for s in (0, 9499, 9500, 11499)] == [0.0, 0.0, 0.3, 0.3]
    assert recipe.at(0).optimisation == recipe.optimisation and recipe.at(0).phases == []
    path = _tiny(tmp_path, "p.toml", "[schedule]\nframework = \"shortcut\"", "[optimisation]\nsteps = 40",
                 "[[phases]]\nend = 20\ndata.property_dropout = 0.0\nschedule.sc_level_power = 1.0",
                 data='properties = ["shear_modulus"]\nproperty_dropout = 0.5')
    trainer = Trainer(load_recipe(path), tmp_path / "run")
    hidden = [bool(torch.isnan(trainer._make_batch(step).y).any()) for step in range(40)]
    assert not any(hidden[:20]) and sum(hidden[20:]) >= 10
    assert load_recipe(path).at(19).schedule.sc_level_power == 1.0 and load_recipe(path).at(20).schedule.sc_level_power == 0.0
    for text, message in [("[[phases]]\nend = 5\nnetwork.width = 8", "phases[0].network.width cannot change within a run"),
                          ("[[phases]]\nend = 5\n[[phases]]\nend = 5", "phases[1].end must be after the previous phase's end (5)"),
                          ("[[phases]]\ndata.property_dropout = 0.1", "phases[0].end is required"),
                          ("[[phases]]\nend = 5\noptimisation.ema_decay = 2", "phases[0]: optimisation.ema_decay must be in")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(f'[data]\npath = "x"\n{text}\n')
        with pytest.raises(UserError, match=message.replace("[", "\\[").replace("(", "\\(").replace(")", "\\)")):
            load_recipe(bad)


def _tiny(tmp_path, name, *lines, data=""):
    """A tiny recipe file on a 2-structure dataset, with more TOML ``lines`` (and [data] keys)."""
    structures = tmp_path / "d.extxyz"
    if not structures.exists():
        from tests.test_training import _dataset

        _dataset(structures)
    path = tmp_path / name
    path.write_text("\n".join([f'[data]\npath = "{structures}"\n{data}', "[network]\nwidth = 16\nlayers = 1\nvector_channels = 2\n"
                               "cutoff = 4.0", "[runtime]\nprogress = false\ncheckpoint_every = 1",
                               "[validation]\nevery = 0", *lines]) + "\n")
    return path


def test_parent_is_trained_once_resumed_when_short_and_refused_when_past(tmp_path, one_thread):
    parent = _tiny(tmp_path, "parent.toml", '[schedule]\nframework = "sde"', "[optimisation]\nsteps = 3")
    child = _tiny(tmp_path, "child.toml", '[schedule]\nframework = "shortcut"', "[optimisation]\nsteps = 1",
                  f'[init]\nrecipe = "{parent}"\nstep = 2')
    out = tmp_path / "run"
    trainer = train(load_recipe(child), out)
    assert trainer.step == 1 and json.loads((out / "parent" / "config.json").read_text())["training"]["step"] == 2
    weights = (out / "parent" / "weights.pt").stat().st_mtime_ns
    assert train_parent(load_recipe(child), out) == out / "parent"  # finished: skipped
    assert (out / "parent" / "weights.pt").stat().st_mtime_ns == weights
    train_parent(load_recipe(child, ["init.step=3"]), out)  # stopped short of the fork step: resumed
    log = [json.loads(line) for line in (out / "parent" / "log.jsonl").read_text().splitlines()]
    assert {"step": 2, "resumed": True, "changed": {"optimisation.steps": [2, 3]}} in log
    with pytest.raises(UserError, match="is at step 3, past the parent's step 1 to fork at"):
        train_parent(load_recipe(child, ["init.step=1"]), out)


def test_saved_recipe_retrains_the_same_model(tmp_path, one_thread):
    """recipe.toml beside a checkpoint is a valid --config that trains the same weights again,
    its parent included."""
    parent = _tiny(tmp_path, "parent.toml", '[schedule]\nframework = "sde"', "[optimisation]\nsteps = 2")
    child = _tiny(tmp_path, "child.toml", '[schedule]\nframework = "shortcut"', "[optimisation]\nsteps = 2",
                  f'[init]\nrecipe = "{parent}"')
    main(["train", "--config", str(child), "--out", str(tmp_path / "a")])
    main(["train", "--config", str(tmp_path / "a" / "recipe.toml"), "--out", str(tmp_path / "b")])
    for run in ("a", "b/parent", "b"):
        assert (tmp_path / run / "recipe.toml").is_file()
    first, again = (torch.load(tmp_path / run / "weights.pt", weights_only=True) for run in ("a", "b"))
    assert all(torch.equal(first[k], again[k]) for k in first)


@pytest.mark.parametrize("text, message", [
    ("[optimisation]\nstpes = 3", "unknown key optimisation.stpes (known in [optimisation]: steps, batch_size"),
    ("[optimisation]\nstpes = 3\nlrr = 1", "unknown keys optimisation.lrr, optimisation.stpes"),
    ("[optimiser]\nsteps = 3", "unknown section optimiser (known: data, network"),
    ("[optimisation]\nsteps = 0", "optimisation.steps must be >= 1, got 0"),
    ("[optimisation]\nsteps = 2.5", "optimisation.steps must be a whole number, got 2.5"),
    ("[optimisation]\nsteps = true", "optimisation.steps must be a whole number, got True"),
    ("[optimisation]\nlr_schedule = [{lr = -1}]", "optimisation.lr_schedule[0].lr must be > 0, got -1.0"),
    ("[optimisation]\nsteps = 10\nlr_schedule = [{lr = 1e-3, end = 5}, {lr = 1e-3, end = 4}]",
     "optimisation.lr_schedule[1].end must be after the segment's start (5), got 4"),
    ("[optimisation]\nsteps = 10\nlr_schedule = [{lr = 1e-3, end = 5}, {lr = 1e-3, end = 10, decay_start = 2}]",
     "optimisation.lr_schedule[1].decay_start must be 0 (no decay) or in [5, 10), got 2"),
    ("[optimisation]\nsteps = 20\nlr_schedule = [{lr = 1e-3, end = 10}]",
     "optimisation.steps (20) runs past the end of the lr schedule (10)"),
    ("[optimisation]\nlr_schedule = [{lr = 1e-3, ed = 10}]", "unknown key optimisation.lr_schedule[0].ed"),
    ("[optimisation]\nlr_final = 1", "optimisation.lr_final must be between 0 and optimisation.lr_schedule[0].lr"),
    ("[schedule]\nframework = \"flow\"", "schedule.framework must be one of shortcut, sde, ode, got 'flow'"),
    ("[schedule]\nsigma_x_power = 5", "schedule.sigma_x_power must be in [1.0, 4.0], got 5.0"),
    ("[network]\ncutoff = 0", "network.cutoff must be > 0, got 0.0"),
    ("[network]\nproperty_null = \"zero\"", "network.property_null must be one of normal, affine, learned, got 'zero'"),
    ("[network]\nproperty_features = 1", "network.property_features must be 0 (the value itself) or at least 2, got 1"),
    ("[optimisation]\n[data]\npath = \"x\"\nproperty_dropout = 0.3", "data.property_dropout needs data.properties"),
    ("[init]\ncheckpoint = \"a\"\nrecipe = \"b\"", "init.checkpoint and init.recipe are alternatives"),
    ("[schedule]\nframework = \"ode\"\n[init]\ncheckpoint = \"a\"", "applies to the shortcut and sde frameworks, not ode"),
    ("[validation]\nsteps = \"1,10\"", "validation.steps must be a list, got '1,10'"),
    ("[schedule]\nt_band = [0.4, 0.2]", "schedule.t_band must be [low, high] with 0 <= low < high <= 1, got [0.4, 0.2]"),
    ("[schedule]\nt_band_fraction = 1.5", "schedule.t_band_fraction must be in [0.0, 1.0], got 1.5"),
    ("[init]\ngrow = true", "init.grow adds layers to a warm start: it needs init.checkpoint or init.recipe"),
    ("[runtime]\nbf16 = \"yes\"", "runtime.bf16 must be one of true, false, auto, got 'yes'"),
    ("[runtime]\nbf16 = 1", "runtime.bf16 must be true or false or a string, got 1"),
])
def test_bad_recipes_name_the_key(tmp_path, text, message):
    path = tmp_path / "r.toml"
    path.write_text(text + ("" if "[data]" in text else "\n[data]\npath = \"x.extxyz\"") + "\n")
    with pytest.raises(UserError) as exc:
        load_recipe(path)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_bf16_auto_is_bfloat16_only_where_the_hardware_computes_it(monkeypatch):
    """``runtime.bf16 = "auto"``: bfloat16 on a CPU with AMX-BF16 or AVX512-BF16, float32 on an
    AVX2-only one (where emulated bfloat16 made a training step ~5x slower); true / false stay."""
    from core.model.denoiser import native_bf16

    runtime = Recipe.from_dict({"data": {"path": "x"}, "runtime": {"bf16": "auto"}}).runtime
    for caps, native in [({"avx2": True, "avx512_bf16": False, "amx_bf16": False}, False),
                         ({"avx2": True, "avx512_bf16": True}, True), ({"amx_bf16": True}, True)]:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda caps=caps: caps)
        assert native_bf16("cpu") is native and runtime.use_bf16("cpu") is native
        assert replace(runtime, bf16=True).use_bf16("cpu") is True
        assert replace(runtime, bf16=False).use_bf16("cpu") is False
    assert load_recipe(ROOT / "configs" / "a-Si" / "shortcut.toml").runtime.bf16 == "auto"


def test_overrides_and_paths(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[data]\npath = "nowhere.extxyz"\n')
    recipe = load_recipe(path, ["optimisation.steps=5", "data.properties=['g']", "data.path=other/dir",
                                "optimisation.lr_schedule=[{lr = 5e-4, end = 5, decay_start = 2}]"])
    assert recipe.optimisation.steps == 5 and recipe.data.properties == ["g"] and recipe.data.path == "other/dir"
    assert recipe.optimisation.lr_schedule == [LrSegment(5e-4, 5, 2)]
    assert recipe.schedule.sigma_e == 1.5 and load_recipe(path, ["schedule.framework='ode'"]).schedule.sigma_e == 1.0
    assert parse_value("1e-3") == 1e-3 and parse_value("[1, 2]") == [1, 2] and parse_value("a/b") == "a/b"
    for bad, message in [("steps=5", "expects SECTION.KEY=VALUE"), ("optimisation.steps", "expects SECTION.KEY=VALUE"),
                         ("train.steps=5", "unknown section 'train'"), ("optimisation.steps=x", "must be a whole"),
                         ("runtime.compile=true", "runtime.compile compiles the fast path's kernels: set runtime.fast")]:
        with pytest.raises(UserError, match=message):
            load_recipe(path, [bad])
    with pytest.raises(UserError, match="data.path nowhere.extxyz: no such dataset directory or file"):
        load_recipe(path).check(paths=True)
    path.write_text("[data\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_recipe(path)


def test_runs_saved_before_recipes_resume(tmp_path, one_thread):
    """A run whose directory holds a flat train_config.json (no recipe.toml) resumes: its flags
    convert to the recipe, must-match settings are checked, changes logged, recipe.toml written."""
    from core.recipe import LEGACY_KEYS

    path = _tiny(tmp_path, "r.toml", '[schedule]\nframework = "sde"', "[optimisation]\nsteps = 2\n"
                 "lr_schedule = [{lr = 1e-3, end = 4, decay_start = 2}]")
    out = tmp_path / "run"
    train(load_recipe(path), out)
    flat = load_recipe(out / "recipe.toml").flat()
    legacy = {old: flat[new] for old, new in LEGACY_KEYS.items()}
    legacy.update(lr=1e-3, lr_decay_start=2, steps=4, out=str(out))  # the old single lr segment ends at steps
    legacy.pop("sc_level_power")  # a flag the old file predates counts as its default
    (out / "train_config.json").write_text(json.dumps(legacy))
    (out / "recipe.toml").unlink()
    with pytest.raises(UserError, match="cannot resume: network.width was 16 in"):
        Trainer(load_recipe(path, ["optimisation.steps=3", "network.width=8"]), out, resume=True)
    trainer = train(load_recipe(path, ["optimisation.steps=3"]), out, resume=True)
    assert trainer.step == 3 and (out / "recipe.toml").is_file() and not (out / "train_config.json").exists()
    last_resume = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if "resumed" in line][-1]
    assert last_resume == {"step": 2, "resumed": True, "changed": {"optimisation.steps": [4, 3]}}


def test_md_recipe_selects_one_md_recipes_shards():
    """The a-SiO2 recipes train on the 1,000 melt-quench structures even after other MD recipes
    add shards to the same directory."""
    data = ROOT / "assets" / "data" / "a-SiO2"
    train = load_structures(data, "train", "melt-quench")
    assert len(train) == 901 and max(int(a.info["id"]) for a in train) < 1000
    assert len(load_structures(data, "train")) >= len(train)
    with pytest.raises(UserError, match="no shard made by recipe 'flow'"):
        load_structures(data, "train", "flow")
