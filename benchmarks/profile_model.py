"""Profile one training step and one sampling step of the denoiser on CPU (256-atom a-Si cell).

Writes a Markdown table (median wall times) and the top operators of a torch.profiler run.
Usage: python benchmarks/profile_model.py [--threads 1] [--repeats 5] [--out FILE.md]  (its tables are in BENCHMARKS.md)
"""

import argparse
import statistics
import time
from contextlib import nullcontext

import numpy as np
import torch

from core.benchmarking import run_script
from core.errors import UserError
from core.frameworks import State, default_config, make_framework
from core.graph import periodic_radius_graph
from core.model import Denoiser, DenoiserConfig

CONFIGS = {
    "paper 4x128, k8, 6.5 Å": dict(layers=4, width=128, vector_channels=8, cutoff=6.5),
    "paper, separate MLP_coord": dict(layers=4, width=128, vector_channels=8, cutoff=6.5, coord_from_message=False),
    "small 4x64, k8, 5.0 Å": dict(layers=4, width=64, vector_channels=8, cutoff=5.0),
    "tiny 3x64, k4, 4.5 Å": dict(layers=3, width=64, vector_channels=4, cutoff=4.5),
}


def asi_batch(n_structures, n_real=256, density=0.052, rho_max=0.06, seed=0):
    """Random-packed 256-atom Si cells at the a-Si density, padded with ghosts to rho_max."""
    rng = np.random.default_rng(seed)
    length = (n_real / density) ** (1 / 3)
    n_total = int(rho_max * length**3)
    pos = torch.tensor(rng.random((n_structures * n_total, 3)) * length, dtype=torch.float32)
    classes = np.concatenate([np.r_[np.ones(n_real), np.zeros(n_total - n_real)] for _ in range(n_structures)])
    elem = torch.nn.functional.one_hot(torch.tensor(classes, dtype=torch.long), 2).float()
    cell = torch.eye(3).expand(n_structures, 3, 3).contiguous() * length
    batch = torch.arange(n_structures).repeat_interleave(n_total)
    return State(pos, elem, cell, batch, torch.zeros(n_structures, 0))


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile_rows(name, sizes, repeats, bf16):
    torch.manual_seed(0)
    framework = make_framework(default_config("shortcut"))
    model = Denoiser(DenoiserConfig(n_classes=2, use_dt=True, **sizes))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    rows = {}
    for b in (1, 4):
        data = asi_batch(b)
        graph_t = timed(lambda: periodic_radius_graph(data.pos, data.cell, data.batch, sizes["cutoff"]), repeats)
        edges = periodic_radius_graph(data.pos, data.cell, data.batch, sizes["cutoff"])[0].shape[1] // b

        def train_step(sc):
            framework.config.sc_fraction = 1.0 if sc else 0.0
            with amp:
                loss, _ = framework.loss(model, data)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def sample_step():
            with torch.inference_mode(), amp:
                framework.step(model, data, 0.5, 0.1, stochastic=False)

        rows[b] = dict(atoms=data.pos.shape[0] // b, edges=edges, graph=graph_t / b,
                       train=timed(lambda: train_step(False), repeats) / b,
                       train_sc=timed(lambda: train_step(True), repeats) / b,
                       sample=timed(sample_step, repeats) / b)
    return rows


def top_ops(sizes, n=12):
    """Self CPU time per operator for one L_SDE training step (batch 4)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    framework = make_framework(default_config("sde"))
    model = Denoiser(DenoiserConfig(n_classes=2, **sizes))
    data = asi_batch(4)
    framework.loss(model, data)[0].backward()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        graph = periodic_radius_graph(data.pos, data.cell, data.batch, sizes["cutoff"])
        t_graph = time.perf_counter() - t0
        loss, _ = framework.loss(model, data)
        loss.backward()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    del graph
    return t_graph, [(e.key, e.self_cpu_time_total / 1e3, 100 * e.self_cpu_time_total / total) for e in events[:n]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per cell of the table (median reported)")
    parser.add_argument("--out", default="", help="also write the Markdown tables to this file")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        raise UserError("--threads and --repeats must be at least 1")
    torch.set_num_threads(args.threads)
    lines = [f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}; per structure "
             "(256 Si + ghosts to 0.06 atoms/Å^3 = 295 atoms, 17.0 Å cubic cell, random packing at 0.052 atoms/Å^3)", "",
             "| model | precision | batch | edges/structure | graph s | train step s (L_SDE) | train step s (L_SDE + L_SC) | sampling step s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, sizes in CONFIGS.items():
        for bf16 in (False, True):
            rows = profile_rows(name, sizes, args.repeats, bf16)
            for b, r in rows.items():
                lines.append(f"| {name} | {'bf16 autocast' if bf16 else 'fp32'} | {b} | {r['edges']} | {r['graph']:.3f} | "
                             f"{r['train']:.3f} | {r['train_sc']:.3f} | {r['sample']:.3f} |")
            print("\n".join(lines[-2:]), flush=True)
    t_graph, ops = top_ops(CONFIGS["paper 4x128, k8, 6.5 Å"])
    lines += ["", f"Top operators, one fp32 L_SDE training step of the paper's size, batch 4 (self CPU time; "
              f"graph build {t_graph:.3f} s of it):", "", "| operator | ms | share |", "|---|---|---|"]
    lines += [f"| `{k}` | {ms:.0f} | {pct:.1f}% |" for k, ms, pct in ops]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    run_script(main)
