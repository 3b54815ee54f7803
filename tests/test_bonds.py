"""Coordination numbers and bond lengths on crystals with known neighbour shells."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from core.metrics import MetricInputError, coordination, neighbour_pairs


def silicon_with_bridging_oxygen():
    """Diamond Si (a = 5.43 Å) with an O on every Si–Si bond midpoint: SiO2 topology,
    every Si bonded to 4 O and every O to 2 Si at half the Si–Si distance."""
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    i, j, shifts = neighbor_list("ijS", si, 2.5)
    keep = i < j
    mid = 0.5 * (si.positions[i[keep]] + si.positions[j[keep]] + shifts[keep] @ si.cell.array)
    oxygen = Atoms("O" * len(mid), positions=mid, cell=si.cell, pbc=True)
    oxygen.wrap()
    return si + oxygen


def test_diamond_silicon_is_four_fold():
    si = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    counts, lengths = neighbour_pairs(si, "Si", "Si", 2.6)
    assert counts.tolist() == [4] * len(si)
    assert np.allclose(lengths, 5.43 * np.sqrt(3) / 4)
    frac = coordination(si, "Si", "Si", 2.6)
    assert frac[4] == 1.0 and frac.sum() == pytest.approx(1.0)
    # the second shell (12 at a/sqrt(2) = 3.84 Å) joins at a larger cutoff; capped at max_count
    assert coordination(si, "Si", "Si", 4.0, max_count=8)[8] == 1.0


def test_bridging_oxygen_counts_both_ways():
    sio2 = silicon_with_bridging_oxygen()
    assert sio2.get_chemical_symbols().count("O") == 2 * sio2.get_chemical_symbols().count("Si")
    counts, lengths = neighbour_pairs(sio2, "Si", "O", 1.5)
    assert counts.tolist() == [4] * 8
    assert np.allclose(lengths, 5.43 * np.sqrt(3) / 8)
    assert neighbour_pairs(sio2, "O", "Si", 1.5)[0].tolist() == [2] * 16
    # two structures: counts concatenate, fractions are over all centre atoms
    assert coordination([sio2, sio2[:8]], "Si", "O", 1.5)[[0, 4]].tolist() == [0.5, 0.5]


def test_bad_input():
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    with pytest.raises(MetricInputError, match="unknown element"):
        neighbour_pairs(si, "Xx", "Si", 2.6)
    with pytest.raises(MetricInputError, match="r_cut"):
        coordination(si, "Si", "Si", float("nan"))
    assert np.isnan(coordination(si, "O", "Si", 2.0)).all()
