"""The CI acceptance protocol at several step counts, for deciding whether a run can ship.

`benchmarks/acceptance.py` fixes one step count for CI. This script runs the same protocol
(``core.acceptance``: ``n`` samples, seed 0, first validation cell, RDF RMSD against the system's
``reference.npz``)
for any checkpoints, training-run directories included, at every step count and sampling grid
(``--grid-power``) given, beside the freshly initialised network of the first checkpoint, and
reports the mean real-atom count per species and the bonding: the share of atoms with their
ideal coordination (``BONDS``) and the spread of the first bond's lengths, with the validation
split's values as the "data" row. The bond columns keep separating models where the a-SiO2 RDF
RMSD has saturated (docs/model.md, "Reading the a-SiO2 RDF RMSD"). ``--rdf-split 2.2,2.8``
adds where the RDF error sits: the share of the squared error in each distance band, g(r) at
the reference's first peak, and the RMSD left if every bin below the first bound matched
(close pairs versus a blurred first shell; docs/model.md, "Known limits"). A run separates from "untrained" when its RDF is
clearly below the untrained one; that is the condition `acceptance.py` enforces.

    .venv/bin/python benchmarks/protocol.py assets/checkpoints/a-SiO2/shortcut runs/my-run --system a-SiO2 --steps 1,5,25
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.acceptance import bonding, protocol_data, protocol_samples, species_counts, untrained
from core.benchmarking import parse_floats, parse_steps
from core.errors import UserError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint or training-run directories")
    p.add_argument("--system", required=True, help="dataset system, e.g. a-SiO2")
    p.add_argument("--steps", default="1,5,25", help="comma-separated step counts (default 1,5,25)")
    p.add_argument("--grid-power", default="1", help="comma-separated sampling-grid powers (default 1, uniform)")
    p.add_argument("--n", type=int, default=8, help="samples per row (default 8, the CI protocol's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-untrained", action="store_true", help="skip the untrained reference row")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rdf-split", default="",
                   help="comma-separated distances (Å), e.g. 2.2,2.8: add the RDF error's share per band")
    args = p.parse_args(argv)

    import torch

    from core.catalog import data_dir
    from core.checkpoint import load_checkpoint
    from core.datasets import load_dataset
    from core.metrics import averaged, curve_rmsd, curve_rmsd_split, rdf

    torch.set_num_threads(args.threads)
    try:
        steps = parse_steps(args.steps)
        powers = parse_floats(args.grid_power, "--grid-power")
        bounds = parse_floats(args.rdf_split, "--rdf-split")
        data_cell, reference = protocol_data(args.system)
        cell = data_cell.cell.array
        if bounds:  # the bins' centres and the column names; checks the bounds before any sampling
            r = rdf(data_cell)[0]
            split_names = list(curve_rmsd_split(reference, reference, r, bounds))
        models = [(str(path), load_checkpoint(path)) for path in args.checkpoints]
        if not args.no_untrained:
            models.append(("untrained", untrained(models[0][1])))
    except (UserError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data_bonds = bonding(load_dataset(data_dir(args.system), split="val"), args.system)
    split_header, data_split = [], []
    if bounds:  # band shares, g(r) at the reference's first peak, RMSD without the first band
        peak = int(averaged(reference).argmax())
        split_header = ([f"RDF error {name}" for name in split_names[:-1]]
                        + [f"g({r[peak]:.2f} Å)", f"RDF RMSD {split_names[-1]}"])
        data_split = [""] * (len(bounds) + 1) + [f"{averaged(reference)[peak]:.2f}", ""]
    print(f"protocol: {args.n} samples, seed {args.seed}, first val cell of {args.system} "
          f"(data cell: {species_counts([data_cell])}); RDF RMSD against the training reference")
    print("| model | step | grid power | steps | RDF RMSD | real atoms | "
          + " | ".join(list(data_bonds) + split_header) + " |")
    print("|---|---|---|---|---|---|" + "---|" * (len(data_bonds) + len(split_header)))
    print("| data (val split) | | | | | | " + " | ".join([f"{v:.3g}" for v in data_bonds.values()] + data_split)
          + " |")
    for name, ckpt in models:
        for power in powers:
            for s in steps:
                samples = protocol_samples(ckpt, {"n_samples": args.n, "steps": s, "seed": args.seed,
                                                  "grid_power": power}, cell)
                counts = " + ".join(f"{v:.0f} {k}" for k, v in species_counts(samples).items())
                columns = [f"{v:.3g}" for v in bonding(samples, args.system).values()]
                g = rdf(samples)[1]
                if bounds:
                    split = list(curve_rmsd_split(g, reference, r, bounds).values())
                    columns += [f"{v:.0%}" for v in split[:-1]] + [f"{averaged(g)[peak]:.2f}", f"{split[-1]:.3f}"]
                print(f"| {name} | {ckpt.training.get('step', '')} | {power:g} | {s} | "
                      f"{curve_rmsd(g, reference):.3f} | {counts} | {' | '.join(columns)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
