"""Frameworks against closed forms: Gaussian data, shortcut consistency, t = 1 marginals.

With Gaussian data every noised marginal is Gaussian, so the exact network outputs are
closed-form; the samplers must then reproduce the data distribution within sampling error.
Positions live in a 1000 Å cell so that wrapping never matters for these Gaussians.
"""

import math

import pytest
import torch
from scipy import stats

from core.frameworks import AMShortcut, FrameworkConfig, MaterialODE, MaterialSDE, State


pytestmark = pytest.mark.usefixtures("one_thread")

M_X, S_X = 500.0, 0.8  # positions ~ N(500 Å, 0.8^2) per component
M_E, S_E = 0.7, 0.3  # element embeddings ~ N(0.7, 0.3^2) per component
BIG = 1000.0
N_ATOMS = 4000


def _moments(t, sigma_x_max, sigma_e, power=1.0):
    """Mean/std of the forward marginals of positions and elements at times t (N,1)."""
    phi = 0.5 * math.pi * t
    a = torch.cos(phi)
    std_x = torch.sqrt(S_X**2 + (sigma_x_max * t**power) ** 2)
    std_e = torch.sqrt((a * S_E) ** 2 + (sigma_e * torch.sin(phi)) ** 2)
    return M_X, std_x, a * M_E, std_e


class ExactNoiseModel(torch.nn.Module):
    """Exact posterior means E[eps | X_t] and E[v | E_t] for Gaussian data (the SDE network)."""

    def __init__(self, sigma_x_max, sigma_e, power=1.0):
        super().__init__()
        self.sx, self.se, self.power = sigma_x_max, sigma_e, power

    def forward(self, pos, elem, cell, batch, t, y=None, dt=None):
        t = t[batch].unsqueeze(-1).double()
        phi = 0.5 * math.pi * t
        a, b = torch.cos(phi), self.se * torch.sin(phi)
        _, std_x, mean_e, std_e = _moments(t, self.sx, self.se, self.power)
        eps_x = self.sx * t**self.power * (pos - M_X) / std_x**2
        e0_hat = M_E + a * S_E**2 / std_e**2 * (elem - mean_e)
        eps_e = b / std_e**2 * (elem - mean_e)
        v = -torch.sin(phi) * e0_hat + self.se * torch.cos(phi) * eps_e
        return eps_x, v


class ExactShortcutModel(ExactNoiseModel):
    """Exact PF-ODE flow map as shortcut: u(x, t, d) = (x - Phi_{t -> t-d}(x)) / d."""

    def forward(self, pos, elem, cell, batch, t, y=None, dt=None):
        d = dt[batch].unsqueeze(-1).double()
        if torch.all(d == 0):
            return super().forward(pos, elem, cell, batch, t, y, dt)
        ta = t[batch].unsqueeze(-1).double()
        _, sx0, me0, se0 = _moments(ta, self.sx, self.se, self.power)
        _, sx1, me1, se1 = _moments(ta - d, self.sx, self.se, self.power)
        x_next = M_X + (pos - M_X) * sx1 / sx0
        e_next = me1 + (elem - me0) * se1 / se0
        u_x, u_e = (pos - x_next) / d, (elem - e_next) / d
        return u_x / (self.power * self.sx * ta ** (self.power - 1)), u_e / (0.5 * math.pi)


class ExactVelocityModel(torch.nn.Module):
    """Material ODE drift E[X_1 - X_0 | X_t] for Gaussian data and a Gaussian start."""

    def __init__(self, s1_x, s1_e):
        super().__init__()
        self.s1_x, self.s1_e = s1_x, s1_e

    @staticmethod
    def _velocity(x, t, m0, s0, m1, s1):
        var = ((1 - t) * s0) ** 2 + (t * s1) ** 2
        mean = (1 - t) * m0 + t * m1
        return (m1 - m0) + (t * s1**2 - (1 - t) * s0**2) / var * (x - mean)

    def forward(self, pos, elem, cell, batch, t, y=None, dt=None):
        t = t[batch].unsqueeze(-1).double()
        return (self._velocity(pos, t, M_X, S_X, M_X, self.s1_x),
                self._velocity(elem, t, M_E, S_E, 0.0, self.s1_e))


def _start_state(std_x, sigma_e, seed=0, n_atoms=N_ATOMS):
    g = torch.Generator().manual_seed(seed)
    pos = M_X + std_x * torch.randn(n_atoms, 3, generator=g, dtype=torch.float64)
    elem = sigma_e * torch.randn(n_atoms, 2, generator=g, dtype=torch.float64)
    n_struct = 10
    cell = torch.eye(3, dtype=torch.float64).expand(n_struct, 3, 3) * BIG
    batch = torch.arange(n_struct).repeat_interleave(n_atoms // n_struct)
    return State(pos, elem, cell, batch, torch.zeros(n_struct, 0))


def _integrate(framework, model, state, n_steps):
    for t, dt, stochastic in framework.plan(n_steps):
        state = framework.step(model, state, t, dt, stochastic)
    return state


def _assert_matches_data(state):
    """Mean and std of the samples agree with the data law within ~4 standard errors."""
    x = state.pos.flatten()
    e = state.elem.flatten()
    for values, mean, std in ((x, M_X, S_X), (e, M_E, S_E)):
        n = values.numel()
        assert abs(values.mean().item() - mean) < 4 * std / math.sqrt(n) + 0.01 * std
        assert abs(values.std().item() / std - 1) < 4 / math.sqrt(2 * n) + 0.02


@pytest.mark.parametrize("power", [1.0, 2.0])
@pytest.mark.parametrize("stochastic", [False, True])
def test_sde_samplers_reproduce_gaussian_data(stochastic, power):
    """Reverse-SDE Euler–Maruyama (400 steps) and PF-ODE (200 steps) with the exact score,
    for the linear and the time-warped (t^2) position schedule."""
    torch.manual_seed(3)
    cfg = FrameworkConfig(name="sde", sigma_x_max=12.0, sigma_x_power=power, sigma_e=1.5)
    framework = MaterialSDE(cfg)
    model = ExactNoiseModel(12.0, 1.5, power)
    state = _start_state(math.sqrt(S_X**2 + 144.0), 1.5)
    n_steps = 400 if stochastic else 200
    plan = framework.plan(n_steps)
    assert sum(s for _, _, s in plan) == n_steps - 2  # first (t = 1) and last steps are PF
    for t, dt, s in plan:
        state = framework.step(model, state, t, dt, s and stochastic)
    _assert_matches_data(state)


def test_sde_sampler_with_wrong_score_fails():
    """The check above can fail: a score for the wrong data std gives the wrong samples."""
    global S_X
    framework = MaterialSDE(FrameworkConfig(name="sde"))
    model = ExactNoiseModel(12.0, 1.5)
    state = _start_state(math.sqrt(S_X**2 + 144.0), 1.5)
    saved, S_X = S_X, 2.0
    try:
        out = _integrate(framework, model, state, 100)
    finally:
        S_X = saved
    with pytest.raises(AssertionError):
        _assert_matches_data(out)


def test_material_ode_transports_gaussian_prior_to_data():
    framework = MaterialODE(FrameworkConfig(name="ode", sigma_e=1.0, ode_x_scale=1.0))
    model = ExactVelocityModel(3.0, 1.0)
    state = _start_state(3.0, 1.0)
    _assert_matches_data(_integrate(framework, model, state, 200))


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_one_shortcut_of_2d_equals_two_of_d(power):
    framework = AMShortcut(FrameworkConfig(name="shortcut", sigma_x_power=power))
    model = ExactShortcutModel(12.0, 1.5, power)
    state = _start_state(math.sqrt(S_X**2 + 144.0), 1.5, n_atoms=200)
    one = framework.step(model, state, 0.75, 0.5)
    two = framework.step(model, framework.step(model, state, 0.75, 0.25), 0.5, 0.25)
    assert torch.allclose(one.pos, two.pos, atol=1e-8)
    assert torch.allclose(one.elem, two.elem, atol=1e-10)
    # ... and a one-step sample of the exact shortcut model is distributed like the data.
    big = _start_state(math.sqrt(S_X**2 + 144.0), 1.5)
    _assert_matches_data(_integrate(framework, model, big, 1))


def _gaussian_data(n_struct=8, n_atoms=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = M_X + S_X * torch.randn(n_struct * n_atoms, 3, generator=g, dtype=torch.float64)
    elem = M_E + S_E * torch.randn(n_struct * n_atoms, 2, generator=g, dtype=torch.float64)
    cell = torch.eye(3, dtype=torch.float64).expand(n_struct, 3, 3) * BIG
    return State(pos, elem, cell, torch.arange(n_struct).repeat_interleave(n_atoms), torch.zeros(n_struct, 0))


def _noised_state(framework, t, seed=0):
    data = _gaussian_data(seed=seed)
    torch.manual_seed(seed)
    tt = torch.full((data.n_structures,), t, dtype=torch.float64)
    return framework.noisy(data, tt)[0], tt


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_bootstrap_target_is_exact_above_the_base_level(power):
    """Two exact shortcuts of d average to the exact shortcut of 2d (network units), to 1e-10."""
    framework = AMShortcut(FrameworkConfig(name="shortcut", sigma_x_power=power))
    model = ExactShortcutModel(12.0, 1.5, power)
    state, t = _noised_state(framework, 0.8)
    d = torch.full_like(t, 0.25)
    target_x, target_e = framework.bootstrap_target(model, state, t, d)
    want_x, want_e = model(state.pos, state.elem, state.cell, state.batch, t, state.y, 2 * d)
    assert torch.allclose(target_x, want_x, atol=1e-10)
    assert torch.allclose(target_e, want_e, atol=1e-10)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_base_level_bootstraps_from_the_instantaneous_network(power):
    """At d = min(sc_dt) the teacher is queried at d = 0 (what L_SDE trains), never at the
    untrained d_min; the target is then two Euler steps of the exact drift, whose error
    against the exact 2 d_min shortcut is first order: halving d_min halves it."""
    seen = []

    class Recording(ExactShortcutModel):
        def forward(self, pos, elem, cell, batch, t, y=None, dt=None):
            seen.append(dt.clone())
            return super().forward(pos, elem, cell, batch, t, y, dt)

    model = Recording(12.0, 1.5, power)
    errors = []
    for d_min in (2.0**-7, 2.0**-8):
        framework = AMShortcut(FrameworkConfig(name="shortcut", sigma_x_power=power, sc_dt=[d_min, 0.25]))
        state, t = _noised_state(framework, 0.5)
        seen.clear()
        target = framework.bootstrap_target(model, state, t, torch.full_like(t, d_min))
        assert len(seen) == 2 and all(torch.all(dt == 0) for dt in seen)
        want = model(state.pos, state.elem, state.cell, state.batch, t, state.y, torch.full_like(t, 2 * d_min))
        errors.append([(a - b).abs().max().item() for a, b in zip(target, want)])
        seen.clear()
        framework.bootstrap_target(model, state, t, torch.full_like(t, 0.25))  # above the base: d itself
        assert all(torch.all(dt == 0.25) for dt in seen)
    for coarse, fine in zip(*errors):
        assert 1e-6 < fine < coarse and 1.8 < coarse / fine < 2.2


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_self_consistency_loss_is_small_for_the_exact_shortcut(power):
    """L_SC is ~0 for the exact flow-map model (only the base level's Euler error remains),
    and clearly > 0 for the instantaneous drift used as a shortcut."""
    torch.manual_seed(0)
    framework = AMShortcut(FrameworkConfig(name="shortcut", sc_fraction=1.0, sigma_x_power=power))
    data = _gaussian_data()
    _, logs = framework.loss(ExactShortcutModel(12.0, 1.5, power), data)
    assert logs["loss_sc"] < 1e-6

    class Instantaneous(ExactNoiseModel):
        def forward(self, pos, elem, cell, batch, t, y=None, dt=None):
            return super().forward(pos, elem, cell, batch, t, y, None)

    torch.manual_seed(0)
    _, logs = framework.loss(Instantaneous(12.0, 1.5, power), data)
    assert logs["loss_sc"] > 1e-3


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_drift_units_weight_the_self_consistency_loss_by_the_squared_drift_scale(power):
    """sc_units = "drift" is the paper's Eq. 4, |u - target|^2 with u the PF drift: for one structure
    its position part is the noise-unit one times (power sigma_max t^(power-1))^2 at the L_SC
    start time t, its element part the noise-unit one times (pi/2)^2."""

    class Instantaneous(ExactNoiseModel):
        def forward(self, pos, elem, cell, batch, t, y=None, dt=None):
            return super().forward(pos, elem, cell, batch, t, y, None)

    model, data = Instantaneous(12.0, 1.5, power), _gaussian_data(n_struct=1)
    logs, times = {}, {}
    for units in ("noise", "drift"):
        framework = AMShortcut(FrameworkConfig(name="shortcut", sc_fraction=1.0, sigma_x_power=power, sc_units=units))
        seen, noisy = [], framework.noisy
        framework.noisy = lambda d, t, noisy=noisy, seen=seen: (seen.append(t.clone()), noisy(d, t))[1]
        torch.manual_seed(3)
        logs[units] = framework.loss(model, data)[1]
        times[units] = seen[1]  # the L_SC start time (the first call noises for L_SDE)
    noise, drift = logs["noise"], logs["drift"]
    assert torch.equal(times["noise"], times["drift"]) and noise["loss_sc_x"] > 0 and noise["loss_sc_e"] > 0
    scale = power * 12.0 * times["noise"].item() ** (power - 1.0)
    assert drift["loss_sc_x"] == pytest.approx(scale**2 * noise["loss_sc_x"], rel=1e-6)
    assert drift["loss_sc_e"] == pytest.approx((math.pi / 2) ** 2 * noise["loss_sc_e"], rel=1e-6)
    assert drift["loss_sc"] == pytest.approx(drift["loss_sc_x"] + 0.5 * drift["loss_sc_e"], rel=1e-9)
    with pytest.raises(ValueError, match="sc_units must be"):
        AMShortcut(FrameworkConfig(name="shortcut", sc_units="metres"))


@pytest.mark.parametrize("t", [0.02, 0.05, 0.2])
def test_exact_model_reaches_the_irreducible_noise_loss(t):
    """Targets are right: the exact posterior mean's eps-loss is S^2 / (S^2 + sigma_t^2)."""
    torch.manual_seed(1)
    framework = MaterialSDE(FrameworkConfig(name="sde"))
    data = _gaussian_data()
    tt = torch.full((data.n_structures,), t, dtype=torch.float64)
    noisy, eps_x, v = framework.noisy(data, tt)
    out_x, _ = ExactNoiseModel(12.0, 1.5)(noisy.pos, noisy.elem, noisy.cell, noisy.batch, tt)
    expected = S_X**2 / (S_X**2 + (12 * t) ** 2)
    assert ((out_x - eps_x) ** 2).mean().item() == pytest.approx(expected, rel=0.06)


def _clustered_atoms(cell, n=512, seed=0):
    """A 'crystal' far from uniform: every atom on one of 4 sites (± 0.1 Å)."""
    g = torch.Generator().manual_seed(seed)
    sites = torch.tensor([[0.1, 0.1, 0.1], [0.6, 0.6, 0.1], [0.6, 0.1, 0.6], [0.1, 0.6, 0.6]])
    frac = sites[torch.randint(4, (n,), generator=g)] + 0.01 * torch.randn(n, 3, generator=g)
    return frac @ cell


@pytest.mark.parametrize("cell", [torch.eye(3) * 17.0,
                                  torch.tensor([[16.0, 0, 0], [4.0, 15.0, 0], [2.0, 3.0, 17.0]])])
def test_sde_forward_marginal_at_t1_is_the_prior(cell):
    """Fractional coordinates at t = 1 are uniform (KS test); elements are N(0, sigma_e^2)."""
    torch.manual_seed(0)
    n_struct, n = 8, 512
    pos = torch.cat([_clustered_atoms(cell, n, s) for s in range(n_struct)])
    data = State(pos, torch.eye(2)[torch.randint(2, (n_struct * n,))], cell.expand(n_struct, 3, 3),
                 torch.arange(n_struct).repeat_interleave(n), torch.zeros(n_struct, 0))
    for sigma_x_max, uniform in ((12.0, True), (1.7, False)):
        framework = MaterialSDE(FrameworkConfig(name="sde", sigma_x_max=sigma_x_max))
        noisy, _, _ = framework.noisy(data, torch.ones(n_struct))
        frac = torch.linalg.solve(cell.T, noisy.pos.T).T
        p_values = [stats.kstest(frac[:, k].numpy(), "uniform").pvalue for k in range(3)]
        if uniform:
            assert min(p_values) > 1e-3
        else:
            assert min(p_values) < 1e-6  # the paper's 1.7 Å leaves the crystal visible at t = 1
    e = noisy.elem
    assert abs(e.mean().item()) < 4 * 1.5 / math.sqrt(e.numel())
    assert e.var().item() == pytest.approx(1.5**2, rel=4 * math.sqrt(2 / e.numel()))


def test_ode_forward_marginal_at_t1_is_the_prior():
    torch.manual_seed(0)
    cell = torch.eye(3) * 17.0
    data = State(_clustered_atoms(cell), torch.eye(2)[torch.randint(2, (512,))], cell.unsqueeze(0),
                 torch.zeros(512, dtype=torch.long), torch.zeros(1, 0))
    framework = MaterialODE(FrameworkConfig(name="ode", sigma_e=1.0))
    torch.manual_seed(5)
    noisy, mu_x, mu_e = framework.noisy(data, torch.ones(1))
    torch.manual_seed(5)
    prior = framework.prior(data.cell, data.batch, data.y, 2)
    assert torch.allclose(noisy.pos, prior.pos, atol=1e-4)
    assert torch.allclose(noisy.elem, prior.elem, atol=1e-6)


def test_training_time_density():
    """t_power = 1 is uniform on [t_min, 1]; t_power = 3 has mean t_min + (1 - t_min) / 4."""
    torch.manual_seed(0)
    for power, mean in ((1.0, 0.5), (3.0, 0.25)):
        framework = MaterialSDE(FrameworkConfig(name="sde", t_power=power, t_min=0.0))
        t = framework.random_times(200_000, "cpu")
        assert t.min() >= 0 and t.max() <= 1
        assert t.mean().item() == pytest.approx(mean, abs=0.003)


def test_training_time_band():
    """t_band_fraction f of L_SDE's times is uniform on t_band: with uniform t on [0, 1] the band
    [0.15, 0.35] then holds f + (1 - f) * 0.2 of the draws (0.6 at f = 0.5); the L_SC times (a
    lower bound given) keep their plain draw."""
    torch.manual_seed(0)
    framework = MaterialSDE(FrameworkConfig(name="sde", t_min=0.0, t_band=[0.15, 0.35], t_band_fraction=0.5))
    t = framework.random_times(200_000, "cpu")
    assert ((t >= 0.15) & (t <= 0.35)).float().mean().item() == pytest.approx(0.6, abs=0.005)
    assert (t < 0.15).float().mean().item() == pytest.approx(0.075, abs=0.003)
    bounded = framework.random_times(200_000, "cpu", low=0.5)
    assert bounded.min() >= 0.5 and bounded.mean().item() == pytest.approx(0.75, abs=0.003)


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0])
def test_self_consistency_levels_are_drawn_with_probability_proportional_to_2d_to_the_power(power):
    """sc_level_power p: level d is drawn with probability (2d)^p / sum (2d')^p. The default levels
    2d = 1/64 ... 1 are powers of two, so p = 1 gives the top level 64/127 and p = 0.5 gives it
    8/(sum_k 2^(k/2), k = 0..6) = 0.3212; p = 0 is uniform and keeps the old draw (same RNG use)."""
    framework = AMShortcut(FrameworkConfig(name="shortcut", sc_level_power=power))
    levels = torch.tensor(framework.config.sc_dt)
    expected = {0.0: torch.full((7,), 1 / 7), 1.0: 2.0 ** torch.arange(7.0) / 127}.get(
        power, 2.0 ** (torch.arange(7.0) / 2) / sum(2.0 ** (k / 2) for k in range(7)))
    assert framework.level_probabilities().float() == pytest.approx(expected, abs=1e-6)
    if power == 0.5:
        assert float(framework.level_probabilities()[-1]) == pytest.approx(0.3212, abs=1e-4)
    torch.manual_seed(0)
    d = framework.sample_sc_dt(140_000, "cpu")
    counts = torch.stack([(d == level).sum() for level in levels]).double()
    assert counts.sum() == len(d)
    assert (counts / len(d)).float() == pytest.approx(expected, abs=0.004)
    if power == 0.0:
        torch.manual_seed(1)
        uniform = levels[torch.randint(7, (50,))]
        torch.manual_seed(1)
        assert torch.equal(framework.sample_sc_dt(50, "cpu"), uniform)


def test_ghost_mean_target_is_the_conditional_mean_of_a_uniform_ghosts_noise():
    """ghost_target = "mean" replaces a ghost's position target by 0, which is exactly
    E[eps | x_t] for an atom at a uniform random position (how ghosts are padded): checked by
    Monte Carlo per octant of x_t in a periodic 8 Å cell where wrapping matters (sigma 2 Å);
    an atom at a fixed x_0 has a clearly nonzero conditional mean. Real atoms keep their noise."""
    from core.frameworks import periodic

    n, sigma = 60_000, 2.0
    cell = torch.eye(3).unsqueeze(0) * 8.0
    batch = torch.zeros(n, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    x0_uniform = periodic.uniform_positions(cell, batch, gen)
    x0_fixed = torch.full((n, 3), 1.0)  # off the octant centres, so octants see it asymmetrically
    for x0, expect_zero in ((x0_uniform, True), (x0_fixed, False)):
        x_t = periodic.wrap(x0 + sigma * torch.randn(n, 3, generator=gen), cell, batch)
        eps = periodic.wrapped_normal_eps(x_t, x0, torch.full((n, 1), sigma), cell, batch)
        octant = ((x_t // 4.0).long() * torch.tensor([4, 2, 1])).sum(-1)
        means = torch.stack([eps[octant == k].mean(0) for k in range(8)])
        if expect_zero:
            assert means.abs().max() < 0.06  # standard error ~ 1 / sqrt(7,500) = 0.012
        else:
            assert means.abs().max() > 0.2

    elem = torch.zeros(6, 3)
    elem[[0, 1], 0] = 1.0  # two ghosts
    elem[2:, 1] = 1.0
    data = State(torch.rand(6, 3) * 8.0, elem, cell, torch.zeros(6, dtype=torch.long), torch.zeros(1, 0))
    t = torch.tensor([0.3])
    out = {}
    for target in ("noise", "mean"):
        torch.manual_seed(1)
        out[target] = MaterialSDE(FrameworkConfig(name="sde", ghost_target=target)).noisy(data, t)
    (x_n, eps_n, v_n), (x_m, eps_m, v_m) = ((s.pos, e, v) for s, e, v in (out["noise"], out["mean"]))
    assert torch.equal(x_n, x_m) and torch.equal(v_n, v_m)
    assert torch.equal(eps_m[:2], torch.zeros(2, 3)) and eps_n[:2].abs().sum() > 0
    assert torch.equal(eps_m[2:], eps_n[2:])
    with pytest.raises(ValueError, match="ghost_target must be"):
        AMShortcut(FrameworkConfig(name="shortcut", ghost_target="zero"))
    with pytest.raises(ValueError, match="no noise target"):
        MaterialODE(FrameworkConfig(name="ode", ghost_target="mean"))
