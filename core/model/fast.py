"""Fast evaluation of ``Denoiser``: the same network and weights, fewer and cheaper kernels.

``Denoiser.fast = True`` routes ``forward`` here; ``tests/test_fast_path.py`` pins it to the
plain forward. What changes, and why (torch.profiler on one CPU core, shipped AMShortcut
recipes; numbers in benchmarks/results/throughput.json):

- the coordinate update sum_j cut_ij Phi_ij d_ij (Phi_ij = W_c m_ij, a k x k matrix per
  edge) is W_c applied to G_i = sum_j cut_ij m_ij (x) d_ij: a batched matrix product over
  receivers with their edges padded to the largest degree, instead of an (E, k*k) Linear
  output and E tiny k x k products (which took 12 % of a training step). The gated message
  sum is a product with the same padded messages (``_edge_sums``).
- precision: under a bfloat16 autocast region the whole network runs in bfloat16 with its
  weights cast once per call, instead of autocast's per-op casts of activations (11 % of a
  training step was dtype copies); distances and coordinates stay float32.
- gathers: ``index_select`` with an ``index_add_`` backward (5x faster than the
  ``index_put_`` autograd uses for ``a[row]``); padding with an ``index_select`` backward.
- the distance features' share of every layer's first edge Linear (``W_0 [e_ij, rbf(r_ij)]``, a
  function of r alone) is one product for all layers per call, and the basis avoids denormal
  exponentials (20x slower). Without autograd on a CPU that function is tabulated on a fine r
  grid and interpolated per edge instead: the 32-Gaussian basis and its product were a fifth of
  an a-SiO2 sampling call. Under autograd the table's gathers and their backward cost more
  than the product, so training keeps the product.
- the k coordinate channels are held coordinate-major ((N, 3k), column i * k + c), the layout
  of the padded products, so the per-edge unit vectors and the updates need no transposed
  copies (5-7 % of a sampling call, 6 % of a training step).
- the coordinate mixing W_c is stored output-major for ``F.linear``: this CPU's BLAS multiplies
  by a contiguous (k W) x k right factor 2.5x slower (14 against 35 GFLOP/s).
- without autograd (sampling, AMShortcut's bootstrap targets) on a CPU a layer's edge work runs
  in chunks of whole receivers with about ``CHUNK_EDGES`` edges, in place, so its intermediates
  stay in the core's cache (on a 32-structure sampling batch 2-3x with AMX, 1.5-2x on an AVX2
  CPU, BENCHMARKS.md). With several torch threads the chunks are shared out to that many Python
  threads, each running its chunks on one core (``_edge_sums_all``): one chunk per core instead
  of every small kernel split over all cores, whose barriers cost more than the work (2.3x
  slower at 2 threads on a loaded machine).

- in float32 on a CPU those chunks run in a fused C kernel (``core.model.native``, compiled on
  first use; ``NATIVE``) when a C compiler works: each edge's gathers, features, LayerNorms,
  SiLUs, gate and receiver sums in loops on either side of the edge MLP's width x width
  product, which stays with the BLAS, and the coordinate update's per-receiver sums in register
  tiles (about 2x a sampling call on an AVX2 CPU). With it, the compiled path compiles only the
  node MLP for sampling.

- optionally (``Denoiser.compiled``) the two per-layer kernels, edge sums and node MLP, run
  compiled by ``torch.compile`` (``kernels``), which fuses their elementwise work: 1.2x a
  training step, 1.1-1.4x a sampling call, after 15-60 s of compiling per process.

Only ``coord_from_message`` networks (every shipped model) take this path; others run the
plain forward.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
from torch.nn import functional as F

from core.model import native

DISTANCE_TABLE = 8192
"""Intervals on [0, r_cut] of the no-autograd path's table of the distance features' share of
the first edge Linear (a function of r alone; 5e-4 Å apart for a 4 Å cutoff, where the 32
Gaussians of 0.125 Å give interpolation errors near 1e-6 of the weights)."""

CHUNK_EDGES = 8192
"""Edges per chunk of the no-autograd path (about 2 MiB of float32 activations at width 64;
4096-16384 measured alike)."""


NATIVE = True
"""Whether sampling calls (no autograd, CPU, float32) use the fused C edge kernel
(``core.model.native``) when it compiles; False keeps the PyTorch chunks."""


class _Gather(torch.autograd.Function):
    """``src[index]`` along dim 0 with an ``index_add_`` backward (in the gradient's dtype, as
    autograd's own ``index_put_`` accumulates)."""

    @staticmethod
    def forward(ctx, src, index):
        ctx.save_for_backward(index)
        ctx.n_rows = src.shape[0]
        return src.index_select(0, index)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        out = torch.zeros(ctx.n_rows, *grad.shape[1:], dtype=grad.dtype, device=grad.device)
        return out.index_add_(0, index, grad), None


class _Pad(torch.autograd.Function):
    """Rows of ``src`` written to rows ``slot`` of a zero (n_slots, ...) buffer; backward gathers."""

    @staticmethod
    def forward(ctx, src, slot, n_slots):
        ctx.save_for_backward(slot)
        return src.new_zeros(n_slots, *src.shape[1:]).index_copy_(0, slot, src)

    @staticmethod
    def backward(ctx, grad):
        (slot,) = ctx.saved_tensors
        return grad.index_select(0, slot), None, None


def pad(src, slot, n_slots):
    """``src`` scattered to rows ``slot`` of zeros (n_slots, ...)."""
    if src.requires_grad and torch.is_grad_enabled():
        return _Pad.apply(src, slot, n_slots)
    return src.new_zeros(n_slots, *src.shape[1:]).index_copy_(0, slot, src)


def gather(src, index):
    """Rows ``src[index]`` (autograd-aware only when needed)."""
    if src.requires_grad and torch.is_grad_enabled():
        return _Gather.apply(src, index)
    return src.index_select(0, index)


def _layer_norm_silu(x, norm, inplace=False):
    weight, bias, eps = norm
    return F.silu(F.layer_norm(x, weight.shape, weight, bias, eps), inplace=inplace)


def _norm(module, dtype):
    """A LayerNorm's (weight, bias, eps) in the compute dtype."""
    return module.weight.to(dtype), module.bias.to(dtype), module.eps


class _Weights:
    """A layer's parameters cast once to the compute dtype: tensors, ints and floats only, so
    that one compiled kernel (``kernels(compiled=True)``) serves every layer."""

    def __init__(self, layer, dtype, n0):
        msg = layer.message
        self.k = layer.k
        self.node_w = msg.node_proj.weight.to(dtype)
        self.node_b = msg.node_proj.bias.to(dtype)
        self.edge_w = msg.edge_proj.weight[:, n0:].to(dtype)  # the per-layer coordinate features
        self.norm1 = _norm(msg.norm1, dtype)
        lin2, self.norm2 = msg.out[0], _norm(msg.out[1], dtype)
        self.lin2_w, self.lin2_b = lin2.weight.to(dtype), lin2.bias.to(dtype)
        self.gate = (layer.gate.weight.to(dtype), layer.gate.bias.to(dtype)) if layer.attention else None
        k = layer.k
        # W_c[(c, o), h] as an o x (c h) matrix: dx[(n, i), o] = sum_(c,h) G[n, i, c, h] W_c[(c, o), h].
        # Stored o-major for F.linear: a product with a contiguous (c h) x 8 right factor runs at
        # 2.5x less speed on this CPU's BLAS (14 against 35 GFLOP/s, 600 x 512 x 8).
        self.coord_mix = layer.coord.weight.view(k, k, -1).permute(1, 0, 2).reshape(k, -1).contiguous().to(dtype)
        self.node_mlp = [_node_op(m, dtype) for m in layer.node]


def _node_op(module, dtype):
    """A node-MLP module as (kind, tensors and numbers...)."""
    if isinstance(module, torch.nn.Linear):
        return "linear", module.weight.to(dtype), module.bias.to(dtype)
    if isinstance(module, torch.nn.LayerNorm):
        return ("norm", *_norm(module, dtype))
    if isinstance(module, torch.nn.SiLU):
        return ("silu",)
    raise TypeError(f"the fast path has no node-MLP op for {type(module).__name__}")


def _node_mlp(weights, z):
    for kind, *args in weights.node_mlp:
        if kind == "linear":
            z = F.linear(z, *args)
        elif kind == "norm":
            weight, bias, eps = args
            z = F.layer_norm(z, weight.shape, weight, bias, eps)
        else:
            z = F.silu(z)
    return z


_COMPILED = None  # (edge sums, node MLP) compiled, made on first use


def kernels(compiled: bool = False):
    """The per-layer kernels (edge sums, node MLP): as written, or compiled by ``torch.compile``
    (dynamic shapes, one graph per autograd mode serving every layer; the first calls of a
    process compile for 20-60 s, inductor's disk cache shortens later processes' start)."""
    global _COMPILED
    if not compiled:
        return _edge_sums, _node_mlp
    if _COMPILED is None:
        import torch._dynamo

        # variants: with and without autograd, chunks with and without a distance table
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 32)
        _COMPILED = torch.compile(_edge_sums, dynamic=True), torch.compile(_node_mlp, dynamic=True)
    return _COMPILED


def _edge_sums(w, h, x_flat, ctx, chunk):
    """Sums over the edges of receivers [n0, n1): gated messages (n1-n0, W) and coordinate updates
    (n1-n0, 3k), coordinates in ``x_flat``'s layout (coordinate-major: column i * k + c).

    The coordinate update sum_j cut_ij Phi_ij d_ij with Phi_ij = W_c m_ij (paper, App. B.4) is
    computed per receiver as W_c applied to G_i = sum_j cut_ij m_ij (x) d_ij, one batched
    product over receivers with their edges padded to the chunk's largest degree D: the same
    sum in another order, without the per-edge k x k products or the (E, k*k) Phi."""
    n0, n1, e0, e1, degree_max, slot = chunk
    k, dtype = w.k, h.dtype
    row, col = ctx["row"][e0:e1], ctx["col"][e0:e1]
    cut = ctx["cut"][e0:e1]
    diff = (gather(x_flat, row) - gather(x_flat, col)).view(-1, 3, k) - ctx["shift"][e0:e1].unsqueeze(-1)
    sq = (diff * diff).sum(1)  # (e, k)
    feat = 2.0 * torch.tanh(sq / ctx["cutoff"] ** 2) - 1.0
    width = ctx["a"].shape[1]
    grad = torch.is_grad_enabled()
    if "table" in ctx:  # without autograd: interpolated in the distance table (``DISTANCE_TABLE``)
        index, table = ctx["index"][e0:e1], ctx["table"]
        base = torch.lerp(table.index_select(0, index), table.index_select(0, index + 1), ctx["frac"][e0:e1])
    else:
        base = ctx["edge0"][e0:e1]
    pre = torch.addmm(base.to(dtype), feat.to(dtype), w.edge_w.t())
    if grad:
        pre = pre + gather(ctx["a"], row) + gather(ctx["b"], col)
    else:  # in place: no new (e, W) buffers
        pre += ctx["a"].index_select(0, row)
        pre += ctx["b"].index_select(0, col)
    m = _layer_norm_silu(pre, w.norm1, inplace=not grad)
    m = _layer_norm_silu(torch.addmm(w.lin2_b, m, w.lin2_w.t()), w.norm2, inplace=not grad)
    weight = cut if w.gate is None else cut * torch.sigmoid(F.linear(m, *w.gate).float())
    unit = diff / (torch.sqrt(sq + 1.0) + 1.0).unsqueeze(1)  # (e, 3, k)
    # per receiver, over its edges padded to D: the gate-weighted message sum and G_i = sum cut m (x) d
    n_nodes = n1 - n0
    slots = n_nodes * degree_max
    m_pad = pad(m, slot, slots).view(n_nodes, degree_max, width)
    w_pad = pad(weight.to(dtype), slot, slots).view(n_nodes, degree_max, 1)
    u_pad = pad((unit * cut.unsqueeze(-1)).view(-1, 3 * k).to(dtype), slot, slots)  # columns (i, c)
    agg = torch.bmm(w_pad.transpose(1, 2), m_pad).view(n_nodes, width).float()
    g = torch.bmm(u_pad.view(n_nodes, degree_max, 3 * k).transpose(1, 2), m_pad)  # (n, (i, c), W)
    dx = F.linear(g.view(n_nodes * 3, k * width), w.coord_mix)  # (n*3, k_out): rows (node, i), columns o
    return agg, dx.view(n_nodes, 3 * k).float()


_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (threads, pool), made on first use


def _edge_sums_all(edge_sums, w, h, x_flat, ctx, chunks, threads: int):
    """``edge_sums`` of every chunk, in order; over ``threads`` Python threads when more than one
    (torch releases the GIL inside its kernels, so the chunks run on separate cores). Only for
    calls without autograd: each thread runs its chunks in the caller's grad-free (or inference)
    mode, which torch keeps per thread."""
    global _POOL
    if threads <= 1 or len(chunks) == 1:
        return [edge_sums(w, h, x_flat, ctx, chunk) for chunk in chunks]
    if _POOL is None or _POOL[0] != threads:
        if _POOL is not None:
            _POOL[1].shutdown(wait=False)
        _POOL = threads, ThreadPoolExecutor(threads, thread_name_prefix="amshortcut-edges")
    inference = torch.is_inference_mode_enabled()

    def run(chunk):
        with torch.inference_mode(inference), torch.no_grad():
            return edge_sums(w, h, x_flat, ctx, chunk)

    return list(_POOL[1].map(run, chunks))


def _chunks(degree, chunk_edges):
    """(n0, n1, e0, e1, D, slot) per chunk of whole receivers holding about ``chunk_edges``
    edges; D is the chunk's largest degree and ``slot`` each edge's row in the (n1-n0)*D padding."""
    ends = torch.cumsum(degree, 0)
    n = degree.shape[0]
    n_edges = int(ends[-1]) if n else 0
    bounds = [0, n]
    if n_edges > chunk_edges:
        targets = torch.arange(chunk_edges, n_edges, chunk_edges, device=degree.device)
        inner = torch.unique(torch.searchsorted(ends, targets, right=True)).tolist()
        bounds = [0, *[b for b in inner if 0 < b < n], n]
    starts = ends - degree
    out = []
    for n0, n1 in zip(bounds[:-1], bounds[1:]):
        e0, e1 = int(starts[n0]), int(ends[n1 - 1])
        deg = degree[n0:n1]
        d = max(1, int(deg.max()))
        local = torch.repeat_interleave(torch.arange(n1 - n0, device=degree.device), deg)
        slot = local * d + (torch.arange(e1 - e0, device=degree.device) - (starts[n0:n1] - e0)[local])
        out.append((n0, n1, e0, e1, d, slot))
    return out


def _distance_features(r, cfg):
    """The input distances' edge features (E, 1 + distance_rbf): 2 tanh(r^2 / r_cut^2) - 1 and
    the Gaussian basis, as ``EGNNLayer`` builds them."""
    attr = 2.0 * torch.tanh(r**2 / cfg.cutoff**2) - 1.0
    if cfg.distance_rbf:
        attr = torch.cat([attr, _gaussian_rbf(r, cfg.cutoff, cfg.distance_rbf)], dim=-1)
    return attr


def _gaussian_rbf(r, cutoff, n):
    """``denoiser.gaussian_rbf`` with exponents floored at -80: exp(-80) = 2e-35 instead of
    denormal or zero values, which a CPU computes ~20x slower (7 % of a sampling call)."""
    mu = torch.linspace(0.0, cutoff, n, device=r.device, dtype=r.dtype)
    z = (r - mu) / (cutoff / n)
    return torch.exp((-0.5 * z * z).clamp_min(-80.0))


def fast_forward(model, pos, elem, cell, batch, t, y=None, dt=None, graph=None):
    """``Denoiser.forward`` computed the fast way (same arguments, same outputs)."""
    from core.graph import periodic_radius_graph
    from core.model.denoiser import cutoff_weight

    cfg = model.cfg
    device = pos.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else pos.dtype
    if graph is None:
        graph = periodic_radius_graph(pos, cell, batch, cfg.cutoff)
    (row, col), shift = graph
    order = torch.argsort(row, stable=True)
    row, col, shift = row[order], col[order], shift[order].to(pos.dtype)
    n = pos.shape[0]
    with torch.autocast(device, enabled=False):
        raw = model.node_input(elem, batch, t, y, dt)
        h = F.linear(raw.to(dtype), model.embed.weight.to(dtype), model.embed.bias.to(dtype))
        r = (gather(pos, row) - gather(pos, col) - shift).norm(dim=-1, keepdim=True)
        cut = cutoff_weight(r, cfg.cutoff)
        n0 = 1 + cfg.distance_rbf
        # the distance features' part of every layer's first edge Linear, as one product
        w0 = torch.cat([layer.message.edge_proj.weight[:, :n0] for layer in model.layers])
        ctx = {"row": row, "col": col, "shift": shift, "cut": cut, "cutoff": cfg.cutoff}
        # a GPU wants few, large kernels, and autograd keeps every intermediate anyway; a CPU
        # sampling call runs cache-sized chunks, one core each (see the module doc)
        whole = torch.is_grad_enabled() or pos.device.type != "cpu"
        if whole:
            edge0 = F.linear(_distance_features(r, cfg).to(dtype), w0.to(dtype)).split(cfg.width, dim=1)
        else:  # a function of r alone: tabulated on a fine grid, interpolated per edge of a chunk
            grid = torch.linspace(0.0, cfg.cutoff, DISTANCE_TABLE + 1, dtype=pos.dtype, device=pos.device)
            table = F.linear(_distance_features(grid.unsqueeze(-1), cfg), w0.to(pos.dtype))
            tables = [part.contiguous() for part in table.split(cfg.width, dim=1)]
            position = r.squeeze(-1) * (DISTANCE_TABLE / cfg.cutoff)
            ctx["index"] = position.long().clamp_(max=DISTANCE_TABLE - 1)
            ctx["frac"] = (position - ctx["index"]).unsqueeze(-1)
        x = pos.repeat_interleave(cfg.vector_channels, dim=1)  # (N, 3k): coordinate i of channel c at i * k + c
        raw_d = raw.to(dtype)
        degree = torch.bincount(row, minlength=n)
        chunks = _chunks(degree, row.shape[0] if whole else CHUNK_EDGES)
        threads = 1 if whole else torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)  # each chunk's kernels on its own thread's core
        edge_sums, node_mlp = kernels(model.compiled)
        fused = not whole and dtype == torch.float32 and NATIVE and native.available()
        if fused:
            edge_sums = native.edge_sums  # the same sums, one fused C loop per chunk
        try:
            for index, layer in enumerate(model.layers):
                w = _Weights(layer, dtype, n0)
                ctx["edge0" if whole else "table"] = (edge0 if whole else tables)[index]
                if fused:  # the kernel reads a and b in place and fills each chunk's rows of agg and dx
                    ctx["a"], ctx["b"] = native.node_projection(w, h)
                    ctx["agg"], ctx["dx"] = h.new_zeros(n, w.lin2_w.shape[0]), h.new_zeros(n, 3 * w.k)
                    _edge_sums_all(edge_sums, w, h, x, ctx, chunks, threads)
                    agg, dx = ctx["agg"], ctx["dx"]
                else:
                    ctx["a"], ctx["b"] = (p.contiguous() for p in F.linear(h, w.node_w, w.node_b).chunk(2, dim=-1))
                    sums = _edge_sums_all(edge_sums, w, h, x, ctx, chunks, threads)
                    agg, dx = (parts[0] if len(parts) == 1 else torch.cat(parts) for parts in zip(*sums))
                h = h + node_mlp(w, torch.cat([h, (agg / layer.norm).to(dtype), raw_d], dim=-1))
                x = x + dx.to(x.dtype) / layer.norm
        finally:
            if threads > 1:
                torch.set_num_threads(threads)
        head_norm, head_lin = model.element_out
        e_out = F.linear(F.layer_norm(h, head_norm.normalized_shape, head_norm.weight.to(dtype),
                                      head_norm.bias.to(dtype), head_norm.eps),
                         head_lin.weight.to(dtype), head_lin.bias.to(dtype))
    return pos - x[:, ::cfg.vector_channels], e_out.to(pos.dtype)
