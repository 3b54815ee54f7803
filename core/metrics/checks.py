"""Structure checks that read beside the RDF/ADF curves: first-shell coordination, close pairs and
composition.

The curves average over every atom; these count defects one atom or one pair at a time, so
a set can match the RDF and still show atoms pressed together or under-coordinated. The rules are
stated once per system here (`FIRST_SHELL`, `CLOSE_PAIR_DISTANCE`, `COMPOSITION`); a new system
adds its rules and `network_checks` measures them.
"""

from __future__ import annotations

import numpy as np
from ase.data import covalent_radii

from core.metrics.bonds import coordination, neighbour_pairs
from core.metrics.structures import pair_batches, real_atoms

FIRST_SHELL = {
    "a-Si": [("Si", "Si", 2.85, 4)],
    "a-SiO2": [("Si", "O", 2.0, 4), ("O", "Si", 2.0, 2)],
}
"""Per system: first-shell rules (centre, neighbour, cutoff in Å, ideal count), the first one the
headline. In a-SiO2 each Si has 4 O and each O 2 Si within 2 Å (bond 1.61 Å, well separated from
the second shell; the data: 70 % and 97 %, spread 0.04 Å). Our a-Si is a hot SW glass without a
clean first-shell minimum (bond 2.35 Å, peak 2.58 Å), so only 44 % of its Si have exactly 4
neighbours within 2.85 Å: a coarse check there."""
CLOSE_PAIR_FACTOR = 0.75
"""A pair is 'close' below 0.75 x the sum of the two covalent radii (ASE's, Cordero 2008):
Si–Si 1.67 Å (bond 2.35), Si–O 1.33 Å (bond 1.61), O–O 0.99 Å. Relaxation removes such pairs
at once; a well-trained model should not make them."""
CLOSE_PAIR_DISTANCE = {"a-SiO2": 1.2}
"""Per system: a pair of any two atoms closer than this (Å) is a defect. In a-SiO2 the shortest
bond is Si–O at 1.61 Å (the validation split's shortest pair: 1.46 Å). Systems not listed here use the
covalent-radius rule (`CLOSE_PAIR_FACTOR`; a-Si: pairs below 1.67 Å)."""
COMPOSITION = {"a-SiO2": ("O", "Si", 2.0, 0.05)}
"""Per multi-element system: (numerator, denominator, ideal ratio, tolerance) of the per-structure
composition check; a-SiO2: every structure's O/Si within 2.00 ± 0.05."""


def first_shell(structures) -> tuple[str, str, float, int]:
    """The headline `FIRST_SHELL` rule for these structures' chemistry (a-SiO2's when any oxygen
    is present)."""
    symbols = {s for a in real_atoms(structures) for s in a.get_chemical_symbols()}
    return FIRST_SHELL["a-SiO2" if "O" in symbols else "a-Si"][0]


def close_pairs(structures, factor: float = CLOSE_PAIR_FACTOR, distance: float | None = None) -> np.ndarray:
    """Number of atom pairs (each counted once) closer than ``factor`` x the sum of their covalent
    radii, or closer than ``distance`` Å when given, one count per structure (ghosts excluded)."""
    atoms_list = real_atoms(structures)
    radii = np.asarray(covalent_radii)
    largest = max(radii[a.numbers].max() for a in atoms_list)
    reach = float(distance) if distance is not None else 2 * factor * largest
    out = np.zeros(len(atoms_list), dtype=np.int64)
    for start, batch in pair_batches(atoms_list, reach, full_list=False, vectors=False):
        if distance is not None:
            close = batch.distances < distance
            out[start:start + len(batch.n_atoms)] += np.bincount(batch.structure[close], minlength=len(batch.n_atoms))
            continue
        numbers = np.concatenate([a.numbers for a in atoms_list[start:start + len(batch.n_atoms)]])
        limit = factor * (radii[numbers[batch.centre]] + radii[numbers[batch.partner]])
        close = batch.distances < limit
        out[start:start + len(batch.n_atoms)] += np.bincount(batch.structure[close], minlength=len(batch.n_atoms))
    return out


def structure_checks(structures, max_count: int = 8) -> dict:
    """Coordination histogram and close pairs of a set of structures.

    Returns ``rule`` (text), ``counts`` (0..max_count), ``coordination`` (fraction of centre atoms
    with each neighbour count, the last bin max_count and more), ``ideal_share`` (fraction with the
    ideal count) and ``close_pairs`` (mean per structure).
    """
    centre, neighbour, r_cut, ideal = first_shell(structures)
    fractions = coordination(structures, centre, neighbour, r_cut, max_count)
    return {"rule": f"{neighbour} within {r_cut:g} Å of each {centre}", "counts": np.arange(max_count + 1),
            "coordination": fractions, "ideal": ideal, "ideal_share": float(fractions[ideal]),
            "close_pairs": float(close_pairs(structures).mean())}


def composition_ratios(structures, numerator: str, denominator: str) -> np.ndarray:
    """Per structure: number of ``numerator`` atoms / number of ``denominator`` atoms (inf without
    any ``denominator`` atom), ghosts excluded."""
    out = []
    for atoms in real_atoms(structures):
        symbols = np.asarray(atoms.get_chemical_symbols())
        top, bottom = int((symbols == numerator).sum()), int((symbols == denominator).sum())
        out.append(top / bottom if bottom else np.inf)
    return np.asarray(out, dtype=float)


def network_columns(system: str) -> list[tuple[str, str, float]]:
    """(key, label, display factor) of each `network_checks` value of ``system``, in table order:
    shares are fractions shown as % (factor 100), the rest as they are."""
    cols = [(f"{c}_{n_ideal}{n}_share", f"{c} with {n_ideal} {n} within {r:g} Å %", 100.0)
            for c, n, r, n_ideal in FIRST_SHELL.get(system, [])]
    rule = (f"< {CLOSE_PAIR_DISTANCE[system]:g} Å" if system in CLOSE_PAIR_DISTANCE
            else f"< {CLOSE_PAIR_FACTOR:g} x covalent radii")
    cols += [("close_pairs_per_atom", f"pairs {rule} per atom", 1.0),
             ("close_pair_structure_share", f"structures with a pair {rule} %", 100.0)]
    if system in COMPOSITION:
        top, bottom, ideal, tol = COMPOSITION[system]
        cols += [(f"{top}_{bottom}_min", f"min {top}/{bottom}", 1.0),
                 (f"{top}_{bottom}_max", f"max {top}/{bottom}", 1.0),
                 (f"{top}_{bottom}_within_share", f"{top}/{bottom} within {ideal:.2f} ± {tol:g} %", 100.0)]
    return cols


def network_checks(structures, system: str) -> dict[str, float]:
    """The bond-network checks of a set under ``system``'s rules, keyed as `network_columns`:
    share of each first-shell centre with exactly its ideal count (pooled over the set), close pairs
    per real atom and the share of structures holding any, and for a multi-element system the
    smallest and largest per-structure ratio and the share of structures within tolerance."""
    atoms_list = real_atoms(structures)
    out = {}
    for centre, neighbour, r_cut, ideal in FIRST_SHELL.get(system, []):
        counts, _ = neighbour_pairs(atoms_list, centre, neighbour, r_cut)
        out[f"{centre}_{ideal}{neighbour}_share"] = float(np.mean(counts == ideal)) if len(counts) else float("nan")
    pairs = close_pairs(atoms_list, distance=CLOSE_PAIR_DISTANCE.get(system))
    out["close_pairs_per_atom"] = float(pairs.sum() / sum(len(a) for a in atoms_list))
    out["close_pair_structure_share"] = float(np.mean(pairs > 0))
    if system in COMPOSITION:
        top, bottom, ideal, tol = COMPOSITION[system]
        ratios = composition_ratios(atoms_list, top, bottom)
        out[f"{top}_{bottom}_min"], out[f"{top}_{bottom}_max"] = float(ratios.min()), float(ratios.max())
        out[f"{top}_{bottom}_within_share"] = float(np.mean(np.abs(ratios - ideal) <= tol + 1e-9))
    return out
