"""The sampling path's per-edge work as fused C loops (``edge_kernel.c``), compiled on first use.

Without autograd on a CPU, ``core.model.fast`` runs a layer's edge work in cache-sized chunks;
in PyTorch each chunk is still a dozen kernels that write and re-read (E, width) tensors, and on
a CPU without AMX those elementwise passes, not the matrix products, take most of a sampling
call. ``edge_kernel.c`` computes the same sums (``core.model.fast._edge_sums``) edge by edge,
each edge's intermediates in registers and L1, in loops around the edge MLP's width x width
product, which stays with the BLAS; the coordinate update's per-receiver sums and W_c are done in
register tiles, so no (receivers, 3k, width) tensor is written. It is compiled once per machine
with the system C compiler (``cc -O3 -march=native``, ~1 s) into the user cache and called
through ctypes, which releases the GIL, so ``_edge_sums_all``'s chunk threads still run in
parallel. Where no compiler works, or ``AMSHORTCUT_NATIVE=0`` is set, sampling keeps the PyTorch
chunks (``available()``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("edge_kernel.c")
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fPIC", "-shared"]
"""-ffast-math lets the compiler vectorise the square roots and divisions and reassociate the sums
(float32 results move by ~1e-6 relative; tests/test_fast_path.py pins them to the PyTorch chunks
and the reference forward)."""

_LIB: ctypes.CDLL | None | bool = False  # False: not tried yet; None: unavailable


def cache_dir() -> Path:
    """Where compiled kernels live: $AMSHORTCUT_CACHE or the user cache."""
    base = os.environ.get("AMSHORTCUT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "amshortcut")
    return Path(base) / "kernels"


def _compile() -> ctypes.CDLL | None:
    """The compiled kernel, built if this source, compiler, flags and CPU have none yet (a cache
    shared by machines with other vector units keeps one build per kind); None if that fails."""
    source = SOURCE.read_bytes()
    compiler = os.environ.get("CC", "cc")
    cpu = f"{sys.platform} {platform.machine()} {torch.backends.cpu.get_cpu_capability()}"
    tag = hashlib.sha256(source + " ".join([compiler, *FLAGS, cpu]).encode()).hexdigest()[:16]
    target = cache_dir() / f"edge_kernel-{tag}.so"
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                out = Path(tmp) / target.name
                subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", str(out), "-lm"], check=True,
                               capture_output=True, timeout=120)
                os.replace(out, target)  # atomic: concurrent processes compile alike
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError):  # no compiler, an unwritable cache, a bad build
        return None
    lib.edge_pre.restype = lib.edge_post.restype = lib.edge_coord.restype = ctypes.c_int
    return lib


def available() -> bool:
    """Whether the fused kernel can be used (compiled now if need be)."""
    global _LIB
    if _LIB is False:
        _LIB = None if os.environ.get("AMSHORTCUT_NATIVE", "1") == "0" else _compile()
    return _LIB is not None


def _ptr(t: torch.Tensor):
    return ctypes.c_void_p(t.data_ptr())


def _prepared(w):
    """The layer's float32 weights in the kernel's layouts (made once per ``_Weights``)."""
    if not hasattr(w, "native"):
        f = lambda t: t.float().contiguous()  # noqa: E731
        gate = (f(w.gate[0].view(-1)), float(w.gate[1].item())) if w.gate is not None else (None, 0.0)
        width = w.lin2_w.shape[0]
        w.native = {"edge_w_t": f(w.edge_w.t()), "n1": (f(w.norm1[0]), f(w.norm1[1]), float(w.norm1[2])),
                    "ab_bias": f(w.node_b[:width] + w.node_b[width:]),
                    "lin2_w": f(w.lin2_w), "lin2_b": f(w.lin2_b), "coord_mix": f(w.coord_mix),
                    "n2": (f(w.norm2[0]), f(w.norm2[1]), float(w.norm2[2])), "gate": gate}
    return w.native


CONTIGUOUS = (("row", torch.int64), ("col", torch.int64), ("index", torch.int64), ("shift", torch.float32),
              ("cut", torch.float32), ("frac", torch.float32), ("table", torch.float32), ("agg", torch.float32),
              ("dx", torch.float32))
ROWS = ("a", "b")  # float32 rows, read in place from the node projection (N, 2W): only their columns contiguous


def node_projection(w, h):
    """(a, b), the node projection's halves without its bias (which the kernel adds per edge), as
    views of one product: no copies of the (N, 2W) output to split it."""
    ab = torch.mm(h, w.node_w.t())
    width = ab.shape[1] // 2
    return ab[:, :width], ab[:, width:]


def edge_sums(w, h, x_flat, ctx, chunk):
    """``core.model.fast._edge_sums`` of one chunk (no autograd, float32, distance table), with
    ``ctx["a"], ctx["b"]`` from ``node_projection``; its receivers' rows of the layer's outputs
    ``ctx["agg"]`` (N, W) and ``ctx["dx"]`` (N, 3k), zeros beforehand, are written in place (and
    returned as views), so the chunks' results need no concatenation."""
    n0, n1, e0, e1, _, _ = chunk
    k, width = w.k, ctx["a"].shape[1]
    p = _prepared(w)
    for name, dtype in CONTIGUOUS:  # the C loops read raw memory: wrong layouts must not get there
        t = ctx[name]
        if t.dtype != dtype or not t.is_contiguous() or t.device.type != "cpu":
            raise ValueError(f"native edge kernel: {name} must be a contiguous CPU {dtype} tensor")
    for name in ROWS:
        t = ctx[name]
        if t.dtype != torch.float32 or t.stride(1) != 1 or t.device.type != "cpu":
            raise ValueError(f"native edge kernel: {name} must be CPU float32 rows with contiguous columns")
    if x_flat.dtype != torch.float32 or not x_flat.is_contiguous():
        raise ValueError("native edge kernel: coordinates must be a contiguous float32 tensor")
    i64, f32 = ctypes.c_int64, ctypes.c_float
    common = (_ptr(ctx["row"]), _ptr(ctx["col"]), _ptr(ctx["shift"]))
    m = torch.empty(e1 - e0, width)
    a, b = ctx["a"], ctx["b"]
    status = _LIB.edge_pre(i64(e0), i64(e1), i64(width), i64(k), *common,
                           _ptr(ctx["index"]), _ptr(ctx["frac"]), _ptr(ctx["table"]), _ptr(x_flat),
                           _ptr(a), _ptr(b), i64(a.stride(0)), i64(b.stride(0)), _ptr(p["ab_bias"]),
                           _ptr(p["edge_w_t"]), _ptr(p["n1"][0]), _ptr(p["n1"][1]), f32(p["n1"][2]),
                           f32(ctx["cutoff"]), _ptr(m))
    if status:
        raise ValueError(f"native edge kernel: width {width} or {k} channels beyond its limits")
    m = torch.mm(m, p["lin2_w"].t())  # the BLAS: (e, W) x (W, W); edge_post adds the bias
    agg, dx = ctx["agg"][n0:n1], ctx["dx"][n0:n1]
    gate_w, gate_b = p["gate"]
    _LIB.edge_post(i64(n0), i64(e0), i64(e1), i64(width), _ptr(ctx["row"]), _ptr(ctx["cut"]),
                   _ptr(m), _ptr(p["lin2_b"]), _ptr(p["n2"][0]), _ptr(p["n2"][1]), f32(p["n2"][2]),
                   _ptr(gate_w) if gate_w is not None else None, f32(gate_b), i64(gate_w is not None), _ptr(agg))
    scratch = torch.empty(3 * k, width)  # one receiver's G_i
    _LIB.edge_coord(i64(n0), i64(e0), i64(e1), i64(width), i64(k), *common, _ptr(ctx["cut"]), _ptr(x_flat),
                    _ptr(m), _ptr(p["coord_mix"]), _ptr(scratch), _ptr(dx))
    return agg, dx
