"""Periodic radius graph against ase.neighborlist on random, triclinic and small cells."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list

from core.graph import periodic_neighbors, periodic_radius_graph, torch_periodic_neighbors, torch_radius_graph

CELLS = {
    "cubic": np.eye(3) * 12.0,
    "triclinic": np.array([[9.0, 0.0, 0.0], [3.1, 8.2, 0.0], [-2.0, 1.7, 7.5]]),
    "small_skewed": np.array([[5.0, 0.0, 0.0], [2.5, 4.3, 0.0], [1.2, -1.1, 4.0]]),  # < 2 x cutoff
    "tiny": np.eye(3) * 3.0,  # an atom neighbours many images of itself
}


def _pair_multiset(i, j, vectors):
    """Sorted (i, j, rounded vector) rows: compares neighbour lists independent of order."""
    rows = np.concatenate([i[:, None], j[:, None], np.round(vectors, 6)], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("name", CELLS)
def test_matches_ase_neighbor_list(name):
    cell = CELLS[name]
    rng = np.random.default_rng(1)
    n = 3 if name == "tiny" else 20
    # positions are deliberately not wrapped: some lie outside the cell
    pos = rng.random((n, 3)) @ cell + rng.normal(scale=2.0, size=(n, 3))
    cutoff = 6.5
    i, j, shift = periodic_neighbors(pos, cell, cutoff)
    ia, ja, S = neighbor_list("ijS", Atoms(f"Si{n}", positions=pos, cell=cell, pbc=True), cutoff)
    assert len(i) == len(ia) > 0
    ours = _pair_multiset(i, j, pos[j] + shift - pos[i])
    ref = _pair_multiset(ia, ja, pos[ja] + S @ cell - pos[ia])
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert np.all(np.linalg.norm(pos[j] + shift - pos[i], axis=1) < cutoff)


def test_batched_graph_offsets_indices_per_structure():
    rng = np.random.default_rng(2)
    cells = [CELLS["cubic"], CELLS["triclinic"]]
    pos = [rng.random((10, 3)) @ c for c in cells]
    batch = torch.tensor([0] * 10 + [1] * 10)
    edge_index, shift = periodic_radius_graph(
        torch.tensor(np.concatenate(pos)), torch.tensor(np.stack(cells)), batch, 5.0)
    assert torch.all(batch[edge_index[0]] == batch[edge_index[1]])
    for b in range(2):
        i, j, s = periodic_neighbors(pos[b], cells[b], 5.0)
        assert int((batch[edge_index[0]] == b).sum()) == len(i)
    full = torch.tensor(np.concatenate(pos))
    d = (full[edge_index[1]] + shift - full[edge_index[0]]).norm(dim=1)
    assert float(d.max()) < 5.0


def test_graph_is_invariant_to_the_periodic_image_an_atom_is_written_in():
    rng = np.random.default_rng(3)
    cell = CELLS["triclinic"]
    pos = rng.random((12, 3)) @ cell
    moved = pos.copy()
    moved[4] += np.array([1, -2, 1]) @ cell
    for p in (pos, moved):
        i, j, shift = periodic_neighbors(p, cell, 6.0)
        d = np.sort(np.linalg.norm(p[j] + shift - p[i], axis=1))
        if p is pos:
            ref = d
    np.testing.assert_allclose(d, ref, atol=1e-9)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torch_search_matches_vesin(name, dtype):
    """The device search (run here on CPU tensors) finds vesin's pairs and images exactly."""
    cell = CELLS[name]
    rng = np.random.default_rng(3)
    n = 4 if name == "tiny" else 30
    pos = rng.random((n, 3)) @ cell + rng.normal(scale=2.0, size=(n, 3))  # some outside the cell
    cutoff = 6.5
    i, j, shift = periodic_neighbors(pos, cell, cutoff)
    it, jt, shift_t = torch_periodic_neighbors(torch.tensor(pos, dtype=dtype), torch.tensor(cell, dtype=dtype), cutoff)
    assert shift_t.dtype == dtype and len(i) > 0
    inv = np.linalg.inv(cell)
    ours = _pair_multiset(it.numpy(), jt.numpy(), np.round(shift_t.double().numpy() @ inv, 3))
    ref = _pair_multiset(i, j, np.round(shift @ inv, 3))
    np.testing.assert_array_equal(ours, ref)


def test_torch_radius_graph_matches_vesin_on_a_batch():
    rng = np.random.default_rng(4)
    cells = [CELLS["triclinic"], CELLS["small_skewed"], CELLS["cubic"]]
    counts = [12, 0, 9]  # an empty structure in the middle
    pos = torch.tensor(np.concatenate([rng.random((k, 3)) @ c for k, c in zip(counts, cells)]))
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(counts))
    cell = torch.tensor(np.stack(cells))
    (e_ref, s_ref), (e_t, s_t) = (f(pos, cell, batch, 5.0) for f in (periodic_radius_graph, torch_radius_graph))
    vec = lambda e, s: (pos[e[1]] + s - pos[e[0]]).numpy()  # noqa: E731
    np.testing.assert_allclose(_pair_multiset(e_t[0].numpy(), e_t[1].numpy(), vec(e_t, s_t)),
                               _pair_multiset(e_ref[0].numpy(), e_ref[1].numpy(), vec(e_ref, s_ref)), atol=1e-6)
