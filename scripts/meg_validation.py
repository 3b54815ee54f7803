"""The MEG validation table of docs/datasets.md, from a built MEG dataset directory.

Per glass: CPU seconds of melt, quench and elastic steps (recorded by the workflow), the melt
check (melt temperature reached, slowest element's diffusivity), per MD recipe the melt
temperatures, the evaporation check's volume growth and the density of the K-rich glasses
(K at least 20 % of the cations, the compositions that boil at 3500 K), mass density, O
coordination of Si, P and Al (first-shell cut-offs below), Young's and shear modulus and Li
concentration. Prints a Markdown table (mean ± std, range) and, with --json, writes the numbers.
With --fmax-check K, E and G of pilot glasses (ids 3 to 2 + K) are recomputed at tighter FIRE
force tolerances (what the dataset's fmax does to them; minutes per glass); --silica makes a
pure SiO2 glass by the same recipe and checks it too (the comparison with fused silica).

    PYTHONPATH=$PWD python scripts/meg_validation.py assets/data/MEG [--json out.json] [--fmax-check 2 --silica]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import numpy as np
from ase.neighborlist import neighbor_list
from ase.units import _amu

from core.benchmarking import run_script
from core.datasets import dataset_meta, load_dataset

CUTOFF = {"Si": 2.1, "P": 2.0, "Al": 2.4}  # Å, cation-O first shell (first minimum of g(r) in these glasses)
K_RICH = 0.195  # K share of the cations from which a glass counts as K-rich (the grid's 20 %, rounded counts)


def coordination(atoms, cation: str) -> np.ndarray:
    """Number of O within CUTOFF[cation] of each `cation` atom."""
    sym = np.array(atoms.get_chemical_symbols())
    i, j = neighbor_list("ij", atoms, CUTOFF[cation])
    keep = (sym[i] == cation) & (sym[j] == "O")
    counts = np.bincount(i[keep], minlength=len(atoms))
    return counts[sym == cation]


def density_g_cm3(atoms) -> float:
    return float(atoms.get_masses().sum() * _amu * 1e3 / (atoms.get_volume() * 1e-24))


def summary(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"n": int(len(v)), "mean": float(v.mean()), "std": float(v.std()),
            "min": float(v.min()), "max": float(v.max())}


def k_share(atoms) -> float:
    sym = atoms.get_chemical_symbols()
    return sym.count("K") / sum(1 for x in sym if x != "O")


def by_recipe(directory, frames) -> dict:
    """Per MD recipe (meta.json's shard_recipe): glasses, melt temperatures, the evaporation
    check's growth (`melt_expansion`, where recorded) and the K-rich glasses' density."""
    meta = dataset_meta(directory)
    stride = next(iter(meta["recipes"].values()))["params"]["frames_per_unit"]  # one per directory (build.py)
    groups: dict[str, list] = {}
    for a in frames:
        groups.setdefault(meta["shard_recipe"][f"{int(a.info['id']) // stride:04d}"], []).append(a)
    out = {}
    for name, group in sorted(groups.items()):
        rich = [density_g_cm3(a) for a in group if k_share(a) >= K_RICH]
        grown = [a.info["melt_expansion"] for a in group if "melt_expansion" in a.info]
        out[name] = {"n": len(group),
                     "melt_temperature": dict(sorted(Counter(int(a.info["melt_temperature"]) for a in group).items())),
                     "k_rich_density_g_cm3": summary(rich) if rich else None,
                     "melt_expansion": summary(grown) if grown else None}
    return out


def validate(directory) -> dict:
    frames = load_dataset(directory)
    out = {"n_glasses": len(frames), "atoms": summary([len(a) for a in frames])}
    for key in ("cpu_melt_s", "cpu_quench_s", "cpu_elastic_s"):
        out[key] = summary([a.info[key] for a in frames])
    total = [sum(a.info[k] for k in ("cpu_melt_s", "cpu_quench_s", "cpu_elastic_s")) for a in frames]
    out["cpu_total_s"] = summary(total)
    out["core_hours_per_1000"] = float(np.mean(total) * 1000 / 3600)
    out["melt_temperature"] = dict(sorted(Counter(int(a.info["melt_temperature"]) for a in frames).items()))
    out["melt_diffusivity"] = summary([a.info["melt_diffusivity"] for a in frames])
    out["melt_slowest"] = dict(Counter(a.info["melt_slowest"] for a in frames).most_common())
    out["density_g_cm3"] = summary([density_g_cm3(a) for a in frames])
    for cation in CUTOFF:
        per_glass = [coordination(a, cation) for a in frames if cation in a.get_chemical_symbols()]
        if per_glass:
            allc = np.concatenate(per_glass)
            out[f"{cation}_O_coordination"] = summary([c.mean() for c in per_glass]) | {
                "cutoff_A": CUTOFF[cation],
                "distribution": {int(k): float(np.mean(allc == k)) for k in np.unique(allc)}}
    for prop in ("youngs_modulus", "shear_modulus", "li_concentration"):
        out[prop] = summary([a.info[prop] for a in frames])
    li = [a.info["li_concentration"] for a in frames if a.info["li_concentration"] > 0]
    out["li_concentration_with_li"] = summary(li) if li else None
    out["by_recipe"] = by_recipe(directory, frames)
    return out


def markdown(v: dict) -> str:
    def row(name, s, fmt="{:.2f}"):
        f = lambda x: fmt.format(x)  # noqa: E731
        return f"| {name} | {f(s['mean'])} ± {f(s['std'])} | {f(s['min'])}–{f(s['max'])} | {s['n']} |"

    lines = ["| quantity | mean ± std | range | glasses |", "|---|---|---|---|",
             row("atoms per glass", v["atoms"], "{:.0f}"),
             row("density (g/cm³)", v["density_g_cm3"])]
    for cation in CUTOFF:
        key = f"{cation}_O_coordination"
        if key in v:
            lines.append(row(f"{cation}–O coordination (r < {v[key]['cutoff_A']} Å)", v[key]))
    lines += [row("Young's modulus E (GPa)", v["youngs_modulus"], "{:.1f}"),
              row("shear modulus G (GPa)", v["shear_modulus"], "{:.1f}"),
              row("Li concentration (%)", v["li_concentration"], "{:.1f}")]
    if v["li_concentration_with_li"]:
        lines.append(row("Li concentration, glasses with Li (%)", v["li_concentration_with_li"], "{:.1f}"))
    lines += [row("CPU s: melt (start, FIRE, melt)", v["cpu_melt_s"], "{:.0f}"),
              row("CPU s: quench and 300 K hold", v["cpu_quench_s"], "{:.0f}"),
              row("CPU s: elastic constants", v["cpu_elastic_s"], "{:.0f}"),
              row("CPU s: total", v["cpu_total_s"], "{:.0f}"),
              row("melt check: slowest element's D (Å²/ps)", v["melt_diffusivity"], "{:.3f}")]
    lines.append("")
    temps = ", ".join(f"{t} K: {n}" for t, n in v["melt_temperature"].items())
    slow = ", ".join(f"{el} {n}" for el, n in v["melt_slowest"].items())
    lines.append(f"Glasses per melt temperature reached: {temps}. Slowest element in the melt check: {slow}. "
                 f"≈{v['core_hours_per_1000']:.1f} core-hours per 1,000 glasses.")
    for cation in CUTOFF:
        key = f"{cation}_O_coordination"
        if key in v:
            dist = ", ".join(f"{k}: {100 * x:.0f} %" for k, x in v[key]["distribution"].items() if x >= 0.005)
            lines.append(f"{cation}–O coordination shares: {dist}.")
    lines += ["", "| MD recipe | glasses | melt temperature reached | evaporation check: volume growth, mean ± std (max) "
              "| density of glasses with K ≥ 20 % of cations (g/cm³) |", "|---|---|---|---|---|"]
    for name, r in v["by_recipe"].items():
        temps = ", ".join(f"{t} K: {n}" for t, n in r["melt_temperature"].items())
        g, d = r["melt_expansion"], r["k_rich_density_g_cm3"]
        grown = f"{g['mean']:.2f} ± {g['std']:.2f} ({g['max']:.2f})" if g else "not checked"
        rich = f"{d['mean']:.2f} ± {d['std']:.2f}, {d['min']:.2f}–{d['max']:.2f} ({d['n']})" if d else "none"
        lines.append(f"| `{name}` | {r['n']} | {temps} | {grown} | {rich} |")
    return "\n".join(lines)


def fmax_check(glasses, tolerances=(0.05, 0.02, 0.01), steps: int = 1500) -> list[dict]:
    """E, G and CPU seconds of each (name, atoms) at each FIRE force tolerance (eV/Å), each
    relaxation capped at `steps` as in the dataset; `capped`: relaxations of the 13 that hit the cap."""
    import core.properties.elastic as elastic

    relax, stats = elastic.relax, {}

    def counting_relax(*args, **kwargs):
        ok = relax(*args, **kwargs)
        stats["n"] += 1
        stats["capped"] += not ok
        return ok

    rows = []
    elastic.relax = counting_relax
    try:
        for name, a in glasses:
            for fmax in tolerances:
                stats.update(n=0, capped=0)
                t0 = time.process_time()
                e, g = elastic.meg_elastic_moduli(a, fmax=fmax, steps=steps)
                rows.append({"glass": name, "atoms": len(a), "fmax": fmax, "E": e, "G": g,
                             "cpu_s": time.process_time() - t0, **stats})
                print(f"{name} ({len(a)} atoms) fmax {fmax}: E {e:.1f} G {g:.1f} GPa, "
                      f"{stats['capped']}/{stats['n']} capped, {rows[-1]['cpu_s']:.0f} CPU s", flush=True)
    finally:
        elastic.relax = relax
    return rows


def silica(seed: int = 123):
    """A 250-atom SiO2 glass by the default MEG recipe (the grid's pure-silica composition)."""
    from core.datasets.meg import MEGRecipe, composition_counts, melt_quench, random_start

    r, rng = MEGRecipe(), np.random.default_rng(seed)
    a = melt_quench(random_start(composition_counts({"Si": 1.0}, r.n_atoms), r, rng), r, rng)
    print(f"SiO2: density {density_g_cm3(a):.3f} g/cm3, Si-O coordination {coordination(a, 'Si').mean():.2f}, "
          f"melt {a.info['melt_temperature']:.0f} K, D_{a.info['melt_slowest']} {a.info['melt_diffusivity']:.3f} A^2/ps",
          flush=True)
    return a


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", nargs="?", default="assets/data/MEG")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--fmax-check", type=int, default=0, metavar="K",
                    help="recompute E, G of glasses ids 3.. at fmax 0.05, 0.02, 0.01 eV/Å")
    ap.add_argument("--silica", action="store_true", help="also make and check a SiO2 glass (seed 123)")
    args = ap.parse_args()
    v = validate(args.directory)
    glasses = [("SiO2", silica())] if args.silica else []
    glasses += [(f"id {a.info['id']}", a) for a in load_dataset(args.directory)[3:3 + args.fmax_check]]
    if glasses:
        v["fmax_check"] = fmax_check(glasses)
    print(markdown(v))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(v, fh, indent=1)


if __name__ == "__main__":
    run_script(main)
