"""MEG (multi-element oxide glass) data: the composition rule, the BMP-shrm potential
(finite, charged, three-body term at the bridging O) and a tiny build that resumes."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from core.datasets import dataset_meta, load_dataset
from core.datasets.build import build
from core.datasets.meg import (
    ELEMENTS,
    MODIFIERS,
    VALENCE,
    MEGEvapCheckRecipe,
    MEGRecipe,
    composition_counts,
    composition_grid,
    random_start,
)
from core.lammps import BMP_SPECIES, Lammps, pair_bmp_shrm
from core.properties import bmp_shrm_calculator, is_meg, li_concentration

TINY_MEG = replace(MEGRecipe(), n_atoms=60, melt_ps=1.0, check_ps=0.5, min_diffusivity=0.0,
                   cooling_rate_K_per_ps=2000.0, final_ps=0.5, fmax=0.1, max_relax_steps=200,
                   frames_per_unit=1)


def test_composition_grid_follows_the_rules():
    grid = composition_grid()
    assert len(grid) == 7 * 495  # former mixes x modifier sets
    for f in grid:
        mods = {el: x for el, x in f.items() if el in MODIFIERS}
        formers = {el: x for el, x in f.items() if el not in MODIFIERS}
        assert sum(f.values()) == pytest.approx(1.0)
        assert len(mods) <= 4 and sum(mods.values()) <= 0.4 + 1e-12
        assert all(round(x * 10, 9).is_integer() and x > 0 for x in mods.values())  # multiples of 10 %
        assert formers and set(formers) <= {"Si", "P"}
        share = 1 - sum(mods.values())
        assert all(round(x / share * 6, 9).is_integer() for x in formers.values())  # sixths of the former share
    assert sum(len([e for e in f if e in MODIFIERS]) == 4 and sum(f[e] for e in f if e in MODIFIERS) > 0.39
               for f in grid) == 7 * 70  # four modifiers only at 10 % each


def test_composition_counts_are_neutral_and_near_the_fractions():
    for f in composition_grid()[::37]:
        c = composition_counts(f, 250)
        assert sum(n * VALENCE[el] for el, n in c.items()) == 0
        assert 240 <= sum(c.values()) <= 260
        n_cat = sum(n for el, n in c.items() if el != "O")
        assert all(abs(c[el] / n_cat - x) < 0.03 for el, x in f.items())
    # P2O5 + Li2O: odd cations, parity fixed by one atom
    c = composition_counts({"P": 0.9, "Li": 0.1}, 250)
    assert c["O"] * 2 == 5 * c["P"] + c["Li"]


def small_glass(seed=0):
    counts = composition_counts({"Si": 0.4, "P": 0.2, "Al": 0.1, "Li": 0.1, "Ca": 0.1, "Zn": 0.1}, 80)
    return random_start(counts, MEGRecipe(), np.random.default_rng(seed))


def test_bmp_shrm_gives_finite_energy_and_forces_on_a_glass():
    atoms = small_glass()
    assert is_meg(atoms) and set(atoms.get_chemical_symbols()) <= set(ELEMENTS)
    atoms.calc = bmp_shrm_calculator()
    e = atoms.get_potential_energy()
    f = atoms.get_forces()
    assert np.isfinite(e) and np.isfinite(f).all()
    assert -12.0 < e / len(atoms) < -2.0  # ionic cohesion, eV/atom
    assert np.abs(f.sum(axis=0)).max() < 1e-6  # Newton's third law


def forces_and_stress(atoms, tabulated):
    with Lammps(atoms, BMP_SPECIES, pair_bmp_shrm(tabulated), atom_style="charge") as lmp:
        lmp.cmd("thermo_style custom step pxx pyy pzz pxy pxz pyz", "run 0")
        n = lmp.lmp.get_natoms()
        order = np.argsort(np.array(lmp.lmp.numpy.extract_atom("id")[:n]))
        forces = np.array(lmp.lmp.numpy.extract_atom("f")[:n])[order]
        return forces, 1e-4 * np.array([lmp.thermo(k) for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")])


def test_tabulated_bmp_shrm_is_the_analytic_potential():
    """The MEG build's MD runs the pair terms from one table per type pair: on a dataset glass
    the forces agree within 1e-3 eV/Å (the elastic relaxations stop at 0.05) and the stresses
    within 2e-3 GPa; the pair function itself equals the analytic terms it tabulates."""
    from core.datasets.shards import read_shard
    from core.lammps import POTENTIALS, bmp_shrm_pair_energy_force

    glass = read_shard(Path(__file__).resolve().parents[1] / "assets/data/MEG/shard-0003.extxyz.gz")[0]
    f_analytic, s_analytic = forces_and_stress(glass, tabulated=False)
    f_table, s_table = forces_and_stress(glass, tabulated=True)
    assert np.abs(f_analytic).max() > 1.0  # a glass off its minimum: the comparison has forces to compare
    assert np.abs(f_table - f_analytic).max() < 1e-3
    assert np.abs(s_table - s_analytic).max() < 2e-3
    text = (POTENTIALS / "BMP-shrm.lammps").read_text()
    r = np.array([1.6, 1.6 + 1e-6])
    e, f = bmp_shrm_pair_energy_force(text, 1, 11, r)  # Si-O
    assert f[0] == pytest.approx(-(e[1] - e[0]) / 1e-6, rel=1e-4)  # F = -dE/dr
    assert -30.0 < e[0] < -10.0  # coulomb-dominated attraction at the bond length, eV


def three_body_energy(center, side, angle_deg=140.0, r=1.6):
    t = np.radians(angle_deg)
    pos = [[10, 10, 10], [10 + r, 10, 10], [10 + r * np.cos(t), 10 + r * np.sin(t), 10]]
    atoms = Atoms([center, side, side], positions=pos, cell=[30, 30, 30], pbc=True)
    with Lammps(atoms, BMP_SPECIES, pair_bmp_shrm(), atom_style="charge") as lmp:
        lmp.cmd("compute e3 all pair nb3b/screened", "thermo_style custom step pe c_e3", "run 0")
        return lmp.lmp.extract_compute("e3", 0, 0)


def test_three_body_term_acts_at_the_bridging_oxygen():
    """E = K (theta - 109.47 deg)^2 exp(-r1 - r2) with K = 12.5 (Si-O-Si), 32.5 (P-O-P) eV/rad^2,
    and nothing for a cation-centred O-T-O angle."""
    screen = np.exp(-3.2)
    assert three_body_energy("O", "Si") == pytest.approx(12.5 * np.radians(140 - 109.47) ** 2 * screen, rel=1e-9)
    assert three_body_energy("O", "P") == pytest.approx(32.5 * np.radians(140 - 109.47) ** 2 * screen, rel=1e-9)
    assert three_body_energy("Si", "O") == 0.0 and three_body_energy("P", "O") == 0.0
    assert three_body_energy("O", "P", r=2.1) == 0.0  # beyond the 2.0 Å O-P cutoff
    assert three_body_energy("O", "Si", r=2.1) > 0.0  # within the 3.3 Å O-Si cutoff


def test_tiny_meg_build_has_all_properties_and_resumes(tmp_path):
    out = tmp_path / "MEG"
    meta = build("meg", 1, out, seed=1, recipe=TINY_MEG, progress=False)
    assert meta["elements"] == list(ELEMENTS) and meta["shards"] == {"0000": 1}
    assert {p: e["unit"] for p, e in meta["properties"].items()} == {
        "youngs_modulus": "GPa", "shear_modulus": "GPa", "li_concentration": "%"}
    first = (out / "shard-0000.extxyz.gz").read_bytes()
    meta = build("meg", 2, out, seed=1, recipe=TINY_MEG, progress=False)  # resume: one more unit
    assert (out / "shard-0000.extxyz.gz").read_bytes() == first
    assert meta["n_structures"] == 2 and dataset_meta(out)["shard_recipe"] == {"0000": "melt-quench", "0001": "melt-quench"}
    frames = load_dataset(out)
    assert [a.info["id"] for a in frames] == [0, 1]
    for a in frames:
        assert 50 <= len(a) <= 70 and set(a.get_chemical_symbols()) <= set(ELEMENTS)
        charge = sum(VALENCE[s] for s in a.get_chemical_symbols())
        assert charge == 0
        e, g = a.info["youngs_modulus"], a.info["shear_modulus"]
        assert 5.0 < g < e < 400.0  # GPa; E = 2G(1 + nu) > G
        assert a.info["li_concentration"] == pytest.approx(li_concentration(a))
        assert a.info["melt_temperature"] == TINY_MEG.t_melt and a.info["melt_slowest"] in ELEMENTS
        assert a.info["melt_diffusivity"] > 0 and a.info["cpu_elastic_s"] > 0
        assert 0.04 < len(a) / a.get_volume() < 0.12  # atoms/Å^3: condensed, not exploded
    with pytest.raises(Exception, match="different parameters"):
        build("meg", 3, out, seed=1, recipe=replace(TINY_MEG, melt_ps=2.0), progress=False)


def test_melt_check_raises_the_temperature_until_the_slowest_element_moves():
    from core.datasets.meg import melt_quench

    r = replace(TINY_MEG, min_diffusivity=1e6, t_melt=3000.0, melt_step_K=1000.0, t_melt_max=5000.0)
    start = random_start(composition_counts({"Si": 0.7, "Li": 0.3}, 45), r, np.random.default_rng(2))
    atoms = melt_quench(start, r, np.random.default_rng(3))
    assert atoms.info["melt_temperature"] == 5000.0  # 3000 -> 4000 -> 5000, never satisfied, capped
    assert atoms.info["melt_diffusivity"] < 1e6


def evap_check_melt(**params):
    from core.datasets.meg import melt_quench

    r = MEGEvapCheckRecipe(**{k: getattr(TINY_MEG, k) for k in ("n_atoms", "melt_ps", "check_ps", "min_diffusivity",
                                                                  "cooling_rate_K_per_ps", "final_ps")},
                           volume_sample_ps=0.1, expansion_window_ps=0.2, **params)
    start = random_start(composition_counts({"Si": 0.7, "K": 0.3}, 60), r, np.random.default_rng(2))
    return melt_quench(start, r, np.random.default_rng(3)), r


def test_evaporation_check_melts_cooler_while_the_volume_grows():
    """Any growth of the 0.2 ps mean volume counts as evaporation here (max_expansion 1): the
    melt is begun again 500 K cooler until t_melt_min, where it is kept and its growth recorded."""
    atoms, r = evap_check_melt(max_expansion=1.0)
    assert (r.t_melt, r.melt_step_K, r.t_melt_min) == (3500.0, 500.0, 2500.0)
    assert atoms.info["melt_temperature"] == 2500.0  # 3500 -> 3000 -> 2500, the floor
    assert atoms.info["melt_expansion"] > 1.0


def test_evaporation_check_leaves_a_condensed_melt_alone():
    atoms, r = evap_check_melt(max_expansion=10.0)
    assert atoms.info["melt_temperature"] == 3500.0
    assert 1.0 <= atoms.info["melt_expansion"] < 10.0
    assert 0.04 < len(atoms) / atoms.get_volume() < 0.12  # atoms/Å^3
