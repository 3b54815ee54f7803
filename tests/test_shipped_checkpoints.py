"""Every shipped checkpoint generates real structure at 1 step (issue 5's acceptance check).

Each shipped checkpoint directory carries ``acceptance.json``: the sampling settings and the
largest RDF RMSD (against its dataset's ``reference.npz``) that its 1-step samples must stay
below, derived from ``benchmarks/structure.py`` (its ``basis`` says how). The threshold has
teeth: the same network with freshly initialised weights must exceed it, so the test fails
for a broken loader, a wrong schedule or an untrained model, not only for a missing file.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from core.catalog import available_checkpoints, data_dir
from core.checkpoint import load_checkpoint
from core.datasets import load_dataset
from core.metrics import curve_rmsd, rdf
from core.model import Denoiser
from core.sampling import generate

pytestmark = pytest.mark.usefixtures("one_thread")

SHIPPED = [(system, framework, info.path)
           for system, found in available_checkpoints().items() for framework, info in sorted(found.items())]


def _rdf_rmsd(checkpoint, acceptance, reference, cell) -> float:
    samples = generate(checkpoint, acceptance["n_samples"], acceptance["steps"], cell,
                       seed=acceptance["seed"], device="cpu")
    return curve_rmsd(rdf(samples)[1], reference["rdf"])


def test_the_default_system_ships_an_amshortcut_checkpoint():
    assert ("a-Si", "shortcut") in {(s, f) for s, f, _ in SHIPPED}


@pytest.mark.parametrize(("system", "framework", "path"), SHIPPED, ids=[f"{s}/{f}" for s, f, _ in SHIPPED])
def test_shipped_checkpoint_generates_below_its_threshold(system, framework, path):
    acceptance = json.loads((path / "acceptance.json").read_text())
    assert acceptance["steps"] == 1
    checkpoint = load_checkpoint(path)
    with np.load(data_dir(system) / "reference.npz") as ref:
        reference = {key: ref[key] for key in ref.files}
    cell = load_dataset(data_dir(system), split="val")[0].cell.array
    limit = acceptance["max_rdf_rmsd"]

    trained = _rdf_rmsd(checkpoint, acceptance, reference, cell)
    assert np.isfinite(trained) and trained < limit, (
        f"{system}/{framework}: 1-step RDF RMSD {trained:.3f} is above the accepted {limit} "
        f"({acceptance['basis']})")

    torch.manual_seed(0)
    untrained = dataclasses.replace(checkpoint, network=Denoiser(checkpoint.network.cfg).eval())
    assert _rdf_rmsd(untrained, acceptance, reference, cell) > limit
