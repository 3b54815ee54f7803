"""Build (or resume) a dataset directory: shards of MD structures plus `meta.json`.

The dataset is cut into work units (a-Si: one trajectory; a-SiO2: a batch of
structures). Unit u has its own seed derived from (seed, u), writes `shard-{u:04d}` when it
finishes, and is skipped when that shard exists, so re-running the same command continues
where it stopped and never rewrites a finished shard. Units run as tasks on a Dask cluster:
a local one (one worker process per core asked for) or any running cluster given by its
scheduler address; each worker writes its shard into the dataset directory, which it must
therefore see (same machine or a shared file system).

A directory may hold units of several recipes of the same system (e.g. the a-SiO2
melt-quench units and, numbered after them, quench-series units): `meta.json` keeps every
recipe under `recipes` and names each shard's recipe in `shard_recipe`. All recipes of a
directory share `frames_per_unit`, so the id rule stays one rule.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
from dataclasses import asdict, dataclass, fields
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
PROGRESS_TOPIC = "amshortcut-dataset-frame"
CONNECT_TIMEOUT = "20s"  # to a given Dask scheduler


@dataclass(frozen=True)
class System:
    """A dataset kind: its workflow module defines the recipe dataclasses named in `recipes`
    (each with `frames_per_unit`) and `run_unit(recipe, seed, n_frames, on_frame) -> list[Atoms]`.
    `records` names further atoms.info keys the shards keep (e.g. a melt check), which are
    not conditioning properties."""

    name: str
    elements: tuple[str, ...]
    module: str
    recipes: dict  # recipe name -> dataclass name in `module`; the first is the default
    properties: dict  # name -> unit
    records: tuple[str, ...] = ()

    def recipe_class(self, name: str | None = None):
        name = name or next(iter(self.recipes))
        if name not in self.recipes:
            raise UserError(f"{self.name} has no recipe {name!r}; choose one of: {', '.join(self.recipes)}")
        return getattr(importlib.import_module(self.module), self.recipes[name])

    def recipe_type(self, name: str | None = None):
        """The recipe `name` (default: the first) with its default parameters."""
        return self.recipe_class(name)()

    def recipe_name(self, recipe) -> str:
        for name, cls in self.recipes.items():
            if type(recipe).__name__ == cls:
                return name
        raise UserError(f"{type(recipe).__name__} is not a recipe of {self.name}")

    def run_unit(self, *args, **kwargs):
        return importlib.import_module(self.module).run_unit(*args, **kwargs)


SYSTEMS = {
    "asi": System("a-Si", ("Si",), "core.datasets.asi", {"trajectory": "ASiRecipe"}, {}),
    "sio2": System("a-SiO2", ("Si", "O"), "core.datasets.sio2",
                   {"melt-quench": "SiO2Recipe", "quench-series": "SiO2QuenchSeriesRecipe"},
                   {"shear_modulus": "GPa", "ring_size_mean": "Si atoms per ring"}),
    "meg": System("MEG", ("Si", "P", "Al", "Li", "Be", "K", "Ca", "Ti", "Ba", "Zn", "O"), "core.datasets.meg",
                  {"melt-quench-evap-check": "MEGEvapCheckRecipe", "melt-quench": "MEGRecipe"},
                  {"youngs_modulus": "GPa", "shear_modulus": "GPa", "li_concentration": "%"},
                  records=("melt_temperature", "melt_diffusivity", "melt_slowest", "melt_expansion",
                           "cpu_melt_s", "cpu_quench_s", "cpu_elastic_s")),
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


def _worker(system_key: str, recipe, seed: int, unit: int, n_frames: int, out: str,
            on_frame=None) -> tuple[int, int]:
    """Run one unit, label its frames (id, split, properties) and write its shard;
    `on_frame()` is called after each finished frame."""
    system = SYSTEMS[system_key]
    per_unit = recipe.frames_per_unit
    frames = system.run_unit(recipe, unit_seed(seed, unit), n_frames, on_frame=on_frame)
    for k, atoms in enumerate(frames):
        sid = unit * per_unit + k
        props = {p: atoms.info[p] for p in system.properties}
        props |= {k: atoms.info[k] for k in system.records if k in atoms.info}
        atoms.info.clear()
        atoms.info.update({"id": sid, "split": split_of(sid, seed), **props})
    write_shard(shard_path(Path(out), unit), frames)
    return unit, len(frames)


def _dask_task(system_key: str, recipe, seed: int, unit: int, n_frames: int, out: str,
               topic: str = PROGRESS_TOPIC):
    """`_worker` on a Dask worker: each finished frame is sent to the client as an event."""
    from distributed import get_worker

    worker = get_worker()
    return _worker(system_key, recipe, seed, unit, n_frames, out,
                   on_frame=lambda: worker.log_event(topic, unit))


def _recipe_entry(recipe) -> dict:
    return {"type": type(recipe).__name__, "params": asdict(recipe),
            "workflow": " ".join((type(recipe).__doc__ or "").split())}


def _upgrade_meta(system: System, meta: dict) -> dict:
    """A meta.json of a single-recipe directory (a `recipe` dict) in the per-shard layout."""
    if "recipe" not in meta or "recipes" in meta:
        return meta
    old = meta.pop("recipe")
    meta.pop("workflow", None)
    module = importlib.import_module(system.module)
    for name, cls_name in system.recipes.items():
        cls = getattr(module, cls_name)
        if {f.name for f in fields(cls)} == set(old):
            meta["recipes"] = {name: _recipe_entry(cls(**old))}
            meta["shard_recipe"] = {k: name for k in meta.get("shards", {})}
            return meta
    raise UserError(f"meta.json records a recipe of none of the known types ({', '.join(system.recipes)})")


def _check_meta(out: Path, system: System, recipe, seed: int) -> dict:
    """The directory's meta (upgraded to the per-shard layout), after checking that the
    system, the seed, the id stride and this recipe's parameters agree with it."""
    path = out / META
    if not path.exists():
        return {}
    meta = _upgrade_meta(system, json.loads(path.read_text()))
    for key, value in {"system": system.name, "seed": seed}.items():
        if meta.get(key) != value:
            raise UserError(
                f"{out} holds a dataset built with a different {key} "
                f"({meta.get(key)!r} vs {value!r}); use another --out or the same options"
            )
    # only recipes of finished shards bind: one whose units were all cut short can change
    finished = {f"{u:04d}" for u in existing_units(out)}
    in_use = {v for k, v in meta.get("shard_recipe", {}).items() if k in finished}
    strides = {e["params"]["frames_per_unit"] for k, e in meta.get("recipes", {}).items() if k in in_use}
    if strides and strides != {recipe.frames_per_unit}:
        raise UserError(
            f"{out} holds units of {sorted(strides)} structures; a recipe with frames_per_unit="
            f"{recipe.frames_per_unit} would break the id rule (id = unit * frames_per_unit + index)"
        )
    name = system.recipe_name(recipe)
    old = meta.get("recipes", {}).get(name)
    if old is not None and name in in_use and old["params"] != asdict(recipe):
        diff = {k: (old["params"].get(k), v) for k, v in asdict(recipe).items() if old["params"].get(k) != v}
        raise UserError(
            f"{out} holds {name!r} units built with different parameters "
            f"(was vs now: {diff}); use another --out or the same options"
        )
    return meta


def build(system_key: str, n: int, out, seed: int = 0, workers: int = 1, recipe=None,
          progress: bool = True, scheduler: str | None = None) -> dict:
    """Generate (or continue) dataset `system_key` ('asi' | 'sio2' | 'meg') in `out` until it holds
    n structures; returns the final meta dict.

    Units still missing run with `recipe` (default: the system's first recipe) on a Dask
    cluster: `scheduler` is the address of a running one (e.g. 'tcp://host:8786'), else a
    local cluster of `workers` single-threaded worker processes is started and closed."""
    if system_key not in SYSTEMS:
        raise UserError(f"unknown system {system_key!r}; choose one of {sorted(SYSTEMS)}")
    if n < 1:
        raise UserError("--n must be at least 1")
    if workers < 1:
        raise UserError("--workers must be at least 1")
    system = SYSTEMS[system_key]
    recipe = recipe if recipe is not None else system.recipe_type()
    name = system.recipe_name(recipe)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    meta = _check_meta(out, system, recipe, seed)
    counts = {int(k): v for k, v in meta.get("shards", {}).items()}
    done = {u: counts.get(u) or len(read_shard(shard_path(out, u))) for u in existing_units(out)}
    todo = plan(n, done, recipe.frames_per_unit)
    meta = _base_meta(system, seed, meta)
    meta["shards"] = {f"{u:04d}": c for u, c in sorted(done.items())}
    if todo:
        meta["recipes"][name] = _recipe_entry(recipe)
    # a unit's recipe is recorded when it is submitted, so a shard written by a run that was
    # stopped before it could record the shard still says what it is
    meta["shard_recipe"] = dict(sorted((meta["shard_recipe"] | {f"{u:04d}": name for u, _ in todo}).items()))
    _write_meta(out, meta)
    try:
        if todo:
            _run_dask(system_key, recipe, name, seed, todo, out, workers, scheduler,
                      total=max(n, sum(done.values())), initial=sum(done.values()), progress=progress)
    finally:
        meta = finalize(out)  # also after a failure or an interrupt: meta.json matches the shards
    return meta


def _run_dask(system_key, recipe, name, seed, todo, out, workers, scheduler, total, initial, progress):
    """Run the units `todo` as Dask tasks; each finished shard is recorded in meta.json at
    once. A failed unit does not stop the others; the failures are reported at the end."""
    import logging
    import warnings

    from distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    system = SYSTEMS[system_key]
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        cluster = None
    else:
        with warnings.catch_warnings():  # its HTTP port moves aside when another cluster has 8787
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    bar = tqdm(total=total, initial=initial, unit="structure", desc=f"{system.name} ({name})",
               disable=not progress, dynamic_ncols=True)
    failed = []
    try:
        # builds sharing a cluster keep apart: their own task keys and progress events
        tag = hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:8]
        topic = f"{PROGRESS_TOPIC}-{tag}"
        client.subscribe_topic(topic, lambda event: bar.update(1))
        futures = {client.submit(_dask_task, system_key, recipe, seed, u, k, str(out.resolve()), topic,
                                 key=f"{system_key}-{tag}-unit-{u:04d}", pure=False): u for u, k in todo}
        for fut in as_completed(futures):
            try:
                unit, count = fut.result()
            except Exception as exc:  # noqa: BLE001 - any task error is reported, the others go on
                failed.append((futures[fut], f"{type(exc).__name__}: {exc}"))
                continue
            _record_shard(out, unit, count, name)
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    if failed:
        units = ", ".join(f"{u:04d}" for u, _ in sorted(failed))
        raise UserError(f"{len(failed)} unit(s) failed ({units}); the first: {sorted(failed)[0][1]}. "
                        "Finished shards are kept; run the same command again to retry.")


def _record_shard(out: Path, unit: int, count: int, recipe_name: str) -> None:
    """Add a finished shard and its recipe to meta.json (re-read, so keys added by other
    tools survive)."""
    meta = json.loads((out / META).read_text())
    key = f"{unit:04d}"
    meta.setdefault("shards", {})[key] = count
    meta["shards"] = dict(sorted(meta["shards"].items()))
    meta.setdefault("shard_recipe", {})[key] = recipe_name
    meta["shard_recipe"] = dict(sorted(meta["shard_recipe"].items()))
    _write_meta(out, meta)


def _base_meta(system: System, seed: int, old: dict) -> dict:
    import lammps

    meta = dict(old)
    meta.update({
        "system": system.name,
        "elements": list(system.elements),
        "seed": seed,
        "workflow": " ".join(importlib.import_module(system.module).__doc__.split()),
        "units": "metal (Å, ps, K, bar, eV); properties as listed",
        "split": {
            "rule": "val if numpy.random.default_rng([seed, id]).random() < val_fraction",
            "seed": seed,
            "val_fraction": VAL_FRACTION,
        },
        "unit_seed_rule": "numpy.random.SeedSequence([seed, unit]).generate_state(1)[0]",
        "id_rule": "id = unit * frames_per_unit + index in unit",
        "recipe_rule": "shard_recipe names each shard's recipe; recipes holds each recipe's type and parameters",
        "software": {"lammps": lammps.__version__ if hasattr(lammps, "__version__") else "",
                     "python": platform.python_version()},
        "properties": {p: {"unit": u} for p, u in system.properties.items()},
    })
    meta.setdefault("recipes", {})
    meta.setdefault("shard_recipe", {})
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
    units = {f"{u:04d}" for u in existing_units(out)}
    if "shard_recipe" in meta:  # units submitted but never finished are not in the dataset
        meta["shard_recipe"] = {k: v for k, v in meta["shard_recipe"].items() if k in units}
        meta["recipes"] = {k: v for k, v in meta["recipes"].items() if k in meta["shard_recipe"].values()}
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


