"""Training and sampling throughput of the shipped AMShortcut recipes: plain vs fast vs compiled network path.

Training: structures per second of one full step (loss + backward + gradient clipping +
AdamW step + EMA update) of the shipped a-Si and a-SiO2 AMShortcut recipes
(``assets/checkpoints/<system>/shortcut/train_config.json``: width, cutoff, bf16 autocast,
sc_fraction, batch size) on their real data, started from the shipped weights.
Sampling: structures per second of ``core.sampling.generate`` for batches of 32 at 1 and 5
steps. Each is measured at 1 and 2 torch threads. Core-seconds are the process's CPU time
(``time.process_time``, all threads), so a machine shared with other jobs slows the wall
clock but hardly the count; wall-clock seconds are recorded too.

The plain path, the fast path (``Denoiser.fast``) and the fast path with its per-layer kernels
compiled by torch.compile (``Denoiser.compiled``; ``runtime.compile`` of a recipe,
``generate(compile=True)``) are measured in ONE run. In training the plain path is the previous
code path, the reference forward under the shipped runs' bfloat16 autocast; the fast paths run
in the precision a recipe's ``runtime.bf16 = "auto"`` gives this machine (bfloat16 only where the
hardware computes it: an AVX2-only CPU emulates it at ~5x the cost of float32), and the
fast_bf16 column is the fast path in bfloat16, which separates the two gains. Paths are run
step by step in turn (each training step is run by every path with the same random draws), so
that the machine's load drifts hit all alike; the compiling happens in uncounted warm-up steps
and calls before. The table also gives the plain path's seconds per training step, for
checking the baseline against ``amshortcut train`` logs.

The plain path's activations are large tensors. With glibc's default settings each is fresh
memory from the kernel, faulted in and zeroed page by page, and how often that happens depends on
the process's history: the same plain sampling call measured 7-16 core-s, up to half of it in
the kernel. So that the baseline is its own best case rather than a draw from that spread, the
benchmark first sets glibc's heap to keep and reuse freed memory (``heap_reuse``: mallopt
M_MMAP_THRESHOLD and M_TRIM_THRESHOLD; ``--allocator default`` leaves them). Each row still
gives every path's share of CPU time spent in the kernel (``*_system_share``), which shows
whether paging was left in a measurement.

Usage: python benchmarks/throughput.py [--systems a-Si,a-SiO2] [--threads 1,2] [--train-steps 12]
       [--sample-steps 1,5] [--samples 32] [--allocator reuse|default] [--out DIR] [--quick]
Writes throughput.csv and throughput.json to --out (default: a directory under the user cache).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from core.benchmarking import (default_results_dir, machine_info, parse_counts, parse_systems, run_script, set_threads,
                               write_csv)
from core.errors import UserError
from core.model.denoiser import native_bf16

ROOT = Path(__file__).resolve().parents[1]

TRAIN_PATHS = {"plain": {"fast": False, "compiled": False, "bf16": True},
               "fast": {"fast": True, "compiled": False, "bf16": "auto"},
               "compiled": {"fast": True, "compiled": True, "bf16": "auto"},
               "fast_bf16": {"fast": True, "compiled": False, "bf16": True}}
"""Network path and precision of each training path. plain is the previous code path: the
reference forward under bfloat16 autocast, as the shipped models were trained; fast and
compiled take the precision ``runtime.bf16 = "auto"`` gives this machine (bfloat16 only where
the hardware computes it, ``core.model.native_bf16``); fast_bf16 separates the two gains."""
WARM_STEPS = 3
"""Uncounted training steps per path first: the compiled path compiles its kernels with and
without autograd (the bootstrap targets) in them."""
SAMPLE_PATHS = {"plain": {"fast": False}, "fast": {"fast": True}, "compiled": {"fast": True, "compile": True},
                "fast_bf16": {"fast": True, "bf16": True}}
"""generate() options of each sampling path: the plain one runs the network in float32."""


def shipped_recipe(system: str, max_structures: int):
    """The shipped ``system`` AMShortcut's recipe, forked from its weights, on the first
    ``max_structures`` training structures, without validation or progress bars."""
    from core.recipe import shipped_fork

    recipe = shipped_fork(system, "shortcut", ROOT / "assets" / "checkpoints" / system / "shortcut")
    return replace(recipe, data=replace(recipe.data, path=str(ROOT / recipe.data.path), max_structures=max_structures),
                   validation=replace(recipe.validation, every=0),
                   runtime=replace(recipe.runtime, progress=False, threads=0))


def train_step(trainer, state):
    """One optimiser step exactly as ``Trainer.run`` takes it (without logging and saving)."""
    from core.training import _update_ema

    loss, _ = trainer.loss(state)
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.recipe.optimisation.grad_clip)
    trainer.optimizer.step()
    _update_ema(trainer.ema, trainer.model, trainer.step, trainer.recipe.optimisation.ema_decay)
    return loss.item()


def set_path(trainer, path):
    """Switch ``trainer`` to training path ``path`` (``TRAIN_PATHS``)."""
    how = TRAIN_PATHS[path]
    for model in (trainer.model, trainer.ema):
        model.fast, model.compiled = how["fast"], how["compiled"]
    trainer.bf16 = replace(trainer.recipe.runtime, bf16=how["bf16"]).use_bf16(trainer.device)


def train_precisions(trainer) -> dict:
    """{path: "bfloat16" | "float32"} of each training path on this machine."""
    out = {}
    for path in TRAIN_PATHS:
        set_path(trainer, path)
        out[path] = "bfloat16" if trainer.bf16 else "float32"
    return out


class Clock:
    """Wall-clock, CPU (all threads) and kernel (system) seconds of a block. The kernel's share
    is mostly page faults: fresh memory for large tensors is zeroed page by page on first touch."""

    def __enter__(self):
        self.wall, self.cpu, self.sys = time.perf_counter(), time.process_time(), os.times().system
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        self.sys = os.times().system - self.sys


def measure_training(trainer, batches, n_steps, warm_steps=WARM_STEPS):
    """{path: [Clock per step]}; step k of every path uses batch k and the same random draws."""
    paths = list(TRAIN_PATHS)
    times = {p: [] for p in paths}
    for k in range(n_steps + warm_steps):  # the first warm_steps warm up every path
        state = batches[k % len(batches)]
        for path in (paths if k % 2 == 0 else paths[::-1]):
            set_path(trainer, path)
            torch.manual_seed(1000 + k)
            with Clock() as clock:
                train_step(trainer, state)
            if k >= warm_steps:
                times[path].append(clock)
    return times


def heap_reuse() -> bool:
    """Let glibc serve large allocations from a heap it never trims, so freed activations are
    reused instead of returned to the kernel and faulted in again (False where it is not glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
        return bool(libc.mallopt(m_mmap_threshold, 2**31 - 1) and libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False


def measure_sampling(checkpoint, cell, n_samples, steps, repeats):
    """{path: [Clock per generate call]} for ``n_samples`` structures at ``steps`` steps."""
    from core.sampling import generate

    paths = list(SAMPLE_PATHS)
    times = {p: [] for p in paths}
    for path in paths:  # uncounted: compiles, and grows the heap to the call's size once (heap_reuse);
        n = 2 if path == "fast_bf16" else n_samples  # emulated bfloat16 is slow and compared with nothing
        generate(checkpoint, n, steps, cell, seed=0, device="cpu", **SAMPLE_PATHS[path])
    for k in range(repeats):
        for path in (paths if k % 2 == 0 else paths[::-1]):
            with Clock() as clock:
                generate(checkpoint, n_samples, steps, cell, seed=k + 1, device="cpu", **SAMPLE_PATHS[path])
            times[path].append(clock)
    return times


def rows_for(system, threads, task, per_call, times):
    """Table row: structures per core-second (CPU time) and per wall second of each path,
    median seconds per call, the share of its CPU time spent in the kernel, and the speedups in
    core-seconds."""
    med = {p: statistics.median(c.cpu for c in v) for p, v in times.items()}
    wall = {p: statistics.median(c.wall for c in v) for p, v in times.items()}
    row = {"system": system, "task": task, "threads": threads, "repeats": len(times["plain"])}
    for p in med:  # plain, fast, compiled, fast_bf16 (TRAIN_PATHS, SAMPLE_PATHS)
        row[f"{p}_s_per_call"] = round(wall[p], 4)
        row[f"{p}_cpu_s_per_call"] = round(med[p], 4)
        row[f"{p}_structures_per_s"] = round(per_call / wall[p], 3)
        row[f"{p}_structures_per_core_s"] = round(per_call / med[p], 3)
        row[f"{p}_system_share"] = round(sum(c.sys for c in times[p]) / sum(c.cpu for c in times[p]), 3)
    row["speedup"] = round(med["plain"] / med["fast"], 2)
    row["speedup_compiled"] = round(med["plain"] / med["compiled"], 2)
    row["speedup_wall"] = round(wall["plain"] / wall["fast"], 2)
    row["speedup_bf16"] = round(med["plain"] / med["fast_bf16"], 2)
    return row


def run(systems, threads_list, train_steps, sample_steps, n_samples, sample_repeats, max_structures, log=print,
        on_row=None, warm_steps=WARM_STEPS):
    """All rows (``rows_for``); ``on_row(rows)`` after each, e.g. to save partial results."""
    from core.checkpoint import load_checkpoint
    from core.training import Trainer

    rows = []
    for system in systems:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(shipped_recipe(system, max_structures), tmp)
            batches = [trainer._make_batch(k) for k in range(min(8, train_steps + 1))]
            checkpoint = load_checkpoint(ROOT / "assets" / "checkpoints" / system / "shortcut")
            cell = checkpoint.training["cell"]
            for threads in threads_list:
                set_threads(threads)
                times = measure_training(trainer, batches, train_steps, warm_steps)
                rows.append(rows_for(system, threads, "train", trainer.recipe.optimisation.batch_size, times))
                precisions = train_precisions(trainer)
                rows[-1].update(plain_precision=precisions["plain"], fast_precision=precisions["fast"])
                log(_line(rows[-1]))
                if on_row:
                    on_row(rows)
                for steps in sample_steps:
                    times = measure_sampling(checkpoint, cell, n_samples, steps, sample_repeats)
                    rows.append(rows_for(system, threads, f"sample {steps} step{'s' * (steps > 1)}", n_samples, times))
                    rows[-1].update(plain_precision="float32", fast_precision="float32")
                    log(_line(rows[-1]))
                    if on_row:
                        on_row(rows)
    return rows


def _line(row):
    bf16 = f"  fast bf16 {row['fast_bf16_structures_per_core_s']:8.3f} x{row['speedup_bf16']:.2f}"
    return (f"{row['system']:7s} {row['task']:15s} {row['threads']} thr  plain ({row['plain_precision']}) "
            f"{row['plain_structures_per_core_s']:8.3f}  fast ({row['fast_precision']}) "
            f"{row['fast_structures_per_core_s']:8.3f} structures/core-s  x{row['speedup']:.2f}  "
            f"compiled {row['compiled_structures_per_core_s']:8.3f} x{row['speedup_compiled']:.2f}{bf16}  "
            f"(plain {row['plain_cpu_s_per_call']:.3f} core-s, {row['plain_s_per_call']:.3f} s wall per "
            f"{'step' if row['task'] == 'train' else 'call'}; wall speedup x{row['speedup_wall']:.2f}; kernel share of "
            f"CPU time: plain {row['plain_system_share']:.2f}, fast {row['fast_system_share']:.2f})")


def markdown(rows):
    """The table: each path's precision is in its row (training: plain under the shipped runs'
    bfloat16 autocast, fast and compiled in the precision "auto" picks here; sampling: float32),
    and a column gives the fast path with the network in bfloat16."""
    lines = ["| system | task | threads | precision plain / fast | plain structures/core-s | fast | speedup | "
             "compiled | speedup | fast, bf16 network | speedup | plain core-s per step/call | plain wall s | "
             "wall speedup | kernel share plain / fast |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bf16 = f"{r['fast_bf16_structures_per_core_s']:.3f} | {r['speedup_bf16']:.2f}x"
        lines.append(f"| {r['system']} | {r['task']} | {r['threads']} | {r['plain_precision']} / "
                     f"{r['fast_precision']} | {r['plain_structures_per_core_s']:.3f} | "
                     f"{r['fast_structures_per_core_s']:.3f} | {r['speedup']:.2f}x | "
                     f"{r['compiled_structures_per_core_s']:.3f} | {r['speedup_compiled']:.2f}x | {bf16} | "
                     f"{r['plain_cpu_s_per_call']:.3f} | "
                     f"{r['plain_s_per_call']:.3f} | {r['speedup_wall']:.2f}x | "
                     f"{r['plain_system_share']:.2f} / {r['fast_system_share']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", default="a-Si,a-SiO2", help="systems whose shipped AMShortcut recipe is timed, "
                        "comma-separated")
    parser.add_argument("--threads", default="1,2", help="torch CPU thread counts, comma-separated")
    parser.add_argument("--train-steps", type=int, default=12, help="measured training steps per path")
    parser.add_argument("--sample-steps", default="1,5", help="sampling step counts timed, comma-separated")
    parser.add_argument("--samples", type=int, default=32, help="structures per sampling batch")
    parser.add_argument("--sample-repeats", type=int, default=2, help="timed sampling calls per path (the median "
                        "is reported; paths alternate order between calls)")
    parser.add_argument("--max-structures", type=int, default=64, help="training structures loaded per system")
    parser.add_argument("--out", default=None, help="results directory (default: core.benchmarking's, outside the "
                                                   "tree; --out benchmarks/results records a run)")
    parser.add_argument("--allocator", choices=["reuse", "default"], default="reuse",
                        help="reuse: glibc keeps freed memory for reuse, so the plain path's time does not depend "
                             "on page faults (heap_reuse); default: the allocator as a process starts")
    parser.add_argument("--quick", action="store_true", help="smoke test: a-Si, 1 thread, 1 warm-up and 2 measured steps, "
                        "2 samples")
    args = parser.parse_args(argv)
    command = " ".join([".venv/bin/python benchmarks/throughput.py", *(sys.argv[1:] if argv is None else argv)])
    systems = parse_systems(args.systems)
    threads = parse_counts(args.threads, "--threads")
    sample_steps = parse_counts(args.sample_steps, "--sample-steps")
    if min(args.train_steps, args.samples, args.sample_repeats, args.max_structures) < 1:
        raise UserError("--train-steps, --samples, --sample-repeats and --max-structures must be at least 1")
    train_steps, samples, repeats, max_structures = args.train_steps, args.samples, args.sample_repeats, args.max_structures
    warm_steps = WARM_STEPS
    if args.quick:
        systems, threads, sample_steps = ["a-Si"], [1], [1]
        train_steps, samples, repeats, max_structures, warm_steps = 2, 2, 1, 8, 1
    allocator = "glibc heap reuse" if args.allocator == "reuse" and heap_reuse() else "default"
    t0 = time.perf_counter()
    out = Path(args.out) if args.out else default_results_dir()

    def save(rows, complete=False):
        out.mkdir(parents=True, exist_ok=True)
        write_csv(out / "throughput.csv", rows)
        meta = {**machine_info("cpu"), "wall_s": round(time.perf_counter() - t0, 1), "quick": args.quick,
                "complete": complete, "systems": systems, "threads": threads, "train_steps": train_steps,
                "warm_steps": warm_steps, "samples": samples, "sample_repeats": repeats,
                "time_measure": "process CPU seconds (core-s)", "allocator": allocator,
                "bfloat16 native": native_bf16("cpu")}
        (out / "throughput.json").write_text(json.dumps({"command": command, "meta": meta, "rows": rows}, indent=2)
                                             + "\n")

    rows = run(systems, threads, train_steps, sample_steps, samples, repeats, max_structures, on_row=save,
               warm_steps=warm_steps)
    save(rows, complete=True)
    print(markdown(rows))
    print(f"wrote {out / 'throughput.csv'} and {out / 'throughput.json'}")
    return rows


if __name__ == "__main__":
    run_script(main)
