"""What the studio can offer: material systems, their checkpoints and property ranges.

The discovery itself lives in `core.catalog` (shared with the CLI and the benchmarks); this
module only binds it to the studio's names. `ASSETS` is fixed at import from
`AMSHORTCUT_ASSETS` (or the repository's `assets/`), which points the studio at another tree.
"""

from __future__ import annotations

from core.catalog import (PROPERTY_UNITS, SYSTEM_PROPERTIES, SYSTEMS, CheckpointInfo, PropertyRange, assets_root,
                          data_dir, default_cell, formula, read_checkpoint_info)
from core.catalog import available_checkpoints as discover

ASSETS = assets_root()
"""Shipped checkpoints and data; `AMSHORTCUT_ASSETS` points the studio at another tree."""

__all__ = ["ASSETS", "PROPERTY_UNITS", "SYSTEMS", "SYSTEM_PROPERTIES", "CheckpointInfo", "PropertyRange", "data_dir",
           "default_cell", "discover", "formula", "read_checkpoint_info"]
