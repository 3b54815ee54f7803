"""Material ODE (paper App. B.1): flow matching on the optimal-transport path.

``X_t = wrap(X_0 + t pbc(X_1 - X_0))``, ``E_t = E_0 + t (E_1 - E_0)``; the network predicts
the velocity ``mu = (pbc(X_1 - X_0), E_1 - E_0)`` directly; its position output is read in
units of ``ode_x_scale`` Å per unit time (the targets are displacements of up to half a cell,
while the EGNN's coordinate head starts near zero), the loss stays in Å^2 as in the paper.
The t = 1 marginal is the prior by construction (wrap(X_0 + pbc(X_1 - X_0)) = X_1).
"""

import torch

from core.frameworks import periodic
from core.frameworks.base import Framework, per_structure_mean


class MaterialODE(Framework):
    name = "ode"

    def __init__(self, config):
        super().__init__(config)
        if config.ghost_target != "noise":
            raise ValueError(f"ghost_target={config.ghost_target!r} applies to the Material SDE and AMShortcut; "
                             "the Material ODE regresses a velocity and has no noise target")

    def noisy(self, data, t):
        """Point M_t on the path from data to a fresh prior sample, and the velocity (mu_X, mu_E)."""
        noise = self.prior(data.cell, data.batch, data.y, data.elem.shape[1])
        mu_x = periodic.minimum_image(noise.pos - data.pos, data.cell, data.batch)
        mu_e = noise.elem - data.elem
        ta = t[data.batch].unsqueeze(-1)
        return data.replace(pos=periodic.wrap(data.pos + ta * mu_x, data.cell, data.batch), elem=data.elem + ta * mu_e), mu_x, mu_e

    def loss(self, model, data, target_model=None):
        n = data.n_structures
        t = self.random_times(n, data.pos.device, low=0.0)
        noisy, mu_x, mu_e = self.noisy(data, t)
        out_x, out_e = self.predict(model, noisy, t)
        out_x = self.config.ode_x_scale * out_x
        loss_x = per_structure_mean((out_x - mu_x) ** 2, data.batch, n)
        loss_e = per_structure_mean((out_e - mu_e) ** 2, data.batch, n)
        loss = loss_x + 0.5 * loss_e
        return loss, {"loss": loss.item(), "loss_x": loss_x.item(), "loss_e": loss_e.item()}

    def step(self, model, state, t, dt, stochastic=False):
        """Euler step of the ODE (``stochastic`` is ignored: sigma = 0)."""
        tt = torch.full((state.n_structures,), t, device=state.pos.device)
        mu_x, mu_e = self.predict(model, state, tt)
        mu_x = self.config.ode_x_scale * mu_x
        return state.replace(pos=periodic.wrap(state.pos - dt * mu_x, state.cell, state.batch), elem=state.elem - dt * mu_e)
