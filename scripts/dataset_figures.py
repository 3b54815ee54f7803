"""Measure the shipped MD datasets and draw their figures for docs/datasets.md.

    .venv/bin/python scripts/dataset_figures.py [--data assets/data] [--out docs/figures]

Prints, per dataset: structure count, density, RDF first peak (parabola through the
highest bin and its neighbours, 5 Å / 100 bins as the metrics use), coordination; for
a-SiO2 also the Si–O peak, four-fold Si fraction, G and ring-size statistics. Writes
`asi-structure.png`, `sio2-structure.png` and `sio2-properties.png` (G and ring-size
histograms).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from ase.neighborlist import neighbor_list  # noqa: E402

from core.benchmarking import run_script  # noqa: E402
from core.datasets import load_dataset  # noqa: E402
from core.datasets.shards import existing_units  # noqa: E402
from core.errors import UserError  # noqa: E402
from core.metrics import adf, averaged, rdf  # noqa: E402


def peak(r: np.ndarray, g: np.ndarray, lo: float = 0.0, hi: float = np.inf) -> float:
    """Peak position of a binned curve inside [lo, hi], refined by a parabola."""
    idx = np.nonzero((r >= lo) & (r <= hi))[0]
    k = idx[np.argmax(g[idx])]
    y0, y1, y2 = g[k - 1], g[k], g[k + 1]
    return float(r[k] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) * (r[1] - r[0]))


def partial_peak(frames, a: int, b: int, r_max: float = 3.0, bins: int = 300) -> float:
    hist = np.zeros(bins)
    for atoms in frames:
        i, j, d = neighbor_list("ijd", atoms, r_max)
        z = atoms.numbers
        hist += np.histogram(d[(z[i] == a) & (z[j] == b)], bins=bins, range=(0, r_max))[0]
    r = (np.arange(bins) + 0.5) * r_max / bins
    return peak(r, hist / r**2)


def coordination(frames, cutoff: float, centre: int, neighbour: int) -> np.ndarray:
    """Fraction of `centre` atoms with 0..8 `neighbour` atoms closer than cutoff (Å)."""
    counts = np.zeros(9)
    for atoms in frames:
        i, j = neighbor_list("ij", atoms, cutoff)
        z = atoms.numbers
        m = (z[i] == centre) & (z[j] == neighbour)
        cn = np.bincount(i[m], minlength=len(atoms))[z == centre]
        counts += np.bincount(np.minimum(cn, 8), minlength=9)
    return counts / counts.sum()


def structure_figure(frames, title: str, out: Path) -> tuple[np.ndarray, np.ndarray]:
    r, g = rdf(frames, 5.0, 100)
    theta, p = adf(frames, 3.0, 180)
    g, p = averaged(g), averaged(p)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    ax1.plot(r, g)
    ax1.set(xlabel="r (Å)", ylabel="g(r)", title=f"{title}: RDF ({len(frames)} structures)")
    ax2.plot(theta, p)
    ax2.set(xlabel="bond angle (°), neighbours < 3 Å", ylabel="P(θ) per degree", title="ADF")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return r, g


def measure_asi(data: Path, out: Path) -> None:
    asi = load_dataset(data)
    r, g = structure_figure(asi, "a-Si (SW, 2500 K)", out / "asi-structure.png")
    dens = np.array([len(a) / a.get_volume() for a in asi])
    cn = coordination(asi, 2.9, 14, 14)
    print(f"a-Si: {len(asi)} structures, density {dens.mean():.4f} ± {dens.std():.4f} atoms/Å^3, "
          f"RDF first peak {peak(r, g, 2.0, 3.0):.3f} Å, mean coordination (< 2.9 Å) "
          f"{(cn * np.arange(9)).sum():.2f}, 4-fold {cn[4]:.2f}")


def measure_sio2(data: Path, out: Path) -> None:
    sio2 = load_dataset(data)
    structure_figure(sio2, "a-SiO2 (Tersoff, 300 K)", out / "sio2-structure.png")
    dens = np.array([len(a) / a.get_volume() for a in sio2])
    cn = coordination(sio2, 2.3, 14, 8)
    shear = np.array([a.info["shear_modulus"] for a in sio2])
    rings = np.array([a.info["ring_size_mean"] for a in sio2])
    print(f"a-SiO2: {len(sio2)} structures, {min(map(len, sio2))}–{max(map(len, sio2))} atoms, "
          f"density {dens.mean():.4f} ± {dens.std():.4f} atoms/Å^3, Si–O peak "
          f"{partial_peak(sio2, 14, 8):.3f} Å, Si with 4 O (< 2.3 Å) {cn[4]:.2f}, "
          f"G {shear.mean():.1f} ± {shear.std():.1f} GPa (range {shear.min():.1f}–{shear.max():.1f}), "
          f"ring size mean {np.nanmean(rings):.2f} ± {np.nanstd(rings):.2f}")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    ax1.hist(shear, bins=30)
    ax1.set(xlabel="shear modulus G (GPa)", ylabel="structures",
            title=f"a-SiO2: G = (C44+C55+C66)/3, n = {len(shear)}")
    ax2.hist(rings[np.isfinite(rings)], bins=30)
    ax2.set(xlabel="mean ring size (Si per ring)", ylabel="structures", title="ring size mean")
    fig.savefig(out / "sio2-properties.png", dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("assets/data"))
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = ap.parse_args()

    found = [name for name in ("a-Si", "a-SiO2") if existing_units(args.data / name)]
    if not found:
        raise UserError(f"{args.data}: neither a-Si/ nor a-SiO2/ holds dataset shards")
    args.out.mkdir(parents=True, exist_ok=True)
    if "a-Si" in found:
        measure_asi(args.data / "a-Si", args.out)
    if "a-SiO2" in found:
        measure_sio2(args.data / "a-SiO2", args.out)


if __name__ == "__main__":
    run_script(main)
