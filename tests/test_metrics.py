"""Structural and inverse-design metrics: agreement with ASE and a loop reference, symmetries, closed forms."""

import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.geometry.analysis import Analysis
from ase.neighborlist import NeighborList, neighbor_list

import core.metrics.structures as metric_structures
from core.material import MaterialSample
from core.metrics import (
    MetricInputError,
    adf,
    averaged,
    curve_rmsd,
    curve_rmsd_split,
    inverse_errors,
    mae,
    mape,
    rdf,
    rmse,
    structure_rmsd,
)

CUBIC = np.diag([10.6, 10.6, 10.6])
TRICLINIC = np.array([[11.0, 0.0, 0.0], [3.1, 11.2, 0.0], [-2.4, 1.9, 10.8]])


def random_structure(cell, n=60, seed=0, symbols=("Si", "O")):
    """Random positions in `cell` (Å) with two species, like an unrelaxed amorphous guess."""
    rng = np.random.default_rng(seed)
    species = rng.choice(symbols, size=n)
    return Atoms(symbols=list(species), scaled_positions=rng.random((n, 3)), cell=cell, pbc=True)


def ase_rdf(atoms, r_max=5.0, n_bins=100):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Analysis.get_rdf is deprecated, still the paper's tool
        return Analysis(atoms).get_rdf(rmax=r_max, nbins=n_bins)[0]


def reference_adf(atoms, r_cut=3.0, n_bins=180):
    """Straightforward ADF: explicit loops over centres and neighbour pairs (ase.neighborlist)."""
    atoms = atoms[atoms.numbers != 0]
    nl = NeighborList([r_cut / 2] * len(atoms), skin=0.0, self_interaction=False, bothways=True)
    nl.update(atoms)
    angles = []
    for i in range(len(atoms)):
        js, offsets = nl.get_neighbors(i)
        vectors = atoms.positions[js] + offsets @ atoms.cell.array - atoms.positions[i]
        for a in range(len(js)):
            for b in range(a + 1, len(js)):
                u, v = vectors[a], vectors[b]
                cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
                angles.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    hist, _ = np.histogram(angles, bins=n_bins, range=(0.0, 180.0))
    return hist / (hist.sum() * 180.0 / n_bins)


# ----------------------------------------------------------------------------- RDF


@pytest.mark.parametrize("cell", [CUBIC, TRICLINIC], ids=["cubic", "triclinic"])
def test_rdf_matches_ase_analysis(cell):
    structures = [random_structure(cell, n=60 + 10 * s, seed=s) for s in range(4)]
    r, g = rdf(structures)
    assert g.shape == (4, 100)
    np.testing.assert_allclose(r, np.linspace(0.025, 4.975, 100), atol=1e-12)
    for atoms, ours in zip(structures, g):
        np.testing.assert_allclose(ours, ase_rdf(atoms), rtol=0, atol=1e-6)
    assert g.max() > 0.5  # the comparison is not between two empty curves


def test_rdf_matches_ase_with_other_binning():
    atoms = random_structure(TRICLINIC, n=80, seed=7)
    _, g = rdf(atoms, r_max=4.0, n_bins=37)
    np.testing.assert_allclose(g[0], ase_rdf(atoms, 4.0, 37), rtol=0, atol=1e-6)


def test_rdf_small_cell_counts_all_periodic_images():
    """Cells thinner than 2·r_max (ASE's get_rdf refuses them) use every image within r_max."""
    atoms = random_structure(np.array([[4.0, 0, 0], [1.0, 4.5, 0], [0.5, 0.3, 3.9]]), n=5, seed=3)
    _, g = rdf(atoms)
    d = neighbor_list("d", atoms, 5.0)  # each unordered pair twice, self-images included
    counts = np.bincount(np.ceil(d / 0.05).astype(int) - 1, minlength=100)[:100]
    edges = np.linspace(0, 5.0, 101)
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    expected = counts / (len(atoms) ** 2 / atoms.cell.volume * shell)
    np.testing.assert_allclose(g[0], expected, rtol=1e-9)


def test_rdf_of_diamond_silicon_closed_form():
    """Diamond Si (a = 5.43 Å): 4 neighbours at a·√3/4 = 2.3513 Å, 12 at a/√2 = 3.8396 Å."""
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    _, g = rdf(atoms)
    rho = len(atoms) / atoms.cell.volume
    edges = np.linspace(0, 5.0, 101)
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    first, second = 47, 76  # bins (2.35, 2.40] and (3.80, 3.85]
    assert g[0, first] == pytest.approx(4 / (rho * shell[first]), rel=1e-12)
    assert g[0, second] == pytest.approx(12 / (rho * shell[second]), rel=1e-12)
    assert np.count_nonzero(g[0, :first]) == 0


def test_rdf_of_ideal_gas_tends_to_one():
    atoms = random_structure(np.diag([16.0, 16.0, 16.0]), n=2000, seed=11, symbols=("Si",))
    _, g = rdf(atoms)
    assert np.mean(g[0, 60:]) == pytest.approx(1.0, abs=0.03)  # r in 3..5 Å


# ----------------------------------------------------------------------------- ADF


@pytest.mark.parametrize(
    "cell",
    [CUBIC, TRICLINIC, np.array([[5.2, 0, 0], [1.4, 4.9, 0], [0.6, -0.8, 5.1]])],
    ids=["cubic", "triclinic", "smaller-than-2-cutoffs"],
)
def test_adf_matches_loop_reference(cell):
    structures = [random_structure(cell, n=70, seed=s) for s in range(3)]
    theta, p = adf(structures)
    assert p.shape == (3, 180)
    np.testing.assert_allclose(theta, np.arange(180) + 0.5, atol=1e-12)
    for atoms, ours in zip(structures, p):
        np.testing.assert_allclose(ours, reference_adf(atoms), rtol=0, atol=1e-12)
        assert ours.sum() == pytest.approx(1.0, abs=1e-12)  # density per degree, 1° bins


def test_adf_other_binning_is_normalised_per_degree():
    atoms = random_structure(TRICLINIC, n=90, seed=5)
    theta, p = adf(atoms, r_cut=3.5, n_bins=36)
    np.testing.assert_allclose(p[0], reference_adf(atoms, 3.5, 36), atol=1e-12)
    assert p[0].sum() * 5.0 == pytest.approx(1.0, abs=1e-12)
    assert theta[0] == pytest.approx(2.5)


def test_adf_of_diamond_silicon_is_the_tetrahedral_angle():
    """Every angle between nearest neighbours in diamond is arccos(-1/3) = 109.47°."""
    _, p = adf(bulk("Si", "diamond", a=5.43, cubic=True).repeat(2))
    expected = np.zeros(180)
    expected[109] = 1.0
    np.testing.assert_allclose(p[0], expected, atol=1e-12)


def test_adf_without_triplets_is_zero():
    atoms = Atoms("Si2", positions=[[0, 0, 0], [5, 5, 5]], cell=CUBIC, pbc=True)
    _, p = adf(atoms)
    assert not p.any()


# ----------------------------------------------------------------------------- symmetries and ghosts


@pytest.mark.parametrize("metric", [rdf, adf])
def test_metrics_invariant_under_permutation_translation_and_images(metric):
    atoms = random_structure(TRICLINIC, n=80, seed=2)
    _, base = metric(atoms)
    rng = np.random.default_rng(0)

    permuted = atoms[rng.permutation(len(atoms))]
    translated = atoms.copy()
    translated.translate(rng.normal(size=3) * 4.0)
    translated.wrap()
    imaged = atoms.copy()  # each atom written in some other periodic image
    imaged.positions += rng.integers(-2, 3, size=(len(atoms), 3)) @ atoms.cell.array

    for other in (permuted, translated, imaged):
        _, g = metric(other)
        np.testing.assert_allclose(g, base, atol=1e-9)


@pytest.mark.parametrize("metric", [rdf, adf])
def test_ghost_atoms_are_excluded(metric):
    atoms = random_structure(TRICLINIC, n=60, seed=4)
    sample = MaterialSample.from_atoms(atoms).pad_ghosts(0.11, np.random.default_rng(0))
    assert sample.n_real == 60 and len(sample.numbers) > 100
    with_ghosts = sample.to_atoms(strip_ghosts=False)
    _, base = metric(atoms)
    _, g_atoms = metric(with_ghosts)
    _, g_sample = metric(sample)
    np.testing.assert_array_equal(g_atoms, base)
    np.testing.assert_array_equal(g_sample, base)
    # Ghosts counted as atoms would change both the density and the pairs:
    counted = with_ghosts.copy()
    counted.numbers[counted.numbers == 0] = 14
    assert np.abs(metric(counted)[1] - base).max() > 0.01


def test_batching_chunks_give_the_same_curves(monkeypatch):
    structures = [random_structure(TRICLINIC, n=40 + s, seed=s) for s in range(5)]
    _, g_all = rdf(structures)
    _, p_all = adf(structures)
    monkeypatch.setattr(metric_structures, "CHUNK_ATOMS", 80)  # chunks of 2, 2 and 1 structures
    assert [len(b) for _, b in metric_structures._chunks(metric_structures.real_atoms(structures))] == [2, 2, 1]
    np.testing.assert_array_equal(rdf(structures)[1], g_all)
    np.testing.assert_array_equal(adf(structures)[1], p_all)


@pytest.mark.parametrize(
    "atoms, message",
    [
        (Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], cell=CUBIC, pbc=[True, True, False]), "periodicity"),
        (Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], pbc=True), "zero volume"),
        (Atoms("X2", positions=[[0, 0, 0], [1, 1, 1]], cell=CUBIC, pbc=True), "no real"),
        (Atoms("Si2", positions=[[0, 0, 0], [np.nan, 1, 1]], cell=CUBIC, pbc=True), "NaN"),
    ],
    ids=["not-periodic", "no-cell", "only-ghosts", "nan"],
)
def test_unusable_structures_raise(atoms, message):
    with pytest.raises(MetricInputError, match=message):
        rdf([random_structure(CUBIC), atoms])
    assert issubclass(MetricInputError, ValueError)


# ----------------------------------------------------------------------------- RMSD


def test_curve_rmsd_closed_form():
    assert curve_rmsd(np.ones(100), np.full(100, 1.5)) == pytest.approx(0.5)
    assert curve_rmsd([0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 1.0, 1.0]) == pytest.approx(1.0)
    # Sets are averaged over structures first: [[0, 2], [2, 0]] averages to [1, 1].
    assert curve_rmsd([[0.0, 2.0], [2.0, 0.0]], [[1.0, 1.0]]) == 0.0
    np.testing.assert_allclose(averaged([[0.0, 2.0], [2.0, 4.0]]), [1.0, 3.0])
    with pytest.raises(MetricInputError, match="bins"):
        curve_rmsd(np.ones(100), np.ones(99))


def test_curve_rmsd_split_shares_the_squared_error_by_band():
    r = np.array([1.0, 2.0, 2.5, 3.0])
    a, b = np.array([1.0, 0.0, 2.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0])  # squared errors 1, 0, 4, 1
    split = curve_rmsd_split(a, b, r, [2.2, 2.8])
    assert list(split) == ["< 2.2", "2.2–2.8", "> 2.8", "without < 2.2"]
    assert [split[k] for k in ("< 2.2", "2.2–2.8", "> 2.8")] == pytest.approx([1 / 6, 4 / 6, 1 / 6])
    assert split["without < 2.2"] == pytest.approx(np.sqrt(5 / 4))  # the 1.0 Å bin matched
    assert curve_rmsd(a, b) == pytest.approx(np.sqrt(6 / 4))
    assert curve_rmsd_split(a, a, r, [2.2])["< 2.2"] == 0.0
    with pytest.raises(MetricInputError, match="ascending"):
        curve_rmsd_split(a, b, r, [2.8, 2.2])
    with pytest.raises(MetricInputError, match="length"):
        curve_rmsd_split(a, b, r[:3], [2.2])


def test_structure_rmsd():
    structures = [random_structure(TRICLINIC, n=70, seed=s) for s in range(4)]
    same = structure_rmsd(structures, structures[::-1])
    assert same["rdf"] == pytest.approx(0.0, abs=1e-12) and same["adf"] == pytest.approx(0.0, abs=1e-12)
    diamond = [bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)]
    result = structure_rmsd(diamond, structures)
    _, g_d = rdf(diamond)
    _, g_s = rdf(structures)
    _, p_d = adf(diamond)
    _, p_s = adf(structures)
    assert result["rdf"] == pytest.approx(np.sqrt(np.mean((g_d[0] - g_s.mean(0)) ** 2)), rel=1e-12)
    assert result["adf"] == pytest.approx(np.sqrt(np.mean((p_d[0] - p_s.mean(0)) ** 2)), rel=1e-12)
    assert result["rdf"] > 1.0 and result["adf"] > 0.01  # crystal vs random: far apart


# ----------------------------------------------------------------------------- inverse design


def test_inverse_metrics_closed_form():
    target, achieved = [10.0, 20.0, 40.0], [11.0, 18.0, 44.0]
    assert mae(target, achieved) == pytest.approx(7 / 3)
    assert rmse(target, achieved) == pytest.approx(np.sqrt(7.0))
    assert mape(target, achieved) == pytest.approx(10.0)
    assert mae(20.0, [18.0, 23.0]) == pytest.approx(2.5)  # one target, many samples
    assert mape(-4.0, [-3.0]) == pytest.approx(25.0)


def test_inverse_slope_closed_form():
    from core.metrics import slope

    assert slope([10.0, 20.0, 30.0], [12.0, 17.0, 22.0]) == pytest.approx(0.5)  # achieved = 7 + t / 2
    assert slope([10.0, 20.0, np.nan, 30.0], [5.0, 5.0, 1.0, 5.0]) == pytest.approx(0.0)  # target ignored
    assert inverse_errors([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])["slope"] == pytest.approx(2.0)
    assert np.isnan(inverse_errors(5.0, [4.0, 6.0])["slope"])  # one target: no slope
    with pytest.raises(MetricInputError, match="two distinct targets"):
        slope([3.0, 3.0], [1.0, 2.0])


def test_inverse_metrics_nan_handling():
    target, achieved = [10.0, 20.0, 40.0, 5.0], [11.0, 18.0, 44.0, np.nan]
    assert mae(target, achieved) == pytest.approx(7 / 3)  # the failed sample is left out
    errors = inverse_errors(target, achieved)
    assert errors["n"] == 3 and errors["n_missing"] == 1
    assert errors["rmse"] == pytest.approx(np.sqrt(7.0)) and errors["mape"] == pytest.approx(10.0)
    with pytest.raises(MetricInputError, match="1 of 4 pairs contain NaN"):
        rmse(target, achieved, nan="raise")
    with pytest.raises(MetricInputError, match="all 2 pairs"):
        mae([1.0, 2.0], [np.nan, np.nan])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mape([0.0, 1.0], [1.0, 1.0]), "target of 0"),
        (lambda: mae([1.0, 2.0], [1.0, 2.0, 3.0]), "shape"),
        (lambda: rmse([], []), "no values"),
        (lambda: mae([1.0], [np.inf]), "inf"),
    ],
    ids=["mape-zero-target", "shape", "empty", "inf"],
)
def test_inverse_metrics_errors(call, message):
    with pytest.raises(MetricInputError, match=message):
        call()
