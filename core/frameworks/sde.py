"""Material SDE (paper App. B.2): score matching with wrapped VE positions, cosine VP elements.

Forward: ``X_t = wrap(X_0 + sigma_x_max t^sigma_x_power eps_X)``, ``E_t = cos(phi) E_0 + sin(phi) sigma_e eps_E``
(phi = pi t / 2).  The network predicts the positions' noise ``eps_hat`` (target: the
wrapped-normal noise, see ``periodic.wrapped_normal_eps``) and the elements' angular
velocity ``v_hat`` (see ``schedules.ElementSchedule``).  Loss
``|eps_hat - eps|^2 + 0.5 |v_hat - v|^2 / sigma_e^2``; the element term equals the paper's
eps-loss divided by cos^2(phi), which keeps a training signal near t = 1 where the
eps-loss vanishes.

Sampling: reverse-SDE Euler–Maruyama steps, except that the first step (from t = 1, where
the element coefficients tan(pi t/2) are infinite) and the last step (to t = 0, so no
noise is left in the output) are probability-flow steps.  After a PF first step of size dt
the EM steps start at t = 1 - dt where ``dt * (pi/2) tan(phi) ~ 1``: stable.
"""

import torch

from core.frameworks import periodic
from core.frameworks.base import GHOST_TARGETS, Framework, per_structure_mean
from core.frameworks.schedules import ElementSchedule, PositionSchedule


class MaterialSDE(Framework):
    name = "sde"

    def __init__(self, config):
        super().__init__(config)
        if config.ghost_target not in GHOST_TARGETS:
            raise ValueError(f"ghost_target must be one of {GHOST_TARGETS}, got {config.ghost_target!r}")
        self.pos_schedule = PositionSchedule(config.sigma_x_max, config.sigma_x_power)
        self.elem_schedule = ElementSchedule(config.sigma_e)

    def prior_mismatch(self, cell):
        return periodic.prior_mismatch(cell, self.config.sigma_x_max)

    def noisy(self, data, t):
        """Forward sample M_t and its targets (eps_X (N,3), v_E (N,C)) at per-structure t
        (ghosts' eps_X is 0 with ``ghost_target="mean"``; data elements are one-hot, class 0 = ghost)."""
        ta = t[data.batch].unsqueeze(-1)
        sigma = self.pos_schedule.sigma(ta)
        x_t = periodic.wrap(data.pos + sigma * torch.randn_like(data.pos), data.cell, data.batch)
        eps_x = periodic.wrapped_normal_eps(x_t, data.pos, sigma, data.cell, data.batch)
        if self.config.ghost_target == "mean":
            eps_x = torch.where(data.elem[:, :1] > 0.5, torch.zeros_like(eps_x), eps_x)
        e_t, v = self.elem_schedule.noise(data.elem, ta, torch.randn_like(data.elem))
        return data.replace(pos=x_t, elem=e_t), eps_x, v

    def denoising_loss(self, out_x, out_e, eps_x, v, batch, n):
        """(loss, loss_x, loss_e) in noise units (positions: eps; elements: v / sigma_e)."""
        loss_x = per_structure_mean((out_x - eps_x) ** 2, batch, n)
        loss_e = per_structure_mean((out_e - v) ** 2, batch, n) / self.config.sigma_e**2
        return loss_x + 0.5 * loss_e, loss_x, loss_e

    def loss(self, model, data, target_model=None):
        n = data.n_structures
        t = self.random_times(n, data.pos.device)
        noisy, eps_x, v = self.noisy(data, t)
        out_x, out_e = self.predict(model, noisy, t, torch.zeros_like(t))
        loss, loss_x, loss_e = self.denoising_loss(out_x, out_e, eps_x, v, data.batch, n)
        return loss, {"loss": loss.item(), "loss_x": loss_x.item(), "loss_e": loss_e.item()}

    def stochastic_step(self, k, n_steps):
        return 0 < k < n_steps - 1

    def network_dt(self, dt, stochastic):
        """Step size fed to the network (only AMShortcut's network takes one)."""
        return 0.0

    def step(self, model, state, t, dt, stochastic=False):
        """One reverse step t -> t - dt: Euler–Maruyama (stochastic) or probability flow."""
        if stochastic and t >= 1.0:
            raise ValueError("the reverse SDE is singular at t = 1 (tan(pi t/2)); take a PF step first")
        b = state.n_structures
        tt = torch.full((b,), t, device=state.pos.device)
        eps_x, v_e = self.predict(model, state, tt, torch.full((b,), self.network_dt(dt, stochastic),
                                                               device=state.pos.device))
        ps, es = self.pos_schedule, self.elem_schedule
        t_elem = torch.tensor(t, dtype=state.elem.dtype, device=state.elem.device)
        if not stochastic:
            pos = state.pos - dt * ps.pf_drift(eps_x, t_elem)
            elem = state.elem - dt * es.pf_drift(v_e)
        else:
            pos = (state.pos - dt * ps.sde_drift(eps_x, t_elem)
                   + torch.sqrt(ps.g2(t_elem) * dt) * torch.randn_like(state.pos))
            elem = (state.elem - dt * es.sde_drift(state.elem, v_e, t_elem)
                    + torch.sqrt(es.g2(t_elem) * dt) * torch.randn_like(state.elem))
        return state.replace(pos=periodic.wrap(pos, state.cell, state.batch), elem=elem)
