"""Structure checks that read beside the RDF/ADF curves: first-shell coordination and close pairs.

The curves average over every atom; these count defects one atom or one pair at a time, so
a set can match the RDF and still show atoms pressed together or under-coordinated.
"""

from __future__ import annotations

import numpy as np
from ase.data import covalent_radii

from core.metrics.bonds import coordination
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


def first_shell(structures) -> tuple[str, str, float, int]:
    """The headline `FIRST_SHELL` rule for these structures' chemistry (a-SiO2's when any oxygen
    is present)."""
    symbols = {s for a in real_atoms(structures) for s in a.get_chemical_symbols()}
    return FIRST_SHELL["a-SiO2" if "O" in symbols else "a-Si"][0]


def close_pairs(structures, factor: float = CLOSE_PAIR_FACTOR) -> np.ndarray:
    """Number of atom pairs (each counted once) closer than ``factor`` x the sum of their covalent
    radii, one count per structure (ghosts excluded)."""
    atoms_list = real_atoms(structures)
    radii = np.asarray(covalent_radii)
    largest = max(radii[a.numbers].max() for a in atoms_list)
    out = np.zeros(len(atoms_list), dtype=np.int64)
    for start, batch in pair_batches(atoms_list, 2 * factor * largest, full_list=False, vectors=False):
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
