"""Dataset shards: gzip'd extended-XYZ files `shard-XXXX.extxyz.gz`, one per work unit.

Each frame is periodic, holds its cell and species, and carries `id` (int, unique in the
dataset), `split` ("train"/"val") and property values (floats) in `atoms.info`.
Positions are written with 5 decimals (10 fm), enough for any structural metric and
compact. Shards are written to a temporary name and renamed, so a shard on disk is
always complete: that is what makes a build resumable.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

SHARD_RE = re.compile(r"^shard-(\d{4})\.extxyz\.gz$")
VAL_FRACTION = 0.1


def shard_path(out: Path, unit: int) -> Path:
    return Path(out) / f"shard-{unit:04d}.extxyz.gz"


def existing_units(out: Path) -> set[int]:
    """Indices of the work units whose shard is complete on disk."""
    if not Path(out).is_dir():
        return set()
    return {int(m.group(1)) for p in Path(out).iterdir() if (m := SHARD_RE.match(p.name))}


def split_of(structure_id: int, split_seed: int) -> str:
    """The seeded train/val rule (recorded in meta.json): 'val' with probability 0.1.

    A pure function of (split_seed, id), so any shard can be split without the others.
    """
    u = np.random.default_rng([split_seed, structure_id]).random()
    return "val" if u < VAL_FRACTION else "train"


def _frame_text(atoms: Atoms) -> str:
    cell = np.asarray(atoms.cell).ravel()
    info = []
    for key, value in atoms.info.items():
        if isinstance(value, str):
            info.append(f'{key}="{value}"')
        elif isinstance(value, (int, np.integer)):
            info.append(f"{key}={int(value)}")
        else:
            info.append(f"{key}={float(value):.6g}")
    header = (
        'Lattice="' + " ".join(f"{c:.6f}" for c in cell) + '" '
        "Properties=species:S:1:pos:R:3 " + " ".join(info) + ' pbc="T T T"'
    )
    lines = [str(len(atoms)), header]
    for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions):
        lines.append(f"{s} {x:.5f} {y:.5f} {z:.5f}")
    return "\n".join(lines) + "\n"


def write_shard(path: Path, frames: list[Atoms]) -> None:
    """Write frames to a gzip'd extxyz shard atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    text = "".join(_frame_text(a) for a in frames)
    with gzip.open(tmp, "wt", compresslevel=9) as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_shard(path: Path) -> list[Atoms]:
    with gzip.open(path, "rt") as fh:
        return read(io.StringIO(fh.read()), index=":", format="extxyz")
