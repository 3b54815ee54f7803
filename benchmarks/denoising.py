"""Where a checkpoint loses structure: denoising precision per noise level, and the metric's scale.

Three measurements on ``n`` structures of a dataset split (validation by default; ghost-padded to the model's
rho_max), each printed as a table:

1. ``metric``: RDF RMSD (against ``reference.npz``) of the data itself and of the data with
   Gaussian jitter of sigma Å per coordinate, no model: what an RDF RMSD figure means in Å.
2. ``eps``: for each t, the noise-prediction MSE of the real atoms (summed over x, y, z; 3 =
   predicting nothing) and the rms position error left after one Tweedie step, beside the
   noise itself (Material SDE and AMShortcut; the shortcut at d = 0). For a conditioned model
   also the eps-MSE and the element (v) MSE with the properties left unset and with each
   structure given another's (rolled by one): where "rolled" equals "given", the network does
   not use the values it is conditioned on. And the share of real atoms whose element is
   right (argmax) in the noisy embedding E_t and in the network's estimate of E_0: where the
   second is no better than the first, the positions tell the network nothing about the elements.
3. ``from-t``: noise the data to t0 and sample back to 0 with the checkpoint's own sampler on
   the uniform ``--steps`` grid (only the steps below t0): RDF RMSD, real atoms per species and,
   for a system with first-shell rules (``core.acceptance.bonding``), the share of atoms with
   their ideal coordination, beside the data's. The t0 at which these jump is the noise level
   the network cannot undo.

    .venv/bin/python benchmarks/denoising.py assets/checkpoints/a-Si/sde --system a-Si
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from core.benchmarking import parse_floats
from core.errors import UserError

JITTER = (0.01, 0.02, 0.05, 0.1, 0.2)
EPS_TIMES = (0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5)
FROM_TIMES = (0.1, 0.2, 0.3, 0.5, 1.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="checkpoint or training-run directory (sde or shortcut)")
    p.add_argument("--system", required=True, help="dataset system, e.g. a-SiO2")
    p.add_argument("--n", type=int, default=8, help="structures of the split (default 8)")
    p.add_argument("--split", default="val", choices=("train", "val"),
                   help="which split to measure (default val; train beside val shows over-fitting)")
    p.add_argument("--recipe", default=None,
                   help="only the structures this MD recipe made (e.g. melt-quench: the data a model was trained on)")
    p.add_argument("--steps", type=int, default=50, help="sampling grid of the from-t table (default 50)")
    p.add_argument("--eps-times", default=",".join(map(str, EPS_TIMES)))
    p.add_argument("--from-times", default=",".join(map(str, FROM_TIMES)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    from core.acceptance import bonding, species_counts
    from core.catalog import data_dir
    from core.checkpoint import load_checkpoint
    from core.datasets import load_dataset
    from core.frameworks.periodic import wrap
    from core.metrics import curve_rmsd, rdf
    from core.material import GHOST, MaterialSample, collate
    from core.training import to_state

    torch.set_num_threads(args.threads)
    try:
        eps_times = parse_floats(args.eps_times, "--eps-times")
        from_times = parse_floats(args.from_times, "--from-times")
        ckpt = load_checkpoint(args.checkpoint)
        if ckpt.framework.name not in ("sde", "shortcut"):
            raise UserError(f"{args.checkpoint}: a noise-prediction model (sde or shortcut) is needed, "
                            f"not {ckpt.framework.name}")
        val = load_dataset(data_dir(args.system), split=args.split, recipe=args.recipe)[: args.n]
        with np.load(data_dir(args.system) / "reference.npz") as ref:
            reference = ref["rdf"]
    except (UserError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    score = lambda structures: curve_rmsd(rdf(structures)[1], reference)  # noqa: E731

    rng = np.random.default_rng(args.seed)
    print(f"## metric: RDF RMSD of {len(val)} {args.system} {args.split} structures with jitter (no model)")
    print("| jitter sigma (Å/coordinate) | 0 | " + " | ".join(f"{s:g}" for s in JITTER) + " |")
    print("|---|---|" + "---|" * len(JITTER))
    row = [f"{score(val):.3f}"]
    for s in JITTER:
        jittered = []
        for atoms in val:
            a = atoms.copy()
            a.positions += s * rng.standard_normal(a.positions.shape)
            a.wrap()
            jittered.append(a)
        row.append(f"{score(jittered):.3f}")
    print("| RDF RMSD | " + " | ".join(row) + " |\n", flush=True)

    fw, net = ckpt.framework, ckpt.network.eval()
    species = [int(z) for z in ckpt.species]  # the model's element classes, not those of the subset
    samples = [MaterialSample.from_atoms(a, ckpt.property_names).pad_ghosts(ckpt.rho_max, rng) for a in val]
    data = to_state(collate(samples, species, ckpt.property_names), len(species) + 1, ckpt.normalise, "cpu")
    real = data.elem.argmax(-1) > 0
    dt0 = torch.zeros(data.n_structures) if fw.uses_dt else None

    conditioned = data.y.shape[1] > 0
    conditions = {"given": data.y}
    if conditioned:
        conditions.update({"unset": torch.full_like(data.y, float("nan")), "rolled": data.y.roll(1, 0)})
    print(f"## eps: noise prediction of {args.checkpoint} on real atoms (3 = predicts nothing)"
          + (f"; properties {', '.join(ckpt.property_names)} given / unset / rolled" if conditioned else ""))
    extra = " eps-MSE unset / rolled | element MSE given / unset / rolled |" if conditioned else ""
    print("| t | sigma (Å) | eps-MSE | rms error after Tweedie (Å) | rms noise (Å) "
          "| elements right: E_t / network's E_0 |" + extra)
    print("|---|---|---|---|---|---|" + "---|---|" * conditioned)
    true_elem = data.elem.argmax(-1)
    for t in eps_times:
        torch.manual_seed(args.seed)
        tt = torch.full((data.n_structures,), t)
        noisy, eps, v = fw.noisy(data, tt)
        mses, elem_mses, given_e = [], [], None
        for y in conditions.values():
            with torch.inference_mode():
                state = noisy.replace(y=y)
                out_x, out_e = fw.predict(net, state, tt, dt0) if fw.uses_dt else fw.predict(net, state, tt)
            mses.append(((out_x - eps)[real] ** 2).sum(-1).mean().item())
            elem_mses.append(((out_e - v) ** 2).sum(-1).mean().item())  # all atoms: ghosts are the density
            given_e = out_e if given_e is None else given_e  # the first condition: properties given
        e0 = fw.elem_schedule.e0_from_v(noisy.elem, given_e, torch.tensor(t))
        right_t, right_net = ((e.argmax(-1) == true_elem)[real].float().mean().item() for e in (noisy.elem, e0))
        sigma = float(fw.pos_schedule.sigma(torch.tensor(t)))
        mse = mses[0]
        noise = (eps[real] ** 2).sum(-1).mean().item()
        cond = (f" {mses[1]:.3f} / {mses[2]:.3f} | " + " / ".join(f"{m:.4f}" for m in elem_mses) + " |"
                if conditioned else "")
        print(f"| {t:g} | {sigma:.4f} | {mse:.3f} | {sigma * (mse / 3) ** 0.5:.4f} | {sigma * (noise / 3) ** 0.5:.4f} "
              f"| {100 * right_t:.1f} / {100 * right_net:.1f} % |" + cond, flush=True)

    lookup = np.array([GHOST, *ckpt.species])
    print(f"\n## from-t: noise to t0, sample back on the {args.steps}-step grid "
          f"(data: {species_counts(val)})")
    data_bonds = bonding(val, args.system)
    print("| t0 | RDF RMSD | real atoms per structure |" + "".join(f" {k} |" for k in data_bonds))
    print("|---|---|---|" + "---|" * len(data_bonds))
    print("| data | | |" + "".join(f" {v:.3g} |" for v in data_bonds.values()))
    plan = fw.plan(args.steps)
    for t0 in from_times:
        torch.manual_seed(args.seed)
        with torch.inference_mode():
            state = fw.noisy(data, torch.full((data.n_structures,), t0))[0]
            for t, dt, stochastic in plan:
                if t <= t0 + 1e-9:
                    state = fw.step(net, state, t, dt, stochastic)
            state = state.replace(pos=wrap(state.pos, state.cell, state.batch))
        numbers = lookup[state.elem.argmax(-1).numpy()]
        out = [MaterialSample(state.cell[b].double().numpy(), state.pos[state.batch == b].double().numpy(),
                              numbers[(state.batch == b).numpy()]).to_atoms(strip_ghosts=True)
               for b in range(state.n_structures)]
        counts = " + ".join(f"{v:.1f} {k}" for k, v in species_counts(out).items())
        bonds = "".join(f" {v:.3g} |" for v in bonding(out, args.system).values())
        print(f"| {t0:g} | {score(out):.3f} | {counts} |{bonds}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
