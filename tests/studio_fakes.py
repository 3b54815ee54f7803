"""Test doubles for the studio: a fake checkpoint tree and a backend with core's call shapes.

Only tests use these; the shipped studio always talks to `core` through `CoreBackend`.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
from ase.build import bulk


def make_assets(root: Path, properties=None) -> Path:
    """An assets tree with one a-Si 'amshortcut' checkpoint config and reference curves."""
    properties = properties if properties is not None else {
        "ring_size_mean": {"min": 5.5, "max": 7.0, "mean": 6.1, "std": 0.2},
        "shear_modulus": {"min": 20.0, "max": 40.0, "mean": 30.0, "std": 4.0},
    }
    ckpt = Path(root) / "checkpoints" / "a-Si" / "shortcut"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text(json.dumps({
        "framework": "shortcut", "species": ["Si"], "rho_max": 0.06,
        "properties": list(properties), "property_stats": properties,
    }))
    data = Path(root) / "data" / "a-Si"
    data.mkdir(parents=True)
    r = np.linspace(0.025, 4.975, 100)
    theta = np.linspace(0.5, 179.5, 180)
    np.savez(data / "reference.npz", r=r, rdf=np.exp(-((r - 2.35) / 0.1) ** 2) * 8,
             theta=theta, adf=np.exp(-((theta - 109.0) / 10.0) ** 2) / 177.0, n=np.int64(100),
             rdf_split_half_rmsd=np.float64(0.05), adf_split_half_rmsd=np.float64(0.0002))
    return Path(root)


def make_tiny_checkpoint(root: Path, system: str = "a-Si", framework: str = "shortcut",
                         species=(14,), stats=None) -> Path:
    """A real, untrained checkpoint (a few kB) saved by `core.checkpoint` under `root/checkpoints`.

    Its samples are noise, but every call on the way (load, generate, metrics) is the real one.
    """
    import torch

    from core.checkpoint import Checkpoint, save_checkpoint
    from core.frameworks import default_config, make_framework
    from core.model import Denoiser, DenoiserConfig

    torch.manual_seed(0)
    stats = stats if stats is not None else {"ring_size_mean": {"mean": 6.1, "std": 0.2, "min": 5.5, "max": 7.0}}
    cfg = DenoiserConfig(n_classes=len(species) + 1, n_properties=len(stats), width=16, layers=1,
                         vector_channels=2, cutoff=4.0, property_dim=4, use_dt=framework == "shortcut")
    ckpt = Checkpoint(Denoiser(cfg), make_framework(default_config(framework)), list(species), 0.05,
                      list(stats), stats)
    return save_checkpoint(ckpt, Path(root) / "checkpoints" / system / framework)


class FakeBackend:
    """Returns perturbed diamond Si cells; records calls; `step_delay` makes cancellation testable."""

    def __init__(self, step_delay: float = 0.0, fail: Exception | None = None):
        self.step_delay = step_delay
        self.fail = fail
        self.calls = []
        self.lock = threading.Lock()

    def load_model(self, path):
        return {"path": str(path)}

    def generate(self, model, *, n_samples, steps, cell, rho_max, properties, seed, progress, grid_power,
                 guidance=0.0):
        with self.lock:
            self.calls.append(dict(n_samples=n_samples, steps=steps, cell=cell, properties=properties, seed=seed,
                                   grid_power=grid_power, guidance=guidance))
        if self.fail:
            raise self.fail
        for k in range(steps):
            progress(k, steps)
            time.sleep(self.step_delay)
        progress(steps, steps)
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n_samples):
            atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
            atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
            atoms.info["device"] = "cpu"
            out.append(atoms)
        return out

    def estimate_memory(self, model_path, *, n_samples, cell, rho_max):
        return 1e6 * n_samples

    def default_device(self):
        return "cpu"

    def request_notes(self, model, cell):
        return []

    def device(self, structures):
        return structures[0].info.get("device", "unknown")

    def reference(self, data_dir):
        with np.load(Path(data_dir) / "reference.npz") as ref:
            return {k: ref[k] for k in ref.files}

    def rdf(self, structures):
        from core.metrics import rdf
        return rdf(structures)

    def adf(self, structures):
        from core.metrics import adf
        return adf(structures)

    def curve_rmsd(self, a, b):
        return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))

    def density(self, atoms):
        return len(atoms) / atoms.cell.volume

    def cheap_properties(self, atoms, system=None):
        return {"ring_size_mean": 6.0}

    def shear_modulus(self, atoms):
        return 31.5

    def write_extxyz(self, path, structures):
        from core.material import write_structures
        write_structures(path, structures)

    def structure_checks(self, structures, system=None):
        from core.metrics import structure_checks
        return structure_checks(structures, system=system)

    def composition_values(self, structures, system):
        from studio.backend import CoreBackend
        return CoreBackend().composition_values(structures, system)

    def potential_name(self, system):
        from studio.backend import CoreBackend
        return CoreBackend().potential_name(system)

    def relax(self, structures, system, progress):
        from core.relax import relax, report_rows
        relaxed, report = relax(structures, system, progress=progress)
        return relaxed, {**report, "rows": report_rows(report)}

    def energies_per_atom(self, structures):
        return [-4.0 - 0.01 * len(self.calls)] * len(structures)

    def reference_checks(self, data_dir, system=None):
        counts = np.arange(9)
        return {"rule": "Si within 2.85 Å of each Si", "counts": counts, "ideal": 4, "ideal_share": 0.44,
                "coordination": np.array([0, 0, 0.02, 0.15, 0.44, 0.33, 0.06, 0, 0]), "close_pairs": 0.0,
                "energy": -4.2, "n": 32}

    def measure_property(self, name, atoms):
        """Achieves the asked target plus 1, read back from the fake generation's record."""
        return self.calls[-1]["properties"][name] + 1.0

    def inverse_errors(self, targets, achieved):
        from studio.backend import CoreBackend
        return CoreBackend().inverse_errors(targets, achieved)


ROOT = Path(__file__).resolve().parents[1]
TINY_MEG = ["network.width=16", "network.layers=1", "network.vector_channels=2", "network.cutoff=4.0",
            "network.property_dim=4", "network.distance_rbf=0", "optimisation.warmup_steps=1",
            "validation.every=0", "runtime.progress=false", "runtime.device='cpu'", "runtime.bf16=false",
            "init.recipe=''", "init.step=0", f"data.path={str(ROOT / 'assets' / 'data' / 'MEG')!r}"]
"""configs/MEG/shortcut.toml shrunk to a 1 x 16 network, trained alone (no parent) on the pilot shards."""


def train_tiny_meg(root: Path, steps: int = 3) -> Path:
    """A real MEG AMShortcut trained for ``steps`` steps by the shipped recipe's path on the repository's
    MEG shards (11 elements + ghost, the three properties), at ``root/checkpoints/MEG/shortcut``
    (a training run directory is a checkpoint). Seconds; its samples are noise."""
    from core.recipe import load_recipe
    from core.training import train

    out = Path(root) / "checkpoints" / "MEG" / "shortcut"
    recipe = load_recipe(ROOT / "configs" / "MEG" / "shortcut.toml",
                         TINY_MEG + [f"optimisation.steps={steps}", f"runtime.checkpoint_every={steps}"])
    train(recipe, out)
    return out
