"""Property calculators against references: analytic Stillinger–Weber elastic constants,
crystal symmetry, ring sizes of crystals and of hand-made networks, ghost handling."""

import numpy as np
import pytest
from ase import Atoms
from ase.spacegroup import crystal

from core.properties import (
    elastic_constants,
    find_rings,
    li_concentration,
    ring_size_distribution,
    ring_size_mean,
    shear_modulus,
    young_modulus_from,
)


def beta_cristobalite() -> Atoms:
    """Idealised beta-cristobalite (Fd-3m): Si on diamond sites, O at the Si–Si midpoints."""
    return crystal(["Si", "O"], basis=[(0, 0, 0), (0.125, 0.125, 0.125)], spacegroup=227,
                   cellpar=[7.16, 7.16, 7.16, 90, 90, 90])


def alpha_quartz() -> Atoms:
    return crystal(["Si", "O"], basis=[(0.4697, 0, 2 / 3), (0.4135, 0.2669, 0.1191 + 2 / 3)],
                   spacegroup=154, cellpar=[4.916, 4.916, 5.405, 90, 90, 120])


def with_ghosts(atoms: Atoms, n: int, seed: int = 0) -> Atoms:
    out = atoms.copy()
    rng = np.random.default_rng(seed)
    ghosts = Atoms(numbers=[0] * n, positions=rng.uniform(0, 1, (n, 3)) @ np.asarray(atoms.cell))
    return out + ghosts


# ---------------------------------------------------------------- elastic constants


def test_elastic_constants_of_sw_silicon_match_the_analytic_values():
    """Cowley (1988): relaxed SW diamond Si has C11 151.4, C12 76.4, C44 56.4 GPa. Pure Si gets
    Stillinger–Weber (the a-Si data's potential) by default, so no calculator is passed."""
    from ase.build import bulk

    c = elastic_constants(bulk("Si", "diamond", 5.43, cubic=True))
    assert c[0, 0] == pytest.approx(151.4, rel=0.01)
    assert c[0, 1] == pytest.approx(76.4, rel=0.01)
    assert c[3, 3] == pytest.approx(56.4, rel=0.01)
    assert np.allclose(c, c.T)
    assert np.abs(c[:3, 3:]).max() < 0.5  # cubic: no normal-shear coupling
    e = young_modulus_from(c)
    assert e == pytest.approx((c[0, 0] - c[0, 1]) * (c[0, 0] + 2 * c[0, 1]) / (c[0, 0] + c[0, 1]), rel=1e-3)


def test_shear_modulus_of_beta_cristobalite_tersoff():
    """Tersoff (Munetoh) on idealised beta-cristobalite: cubic, so C44 = C55 = C66 and
    G = C44. 44.1 GPa is this code's value (relaxed a = 7.6 Å); it pins regressions."""
    cr = beta_cristobalite()
    c = elastic_constants(cr)
    assert c[3, 3] == pytest.approx(c[4, 4], rel=1e-3) and c[3, 3] == pytest.approx(c[5, 5], rel=1e-3)
    assert c[0, 0] == pytest.approx(c[1, 1], rel=1e-3)
    g = shear_modulus(cr)
    assert g == pytest.approx(c[3, 3], rel=1e-3)
    assert g == pytest.approx(44.1, abs=1.0)


def test_shear_modulus_ignores_ghost_atoms():
    cr = beta_cristobalite()
    assert shear_modulus(with_ghosts(cr, 5)) == pytest.approx(shear_modulus(cr), rel=1e-6)


def test_default_potential_refuses_other_elements():
    with pytest.raises(ValueError, match="Na"):
        shear_modulus(Atoms("Na2O", positions=[[0, 0, 0], [2, 0, 0], [1, 1, 0]], cell=[5, 5, 5], pbc=True))


# ---------------------------------------------------------------- rings


def test_crystal_rings_are_six_membered():
    assert set(ring_size_distribution(beta_cristobalite())) == {6}
    assert ring_size_mean(beta_cristobalite().repeat(2)) == 6.0
    assert set(ring_size_distribution(alpha_quartz())) == {6}


def ladder(shift=(0.0, 0.0, 0.0), cell=20.0) -> Atoms:
    """Two Si4O4 squares sharing one Si–O–Si edge (a 2x1 ladder), Si–O 1.5 Å, in a box."""
    si = [(x, y) for y in (0, 3) for x in (0, 3, 6)]
    o = [(1.5, 0), (4.5, 0), (1.5, 3), (4.5, 3), (0, 1.5), (3, 1.5), (6, 1.5)]
    pos = [(x, y, 0.0) for x, y in si + o]
    atoms = Atoms(["Si"] * 6 + ["O"] * 7, positions=pos, cell=[cell] * 3, pbc=True)
    atoms.translate(shift)
    atoms.wrap()
    return atoms


def test_hand_made_network_has_exactly_its_two_shortest_rings():
    """Shortest ring through every bond: the two squares (4 Si each); the outer 6-Si ring
    is never the shortest, so it is not counted."""
    assert ring_size_distribution(ladder()) == {4: 2}
    assert ring_size_mean(ladder()) == 4.0
    assert sorted(len(r) for r in find_rings(ladder())) == [8, 8]


def test_rings_across_the_cell_boundary_and_in_a_tight_cell():
    """The same network written across the periodic boundary, in a cell barely larger than
    it (8.5 Å, images 2.5 Å apart along x), still has exactly its two squares."""
    assert ring_size_distribution(ladder(shift=(-1.0, -1.0, 0.0), cell=8.5)) == {4: 2}


def test_a_chain_that_only_wraps_around_the_cell_is_no_ring():
    chain = Atoms("SiOSiO", positions=[(0, 0, 0), (1.5, 0, 0), (3, 0, 0), (4.5, 0, 0)],
                  cell=[6.0, 15.0, 15.0], pbc=True)
    assert find_rings(chain) == []
    assert np.isnan(ring_size_mean(chain))


def test_rings_ignore_ghosts_and_return_indices_of_the_input():
    atoms = ladder() + Atoms(numbers=[0, 0], positions=[(1.5, 1.5, 0.0), (4.5, 1.5, 0.0)])
    ghost_first = atoms[[13, 14] + list(range(13))]
    assert ring_size_distribution(ghost_first) == {4: 2}
    for ring in find_rings(ghost_first):
        assert all(ghost_first.numbers[i] != 0 for i in ring)


# ---------------------------------------------------------------- composition


def test_li_concentration_excludes_ghosts():
    atoms = Atoms("Li2SiO3", positions=np.zeros((6, 3)), cell=[5, 5, 5], pbc=True)
    assert li_concentration(atoms) == pytest.approx(100 * 2 / 6)  # in %
    assert li_concentration(with_ghosts(atoms, 4)) == pytest.approx(100 * 2 / 6)
    with pytest.raises(ValueError):
        li_concentration(Atoms(numbers=[0, 0], cell=[5, 5, 5]))


def test_measure_property_by_name_passes_relaxation_options_to_moduli_only(monkeypatch):
    from core.errors import UserError
    from core.properties import registry

    atoms = Atoms("Li2Si2O4", positions=np.arange(24.0).reshape(8, 3), cell=[10.0] * 3, pbc=True)
    assert registry.measure_property("li_concentration", atoms, fmax=0.01, steps=3) == pytest.approx(25.0)  # in %
    seen = {}
    monkeypatch.setitem(registry.PROPERTIES, "shear_modulus", lambda a, **kw: seen.update(kw) or 30.0)
    assert registry.measure_property("shear_modulus", atoms, fmax=0.01, steps=3) == 30.0
    assert seen == {"fmax": 0.01, "steps": 3}
    with pytest.raises(UserError, match="no function measures property 'density'"):
        registry.measure_property("density", atoms)


def test_meg_young_then_shear_modulus_run_the_protocol_once(monkeypatch):
    """E and G of one MEG glass asked for one after the other share one protocol run; another
    structure (one atom moved 0.1 Å) or other settings run it again."""
    from pathlib import Path

    from core.datasets.shards import read_shard
    from core.properties import elastic

    glass = read_shard(Path(__file__).resolve().parents[1] / "assets/data/MEG/shard-0000.extxyz.gz")[0]
    runs = []
    real = elastic.elastic_constants
    monkeypatch.setattr(elastic, "elastic_constants", lambda *a, **k: runs.append(1) or real(*a, **k))
    monkeypatch.setattr(elastic, "_MEG_CACHE", {})
    assert elastic.protocol_steps(glass) == elastic.MEG_STEPS
    e, g = elastic.young_modulus(glass, steps=10), elastic.shear_modulus(glass, steps=10)
    assert len(runs) == 1
    assert elastic.meg_elastic_moduli(glass, steps=10) == (e, g)
    assert len(runs) == 1
    moved = glass.copy()
    moved.positions[0] += 0.1
    elastic.shear_modulus(moved, steps=10)
    elastic.shear_modulus(glass, steps=11)
    assert len(runs) == 3
    assert elastic.protocol_steps(beta_cristobalite()) == elastic.MAX_STEPS
