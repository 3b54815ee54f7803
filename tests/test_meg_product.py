"""MEG as a product system: catalog facts against the data, the CLI without and with a MEG
checkpoint, and the studio driven through the real core backend with a tiny MEG AMShortcut trained
on the repository's MEG shards (3 steps, seconds)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from core.catalog import (PROPERTY_UNITS, SYSTEM_CELL, SYSTEM_ELEMENTS, SYSTEM_PROPERTIES, SYSTEMS, default_steps,
                          formula)
from core.cli import main as cli
from tests.studio_fakes import make_assets, train_tiny_meg

ROOT = Path(__file__).resolve().parents[1]
MEG_DATA = ROOT / "assets" / "data" / "MEG"


def direct(fn):
    fn()


@pytest.fixture(scope="module")
def meg_assets(tmp_path_factory):
    """An assets tree with an a-Si reference, the MEG shards and a tiny trained MEG AMShortcut."""
    root = make_assets(tmp_path_factory.mktemp("meg") / "assets", properties={})
    shutil.copytree(MEG_DATA, root / "data" / "MEG")
    train_tiny_meg(root)
    return root


def test_catalog_knows_meg_as_its_data_describes_it():
    from core.datasets.meg import ELEMENTS
    from core.properties import PROPERTIES

    meta = json.loads((MEG_DATA / "meta.json").read_text())
    assert SYSTEMS == ("a-Si", "a-SiO2", "MEG")
    assert SYSTEM_ELEMENTS["MEG"] == ELEMENTS == tuple(meta["elements"])
    assert set(SYSTEM_PROPERTIES["MEG"]) == set(meta["properties"]) and set(SYSTEM_PROPERTIES["MEG"]) <= set(PROPERTIES)
    assert {p: PROPERTY_UNITS[p] for p in meta["properties"]} == {p: v["unit"] for p, v in meta["properties"].items()}
    # the default cell holds ~250 atoms (within 10 %) at the data's mean density, on the studio's 0.5 Å grid
    rho = meta["density_atoms_per_A3"]["mean"]
    assert SYSTEM_CELL["MEG"] == 15.5 and abs(rho * 15.5**3 - 250) < 25
    assert 245 < rho * SYSTEM_CELL["MEG"] ** 3 < 265
    assert default_steps("shortcut", "MEG") == 25 and default_steps("sde", "MEG") == 100
    assert formula(["O", "Ca", "Si", "O", "Al", "X", "Si"], "MEG") == "Si2 Al1 Ca1 O2"
    assert formula(["O", "Si", "O"], "a-SiO2") == "Si1 O2" and formula(["Si"] * 3) == "Si3"


def test_generate_without_a_meg_checkpoint_is_one_error_line(tmp_path, capsys, monkeypatch):
    root = make_assets(tmp_path / "assets")
    monkeypatch.setenv("AMSHORTCUT_ASSETS", str(root))
    with pytest.raises(SystemExit) as exc:
        cli(["generate", "--system", "MEG", "--out", str(tmp_path / "x.extxyz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: no shipped checkpoint for system 'MEG'")
    assert "available: a-Si/shortcut" in err[0] and not (tmp_path / "x.extxyz").exists()


def test_generate_meg_starts_in_its_cell_at_its_steps(meg_assets, tmp_path, monkeypatch):
    """A shipped MEG AMShortcut without --cell / --steps samples in the 15.5 Å cube at 25 steps, with its
    11 elements; property targets reach the output."""
    from core.material import read_structures

    monkeypatch.setenv("AMSHORTCUT_ASSETS", str(meg_assets))
    out = tmp_path / "meg.extxyz"
    cli(["generate", "--system", "MEG", "--n", "1", "--property", "li_concentration=15", "--out", str(out)])
    (atoms,) = read_structures(out)
    assert atoms.cell.lengths() == pytest.approx([15.5] * 3) and atoms.info["steps"] == 25
    assert atoms.info["target_li_concentration"] == 15.0
    assert set(atoms.get_chemical_symbols()) <= set(SYSTEM_ELEMENTS["MEG"])


def test_studio_generates_meg_through_core(meg_assets):
    """The studio on MEG: the three properties with units and the pilot's ranges, the 15.5 Å cell, and a
    1-step generation whose table holds the composition in the data's element order, the charge-balance
    check and the Li concentration, beside MEG's structure checks; guidance reaches the sampler."""
    from studio import Studio
    from studio.backend import CoreBackend

    app = Studio(backend=CoreBackend(), assets=meg_assets, dispatch=direct)
    s = app.settings
    assert s.param.system.objects == ["a-Si", "a-SiO2", "MEG"]
    s.system = "MEG"
    assert s.framework == "shortcut" and s.steps == 25 and s.cell_size == 15.5 and s.errors() == []
    assert len(s.checkpoint.species) == 11
    labels = [t.label() for t in s.targets]
    ranges = {r.name: r for r in s.checkpoint.properties}  # the training split's range, in the data's units
    assert labels == [f"{name} (training data: {ranges[name].low:.4g} – {ranges[name].high:.4g} {unit})"
                      for name, unit in (("youngs_modulus", "GPa"), ("shear_modulus", "GPa"), ("li_concentration", "%"))]
    assert 30 < ranges["youngs_modulus"].low < ranges["youngs_modulus"].high < 200 and ranges["li_concentration"].low == 0
    s.param.update(steps=1, n_samples=1, seed=1, guidance=1.0)
    s.targets[2].param.update(enabled=True, target=5.0)
    assert app.generate()
    app.task.join(120)
    assert app.task.error == "", app.task.error
    (atoms,) = app.results.structures
    assert atoms.info["guidance"] == 1.0  # the sidebar's guidance reached core's sampler
    row = app.results.table.iloc[0]
    assert row["composition"] == formula(atoms.get_chemical_symbols(), "MEG")
    order = [item.rstrip("0123456789") for item in row["composition"].split()]
    assert order == sorted(order, key=SYSTEM_ELEMENTS["MEG"].index)
    assert math.isfinite(row["Σq/N_O"]) and row["li_concentration target"] == 5.0
    li = 100 * atoms.get_chemical_symbols().count("Li") / len(atoms)
    assert row["li_concentration"] == pytest.approx(li, abs=1e-4)  # measured by core, rounded to 4 decimals
    checks = app.results.analysis.checks
    assert checks["rule"] == "O within 2.1 Å of each Si" and checks["close_rule"] == "closer than 1.2 Å"
    assert checks["potential"] == "BMP-shrm" and math.isfinite(checks["energy"])
    assert app.results.analysis.ref_checks["ideal_share"] == pytest.approx(1.0, abs=0.01)  # the pilot's Si
    legend = app._element_legend().object
    assert "#FF0D0D" in legend and "●" in legend  # O red in the 3D view's legend


def test_studio_without_a_meg_checkpoint_says_so_and_will_not_generate(tmp_path):
    import panel as pn

    from studio import Studio
    from tests.studio_fakes import FakeBackend

    app = Studio(backend=FakeBackend(), assets=make_assets(tmp_path / "assets"), dispatch=direct)
    app.settings.system = "MEG"
    (reason,) = app.settings.errors()
    assert reason.startswith("No trained checkpoint for MEG: Generate is off until a model is shipped in "
                             "assets/checkpoints/MEG/ (one folder per framework, e.g. shortcut/")
    assert "youngs_modulus (GPa), shear_modulus (GPa), li_concentration (%)" in reason
    assert app.settings.cell_size == 15.5
    (button,) = [b for b in app.controls().select(pn.widgets.Button) if b.label == "Generate"]
    assert button.disabled
    assert not app.generate() and app.task.error.startswith("Cannot generate: No trained checkpoint for MEG")
    app.settings.system = "a-Si"
    assert not button.disabled
