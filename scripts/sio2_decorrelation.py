"""Measure how fast the a-SiO2 melt (Tersoff, NPT 0 bar, 3500 K) forgets its configuration,
per cell size: the decorrelation time that spaces the quenches of the quench-series recipe.

    python scripts/sio2_decorrelation.py [--atoms 81 150 249] [--origins 3] [--span-ps 120]

For each cell size: a random start melted `--equil-ps`, then `--origins` consecutive windows
of `--span-ps`. Prints the equilibration trace (volume, potential energy per atom), and on
lag times the mean-squared displacement of Si and O, the self intermediate scattering
function F_s(q = 1.7 Å^-1, t) of Si and O, and the surviving fraction of Si–O bonds; then
tau, the lag where each curve first falls below 1/e (see
`core.datasets.sio2.melt_decorrelation`). `--json FILE` also writes the curves.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from core.benchmarking import run_script
from core.datasets.sio2 import SiO2Recipe, melt_decorrelation
from core.errors import UserError


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, nargs="+", default=[81, 150, 249], help="cell sizes (multiples of 3)")
    ap.add_argument("--equil-ps", type=float, default=100.0)
    ap.add_argument("--span-ps", type=float, default=120.0)
    ap.add_argument("--sample-ps", type=float, default=1.0)
    ap.add_argument("--origins", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the curves to this file")
    args = ap.parse_args()
    if any(n < 3 or n % 3 for n in args.atoms):
        raise UserError(f"--atoms expects multiples of 3 (SiO2 formula units), got {args.atoms}")
    if min(args.origins, args.equil_ps, args.span_ps, args.sample_ps) <= 0:
        raise UserError("--origins, --equil-ps, --span-ps and --sample-ps must be positive")

    recipe = SiO2Recipe()
    results = []
    for n_atoms in args.atoms:
        t0 = time.time()
        res = melt_decorrelation(recipe, n_atoms // 3, seed=args.seed + n_atoms, equil_ps=args.equil_ps,
                                 sample_ps=args.sample_ps, span_ps=args.span_ps, n_origins=args.origins)
        n = res["n_atoms"]
        print(f"\n{n} atoms, {recipe.t_melt:.0f} K ({time.time() - t0:.0f} s wall)")
        tr = res["equil_t_ps"]
        every = max(1, len(tr) // 10)
        print("  equilibration: t (ps), volume (Å^3), PE (eV/atom): " + ", ".join(
            f"{t:.0f} {v:.0f} {e / n:.3f}" for t, v, e in
            zip(tr[every - 1::every], res["equil_volume_A3"][every - 1::every], res["equil_pe_eV"][every - 1::every])))
        t = res["t_ps"]
        print("  lag (ps)  MSD Si  MSD O (Å^2)  Fs Si  Fs O  Si–O bonds kept")
        for lag in (1, 5, 10, 20, 30, 50, 75, 100, 120, 150, 200):
            k = int(round(lag / args.sample_ps))
            if k < len(t):
                print(f"  {t[k]:7.0f}  {res['msd_A2']['Si'][k]:6.2f}  {res['msd_A2']['O'][k]:6.2f}"
                      f"       {res['fs']['Si'][k]:5.3f}  {res['fs']['O'][k]:5.3f}  {res['bonds'][k]:5.3f}")
        tau = res["tau_ps"]
        print(f"  tau (first below 1/e): Fs Si {tau['fs_Si']} ps, Fs O {tau['fs_O']} ps, bonds {tau['bonds']} ps"
              " (nan: not within the span)")
        results.append(res)
    if args.json:
        def plain(x):
            if isinstance(x, dict):
                return {k: plain(v) for k, v in x.items()}
            return x.tolist() if isinstance(x, np.ndarray) else x
        with open(args.json, "w") as fh:
            json.dump([plain(r) for r in results], fh)


if __name__ == "__main__":
    run_script(main)
