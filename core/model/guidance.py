"""Classifier-free guidance at sampling time: push the denoiser's output further along what the
given properties change.

``(1 + w) f(M_t, y) - w f(M_t, unset)`` (Ho and Salimans 2022; AMDEN, Finkler et al. 2025, uses it
with w = 1).
The AMShortcut paper samples without guidance (w = 0, our default): its flexible embedding
conditions a single network, and "unset" is the null embedding ``PropertyEmbedding`` gives a
missing value. Guidance needs that null embedding to be a *trained* input, i.e. a model trained
with property dropout (the recipe's ``data.property_dropout``); without it the unconditional half is
off-distribution. It amplifies the difference the given values make: on the shipped MEG model
(bumps and a learned null) w = 1 lifts the Li slope from 0.40 to 0.72, while on the shipped
a-SiO2 model, whose output barely changes with the values, w = 2 and 5 do not steer G
(docs/model.md, "Property embedding"; BENCHMARKS.md, inverse design). One guided call is one
network call on a doubled batch (conditional and unconditional halves).
"""

import torch
from torch import nn


class GuidedDenoiser(nn.Module):
    """A denoiser whose outputs are ``(1 + weight) * conditional - weight * unconditional``.

    Same call as ``core.model.Denoiser`` (frameworks call it like the network); a precomputed
    ``graph`` is used only when nothing is guided (no caller passes one today). Structures with
    no property given are passed through unguided (their two halves would be the same model).
    """

    def __init__(self, network: nn.Module, weight: float):
        super().__init__()
        self.network, self.weight = network, float(weight)
        self.cfg = network.cfg

    def forward(self, pos, elem, cell, batch, t, y=None, dt=None, graph=None):
        given = None if y is None or y.shape[-1] == 0 else (~torch.isnan(y)).any(-1)  # (B,): a property given
        if self.weight == 0.0 or given is None or not given.any():
            return self.network(pos, elem, cell, batch, t, y, dt, graph)
        n_structures, n_atoms = cell.shape[0], pos.shape[0]
        unset = torch.full_like(y, float("nan"))
        both = (torch.cat([pos, pos]), torch.cat([elem, elem]), torch.cat([cell, cell]),
                torch.cat([batch, batch + n_structures]), torch.cat([t, t]), torch.cat([y, unset]),
                None if dt is None else torch.cat([dt, dt]))
        x_out, e_out = self.network(*both)  # the doubled batch builds its own neighbour list
        guided = given[batch].unsqueeze(-1)  # (N, 1)
        w = self.weight
        x_cond, e_cond = x_out[:n_atoms], e_out[:n_atoms]
        return (torch.where(guided, (1 + w) * x_cond - w * x_out[n_atoms:], x_cond),
                torch.where(guided, (1 + w) * e_cond - w * e_out[n_atoms:], e_cond))
