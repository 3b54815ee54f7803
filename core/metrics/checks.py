"""Structure checks that read beside the RDF/ADF curves: first-shell coordination, close pairs and
composition.

The curves average over every atom; these count defects one atom or one pair at a time, so
a set can match the RDF and still show atoms pressed together or under-coordinated. The rules are
stated once per system here (`FIRST_SHELL`, `CLOSE_PAIR_DISTANCE`, `COMPOSITION`, `CATION_SHARES`); a
new system adds its rules and `network_checks` and `cation_shares` measure them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.data import covalent_radii

from core.metrics.bonds import coordination, neighbour_pairs
from core.metrics.structures import pair_batches, real_atoms

FIRST_SHELL = {
    "a-Si": [("Si", "Si", 2.85, 4)],
    "a-SiO2": [("Si", "O", 2.0, 4), ("O", "Si", 2.0, 2)],
    "MEG": [("Si", "O", 2.1, 4), ("P", "O", 2.0, 4), ("Al", "O", 2.4, 4)],
}
"""Per system: first-shell rules (centre, neighbour, cutoff in Å, ideal count), the first one the
headline. In a-SiO2 each Si has 4 O and each O 2 Si within 2 Å (bond 1.61 Å, well separated from
the second shell; the data: 70 % and 97 %, spread 0.04 Å). Our a-Si is a hot SW glass without a
clean first-shell minimum (bond 2.35 Å, peak 2.58 Å), so only 44 % of its Si have exactly 4
neighbours within 2.85 Å: a coarse check there. In MEG glasses the network formers are tetrahedra:
Si–O within 2.1 Å, P–O within 2.0 Å, Al–O within 2.4 Å (docs/datasets.md, MEG; the pilot glasses: 100 %,
99 % and 93 % four-fold)."""
CLOSE_PAIR_FACTOR = 0.75
"""A pair is 'close' below 0.75 x the sum of the two covalent radii (ASE's, Cordero 2008):
Si–Si 1.67 Å (bond 2.35), Si–O 1.33 Å (bond 1.61), O–O 0.99 Å. Relaxation removes such pairs
at once; a well-trained model should not make them."""
CLOSE_PAIR_DISTANCE = {"a-SiO2": 1.2, "MEG": 1.2}
"""Per system: a pair of any two atoms closer than this (Å) is a defect. In a-SiO2 the shortest
bond is Si–O at 1.61 Å (the validation split's shortest pair: 1.46 Å). In MEG the shortest bonds are
P–O, Be–O and Si–O near 1.55–1.6 Å (the pilot glasses' shortest pair: P–O at 1.41 Å). Systems not
listed here use the covalent-radius rule (`CLOSE_PAIR_FACTOR`; a-Si: pairs below 1.67 Å)."""


@dataclass(frozen=True)
class RatioRule:
    """Per structure: count of ``numerator`` / count of ``denominator`` within ``ideal`` ± ``tolerance``."""

    numerator: str
    denominator: str
    ideal: float
    tolerance: float

    @property
    def key(self) -> str:
        return f"{self.numerator}_{self.denominator}"

    @property
    def label(self) -> str:
        return f"{self.numerator}/{self.denominator}"

    @property
    def within_label(self) -> str:
        return f"{self.label} within {self.ideal:.2f} ± {self.tolerance:g} %"

    def values(self, atoms_list) -> np.ndarray:
        return composition_ratios(atoms_list, self.numerator, self.denominator)


@dataclass(frozen=True)
class ChargeRule:
    """Per structure: sum of the nominal oxide charges (``valences``, O -2) over the number of O atoms,
    within 0 ± ``tolerance``: a charge-neutral glass has every cation's charge matched by O."""

    valences: tuple[tuple[str, int], ...]
    tolerance: float
    ideal: float = 0.0

    key = "charge_per_O"
    label = "Σq/N_O"

    @property
    def within_label(self) -> str:
        return f"|Σq|/N_O ≤ {self.tolerance:g} %"

    def values(self, atoms_list) -> np.ndarray:
        return charge_per_oxygen(atoms_list, dict(self.valences))


OXIDE_VALENCES = (("Si", 4), ("P", 5), ("Al", 3), ("Li", 1), ("Be", 2), ("K", 1), ("Ca", 2), ("Ti", 4),
                  ("Ba", 2), ("Zn", 2), ("O", -2))
"""Nominal charges of the MEG oxides SiO2, P2O5, Al2O3, Li2O, BeO, K2O, CaO, TiO2, BaO, ZnO (the formal
valences `core.datasets.meg` balances every training glass with)."""
COMPOSITION = {"a-SiO2": RatioRule("O", "Si", 2.0, 0.05), "MEG": ChargeRule(OXIDE_VALENCES, 0.05)}
"""Per multi-element system: the per-structure composition check. a-SiO2: every structure's O/Si
within 2.00 ± 0.05. MEG: charge neutrality, |sum of the nominal charges| / N_O at most 0.05; a
~250-atom glass holds ~160 O, so it fails once about four O (8 unit charges) are missing or in
excess. Every training glass has exactly 0."""
CATION_SHARES = {"MEG": tuple(element for element, charge in OXIDE_VALENCES if charge > 0)}
"""Per system with several cation species: the cations `cation_shares` reports, in table order
(MEG: the ten of its oxides)."""


def first_shell(structures, system: str | None = None) -> tuple[str, str, float, int]:
    """The headline `FIRST_SHELL` rule of ``system``, or without one of these structures' chemistry
    (a-SiO2's when any oxygen is present, else a-Si's)."""
    if system in FIRST_SHELL:
        return FIRST_SHELL[system][0]
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


def structure_checks(structures, max_count: int = 8, system: str | None = None) -> dict:
    """Coordination histogram and close pairs of a set of structures, under ``system``'s rules when
    given (its headline first shell and close-pair distance), else by their chemistry (`first_shell`,
    the covalent-radius rule).

    Returns ``rule`` (text), ``counts`` (0..max_count), ``coordination`` (fraction of centre atoms
    with each neighbour count, the last bin max_count and more), ``ideal_share`` (fraction with the
    ideal count), ``close_pairs`` (mean per structure) and ``close_rule`` (what counts as close, text).
    """
    centre, neighbour, r_cut, ideal = first_shell(structures, system)
    fractions = coordination(structures, centre, neighbour, r_cut, max_count)
    distance = CLOSE_PAIR_DISTANCE.get(system)
    pairs = close_pairs(structures, distance=distance)
    return {"rule": f"{neighbour} within {r_cut:g} Å of each {centre}", "counts": np.arange(max_count + 1),
            "coordination": fractions, "ideal": ideal, "ideal_share": float(fractions[ideal]),
            "close_pairs": float(pairs.mean()),
            "close_rule": f"closer than {distance:g} Å" if distance else
                          f"closer than {CLOSE_PAIR_FACTOR:g} × the covalent radii"}


def composition_ratios(structures, numerator: str, denominator: str) -> np.ndarray:
    """Per structure: number of ``numerator`` atoms / number of ``denominator`` atoms (inf without
    any ``denominator`` atom), ghosts excluded."""
    out = []
    for atoms in real_atoms(structures):
        symbols = np.asarray(atoms.get_chemical_symbols())
        top, bottom = int((symbols == numerator).sum()), int((symbols == denominator).sum())
        out.append(top / bottom if bottom else np.inf)
    return np.asarray(out, dtype=float)


def charge_per_oxygen(structures, valences: dict[str, int]) -> np.ndarray:
    """Per structure: sum of the ``valences`` of its atoms (O negative) / number of O atoms (inf
    without O), ghosts excluded; 0 for a charge-neutral oxide. An element without a valence raises
    ValueError."""
    out = []
    for atoms in real_atoms(structures):
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(valences))
        if unknown:
            raise ValueError(f"no nominal charge for {unknown}")
        total = sum(valences[s] for s in symbols)
        n_o = symbols.count("O")
        out.append(total / n_o if n_o else np.inf)
    return np.asarray(out, dtype=float)


def composition_values(structures, system: str) -> tuple[str, np.ndarray] | None:
    """(label, one value per structure) of ``system``'s `COMPOSITION` rule (a-SiO2: O/Si, MEG:
    Σq/N_O), or None for a system without one."""
    rule = COMPOSITION.get(system)
    return None if rule is None else (rule.label, rule.values(real_atoms(structures)))


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
        rule = COMPOSITION[system]
        cols += [(f"{rule.key}_min", f"min {rule.label}", 1.0), (f"{rule.key}_max", f"max {rule.label}", 1.0),
                 (f"{rule.key}_within_share", rule.within_label, 100.0)]
    return cols


def network_checks(structures, system: str) -> dict[str, float]:
    """The bond-network checks of a set under ``system``'s rules, keyed as `network_columns`:
    share of each first-shell centre with exactly its ideal count (pooled over the set), close pairs
    per real atom and the share of structures holding any, and for a multi-element system the
    smallest and largest per-structure value of its `COMPOSITION` rule and the share of structures
    within its tolerance."""
    atoms_list = real_atoms(structures)
    out = {}
    for centre, neighbour, r_cut, ideal in FIRST_SHELL.get(system, []):
        counts, _ = neighbour_pairs(atoms_list, centre, neighbour, r_cut)
        out[f"{centre}_{ideal}{neighbour}_share"] = float(np.mean(counts == ideal)) if len(counts) else float("nan")
    pairs = close_pairs(atoms_list, distance=CLOSE_PAIR_DISTANCE.get(system))
    out["close_pairs_per_atom"] = float(pairs.sum() / sum(len(a) for a in atoms_list))
    out["close_pair_structure_share"] = float(np.mean(pairs > 0))
    if system in COMPOSITION:
        rule = COMPOSITION[system]
        values = rule.values(atoms_list)
        out[f"{rule.key}_min"], out[f"{rule.key}_max"] = float(values.min()), float(values.max())
        out[f"{rule.key}_within_share"] = float(np.mean(np.abs(values - rule.ideal) <= rule.tolerance + 1e-9))
    return out


def cation_share_columns(system: str) -> list[tuple[str, str, float]]:
    """(key, label, display factor) of each `cation_shares` value of ``system``, as `network_columns`:
    shares shown as % (factor 100), O per cation as it is; none for a system without `CATION_SHARES`."""
    cations = CATION_SHARES.get(system, ())
    return ([(f"{c}_cation_share", f"{c} %", 100.0) for c in cations]
            + ([("O_per_cation", "O per cation", 1.0)] if cations else []))


def cation_shares(structures, system: str) -> dict[str, float]:
    """Pooled over a set: each of ``system``'s `CATION_SHARES` cations as a share of all of them, and
    O atoms per cation, keyed as `cation_share_columns` ({} for a system without them). A glass can
    be charge-balanced and match the total RDF with the wrong cations; these say which it holds."""
    cations = CATION_SHARES.get(system)
    if not cations:
        return {}
    counts: dict[str, int] = {}
    for atoms in real_atoms(structures):
        for symbol in atoms.get_chemical_symbols():
            counts[symbol] = counts.get(symbol, 0) + 1
    total = sum(counts.get(c, 0) for c in cations)
    out = {f"{c}_cation_share": counts.get(c, 0) / total if total else float("nan") for c in cations}
    out["O_per_cation"] = counts.get("O", 0) / total if total else float("nan")
    return out
