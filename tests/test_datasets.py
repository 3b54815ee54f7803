"""Dataset workflows end to end on tiny recipes (a few structures, picoseconds of MD):
build on a Dask cluster, resume, mixed recipes, shard format, split rule, meta.json,
reference curves, CLI errors."""

import gzip
import json
from dataclasses import replace

import numpy as np
import pytest
from ase import Atoms

from core.datasets import dataset_meta, load_dataset, write_reference
from core.datasets.asi import ASiRecipe
from core.datasets import build as build_module
from core.datasets.build import _upgrade_meta, build, plan, SYSTEMS
from core.datasets.shards import read_shard, shard_path, split_of, write_shard
from core.datasets.sio2 import SiO2QuenchSeriesRecipe, SiO2Recipe
from core.errors import UserError

TINY_ASI = ASiRecipe(n_atoms=64, melt_ps=1.0, cooling_rate_K_per_ps=250.0, equil_ps=1.0,
                     interval_ps=0.5, frames_per_unit=3)
TINY_SIO2 = SiO2Recipe(min_atoms=81, max_atoms=90, melt_ps=2.0, final_ps=1.0, frames_per_unit=2)
TINY_SERIES = SiO2QuenchSeriesRecipe(min_atoms=81, max_atoms=90, equil_ps=2.0, interval_ps=1.0,
                                     final_ps=1.0, frames_per_unit=2)


def first_peak(atoms_list, r_max=4.0, bins=160, pair=None):
    """Position (Å) of the highest peak of the pair-distance histogram / r^2 below r_max."""
    from ase.neighborlist import neighbor_list

    hist = np.zeros(bins)
    for a in atoms_list:
        i, j, d = neighbor_list("ijd", a, r_max)
        if pair is not None:
            z = a.numbers
            d = d[(z[i] == pair[0]) & (z[j] == pair[1])]
        hist += np.histogram(d, bins=bins, range=(0, r_max))[0]
    r = (np.arange(bins) + 0.5) * r_max / bins
    return r[np.argmax(hist / r**2)]


def test_shard_round_trip_is_compact_and_readable_by_ase(tmp_path):
    a = Atoms("Si2O", positions=[[0.1234567, 1, 2], [3, 4, 5], [1, 1, 1]], cell=[6, 7, 8], pbc=True)
    a.info.update({"id": 7, "split": "val", "shear_modulus": 31.25})
    write_shard(shard_path(tmp_path, 3), [a, a])
    text = gzip.open(tmp_path / "shard-0003.extxyz.gz", "rt").read()
    assert " 0.12346 " in text
    (b, _) = read_shard(tmp_path / "shard-0003.extxyz.gz")
    assert b.info == {"id": 7, "split": "val", "shear_modulus": 31.25}
    assert b.get_chemical_symbols() == ["Si", "Si", "O"] and b.pbc.all()
    assert np.allclose(b.cell, a.cell) and np.allclose(b.positions, a.positions, atol=1e-5)


def test_split_rule_is_seeded_and_about_ten_percent():
    splits = [split_of(i, 0) for i in range(4000)]
    assert splits == [split_of(i, 0) for i in range(4000)]
    assert 0.08 < splits.count("val") / 4000 < 0.12
    assert splits != [split_of(i, 1) for i in range(4000)]


def test_plan_fills_missing_units_and_never_redoes_finished_ones():
    assert plan(7, {}, 3) == [(0, 3), (1, 3), (2, 1)]
    assert plan(7, {1: 3}, 3) == [(0, 3), (2, 1)]
    assert plan(10, {0: 3, 1: 3, 2: 1}, 3) == [(3, 3)]
    assert plan(5, {0: 3, 1: 3}, 3) == []


def test_asi_build_resume_and_reference(tmp_path):
    out = tmp_path / "a-Si"
    meta = build("asi", 4, out, seed=3, recipe=TINY_ASI, progress=False)
    assert meta["n_structures"] == 4 and meta["shards"] == {"0000": 3, "0001": 1}
    first = (out / "shard-0000.extxyz.gz").read_bytes()

    meta = build("asi", 7, out, seed=3, recipe=TINY_ASI, progress=False)  # continue
    assert (out / "shard-0000.extxyz.gz").read_bytes() == first
    assert meta["n_structures"] == 7 and meta["n_train"] + meta["n_val"] == 7
    frames = load_dataset(out)
    ids = [a.info["id"] for a in frames]
    assert len(set(ids)) == 7
    assert all(a.info["split"] == split_of(a.info["id"], 3) for a in frames)
    assert all(len(a) == 64 and a.pbc.all() and set(a.get_chemical_symbols()) == {"Si"} for a in frames)
    assert len(load_dataset(out, "train")) == meta["n_train"]

    # physics of the 2500 K Stillinger-Weber state (measured on 256 atoms: liquid-like, ~0.052 atoms/Å^3,
    # first RDF peak 2.55-2.6 Å)
    assert 0.047 < meta["density_atoms_per_A3"]["mean"] < 0.056
    assert 2.3 < first_peak(frames) < 2.75

    saved = dataset_meta(out)
    assert saved["recipes"]["trajectory"]["params"]["t_melt"] == 3000.0
    assert saved["recipes"]["trajectory"]["params"]["potential"] == "Si.sw"
    assert saved["shard_recipe"] == {"0000": "trajectory", "0001": "trajectory", "0002": "trajectory"}
    assert saved["split"]["seed"] == 3

    ref = write_reference(out)
    with np.load(out / "reference.npz") as npz:
        assert npz["rdf"].shape == (100,) and npz["adf"].shape == (180,)
        assert float(npz["rdf_split_half_rmsd"]) == pytest.approx(ref["rdf_split_half_rmsd"])
    assert json.loads((out / "meta.json").read_text())["reference"]["n"] == meta["n_train"]

    with pytest.raises(UserError, match="different seed"):
        build("asi", 8, out, seed=4, recipe=TINY_ASI, progress=False)


def test_parallel_build_writes_the_same_shards_as_a_serial_one(tmp_path):
    """Units are seeded from (seed, unit) alone, so workers and resumes cannot change data."""
    build("asi", 4, tmp_path / "serial", seed=5, recipe=TINY_ASI, progress=False)
    build("asi", 4, tmp_path / "parallel", seed=5, recipe=TINY_ASI, workers=2, progress=False)
    for unit in (0, 1):
        serial = read_shard(shard_path(tmp_path / "serial", unit))
        parallel = read_shard(shard_path(tmp_path / "parallel", unit))
        assert [a.info for a in serial] == [a.info for a in parallel]
        assert all(np.allclose(a.positions, b.positions, atol=2e-5) for a, b in zip(serial, parallel))


def test_mixed_recipes_on_a_given_scheduler_resume_and_say_what_each_shard_is(tmp_path):
    """Quench-series units numbered after melt-quench units, on a running cluster given by
    its address; a second run with the same options skips every finished unit."""
    from distributed import LocalCluster

    out = tmp_path / "a-SiO2"
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        addr = cluster.scheduler_address
        build("sio2", 2, out, seed=2, recipe=TINY_SIO2, progress=False, scheduler=addr)
        first = (out / "shard-0000.extxyz.gz").read_bytes()
        meta = build("sio2", 4, out, seed=2, recipe=TINY_SERIES, progress=False, scheduler=addr)
        assert meta["shards"] == {"0000": 2, "0001": 2}
        assert meta["shard_recipe"] == {"0000": "melt-quench", "0001": "quench-series"}
        assert meta["recipes"]["quench-series"]["params"]["interval_ps"] == 1.0
        assert meta["recipes"]["melt-quench"]["params"]["melt_ps"] == 2.0
        stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
        again = build("sio2", 4, out, seed=2, recipe=TINY_SERIES, progress=False, scheduler=addr)
        assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")} == stamps
        assert (out / "shard-0000.extxyz.gz").read_bytes() == first
        assert again["n_structures"] == 4
    frames = load_dataset(out)
    assert [a.info["id"] for a in frames] == list(range(4))
    assert [a.info["id"] for a in load_dataset(out, recipe="quench-series")] == [2, 3]
    with pytest.raises(UserError, match="no shard made by recipe 'trajectory'"):
        load_dataset(out, recipe="trajectory")
    # one cell size per quench-series unit, stoichiometric, with both properties
    assert len(frames[2]) == len(frames[3])
    for a in frames:
        assert 81 <= len(a) <= 90 and len(a) == 3 * a.get_chemical_symbols().count("Si")
        assert 5.0 < a.info["shear_modulus"] < 80.0 and 3.0 < a.info["ring_size_mean"] < 9.0
    # quenches of one melt 1 ps apart are different structures
    assert not np.allclose(frames[2].positions, frames[3].positions, atol=0.1)
    assert 1.5 < first_peak(frames[2:], pair=(14, 8)) < 1.75
    assert meta["properties"]["shear_modulus"]["unit"] == "GPa"
    train = [a.info["shear_modulus"] for a in frames if a.info["split"] == "train"]
    assert again["properties"]["shear_modulus"]["train_mean"] == pytest.approx(np.mean(train), rel=1e-5)

    with pytest.raises(UserError, match="'quench-series' units built with different parameters"):
        build("sio2", 8, out, seed=2, recipe=replace(TINY_SERIES, interval_ps=2.0), progress=False)
    with pytest.raises(UserError, match="would break the id rule"):
        build("sio2", 8, out, seed=2, recipe=SiO2QuenchSeriesRecipe(frames_per_unit=3), progress=False)


def test_shipped_single_recipe_meta_reads_as_per_shard_recipes():
    from pathlib import Path

    old = json.loads((Path(__file__).parent.parent / "assets/data/a-SiO2/meta.json").read_text())
    if "recipe" not in old:
        old = {"recipe": old["recipes"]["melt-quench"]["params"],
               "shards": {k: v for k, v in old["shards"].items() if old["shard_recipe"][k] == "melt-quench"}}
    meta = _upgrade_meta(SYSTEMS["sio2"], dict(old))
    assert meta["recipes"]["melt-quench"]["params"] == old["recipe"]
    assert meta["recipes"]["melt-quench"]["type"] == "SiO2Recipe"
    assert set(meta["shard_recipe"].values()) == {"melt-quench"} and len(meta["shard_recipe"]) >= 100


def test_failed_units_and_unreachable_scheduler_are_one_clear_error(tmp_path, monkeypatch):
    bad = SiO2Recipe(min_atoms=90, max_atoms=81, frames_per_unit=2)  # no cell size to draw
    with pytest.raises(UserError, match=r"1 unit\(s\) failed \(0000\).*run the same command again"):
        build("sio2", 2, tmp_path / "bad", seed=0, recipe=bad, progress=False)
    meta = dataset_meta(tmp_path / "bad")
    assert meta["shard_recipe"] == {} and meta["n_structures"] == 0
    monkeypatch.setattr(build_module, "CONNECT_TIMEOUT", "2s")
    with pytest.raises(UserError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        build("sio2", 2, tmp_path / "x", seed=0, recipe=TINY_SIO2, progress=False, scheduler="tcp://127.0.0.1:9")


def test_cli_rejects_bad_input(tmp_path, capsys):
    from core.cli import main

    for argv in (["dataset", "build", "sic", "--n", "3", "--out", str(tmp_path / "x")],
                 ["dataset", "build", "asi", "--n", "0", "--out", str(tmp_path / "x")],
                 ["dataset", "build", "sio2", "--n", "3", "--out", str(tmp_path / "x"), "--recipe", "slow"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(UserError, match="no such dataset"):
        load_dataset(tmp_path / "missing")
