"""Ring statistics of the Si–O network (paper App. B.6).

Bonds: Si–O pairs closer than 1.3 (r_cov,Si + r_cov,O) with r_cov(Si) = 1.11 Å and
r_cov(O) = 0.66 Å (i.e. d < 2.301 Å). For every bond, the ring through it is the shortest
closed path through the network that does not use that bond. Periodicity is exact: the
search runs on the infinite periodic network (nodes are (atom, cell image)), and a path
closes a ring only if it returns to the same image of the bond's end atom, so rings that
merely wrap around the cell are not counted, whatever the cell size. Rings found from
several bonds are counted once. Ring size = number of Si atoms in the ring.
Ghost atoms (atomic number 0) are ignored.
"""

from __future__ import annotations

from collections import Counter, deque

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

R_COV = {"Si": 1.11, "O": 0.66}  # Å
BOND_FACTOR = 1.3
MAX_RING_ATOMS = 32  # longest ring searched (atoms, Si + O)


def bond_graph(atoms: Atoms) -> list[list[tuple[int, tuple[int, int, int]]]]:
    """Adjacency of the Si–O network: for atom i, the list of (j, image shift of j)."""
    symbols = atoms.get_chemical_symbols()
    cutoffs = [BOND_FACTOR * R_COV.get(s, 0.0) for s in symbols]
    i, j, shift = neighbor_list("ijS", atoms, cutoffs)
    adj = [[] for _ in range(len(atoms))]
    for a, b, s in zip(i, j, shift):
        if {symbols[a], symbols[b]} == {"Si", "O"}:
            adj[a].append((int(b), tuple(int(x) for x in s)))
    return adj


def _add(s, t):
    return (s[0] + t[0], s[1] + t[1], s[2] + t[2])


def _shortest_ring(adj, u: int, v: int, sv, max_atoms: int):
    """Shortest path (u, 0) -> (v, sv) that avoids the direct bond; node list or None."""
    start, goal = (u, (0, 0, 0)), (v, sv)
    parent = {start: None}
    queue = deque([(start, 0)])
    while queue:
        node, depth = queue.popleft()
        if depth + 1 >= max_atoms:
            break
        a, sa = node
        for b, sb in adj[a]:
            nxt = (b, _add(sa, sb))
            if node == start and nxt == goal:
                continue  # the bond itself
            if nxt in parent:
                continue
            parent[nxt] = node
            if nxt == goal:
                path = [nxt]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path
            queue.append((nxt, depth + 1))
    return None


def _canonical(ring) -> tuple:
    """A key equal for all periodic translations of the same ring."""
    anchor = min(a for a, _ in ring)
    keys = []
    for a, s in ring:
        if a == anchor:
            keys.append(tuple(sorted((b, (t[0] - s[0], t[1] - s[1], t[2] - s[2])) for b, t in ring)))
    return min(keys)


def find_rings(atoms: Atoms, max_atoms: int = MAX_RING_ATOMS) -> list[list[int]]:
    """Distinct rings of the Si–O network, each as the list of its atom indices in order
    around the ring (indices refer to `atoms`, ghosts included in the numbering)."""
    keep = np.nonzero(atoms.numbers != 0)[0]
    real = atoms[keep]
    real.pbc = True
    adj = bond_graph(real)
    seen, rings = set(), []
    for u in range(len(real)):
        if len(adj[u]) < 2:
            continue
        for v, sv in adj[u]:
            if v < u or len(adj[v]) < 2:
                continue
            path = _shortest_ring(adj, u, v, sv, max_atoms)
            if path is None:
                continue
            key = _canonical(path)
            if key not in seen:
                seen.add(key)
                rings.append([int(keep[a]) for a, _ in path])
    return rings


def ring_sizes(atoms: Atoms, max_atoms: int = MAX_RING_ATOMS) -> list[int]:
    """Number of Si atoms in each distinct ring."""
    z = atoms.numbers
    return [int(sum(z[a] == 14 for a in ring)) for ring in find_rings(atoms, max_atoms)]


def ring_size_distribution(atoms: Atoms, max_atoms: int = MAX_RING_ATOMS) -> dict[int, int]:
    """Ring count per ring size (Si atoms per ring), sorted by size."""
    return dict(sorted(Counter(ring_sizes(atoms, max_atoms)).items()))


def ring_size_mean(atoms: Atoms, max_atoms: int = MAX_RING_ATOMS) -> float:
    """Mean ring size (Si atoms per ring); NaN if the network has no ring."""
    sizes = ring_sizes(atoms, max_atoms)
    return float(np.mean(sizes)) if sizes else float("nan")
