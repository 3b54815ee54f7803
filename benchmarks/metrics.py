"""Time our batched RDF/ADF against ASE on 1,000 structures of 256 atoms; check they agree.

Baselines, both single-threaded like ours here:
- RDF: `ase.geometry.analysis.Analysis(atoms).get_rdf(5.0, 100)`, one structure at a time.
- ADF: ASE has no cutoff-based angle histogram (Analysis.get_angles needs bonds by element
  and covalent radii), so the baseline is the straightforward one: ase.neighborlist per
  atom, every neighbour pair of a centre vectorised with numpy (faster than a pure double
  loop over pairs, so the ratio is not flattered).
Baselines run on all structures by default; with --baseline-subset k they run on the
first k and are extrapolated linearly, which the table then says. Structures: the first
--n frames of the dataset shards in --data (default assets/data/a-Si; cycled if there are
fewer), or with ``--data random`` random 0.05 atoms/Å^3 Si pushed apart to a 2.1 Å minimum distance.

    .venv/bin/python benchmarks/metrics.py [--n 1000] [--baseline-subset 1000]   # ≈2 min

Writes metrics.json to --out-dir (default outside the repository; ``--out-dir benchmarks/results``
records the result).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # vesin's thread count; one core, as the baselines

import argparse  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import ase  # noqa: E402
import numpy as np  # noqa: E402
import vesin  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.geometry.analysis import Analysis  # noqa: E402
from ase.io import read  # noqa: E402
from ase.neighborlist import NeighborList  # noqa: E402

from core.benchmarking import default_results_dir, run_script  # noqa: E402
from core.catalog import data_dir  # noqa: E402
from core.errors import UserError  # noqa: E402
from core.metrics import adf, rdf  # noqa: E402


def load_shards(folder: Path, n: int) -> list[Atoms]:
    """Up to n frames from dataset shards (shard-*.extxyz.gz) in `folder`, if it has any."""
    frames: list[Atoms] = []
    for path in sorted(glob.glob(str(Path(folder) / "shard-*.extxyz.gz"))):
        frames += read(path, index=":")
        if len(frames) >= n:
            break
    return frames[:n]


def random_dense(n: int, n_atoms: int = 256, density: float = 0.05, d_min: float = 2.1,
                 jitter: float = 0.03, seed: int = 0) -> list[Atoms]:
    """Random Si structures at `density` atoms/Å^3: overlaps pushed apart to d_min Å, then jittered.

    The jitter (Gaussian, `jitter` Å) keeps pair distances off d_min exactly, where an RDF bin
    edge could sit and rounding would decide the bin.
    """
    rng = np.random.default_rng(seed)
    length = (n_atoms / density) ** (1 / 3)
    nl = vesin.NeighborList(cutoff=d_min, full_list=False)
    out = []
    for _ in range(n):
        cell = np.eye(3) * length
        pos = rng.random((n_atoms, 3)) * length
        for _ in range(50):
            i, j, vec, d = nl.compute(pos, cell, True, "ijDd")
            if len(d) == 0:
                break
            push = (0.5 * (d_min - d) / np.maximum(d, 1e-6))[:, None] * vec  # move each atom half the overlap
            np.add.at(pos, i.astype(np.int64), -push)
            np.add.at(pos, j.astype(np.int64), push)
            pos %= length
        pos += rng.normal(scale=jitter, size=pos.shape)
        out.append(Atoms(f"Si{n_atoms}", positions=pos, cell=cell, pbc=True))
    return out


def ase_rdf(structures):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return np.array([Analysis(a).get_rdf(rmax=5.0, nbins=100)[0] for a in structures])


def baseline_adf(structures, r_cut=3.0, n_bins=180):
    """ADF per structure with ase.neighborlist; each centre's neighbour pairs vectorised."""
    out = []
    for atoms in structures:
        nl = NeighborList([r_cut / 2] * len(atoms), skin=0.0, self_interaction=False, bothways=True)
        nl.update(atoms)
        angles = []
        for i in range(len(atoms)):
            js, offsets = nl.get_neighbors(i)
            vec = atoms.positions[js] + offsets @ atoms.cell.array - atoms.positions[i]
            a, b = np.triu_indices(len(js), k=1)
            cos = np.einsum("ij,ij->i", vec[a], vec[b])
            cos /= np.linalg.norm(vec[a], axis=1) * np.linalg.norm(vec[b], axis=1)
            angles.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
        hist, _ = np.histogram(np.concatenate(angles), bins=n_bins, range=(0.0, 180.0))
        out.append(hist / (hist.sum() * 180.0 / n_bins))
    return np.array(out)


def timed(fn, *args, repeat=1):
    """Best wall time of `repeat` calls, in s, and the last result."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="number of structures")
    parser.add_argument("--data", default=str(data_dir("a-Si")),
                        help="folder of dataset shards to time on (frames cycled up to --n), or 'random' for "
                             "random dense Si")
    parser.add_argument("--baseline-subset", type=int, default=1000,
                        help="structures the ASE baselines run on (extrapolated to --n)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where metrics.json goes (default $AMSHORTCUT_RESULTS or ~/.cache/amshortcut/benchmarks; "
                             "benchmarks/results to record the result in the repository)")
    args = parser.parse_args(argv)
    results = (args.out_dir or default_results_dir()) / "metrics.json"

    if min(args.n, args.baseline_subset) < 1:
        raise UserError("--n and --baseline-subset must be at least 1")
    if args.data == "random":
        t0 = time.perf_counter()
        structures = random_dense(args.n)
        source = f"random Si, 0.05 atoms/Å^3, pushed apart to d_min 2.1 Å and jittered by 0.03 Å (built in {time.perf_counter() - t0:.0f} s)"
    else:
        folder = Path(args.data)
        structures = load_shards(folder, args.n)
        if not structures:
            raise UserError(f"--data {args.data}: no dataset shards (shard-*.extxyz.gz) there; give a dataset "
                            "folder or 'random'")
        data = folder.relative_to(Path.cwd()) if folder.is_absolute() and folder.is_relative_to(Path.cwd()) else folder
        source = f"MD frames from {data}"
        if len(structures) < args.n:  # cost per structure is what matters: cycle the frames
            source += f", {len(structures)} distinct frames cycled"
            structures = [structures[k % len(structures)] for k in range(args.n)]
    n_atoms = int(np.mean([len(a) for a in structures]))
    subset = structures[: min(args.baseline_subset, len(structures))]
    scale = len(structures) / len(subset)

    rows = []
    for name, ours_fn, base_fn, base_name in (
        ("RDF (5 Å, 100 bins)", rdf, ase_rdf, "ase Analysis.get_rdf"),
        ("ADF (3 Å, 180 bins)", adf, baseline_adf, "ase NeighborList + numpy per centre"),
    ):
        t_ours, (_, ours) = timed(ours_fn, structures, repeat=2)
        t_base_subset, base = timed(base_fn, subset)
        diff = float(np.abs(ours[: len(subset)] - base).max())
        t_base = t_base_subset * scale
        rows.append({"metric": name, "baseline": base_name, "ours_s": t_ours, "baseline_s": t_base,
                     "baseline_measured_on": len(subset), "speedup": t_base / t_ours, "max_abs_diff": diff})

    header = (f"{len(structures)} structures × {n_atoms} atoms ({source}); one thread "
              f"(OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}), {platform.processor() or platform.machine()}")
    lines = [header, "",
             "| metric | ours (s) | baseline | baseline (s) | speed-up | max abs diff |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        extrap = "" if r["baseline_measured_on"] == len(structures) else \
            f" (extrapolated from {r['baseline_measured_on']})"
        lines.append(f"| {r['metric']} | {r['ours_s']:.2f} | {r['baseline']} | {r['baseline_s']:.1f}{extrap} "
                     f"| {r['speedup']:.0f}× | {r['max_abs_diff']:.1e} |")
    print("\n".join(lines))

    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({
        "n_structures": len(structures), "n_atoms": n_atoms, "structures": source,
        "threads": int(os.environ["OMP_NUM_THREADS"]), "cpu_count": os.cpu_count(),
        "versions": {"ase": ase.__version__, "vesin": vesin.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "rows": rows, "table": lines,
    }, indent=1) + "\n")
    print(f"\nwrote {results}")


if __name__ == "__main__":
    run_script(main)
