"""What the studio can offer: material systems, their checkpoints and property ranges.

Checkpoints live in `assets/checkpoints/<system>/<framework>/` (a `config.json` beside the
weights); training data and reference curves in `assets/data/<system>/`. This module only
reads that metadata (JSON), it never loads a model.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

ASSETS = Path(os.environ.get("AMSHORTCUT_ASSETS", Path(__file__).resolve().parents[1] / "assets"))
"""Shipped checkpoints and data; `AMSHORTCUT_ASSETS` points the studio at another tree."""
SYSTEMS = ("a-Si", "a-SiO2")


@dataclass(frozen=True)
class PropertyRange:
    """Training-data range of a conditioning property (value units as in the dataset)."""

    name: str
    low: float
    high: float
    mean: float = math.nan

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Checkpoint:
    """One trained model: system, framework, directory and what it can be conditioned on."""

    system: str
    framework: str
    path: Path
    species: tuple[str, ...] = ()
    rho_max: float = 0.11
    properties: tuple[PropertyRange, ...] = ()
    config: dict = field(default_factory=dict, compare=False, repr=False)


def _ranges(config: dict) -> tuple[PropertyRange, ...]:
    """Property ranges from a checkpoint config.

    Accepts `properties` as a list of names with `property_stats`/`property_ranges`, or as a
    mapping name -> {min, max, mean, std}. Without min/max the range is mean ± 2 std.
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


def read_checkpoint(system: str, framework: str, path: Path) -> Checkpoint:
    """Metadata of the checkpoint in `path` (reads `config.json` only)."""
    config = json.loads((Path(path) / "config.json").read_text())
    species = config.get("species", config.get("elements", ()))
    species = tuple(str(s) for s in species)
    rho_max = float(config.get("rho_max", 0.11))
    framework = str(config.get("framework", framework))
    return Checkpoint(system, framework, Path(path), species, rho_max, _ranges(config), config)


def discover(assets: Path = ASSETS) -> dict[str, dict[str, Checkpoint]]:
    """All systems (the shipped ones first) mapped to {framework: Checkpoint}; empty if none trained."""
    root = Path(assets) / "checkpoints"
    found: dict[str, dict[str, Checkpoint]] = {system: {} for system in SYSTEMS}
    if root.is_dir():
        for config in sorted(root.glob("*/*/config.json")):
            system, framework = config.parent.parent.name, config.parent.name
            try:
                found.setdefault(system, {})[framework] = read_checkpoint(system, framework, config.parent)
            except (OSError, ValueError, TypeError, AttributeError):
                continue  # a half-written or foreign directory is not offered
    return found


def data_dir(system: str, assets: Path = ASSETS) -> Path:
    """Directory of the shipped training data and reference curves of a system."""
    return Path(assets) / "data" / system
