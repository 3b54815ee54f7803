"""The CI acceptance protocol at several step counts, for deciding whether a run can ship.

`benchmarks/acceptance.py` fixes one step count for CI. This script runs the same protocol
(``n`` samples, seed 0, first validation cell, RDF RMSD against the system's ``reference.npz``)
for any checkpoints, training-run directories included, at every step count given, beside the
freshly initialised network of the first checkpoint, and reports the mean real-atom count per
species (the data cell's counts in the header). A run separates from "untrained" when its
row is clearly below the untrained one; that is the condition `acceptance.py` enforces.

    .venv/bin/python benchmarks/protocol.py assets/training/a-SiO2-shortcut-rbf --steps 1,5,25
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from core.errors import UserError  # noqa: E402


def species_counts(structures) -> dict[str, float]:
    """Mean number of real atoms per element symbol over ``structures``."""
    counts: dict[str, list[int]] = {}
    for atoms in structures:
        symbols = atoms.get_chemical_symbols()
        for s in set(symbols):
            counts.setdefault(s, []).append(symbols.count(s))
    return {s: float(np.sum(c)) / len(structures) for s, c in sorted(counts.items())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint or training-run directories")
    p.add_argument("--system", required=True, help="dataset system, e.g. a-SiO2")
    p.add_argument("--steps", default="1,5,25", help="comma-separated step counts (default 1,5,25)")
    p.add_argument("--n", type=int, default=8, help="samples per row (default 8, the CI protocol's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-untrained", action="store_true", help="skip the untrained reference row")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    from benchmarks.acceptance import protocol_data, protocol_samples, untrained
    from core.checkpoint import load_checkpoint
    from core.metrics import curve_rmsd, rdf

    torch.set_num_threads(args.threads)
    try:
        steps = [int(s) for s in args.steps.split(",") if s.strip()]
        data_cell, reference = protocol_data(args.system)
        cell = data_cell.cell.array
        models = [(str(path), load_checkpoint(path)) for path in args.checkpoints]
        if not args.no_untrained:
            models.append(("untrained", untrained(models[0][1])))
    except (UserError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"protocol: {args.n} samples, seed {args.seed}, first val cell of {args.system} "
          f"(data cell: {species_counts([data_cell])}); RDF RMSD (mean real atoms)")
    print("| model | step | " + " | ".join(f"{s} steps" for s in steps) + " |")
    print("|---|---|" + "---|" * len(steps))
    for name, ckpt in models:
        cells = []
        for s in steps:
            samples = protocol_samples(ckpt, {"n_samples": args.n, "steps": s, "seed": args.seed}, cell)
            counts = species_counts(samples)
            cells.append(f"{curve_rmsd(rdf(samples)[1], reference):.3f} "
                         f"({' + '.join(f'{v:.0f} {k}' for k, v in counts.items())})")
        print(f"| {name} | {ckpt.training.get('step', '')} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
