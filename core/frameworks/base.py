"""What every framework shares: the batch state, the config, the model call and the loop.

A framework is a *path* (how the noisy M_t and its regression target are made from data,
``loss``) plus an integrator (``step``) and a ``prior``; the network is a plain module
(``core.model.Denoiser``).  Time runs from t = 1 (prior) to t = 0 (data); a step goes from
t to t - dt and is ``M <- M - dt * drift (+ noise)``.
"""

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace

import torch

from core.frameworks import periodic


@dataclass
class State:
    """A batch of (noisy) material samples.

    pos (N,3) Å, elem (N,C) continuous element embeddings (one-hot for data), cell (B,3,3) Å
    (rows are lattice vectors), batch (N,) structure index, y (B,P) normalised properties
    (NaN = missing; P may be 0).
    """

    pos: torch.Tensor
    elem: torch.Tensor
    cell: torch.Tensor
    batch: torch.Tensor
    y: torch.Tensor

    @property
    def n_structures(self):
        return self.cell.shape[0]

    def replace(self, **changes):
        return replace(self, **changes)

    def concat(self, other):
        """Both batches as one (structures of ``other`` follow those of ``self``)."""
        return State(torch.cat([self.pos, other.pos]), torch.cat([self.elem, other.elem]),
                     torch.cat([self.cell, other.cell]),
                     torch.cat([self.batch, other.batch + self.n_structures]), torch.cat([self.y, other.y]))


SC_UNITS = ("noise", "drift")
"""Units of AMShortcut's L_SC (``FrameworkConfig.sc_units``)."""

GHOST_TARGETS = ("noise", "mean")
"""Position targets of ghost atoms in L_SDE (``FrameworkConfig.ghost_target``)."""


@dataclass
class FrameworkConfig:
    """Schedule and loss settings of a framework; saved as ``schedule`` in config.json.

    sigma_x_max: position noise at t = 1 (Å). 12 Å makes the t = 1 marginal uniform to
        ~3e-4 for cells up to ~18 Å; the paper/AMDEN value is 1.7 Å (then set
        ``allow_prior_mismatch``, since the t = 1 marginal is then far from uniform).
    sigma_x_power: position noise ``sigma_x_max * t**sigma_x_power``; 1 is the paper's linear
        schedule, 2 a time warp that puts more of t (and of uniform sampling grids) at the
        noise levels where structure forms (see ``schedules.PositionSchedule``).
    sigma_e: element noise scale; the element prior is N(0, sigma_e^2 I).
    t_min: smallest training time (positions' sigma must stay > 0).
    t_power: training times are t_min + (1 - t_min) u^t_power, u ~ U(0, 1); 1 is the paper's
        uniform t, > 1 spends more updates at small noise (with sigma_x_max = 12 Å, t > ~0.6
        is nearly uniform in a 17 Å cell and teaches positions little).
    t_band, t_band_fraction: a share ``t_band_fraction`` of the L_SDE training times is drawn
        uniformly from the band ``t_band = [low, high]`` instead (0, the default: none). The
        band puts training where the network fails, e.g. on a-SiO2 the noise levels at which
        the bond network is decided (docs/model.md, "Where the a-SiO2 network fails"). The
        loss per t is unchanged; only how often each t is visited.
    sc_fraction: share of batches that also get the self-consistency loss (AMShortcut).
    ode_x_scale: unit (Å) of the Material ODE network's position output.
    sc_dt: shortcut step sizes d for L_SC (the target is built from two steps of d and
        trained at 2d; all 2d <= 1).
    sc_level_power: a level d is drawn for L_SC with probability proportional to (2d)^power;
        0 (the default, Frans et al.'s) draws the levels uniformly, > 0 trains the large
        steps (the one- and two-step maps) more often.
    sc_units: units of L_SC. "noise" (the default): the drifts
        divided by their scale (power sigma_max t^(power-1) for positions, pi/2 for
        elements), like L_SDE;
        "drift": the paper's Eq. 4, |u_theta - target|^2 with u the PF drift itself (Å per unit time),
        i.e. "noise" weighted by drift_scale(t)^2 (576 t^2 for 12 t^2 Å). In noise units a
        1-step shortcut error of 2e-4 is a 0.32 Å landing gap (docs/model.md).
    ghost_target: position target of ghost atoms in L_SDE (Material SDE and AMShortcut).
        "noise" (the default): their wrapped-normal noise, like
        real atoms'; "mean": 0, its conditional mean. Ghosts sit at uniform random positions,
        so given M_t their noise averages to exactly 0 (the wrapped-normal posterior of a
        uniform x_0 is symmetric about x_t): the minimiser of the loss is unchanged and the
        irreducible ghost term (unit variance per component, more than a real atom's error at
        small sigma) leaves the gradients; on a-SiO2 (a quarter ghosts) it was 40 % of L_x.
    """

    name: str = "shortcut"
    sigma_x_max: float = 12.0
    sigma_x_power: float = 1.0
    sigma_e: float = 1.5
    t_min: float = 1e-3
    t_power: float = 1.0
    t_band: list = field(default_factory=lambda: [0.0, 1.0])
    t_band_fraction: float = 0.0
    ode_x_scale: float = 4.0
    sc_fraction: float = 0.25
    sc_dt: list = field(default_factory=lambda: [2.0**-k for k in range(7, 0, -1)])
    sc_level_power: float = 0.0
    sc_units: str = "noise"
    ghost_target: str = "noise"
    allow_prior_mismatch: bool = False

    def to_dict(self):
        return asdict(self)


def per_structure_mean(sq_err, batch, n_structures):
    """Mean over a structure's atoms (and components) of squared errors, then over structures."""
    per_atom = sq_err.reshape(sq_err.shape[0], -1).mean(-1)
    sums = torch.zeros(n_structures, device=sq_err.device, dtype=per_atom.dtype).index_add_(0, batch, per_atom)
    counts = torch.bincount(batch, minlength=n_structures).clamp_min(1)
    return (sums / counts).mean()


class Framework(ABC):
    """Shared interface: ``prior``, ``loss``, ``step`` and the sampling ``plan``."""

    name = "base"
    uses_dt = False

    def __init__(self, config: FrameworkConfig):
        self.config = config

    # ---- model call -------------------------------------------------------------------
    def predict(self, model, state, t, dt=None):
        """Network outputs (position (N,3), element (N,C)) for per-structure t and dt (B,)."""
        if self.uses_dt:
            return model(state.pos, state.elem, state.cell, state.batch, t, state.y, dt)
        return model(state.pos, state.elem, state.cell, state.batch, t, state.y)

    # ---- prior ------------------------------------------------------------------------
    def prior(self, cell, batch, y, n_classes, generator=None):
        """t = 1 sample: positions uniform in the cell, elements N(0, sigma_e^2 I)."""
        pos = periodic.uniform_positions(cell, batch, generator)
        elem = self.config.sigma_e * torch.randn(batch.shape[0], n_classes, generator=generator,
                                                 device=cell.device, dtype=cell.dtype)
        return State(pos, elem, cell, batch, y)

    def random_times(self, n, device, low=None):
        """Per-structure training times in [low or t_min, 1], density shaped by ``t_power``; for
        L_SDE's times (``low`` None) a share ``t_band_fraction`` drawn from ``t_band`` instead."""
        band = low is None and self.config.t_band_fraction > 0
        low = self.config.t_min if low is None else low
        t = low + (1.0 - low) * torch.rand(n, device=device) ** self.config.t_power
        if band:
            a, b = (max(v, low) for v in self.config.t_band)
            in_band = torch.rand(n, device=device) < self.config.t_band_fraction
            t = torch.where(in_band, a + (b - a) * torch.rand(n, device=device), t)
        return t

    # ---- sampling ---------------------------------------------------------------------
    def plan(self, n_steps, grid_power=1.0):
        """[(t, dt, stochastic)] for n_steps steps from t = 1 to t = 0 at t_k = (1 - k/n)^grid_power.

        grid_power 1 is the paper's uniform grid; > 1 makes the steps shorter towards t = 0,
        where the last tenths of an Å are placed (docs/model.md, "Sampling grid"), and longer
        near t = 1, where positions carry no information yet.
        """
        if grid_power == 1.0:  # 1 - k dt with a constant dt: the same floats as every plan before grid_power
            dt = 1.0 / n_steps
            return [(1.0 - k * dt, dt, self.stochastic_step(k, n_steps)) for k in range(n_steps)]
        times = [(1.0 - k / n_steps) ** grid_power for k in range(n_steps)] + [0.0]
        return [(times[k], times[k] - times[k + 1], self.stochastic_step(k, n_steps)) for k in range(n_steps)]

    def stochastic_step(self, k, n_steps):
        return False

    def prior_mismatch(self, cell):
        """How far the forward t = 1 marginal in ``cell`` is from the prior (0 = exact)."""
        return 0.0

    @abstractmethod
    def loss(self, model, data, target_model=None):
        """(scalar loss, {name: float}) for a batch of clean data (State with one-hot elem).

        ``target_model`` (AMShortcut only) builds the self-consistency targets; the trainer
        passes its EMA copy, as Frans et al. do (bootstrap_ema), which keeps the bootstrap
        from chasing its own updates."""

    @abstractmethod
    def step(self, model, state, t, dt, stochastic=False):
        """State at t - dt from the state at t (floats; positions wrapped into the cell)."""
