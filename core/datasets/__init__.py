"""Datasets made here by molecular dynamics (a-Si, a-SiO2, MEG): reading, metadata, reference curves.

A dataset directory holds `shard-XXXX.extxyz.gz` (see `core.datasets.shards`), `meta.json`
(recipe, seeds, split rule, property units and train-set statistics) and `reference.npz`
(averaged train-split RDF/ADF and the split-half RMSD floor). Workflows: `asi.py`,
`sio2.py`, `meg.py`; building and resuming: `build.py` (CLI: `amshortcut dataset build`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms

from core.datasets.shards import existing_units, read_shard, shard_path
from core.errors import UserError

SPLITS = ("train", "val")


def _check_dir(directory) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise UserError(f"{path}: no such dataset directory")
    if not existing_units(path):
        raise UserError(f"{path}: no dataset shards (shard-XXXX.extxyz.gz) in this directory")
    return path


def load_dataset(directory, split: str | None = None, recipe: str | None = None) -> list[Atoms]:
    """All structures of a dataset directory in id order, or only its 'train' / 'val' split;
    with `recipe`, only the shards that recipe made (meta.json's `shard_recipe`)."""
    if split not in (None, *SPLITS):
        raise UserError(f"split must be one of {SPLITS} or None, not {split!r}")
    path = _check_dir(directory)
    units = sorted(existing_units(path))
    if recipe is not None:
        made = dataset_meta(path).get("shard_recipe", {})
        if recipe not in made.values():
            raise UserError(f"{path}: no shard made by recipe {recipe!r} (recipes: {sorted(set(made.values()))})")
        units = [u for u in units if made.get(f"{u:04d}") == recipe]
    frames = [a for u in units for a in read_shard(shard_path(path, u))]
    if split is not None:
        frames = [a for a in frames if a.info.get("split") == split]
    return sorted(frames, key=lambda a: int(a.info["id"]))


def dataset_meta(directory) -> dict:
    """The dataset's meta.json as a dict."""
    path = Path(directory) / "meta.json"
    if not path.exists():
        raise UserError(f"{path}: missing (not a dataset directory?)")
    return json.loads(path.read_text())


def write_reference(directory, seed: int = 0) -> dict:
    """Write `reference.npz`: the train split's averaged RDF (5 Å, 100 bins) and ADF (3 Å,
    180 bins), and the split-half floor, the RMSD between the averaged curves of two
    disjoint random halves of the train split (the sampling noise a perfect generator of
    that many structures would still show). Also records the numbers in meta.json."""
    from core.metrics import adf, averaged, curve_rmsd, rdf

    path = _check_dir(directory)
    train = load_dataset(path, split="train")
    r, g = rdf(train, 5.0, 100)
    theta, p = adf(train, 3.0, 180)
    half = np.random.default_rng(seed).permutation(len(train))
    a, b = half[: len(train) // 2], half[len(train) // 2: 2 * (len(train) // 2)]
    ref = {
        "r": r, "rdf": averaged(g), "theta": theta, "adf": averaged(p), "n": len(train),
        "rdf_split_half_rmsd": curve_rmsd(g[a], g[b]),
        "adf_split_half_rmsd": curve_rmsd(p[a], p[b]),
        "n_half": len(a),
    }
    arrays = {k: np.asarray(v, dtype=np.float32) if np.ndim(v) else np.asarray(v) for k, v in ref.items()}
    np.savez_compressed(path / "reference.npz", **arrays)
    meta = dataset_meta(path)
    meta["reference"] = {
        "file": "reference.npz", "split": "train", "n": len(train), "n_half": len(a),
        "half_seed": seed, "rdf": {"r_max_A": 5.0, "bins": 100}, "adf": {"cutoff_A": 3.0, "bins": 180},
        "rdf_split_half_rmsd": ref["rdf_split_half_rmsd"],
        "adf_split_half_rmsd": ref["adf_split_half_rmsd"],
    }
    (path / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return ref


__all__ = ["dataset_meta", "load_dataset", "write_reference"]
