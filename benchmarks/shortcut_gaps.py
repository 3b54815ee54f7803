"""Where an AMShortcut's few-step samples land against its many-step ones, from the same prior draws.

With probability-flow shortcuts, sampling is deterministic given the prior draw, so the n-step
and 2n-step samples of one draw can be compared atom by atom (ghosts included, minimum image):
the landing gap says how far each map is from the finer ones, i.e. how well each level of the
shortcut hierarchy reproduces the next. Close pairs (real atoms, both rules of
``core.metrics.checks``'s system) say what the gap does to the structure.

    python benchmarks/shortcut_gaps.py --checkpoint assets/checkpoints/a-Si/shortcut --n 8
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from core.benchmarking import parse_steps, run_script
from core.errors import UserError


def landing_gaps(checkpoint, cell, steps, n, seed=0, bf16=True, fast=True):
    """{n_s: final State} from one batch of ``n`` prior draws in ``cell`` (3x3 Å)."""
    from core.material import ghost_count_total
    from core.model import BFloat16Autocast

    fw, net = checkpoint.framework, checkpoint.network.eval()
    was_fast, net.fast = net.fast, fast
    model = BFloat16Autocast(net, "cpu") if bf16 else net
    count = ghost_count_total(checkpoint.rho_max, abs(float(np.linalg.det(cell))))
    cells = torch.tensor(cell, dtype=torch.float32).expand(n, 3, 3).contiguous()
    batch = torch.arange(n).repeat_interleave(count)
    y = checkpoint.normalise(torch.full((n, len(checkpoint.property_names)), float("nan")))
    generator = torch.Generator().manual_seed(seed)
    start = fw.prior(cells, batch, y, net.cfg.n_classes, generator)
    out = {}
    try:
        with torch.inference_mode():
            for n_s in steps:
                state = start
                for t, dt, stochastic in fw.plan(n_s):
                    state = fw.step(model, state, t, dt, stochastic)
                out[n_s] = state
    finally:
        net.fast = was_fast
    return out


def gap(a, b):
    """Per-atom minimum-image distance (Å) between two states of the same atoms."""
    d = a.pos - b.pos
    frac = torch.linalg.solve(a.cell[a.batch].transpose(1, 2), d.unsqueeze(-1)).squeeze(-1)
    return ((frac - frac.round()).unsqueeze(1) @ a.cell[a.batch]).squeeze(1).norm(dim=-1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="assets/checkpoints/a-Si/shortcut",
                        help="an AMShortcut (or ODE) checkpoint directory (default: the shipped a-Si "
                             "AMShortcut)")
    parser.add_argument("--steps", default="1,2,4,8,16", help="step counts, comma-separated (each compared with the next)")
    parser.add_argument("--n", type=int, default=8, help="prior draws")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--pair-distance", type=float, default=2.1, help="close-pair distance (Å) counted per cell")
    parser.add_argument("--out", default="", help="JSON file for the table")
    args = parser.parse_args(argv)
    steps = parse_steps(args.steps)
    if len(steps) < 2:
        raise UserError(f"--steps needs at least two step counts to compare, got {args.steps!r}")
    if args.n < 1 or args.threads < 1:
        raise UserError("--n and --threads must be at least 1")
    from ase.neighborlist import neighbor_list

    from core.checkpoint import load_checkpoint
    from core.metrics.checks import close_pairs
    from core.sampling import _to_atoms
    from core.training import load_structures

    torch.set_num_threads(args.threads)
    ck = load_checkpoint(args.checkpoint)
    noisy = [n_s for n_s in steps if any(stochastic for _, _, stochastic in ck.framework.plan(n_s))]
    if noisy:
        raise UserError(f"{args.checkpoint}: {ck.framework.name} sampling is stochastic at {noisy} steps, so the "
                        "maps of one prior draw cannot be compared (an AMShortcut or ODE checkpoint is needed)")
    data = ck.training.get("recipe", {}).get("data", {}).get("path") or "assets/data/a-Si"
    cell = np.array(load_structures(data, "val")[0].cell)
    t0 = time.perf_counter()
    states = landing_gaps(ck, cell, steps, args.n, args.seed)
    rows = []
    for k, n_s in enumerate(steps):
        atoms = _to_atoms(states[n_s], cell, ck, {})
        near = [neighbor_list("d", a, args.pair_distance).size // 2 for a in atoms]
        row = {"steps": n_s, "atoms": float(np.mean([len(a) for a in atoms])),
               f"pairs_below_{args.pair_distance}": float(np.mean(near)),
               "close_pairs_covalent": float(np.mean(close_pairs(atoms)))}
        if k + 1 < len(steps):
            g = gap(states[n_s], states[steps[k + 1]])
            row.update(next_steps=steps[k + 1], gap_mean=float(g.mean()), gap_p90=float(g.quantile(0.9)))
        g = gap(states[n_s], states[steps[-1]])
        row["gap_to_finest_mean"] = float(g.mean())
        rows.append(row)
    print(f"{args.checkpoint}: {args.n} prior draws in a {cell.diagonal().round(2).tolist()} Å cell, "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"| steps | landing gap to the next (mean / 90th pct, Å) | gap to {steps[-1]} steps (Å) "
          f"| pairs < {args.pair_distance} Å per cell | covalent close pairs per cell |")
    print("|---|---|---|---|---|")
    for r in rows:
        nxt = f"{r['gap_mean']:.3f} / {r['gap_p90']:.3f} (vs {r['next_steps']})" if "gap_mean" in r else "–"
        print(f"| {r['steps']} | {nxt} | {r['gap_to_finest_mean']:.3f} | {r[f'pairs_below_{args.pair_distance}']:.1f} "
              f"| {r['close_pairs_covalent']:.1f} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": "python benchmarks/shortcut_gaps.py " + " ".join(argv or []), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    run_script(main)
