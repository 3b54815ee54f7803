"""The paper benchmarks run end to end on tiny settings, and `generate` finds shipped checkpoints.

Checkpoints are trained here with `core.training` on a 3-structure dataset for 2 steps (a few
kB, seconds): their samples are poor, but every call on the way (train, save, load, generate,
metrics, property calculators, outputs) is the real one. The benchmarks are scripts, not a
package: each is loaded from its file (it imports only `core` and libraries).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from core.benchmarking import BENCHMARKS, SCRIPTS, load_script, run_script
from core.catalog import DEFAULT_STEPS, available_checkpoints, shipped_checkpoint
from core.cli import main as cli
from core.datasets.shards import shard_path, write_shard
from core.errors import UserError
from core.recipe import Recipe
from core.training import Trainer

structure, inverse_design = load_script("structure"), load_script("inverse_design")

TINY = dict(width=16, layers=1, vector_channels=2, cutoff=4.0, property_dim=4)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _dataset(path: Path, frames) -> Path:
    """A dataset directory (one shard): ids 0..n-1, the last structure in the val split."""
    path.mkdir(parents=True)
    for k, atoms in enumerate(frames):
        atoms.info.update(id=k, split="val" if k == len(frames) - 1 else "train")
    write_shard(shard_path(path, 0), frames)
    return path


def _si_frames(n=3):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2))
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        out.append(atoms)
    return out


def _sio2_frames(n=3, edge=8.0, n_si=10):
    """Random SiO2 packings (Si–O pairs ≥ 1.5 Å apart) with made-up property values."""
    rng = np.random.default_rng(1)
    out = []
    for k in range(n):
        pos = []
        while len(pos) < 3 * n_si:
            p = rng.uniform(0, edge, 3)
            d = np.array(pos) - p if pos else np.zeros((0, 3))
            d -= edge * np.round(d / edge)
            if not len(d) or np.linalg.norm(d, axis=1).min() > 1.5:
                pos.append(p)
        atoms = Atoms(["Si"] * n_si + ["O"] * (2 * n_si), positions=pos, cell=[edge] * 3, pbc=True)
        atoms.info.update(shear_modulus=25.0 + 5 * k, ring_size_mean=5.0 + 0.5 * k)
        out.append(atoms)
    return out


def _train(data: Path, out: Path, framework: str, properties=()) -> Path:
    recipe = Recipe.from_dict({
        "data": {"path": str(data), "properties": list(properties)}, "network": TINY,
        "schedule": {"framework": framework},
        "optimisation": {"steps": 2, "batch_size": 2, "warmup_steps": 1},
        "validation": {"every": 0},
        "runtime": {"checkpoint_every": 2, "progress": False, "threads": 1, "device": "cpu"}})
    Trainer(recipe, out).run()
    return out


@pytest.fixture(scope="module")
def si(tmp_path_factory):
    root = tmp_path_factory.mktemp("si")
    data = _dataset(root / "data", _si_frames())
    ckpts = root / "checkpoints" / "a-Si"
    for framework in ("shortcut", "sde"):
        _train(data, ckpts / framework, framework)
    return data, ckpts


@pytest.fixture(scope="module")
def sio2(tmp_path_factory):
    root = tmp_path_factory.mktemp("sio2")
    data = _dataset(root / "data", _sio2_frames())
    return _train(data, root / "all", "shortcut", ["shear_modulus", "ring_size_mean"])


def _csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_structure_benchmark_table_csv_json_png(si, tmp_path):
    data, ckpts = si
    out = tmp_path / "out"
    res = structure.main(["--data", str(data), "--checkpoints", str(ckpts), "--steps", "1,2", "--n", "2",
                          "--out-dir", str(out), "--quiet"])
    rows = _csv(out / "structure_a-Si.csv")
    assert [(r["framework"], r["n_s"]) for r in rows] == [
        ("shortcut", "1"), ("shortcut", "2"), ("sde", "1"), ("sde", "2")]
    for r in rows:
        assert r["n_structures"] == "2"
        for key in ("rdf_rmsd", "adf_rmsd", "seconds_per_structure"):
            assert math.isfinite(float(r[key])) and float(r[key]) >= 0, (key, r)
    s = res["summary"]
    assert "recomputed" in s["reference"] and s["reference_n"] == 2  # no reference.npz: from the shards
    assert math.isfinite(s["floors"]["rdf_split_half"]) and s["floors"]["held_out"]["set"] in ("val", "train")
    assert any("AMShortcut@1 ADF" in c["claim"] for c in s["claims"])
    assert "| n_s | AMShortcut | Material SDE |" in res["table"]
    assert (out / "structure_a-Si.json").is_file() and (out / "structure_a-Si.png").stat().st_size > 1000
    # the bond-network columns of a-Si, for every row and for the held-out data
    for r in rows + [s["floors"]["held_out"]]:
        assert 0 <= float(r["Si_4Si_share"]) <= 1 and float(r["close_pairs_per_atom"]) >= 0, r
        assert 0 <= float(r["close_pair_structure_share"]) <= 1
    assert "| set | n_s | Si with 4 Si within 2.85 Å % | pairs < 0.75 x covalent radii per atom |" in res["table"]
    assert "| data (held-out) |  |" in res["table"]


def test_structure_benchmark_checks_the_sio2_network_and_composition(sio2, tmp_path):
    out = tmp_path / "out"
    res = structure.main(["--system", "a-SiO2", "--data", str(sio2.parent / "data"), "--checkpoints", str(tmp_path),
                          "--checkpoint", f"shortcut={sio2}", "--steps", "1", "--n", "2", "--out-dir", str(out),
                          "--quiet", "--no-plot"])
    held = res["summary"]["floors"]["held_out"]  # the made-up packings: Si10O20, no pair below 1.5 Å
    assert (held["O_Si_min"], held["O_Si_max"], held["O_Si_within_share"]) == (2.0, 2.0, 1.0)
    assert held["close_pairs_per_atom"] == 0.0 and held["close_pair_structure_share"] == 0.0
    row = _csv(out / "structure_a-SiO2.csv")[0]
    for key in ("Si_4O_share", "O_2Si_share", "close_pairs_per_atom", "close_pair_structure_share",
                "O_Si_min", "O_Si_max", "O_Si_within_share"):
        assert key in row, key
    assert "| data (held-out) |  | " in res["table"] and "O/Si within 2.00 ± 0.05 %" in res["table"]
    assert "| 2 | 2 | 100 |" in res["table"]  # held-out: min 2, max 2, all within
    assert "Cation shares" not in res["table"] and "Si_cation_share" not in row  # one cation species


def test_structure_benchmark_reports_meg_cation_shares():
    """A MEG set's rows carry each cation's pooled share; the printed table has a line per set."""
    from ase import Atoms

    glass = Atoms("Li2Si2O5", positions=np.random.default_rng(0).uniform(0, 9, (9, 3)), cell=[9, 9, 9], pbc=True)
    ref = {"rdf": np.ones(100), "adf": np.ones(180)}
    row = {"framework": "shortcut", "n_s": 5, **structure.set_rmsd([glass, glass], ref, "MEG")}
    assert (row["Li_cation_share"], row["Si_cation_share"], row["O_per_cation"]) == (0.5, 0.5, 1.25)
    text = structure.cation_table([row], {"shortcut": None}, row, "MEG")
    assert "| data (held-out) |  | 50 | 0 |" in text and "| AMShortcut | 5 | 50 | 0 |" in text
    assert text.splitlines()[0].endswith("| Zn % | O per cation |") and "| 1.25 |" in text


def test_structure_benchmark_names_what_exists_when_nothing_to_run(si, tmp_path):
    data, _ = si
    with pytest.raises(UserError, match="no checkpoint to benchmark"):
        structure.main(["--data", str(data), "--checkpoints", str(tmp_path), "--steps", "1", "--n", "1",
                        "--out-dir", str(tmp_path), "--quiet", "--no-plot"])


def test_inverse_design_sweeps_scores_controls_and_data(sio2, tmp_path):
    """Both sweeps of both properties, 1 step, 2 targets x 2 structures; every structure made and measured once."""
    out = tmp_path / "out"
    res = inverse_design.main(["--checkpoint", str(sio2), "--target-checkpoint", f"shear_modulus={sio2}",
                               "--data", str(sio2.parent / "data"), "--steps", "1", "--n", "2", "--targets", "2",
                               "--relax-steps", "2", "--range", "shear_modulus=10:50", "--grid-power", "2",
                               "--out-dir", str(out), "--quiet", "--tag", "tiny"])
    rows = _csv(out / "inverse_a-SiO2_tiny.csv")
    keys = [(r["model"], r["property"], r["sweep"]) for r in rows]
    assert keys == [("All", "shear_modulus", "training"), ("None", "shear_modulus", "training"),
                    ("Data", "shear_modulus", "training"),
                    ("All", "shear_modulus", "paper"), ("None", "shear_modulus", "paper"),
                    ("Data", "shear_modulus", "paper"),
                    ("All", "ring_size_mean", "training"), ("None", "ring_size_mean", "training"),
                    ("Data", "ring_size_mean", "training"),
                    ("All", "ring_size_mean", "paper"), ("None", "ring_size_mean", "paper"),
                    ("Data", "ring_size_mean", "paper"),
                    ("Target", "shear_modulus", "training"), ("Target", "shear_modulus", "paper")]
    for r in rows:
        assert int(r["n"]) + int(r["n_missing"]) == 4  # 2 targets x 2 structures (controls and data: all pairs)
        if int(r["n"]):
            assert all(math.isfinite(float(r[k])) for k in ("mae", "rmse", "mape")), r
        if r["property"] == "shear_modulus" and r["model"] in ("All", "Target"):  # every G measured: a slope
            assert int(r["n"]) == 4 and math.isfinite(float(r["slope"])), r
    by = {(r["model"], r["property"], r["sweep"]): r for r in rows}
    stats = json.loads((sio2 / "config.json").read_text())["property_stats"]["shear_modulus"]
    assert (float(by["All", "shear_modulus", "training"]["target_low"]),
            float(by["All", "shear_modulus", "training"]["target_high"])) == (stats["min"], stats["max"])
    # data: the one held-out structure (G 35 GPa) against targets 10 and 50: MAE (25 + 15) / 2
    data = by["Data", "shear_modulus", "paper"]
    assert float(data["mae"]) == pytest.approx(20.0) and data["slope"] == "nan" and data["n_s"] == ""
    assert by["None", "shear_modulus", "paper"]["slope"] == "nan"  # ignores the target by construction
    # the control's structures are shared by both sweeps: same achieved values, scored against other targets
    assert by["None", "ring_size_mean", "training"]["mean_achieved"] == by["None", "ring_size_mean", "paper"][
        "mean_achieved"]
    with gzip.open(out / "inverse_a-SiO2_tiny_samples.csv.gz", "rt") as fh:
        samples = list(csv.DictReader(fh))
    # one line per structure and property: All 8 + 8, Target 8, control 2 structures x 2 properties, data 2 x 2
    assert len(samples) == 32
    g = sorted(float(s["target"]) for s in samples if s["property"] == "shear_modulus" and s["model"] == "All")
    assert g == [10.0] * 2 + [stats["min"]] * 2 + [stats["max"]] * 2 + [50.0] * 2  # paper 10, 50; training
    assert sum(int(r["n"]) for r in rows if r["model"] == "All") > 0, "no property could be computed"
    assert "2 structures per target, 2 targets per sweep" in res["table"]
    assert "sampling grid t_k = (1 - k/n_s)^2" in res["table"]
    assert "n/a  shear_modulus, training sweep, 10 steps: slope >= 0.5: not measured" in res["table"]
    summary = json.loads((out / "inverse_a-SiO2_tiny.json").read_text())["summary"]
    assert summary["grid_power"] == 2.0 and summary["command"].startswith("benchmarks/inverse_design.py --checkpoint")
    assert (out / "inverse_a-SiO2_tiny.png").stat().st_size > 10_000


def test_inverse_design_scores_a_property_given_beside_the_sweep(sio2, tmp_path, monkeypatch):
    """The paper's (E, Li) condition: a value given with every target of a sweep is scored against that
    value, beside a control given nothing and the held-out data; it has no slope and no plot point."""
    monkeypatch.setitem(inverse_design.PAPER_SWEEPS, "a-SiO2", {"shear_modulus": (10.0, 50.0, {"ring_size_mean": 5.5})})
    out = tmp_path / "out"
    res = inverse_design.main(["--checkpoint", str(sio2), "--data", str(sio2.parent / "data"), "--steps", "1",
                               "--n", "2", "--targets", "2", "--relax-steps", "2", "--properties", "shear_modulus",
                               "--sweep", "paper", "--out-dir", str(out), "--quiet", "--tag", "beside"])
    rows = _csv(out / "inverse_a-SiO2_beside.csv")
    assert [(r["model"], r["property"], r["with"]) for r in rows] == [
        ("All", "shear_modulus", ""), ("None", "shear_modulus", ""), ("Data", "shear_modulus", ""),
        ("All", "ring_size_mean", "shear_modulus"), ("None", "ring_size_mean", "shear_modulus"),
        ("Data", "ring_size_mean", "shear_modulus")]
    by = {r["model"]: r for r in rows if r["with"]}
    assert [int(by[m]["n"]) + int(by[m]["n_missing"]) for m in ("All", "None", "Data")] == [4, 2, 2]
    assert {by[m]["target_low"] for m in by} == {by[m]["target_high"] for m in by} == {"5.5"}
    assert by["All"]["slope"] == "nan" and by["All"]["given"] == "ring_size_mean=5.5"
    # the held-out structure (ring size 5.0; drawn twice for two cells) against 5.5: 0.5, 9.09 %
    assert float(by["Data"]["mae"]) == pytest.approx(0.5) and float(by["Data"]["mape"]) == pytest.approx(100 / 11)
    with gzip.open(out / "inverse_a-SiO2_beside_samples.csv.gz", "rt") as fh:
        rings = [s for s in csv.DictReader(fh) if s["property"] == "ring_size_mean" and s["model"] == "All"]
    assert sorted((s["target"], s["given"]) for s in rings) == [("5.5", "shear_modulus=10")] * 2 + [
        ("5.5", "shear_modulus=50")] * 2
    assert "5.5 given beside shear_modulus (paper sweep)" in res["table"]


def test_inverse_design_measures_in_worker_processes_to_the_same_figures(sio2, tmp_path):
    """--workers 2 generates everything first and measures in two processes: the same rows."""
    common = ["--checkpoint", str(sio2), "--data", str(sio2.parent / "data"), "--steps", "1", "--n", "2",
              "--targets", "2", "--relax-steps", "2", "--sweep", "training", "--quiet", "--no-plot"]
    one = inverse_design.main(common + ["--out-dir", str(tmp_path / "one")])["rows"]
    two = inverse_design.main(common + ["--out-dir", str(tmp_path / "two"), "--workers", "2"])["rows"]
    keys = ("model", "property", "n", "n_missing", "mae", "rmse", "mean_achieved")
    assert [{k: r[k] for k in keys} for r in two] == [{k: r[k] for k in keys} for r in one]
    assert any(r["model"] == "All" and r["n"] for r in two)  # something was measured
    with pytest.raises(UserError, match="--workers must be at least 1"):
        inverse_design.parse_args(["--workers", "0"])


def test_inverse_design_goals_are_checked_against_the_stated_targets():
    def row(model, prop, mape, slope=math.nan, sweep="training"):
        return {"model": model, "property": prop, "sweep": sweep, "n_s": 10, "mape": mape, "slope": slope}

    plan = [{"property": "shear_modulus", "sweep": "training"}, {"property": "ring_size_mean", "sweep": "paper"}]
    rows = [row("All", "shear_modulus", 14.0, 0.6), row("None", "shear_modulus", 30.0),
            row("All", "ring_size_mean", 4.5, sweep="paper"), row("None", "ring_size_mean", 9.0, sweep="paper")]
    checks = inverse_design.goals(rows, plan)
    assert [(c["goal"], c["passed"]) for c in checks] == [
        ("slope >= 0.5", True), ("MAPE <= 15 %", True), ("MAPE below 0.5 x the control's MAPE (15 %)", True),
        ("MAPE <= 4 %", False), ("MAPE below the control's MAPE (9 %)", True)]  # no slope goal for rings
    rows[0]["mape"] = 16.0
    assert [c["passed"] for c in inverse_design.goals(rows, plan)[:3]] == [True, False, False]
    assert inverse_design.goal_lines(checks)[3] == "FAIL ring_size_mean, paper sweep, 10 steps: MAPE <= 4 %: 4.5"
    # the a-SiO2 goals are that system's: another system's G has the default goal (follow, beat the control)
    meg = inverse_design.goals(rows, plan[:1], "MEG")
    assert [(c["goal"], c["passed"]) for c in meg] == [("slope >= 0.5", True), ("MAPE below the control's MAPE (30 %)", True)]


def test_results_go_outside_the_repository_unless_asked(tmp_path, monkeypatch):
    """Default --out-dir: $AMSHORTCUT_RESULTS, else <cache>/amshortcut/benchmarks; never the tree."""
    from core.benchmarking import default_results_dir

    monkeypatch.delenv("AMSHORTCUT_RESULTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_results_dir() == tmp_path / "cache" / "amshortcut" / "benchmarks"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_results_dir() == tmp_path / "home" / ".cache" / "amshortcut" / "benchmarks"
    assert not default_results_dir().is_relative_to(BENCHMARKS.parent)
    monkeypatch.setenv("AMSHORTCUT_RESULTS", str(tmp_path / "results"))
    for script in (structure, inverse_design):
        assert script.parse_args([]).out_dir == tmp_path / "results"
        assert script.parse_args(["--out-dir", "benchmarks/results"]).out_dir == Path("benchmarks/results")


def test_acceptance_script_refuses_a_bad_benchmark_figure(capsys):
    """benchmarks/acceptance.py: bad input is one line on stderr, exit 2, no file."""
    shipped = shipped_checkpoint("a-Si", "shortcut")
    before = (shipped / "acceptance.json").read_text()
    assert load_script("acceptance").main([str(shipped), "--benchmark", "-0.1"]) == 2
    assert "must be positive" in capsys.readouterr().err
    assert (shipped / "acceptance.json").read_text() == before


def test_inverse_design_sweeps_the_training_range_and_the_papers():
    stats = {"shear_modulus": {"mean": 25.0, "std": 4.0, "min": 18.0, "max": 32.0}}
    args = inverse_design.parse_args(["--targets", "3", "--range", "ring_size_mean=4.5:5.5"])
    plan, notes = inverse_design.sweeps(["shear_modulus", "ring_size_mean"], args, stats, {})
    assert [(s["property"], s["sweep"], s["targets"]) for s in plan] == [
        ("shear_modulus", "training", [18.0, 25.0, 32.0]), ("shear_modulus", "paper", [10.0, 30.0, 50.0]),
        ("ring_size_mean", "paper", [4.5, 5.0, 5.5])]
    assert notes == ["no training range recorded for ring_size_mean"]
    quantiles = inverse_design.parse_args(["--sweep", "training", "--targets", "3", "--training-targets", "quantiles"])
    plan, _ = inverse_design.sweeps(["shear_modulus"], quantiles, stats, {"shear_modulus": np.arange(101.0)})
    assert plan[0]["targets"] == pytest.approx([5.0, 50.0, 95.0])
    meg = inverse_design.paper_sweeps("MEG", [])
    assert meg["youngs_modulus"] == (20.0, 160.0, {"li_concentration": 15.0})  # the paper's MEG sweep gives Li too
    with pytest.raises(UserError, match="nothing to sweep: no paper sweep for li_concentration"):
        inverse_design.sweeps(["li_concentration"], inverse_design.parse_args(["--sweep", "paper"]), {}, {})


def test_inverse_design_slope_separates_conditioning_from_ignoring_the_target():
    targets = np.linspace(20, 30, 5)
    follows = inverse_design.score(targets, list(targets + 1.0), ignores_target=False)
    ignores = inverse_design.score(targets, [25.0] * 5, ignores_target=False)
    assert follows["slope"] == pytest.approx(1.0) and follows["mae"] == pytest.approx(1.0)
    assert ignores["slope"] == pytest.approx(0.0, abs=1e-12)
    assert ignores["mape"] < 15  # a low MAPE alone does not show that the target was used
    assert math.isnan(inverse_design.score(targets, [25.0] * 5, ignores_target=True)["slope"])


def test_inverse_design_without_checkpoint_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("AMSHORTCUT_ASSETS", str(tmp_path))
    with pytest.raises(UserError, match="inverse design needs an a-SiO2 checkpoint"):
        inverse_design.main(["--n", "1", "--out-dir", str(tmp_path), "--quiet"])


# ----------------------------------------------------------------------------- CLI defaults


@pytest.fixture
def assets(si, tmp_path, monkeypatch):
    """An assets tree holding the a-Si shortcut checkpoint, selected by AMSHORTCUT_ASSETS."""
    _, ckpts = si
    root = tmp_path / "assets"
    shutil.copytree(ckpts / "shortcut", root / "checkpoints" / "a-Si" / "shortcut")
    monkeypatch.setenv("AMSHORTCUT_ASSETS", str(root))
    return root


def test_generate_uses_the_shipped_checkpoint_by_default(assets, tmp_path):
    from core.material import read_structures

    assert shipped_checkpoint("a-Si", "AMShortcut") == assets / "checkpoints" / "a-Si" / "shortcut"
    assert list(available_checkpoints()["a-Si"]) == ["shortcut"]
    gen = tmp_path / "gen.extxyz"
    cli(["generate", "--system", "a-Si", "--framework", "shortcut", "--steps", "1", "--n", "2", "--seed", "0",
         "--out", str(gen)])
    frames = read_structures(gen)
    assert len(frames) == 2 and frames[0].info["checkpoint"] == str(assets / "checkpoints" / "a-Si" / "shortcut")


def test_generate_missing_shipped_checkpoint_lists_what_exists(assets, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli(["generate", "--system", "a-SiO2", "--property", "shear_modulus=30", "--out", str(tmp_path / "x.extxyz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "a-SiO2" in err and "available: a-Si/shortcut" in err and "--checkpoint" in err


def test_generate_checkpoint_option_overrides_the_default(assets, si, tmp_path):
    from core.material import read_structures

    _, ckpts = si
    gen = tmp_path / "gen.extxyz"
    cli(["generate", "--checkpoint", str(ckpts / "sde"), "--steps", "2", "--n", "1", "--out", str(gen)])
    assert read_structures(gen)[0].info["framework"] == "sde"
    cli(["generate", "--checkpoint", str(ckpts / "sde"), "--n", "1", "--out", str(gen)])  # no --steps
    info = read_structures(gen)[0].info
    assert info["steps"] == DEFAULT_STEPS["sde"] != DEFAULT_STEPS["shortcut"] and info["grid_power"] == 1.0
    cli(["generate", "--checkpoint", str(ckpts / "sde"), "--steps", "3", "--grid-power", "2", "--out", str(gen)])
    assert read_structures(gen)[0].info["grid_power"] == 2.0
    with pytest.raises(SystemExit) as exc:
        cli(["generate", "--checkpoint", str(ckpts / "sde"), "--grid-power", "0.5", "--out", str(gen)])
    assert exc.value.code == 2


def test_generate_a_sio2_starts_at_its_system_default_steps(assets, sio2, tmp_path):
    """A shipped a-SiO2 AMShortcut without --steps samples at SYSTEM_DEFAULT_STEPS (25), not the
    framework's 5; a property target reaches the output's info."""
    from core.catalog import SYSTEM_DEFAULT_STEPS
    from core.material import read_structures

    shutil.copytree(sio2, assets / "checkpoints" / "a-SiO2" / "shortcut")
    gen = tmp_path / "gen.extxyz"
    cli(["generate", "--system", "a-SiO2", "--property", "shear_modulus=30", "--n", "1", "--out", str(gen)])
    info = read_structures(gen)[0].info
    assert info["steps"] == SYSTEM_DEFAULT_STEPS["a-SiO2"]["shortcut"] == 25 != DEFAULT_STEPS["shortcut"]
    assert info["target_shear_modulus"] == 30.0
    cli(["generate", "--system", "a-SiO2", "--property", "shear_modulus=30", "--guidance", "2", "--steps", "2",
         "--n", "1", "--out", str(gen)])
    assert read_structures(gen)[0].info["guidance"] == 2.0
    with pytest.raises(SystemExit) as exc:
        cli(["generate", "--system", "a-SiO2", "--guidance", "-1", "--out", str(gen)])
    assert exc.value.code == 2


# ----------------------------------------------------------------------------- run diagnostics


def _table_rows(text: str, first: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith(f"| {first}")]


def test_protocol_scores_runs_beside_the_untrained_network(capsys):
    protocol = load_script("protocol")
    shipped = shipped_checkpoint("a-Si", "shortcut")
    assert protocol.main([str(shipped), "--system", "a-Si", "--steps", "1,2", "--n", "2",
                          "--grid-power", "1,2", "--rdf-split", "2.2,2.8"]) == 0
    out = capsys.readouterr().out
    assert "data cell: {'Si': " in out
    trained, fresh, data = (_table_rows(out, name) for name in (str(shipped), "untrained", "data"))
    assert len(trained) == len(fresh) == 4 and len(data) == 1  # 2 grids x 2 step counts each
    assert [(r[2], r[3]) for r in trained] == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    # 1 step: the shipped model (~0.22) is far from the untrained one (~0.75) even with 2 samples
    assert float(trained[0][4]) < 0.6 * float(fresh[0][4])
    assert all(r[5].endswith(" Si") for r in trained + fresh)
    # bonding: 44 % of the data's Si have exactly 4 neighbours within 2.85 Å (a hot SW glass, no
    # clean first-shell minimum); the trained model is nearer that than the untrained network
    four = float(data[0][6])
    assert 35 < four < 55 and 0.05 < float(data[0][7]) < 0.3
    assert abs(float(trained[0][6]) - four) < abs(float(fresh[0][6]) - four)
    # the RDF split: three band shares summing to 100 %, g at the data's first peak, RMSD without close pairs
    header = next(line for line in out.splitlines() if line.startswith("| model"))
    assert "RDF error < 2.2 | RDF error 2.2–2.8 | RDF error > 2.8 | g(2.53 Å) | RDF RMSD without < 2.2" in header
    for row in trained + fresh:
        assert sum(float(v.rstrip("%")) for v in row[8:11]) == pytest.approx(100, abs=2)
        assert float(row[12]) <= float(row[4])
    assert 1.5 < float(data[0][11]) < 2.5
    # untrained noise piles pairs below the first shell; the trained 1-step error is mostly beyond it
    assert float(fresh[0][8].rstrip("%")) > float(trained[0][8].rstrip("%"))


@pytest.mark.parametrize("script, option", [("protocol", "--rdf-split"), ("protocol", "--grid-power"),
                                            ("denoising", "--eps-times"), ("denoising", "--from-times")])
def test_diagnostics_refuse_a_bad_number_list_in_one_line(script, option, capsys):
    shipped = shipped_checkpoint("a-Si", "sde")
    assert load_script(script).main([str(shipped), "--system", "a-Si", option, "2.2,abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {option} expects comma-separated numbers, got '2.2,abc'"


def test_denoising_reports_the_metric_scale_and_the_networks_precision(capsys):
    denoising = load_script("denoising")
    sde = shipped_checkpoint("a-Si", "sde")
    assert denoising.main([str(sde), "--system", "a-Si", "--n", "2", "--eps-times", "0.1,0.3",
                           "--from-times", "0.1", "--steps", "50"]) == 0
    out = capsys.readouterr().out
    (metric,) = _table_rows(out, "RDF RMSD")
    values = [float(v) for v in metric[1:]]
    assert values[-1] > 2 * values[0]  # 0.2 Å of jitter shows in the RDF
    out, from_t_table = out.split("## from-t")
    eps = {row[0]: row for row in _table_rows(out, "0.") if len(row) == 6}
    assert set(eps) == {"0.1", "0.3"}
    for row in eps.values():
        mse, tweedie, noise = float(row[2]), float(row[3]), float(row[4])
        assert 0 < mse < 3.2 and tweedie < 1.02 * noise
    # one element (Si) besides the ghost: at t = 0.1 the noisy embedding alone is nearly always right,
    # and the network's estimate of E_0 is right on every real atom
    right_t, right_net = (float(v) for v in eps["0.1"][5].rstrip(" %").split(" / "))
    assert right_t > 90 and right_net == 100
    # at 0.12 Å the shipped a-Si SDE removes a quarter of the noise variance (2.2 of 3 left, 4 structures)
    assert float(eps["0.1"][2]) < 2.6 and float(eps["0.1"][3]) < 0.95 * float(eps["0.1"][4])
    (from_t,) = _table_rows(from_t_table, "0.1")
    assert float(from_t[1]) < values[-1] and "Si" in from_t[2]  # 5 steps from 0.12 Å: ~0.06, the data's level
    (data,) = _table_rows(from_t_table, "data")  # the data's bonding beside it: Si with four Si, sd of Si-Si
    assert "| t0 | RDF RMSD | real atoms per structure | Si-4Si % | sd Si-Si |" in from_t_table
    assert 30 < float(data[3]) < 60 and abs(float(from_t[3]) - float(data[3])) < 20


def test_denoising_compares_given_unset_and_rolled_properties(capsys):
    """For a conditioned model the eps table adds the MSE with the properties unset and rolled."""
    denoising = load_script("denoising")
    model = shipped_checkpoint("a-SiO2", "shortcut")
    assert denoising.main([str(model), "--system", "a-SiO2", "--n", "2", "--eps-times", "0.1",
                           "--from-times", ""]) == 0
    out = capsys.readouterr().out
    assert "properties shear_modulus, ring_size_mean given / unset / rolled" in out
    (row,) = [r for r in _table_rows(out, "0.1") if len(r) == 8]
    eps_unset, eps_rolled = (float(v) for v in row[6].split(" / "))
    elem = [float(v) for v in row[7].split(" / ")]
    assert 0 < float(row[2]) < 3 and 0 < eps_unset < 3.5 and 0 < eps_rolled < 3.5
    assert len(elem) == 3 and all(0 <= v < 5 for v in elem)


def test_shortcut_gaps_compares_the_maps_of_one_prior_draw(tmp_path, capsys):
    """The shipped a-Si AMShortcut from one prior draw: each map lands a fraction of an Å from the
    next finer one, and the finest is at zero gap from itself."""
    out = tmp_path / "gaps.json"
    load_script("shortcut_gaps").main(["--n", "1", "--steps", "1,2,4", "--out", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [r["steps"] for r in rows] == [1, 2, 4] and rows[-1]["gap_to_finest_mean"] == 0.0
    assert all(0.02 < r["gap_mean"] < 0.5 for r in rows[:2]) and 200 < rows[0]["atoms"] < 300
    assert "| 1 | " in capsys.readouterr().out


def _run_program(main, argv, monkeypatch, capsys):
    """(exit status, stderr) of ``core.benchmarking.run_script(main)`` with ``argv`` on the command line."""
    monkeypatch.setattr("sys.argv", ["prog", *argv])
    with pytest.raises(SystemExit) as exit_:
        run_script(main)
    return exit_.value.code, capsys.readouterr().err.strip()


def test_run_script_exits_with_main_status_or_zero(monkeypatch, capsys):
    assert _run_program(lambda: 3, [], monkeypatch, capsys) == (3, "")
    assert _run_program(lambda: {"rows": []}, [], monkeypatch, capsys) == (0, "")


@pytest.mark.parametrize("script, argv, message", [
    ("shortcut_gaps", ["--steps", "1,x"], "error: --steps expects comma-separated whole numbers, got '1,x'"),
    ("shortcut_gaps", ["--steps", "4"], "error: --steps needs at least two step counts to compare, got '4'"),
    ("shortcut_gaps", ["--checkpoint", "{tmp}/none"], "error: checkpoint {tmp}/none: no such directory"),
    ("shortcut_gaps", ["--checkpoint", "assets/checkpoints/a-Si/sde", "--steps", "2,4"],
     "error: assets/checkpoints/a-Si/sde: sde sampling is stochastic at [4] steps"),
    ("throughput", ["--systems", "a-Si,nope"], "error: --systems expects systems among a-Si, a-SiO2, MEG, got 'a-Si,nope'"),
    ("throughput", ["--threads", "0"], "error: --threads needs whole numbers of at least 1, got '0'"),
    ("metrics", ["--data", "{tmp}"], "error: --data {tmp}: no dataset shards (shard-*.extxyz.gz) there"),
    ("profile_model", ["--repeats", "0"], "error: --threads and --repeats must be at least 1"),
    ("structure", ["--n", "0"], "error: --n must be at least 1"),
])
def test_benchmark_programs_refuse_bad_input_in_one_line(script, argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    status, err = _run_program(load_script(script).main, argv, monkeypatch, capsys)
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith(message.replace("{tmp}", str(tmp_path)))


@pytest.mark.parametrize("script, argv, message", [
    ("meg_validation", ["{tmp}/none"], "error: {tmp}/none: no such dataset directory"),
    ("sio2_recipe_validation", ["--data", "{tmp}"], "error: {tmp}/meta.json: missing"),
    ("dataset_figures", ["--data", "{tmp}", "--out", "{tmp}/figures"],
     "error: {tmp}: neither a-Si/ nor a-SiO2/ holds dataset shards"),
    ("sio2_decorrelation", ["--atoms", "81", "80"], "error: --atoms expects multiples of 3 (SiO2 formula units), got [81, 80]"),
])
def test_dataset_scripts_refuse_bad_input_in_one_line(script, argv, message, tmp_path, monkeypatch, capsys):
    status, err = _run_program(load_script(script, SCRIPTS).main, [a.replace("{tmp}", str(tmp_path)) for a in argv], monkeypatch, capsys)
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith(message.replace("{tmp}", str(tmp_path)))
    assert not (tmp_path / "figures").exists()  # nothing written before the input is checked
