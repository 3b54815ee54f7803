"""Material samples: ghosts, ase round trip, extxyz io and its validation, batching."""

import gzip
import math

import numpy as np
import pytest
from ase import Atoms

from core.errors import StructureFileError, UserError
from core.material import GHOST, MaterialSample, collate, read_structures, write_structures


def _si_sample(n=8, L=6.0, seed=0, **props):
    rng = np.random.default_rng(seed)
    return MaterialSample(np.eye(3) * L, rng.random((n, 3)) * L, np.full(n, 14), props)


def test_pad_ghosts_reaches_floor_rho_v_and_strip_restores():
    s = _si_sample(n=8, L=6.0)  # V = 216 Å^3
    padded = s.pad_ghosts(0.11, np.random.default_rng(0))
    assert len(padded.numbers) == math.floor(0.11 * 216) == 23
    assert np.count_nonzero(padded.numbers == GHOST) == 15
    assert padded.n_real == 8
    frac = np.linalg.solve(padded.cell.T, padded.positions.T).T
    assert np.all((frac >= 0) & (frac < 1))
    stripped = padded.strip_ghosts()
    np.testing.assert_array_equal(stripped.positions, s.positions)
    np.testing.assert_array_equal(stripped.numbers, s.numbers)
    # re-padding replaces the ghosts instead of adding more
    assert len(padded.pad_ghosts(0.11, np.random.default_rng(1)).numbers) == 23


def test_pad_ghosts_refuses_rho_below_density():
    with pytest.raises(UserError, match="rho_max"):
        _si_sample(n=30, L=6.0).pad_ghosts(0.11, np.random.default_rng(0))


def test_atoms_round_trip_keeps_properties_and_drops_ghosts():
    s = _si_sample(shear_modulus=31.5, ring_size_mean=math.nan)
    padded = s.pad_ghosts(0.11, np.random.default_rng(0))
    atoms = padded.to_atoms()
    assert len(atoms) == 8 and all(atoms.pbc)
    assert atoms.info == {"shear_modulus": 31.5}
    back = MaterialSample.from_atoms(atoms, ["shear_modulus", "ring_size_mean"])
    assert back.properties["shear_modulus"] == 31.5 and math.isnan(back.properties["ring_size_mean"])
    np.testing.assert_allclose(back.positions, s.positions)


def test_extxyz_round_trip_with_info(tmp_path):
    samples = [_si_sample(seed=k, shear_modulus=20.0 + k) for k in range(3)]
    path = tmp_path / "set.extxyz"
    write_structures(path, samples)
    frames = read_structures(path)
    assert [f.info["shear_modulus"] for f in frames] == [20.0, 21.0, 22.0]
    np.testing.assert_allclose(frames[2].positions, samples[2].positions, atol=1e-8)
    # gzip is read transparently
    gz = tmp_path / "set.extxyz.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert len(read_structures(gz)) == 3


@pytest.mark.parametrize("content, problem", [
    ("", "file is empty"),
    ("3\nnot a header\nSi 0 0\n", "cannot parse"),
    ('2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"\nSi 0 0 0\nQq 1 1 1\n', "unknown element"),
    ('1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"\nSi nan 0 0\n', "NaN"),
    ('1\nProperties=species:S:1:pos:R:3 pbc="F F F"\nSi 0 0 0\n', "not periodic"),
    ('1\nLattice="0 0 0 0 0 0 0 0 0" Properties=species:S:1:pos:R:3 pbc="T T T"\nSi 0 0 0\n', "no cell"),
])
def test_bad_files_give_one_line_errors_naming_file(tmp_path, content, problem):
    path = tmp_path / "bad.extxyz"
    path.write_text(content)
    with pytest.raises(StructureFileError) as info:
        read_structures(path)
    message = str(info.value)
    assert message.startswith(str(path)) and problem in message and "\n" not in message


def test_missing_file():
    with pytest.raises(StructureFileError, match="file not found"):
        read_structures("/nonexistent/x.extxyz")


def test_collate_fields():
    a = _si_sample(n=4, shear_modulus=30.0).pad_ghosts(0.11, np.random.default_rng(0))
    b = MaterialSample(np.eye(3) * 5.0, np.zeros((3, 3)), [14, 8, 8], {})
    batch = collate([a, b], species=(14, 8), property_names=("shear_modulus",))
    assert batch.pos.shape == (len(a.numbers) + 3, 3)
    assert batch.cell.shape == (2, 3, 3)
    assert batch.element[-3:].tolist() == [1, 2, 2]
    assert int((batch.element[: len(a.numbers)] == 0).sum()) == len(a.numbers) - 4
    assert batch.y[0, 0] == 30.0 and math.isnan(float(batch.y[1, 0]))
    assert batch.natoms.tolist() == [len(a.numbers), 3]
    with pytest.raises(UserError, match="not one this model knows"):
        collate([MaterialSample(np.eye(3) * 5, np.zeros((1, 3)), [3])], species=(14,))


def test_from_atoms_reads_only_named_properties():
    atoms = Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], cell=np.eye(3) * 4, pbc=True,
                  info={"shear_modulus": 12.0, "split": "train", "id": 7})
    assert MaterialSample.from_atoms(atoms).properties == {}
    props = MaterialSample.from_atoms(atoms, ["shear_modulus", "ring_size_mean"]).properties
    assert props["shear_modulus"] == 12.0 and math.isnan(props["ring_size_mean"])
