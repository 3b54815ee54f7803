"""The teaching notebooks run top to bottom (their own small settings), as a class would run them.

Each notebook runs against the shipped assets when they hold what it needs (checkpoints and
training-set reference); otherwise against a tree of untrained checkpoints made here, which
still exercises every call (the numbers are then meaningless, the code path is not).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from studio.backend import CoreBackend
from studio.catalog import ASSETS, data_dir, discover
from tests.studio_fakes import make_assets, make_tiny_checkpoint

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TEST_SETTINGS = {"03_inverse_design": {"CELL": "9.0", "TARGET_FRACTIONS": "[0.5]"},
                 "05_li_by_design": {"TARGETS": "[0.0, 8.0]", "N_PER_TARGET": "1"}}
"""Smaller settings than a class would use, so that the suite stays short: one shear modulus
(minutes per structure at the notebook's 14 Å) and 4 glasses instead of 24 run the same calls."""
SIO2_STATS = {"shear_modulus": {"mean": 30.0, "std": 4.0, "min": 20.0, "max": 40.0},
              "ring_size_mean": {"mean": 6.1, "std": 0.2, "min": 5.5, "max": 7.0}}
MEG_STATS = {"youngs_modulus": {"mean": 75.0, "std": 14.0, "min": 37.0, "max": 121.0},
             "shear_modulus": {"mean": 33.0, "std": 6.0, "min": 16.0, "max": 59.0},
             "li_concentration": {"mean": 1.7, "std": 2.7, "min": 0.0, "max": 16.2}}
MEG_SPECIES = (14, 15, 13, 3, 4, 19, 20, 22, 56, 30, 8)  # Si P Al Li Be K Ca Ti Ba Zn O


def _shipped_ok(system: str, prop: str | None = None) -> bool:
    ckpts = discover(ASSETS).get(system, {})
    if not ckpts or (prop and not any(prop in [p.name for p in c.properties] for c in ckpts.values())):
        return False
    try:
        CoreBackend().reference(data_dir(system, ASSETS))
    except FileNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def untrained_assets(tmp_path_factory) -> Path:
    root = make_assets(tmp_path_factory.mktemp("nb") / "assets", properties={})
    shutil.rmtree(root / "checkpoints")
    for framework in ("shortcut", "sde", "ode"):
        make_tiny_checkpoint(root, "a-Si", framework)
    make_tiny_checkpoint(root, "a-SiO2", "shortcut", species=(14, 8), stats=SIO2_STATS)
    make_tiny_checkpoint(root, "MEG", "shortcut", species=MEG_SPECIES, stats=MEG_STATS)
    shutil.copytree(root / "data" / "a-Si", root / "data" / "a-SiO2")
    return root


@pytest.mark.parametrize("name, system, prop", [
    ("01_quickstart", "a-Si", None),
    ("02_why_shortcuts", "a-Si", None),
    pytest.param("04_studio_views", "a-SiO2", "ring_size_mean", marks=pytest.mark.slow),
    pytest.param("03_inverse_design", "a-SiO2", "shear_modulus", marks=pytest.mark.slow),
    pytest.param("05_li_by_design", "MEG", "li_concentration", marks=pytest.mark.slow),
])
def test_notebook_runs(name, system, prop, untrained_assets, monkeypatch):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    if not _shipped_ok(system, prop):
        monkeypatch.setenv("AMSHORTCUT_ASSETS", str(untrained_assets))
    settings = next(c for c in nb.cells if c.cell_type == "code")  # the notebook's settings cell
    for key, value in TEST_SETTINGS.get(name, {}).items():
        settings.source, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", settings.source, flags=re.M)
        assert n == 1, f"{name}: no setting {key} in its first code cell"
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert any(o.get("output_type") in ("display_data", "execute_result") for o in last["outputs"])
