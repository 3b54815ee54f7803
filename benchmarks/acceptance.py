"""Write a shipped checkpoint's ``acceptance.json``: the RDF RMSD its samples must stay below in CI.

The protocol and the rule for the limit are ``core.acceptance``'s: ``--n-samples`` structures at
``--steps`` steps, seed ``--seed``, in the first validation cell of the system's dataset, scored
against its ``reference.npz``; the limit is ``--factor`` times the RDF RMSD that
``benchmarks/structure.py`` measured for this checkpoint at that step count (``--benchmark``),
written only if it separates the trained network (below) from the same network freshly
initialised (above).

    .venv/bin/python benchmarks/acceptance.py assets/checkpoints/a-Si/sde --steps 10 --benchmark 0.27
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.acceptance import DEFAULT_FACTOR, acceptance_record, write_acceptance
from core.errors import UserError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="checkpoint directory (assets/checkpoints/<system>/<framework>)")
    p.add_argument("--system", default=None, help="dataset system (default: the checkpoint's parent directory name)")
    p.add_argument("--steps", type=int, default=1, help="sampling steps of the protocol (default 1)")
    p.add_argument("--n-samples", type=int, default=8, help="structures of the protocol (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--benchmark", type=float, required=True,
                   help="RDF RMSD that benchmarks/structure.py measured for this checkpoint at --steps")
    p.add_argument("--factor", type=float, default=DEFAULT_FACTOR,
                   help=f"limit = factor x benchmark (default {DEFAULT_FACTOR:g})")
    p.add_argument("--note", default="", help="where the benchmark figure comes from (run, --n, training step)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    from core.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    try:
        system = args.system or args.checkpoint.resolve().parent.name
        record = acceptance_record(load_checkpoint(args.checkpoint), system, steps=args.steps,
                                   benchmark=args.benchmark, n_samples=args.n_samples, seed=args.seed,
                                   factor=args.factor, note=args.note)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.checkpoint}: {args.steps}-step RDF RMSD trained {record['trained']:.3f}, "
          f"untrained {record['untrained']:.3f}, limit {record['max_rdf_rmsd']}")
    print(f"wrote {write_acceptance(args.checkpoint, record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
