"""Periodic radius graph: every pair (i, image of j) closer than the cutoff, with cell offsets.

Built with vesin's cell-list neighbour search (CPU), which finds all periodic images, so
cells smaller than twice the cutoff are handled (an atom may neighbour several images of
another atom, or images of itself).
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
    """
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
