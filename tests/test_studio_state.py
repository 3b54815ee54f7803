"""Studio state logic without a browser: catalog, validation, background generation, export."""

from __future__ import annotations

import io
import math
import time

import ase.io
import numpy as np
import pytest

from studio import Studio
from studio.catalog import discover
from studio.ngl_view import atoms_to_pdb
from studio.settings import MAX_ATOMS_PER_SAMPLE, STEP_CHOICES
from tests.studio_fakes import FakeBackend, make_assets


def direct(fn):
    fn()


@pytest.fixture
def assets(tmp_path):
    return make_assets(tmp_path / "assets")


def studio(assets, backend=None):
    return Studio(backend=backend or FakeBackend(), assets=assets, dispatch=direct)


def wait(task, timeout=20.0):
    task.join(timeout)
    assert not task.running, "background task did not finish"


def test_catalog_lists_shipped_systems_and_checkpoint_ranges(assets):
    cat = discover(assets)
    assert list(cat)[:2] == ["a-Si", "a-SiO2"]
    ckpt = cat["a-Si"]["shortcut"]
    assert ckpt.species == ("Si",) and ckpt.rho_max == 0.06
    assert {p.name: (p.low, p.high) for p in ckpt.properties} == {
        "ring_size_mean": (5.5, 7.0), "shear_modulus": (20.0, 40.0)}
    assert cat["a-SiO2"] == {}


def test_settings_follow_system_and_framework(assets):
    s = studio(assets).settings
    assert s.framework == "shortcut" and [t.name for t in s.targets] == ["ring_size_mean", "shear_modulus"]
    assert s.targets[0].target == pytest.approx(6.1)  # starts at the training mean
    assert s.param.steps.objects == STEP_CHOICES
    s.system = "a-SiO2"
    assert s.framework is None and s.targets == []
    assert any("No trained checkpoint for a-SiO2" in e for e in s.errors())


def test_steps_start_at_the_frameworks_default(assets):
    """AMShortcut starts at its few-step default, the SDE at its many-step one; a choice
    the user makes afterwards stays until the framework changes again."""
    import json
    import shutil

    from core.catalog import DEFAULT_STEPS

    sde = assets / "checkpoints" / "a-Si" / "sde"
    shutil.copytree(assets / "checkpoints" / "a-Si" / "shortcut", sde)
    (sde / "config.json").write_text((sde / "config.json").read_text().replace('"shortcut"', '"sde"'))
    assert json.loads((sde / "config.json").read_text())["framework"] == "sde"
    s = studio(assets).settings
    assert s.framework == "shortcut" and s.steps == DEFAULT_STEPS["shortcut"] == 5
    s.steps = 1
    s.framework = "sde"
    assert s.steps == DEFAULT_STEPS["sde"] != 5
    s.steps = 250
    assert s.steps == 250
    s.framework = "shortcut"
    assert s.steps == 5


def test_cell_starts_at_the_checkpoints_training_cell(assets):
    from studio.settings import training_cell_edge

    s = studio(assets).settings
    assert s.cell_size == 16.0  # the fake checkpoint records no training cell: the default stays
    ckpt = s.checkpoint
    ckpt.config.setdefault("training", {})["cell"] = [[17.1, 0, 0], [0, 16.8, 0], [0, 0, 17.0]]
    assert training_cell_edge(ckpt) == 17.0  # cube root of the volume, to 0.5 Å
    s._on_framework()
    assert s.cell_size == 17.0
    ckpt.config["training"]["cell"] = "not a cell"
    assert training_cell_edge(ckpt) is None


def test_zero_steps_and_out_of_bounds_values_are_rejected(assets):
    s = studio(assets).settings
    for name, bad in [("steps", 0), ("steps", 3), ("n_samples", 0), ("cell_size", 2.0), ("seed", -1)]:
        with pytest.raises(ValueError):
            setattr(s, name, bad)
    assert s.errors() == []


def test_nan_values_are_validation_errors(assets):
    s = studio(assets).settings
    with pytest.raises(ValueError):
        s.cell_size = math.nan  # bounded params refuse NaN outright
    s.targets[1].target = math.nan  # unbounded targets do not: validation must catch it
    assert s.errors() == []  # ... once the property is switched on
    s.targets[1].enabled = True
    s.targets[1].target = math.nan
    assert s.errors() == ["Target for shear_modulus is not a number"]


def test_cleared_boxes_are_validation_errors(assets):
    s = studio(assets).settings
    s.param.update(n_samples=None, cell_size=None, seed=None)
    s.targets[0].param.update(enabled=True, target=None)
    assert s.errors() == ["Number of samples must be 1–64", "Cell size must be 8–30 Å",
                          "Seed must be a whole number from 0 to 2147483647, got None",
                          "Target for ring_size_mean is not a number"]
    assert s.atoms_per_sample == 0 and s.warnings() == []


def test_atom_limits_use_rho_max(assets):
    s = studio(assets).settings
    s.cell_size = 16.0
    assert s.atoms_per_sample == math.floor(0.06 * 16.0**3)  # 245 padded atoms
    s.cell_size = 30.0  # 1620 atoms per cell, 64 samples -> over the total limit
    s.n_samples = 64
    assert any("in total exceeds" in e for e in s.errors())
    s.n_samples = 1
    assert s.errors() == [] and s.atoms_per_sample < MAX_ATOMS_PER_SAMPLE


def test_extrapolation_is_a_warning_not_an_error(assets):
    s = studio(assets).settings
    t = s.targets[1]
    t.enabled, t.target = True, 55.0
    assert s.errors() == []
    assert len(s.warnings()) == 1 and "extrapolation" in s.warnings()[0]
    assert s.properties() == {"shear_modulus": 55.0}
    rev = s.revision
    t.target = 30.0
    assert s.warnings() == [] and s.revision > rev


def test_generate_fills_results_curves_and_table(assets):
    backend = FakeBackend()
    app = studio(assets, backend)
    app.settings.param.update(steps=1, n_samples=3, seed=7, grid_power=2.0, guidance=1.0)
    app.settings.targets[0].enabled = True
    assert app.generate()
    wait(app.task)
    assert app.task.error == "" and app.task.step == app.task.total == 1
    assert backend.calls == [dict(n_samples=3, steps=1, cell=app.settings.cell,
                                  properties={"ring_size_mean": pytest.approx(6.1)}, seed=7, grid_power=2.0,
                                  guidance=1.0)]
    res = app.results
    assert len(res.structures) == 3 and res.device == "cpu" and res.elapsed >= 0
    assert res.analysis.rdf.shape == (100,) and res.analysis.adf.shape == (180,)
    assert set(res.analysis.rmsd) == {"rdf", "adf"} and res.analysis.rmsd["rdf"] > 0
    from studio.plots import rdf_plot
    plot = rdf_plot(res.analysis)
    assert [c.label for c in plot] == ["training set (100)", "generated"]
    assert plot.opts.get().kwargs["title"].endswith("(training vs itself 0.05)")
    assert list(res.table["#"]) == [0, 1, 2] and (res.table["composition"] == "Si64").all()
    assert res.table["ring_size_mean target"].iloc[0] == pytest.approx(6.1)


def test_invalid_request_is_refused_with_a_message(assets):
    app = studio(assets)
    app.settings.targets[0].param.update(enabled=True, target=math.inf)
    assert app.generate() is False
    assert app.task.error.startswith("Cannot generate: Target for ring_size_mean is not a number") and not app.task.running


def test_cancel_stops_generation_at_next_step(assets):
    app = studio(assets, FakeBackend(step_delay=0.05))
    app.settings.steps = 250
    assert app.generate()
    assert app.generate() is False  # a second click while running does nothing
    time.sleep(0.2)
    app.cancel()
    t0 = time.perf_counter()
    wait(app.task)
    assert time.perf_counter() - t0 < 1.0
    assert app.task.message == "Cancelled" and app.results.structures == []
    assert 0 < app.task.step < 250


def test_core_error_is_shown_and_app_recovers(assets):
    from core.errors import UserError

    backend = FakeBackend(fail=UserError("cell too small for this model"))
    app = studio(assets, backend)
    app.generate()
    wait(app.task)
    assert app.task.error == "cell too small for this model" and app.task.message == "Failed"
    backend.fail = None
    app.generate()
    wait(app.task)
    assert app.task.error == "" and len(app.results.structures) == app.settings.n_samples


def test_sessions_are_independent(assets):
    slow, fast = studio(assets, FakeBackend(step_delay=0.02)), studio(assets)
    slow.settings.steps, fast.settings.n_samples = 50, 2
    slow.generate()
    fast.generate()
    wait(fast.task)
    slow.cancel()
    wait(slow.task)
    assert len(fast.results.structures) == 2 and fast.task.message.endswith("done")
    assert slow.results.structures == [] and slow.task.message == "Cancelled"


def test_export_all_and_selected_extxyz(assets):
    app = studio(assets)
    app.settings.n_samples = 3
    app.generate()
    wait(app.task)
    frames = ase.io.read(io.StringIO(app.results.export(app.backend, "all").decode()), index=":", format="extxyz")
    assert len(frames) == 3 and np.allclose(frames[2].positions, app.results.structures[2].positions, atol=1e-5)
    app.results.selected = 1
    one = ase.io.read(io.StringIO(app.results.export(app.backend, "selected").decode()), index=":", format="extxyz")
    assert len(one) == 1 and np.allclose(one[0].positions, app.results.structures[1].positions, atol=1e-5)
    assert Studio(backend=FakeBackend(), assets=assets).results.export(app.backend) == b""


def test_shear_modulus_runs_in_background_into_table(assets):
    app = studio(assets)
    assert app.compute_shear_modulus() is False and "Generate" in app.shear_task.error
    app.generate()
    wait(app.task)
    app.results.selected = 1
    assert app.compute_shear_modulus()
    wait(app.shear_task)
    col = app.results.table["shear modulus (GPa)"]
    assert col.iloc[1] == 31.5 and np.isnan(col.iloc[0])


def test_pdb_has_cell_and_no_ghosts():
    from ase import Atoms

    atoms = Atoms("SiSiX", positions=[[0, 0, 0], [2.35, 0, 0], [1, 1, 1]], cell=[10, 11, 12], pbc=True)
    pdb = atoms_to_pdb(atoms)
    assert pdb.startswith("CRYST1   10.000   11.000   12.000")
    assert sum(line.startswith(("ATOM", "HETATM")) for line in pdb.splitlines()) == 2
    assert atoms_to_pdb(None) == ""


def test_panel_layout_builds_with_and_without_results(assets):
    app = studio(assets)
    assert app.panel() is not None
    app.generate()
    wait(app.task)
    assert app.panel() is not None


def test_real_core_backend_end_to_end(tmp_path):
    """The shipped backend with an untrained checkpoint: load, 1-step generate, analyse, export."""
    from studio.backend import CoreBackend
    from tests.studio_fakes import make_tiny_checkpoint

    assets = make_assets(tmp_path / "assets")
    make_tiny_checkpoint(assets)
    app = Studio(backend=CoreBackend(), assets=assets, dispatch=direct)
    s = app.settings
    assert s.param.framework.names == {"AMShortcut": "shortcut"} and s.checkpoint.species == ("Si",)
    assert s.targets[0].low == 5.5 and s.targets[0].high == 7.0
    s.param.update(steps=1, n_samples=2, cell_size=10.0, seed=3)
    s.targets[0].enabled = True
    assert app._device == "cpu" or app._device.startswith("cuda")
    assert app.backend.estimate_memory(s.checkpoint.path, n_samples=2, cell=s.cell, rho_max=0.05) > 0
    assert app.generate()
    wait(app.task, 120)
    assert app.task.error == "", app.task.error
    res = app.results
    assert len(res.structures) == 2 and res.device == app._device
    assert all(0 < len(a) <= 50 and set(a.numbers) == {14} for a in res.structures)  # floor(0.05·1000), ghosts gone
    assert res.structures[0].info["target_ring_size_mean"] == pytest.approx(6.1)
    assert res.analysis.rdf.shape == (100,) and np.isfinite(res.analysis.rmsd["rdf"])
    frames = ase.io.read(io.StringIO(res.export(app.backend).decode()), index=":", format="extxyz")
    assert [len(f) for f in frames] == [len(a) for a in res.structures]


def test_jupyter_structure_widget_follows_selection(assets):
    """In Jupyter the 3D view is a native nglview widget that tracks the selected structure."""
    app = studio(assets)
    view = app.structure_widget()
    assert view._studio_component is None  # nothing generated yet
    app.generate()
    wait(app.task)
    first = view._studio_component
    assert first is not None and app.structure_widget() is view
    app.results.selected = 2
    assert view._studio_component is not None and view._studio_component is not first


def test_reference_from_dataset_shards_when_no_npz(tmp_path):
    """Without reference.npz the backend averages the training split of the shards (val excluded)."""
    from ase.build import bulk

    from core.datasets.shards import read_shard, shard_path, write_shard
    from core.metrics import rdf
    from studio.backend import CoreBackend

    frames = []
    for k, split in enumerate(["train", "train", "val"]):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
        atoms.positions += np.random.default_rng(k).normal(0, 0.05 + 0.2 * (split == "val"), atoms.positions.shape)
        atoms.info.update(id=k, split=split)
        frames.append(atoms)
    write_shard(shard_path(tmp_path, 0), frames)
    ref = CoreBackend().reference(tmp_path)
    assert ref["n"] == 2 and ref["adf"].shape == (180,)
    stored = read_shard(shard_path(tmp_path, 0))  # positions rounded to 10 fm on disk
    assert np.allclose(ref["rdf"], rdf(stored[:2])[1].mean(axis=0))
    assert not np.allclose(ref["rdf"], rdf(stored)[1].mean(axis=0))  # the val frame is left out
    with pytest.raises(FileNotFoundError):
        CoreBackend().reference(tmp_path / "empty")


def test_concurrent_sessions_keep_their_seeds(tmp_path):
    """Two sessions sampling at once get exactly what each would get alone (real backend)."""
    from studio.backend import CoreBackend
    from tests.studio_fakes import make_tiny_checkpoint

    assets = make_assets(tmp_path / "assets")
    make_tiny_checkpoint(assets)

    def session(seed):
        app = Studio(backend=CoreBackend(), assets=assets, dispatch=direct)
        app.settings.param.update(steps=10, n_samples=2, cell_size=10.0, seed=seed)
        return app

    alone = session(5)
    alone.generate()
    wait(alone.task, 120)
    a, b = session(5), session(6)
    a.generate()
    b.generate()
    wait(a.task, 120)
    wait(b.task, 120)
    assert a.task.error == b.task.error == ""
    for x, y in zip(alone.results.structures, a.results.structures):
        assert np.array_equal(x.numbers, y.numbers) and np.allclose(x.positions, y.positions)
    assert not np.allclose(a.results.structures[0].positions[:5], b.results.structures[0].positions[:5])


def test_empty_structures_are_dropped_with_a_note(assets):
    from ase import Atoms

    class Emptying(FakeBackend):
        def generate(self, model, **kw):
            out = super().generate(model, **kw)
            return [Atoms(cell=out[0].cell, pbc=True)] + out[1:]

    app = studio(assets, Emptying())
    app.generate()
    wait(app.task)
    assert len(app.results.structures) == app.settings.n_samples - 1
    assert app.results.notes == ["1 structure(s) came out empty (all atoms became ghosts) and were dropped"]


def test_request_waiting_for_another_session_can_be_cancelled(tmp_path):
    import studio.backend as backend_module
    from studio.backend import CoreBackend
    from tests.studio_fakes import make_tiny_checkpoint

    assets = make_assets(tmp_path / "assets")
    make_tiny_checkpoint(assets)
    app = Studio(backend=CoreBackend(), assets=assets, dispatch=direct)
    app.settings.cell_size = 10.0
    with backend_module._GENERATE_LOCK:  # another session is sampling
        app.generate()
        deadline = time.time() + 30
        while "Waiting for another session" not in app.task.message and time.time() < deadline:
            time.sleep(0.05)
        assert "Waiting for another session" in app.task.message
        app.cancel()
        wait(app.task, 5)
    assert app.task.message == "Cancelled" and app.results.structures == []


def test_framework_choice_only_where_several_checkpoints_exist(assets):
    import json
    import shutil

    from core.catalog import default_steps

    src = assets / "checkpoints" / "a-Si" / "shortcut"
    shutil.copytree(src, src.parent / "sde")
    cfg = json.loads((src.parent / "sde" / "config.json").read_text())
    (src.parent / "sde" / "config.json").write_text(json.dumps({**cfg, "framework": "sde"}))
    (assets / "checkpoints" / "a-SiO2" / "shortcut").mkdir(parents=True)
    shutil.copy(src / "config.json", assets / "checkpoints" / "a-SiO2" / "shortcut")
    app = studio(assets)
    select = app.controls()[1]
    assert select.options == {"AMShortcut": "shortcut", "Material SDE": "sde"} and not select.disabled
    app.settings.system = "a-SiO2"  # framework stays "shortcut", but now it is the only one
    assert select.options == {"AMShortcut": "shortcut"} and select.disabled
    assert app.settings.steps == default_steps("shortcut", "a-SiO2") == 25  # a-SiO2's own default
    app.settings.system = "a-Si"
    assert not select.disabled and app.settings.steps == default_steps("shortcut") == 5
    app.settings.framework = "sde"
    assert app.settings.checkpoint.framework == "sde"


def test_guidance_control_shows_only_for_a_model_with_targets(assets):
    app = studio(assets)
    (guidance,) = [w for w in app.controls() if "guidance" in getattr(w, "css_classes", [])]
    assert app.settings.targets and guidance.visible and guidance.value == 0.0  # off by default
    targets = app.settings.targets
    app.settings.targets = []  # an unconditional model: nothing to guide towards
    assert not guidance.visible
    app.settings.targets = targets
    assert guidance.visible


def test_core_backend_reads_reference_npz_with_scalars(assets):
    from studio.backend import CoreBackend

    ref = CoreBackend().reference(assets / "data" / "a-Si")
    assert ref["r"].shape == (100,) and ref["adf"].shape == (180,)
    assert ref["n"] == 100 and ref["rdf_split_half_rmsd"] == 0.05


def _add_sio2(assets):
    import shutil

    src = assets / "checkpoints" / "a-Si" / "shortcut"
    (assets / "checkpoints" / "a-SiO2").mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, assets / "checkpoints" / "a-SiO2" / "shortcut")
    shutil.copytree(assets / "data" / "a-Si", assets / "data" / "a-SiO2")


def test_property_targets_start_with_four_digits(tmp_path):
    stats = {"shear_modulus": {"mean": 25.089096448390677, "std": 3.08, "min": 16.9402, "max": 37.9496}}
    s = studio(make_assets(tmp_path / "assets", properties=stats)).settings
    assert s.targets[0].target == 25.09
    assert s.targets[0].label() == "shear_modulus (training data: 16.94 – 37.95 GPa)"  # with its unit


def test_system_switch_clears_stale_results_and_status(assets):
    _add_sio2(assets)
    app = studio(assets)
    app.generate()
    wait(app.task)
    assert app.results.structures and app.task.message.endswith("done")
    app.settings.system = "a-SiO2"
    r = app.results
    assert (r.structures, r.analysis, r.table, r.notes, r.device) == ([], None, None, [], "")
    assert app.task.message == "" and app.task.error == "" and math.isnan(r.elapsed)
    # a generation still running when the system changes never lands on the new system's page
    slow = studio(assets, FakeBackend(step_delay=0.02))
    slow.settings.steps = 50
    slow.generate()
    time.sleep(0.1)
    slow.settings.system = "a-SiO2"
    wait(slow.task)
    assert slow.results.structures == [] and slow.task.message == "Cancelled"


def test_legends_sit_outside_the_axes(assets):
    import holoviews as hv

    from studio.plots import adf_plot, rdf_plot

    app = studio(assets)
    app.generate()
    wait(app.task)
    for plot in (rdf_plot(app.results.analysis), adf_plot(app.results.analysis)):
        fig = hv.render(plot, backend="bokeh")
        inside = [m for m in fig.center if type(m).__name__ == "Legend"]
        outside = [m for m in fig.right if type(m).__name__ == "Legend"]
        assert inside == [] and len(outside) == 1 and len(outside[0].items) == 2


def test_empty_state_before_the_first_generation(assets):
    import panel as pn

    app = studio(assets)
    layout = app.panel()
    downloads = layout.select(pn.widgets.FileDownload)
    shear = next(b for b in layout.select(pn.widgets.Button) if b.label.startswith("Shear modulus"))
    assert len(downloads) == 2 and all(d.disabled for d in downloads) and shear.disabled
    assert "click Generate first" in app._needs_structures().object
    assert "fills after the first generation" in app._table().object
    app.generate()
    wait(app.task)
    assert not any(d.disabled for d in downloads) and not shear.disabled
    assert app._needs_structures().object == "" and isinstance(app._table(), pn.pane.DataFrame)


def test_a_greyed_framework_selector_says_why(assets):
    app = studio(assets)
    assert "Only AMShortcut is trained for a-Si" in app._framework_note().object
    app.settings.system = "a-SiO2"  # nothing trained there: the alert speaks, not the note
    assert app._framework_note().object == ""
    assert "No trained checkpoint for a-SiO2" in app.settings.errors()[0]


def test_cells_below_twice_the_cutoff_are_refused_before_sampling(assets):
    s = studio(assets).settings
    s.checkpoint.config["model"] = {"cutoff": 5.0}
    s.cell_size = 9.5
    assert s.errors() == ["Cell too small for this model: a plane spacing of 9.5 Å is below 10 Å "
                          "(twice its 5 Å neighbour cutoff); use a larger cell"]
    s.cell_size = 10.0
    assert s.errors() == []


def _add_sde(assets):
    import json
    import shutil

    src = assets / "checkpoints" / "a-Si" / "shortcut"
    shutil.copytree(src, src.parent / "sde")
    cfg = json.loads((src.parent / "sde" / "config.json").read_text())
    (src.parent / "sde" / "config.json").write_text(json.dumps({**cfg, "framework": "sde"}))


def test_generations_are_kept_for_comparison(assets):
    from studio.plots import compare_adf_plot, compare_rdf_plot

    app = studio(assets)
    for steps in (1, 5, 1):
        app.settings.steps = steps
        app.generate()
        wait(app.task)
    runs = app.comparison.runs
    assert [r.label for r in runs] == ["AMShortcut · 5 steps", "AMShortcut · 1 step"]  # the 2nd 1-step run replaced the 1st
    table = app.comparison.table()
    assert list(table.columns) == ["run", "structures", "seconds", "% of slowest", "RDF RMSD", "ADF RMSD",
                                   "4-fold %", "close pairs", "eV/atom"]
    assert list(table["run"]) == ["training set", "AMShortcut · 5 steps", "AMShortcut · 1 step"]
    assert table["structures"].tolist() == [32, 4, 4] and table["% of slowest"].max() == 100.0
    assert table["4-fold %"].iloc[0] == 44.0 and table["eV/atom"].iloc[0] == -4.2  # FakeBackend's training checks
    assert table["RDF RMSD"].iloc[2] == round(runs[1].analysis.rmsd["rdf"], 4)
    assert table["close pairs"].iloc[1] == round(runs[0].analysis.checks["close_pairs"], 2)
    plot = compare_rdf_plot(runs)
    assert [c.label for c in plot][0] == "training set (100)" and len(plot) == 3
    assert [c.label for c in compare_adf_plot(runs)][1].startswith("AMShortcut · 5 steps (")
    app.settings.targets[0].enabled = True
    app.settings.grid_power = 2.0
    app.generate()
    wait(app.task)
    assert app.comparison.runs[-1].label == "AMShortcut · 1 step · t^2 · ring_size_mean=6.1"
    app.settings.guidance = 2.0
    app.generate()
    wait(app.task)
    assert app.comparison.runs[-1].label == "AMShortcut · 1 step · t^2 · ring_size_mean=6.1 · guidance w=2"


def test_reproduce_the_papers_comparison_in_one_click(assets):
    _add_sde(assets)
    backend = FakeBackend()
    app = studio(assets, backend)
    app.settings.param.update(n_samples=2, seed=3)
    app.settings.targets[0].enabled = True  # the paper's runs are unconditioned whatever the sidebar says
    assert app.reproduce_paper()
    wait(app.task)
    assert app.task.error == "" and app.task.step == app.task.total == 256
    assert [(c["steps"], c["n_samples"], c["seed"], c["properties"]) for c in backend.calls] == [
        (1, 2, 3, {}), (5, 2, 3, {}), (250, 2, 3, {})]
    assert [r.label for r in app.comparison.runs] == ["AMShortcut · 1 step", "AMShortcut · 5 steps",
                                                      "Material SDE · 250 steps"]
    assert [r.framework for r in app.comparison.runs] == ["shortcut", "shortcut", "sde"]
    app.settings.system = "a-SiO2"  # another system: the kept runs are stale
    assert app.comparison.runs == [] and app.comparison.table() is None


def test_papers_comparison_needs_both_frameworks(assets):
    app = studio(assets)
    assert app.reproduce_paper() is False
    assert app.task.error == ("Cannot reproduce the paper's comparison: the paper's comparison needs a "
                              "Material SDE checkpoint for this system")
    assert "Not available for a-Si" in app._paper_note().object


def test_inverse_design_sweep_measures_each_structure_in_the_background(assets):
    backend = FakeBackend()
    app = studio(assets, backend)
    sweep = app.inverse
    assert sweep.param.prop.objects == ["ring_size_mean", "shear_modulus"] and sweep.prop == "ring_size_mean"
    sweep.prop = "shear_modulus"
    assert (sweep.low, sweep.high, sweep.training) == (20.0, 40.0, (20.0, 40.0))
    sweep.param.update(low=10.0, high=50.0, n_targets=3, per_target=2)
    app.settings.steps = 2
    assert app.run_inverse_sweep()
    wait(app.inverse_task)
    assert app.inverse_task.error == "" and app.inverse_task.step == app.inverse_task.total == 3 * (2 + 2)
    assert [c["properties"] for c in backend.calls] == [{"shear_modulus": t} for t in (10.0, 30.0, 50.0)]
    assert [c["n_samples"] for c in backend.calls] == [2, 2, 2]
    assert sweep.points["target"].tolist() == [10.0, 10.0, 30.0, 30.0, 50.0, 50.0]
    assert sweep.points["achieved"].tolist() == [11.0, 11.0, 31.0, 31.0, 51.0, 51.0]
    assert sweep.scores["MAE"] == pytest.approx(1.0)
    assert sweep.scores["MAPE %"] == pytest.approx(100 * (1 / 10 + 1 / 30 + 1 / 50) / 3)
    assert sweep.scores["RMSE"] == pytest.approx(1.0) and sweep.scores["slope"] == pytest.approx(1.0)
    table = sweep.table()
    assert table.to_dict("list") == {"target shear_modulus": [10.0, 30.0, 50.0], "structures": [2, 2, 2],
                                     "measured": [2, 2, 2], "mean achieved": [11.0, 31.0, 51.0],
                                     "std": [0.0, 0.0, 0.0]}
    assert "slope 1" in app._inverse_table()[0].object
    plot = sweep.plot()
    assert [type(e).__name__ for e in plot] == ["VSpan", "Curve", "Scatter"]  # training range, identity, points
    assert "MAE 1" in plot.opts.get().kwargs["title"]


def test_inverse_sweep_can_be_cancelled_and_says_when_it_cannot_run(assets):
    app = studio(assets, FakeBackend(step_delay=0.05))
    app.settings.steps = 50
    assert app.run_inverse_sweep()
    time.sleep(0.2)
    app.inverse_task.cancel()
    wait(app.inverse_task)
    assert app.inverse_task.message == "Cancelled" and app.inverse.points is None
    _add_sio2(assets)
    app = studio(assets)
    app.settings.system = "a-SiO2"
    app.inverse.set_targets([])
    assert app.run_inverse_sweep() is False
    assert app.inverse_task.error == "Cannot run the sweep: this checkpoint has no conditioning property to sweep"


def test_structure_checks_beside_the_curves(assets):
    from studio.plots import coordination_plot

    app = studio(assets)
    assert "appear after a generation" in app._checks_text().object
    app.generate()
    wait(app.task)
    checks = app.results.analysis.checks
    assert checks["rule"] == "Si within 2.85 Å of each Si" and checks["energy"] == -4.01  # FakeBackend's energy
    text = app._checks_text().object
    assert "4-fold: **" in text and "(training 44.0 %)" in text and "(training -4.200)" in text
    bars = coordination_plot(app.results.analysis)
    assert sorted(set(bars.dimension_values("set"))) == ["generated", "training set"] and len(bars) == 18


def test_plots_keep_their_own_axes(assets):
    """Panes that share a dimension (the Generate and Compare ADFs) must not share a y range."""
    import panel as pn

    panes = studio(assets).panel().select(pn.pane.HoloViews)
    assert len(panes) == 6 and not any(p.linked_axes for p in panes)


def test_relax_toggle_relaxes_through_core_and_shows_before_and_after(assets):
    app = studio(assets)
    assert app.settings.relax is False  # off by default: the model's own structures
    app.generate()
    wait(app.task)
    assert app.results.relax_report is None and "relaxed" not in app._run_info().object
    unrelaxed = app.results.analysis.checks["close_pairs"]
    app.settings.relax = True
    app.generate()
    wait(app.task)
    assert app.task.error == ""
    report = app.results.relax_report
    assert report["system"] == "a-Si" and report["n_structures"] == 4 and report["seconds"] > 0
    assert report["after"]["energy_per_atom"] < report["before"]["energy_per_atom"]  # Stillinger–Weber, eV/atom
    assert all("energy_relaxed" in a.info for a in app.results.structures)  # shown and exported: the relaxed set
    assert app.results.analysis.checks["close_pairs"] <= unrelaxed
    text = app._relax_text().object
    assert "**Relaxation** of 4 structures" in text and "Stillinger–Weber" in text
    assert "| Si with 4 Si within 2.85 Å % |" in text and "| energy eV/atom |" in text
    assert "then **relaxed** in" in app._run_info().object
    assert "Stillinger–Weber Si, relaxed" in app._checks_text().object
    assert [r.label for r in app.comparison.runs][-2:] == ["AMShortcut · 5 steps", "AMShortcut · 5 steps · relaxed"]
    app.settings.system = "a-SiO2"  # a new system forgets the relaxation with the structures
    assert app.results.relax_report is None
