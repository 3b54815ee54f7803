"""Noise-schedule coefficients and the wrapped-normal noise target, against first principles."""

import itertools
import math

import pytest
import torch

from core.frameworks import periodic
from core.frameworks.schedules import ElementSchedule, PositionSchedule


def _finite_diff(f, t, h=1e-6):
    return (f(t + h) - f(t - h)) / (2 * h)


def test_element_schedule_f_and_g2_follow_from_alpha_sigma():
    """f = d log(alpha)/dt and g^2 = d sigma^2/dt - 2 f sigma^2 (Song et al. 2021)."""
    es = ElementSchedule(1.5)
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    f_num = _finite_diff(lambda s: torch.log(es.alpha(s)), t)
    g2_num = _finite_diff(lambda s: es.sigma(s) ** 2, t) - 2 * f_num * es.sigma(t) ** 2
    assert torch.allclose(es.f(t), f_num, rtol=1e-6)
    assert torch.allclose(es.g2(t), g2_num, rtol=1e-6)


@pytest.mark.parametrize("power", [1.0, 2.0, 3.0])
def test_position_schedule_g2_follows_from_sigma(power):
    ps = PositionSchedule(12.0, power)
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    assert torch.allclose(ps.g2(t), _finite_diff(lambda s: ps.sigma(s) ** 2, t), rtol=1e-6)
    assert ps.sigma(torch.tensor(1.0)) == 12.0  # the t = 1 marginal (prior) does not depend on the warp


def test_velocity_parameterisation_identities():
    """eps and E_0 are recovered from (E_t, v); PF and SDE drifts equal the eps forms."""
    es = ElementSchedule(1.5)
    g = torch.Generator().manual_seed(0)
    e0 = torch.randn(50, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(50, 3, generator=g, dtype=torch.float64)
    t = torch.rand(50, 1, generator=g, dtype=torch.float64) * 0.98 + 0.01
    e_t, v = es.noise(e0, t, eps)
    assert torch.allclose(es.eps_from_v(e_t, v, t), eps)
    phi = 0.5 * math.pi * t
    assert torch.allclose(torch.cos(phi) * e_t - torch.sin(phi) * v, e0)
    assert torch.allclose(es.e0_from_v(e_t, v, t), e0)
    score = -eps / es.sigma(t)
    assert torch.allclose(es.pf_drift(v), es.f(t) * e_t - 0.5 * es.g2(t) * score)
    assert torch.allclose(es.sde_drift(e_t, v, t), es.f(t) * e_t - es.g2(t) * score)
    # The PF drift is the time derivative of the conditional path: d E_t / dt = (pi/2) v.
    h = 1e-6
    e_plus, _ = es.noise(e0, t + h, eps)
    e_minus, _ = es.noise(e0, t - h, eps)
    assert torch.allclose((e_plus - e_minus) / (2 * h), es.pf_drift(v), atol=1e-6)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_position_pf_drift_is_half_g2_score(power):
    ps = PositionSchedule(12.0, power)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64).unsqueeze(-1)
    eps = torch.randn(3, 3, dtype=torch.float64)
    score = -eps / ps.sigma(t)
    assert torch.allclose(ps.pf_drift(eps, t), -0.5 * ps.g2(t) * score)
    assert torch.allclose(ps.sde_drift(eps, t), -ps.g2(t) * score)
    # The PF drift is the time derivative of the conditional path X_t = X_0 + sigma(t) eps.
    assert torch.allclose(_finite_diff(lambda s: ps.sigma(s) * eps, t), ps.pf_drift(eps, t), rtol=1e-6)


@pytest.mark.parametrize("sigma", [0.2, 1.5, 3.5, 4.5, 8.0, 12.0])
def test_wrapped_normal_eps_matches_brute_force_image_sum(sigma):
    """Against autograd of log sum_L N(x; x0 + L, sigma^2) with 25^3 images, triclinic cell."""
    cell = torch.tensor([[10.0, 0, 0], [2.0, 9.0, 0], [1.5, -1.0, 11.0]], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(16, 3, generator=g, dtype=torch.float64) @ cell
    x = torch.rand(16, 3, generator=g, dtype=torch.float64) @ cell
    eps = periodic.wrapped_normal_eps(x, x0, torch.full((16, 1), sigma, dtype=torch.float64), cell.unsqueeze(0),
                                      torch.zeros(16, dtype=torch.long))
    k = 12
    lattice = torch.tensor(list(itertools.product(range(-k, k + 1), repeat=3)), dtype=torch.float64) @ cell
    xr = x.clone().requires_grad_(True)
    d = xr[:, None] - x0[:, None] - lattice[None]
    (grad,) = torch.autograd.grad(torch.logsumexp(-(d**2).sum(-1) / (2 * sigma**2), 1).sum(), xr)
    assert torch.allclose(eps, -sigma * grad, atol=1e-8)


def test_wrapped_normal_eps_is_minimum_image_noise_for_small_sigma():
    cell = torch.eye(3) * 17.0
    x0 = torch.rand(100, 3) * 17.0
    noise = torch.randn(100, 3)
    batch = torch.zeros(100, dtype=torch.long)
    x_t = periodic.wrap(x0 + 0.3 * noise, cell.unsqueeze(0), batch)
    eps = periodic.wrapped_normal_eps(x_t, x0, torch.full((100, 1), 0.3), cell.unsqueeze(0), batch)
    assert torch.allclose(eps, noise, atol=1e-4)


def test_prior_mismatch_of_default_and_paper_sigma():
    """12 Å makes a 17 Å cell's t = 1 marginal uniform to 1e-4; the paper's 1.7 Å does not."""
    cell = torch.eye(3) * 17.0
    assert periodic.prior_mismatch(cell, 12.0) == pytest.approx(math.exp(-2 * math.pi**2 * 144 / 289), rel=1e-6)
    assert periodic.prior_mismatch(cell, 12.0) < 1e-4
    assert periodic.prior_mismatch(cell, 1.7) > 0.5
