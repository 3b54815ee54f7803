"""What the benchmark scripts share: argument parsing, checkpoint lookup, timed generation with
a progress bar, where results go, and CSV/JSON/markdown output.

Results are written outside the repository unless asked: to ``$AMSHORTCUT_RESULTS`` when set,
else ``~/.cache/amshortcut/benchmarks`` (``$XDG_CACHE_HOME`` respected). A result that is
recorded in the repository is written with ``--out-dir benchmarks/results`` explicitly.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import time
from pathlib import Path

RESULTS_ENV = "AMSHORTCUT_RESULTS"
"""Environment variable naming the default results directory."""


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = BENCHMARKS.parent / "scripts"


def load_script(name: str, folder: Path = BENCHMARKS):
    """The script ``<folder>/<name>.py`` (a script, not a package; benchmarks/ by default, or
    ``SCRIPTS``) loaded as the module ``benchmark_<name>`` (``script_<name>`` from scripts/)."""
    import importlib.util
    import sys

    prefix = "benchmark" if Path(folder) == BENCHMARKS else "script"
    spec = importlib.util.spec_from_file_location(f"{prefix}_{name}", Path(folder) / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def default_results_dir() -> Path:
    """``$AMSHORTCUT_RESULTS`` if set, else ``<cache>/amshortcut/benchmarks`` (cache = ``$XDG_CACHE_HOME``
    or ``~/.cache``): never inside the repository, so a trial run leaves the tree clean."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache).expanduser() / "amshortcut" / "benchmarks"


def parse_counts(text: str, option: str) -> list[int]:
    """'1,2,5' -> [1, 2, 5] for the command-line ``option``: whole numbers >= 1, order kept,
    duplicates dropped; one clear line otherwise."""
    from core.errors import UserError

    try:
        counts = [int(x) for x in str(text).replace(" ", "").split(",") if x]
    except ValueError:
        raise UserError(f"{option} expects comma-separated whole numbers, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise UserError(f"{option} needs whole numbers of at least 1, got {text!r}")
    return list(dict.fromkeys(counts))


def parse_steps(text: str) -> list[int]:
    """``--steps``: sampling step counts, as ``parse_counts``."""
    return parse_counts(text, "--steps")


def parse_floats(text: str, option: str) -> list[float]:
    """'2.2, 2.8' -> [2.2, 2.8] for the command-line ``option`` (empty text -> []); one clear line otherwise."""
    from core.errors import UserError

    try:
        return [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{option} expects comma-separated numbers, got {text!r}") from None


def parse_systems(text: str, option: str = "--systems") -> list[str]:
    """'a-Si,a-SiO2' -> ['a-Si', 'a-SiO2'], each one of ``core.catalog.SYSTEMS``; one clear line otherwise."""
    from core.catalog import SYSTEMS
    from core.errors import UserError

    systems = list(dict.fromkeys(x.strip() for x in str(text).split(",") if x.strip()))
    unknown = [x for x in systems if x not in SYSTEMS]
    if unknown or not systems:
        raise UserError(f"{option} expects systems among {', '.join(SYSTEMS)}, got {text!r}")
    return systems


def run_script(main) -> None:
    """Run the ``main()`` of a script under benchmarks/ or scripts/ as a program: bad input
    (``core.errors.UserError``) ends in one ``error: ...`` line on stderr and exit status 2; an
    int that ``main`` returns is the status, anything else means 0."""
    import sys

    from core.errors import UserError

    try:
        result = main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)


def set_threads(threads: int) -> None:
    """Limit torch (and OpenMP children such as vesin) to ``threads`` CPU threads (0 = leave)."""
    if threads > 0:
        import torch

        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def machine_info(device) -> dict:
    """Where the numbers were measured: host architecture, CPU count, torch threads, device."""
    import torch

    info = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "device": str(device)}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load_framework_checkpoints(directory) -> dict:
    """{framework: core.checkpoint.Checkpoint} for every ``<directory>/<framework>/config.json``."""
    from core.checkpoint import load_checkpoint

    directory = Path(directory)
    return {cfg.parent.name: load_checkpoint(cfg.parent) for cfg in sorted(directory.glob("*/config.json"))}


def parse_named_paths(items) -> dict[str, Path]:
    """['sde=runs/x', 'runs/y'] -> {'sde': runs/x, <framework in y's config.json>: runs/y}."""
    from core.catalog import framework_name
    from core.errors import UserError

    out = {}
    for item in items or []:
        name, sep, path = str(item).partition("=")
        if not sep:
            path = name
            try:
                name = json.loads((Path(path) / "config.json").read_text())["framework"]
            except (OSError, ValueError, KeyError):
                raise UserError(f"{path}: not a checkpoint directory (no readable config.json)") from None
        out[framework_name(name)] = Path(path)
    return out


def timed_generate(model, n, steps, cell, properties=None, *, seed=0, device="cpu", bar=None,
                   batch_size=None, rho_max=None, grid_power=1.0, guidance=0.0):
    """``core.sampling.generate`` timed with ``time.perf_counter``: (structures, seconds).

    ``bar`` (a tqdm bar counting integration steps x structures) advances by n * steps.
    On CUDA the clock stops after a device synchronise, so queued kernels are counted.
    """
    import torch

    from core.sampling import generate

    seen = [0]

    def progress(done, total):
        if bar is not None and total:
            bar.update((done - seen[0]) * n * steps / total)  # structure-steps done since the last call
        seen[0] = done

    start = time.perf_counter()
    out = generate(model, n, steps, cell, rho_max, properties or {}, device=device, seed=seed,
                   progress=progress, batch_size=batch_size, grid_power=grid_power, guidance=guidance)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def measure_property_timed(name: str, atoms, options: dict) -> tuple[tuple[float, str], float]:
    """((value, '' or the reason it is missing), seconds) of ``core.properties.measure_property(name,
    atoms, **options)``; any calculator failure is a NaN with its reason."""
    from core.properties import measure_property

    start = time.perf_counter()
    if int((atoms.numbers != 0).sum()) == 0:
        value, why = math.nan, "no atoms"
    else:
        try:
            value = float(measure_property(name, atoms, **options))
            why = "" if math.isfinite(value) else "undefined (e.g. no ring)"
        except Exception as exc:  # noqa: BLE001 - LAMMPS/ASE raise many types for unphysical inputs
            value, why = math.nan, f"{type(exc).__name__}: {str(exc)[:80]}"
    return (value, why), time.perf_counter() - start


def measure_properties_timed(names, atoms, options: dict) -> list[tuple[tuple[float, str], float]]:
    """``measure_property_timed`` of several properties of one structure, in one process (so that
    properties sharing a calculation, such as a MEG glass's E and G, share it); a module-level
    function so that a process pool can run it."""
    return [measure_property_timed(name, atoms, options) for name in names]


def fmt(value, digits=4) -> str:
    """Number for a markdown cell: 4 significant digits, 'n/a' for None or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def markdown_table(headers, rows) -> str:
    """A GitHub markdown table from a header list and rows of cell strings."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path, rows: list[dict]) -> Path:
    """One CSV line per row dict (columns in first-seen order); creates the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_outputs(stem: str, rows: list[dict], summary: dict, out_dir=None) -> dict[str, Path]:
    """Write ``<stem>.csv`` (one line per row) and ``<stem>.json`` ({summary, rows}) to ``out_dir``
    (default ``default_results_dir()``); returns their paths."""
    out_dir = Path(out_dir) if out_dir is not None else default_results_dir()
    csv_path, json_path = write_csv(out_dir / f"{stem}.csv", rows), out_dir / f"{stem}.json"

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    json_path.write_text(json.dumps(clean({"summary": summary, "rows": rows}), indent=1, default=str) + "\n")
    return {"csv": csv_path, "json": json_path}
