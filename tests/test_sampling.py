"""The sampler: output format, reproducibility, progress, step plans and refusals."""

import math

import numpy as np
import pytest
import torch

from core import sampling
from core.checkpoint import Checkpoint
from core.errors import UserError
from core.frameworks import FrameworkConfig, default_config, make_framework
from core.model import Denoiser, DenoiserConfig


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(framework="shortcut", schedule=None):
    torch.manual_seed(0)
    fw = make_framework(schedule or default_config(framework))
    cfg = DenoiserConfig(n_classes=3, n_properties=1, width=16, layers=2, vector_channels=2, cutoff=4.0,
                         use_dt=fw.uses_dt)
    stats = {"shear_modulus": {"mean": 30.0, "std": 4.0, "min": 20.0, "max": 40.0}}
    return Checkpoint(Denoiser(cfg), fw, [8, 14], 0.08, ["shear_modulus"], stats)


def test_generate_returns_atoms_without_ghosts_with_provenance():
    calls = []
    out = sampling.generate(_model(), 3, 2, 9.0, 0.08, {"shear_modulus": 31.0}, device="cpu", seed=1,
                            progress=lambda k, n: calls.append((k, n)), batch_size=2)
    assert len(out) == 3
    n_total = math.floor(0.08 * 9.0**3)
    for atoms in out:
        assert 0 < len(atoms) <= n_total
        assert set(atoms.numbers) <= {8, 14}
        assert np.allclose(atoms.cell.array, np.eye(3) * 9.0)
        frac = atoms.get_scaled_positions(wrap=False)
        assert frac.min() >= 0 and frac.max() < 1
        assert atoms.info["target_shear_modulus"] == 31.0 and atoms.info["steps"] == 2
        assert atoms.info["framework"] == "shortcut" and atoms.info["device"] == "cpu"
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]  # 2 batches x 2 steps


def test_same_seed_same_structures_and_batching_independent_of_order():
    a = sampling.generate(_model(), 2, 12, 9.0, device="cpu", seed=5)
    b = sampling.generate(_model(), 2, 12, 9.0, device="cpu", seed=5)
    c = sampling.generate(_model(), 2, 12, 9.0, device="cpu", seed=6)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    assert not np.allclose(a[0].positions[:5], c[0].positions[:5])


def test_step_plans():
    shortcut = make_framework(default_config("shortcut"))
    assert not any(s for _, _, s in shortcut.plan(49))  # PF shortcuts below 50 steps (the paper: below 10, App. B.3)
    plan = shortcut.plan(50)
    assert [s for _, _, s in plan] == [False] + [True] * 48 + [False]
    assert plan[0][:2] == (1.0, 0.02) and math.isclose(plan[-1][0], 0.02)
    sde = make_framework(default_config("sde"))
    assert [s for _, _, s in sde.plan(3)] == [False, True, False]
    assert not any(s for _, _, s in make_framework(default_config("ode")).plan(20))


def test_power_grid_plans():
    """t_k = (1 - k/n)^p: steps shrink towards t = 0, still end exactly at 0; p = 1 is uniform."""
    shortcut = make_framework(default_config("shortcut"))
    plan = shortcut.plan(4, 2.0)
    assert [t for t, _, _ in plan] == [1.0, 0.5625, 0.25, 0.0625]
    assert [dt for _, dt, _ in plan] == [0.4375, 0.3125, 0.1875, 0.0625]
    assert shortcut.plan(7, 1.0) == shortcut.plan(7)
    plan = shortcut.plan(50, 3.0)  # the SDE/EM switch depends on the step index, not on the grid
    assert [s for _, _, s in plan] == [False] + [True] * 48 + [False]
    assert math.isclose(sum(dt for _, dt, _ in plan), 1.0) and math.isclose(plan[-1][0], 0.02**3)


def test_grid_power_reaches_the_sampler_and_provenance():
    a = sampling.generate(_model(), 1, 3, 9.0, device="cpu", seed=2)
    b = sampling.generate(_model(), 1, 3, 9.0, device="cpu", seed=2, grid_power=2.0)
    assert a[0].info["grid_power"] == 1.0 and b[0].info["grid_power"] == 2.0
    assert not np.allclose(a[0].positions[:5], b[0].positions[:5])


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps must be a positive"),
    (dict(steps=2.5), "steps must be a positive"),
    (dict(n_samples=0), "number of samples"),
    (dict(properties={"bulk_modulus": 3.0}), "unknown property bulk_modulus"),
    (dict(properties={"shear_modulus": math.nan}), "finite number"),
    (dict(properties={"shear_modulus": math.inf}), "finite number"),
    (dict(cell=40.0), "too large for the model's position noise"),
    (dict(cell=[1.0, 1.0, 0.0]), "cell lengths must be positive"),
    (dict(cell=-9.0), "cell lengths must be positive"),
    (dict(cell=np.diag([9.0, 9.0, -9.0])), "right-handed"),
    (dict(cell=7.5), "plane spacing of 7.5 Å is below 8 Å"),  # 2 x the 4 Å cutoff
    (dict(seed=-1), "seed must be a whole number from 0"),
    (dict(batch_size=-1), "batch size must be a positive"),
    (dict(rho_max=-1.0), "rho_max"),
    (dict(device="tpu"), "unknown device"),
    (dict(grid_power=0.5), "grid_power must be a number from 1"),
    (dict(grid_power=math.nan), "grid_power must be a number from 1"),
    (dict(grid_power=5.0), "grid_power must be a number from 1"),
])
def test_bad_requests_raise_user_errors(kwargs, message):
    request = dict(n_samples=1, steps=1, cell=9.0, rho_max=0.08, device="cpu", **{})
    request.update(kwargs)
    with pytest.raises(UserError, match=message):
        sampling.generate(_model(), **request)


def test_requests_that_do_not_fit_in_memory_are_refused(monkeypatch):
    monkeypatch.setattr(sampling, "available_memory", lambda device: 10 * 2**20)
    with pytest.raises(UserError, match="GiB"):
        sampling.generate(_model(), 1, 1, 9.0, 0.08, device="cpu")


def test_memory_estimate_scales_with_batch_and_density():
    one = sampling.estimate_memory(1, 18.0, 0.11)
    assert sampling.estimate_memory(4, 18.0, 0.11) > 3.5 * one - 3 * 64 * 2**20
    assert sampling.estimate_memory(1, 18.0, 0.22) > 3 * (one - 64 * 2**20)
    assert 50 * 2**20 < one < 2 * 2**30  # ~640 atoms, ~70k edges: hundreds of MB at most


def test_paper_sigma_warns_instead_of_refusing_when_allowed():
    model = _model(schedule=FrameworkConfig(name="sde", sigma_x_max=1.7, allow_prior_mismatch=True))
    with pytest.warns(UserWarning, match="differs from the uniform prior"):
        sampling.generate(model, 1, 1, 9.0, 0.08, device="cpu")


class _PropertyProbe(torch.nn.Module):
    """A stand-in network whose outputs are closed-form in y: g = sum of given y (unset counts -1)."""

    cfg = DenoiserConfig(n_classes=3, n_properties=2)

    def forward(self, pos, elem, cell, batch, t, y=None, dt=None, graph=None):
        g = torch.nan_to_num(y, nan=-1.0).sum(-1)[batch].unsqueeze(-1)
        return pos * g, elem + g


def test_guidance_is_the_closed_form_combination_per_structure():
    """(1 + w) f(y) - w f(unset) where a property is given; f(y) itself where none is."""
    from core.model import GuidedDenoiser

    pos, elem = torch.randn(5, 3), torch.randn(5, 3)
    batch = torch.tensor([0, 0, 0, 1, 1])
    y = torch.tensor([[3.0, math.nan], [math.nan, math.nan]])
    t = torch.full((2,), 0.5)
    x_out, e_out = GuidedDenoiser(_PropertyProbe(), 2.0)(pos, elem, torch.eye(3).expand(2, 3, 3), batch, t, y)
    # structure 0: g = 3 - 1 = 2 given, -2 unset -> x: 3 * 2 pos - 2 * (-2) pos = 10 pos; e: elem + 3 * 2 - 2 * (-2)
    assert torch.allclose(x_out[:3], 10 * pos[:3]) and torch.allclose(e_out[:3], elem[:3] + 10)
    # structure 1: nothing given, passed through: g = -2
    assert torch.allclose(x_out[3:], -2 * pos[3:]) and torch.allclose(e_out[3:], elem[3:] - 2)
    x0, e0 = GuidedDenoiser(_PropertyProbe(), 0.0)(pos, elem, torch.eye(3).expand(2, 3, 3), batch, t, y)
    assert torch.equal(x0[:3], 2 * pos[:3]) and torch.equal(e0[:3], elem[:3] + 2)


def test_guidance_reaches_the_sampler_only_with_a_target():
    plain = sampling.generate(_model(), 1, 3, 9.0, device="cpu", seed=2, properties={"shear_modulus": 35.0})
    zero = sampling.generate(_model(), 1, 3, 9.0, device="cpu", seed=2, properties={"shear_modulus": 35.0},
                             guidance=0.0)
    guided = sampling.generate(_model(), 1, 3, 9.0, device="cpu", seed=2, properties={"shear_modulus": 35.0},
                               guidance=2.0)
    free = sampling.generate(_model(), 1, 3, 9.0, device="cpu", seed=2, guidance=2.0)
    free_plain = sampling.generate(_model(), 1, 3, 9.0, device="cpu", seed=2)
    assert np.array_equal(plain[0].positions, zero[0].positions)
    assert not np.allclose(plain[0].positions[:5], guided[0].positions[:5])
    assert np.array_equal(free[0].positions, free_plain[0].positions)  # no target: nothing to guide
    assert guided[0].info["guidance"] == 2.0 and free[0].info["guidance"] == 0.0 and plain[0].info["guidance"] == 0.0


@pytest.mark.parametrize("guidance", [-1.0, math.nan, 11.0, "2"])
def test_bad_guidance_is_refused(guidance):
    with pytest.raises(UserError, match="guidance must be a number from 0"):
        sampling.generate(_model(), 1, 1, 9.0, device="cpu", guidance=guidance)
