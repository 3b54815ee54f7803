"""Symmetries of the flexible material denoiser (paper Sec. 4.4, App. B.4) and its property embedding."""

import math

import pytest
import torch

from core.model import Denoiser, DenoiserConfig
from core.model.embedding import PropertyEmbedding


pytestmark = pytest.mark.usefixtures("one_thread")

CELL = torch.tensor([[9.0, 0.0, 0.0], [1.5, 8.5, 0.0], [-1.0, 2.0, 9.5]], dtype=torch.float64)


def _model(seed=0, coord_from_message=True, distance_rbf=0):
    torch.manual_seed(seed)
    cfg = DenoiserConfig(n_classes=3, n_properties=2, width=32, layers=3, vector_channels=4, cutoff=5.0,
                         use_dt=True, coord_from_message=coord_from_message, distance_rbf=distance_rbf)
    return Denoiser(cfg).double().eval()


def _inputs(seed=0, n=40):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 3, generator=g, dtype=torch.float64) @ CELL
    elem = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return dict(pos=pos, elem=elem, cell=CELL.unsqueeze(0), batch=torch.zeros(n, dtype=torch.long),
                t=torch.tensor([0.4], dtype=torch.float64), y=torch.tensor([[0.5, -1.0]], dtype=torch.float64),
                dt=torch.tensor([0.125], dtype=torch.float64))


def _run(model, inputs):
    with torch.no_grad():
        return model(**inputs)


def test_permutation_equivariance():
    model, inp = _model(), _inputs()
    x, e = _run(model, inp)
    perm = torch.randperm(len(inp["pos"]))
    x_p, e_p = _run(model, {**inp, "pos": inp["pos"][perm], "elem": inp["elem"][perm]})
    assert torch.allclose(x_p, x[perm], atol=1e-10)
    assert torch.allclose(e_p, e[perm], atol=1e-10)


def test_translation_invariance_mod_cell():
    model, inp = _model(), _inputs()
    x, e = _run(model, inp)
    x_t, e_t = _run(model, {**inp, "pos": inp["pos"] + torch.tensor([3.3, -7.1, 12.9], dtype=torch.float64)})
    assert torch.allclose(x_t, x, atol=1e-10)
    assert torch.allclose(e_t, e, atol=1e-10)


@pytest.mark.parametrize("coord_from_message,distance_rbf", [(True, 0), (False, 0), (True, 16)])
def test_rotation_equivariance_with_rotated_cell(coord_from_message, distance_rbf):
    model, inp = _model(coord_from_message=coord_from_message, distance_rbf=distance_rbf), _inputs()
    x, e = _run(model, inp)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4)))
    x_r, e_r = _run(model, {**inp, "pos": inp["pos"] @ q.T, "cell": inp["cell"] @ q.T})
    assert torch.allclose(x_r, x @ q.T, atol=1e-9)
    assert torch.allclose(e_r, e, atol=1e-9)
    assert x.abs().max() > 1e-4  # the check is not vacuous


@pytest.mark.parametrize("coord_from_message,distance_rbf", [(True, 0), (False, 0), (True, 16)])
def test_invariance_to_the_periodic_image_of_each_atom(coord_from_message, distance_rbf):
    model, inp = _model(coord_from_message=coord_from_message, distance_rbf=distance_rbf), _inputs()
    x, e = _run(model, inp)
    shifts = torch.randint(-2, 3, (len(inp["pos"]), 3)).double() @ CELL
    x_s, e_s = _run(model, {**inp, "pos": inp["pos"] + shifts})
    assert torch.allclose(x_s, x, atol=1e-9)
    assert torch.allclose(e_s, e, atol=1e-9)


def test_batched_structures_are_independent():
    """Two structures in one batch give the same outputs as each alone (no cross talk)."""
    model = _model()
    a, b = _inputs(1, 30), _inputs(2, 50)
    joint = dict(pos=torch.cat([a["pos"], b["pos"]]), elem=torch.cat([a["elem"], b["elem"]]),
                 cell=torch.cat([a["cell"], 1.1 * b["cell"]]),
                 batch=torch.cat([a["batch"], b["batch"] + 1]), t=torch.cat([a["t"], 0.5 * b["t"]]),
                 y=torch.cat([a["y"], b["y"]]), dt=torch.cat([a["dt"], b["dt"]]))
    x, e = _run(model, joint)
    x_a, e_a = _run(model, a)
    x_b, e_b = _run(model, {**b, "pos": b["pos"], "cell": 1.1 * b["cell"], "t": 0.5 * b["t"]})
    assert torch.allclose(x[:30], x_a, atol=1e-10) and torch.allclose(e[30:], e_b, atol=1e-10)
    assert torch.allclose(x[30:], x_b, atol=1e-10) and torch.allclose(e[:30], e_a, atol=1e-10)


def test_outputs_depend_on_time_step_size_and_properties():
    model, inp = _model(), _inputs()
    x, _ = _run(model, inp)
    for key, value in (("t", 0.9), ("dt", 0.5)):
        x2, _ = _run(model, {**inp, key: torch.tensor([value], dtype=torch.float64)})
        assert (x2 - x).abs().max() > 1e-6
    x3, _ = _run(model, {**inp, "y": torch.tensor([[2.0, -1.0]], dtype=torch.float64)})
    assert (x3 - x).abs().max() > 1e-6


def test_property_embedding_given_and_missing():
    """Given values: LayerNorm(Linear(y)), deterministic. Missing: fresh N(0, I) every call."""
    torch.manual_seed(0)
    emb = PropertyEmbedding(2, 64)
    y = torch.tensor([[0.3, math.nan], [1.0, -0.5]])
    a, b = emb(y), emb(y)
    given = a.view(2, 2, 64)
    assert torch.allclose(a.view(2, 2, 64)[:, 0], b.view(2, 2, 64)[:, 0])
    assert not torch.allclose(a.view(2, 2, 64)[0, 1], b.view(2, 2, 64)[0, 1])
    assert given[0, 1].std().item() == pytest.approx(1.0, abs=0.35)  # N(0, I) null vector
    assert given[1, 1].mean().abs().item() < 1e-5  # LayerNorm output (unit affine at init)
    # Gradients stay finite with missing values present.
    emb(y).sum().backward()
    assert torch.isfinite(emb.weight.grad).all()


def test_null_embeddings_normal_affine_and_learned():
    """With a trained-looking LayerNorm scale (0.1), a "normal" null vector is ~10x the given
    ones; an "affine" null goes through the same scale and shift; a "learned" one is a trained
    parameter; old configs keep "normal"."""
    torch.manual_seed(0)
    y = torch.tensor([[0.5]]).repeat(4096, 1)
    missing = torch.full((4096, 1), math.nan)
    scales = {}
    for null in ("normal", "affine"):
        emb = PropertyEmbedding(1, 8, null=null)
        with torch.no_grad():
            emb.norm_weight.fill_(0.1)
            emb.norm_bias.fill_(0.2)
        given, drawn = emb(y), emb(missing)
        assert torch.allclose(given, emb(y))  # a given value: deterministic either way
        scales[null] = (drawn - 0.2).pow(2).mean().sqrt().item() / (given - 0.2).pow(2).mean().sqrt().item()
        assert drawn.mean().item() == pytest.approx(0.2 if null == "affine" else 0.0, abs=0.01)
    assert scales["normal"] == pytest.approx(10.0, rel=0.05) and scales["affine"] == pytest.approx(1.0, rel=0.05)
    learned = PropertyEmbedding(1, 8, null="learned")
    with torch.no_grad():
        learned.null_vector.fill_(0.5)
    drawn = learned(missing[:3])
    assert torch.equal(drawn, torch.full((3, 8), 0.5))  # one trained vector, nothing drawn
    drawn.sum().backward()
    assert learned.null_vector.grad.abs().sum().item() == 24.0
    with pytest.raises(ValueError, match="property null"):
        PropertyEmbedding(1, 8, null="zero")
    config = _model().cfg.to_dict()
    del config["property_null"]  # a checkpoint written before the option existed
    assert DenoiserConfig(**config).property_null == "normal"


def test_property_bumps_keep_values_apart_where_the_plain_embedding_saturates():
    """LayerNorm(y w + b) with |w| >> |b| (as trained) gives y = 1 and y = 3 almost one vector;
    with 12 bumps on [-4, 4] they stay as far apart as y = -1 and y = 1, and only values past
    the clamp (4.5) coincide."""
    torch.manual_seed(0)
    plain, bumps = PropertyEmbedding(1, 8), PropertyEmbedding(1, 8, features=12)
    with torch.no_grad():
        plain.bias.mul_(0.1)  # |b| / |w| ~ 0.01
    ys = torch.tensor([[-1.0], [1.0], [3.0], [5.0], [6.0]])
    for emb, far in ((plain, False), (bumps, True)):
        h = emb(ys).detach()
        gap, spread = (h[1] - h[2]).norm().item(), (h[0] - h[1]).norm().item()
        assert (gap > 0.5 * spread) == far, (gap, spread)
    h = bumps(ys).detach()
    assert torch.equal(h[3], h[4])  # both clamped to 4.5
    assert bumps.bumps(torch.tensor([[0.0]])).shape == (1, 1, 12)
    with pytest.raises(ValueError, match="at least 2"):
        PropertyEmbedding(1, 8, features=1)


def test_mean_neighbour_weight_matches_a_direct_sum():
    """The data-derived aggregation norm equals sum_j f_cut(r_ij) averaged over atoms (brute force)."""
    import itertools

    from core.model.denoiser import mean_neighbour_weight

    inp = _inputs(n=12)
    pos, cell = inp["pos"], CELL
    images = torch.tensor(list(itertools.product(range(-2, 3), repeat=3)), dtype=torch.float64) @ cell
    d = (pos[None, :, None] + images[None, None] - pos[:, None, None]).norm(dim=-1)  # (i, j, image)
    d = d[(d > 1e-9) & (d < 5.0)]
    expected = (2 * torch.tanh(1 - d / 5.0) ** 2).sum().item() / len(pos)
    got = mean_neighbour_weight(pos, cell.unsqueeze(0), inp["batch"], 5.0)
    assert got == pytest.approx(expected, rel=1e-9)


def test_gaussian_radial_basis_closed_form():
    """Centres evenly spaced on [0, r_cut], width r_cut / n: exp(-(r - mu)^2 / 2w^2)."""
    from core.model.denoiser import gaussian_rbf

    r = torch.tensor([[0.0], [1.6], [5.0]], dtype=torch.float64)
    basis = gaussian_rbf(r, 5.0, 11)  # mu = 0, 0.5, ..., 5; w = 5/11
    assert basis.shape == (3, 11)
    assert basis[0, 0] == pytest.approx(1.0) and basis[2, 10] == pytest.approx(1.0)
    assert basis[1, 3] == pytest.approx(math.exp(-0.5 * (0.1 / (5 / 11)) ** 2), rel=1e-12)
    # 0.1 Å at a 1.6 Å bond moves the basis by O(0.1) where the paper's tanh(r^2/r_cut^2) moves 0.025.
    shifted = gaussian_rbf(r + 0.1, 5.0, 11)
    assert (shifted[1] - basis[1]).abs().max() > 0.08


def test_distance_basis_changes_the_network_and_old_configs_default_to_none():
    inp = _inputs()
    x0, _ = _run(_model(), inp)
    x1, _ = _run(_model(distance_rbf=16), inp)
    assert x0.shape == x1.shape and (x0 - x1).abs().max() > 1e-6
    config = _model().cfg.to_dict()
    del config["distance_rbf"]  # a checkpoint written before the option existed
    assert DenoiserConfig(**config).distance_rbf == 0
