"""Teacher trajectories for AMShortcut's largest steps (recipe section ``[distillation]``).

L_SC builds the target of a 2d shortcut from two d shortcuts of the EMA network, so the
one-step map inherits the error of every level below it. Measured on the a-Si AMShortcut
(8 prior draws, all atoms): its 1-step sample lands 0.12 Å (mean) from its 2-step sample,
which lands 0.17 Å from the 16-step one, itself within 0.05 Å of 8 steps. A many-step
trajectory of a teacher is a better target for the largest steps than two steps of the next
level: here the 1- and few-step maps are regressed onto ``teacher_steps`` PF-ODE shortcut steps
of a fixed teacher, from the same prior draws (progressive / consistency distillation,
Salimans & Ho 2022, Song et al. 2023, with a finite set of stored trajectories).

A set of pairs holds, for each prior draw (a cell of the training split, ghost-padded to the
run's rho_max, its properties), the teacher's state at every grid point ``1 - k/n`` of every
n in ``maps`` and the displacement the trajectory makes between consecutive grid points. The
target drift of the segment of an n-step map that starts at ``t`` is that displacement summed
over the segment, divided by ``1/n``; it is compared with the network's shortcut ``u(M_t, t, 1/n)``
in L_SC's units (``AMShortcut.distill_loss``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from core.frameworks.base import State
from core.frameworks.periodic import wrap
from core.material import ghost_count_total

CHUNK = 16
"""Prior draws integrated per teacher batch (and saved together, so a stopped build resumes)."""


def grid(maps, teacher_steps) -> list[Fraction]:
    """Times (descending, 1 ... 0) at which the trajectories are stored: every ``1 - k/n``."""
    points = {Fraction(1) - Fraction(k, n) for n in maps for k in range(n + 1)}
    for point in points:
        if (point * teacher_steps).denominator != 1:
            raise ValueError(f"teacher_steps {teacher_steps} must be a multiple of every map in {list(maps)}")
    return sorted(points, reverse=True)


@dataclass
class TeacherPairs:
    """Stored teacher trajectories, ragged over structures (atoms of structure i are
    ``offsets[i]:offsets[i+1]``). ``pos``/``elem``: (G, N, ·) states at the grid times
    ``times`` (G,); ``step_x``/``step_e``: (G-1, N, ·) displacement from grid point g to g+1
    (what ``M <- M - dt u`` subtracts, summed over the teacher steps between them)."""

    times: list[float]
    cell: torch.Tensor  # (B,3,3)
    y: torch.Tensor  # (B,P) normalised properties (NaN = unconditioned)
    offsets: torch.Tensor  # (B+1,)
    pos: torch.Tensor
    elem: torch.Tensor
    step_x: torch.Tensor
    step_e: torch.Tensor

    def __len__(self):
        return self.cell.shape[0]

    def to_dict(self):
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def concat(cls, parts: list["TeacherPairs"]) -> "TeacherPairs":
        offsets = [torch.zeros(1, dtype=torch.long)]
        for p in parts:
            offsets.append(p.offsets[1:] + offsets[-1][-1])
        cat = lambda name, dim: torch.cat([getattr(p, name) for p in parts], dim)  # noqa: E731
        return cls(parts[0].times, cat("cell", 0), cat("y", 0), torch.cat(offsets), cat("pos", 1), cat("elem", 1),
                   cat("step_x", 1), cat("step_e", 1))

    def segment(self, index: int, n: int, k: int):
        """(start State of one structure, t, target drift x, target drift e) of the k-th step of
        the n-step map for stored draw ``index``."""
        t_a, t_b = 1.0 - k / n, 1.0 - (k + 1) / n
        ga = min(range(len(self.times)), key=lambda g: abs(self.times[g] - t_a))
        gb = min(range(len(self.times)), key=lambda g: abs(self.times[g] - t_b))
        a, b = int(self.offsets[index]), int(self.offsets[index + 1])
        state = State(self.pos[ga, a:b], self.elem[ga, a:b], self.cell[index:index + 1],
                      torch.zeros(b - a, dtype=torch.long), self.y[index:index + 1])
        drift_x = self.step_x[ga:gb, a:b].sum(0) * n
        drift_e = self.step_e[ga:gb, a:b].sum(0) * n
        return state, t_a, drift_x, drift_e


@torch.no_grad()
def integrate(framework, network, cells, ys, rho_max, n_classes, maps, teacher_steps, generator) -> TeacherPairs:
    """Teacher trajectories from fresh prior draws in ``cells`` (B,3,3) with properties ``ys``
    (B,P): ``teacher_steps`` PF-ODE shortcut steps of size 1/teacher_steps each."""
    times = grid(maps, teacher_steps)
    counts = [ghost_count_total(rho_max, abs(float(torch.det(c)))) for c in cells]
    batch = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    state = framework.prior(cells, batch, ys, n_classes, generator)
    pos, elem, step_x, step_e = [state.pos], [state.elem], [], []
    acc_x, acc_e = torch.zeros_like(state.pos), torch.zeros_like(state.elem)
    dt = 1.0 / teacher_steps
    b = cells.shape[0]
    for s in range(teacher_steps):
        t = 1.0 - s * dt
        u_x, u_e = framework.shortcut(network, state, torch.full((b,), t), torch.full((b,), dt))
        acc_x, acc_e = acc_x + dt * u_x.float(), acc_e + dt * u_e.float()
        state = state.replace(pos=wrap(state.pos - dt * u_x.float(), state.cell, state.batch),
                              elem=state.elem - dt * u_e.float())
        if Fraction(s + 1, teacher_steps) in {1 - g for g in times}:
            pos.append(state.pos), elem.append(state.elem), step_x.append(acc_x), step_e.append(acc_e)
            acc_x, acc_e = torch.zeros_like(acc_x), torch.zeros_like(acc_e)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.tensor(counts), 0)])
    return TeacherPairs([float(g) for g in times], cells.clone(), ys.clone(), offsets, torch.stack(pos),
                        torch.stack(elem), torch.stack(step_x), torch.stack(step_e))


def build(path, teacher, samples, n_pairs, rho_max, normalise, maps, teacher_steps, seed, fast=True, bf16=True,
          progress=True) -> TeacherPairs:
    """The run's pairs at ``path`` (a ``.pt`` file), integrating the missing ones first.

    teacher: a ``core.checkpoint.Checkpoint``; samples: the training ``MaterialSample``s, whose
    cells (and properties) the draws take in a seeded order; draw i comes from seed (seed, i's
    chunk), so a stopped build resumes to the same pairs (saved every ``CHUNK`` draws)."""
    from tqdm.auto import tqdm

    from core.model import BFloat16Autocast

    path = Path(path)
    done = [TeacherPairs(**p) for p in torch.load(path, weights_only=True)["chunks"]] if path.is_file() else []
    n_chunks = math.ceil(n_pairs / CHUNK)
    if len(done) >= n_chunks:
        return TeacherPairs.concat(done[:n_chunks])
    network = teacher.network.eval()
    was_fast, network.fast = network.fast, bool(fast)
    model = BFloat16Autocast(network, "cpu") if bf16 else network
    order = np.random.default_rng([seed, 7]).permutation(len(samples))
    bar = tqdm(total=n_chunks, initial=len(done), desc="teacher trajectories", unit="chunk", disable=not progress)
    try:
        for c in range(len(done), n_chunks):
            idx = [int(order[(c * CHUNK + j) % len(order)]) for j in range(min(CHUNK, n_pairs - c * CHUNK))]
            cells = torch.tensor(np.stack([samples[i].cell for i in idx]), dtype=torch.float32)
            raw = torch.tensor([[samples[i].properties.get(name, math.nan) for name in teacher.property_names]
                                for i in idx], dtype=torch.float32).reshape(len(idx), len(teacher.property_names))
            generator = torch.Generator().manual_seed(int(seed) * 100_003 + c)
            done.append(integrate(teacher.framework, model, cells, normalise(raw), rho_max,
                                  network.cfg.n_classes, maps, teacher_steps, generator))
            tmp = path.with_suffix(".tmp")
            torch.save({"chunks": [p.to_dict() for p in done]}, tmp)
            tmp.replace(path)
            bar.update(1)
    finally:
        network.fast = was_fast
        bar.close()
    return TeacherPairs.concat(done)


def draw_batch(pairs: TeacherPairs, maps, batch_size: int, rng: np.random.Generator):
    """A distillation batch: (State, t (B,), step size 1/n (B,), target drift x, target drift e),
    each structure a random stored draw, map n from ``maps`` and segment of it."""
    parts = []
    for _ in range(batch_size):
        n = int(rng.choice(maps))
        parts.append((*pairs.segment(int(rng.integers(len(pairs))), n, int(rng.integers(n))), n))
    states = [p[0] for p in parts]
    state = states[0]
    for other in states[1:]:
        state = state.concat(other)
    t = torch.tensor([p[1] for p in parts])
    d = torch.tensor([1.0 / p[4] for p in parts])
    return state, t, d, torch.cat([p[2] for p in parts]), torch.cat([p[3] for p in parts])
