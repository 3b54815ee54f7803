"""Model checkpoints: a directory with ``config.json`` (plain JSON) and ``weights.pt`` (tensors).

config.json says what the model is, so it can be loaded without trusting pickles:
``format``/``version``, ``framework``, ``model`` (DenoiserConfig), ``schedule``
(FrameworkConfig), ``species`` (chemical symbols; element class k = species[k-1], 0 = ghost),
``rho_max`` (atoms/Å^3 the training data were padded to with ghosts), ``properties`` (names)
with ``property_stats`` {name: {mean, std, min, max}} (normalisation and training range),
``training`` (provenance) and ``weights_sha256``.  weights.pt is a state_dict read with
``torch.load(weights_only=True)``; it must match the config's shapes and hash.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from ase.data import atomic_numbers, chemical_symbols

from core.errors import UserError
from core.frameworks import Framework, FrameworkConfig, make_framework
from core.model import Denoiser, DenoiserConfig

FORMAT = "amshortcut-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A trained generative model: network + framework + what its inputs mean."""

    network: Denoiser
    framework: Framework
    species: list[int]  # atomic numbers of element classes 1..n
    rho_max: float
    property_names: list[str] = field(default_factory=list)
    property_stats: dict = field(default_factory=dict)  # name -> {mean, std, min, max}
    training: dict = field(default_factory=dict)
    path: str | None = None

    def normalise(self, y: torch.Tensor) -> torch.Tensor:
        """Raw properties (B,P) in dataset units -> (y - mean) / std; NaN stays NaN (missing)."""
        if not self.property_names:
            return y
        mean = torch.tensor([self.property_stats[n]["mean"] for n in self.property_names], dtype=y.dtype)
        std = torch.tensor([self.property_stats[n]["std"] for n in self.property_names], dtype=y.dtype)
        return (y - mean.to(y.device)) / std.to(y.device)

    def config_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "framework": self.framework.name,
            "model": self.network.cfg.to_dict(),
            "schedule": self.framework.config.to_dict(),
            "species": [chemical_symbols[z] for z in self.species],
            "rho_max": self.rho_max,
            "properties": list(self.property_names),
            "property_stats": self.property_stats,
            "training": self.training,
        }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(ckpt: Checkpoint, path, state_dict=None) -> Path:
    """Write ``path/config.json`` and ``path/weights.pt`` (``state_dict`` defaults to the network's).

    Files are written to temporaries and renamed, so a reader never sees half a checkpoint.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = state_dict if state_dict is not None else ckpt.network.state_dict()
    tmp = path / "weights.pt.tmp"
    torch.save({k: v.detach().to("cpu").contiguous() for k, v in state.items()}, tmp)
    config = ckpt.config_dict()
    config["weights_sha256"] = _sha256(tmp)
    tmp.replace(path / "weights.pt")
    tmp_cfg = path / "config.json.tmp"
    tmp_cfg.write_text(json.dumps(config, indent=2, allow_nan=False))
    tmp_cfg.replace(path / "config.json")
    return path


def _fail(path, problem):
    raise UserError(f"checkpoint {path}: {problem}")


def load_checkpoint(path, device="cpu") -> Checkpoint:
    """Load and validate a checkpoint directory; any inconsistency is a ``UserError``."""
    path = Path(path)
    if path.is_file() and path.name in ("config.json", "weights.pt"):
        path = path.parent
    cfg_file, weights_file = path / "config.json", path / "weights.pt"
    if not path.is_dir():
        _fail(path, "no such directory (a checkpoint is a directory with config.json and weights.pt)")
    for f in (cfg_file, weights_file):
        if not f.is_file():
            _fail(path, f"missing {f.name}")
    try:
        config = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        _fail(path, f"config.json is not valid JSON ({exc})")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        _fail(path, f"config.json is not an AMShortcut checkpoint (format {config.get('format') if isinstance(config, dict) else None!r})")
    if config.get("version") != VERSION:
        _fail(path, f"checkpoint format version {config.get('version')!r}; this version of AMShortcut "
                    f"reads version {VERSION} (retrain or convert the checkpoint)")
    missing = [k for k in ("framework", "model", "schedule", "species", "rho_max", "properties",
                           "property_stats", "weights_sha256") if k not in config]
    if missing:
        _fail(path, f"config.json lacks {', '.join(missing)}")
    try:
        model_cfg = DenoiserConfig(**config["model"])
        schedule = FrameworkConfig(**config["schedule"])
        species = [atomic_numbers[s] for s in config["species"]]
        framework = make_framework(schedule)
    except (TypeError, KeyError, ValueError) as exc:
        _fail(path, f"config.json has an invalid model, schedule or species entry ({exc})")
    if schedule.name != config["framework"]:
        _fail(path, f"framework {config['framework']!r} disagrees with schedule name {schedule.name!r}")
    if model_cfg.n_classes != len(species) + 1:
        _fail(path, f"model has {model_cfg.n_classes} element classes but species lists {len(species)} (+ ghost)")
    names = list(config["properties"])
    stats = config["property_stats"]
    if model_cfg.n_properties != len(names) or any(
            n not in stats or not (math.isfinite(stats[n].get("mean", math.nan))
                                   and stats[n].get("std", 0) > 0) for n in names):
        _fail(path, "properties and their mean/std do not match the model")
    if _sha256(weights_file) != config["weights_sha256"]:
        _fail(path, "weights.pt does not match the hash recorded in config.json (modified or corrupt file)")
    try:
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        _fail(path, f"weights.pt cannot be read as tensors ({type(exc).__name__}: {exc})")
    network = Denoiser(model_cfg)
    expected = network.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        _fail(path, "weights.pt does not hold the parameters this model config describes")
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[key].shape:
            _fail(path, f"weights.pt parameter {key} has the wrong shape")
        if not torch.isfinite(tensor).all():
            _fail(path, f"weights.pt parameter {key} holds NaN or infinite values")
    network.load_state_dict(state)
    network.to(device).eval()
    return Checkpoint(network, framework, species, float(config["rho_max"]), names, stats,
                      config.get("training", {}), str(path))
