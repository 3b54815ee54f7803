"""The network's fast path (``Denoiser.fast``) computes the plain path's network, loss and samples.

Tolerances: in float32 the two paths differ only in summation order (outputs to 1e-5, the
AMShortcut loss to 1e-5 relative, gradients to 1e-4); in bfloat16 both round every product
to 8 bits of mantissa, but in different places, so the fast path must stay as close to the
float32 result as the plain bfloat16 path is (within 2x of its deviation) and the losses
agree to 2 %. Sampled structures (the shipped a-Si AMShortcut, 1 and 5 steps): identical
elements and positions to 1e-3 Å in float32; in bfloat16 over 99 % of the atoms keep their
element and positions agree to 0.02 Å (median) and 0.1 Å (99th percentile).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.checkpoint import load_checkpoint
from core.frameworks import State, default_config, make_framework
from core.model import Denoiser, DenoiserConfig
from core.sampling import generate
from core.model import BFloat16Autocast

CFG = dict(n_classes=3, n_properties=2, width=32, layers=2, vector_channels=4, cutoff=4.0, use_dt=True,
           distance_rbf=8, aggregation_norm=4.0)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _batch(seed=0, n_structures=2, n_atoms=40):
    """Random structures in a triclinic 8 Å cell (some cut off by less than twice the cutoff)."""
    g = torch.Generator().manual_seed(seed)
    cell = torch.tensor([[8.0, 0.0, 0.0], [1.5, 7.5, 0.0], [-1.0, 0.8, 7.8]])
    frac = torch.rand(n_structures * n_atoms, 3, generator=g)
    pos = frac @ cell
    classes = torch.randint(0, 3, (n_structures * n_atoms,), generator=g)
    elem = torch.nn.functional.one_hot(classes, 3).float()
    y = torch.randn(n_structures, 2, generator=g)
    y[0, 1] = float("nan")
    return State(pos, elem, cell.expand(n_structures, 3, 3).contiguous(),
                 torch.arange(n_structures).repeat_interleave(n_atoms), y)


def _network(seed=0):
    torch.manual_seed(seed)
    net = Denoiser(DenoiserConfig(**CFG))
    with torch.no_grad():  # make the small initial coordinate mixing matter
        for layer in net.layers:
            layer.coord.weight.mul_(50.0)
    return net


def _outputs(net, state, fast, bf16, grad=True):
    net.fast = fast
    call = BFloat16Autocast(net, "cpu") if bf16 else net
    n = state.n_structures
    t, dt = torch.linspace(0.2, 0.9, n), torch.linspace(0.0, 0.25, n)
    torch.manual_seed(5)  # a missing property draws a fresh null embedding
    with torch.set_grad_enabled(grad):
        return call(state.pos, state.elem, state.cell, state.batch, t, state.y, dt)


@pytest.mark.parametrize("grad", [True, False])
def test_fast_forward_equals_plain_in_float32(grad):
    net, state = _network(), _batch()
    plain = _outputs(net, state, False, False, grad)
    fast = _outputs(net, state, True, False, grad)
    for a, b in zip(plain, fast):
        assert a.abs().max() > 0.1
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 37, 500])
def test_chunked_inference_equals_one_chunk(monkeypatch, chunk):
    """Without autograd the edges run in chunks of whole receivers: any size gives the same sums."""
    import core.model.fast as fast

    net, state = _network(), _batch()
    whole = _outputs(net, state, True, False, grad=False)
    monkeypatch.setattr(fast, "CHUNK_EDGES", chunk)
    for a, b in zip(whole, _outputs(net, state, True, False, grad=False)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_chunks_on_several_threads_give_the_same_outputs_and_keep_the_thread_count(monkeypatch):
    """With 3 torch threads the chunks run on 3 Python threads, one core each: the same outputs
    as one thread, and the caller's thread count is back afterwards."""
    import core.model.fast as fast

    net, state = _network(), _batch()
    monkeypatch.setattr(fast, "CHUNK_EDGES", 200)
    monkeypatch.setattr(fast, "NATIVE", False)  # the PyTorch chunks (the fused kernel's threads: below)
    one = _outputs(net, state, True, False, grad=False)
    seen = []
    real = fast._edge_sums
    monkeypatch.setattr(fast, "_edge_sums", lambda *a: seen.append(torch.get_num_threads()) or real(*a))
    torch.set_num_threads(3)
    try:
        three = _outputs(net, state, True, False, grad=False)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(1)
    assert len(seen) > 2 * len(net.layers) and set(seen) == {1}  # several chunks a layer, each on one core
    for a, b in zip(one, three):
        assert not b.requires_grad  # the threads ran without autograd, like their caller
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    with torch.inference_mode():
        torch.set_num_threads(3)
        try:
            assert all(t.is_inference() for t in _outputs(net, state, True, False, grad=False))
        finally:
            torch.set_num_threads(1)


def test_chunks_hold_whole_receivers_and_their_padding_slots():
    import core.model.fast as fast

    chunks = fast._chunks(torch.tensor([3, 0, 7, 1, 4]), 5)  # edge ranges end at 3, 3, 10, 11, 15
    assert [c[:5] for c in chunks] == [(0, 2, 0, 3, 3), (2, 3, 3, 10, 7), (3, 5, 10, 15, 4)]
    assert chunks[0][5].tolist() == [0, 1, 2] and chunks[2][5].tolist() == [0, 4, 5, 6, 7]
    assert [c[:5] for c in fast._chunks(torch.tensor([3, 0, 7, 1, 4]), 100)] == [(0, 5, 0, 15, 7)]


@pytest.mark.parametrize("grad", [True, False])
def test_fast_forward_in_bfloat16_stays_as_close_to_float32_as_plain(grad):
    net, state = _network(), _batch()
    exact = _outputs(net, state, False, False, grad)
    plain = _outputs(net, state, False, True, grad)
    fast = _outputs(net, state, True, True, grad)
    for ref, a, b in zip(exact, plain, fast):
        assert (b - ref).abs().max() <= 2.0 * (a - ref).abs().max() + 1e-3
        assert (b - a).abs().max() <= 0.05 * ref.abs().max()


def _shortcut_loss_and_grads(net, state, fast, bf16, compiled=False):
    config = default_config("shortcut")
    config.sc_fraction = 1.0  # L_SDE and L_SC (the bootstrap targets from a teacher)
    framework = make_framework(config)
    teacher = _network(seed=1)
    net.fast = teacher.fast = fast
    teacher.compiled = compiled
    model, target = (BFloat16Autocast(m, "cpu") for m in (net, teacher)) if bf16 else (net, teacher)
    net.zero_grad(set_to_none=True)
    torch.manual_seed(7)
    loss, logs = framework.loss(model, state, target_model=target)
    loss.backward()
    return loss.item(), logs, [p.grad.clone() for p in net.parameters()]


def test_fast_shortcut_loss_and_gradients_equal_plain_in_float32():
    net, state = _network(), _batch()
    loss_p, logs_p, grads_p = _shortcut_loss_and_grads(net, state, False, False)
    loss_f, logs_f, grads_f = _shortcut_loss_and_grads(net, state, True, False)
    assert "loss_sc" in logs_p and loss_p > 0
    assert loss_f == pytest.approx(loss_p, rel=1e-5)
    assert logs_f["loss_sc"] == pytest.approx(logs_p["loss_sc"], rel=1e-5)
    for gp, gf in zip(grads_p, grads_f):
        torch.testing.assert_close(gf, gp, rtol=1e-4, atol=1e-6)


def test_fast_shortcut_loss_in_bfloat16_equals_plain():
    net, state = _network(), _batch()
    loss_p, _, grads_p = _shortcut_loss_and_grads(net, state, False, True)
    loss_f, _, grads_f = _shortcut_loss_and_grads(net, state, True, True)
    assert loss_f == pytest.approx(loss_p, rel=0.02)
    flat_p, flat_f = torch.cat([g.flatten() for g in grads_p]), torch.cat([g.flatten() for g in grads_f])
    assert torch.nn.functional.cosine_similarity(flat_p, flat_f, dim=0) > 0.99


@pytest.fixture(scope="module")
def asi_shortcut():
    return load_checkpoint("assets/checkpoints/a-Si/shortcut")


def _positions(atoms_list):
    return np.concatenate([a.positions for a in atoms_list]), np.concatenate([a.numbers for a in atoms_list])


@pytest.mark.parametrize("steps", [1, 5])
def test_fast_sampling_gives_the_same_structures(asi_shortcut, steps):
    cell = asi_shortcut.training["cell"]
    plain = generate(asi_shortcut, 2, steps, cell, seed=3, device="cpu", fast=False)
    fast = generate(asi_shortcut, 2, steps, cell, seed=3, device="cpu")  # the default
    assert asi_shortcut.network.fast is False  # generate restores the switch
    (pp, zp), (pf, zf) = _positions(plain), _positions(fast)
    assert np.array_equal(zp, zf)
    assert np.abs(pp - pf).max() < 1e-3  # Å


def _final_state(checkpoint, steps, fast, bf16, n=2, seed=3):
    """The sampled state at t = 0, ghosts included (generate's loop without the conversion)."""
    net = checkpoint.network
    net.fast = fast
    network = BFloat16Autocast(net, "cpu") if bf16 else net
    framework, cell = checkpoint.framework, torch.tensor(checkpoint.training["cell"], dtype=torch.float32)
    n_atoms = int(checkpoint.rho_max * float(torch.linalg.det(cell)))
    with torch.inference_mode():
        torch.manual_seed(seed)
        state = framework.prior(cell.expand(n, 3, 3).contiguous(), torch.arange(n).repeat_interleave(n_atoms),
                                torch.zeros(n, 0), net.cfg.n_classes)
        for t, dt, stochastic in framework.plan(steps):
            state = framework.step(network, state, t, dt, stochastic)
    net.fast = False
    return state, cell.numpy()


@pytest.mark.parametrize("steps", [1, 5])
def test_fast_sampling_in_bfloat16_gives_the_same_structures(asi_shortcut, steps):
    """bfloat16 networks: the same structures to a few hundredths of an Å; an atom whose element
    scores are nearly tied may come out ghost on one path and Si on the other (under 1 %)."""
    plain, cell = _final_state(asi_shortcut, steps, False, True)
    fast, _ = _final_state(asi_shortcut, steps, True, True)
    same_class = (plain.elem.argmax(-1) == fast.elem.argmax(-1)).double().mean().item()
    frac = (plain.pos - fast.pos).double().numpy() @ np.linalg.inv(cell)
    gap = np.linalg.norm((frac - np.round(frac)) @ cell, axis=1)  # minimum image, Å
    # measured on the shipped a-Si model: 1 step 0.998 / 0.013 / 0.035 Å, 5 steps 1.0 / 0.006 / 0.025 Å
    assert same_class > 0.99
    assert np.median(gap) < 0.02 and np.quantile(gap, 0.99) < 0.1


def test_compiled_kernels_give_the_fast_loss_gradients_and_samples(asi_shortcut):
    """``compiled`` (torch.compile of the per-layer kernels) changes only the summation order:
    the AMShortcut loss (its bootstrap targets run the no-autograd kernels) and gradients as
    the fast path's in float32, and the same sampled structures."""
    net, state = _network(), _batch()
    loss_f, logs_f, grads_f = _shortcut_loss_and_grads(net, state, True, False)
    net.compiled = True
    try:
        loss_c, logs_c, grads_c = _shortcut_loss_and_grads(net, state, True, False, compiled=True)
    finally:
        net.compiled = False
    assert loss_c == pytest.approx(loss_f, rel=1e-5)
    assert logs_c["loss_sc"] == pytest.approx(logs_f["loss_sc"], rel=1e-5)
    for gf, gc in zip(grads_f, grads_c):
        torch.testing.assert_close(gc, gf, rtol=1e-4, atol=1e-6)
    cell = asi_shortcut.training["cell"]
    fast = generate(asi_shortcut, 2, 1, cell, seed=3, device="cpu")
    compiled = generate(asi_shortcut, 2, 1, cell, seed=3, device="cpu", compile=True)
    assert asi_shortcut.network.compiled is False  # generate restores the switch
    (pf, zf), (pc, zc) = _positions(fast), _positions(compiled)
    assert np.array_equal(zf, zc)
    assert np.abs(pf - pc).max() < 1e-3  # Å


@pytest.mark.parametrize("variant", [{}, {"width": 64, "vector_channels": 8, "attention": False},
                                     {"width": 20, "vector_channels": 3}])
def test_native_edge_kernel_equals_the_pytorch_chunks(monkeypatch, variant):
    """Sampling calls run a layer's edge work in the fused C kernel (``core.model.native``): the
    same outputs as the PyTorch chunks to float rounding, for the generic loops (width 32, 4
    channels, gated messages; width 20 and 3 channels, which leave remainders to the 8-lane and
    12-row register tiles), and the copy specialised to the shipped width 64 and 8 channels
    (here without the gate); on 3 threads the same as on one."""
    import core.model.fast as fast
    from core.model import native

    assert native.available()  # a C compiler is part of the test environment
    monkeypatch.setattr(fast, "CHUNK_EDGES", 300)
    torch.manual_seed(0)
    net = Denoiser(DenoiserConfig(**{**CFG, **variant}))
    with torch.no_grad():
        for layer in net.layers:
            layer.coord.weight.mul_(50.0)
    state = _batch()
    calls = []
    real = native.edge_sums
    monkeypatch.setattr(native, "edge_sums", lambda *a: calls.append(1) or real(*a))
    fused = _outputs(net, state, True, False, grad=False)
    assert len(calls) > len(net.layers)  # several chunks a layer, all in the kernel
    monkeypatch.setattr(fast, "NATIVE", False)
    chunks = _outputs(net, state, True, False, grad=False)
    for a, b in zip(chunks, fused):
        assert a.abs().max() > 0.1
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(fast, "NATIVE", True)
    torch.set_num_threads(3)
    try:
        three = _outputs(net, state, True, False, grad=False)
    finally:
        torch.set_num_threads(1)
    exact = variant.get("width", CFG["width"]) % 8 == 0  # the BLAS itself rounds odd widths per thread
    for a, b in zip(fused, three):
        torch.testing.assert_close(b, a, rtol=0 if exact else 1e-6, atol=0 if exact else 1e-6)


def test_the_kernel_compiles_once_into_the_cache(monkeypatch, tmp_path):
    """A fresh cache gets one compiled kernel, named by the source and flags, reused afterwards."""
    from core.model import native

    monkeypatch.setattr(native, "_LIB", False)
    monkeypatch.setenv("AMSHORTCUT_CACHE", str(tmp_path))
    assert native.available()
    built = list(tmp_path.rglob("*.so"))
    assert len(built) == 1 and built[0].parent == tmp_path / "kernels"
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(native, "_LIB", False)
    assert native.available() and built[0].stat().st_mtime_ns == stamp


def test_without_a_compiler_sampling_keeps_the_pytorch_chunks(monkeypatch, tmp_path):
    """No working C compiler, a cache directory that cannot be made, or AMSHORTCUT_NATIVE=0:
    ``available()`` is False and the fast path computes the same outputs with the PyTorch chunks."""
    from core.model import native

    monkeypatch.setattr(native, "_LIB", False)
    monkeypatch.setenv("AMSHORTCUT_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert not native.available()
    net, state = _network(), _batch()
    fast_out = _outputs(net, state, True, False, grad=False)
    plain = _outputs(net, state, False, False, grad=False)
    for a, b in zip(plain, fast_out):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(native, "_LIB", False)
    monkeypatch.delenv("CC")
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("AMSHORTCUT_CACHE", str(tmp_path / "a-file"))  # a cache that cannot be made
    assert not native.available()
    monkeypatch.setattr(native, "_LIB", False)
    monkeypatch.setenv("AMSHORTCUT_CACHE", str(tmp_path))
    monkeypatch.setenv("AMSHORTCUT_NATIVE", "0")
    assert not native.available()
    assert not list(tmp_path.rglob("*.so"))  # nothing compiled
