"""Checkpoint round trip and rejection of tampered, foreign or other-version checkpoints."""

import json
import pickle

import pytest
import torch

from core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from core.errors import UserError
from core.frameworks import default_config, make_framework
from core.model import Denoiser, DenoiserConfig


def _checkpoint():
    torch.manual_seed(0)
    cfg = DenoiserConfig(n_classes=3, n_properties=1, width=16, layers=2, vector_channels=2, cutoff=4.0, use_dt=True)
    stats = {"shear_modulus": {"mean": 30.0, "std": 4.0, "min": 20.0, "max": 40.0}}
    return Checkpoint(Denoiser(cfg), make_framework(default_config("shortcut")), [8, 14], 0.08,
                      ["shear_modulus"], stats, {"step": 3})


def _inputs():
    g = torch.Generator().manual_seed(1)
    pos = torch.rand(20, 3, generator=g) * 8.0
    return (pos, torch.randn(20, 3, generator=g), torch.eye(3).unsqueeze(0) * 8.0, torch.zeros(20, dtype=torch.long),
            torch.tensor([0.3]), torch.tensor([[0.5]]), torch.tensor([0.25]))


def test_round_trip_gives_identical_outputs(tmp_path):
    ckpt = _checkpoint()
    save_checkpoint(ckpt, tmp_path / "ck")
    loaded = load_checkpoint(tmp_path / "ck")
    with torch.no_grad():
        a = ckpt.network.eval()(*_inputs())
        b = loaded.network(*_inputs())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert loaded.species == [8, 14] and loaded.framework.name == "shortcut"
    assert loaded.property_names == ["shear_modulus"] and loaded.rho_max == 0.08
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["species"] == ["O", "Si"] and config["version"] == 1
    assert loaded.normalise(torch.tensor([[34.0]])).item() == pytest.approx(1.0)


def test_tampered_weights_are_rejected(tmp_path):
    save_checkpoint(_checkpoint(), tmp_path / "ck")
    weights = tmp_path / "ck" / "weights.pt"
    state = torch.load(weights, weights_only=True)
    state["embed.weight"] += 1.0
    torch.save(state, weights)
    with pytest.raises(UserError, match="hash"):
        load_checkpoint(tmp_path / "ck")


def test_pickled_code_is_not_executed(tmp_path):
    """A weights.pt with arbitrary pickled objects (and a matching hash) fails weights_only loading."""
    save_checkpoint(_checkpoint(), tmp_path / "ck")
    weights = tmp_path / "ck" / "weights.pt"
    with open(weights, "wb") as f:
        pickle.dump({"embed.weight": print}, f)
    config_path = tmp_path / "ck" / "config.json"
    config = json.loads(config_path.read_text())
    import hashlib

    config["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    config_path.write_text(json.dumps(config))
    with pytest.raises(UserError, match="cannot be read as tensors"):
        load_checkpoint(tmp_path / "ck")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(version=99), "version 99"),
    (lambda c: c.update(format="something-else"), "not an AMShortcut checkpoint"),
    (lambda c: c["model"].update(width=32), "parameters|shape"),
    (lambda c: c["model"].update(bogus=1), "invalid model"),
    (lambda c: c.update(species=["Si"]), "element classes"),
    (lambda c: c.pop("schedule"), "lacks schedule"),
])
def test_inconsistent_config_is_rejected(tmp_path, edit, message):
    save_checkpoint(_checkpoint(), tmp_path / "ck")
    path = tmp_path / "ck" / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    with pytest.raises(UserError, match=message):
        load_checkpoint(tmp_path / "ck")


def test_missing_directory_or_files(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        load_checkpoint(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="missing config.json"):
        load_checkpoint(tmp_path / "empty")
