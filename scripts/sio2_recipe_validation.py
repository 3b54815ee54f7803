"""Compare the a-SiO2 structures of two recipes in one dataset directory (meta.json's
`shard_recipe` says which shard came from which): the melt-quench recipe (one melt per
structure) against the quench-series recipe (several quenches from one melt).

    python scripts/sio2_recipe_validation.py [--data assets/data/a-SiO2] [--max-per-recipe 1000]
        [--figure docs/figures/sio2-recipes.png]

Per recipe: density, Si with four O and O with two Si (Si–O < 2.3 Å), shear modulus G,
mean ring size, the ring-size distribution and the averaged RDF. Noise: standard errors by
a bootstrap over work units (the quenches of one melt are not independent, so units, not
structures, are resampled), and for the RDF the RMSD between two disjoint sets of
melt-quench units of the quench-series sample's size (the floor that sample size allows).
Also each quantity by quench index within the quench-series units (a trend means the melt
still ages between quenches), and the within-unit lag-1 correlation of each quantity's deviation from its unit mean
(-1/(k-1) for k independent structures per unit): consecutive quenches that remember
each other show a larger value.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from core.benchmarking import run_script  # noqa: E402
from core.datasets import dataset_meta, load_dataset  # noqa: E402
from core.metrics import averaged, curve_rmsd, rdf  # noqa: E402
from core.metrics.bonds import neighbour_pairs  # noqa: E402
from core.properties import ring_sizes  # noqa: E402

RECIPES = ("melt-quench", "quench-series")
SIZES = np.arange(2, 11)  # ring sizes shown (Si per ring); larger ones are pooled into 10


def per_structure(frames) -> dict:
    """Quantities of each structure (arrays over structures) and its ring-size counts."""
    out = {k: [] for k in ("density", "si4", "o2", "G", "ring_mean")}
    rings = []
    for a in frames:
        out["density"].append(len(a) / a.get_volume())
        si, _ = neighbour_pairs([a], "Si", "O", 2.3)
        o, _ = neighbour_pairs([a], "O", "Si", 2.3)
        out["si4"].append(np.mean(si == 4))
        out["o2"].append(np.mean(o == 2))
        out["G"].append(a.info["shear_modulus"])
        out["ring_mean"].append(a.info["ring_size_mean"])
        sizes = np.minimum(np.array(ring_sizes(a), dtype=int), SIZES[-1])
        rings.append(np.array([np.sum(sizes == s) for s in SIZES]))
    return {k: np.array(v, dtype=float) for k, v in out.items()} | {"rings": np.array(rings, dtype=float)}


def unit_bootstrap(values: np.ndarray, units: np.ndarray, stat, n_boot: int, rng) -> float:
    """Standard error of stat(values) when whole units are resampled with replacement."""
    ids = np.unique(units)
    groups = [np.nonzero(units == u)[0] for u in ids]
    est = []
    for _ in range(n_boot):
        pick = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        est.append(stat(values[pick]))
    return float(np.std(est, axis=0).max()) if np.ndim(est[0]) else float(np.std(est))


def lag1_within_units(values: np.ndarray, units: np.ndarray, ids: np.ndarray) -> float:
    """Correlation of consecutive structures' deviations from their unit mean."""
    x, y = [], []
    for u in np.unique(units):
        idx = np.nonzero(units == u)[0]
        idx = idx[np.argsort(ids[idx])]
        if len(idx) < 3:
            continue
        d = values[idx] - values[idx].mean()
        x.extend(d[:-1])
        y.extend(d[1:])
    return float(np.corrcoef(x, y)[0, 1]) if len(x) > 2 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("assets/data/a-SiO2"))
    ap.add_argument("--max-per-recipe", type=int, default=1000, help="first N structures of each recipe")
    ap.add_argument("--figure", type=Path, default=Path("docs/figures/sio2-recipes.png"))
    ap.add_argument("--boot", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    meta = dataset_meta(args.data)
    per_unit = {e["params"]["frames_per_unit"] for e in meta["recipes"].values()}.pop()
    frames = load_dataset(args.data)
    groups = {}
    for name in RECIPES:
        sel = [a for a in frames if meta["shard_recipe"].get(f"{a.info['id'] // per_unit:04d}") == name]
        groups[name] = sel[: args.max_per_recipe]
        if not groups[name]:
            raise SystemExit(f"{args.data}: no structures of recipe {name!r}")

    data, curves = {}, {}
    for name, sel in groups.items():
        q = per_structure(sel)
        q["ids"] = np.array([a.info["id"] for a in sel])
        q["units"] = q["ids"] // per_unit
        q["atoms"] = np.array([len(a) for a in sel])
        data[name] = q
        r, g = rdf(sel, 5.0, 100)
        curves[name] = g
    old, new = data["melt-quench"], data["quench-series"]

    print(f"{args.data}: melt-quench {len(old['ids'])} structures ({len(np.unique(old['units']))} units), "
          f"quench-series {len(new['ids'])} ({len(np.unique(new['units']))} units; "
          f"cell sizes {sorted(set(new['atoms'].tolist()))})")
    print("| quantity | melt-quench (mean ± std) | quench-series (mean ± std) | difference ± noise (1 s.e.) | z |")
    print("|---|---|---|---|---|")
    rows = [("density (atoms/Å³)", "density", 4), ("Si with 4 O", "si4", 3), ("O with 2 Si", "o2", 3),
            ("G (GPa)", "G", 2), ("mean ring size (Si)", "ring_mean", 3)]
    for label, key, dig in rows:
        a, b = old[key], new[key]
        se_a = unit_bootstrap(a, old["units"], np.nanmean, args.boot, rng)
        se_b = unit_bootstrap(b, new["units"], np.nanmean, args.boot, rng)
        diff, se = np.nanmean(b) - np.nanmean(a), np.hypot(se_a, se_b)
        print(f"| {label} | {np.nanmean(a):.{dig}f} ± {np.nanstd(a):.{dig}f} | {np.nanmean(b):.{dig}f} ± "
              f"{np.nanstd(b):.{dig}f} | {diff:+.{dig}f} ± {se:.{dig}f} | {diff / se:+.1f} |")
    # ring-size distribution: pooled share of each size
    share = {k: v["rings"].sum(0) / v["rings"].sum() for k, v in data.items()}
    for s_i, s in enumerate(SIZES):
        fa = lambda m: m[:, s_i].sum() / m.sum()  # noqa: E731
        se = np.hypot(unit_bootstrap(old["rings"], old["units"], fa, args.boot, rng),
                      unit_bootstrap(new["rings"], new["units"], fa, args.boot, rng))
        diff = share["quench-series"][s_i] - share["melt-quench"][s_i]
        label = f"{s}-rings" + (" and larger" if s == SIZES[-1] else "")
        z = f"{diff / se:+.1f}" if se else "–"
        print(f"| share of {label} | {share['melt-quench'][s_i]:.3f} | {share['quench-series'][s_i]:.3f} | "
              f"{diff:+.3f} ± {se:.3f} | {z} |")

    # RDF: recipe difference against the floor of the quench-series sample size
    rmsd = curve_rmsd(curves["melt-quench"], curves["quench-series"])
    n_units_new = len(np.unique(new["units"]))
    old_units = np.unique(old["units"])
    # two disjoint sets of the quench-series size, or of half the melt-quench units when there
    # are fewer than twice as many (then the floor is an upper bound for the larger sample)
    n_set = min(n_units_new, len(old_units) // 2)
    floor = []
    for _ in range(50):
        pick = rng.permutation(old_units)
        ga = curves["melt-quench"][np.isin(old["units"], pick[:n_set])]
        gb = curves["melt-quench"][np.isin(old["units"], pick[n_set:2 * n_set])]
        floor.append(curve_rmsd(ga, gb))
    print(f"RDF RMSD between the recipes' averaged RDFs: {rmsd:.4f}; between two disjoint sets of "
          f"{n_set} melt-quench units: {np.mean(floor):.4f} (95th percentile {np.percentile(floor, 95):.4f})")
    print("within-unit lag-1 correlation of deviations from the unit mean "
          f"(independent structures: {-1 / (per_unit - 1):+.2f}):")
    for label, key, _ in rows:
        print(f"  {label}: melt-quench {lag1_within_units(old[key], old['units'], old['ids']):+.2f}, "
              f"quench-series {lag1_within_units(new[key], new['units'], new['ids']):+.2f}")

    k = new["ids"] % per_unit
    print("quench-series by quench index k in its unit (melt age grows with k), mean over units:")
    print("  k:                  " + " ".join(f"{i:6d}" for i in range(per_unit)))
    for label, key, dig in rows:
        print(f"  {label[:19]:19s} " + " ".join(f"{np.nanmean(new[key][k == i]):6.{min(dig, 3)}f}"
                                             for i in range(per_unit)))

    fig, ax = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    colors = {"melt-quench": "C0", "quench-series": "C1"}
    for name in RECIPES:
        lab = f"{name} ({len(data[name]['ids'])})"
        ax[0, 0].plot(r, averaged(curves[name]), color=colors[name], label=lab)
    ax[0, 0].plot(r, averaged(curves["quench-series"]) - averaged(curves["melt-quench"]), color="k", lw=0.8,
                  label="difference")
    ax[0, 0].set(xlabel="r (Å)", ylabel="g(r)", title=f"RDF (RMSD {rmsd:.3f}, floor {np.mean(floor):.3f})")
    ax[0, 0].legend(fontsize=8)
    width = 0.38
    for k, name in enumerate(RECIPES):
        vals = [np.mean(data[name]["si4"]), np.mean(data[name]["o2"])]
        ax[0, 1].bar(np.arange(2) + (k - 0.5) * width, vals, width, color=colors[name], label=name)
    ax[0, 1].set_xticks([0, 1], ["Si with 4 O", "O with 2 Si"])
    ax[0, 1].set(ylim=(0.5, 1.0), ylabel="share", title="coordination (Si–O < 2.3 Å)")
    for k, name in enumerate(RECIPES):
        ax[0, 2].bar(SIZES + (k - 0.5) * width, share[name], width, color=colors[name], label=name)
    ax[0, 2].set(xlabel="ring size (Si per ring; 10 = 10 and more)", ylabel="share of rings",
                 title="ring-size distribution")
    for axis, key, xl in ((ax[1, 0], "density", "density (atoms/Å³)"), (ax[1, 1], "G", "shear modulus G (GPa)"),
                          (ax[1, 2], "ring_mean", "mean ring size (Si per ring)")):
        lo = min(np.nanmin(data[n][key]) for n in RECIPES)
        hi = max(np.nanmax(data[n][key]) for n in RECIPES)
        bins = np.linspace(lo, hi, 25)
        for name in RECIPES:
            axis.hist(data[name][key], bins=bins, density=True, histtype="step", lw=1.5, color=colors[name],
                      label=name)
        axis.set(xlabel=xl, ylabel="density of structures")
    ax[0, 1].legend(fontsize=8)
    ax[1, 1].legend(fontsize=8)
    fig.suptitle("a-SiO2: melt-quench (one melt per structure) vs quench-series (quenches from one melt)")
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=100)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    run_script(main)
