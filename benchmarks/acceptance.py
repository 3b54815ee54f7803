"""Write a shipped checkpoint's ``acceptance.json``: the RDF RMSD its samples must stay below in CI.

The CI protocol (``tests/test_shipped_checkpoints.py`` calls ``protocol_rdf_rmsd`` below):
``n_samples`` structures at ``steps`` steps, seed ``seed``, in the first validation cell of
the system's dataset, scored against its ``reference.npz``. The limit is ``--factor`` times
the RDF RMSD that ``benchmarks/structure.py`` measured for this checkpoint at that step
count (``--benchmark``); it is written only if it separates the trained network (below) from
the same network freshly initialised (above), so the test catches an untrained or broken model.

    .venv/bin/python benchmarks/acceptance.py assets/checkpoints/a-Si/sde --steps 10 --benchmark 0.27
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from core.errors import UserError  # noqa: E402


def protocol_data(system: str):
    """(first validation structure, whose cell the protocol samples in; reference RDF) of ``system``."""
    from core.catalog import data_dir
    from core.datasets import load_dataset

    with np.load(data_dir(system) / "reference.npz") as ref:
        reference = ref["rdf"]
    return load_dataset(data_dir(system), split="val")[0], reference


def protocol_samples(checkpoint, acceptance: dict, cell):
    """The protocol's structures: ``acceptance``'s n_samples, steps, seed and grid_power (default 1,
    uniform), on the CPU, in ``cell``."""
    from core.sampling import generate

    return generate(checkpoint, acceptance["n_samples"], acceptance["steps"], cell,
                    seed=acceptance["seed"], device="cpu", grid_power=acceptance.get("grid_power", 1.0))


def protocol_rdf_rmsd(checkpoint, acceptance: dict, system: str) -> float:
    """RDF RMSD of the acceptance protocol's samples against the system's reference curves."""
    from core.metrics import curve_rmsd, rdf

    structure, reference = protocol_data(system)
    return curve_rmsd(rdf(protocol_samples(checkpoint, acceptance, structure.cell.array))[1], reference)


def untrained(checkpoint, seed: int = 0):
    """The same checkpoint with a freshly initialised network (torch seed ``seed``)."""
    import torch

    from core.model import Denoiser

    torch.manual_seed(seed)
    return dataclasses.replace(checkpoint, network=Denoiser(checkpoint.network.cfg).eval())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="checkpoint directory (assets/checkpoints/<system>/<framework>)")
    p.add_argument("--system", default=None, help="dataset system (default: the checkpoint's parent directory name)")
    p.add_argument("--steps", type=int, default=1, help="sampling steps of the protocol (default 1)")
    p.add_argument("--n-samples", type=int, default=8, help="structures of the protocol (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--benchmark", type=float, required=True,
                   help="RDF RMSD that benchmarks/structure.py measured for this checkpoint at --steps")
    p.add_argument("--factor", type=float, default=1.5, help="limit = factor x benchmark (default 1.5)")
    p.add_argument("--note", default="", help="where the benchmark figure comes from (run, --n, training step)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    from core.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    try:
        system = args.system or args.checkpoint.resolve().parent.name
        ckpt = load_checkpoint(args.checkpoint)
        acceptance = {"steps": args.steps, "n_samples": args.n_samples, "seed": args.seed}
        limit = round(args.factor * args.benchmark, 3)
        trained = protocol_rdf_rmsd(ckpt, acceptance, system)
        fresh = protocol_rdf_rmsd(untrained(ckpt), acceptance, system)
        print(f"{args.checkpoint}: {args.steps}-step RDF RMSD trained {trained:.3f}, untrained {fresh:.3f}, "
              f"limit {limit}")
        if not trained < limit < fresh:
            raise UserError(f"the limit {limit} does not separate the trained network ({trained:.3f}) from an "
                            f"untrained one ({fresh:.3f}); choose another --steps or --factor")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    step = ckpt.training.get("step")
    acceptance.update({
        "max_rdf_rmsd": limit,
        "basis": (f"{args.factor:g} x the {args.steps}-step RDF RMSD {args.benchmark:.3f} of benchmarks/structure.py"
                  f"{' (' + args.note + ')' if args.note else ''}; this protocol ({args.n_samples} samples, seed "
                  f"{args.seed}, first val cell) measured {trained:.3f} trained (training step {step}), "
                  f"{fresh:.3f} for the untrained network"),
    })
    (args.checkpoint / "acceptance.json").write_text(json.dumps(acceptance, indent=1) + "\n")
    print(f"wrote {args.checkpoint / 'acceptance.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
