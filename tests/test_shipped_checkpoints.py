"""Every shipped checkpoint generates real structure (the acceptance protocol, ``core.acceptance``).

Each shipped checkpoint directory carries ``acceptance.json``: the sampling settings and the
largest RDF RMSD (against its dataset's ``reference.npz``) that its samples must stay
below, derived from ``benchmarks/structure.py`` by ``benchmarks/acceptance.py`` (its
``basis`` says how). AMShortcut is held to 1 step, its point (a-SiO2's to its default
25: at 1 step its RDF RMSD cannot tell 0.2 Å errors from an ideal gas); the Material SDE and ODE,
whose 1-step samples are barely better than an ideal gas, to the step count named in
their file. The threshold has teeth: the same network with freshly initialised weights must
exceed it, so the test fails for a broken loader, a wrong schedule or an untrained model,
not only for a missing file.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.acceptance import acceptance_record, protocol_rdf_rmsd, untrained, write_acceptance
from core.catalog import SYSTEM_DEFAULT_STEPS, available_checkpoints
from core.checkpoint import load_checkpoint
from core.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")

SHIPPED = [(system, framework, info.path)
           for system, found in available_checkpoints().items() for framework, info in sorted(found.items())]


def test_the_default_system_ships_an_amshortcut_checkpoint():
    assert ("a-Si", "shortcut") in {(s, f) for s, f, _ in SHIPPED}


def test_every_shipped_checkpoint_is_listed_with_its_card_and_recipe():
    """assets/checkpoints/README.md, the list a user reads first, names every model that ships."""
    listing = (SHIPPED[0][2].parents[1] / "README.md").read_text()
    for system, framework, path in SHIPPED:
        assert (path / "MODEL_CARD.md").is_file()
        assert f"({system}/{framework}/MODEL_CARD.md)" in listing, f"{system}/{framework} missing from the list"
        assert f"`configs/{system}/{framework}.toml`" in listing


@pytest.mark.parametrize(("system", "framework", "path"), SHIPPED, ids=[f"{s}/{f}" for s, f, _ in SHIPPED])
def test_shipped_checkpoint_generates_below_its_threshold(system, framework, path):
    acceptance = json.loads((path / "acceptance.json").read_text())
    if framework == "shortcut":
        # 1 step, the AMShortcut's point; a system with its own default step count (a-SiO2, whose RDF
        # RMSD saturates at 1 step: docs/model.md) is held to that count at most
        assert acceptance["steps"] <= SYSTEM_DEFAULT_STEPS.get(system, {}).get("shortcut", 1)
    checkpoint = load_checkpoint(path)
    limit = acceptance["max_rdf_rmsd"]

    trained = protocol_rdf_rmsd(checkpoint, acceptance, system)
    assert np.isfinite(trained) and trained < limit, (
        f"{system}/{framework}: {acceptance['steps']}-step RDF RMSD {trained:.3f} is above the accepted {limit} "
        f"({acceptance['basis']})")
    assert protocol_rdf_rmsd(untrained(checkpoint), acceptance, system) > limit


def test_acceptance_record_writes_a_separating_limit_and_refuses_a_toothless_one(tmp_path):
    """On a copy of the shipped AMShortcut: the 1-step limit from the benchmark figure is written with
    its basis; a factor so large that even the untrained network passes is refused, nothing written."""
    import shutil

    src = dict((f, p) for s, f, p in SHIPPED if s == "a-Si")["shortcut"]
    copy = tmp_path / "a-Si" / "shortcut"
    copy.mkdir(parents=True)
    for name in ("config.json", "weights.pt"):
        shutil.copy(src / name, copy / name)
    checkpoint = load_checkpoint(copy)
    bench = json.loads((src / "acceptance.json").read_text())["max_rdf_rmsd"] / 1.5
    record = acceptance_record(checkpoint, "a-Si", steps=1, benchmark=bench, note="test")
    assert record["trained"] < record["max_rdf_rmsd"] == round(1.5 * bench, 3) < record["untrained"]
    written = json.loads(write_acceptance(copy, record).read_text())
    assert written["steps"] == 1 and written["n_samples"] == 8 and written["seed"] == 0
    assert written["max_rdf_rmsd"] == round(1.5 * bench, 3) and "test" in written["basis"]
    assert "trained" not in written and "untrained" not in written
    (copy / "acceptance.json").unlink()
    with pytest.raises(UserError, match="does not separate"):
        acceptance_record(checkpoint, "a-Si", steps=1, benchmark=bench, factor=10)
    with pytest.raises(UserError, match="must be positive"):
        acceptance_record(checkpoint, "a-Si", steps=1, benchmark=-bench)
    assert not (copy / "acceptance.json").exists()
