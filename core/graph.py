"""Periodic radius graph: every pair (i, image of j) closer than the cutoff, with cell offsets.

On CPU it is built with vesin's cell-list neighbour search; for tensors on a GPU with a torch
all-images search on the device (``torch_periodic_neighbors``: no copy to the host and back
per network call). Both find all periodic images, so cells smaller than twice the cutoff are
handled (an atom may neighbour several images of another atom, or images of itself).
"""

from __future__ import annotations

import numpy as np
import torch
from vesin import NeighborList


def periodic_neighbors(positions: np.ndarray, cell: np.ndarray, cutoff: float):
    """Full neighbour list of one periodic structure.

    Returns ``(i, j, shift)`` with ``shift`` (E,3) Cartesian Å such that the vector from
    atom i to the neighbouring image of atom j is ``positions[j] + shift - positions[i]``.
    Every ordered pair appears once per image (i->j and j->i both present).
    """
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, s = nl.compute(points=np.asarray(positions, dtype=np.float64),
                         box=np.asarray(cell, dtype=np.float64), periodic=True, quantities="ijS")
    shift = s.astype(np.float64) @ np.asarray(cell, dtype=np.float64)
    return i.astype(np.int64), j.astype(np.int64), shift


PAIRS_PER_CHUNK = 1 << 22
"""(atom, atom, image) candidates the torch search holds at once (~100 MB of float64 vectors)."""


def torch_periodic_neighbors(pos: torch.Tensor, cell: torch.Tensor, cutoff: float):
    """``periodic_neighbors`` in torch, on ``pos.device``: every (i, j, image) within ``cutoff``.

    Positions are wrapped into the cell (fractional f in [0, 1)); then every integer image
    S with |S_a| <= ceil(cutoff |b_a|) (b_a the reciprocal vectors, 1/|b_a| the spacing of
    lattice planes a) is tried for every pair, which covers all vectors shorter than the
    cutoff: a vector v has fractional component v . b_a, at most |v| |b_a|. Returns
    ``(i, j, shift)`` with ``shift`` (E,3) in pos.dtype such that ``pos[j] + shift - pos[i]``
    is the edge vector (for the positions as given, unwrapped). Distances in float64.
    """
    p, c = pos.detach().to(torch.float64), cell.detach().to(torch.float64)
    inv = torch.linalg.inv(c)
    frac = p @ inv
    offset = torch.floor(frac)
    wrapped = (frac - offset) @ c  # Cartesian, inside the cell
    reach = torch.ceil(cutoff * inv.norm(dim=0)).long().tolist()  # |b_a| = column norms of inv(cell)
    axes = [torch.arange(-r, r + 1, device=pos.device, dtype=torch.float64) for r in reach]
    images = torch.cartesian_prod(*axes)  # (M, 3) integer shifts
    zero = (images.shape[0] - 1) // 2  # the image S = 0 (the middle of the symmetric grid)
    image_vec = images @ c
    n = p.shape[0]
    diff = wrapped.unsqueeze(0) - wrapped.unsqueeze(1)  # (n, n, 3): wrapped[j] - wrapped[i] at [i, j]
    per_chunk = max(1, PAIRS_PER_CHUNK // max(1, n * n))
    found = []
    for lo in range(0, images.shape[0], per_chunk):
        vec = diff.unsqueeze(0) + image_vec[lo:lo + per_chunk, None, None, :]  # (m, n, n, 3)
        d2 = (vec * vec).sum(-1)
        s, i, j = torch.nonzero(d2 < cutoff * cutoff, as_tuple=True)
        s = s + lo
        keep = (i != j) | (s != zero)  # not an atom with itself
        found.append((i[keep], j[keep], s[keep]))
    i, j, s = (torch.cat(parts) for parts in zip(*found))
    shift = (images[s] - offset[j] + offset[i]) @ c
    return i, j, shift.to(pos.dtype)


def periodic_radius_graph(pos: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, cutoff: float):
    """Radius graph of a batch of periodic structures.

    Args:
        pos: (N,3) Cartesian positions in Å (any image; they need not be wrapped).
        cell: (B,3,3) cells, rows are lattice vectors, Å.
        batch: (N,) structure index of each atom, sorted (as in torch-geometric batches).
        cutoff: radius in Å.

    Returns:
        edge_index (2,E) long, rows (i, j), and shift (E,3) in pos.dtype such that
        ``pos[j] + shift - pos[i]`` is the edge vector from i to the image of j; on pos.device.
        Tensors on a GPU are searched there (``torch_periodic_neighbors``), others with vesin.
    """
    if pos.device.type == "cuda":
        return torch_radius_graph(pos, cell, batch, cutoff)
    pos_np = pos.detach().to("cpu", torch.float64).numpy()
    cell_np = cell.detach().to("cpu", torch.float64).numpy()
    counts = torch.bincount(batch.detach().cpu(), minlength=cell.shape[0]).numpy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    edges, shifts = [], []
    for b, (start, n) in enumerate(zip(starts, counts)):
        if n == 0:
            continue
        i, j, shift = periodic_neighbors(pos_np[start:start + n], cell_np[b], cutoff)
        edges.append(np.stack([i + start, j + start]))
        shifts.append(shift)
    if not edges:
        return (torch.zeros(2, 0, dtype=torch.long, device=pos.device),
                torch.zeros(0, 3, dtype=pos.dtype, device=pos.device))
    edge_index = torch.from_numpy(np.concatenate(edges, axis=1)).to(pos.device)
    shift = torch.from_numpy(np.concatenate(shifts)).to(device=pos.device, dtype=pos.dtype)
    return edge_index, shift


def torch_radius_graph(pos: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, cutoff: float):
    """``periodic_radius_graph`` computed with ``torch_periodic_neighbors`` on pos.device."""
    counts = torch.bincount(batch, minlength=cell.shape[0]).tolist()
    edges, shifts, start = [], [], 0
    for b, n in enumerate(counts):
        if n:
            i, j, shift = torch_periodic_neighbors(pos[start:start + n], cell[b], cutoff)
            edges.append(torch.stack([i + start, j + start]))
            shifts.append(shift)
        start += n
    if not edges:
        return (torch.zeros(2, 0, dtype=torch.long, device=pos.device),
                torch.zeros(0, 3, dtype=pos.dtype, device=pos.device))
    return torch.cat(edges, dim=1), torch.cat(shifts)
