"""Structure checks beside the curves: first-shell coordination, close pairs, energy per atom."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from core.metrics import close_pairs, structure_checks


def diamond():
    return bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)


def test_crystal_silicon_is_fourfold_without_close_pairs():
    checks = structure_checks([diamond()])
    assert checks["rule"] == "Si within 2.85 Å of each Si"
    assert checks["ideal_share"] == 1.0 and checks["coordination"][4] == 1.0 and checks["close_pairs"] == 0.0


def test_close_pairs_are_counted_once_per_structure():
    a, b = diamond(), diamond()
    b.positions[1] = b.positions[0] + [1.6, 0, 0]  # below 0.75 x (1.11 + 1.11) = 1.665 Å
    b.positions[9] = b.positions[8] + [0, 1.7, 0]  # above it
    assert close_pairs([a, b]).tolist() == [0, 1]
    ghost = b.copy()
    ghost.numbers[1] = 0  # a ghost is no atom
    assert close_pairs([ghost]).tolist() == [0]


def test_silica_uses_si_o_bonds():
    cell = 10.0
    atoms = Atoms("SiO4", positions=[[5, 5, 5], [6.61, 5, 5], [3.39, 5, 5], [5, 6.61, 5], [5, 3.39, 5]],
                  cell=[cell] * 3, pbc=True)
    checks = structure_checks([atoms])
    assert checks["rule"] == "O within 2 Å of each Si" and checks["ideal_share"] == 1.0
    atoms.positions[1] = [6.2, 5, 5]  # Si–O 1.2 Å < 0.75 x (1.11 + 0.66)
    assert structure_checks([atoms])["close_pairs"] == 1.0


def test_energy_per_atom_of_diamond_with_stillinger_weber():
    pytest.importorskip("lammps")
    from core.properties import energy_per_atom

    assert energy_per_atom(diamond()) == pytest.approx(-4.3366, abs=1e-3)  # SW's cohesive energy, by design
    squeezed = diamond()
    squeezed.positions[1] = squeezed.positions[0] + [1.6, 0, 0]
    assert energy_per_atom(squeezed) > energy_per_atom(diamond()) + 0.01
    assert np.isfinite(energy_per_atom(squeezed))


def test_energies_of_a_set_share_one_lammps_instance():
    pytest.importorskip("lammps")
    from core.properties import energies_per_atom, energy_per_atom

    rng = np.random.default_rng(0)
    structures = []
    for k in range(3):  # 64, 216, 64 atoms: the shared calculator follows the changing atom count
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2 + (k % 2))
        atoms.positions += rng.normal(0, 0.2, atoms.positions.shape)
        structures.append(atoms)
    assert energies_per_atom(structures) == pytest.approx([energy_per_atom(a) for a in structures], abs=1e-9)
    assert energies_per_atom([]) == []


def test_network_checks_follow_the_system_rules():
    from core.metrics import network_checks, network_columns

    si = network_checks([diamond()], "a-Si")
    assert si == {"Si_4Si_share": 1.0, "close_pairs_per_atom": 0.0, "close_pair_structure_share": 0.0}
    # a-SiO2: one SiO4 unit (O/Si 4) and one SiO2 unit with a 1.1 Å Si–O pair (O/Si 2)
    unit = Atoms("SiO4", positions=[[5, 5, 5], [6.61, 5, 5], [3.39, 5, 5], [5, 6.61, 5], [5, 3.39, 5]],
                 cell=[10.0] * 3, pbc=True)
    pair = Atoms("SiO2", positions=[[5, 5, 5], [6.1, 5, 5], [3.39, 5, 5]], cell=[10.0] * 3, pbc=True)
    c = network_checks([unit, pair], "a-SiO2")
    assert c["Si_4O_share"] == 0.5 and c["O_2Si_share"] == 0.0  # each O has one Si
    assert c["close_pairs_per_atom"] == 1 / 8 and c["close_pair_structure_share"] == 0.5
    assert (c["O_Si_min"], c["O_Si_max"], c["O_Si_within_share"]) == (2.0, 4.0, 0.5)
    assert [key for key, _, _ in network_columns("a-SiO2")] == list(c)
    assert network_columns("a-SiO2")[2][1] == "pairs < 1.2 Å per atom"


def test_meg_rules_first_shells_close_pairs_and_charge_neutrality():
    """MEG's rules on the pilot glasses (every one charge-neutral by construction, formers four-fold)
    and on made-up defects: one O removed, one O pressed onto a Si."""
    from pathlib import Path

    from core.datasets.shards import read_shard
    from core.metrics import network_checks, network_columns
    from core.metrics.checks import OXIDE_VALENCES, charge_per_oxygen

    glasses = read_shard(Path(__file__).resolve().parents[1] / "assets" / "data" / "MEG" / "shard-0001.extxyz.gz")
    c = network_checks(glasses, "MEG")
    assert [key for key, _, _ in network_columns("MEG")] == list(c)
    assert (c["Si_4O_share"], c["P_4O_share"], c["Al_4O_share"]) == pytest.approx((0.994, 0.984, 0.926), abs=1e-3)
    assert c["close_pairs_per_atom"] == 0.0
    assert (c["charge_per_O_min"], c["charge_per_O_max"], c["charge_per_O_within_share"]) == (0.0, 0.0, 1.0)
    short = glasses[1].copy()  # Al18 Ca19 Si56 O158: one O fewer leaves +2 over 157 O
    del short[[k for k, s in enumerate(short.get_chemical_symbols()) if s == "O"][0]]
    assert charge_per_oxygen([short], dict(OXIDE_VALENCES))[0] == pytest.approx(2 / 157)
    many = glasses[1].copy()  # eight O fewer: +16 / 150 > 0.05
    del many[[k for k, s in enumerate(many.get_chemical_symbols()) if s == "O"][:8]]
    pressed = glasses[1].copy()
    si, o = pressed.get_chemical_symbols().index("Si"), pressed.get_chemical_symbols().index("O")
    pressed.positions[o] = pressed.positions[si] + [1.0, 0, 0]
    d = network_checks([short, many, pressed], "MEG")
    assert d["charge_per_O_within_share"] == pytest.approx(2 / 3) and d["charge_per_O_max"] == pytest.approx(16 / 150)
    assert d["close_pair_structure_share"] == pytest.approx(1 / 3)
    labels = [label for _, label, _ in network_columns("MEG")]
    assert labels[:3] == ["Si with 4 O within 2.1 Å %", "P with 4 O within 2 Å %", "Al with 4 O within 2.4 Å %"]
    assert labels[-1] == "|Σq|/N_O ≤ 0.05 %" and labels[3] == "pairs < 1.2 Å per atom"
    # the studio's headline check follows the system: Si–O within 2.1 Å for MEG, 2.0 Å for a-SiO2
    assert structure_checks(glasses, system="MEG")["rule"] == "O within 2.1 Å of each Si"
    assert structure_checks(glasses)["rule"] == "O within 2 Å of each Si"


def test_cation_shares_pool_a_set_and_skip_ghosts():
    """Li2O·SiO2 glass-like counts: 4 Li, 2 Si, 4 O in one structure, 2 Si and 4 O in another, plus
    two ghosts: over the set 4 Li and 4 Si of 8 cations, 8 O, so 50 % each and 1.0 O per cation."""
    from core.datasets.meg import ELEMENTS
    from core.metrics import cation_share_columns, cation_shares

    a = Atoms("Li4Si2O4X2", positions=np.random.default_rng(0).uniform(0, 8, (12, 3)), cell=[8, 8, 8], pbc=True)
    b = Atoms("Si2O4", positions=np.random.default_rng(1).uniform(0, 8, (6, 3)), cell=[8, 8, 8], pbc=True)
    shares = cation_shares([a, b], "MEG")
    assert [key for key, _, _ in cation_share_columns("MEG")] == list(shares)
    assert [key.split("_")[0] for key in shares][:-1] == [e for e in ELEMENTS if e != "O"]  # the dataset's cations
    assert shares["Li_cation_share"] == shares["Si_cation_share"] == 0.5 and shares["O_per_cation"] == 1.0
    assert shares["P_cation_share"] == 0.0 and sum(v for k, v in shares.items() if k != "O_per_cation") == 1.0
    assert cation_shares([a], "a-SiO2") == {} and cation_share_columns("a-Si") == []
