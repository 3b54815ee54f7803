"""Shipped assets: which trained checkpoints and datasets exist, read from metadata only.

Layout (the directory contract, docs/datasets.md and docs/model.md)::

    assets/checkpoints/<system>/<framework>/config.json + weights.pt
    assets/data/<system>/shard-XXXX.extxyz.gz, meta.json, reference.npz

The assets root is ``$AMSHORTCUT_ASSETS`` when set, else ``assets/`` beside the ``core``
package (the repository checkout). Nothing here loads a network: ``config.json`` is read
as JSON, so listing is cheap and a half-written directory is simply skipped. The CLI, the
benchmarks and the studio all resolve checkpoints through this module.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import UserError

SYSTEMS = ("a-Si", "a-SiO2", "MEG")
"""The material systems this project knows (listed first, in this order), whether or not a
checkpoint of each is shipped: amorphous silicon, amorphous silica and the multi-element oxide
glasses (docs/datasets.md)."""
SYSTEM_ELEMENTS = {
    "a-Si": ("Si",),
    "a-SiO2": ("Si", "O"),
    "MEG": ("Si", "P", "Al", "Li", "Be", "K", "Ca", "Ti", "Ba", "Zn", "O"),
}
"""Per system: its elements in the dataset's order (MEG: the formers Si and P, the modifiers' cations,
O; `core.datasets.meg.ELEMENTS`). Formulas are written in this order (`formula`)."""
PROPERTY_UNITS = {"shear_modulus": "GPa", "youngs_modulus": "GPa", "ring_size_mean": "Si per ring",
                  "li_concentration": "%"}
"""Unit of each conditioning property as the datasets store it (`core.properties.PROPERTIES`)."""
SYSTEM_PROPERTIES = {
    "a-Si": (),
    "a-SiO2": ("shear_modulus", "ring_size_mean"),
    "MEG": ("youngs_modulus", "shear_modulus", "li_concentration"),
}
"""Per system: the properties its dataset holds and its models are conditioned on (paper Sec. 5.3):
a-SiO2 shear modulus and mean ring size; MEG Young's modulus, shear modulus and Li concentration."""
SYSTEM_CELL = {"MEG": 15.5}
"""Per system: cubic cell edge (Å) to generate in when the system's glasses differ in size and density,
so that no single training cell is typical. MEG: the paper samples ~800-atom glasses in 23 Å cubes;
our glasses hold ~250 atoms at a mean 0.0693 atoms/Å^3 (assets/data/MEG/meta.json), i.e. a 15.3 Å cube,
rounded to the studio's 0.5 Å grid: 15.5 Å, ≈258 atoms. Other systems start from the checkpoint's
training cell."""
FRAMEWORKS = ("shortcut", "sde", "ode")
"""Framework names (also the checkpoint directory names): AMShortcut, Material SDE, Material ODE.
The one list of them; ``core.frameworks`` maps each to its class."""
FRAMEWORK_ALIASES = {"amshortcut": "shortcut", "material-sde": "sde", "material-ode": "ode"}
FRAMEWORK_LABELS = {"shortcut": "AMShortcut", "sde": "Material SDE", "ode": "Material ODE"}
DEFAULT_STEPS = {"shortcut": 5, "sde": 100, "ode": 25}
"""Sampling steps the CLI and the studio start from, per framework: where the shipped a-Si
models are accurate (benchmarks/structure.py, BENCHMARKS.md). AMShortcut is best at 4-5
PF-shortcut steps; the Material SDE needs about 100 small steps; the Material ODE is at its
best from 25 (0.045 RDF RMSD at 25, 0.048 at 100, 16 structures each)."""
SYSTEM_DEFAULT_STEPS = {"a-SiO2": {"shortcut": 25}, "MEG": {"shortcut": 25}}
"""Per-system exceptions to ``DEFAULT_STEPS``. The shipped a-SiO2 AMShortcut is at its best from
about 25 steps (RDF RMSD 0.54 at 25, 0.75 at 10, 1.10 at 5; BENCHMARKS.md, a-SiO2); at 1–5 steps
its samples are worse than ~0.15 Å of error on every atom. MEG starts where a-SiO2 is best, its
recipe being a-SiO2's (configs/MEG/), until a MEG model is benchmarked; the paper also finds
property conditioning weaker at one step (Sec. 5.5)."""


def assets_root() -> Path:
    """The assets directory: ``$AMSHORTCUT_ASSETS`` if set, else ``<repository>/assets``."""
    env = os.environ.get("AMSHORTCUT_ASSETS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "assets"


def _root(assets) -> Path:
    return Path(assets) if assets is not None else assets_root()


@dataclass(frozen=True)
class PropertyRange:
    """Training-data range of a conditioning property (values in the dataset's units)."""

    name: str
    low: float
    high: float
    mean: float = math.nan

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class CheckpointInfo:
    """One trained model as listed (not loaded): system, framework, directory, conditioning.

    rho_max in atoms/Å^3 (real + ghost atoms the model was trained with).
    """

    system: str
    framework: str
    path: Path
    species: tuple[str, ...] = ()
    rho_max: float = 0.11
    properties: tuple[PropertyRange, ...] = ()
    config: dict = field(default_factory=dict, compare=False, repr=False)


def property_ranges(config: dict) -> tuple[PropertyRange, ...]:
    """Property ranges from a checkpoint config.

    Accepts ``properties`` as a list of names with ``property_stats``/``property_ranges``, or
    as a mapping name -> {min, max, mean, std}. Without min/max the range is mean ± 2 std;
    without either it is unbounded.
    """
    props = config.get("properties", config.get("property_names", []))
    stats = config.get("property_stats", config.get("property_ranges", {}))
    if isinstance(props, dict):
        stats, props = {**props, **stats}, list(props)
    out = []
    for name in props:
        s = stats.get(name, {}) if isinstance(stats, dict) else {}
        if isinstance(s, (list, tuple)) and len(s) == 2:
            s = {"min": s[0], "max": s[1]}
        mean = float(s.get("mean", math.nan))
        std = float(s.get("std", math.nan))
        low = float(s.get("min", mean - 2 * std))
        high = float(s.get("max", mean + 2 * std))
        if not (math.isfinite(low) and math.isfinite(high)):
            low, high = -math.inf, math.inf
        out.append(PropertyRange(name, low, high, mean))
    return tuple(out)


def read_checkpoint_info(system: str, framework: str, path) -> CheckpointInfo:
    """Metadata of the checkpoint directory ``path`` (reads ``config.json`` only)."""
    config = json.loads((Path(path) / "config.json").read_text())
    species = tuple(str(s) for s in config.get("species", config.get("elements", ())))
    rho_max = float(config.get("rho_max", 0.11))
    framework = str(config.get("framework", framework))
    return CheckpointInfo(system, framework, Path(path), species, rho_max, property_ranges(config), config)


def available_checkpoints(assets=None) -> dict[str, dict[str, CheckpointInfo]]:
    """Every system (the shipped ones first, possibly empty) -> {framework: CheckpointInfo}.

    A directory whose config.json cannot be read as a checkpoint description is skipped.
    """
    root = _root(assets) / "checkpoints"
    found: dict[str, dict[str, CheckpointInfo]] = {system: {} for system in SYSTEMS}
    if root.is_dir():
        for config in sorted(root.glob("*/*/config.json")):
            system, framework = config.parent.parent.name, config.parent.name
            try:
                found.setdefault(system, {})[framework] = read_checkpoint_info(system, framework, config.parent)
            except (OSError, ValueError, TypeError, AttributeError):
                continue  # half-written or foreign directory
    return found


def default_steps(framework: str, system: str | None = None) -> int:
    """The sampling step count to start from for a framework on a system
    (``SYSTEM_DEFAULT_STEPS``, else ``DEFAULT_STEPS``; 5 if unknown)."""
    name = framework_name(framework)
    return SYSTEM_DEFAULT_STEPS.get(system, {}).get(name, DEFAULT_STEPS.get(name, 5))


def default_cell(system: str | None) -> float | None:
    """The cubic cell edge (Å) to generate ``system`` in when no cell is asked for (`SYSTEM_CELL`),
    or None: then the checkpoint's training cell."""
    return SYSTEM_CELL.get(system)


def formula(symbols, system: str | None = None) -> str:
    """Chemical formula with spaces, elements in ``system``'s dataset order (`SYSTEM_ELEMENTS`), any
    other element after them alphabetically, ghosts ('X') left out: 'Si56 Al18 Ca19 O158'."""
    order = SYSTEM_ELEMENTS.get(system, ())
    counts: dict[str, int] = {}
    for s in symbols:
        if s != "X":
            counts[s] = counts.get(s, 0) + 1
    ranked = sorted(counts, key=lambda s: (order.index(s) if s in order else len(order), s))
    return " ".join(f"{s}{counts[s]}" for s in ranked)


def framework_name(framework: str) -> str:
    """Directory name of a framework: 'shortcut' | 'sde' | 'ode' (paper names accepted)."""
    key = str(framework).strip().lower()
    return FRAMEWORK_ALIASES.get(key, key)


def _listing(found: dict[str, dict[str, CheckpointInfo]]) -> str:
    have = [f"{s}/{f}" for s, fws in found.items() for f in sorted(fws)]
    return ", ".join(have) if have else "none"


def shipped_checkpoint(system: str, framework: str = "shortcut", assets=None) -> Path:
    """Directory of the shipped checkpoint ``<assets>/checkpoints/<system>/<framework>``.

    Raises ``UserError`` naming the checkpoints that do exist when this one is missing.
    """
    framework = framework_name(framework)
    root = _root(assets) / "checkpoints"
    path = root / system / framework
    if (path / "config.json").is_file() and (path / "weights.pt").is_file():
        return path
    raise UserError(
        f"no shipped checkpoint for system {system!r}, framework {framework!r} (looked in {path}); "
        f"available: {_listing(available_checkpoints(assets))}. Pass --checkpoint PATH to use another "
        f"model (a training run directory is a checkpoint).")


def data_dir(system: str, assets=None) -> Path:
    """Directory of a system's shipped training data and reference curves."""
    return _root(assets) / "data" / system
