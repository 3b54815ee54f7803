"""AMShortcut (paper §4.3, App. B.3): the Material SDE plus a step-size-aware shortcut.

The network ``u(M_t, t, d)`` is the SDE network with d as an extra input; its outputs are
read as PF-ODE drifts ``u = (power sigma_x_max t^(power-1) eps_hat, (pi/2) v_hat)``, and at d = 0 it is the
SDE network (L_SDE is taken at d = 0 on every batch).  On a random ``sc_fraction`` of
batches the self-consistency loss of Frans et al. (2025) is added, built with the PF-ODE:

    M'     = M_t - d u(M_t, t, d)
    target = stopgrad((u(M_t, t, d) + u(M', t - d, d)) / 2)
    L_SC   = |u(M_t, t, 2d) - target|^2          (in noise units like L_SDE, or in drift
                                                  units as the paper's Eq. 4: ``sc_units``)

with d drawn per structure from ``sc_dt`` and t ~ U(2d, 1); the targets come from the EMA
network when the trainer passes one (Frans et al.'s bootstrap_ema), and the smallest level
d = min(sc_dt) takes its two steps with the instantaneous d = 0 network (``teacher_dt``).  Both losses share one network
call (the d = 0 and 2d inputs are concatenated), which also keeps DDP to one forward per
backward.  Sampling: n_s < PF_BELOW_STEPS -> PF-ODE shortcuts of size 1/n_s; from there on
the SDE's Euler–Maruyama with the instantaneous (d = 0) network (a shortcut is an average
PF-ODE drift and has no meaning inside a stochastic step).  The paper switches at 10 (App. B.3); we switch
at 50 because, measured on both systems (docs/model.md, "Sampling"), 10–25 Euler–Maruyama
steps are much worse than 10–25 shortcut steps and the stochastic sampler only wins from ~50.
"""

import math

import torch

from core.frameworks import periodic
from core.frameworks.base import SC_UNITS, per_structure_mean
from core.frameworks.sde import MaterialSDE

PF_BELOW_STEPS = 50
"""Step counts below this sample with PF-ODE shortcuts, the rest with Euler–Maruyama (paper App. B.3: 10)."""


class AMShortcut(MaterialSDE):
    name = "shortcut"
    uses_dt = True

    def __init__(self, config):
        super().__init__(config)
        if config.sc_units not in SC_UNITS:
            raise ValueError(f"sc_units must be one of {SC_UNITS}, got {config.sc_units!r}")

    def shortcut(self, model, state, t, d):
        """Shortcut drifts (Å / unit time, E / unit time) of size d (B,) at times t (B,)."""
        eps_x, v_e = self.predict(model, state, t, d)
        return self.pos_schedule.pf_drift(eps_x, t[state.batch].unsqueeze(-1)), self.elem_schedule.pf_drift(v_e)

    def teacher_dt(self, d):
        """Step size the teacher is queried with for two steps of d: d itself, except at the
        smallest level of ``sc_dt``, which is bootstrapped from the instantaneous (d = 0)
        network that L_SDE trains. That anchors the hierarchy on the learned drift, as the
        smallest step is the flow-matching one in Frans et al.; the network is never trained
        at d = min(sc_dt) itself, so querying it there would chain every level to an
        untrained input."""
        return torch.where(d <= min(self.config.sc_dt), torch.zeros_like(d), d)

    def level_probabilities(self):
        """Probability of each level of ``sc_dt`` in L_SC: proportional to (2d)^sc_level_power."""
        trained = 2 * torch.tensor(self.config.sc_dt, dtype=torch.float64)
        weights = trained ** self.config.sc_level_power
        return weights / weights.sum()

    def sample_sc_dt(self, n, device):
        """Half step sizes d (n,) for L_SC; uniform over ``sc_dt`` unless ``sc_level_power`` > 0."""
        choices = torch.tensor(self.config.sc_dt, device=device)
        if self.config.sc_level_power == 0:  # the uniform draw, bit-identical to runs before the option
            return choices[torch.randint(len(choices), (n,), device=device)]
        index = torch.multinomial(self.level_probabilities().float(), n, replacement=True)
        return choices[index.to(device)]

    def sc_weights(self, t):
        """Per-structure weights (positions, elements) that put L_SC in ``config.sc_units``
        for start times t (B,): (1, 1) in noise units, (drift_scale(t)^2, (pi/2)^2) in drift units."""
        if self.config.sc_units == "drift":
            return self.pos_schedule.drift_scale(t) ** 2, torch.full_like(t, (0.5 * math.pi) ** 2)
        return torch.ones_like(t), torch.ones_like(t)

    @torch.no_grad()
    def bootstrap_target(self, teacher, start, t, d):
        """L_SC target for the 2d shortcut at (start, t): the mean drift of two teacher steps
        of size d (PF-ODE, no noise), in network units (eps, v) so L_SC is weighted like L_SDE."""
        dq = self.teacher_dt(d)
        u1_x, u1_e = self.shortcut(teacher, start, t, dq)
        da = d[start.batch].unsqueeze(-1)
        mid = start.replace(pos=periodic.wrap(start.pos - da * u1_x, start.cell, start.batch), elem=start.elem - da * u1_e)
        u2_x, u2_e = self.shortcut(teacher, mid, t - d, dq)
        target_x = 0.5 * (u1_x + u2_x) / self.pos_schedule.drift_scale(t[start.batch].unsqueeze(-1))
        target_e = 0.5 * (u1_e + u2_e) / (0.5 * math.pi)
        return target_x, target_e

    def loss(self, model, data, target_model=None, distill=None):
        """L_SDE on every batch, plus L_SC on a share ``sc_fraction`` of batches, plus (when
        ``distill`` is given: ``core.distillation.draw_batch``'s tuple and a weight) the
        distillation loss of the largest steps against a teacher's trajectories, in L_SC's units. All terms share
        one network call."""
        n, device = data.n_structures, data.pos.device
        t = self.random_times(n, device)
        noisy, eps_x, v = self.noisy(data, t)
        parts = [(noisy, t, torch.zeros_like(t))]
        use_sc = torch.rand(()) < self.config.sc_fraction
        if use_sc:
            d = self.sample_sc_dt(n, device)
            t_sc = 2 * d + (1 - 2 * d) * torch.rand(n, device=device)
            start, _, _ = self.noisy(data, t_sc)
            teacher = model if target_model is None else target_model
            target_x, target_e = self.bootstrap_target(teacher, start, t_sc, d)
            parts.append((start, t_sc, 2 * d))
        if distill is not None:
            d_state, d_t, d_dt, d_drift_x, d_drift_e, d_weight = distill
            parts.append((d_state, d_t.to(device), d_dt.to(device)))

        both = parts[0][0]
        for state, _, _ in parts[1:]:
            both = both.concat(state)
        out_x, out_e = self.predict(model, both, torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts]))
        bounds = torch.tensor([0] + [p[0].pos.shape[0] for p in parts]).cumsum(0).tolist()
        outs = [(out_x[a:b], out_e[a:b]) for a, b in zip(bounds, bounds[1:])]
        loss, loss_x, loss_e = self.denoising_loss(*outs[0], eps_x, v, data.batch, n)
        logs = {"loss_x": loss_x.item(), "loss_e": loss_e.item()}
        if use_sc:
            loss_sc, loss_sc_x, loss_sc_e = self._sc_loss(*outs[1], target_x, target_e, start, t_sc)
            loss = loss + loss_sc
            logs.update(loss_sc=loss_sc.item(), loss_sc_x=loss_sc_x.item(), loss_sc_e=loss_sc_e.item())
        if distill is not None:
            loss_d = self.distill_loss(*outs[-1], d_state, d_t.to(device), d_drift_x.to(device), d_drift_e.to(device))
            loss = loss + d_weight * loss_d
            logs["loss_distill"] = loss_d.item()
        return loss, {"loss": loss.item(), **logs}

    def _sc_loss(self, out_x, out_e, target_x, target_e, start, t):
        """L_SC (total, positions, elements) of outputs against targets in network units, in ``sc_units``."""
        w_x, w_e = (w[start.batch].unsqueeze(-1) for w in self.sc_weights(t))
        n = start.n_structures
        loss_x = per_structure_mean(w_x * (out_x - target_x) ** 2, start.batch, n)
        loss_e = per_structure_mean(w_e * (out_e - target_e) ** 2, start.batch, n) / self.config.sigma_e**2
        return loss_x + 0.5 * loss_e, loss_x, loss_e

    def distill_loss(self, out_x, out_e, state, t, drift_x, drift_e):
        """The shortcut outputs at (state, t) against a teacher trajectory's mean drifts (Å and
        element units per unit time), converted to network units and weighted like L_SC."""
        target_x = drift_x / self.pos_schedule.drift_scale(t[state.batch].unsqueeze(-1))
        target_e = drift_e / (0.5 * math.pi)
        return self._sc_loss(out_x, out_e, target_x, target_e, state, t)[0]

    def stochastic_step(self, k, n_steps):
        return n_steps >= PF_BELOW_STEPS and super().stochastic_step(k, n_steps)

    def network_dt(self, dt, stochastic):
        return 0.0 if stochastic else dt
