"""Generate amorphous structures with a trained checkpoint (any framework, any step count).

``generate`` pads each sample to ``floor(rho_max * V)`` atoms (real + ghost), draws them from
the framework's prior, integrates ``steps`` steps from t = 1 to 0 (uniform in t unless
``grid_power`` says otherwise; the framework decides PF-ODE vs Euler–Maruyama per step) and
returns ``ase.Atoms`` with the ghosts removed.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from core.errors import UserError
from core.frameworks.periodic import wrap
from core.material import GHOST, MaterialSample, ghost_count_total
from core.model import DenoiserConfig, GuidedDenoiser
from core.request import as_cell, check_batch_size, check_cell, check_seed  # noqa: F401 - as_cell is public here too

PRIOR_MISMATCH_ERROR = 0.05
"""Refuse cells whose t = 1 marginal has a Fourier modulation above this (positions visibly non-uniform)."""
PRIOR_MISMATCH_WARN = 1e-3
GRID_POWER_RANGE = (1.0, 4.0)
"""Accepted ``grid_power`` of the sampling grid (1 = uniform in t, the paper's)."""
GUIDANCE_RANGE = (0.0, 10.0)
"""Accepted classifier-free guidance weights (0 = none, the paper's; AMDEN used 1)."""
MEMORY_FRACTION = 0.5
"""Share of the free memory a request may plan to use."""


def resolve_device(device="auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is passed to torch.device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but no GPU is available")
    return dev


def estimate_memory(n_samples, cell, rho_max, model=None, batch_size=None) -> int:
    """Peak memory (bytes) of generating ``batch_size`` (default all) samples at once.

    Counts the live tensors of one inference network call: per edge the gathered node
    projections and hidden activations (~5 x width floats), the k x k mixing matrix and
    the per-channel edge vectors; per atom the node features; plus the neighbour list
    (~60 bytes per edge).  Edges per structure = n * (4/3) pi r_cut^3 * n / V.  On CPU it
    overestimates the measured peak by 1.3-1.7x (16 x 295 atoms, paper size: 0.82 GB measured,
    1.07 GB estimated); ``model`` = a Checkpoint (default: the paper's size).
    """
    cfg = model.network.cfg if model is not None else DenoiserConfig(n_classes=3)
    volume = abs(float(np.linalg.det(as_cell(cell))))
    n_atoms = ghost_count_total(rho_max, volume)
    edges = n_atoms * n_atoms / volume * (4.0 / 3.0) * math.pi * cfg.cutoff**3
    per_edge = 4 * (5 * cfg.width + cfg.vector_channels**2 + 9 * cfg.vector_channels + 8) + 60
    per_atom = 4 * (8 * cfg.width + 6 * cfg.vector_channels + 4 * cfg.n_classes)
    batch = n_samples if batch_size is None else min(batch_size, n_samples)
    return int(batch * (edges * per_edge + n_atoms * per_atom) + 64 * 2**20)


def available_memory(device: torch.device) -> int:
    """Free memory in bytes on the device (GPU: cudaMemGetInfo; CPU: MemAvailable)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def _check_request(model, n_samples, steps, cell, rho_max, properties, grid_power, guidance=0.0, seed=0,
                   batch_size=None):
    check_seed(seed)
    check_batch_size(batch_size)
    check_cell(cell, model.network.cfg.cutoff)
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise UserError(f"steps must be a positive whole number, got {steps!r}")
    low, high = GRID_POWER_RANGE
    if not (isinstance(grid_power, (int, float)) and math.isfinite(grid_power) and low <= grid_power <= high):
        raise UserError(f"grid_power must be a number from {low:g} (uniform steps) to {high:g}, got {grid_power!r}")
    low, high = GUIDANCE_RANGE
    if not (isinstance(guidance, (int, float)) and math.isfinite(guidance) and low <= guidance <= high):
        raise UserError(f"guidance must be a number from {low:g} (none) to {high:g}, got {guidance!r}")
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise UserError(f"the number of samples must be a positive whole number, got {n_samples!r}")
    if not (isinstance(rho_max, (int, float)) and math.isfinite(rho_max) and rho_max > 0):
        raise UserError(f"rho_max must be a positive density in atoms/Å^3, got {rho_max!r}")
    unknown = sorted(set(properties) - set(model.property_names))
    if unknown:
        known = ", ".join(model.property_names) or "none"
        raise UserError(f"unknown propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                        f"this model is conditioned on: {known}")
    for name, value in properties.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserError(f"target {name} must be a finite number, got {value!r}")
    mismatch = model.framework.prior_mismatch(cell)
    if mismatch > PRIOR_MISMATCH_ERROR and not model.framework.config.allow_prior_mismatch:
        raise UserError(
            f"this cell is too large for the model's position noise (sigma_x_max = "
            f"{model.framework.config.sigma_x_max} Å): the uniform start would not match what it was "
            f"trained on (Fourier modulation {mismatch:.2g}); use a cell with all plane spacings below "
            f"~{2 * math.pi * model.framework.config.sigma_x_max / math.sqrt(2 * math.log(1 / PRIOR_MISMATCH_ERROR)):.0f} Å")
    if mismatch > PRIOR_MISMATCH_WARN:
        warnings.warn(f"the t = 1 marginal in this cell differs from the uniform prior by {mismatch:.2g} "
                      "(Fourier modulation); few-step samples may be biased", stacklevel=3)


def _to_atoms(state, cell, model, info):
    classes = state.elem.argmax(-1).cpu().numpy()
    lookup = np.array([GHOST, *model.species])
    numbers = lookup[classes]
    pos = state.pos.double().cpu().numpy()
    batch = state.batch.cpu().numpy()
    out = []
    for b in range(state.n_structures):
        keep = batch == b
        atoms = MaterialSample(cell, pos[keep], numbers[keep]).to_atoms(strip_ghosts=True)
        atoms.info.update(info)
        out.append(atoms)
    return out


def generate(model, n_samples, steps, cell, rho_max=None, properties=None, device="auto", seed=0,
             progress=None, batch_size=None, grid_power=1.0, guidance=0.0, fast=True,
             bf16=False, compile=False):
    """Sample ``n_samples`` structures in ``cell`` with ``steps`` integration steps.

    model: a ``core.checkpoint.Checkpoint`` or the path of a checkpoint directory.
    cell: Å (edge of a cube, three lengths or 3x3 rows); rho_max: atoms/Å^3 (real + ghost;
    default the training value); properties: {name: target} in dataset units, missing names
    are unconditioned; seed: same seed, same structures (on the same device);
    progress(step, total) is called after every integration step of every batch;
    grid_power: the steps start at t_k = (1 - k/steps)^grid_power (1 = uniform, the paper's;
    ``Framework.plan``); guidance: classifier-free guidance weight w >= 0 (0 = none, the
    paper's; ``core.model.GuidedDenoiser``), applied only when a property is given; it doubles
    the cost of a step; fast: evaluate the network with ``core.model.fast`` (default; the same
    structures to float rounding, 2-3.5x faster on an AVX2 CPU, BENCHMARKS.md; False runs the
    plain reference forward);
    compile: with fast, its per-layer kernels compiled by ``torch.compile`` (another 1.1-1.3x on
    CPU once compiled; the first call of a process compiles for about half a minute);
    bf16: run the network (only; the steps themselves stay float32) in bfloat16, the precision
    the shipped models were trained in (faster with AMX on CPUs and on GPUs; positions then
    differ from float32 sampling by ~0.01 Å per step).
    Returns ``ase.Atoms`` (ghosts removed) with ``info``: target_<name>, framework, steps,
    grid_power, guidance, seed, device, checkpoint.
    """
    if isinstance(model, (str, Path)):
        from core.checkpoint import load_checkpoint

        model = load_checkpoint(model)
    properties = dict(properties or {})
    cell = as_cell(cell)
    rho_max = model.rho_max if rho_max is None else rho_max
    _check_request(model, n_samples, steps, cell, rho_max, properties, grid_power, guidance, seed, batch_size)
    guided = guidance > 0 and bool(properties)
    n_atoms = ghost_count_total(rho_max, abs(np.linalg.det(cell)))
    dev = resolve_device(device)

    free = MEMORY_FRACTION * available_memory(dev)
    one = estimate_memory(1, cell, rho_max, model) * (2 if guided else 1)  # guidance doubles the batch
    if one > free:
        raise UserError(f"one structure of {n_atoms} atoms needs ~{one / 2**30:.1f} GiB but only "
                        f"{free / 2**30:.1f} GiB can be used on {dev}; use a smaller cell or rho_max")
    fit = max(1, int(free // one))
    batch_size = min(n_samples, fit if batch_size is None else min(batch_size, fit))

    network = model.network.to(dev).eval()
    plain_network, was = network, (network.fast, network.compiled)
    network.fast, network.compiled = bool(fast), bool(compile)
    if guided:
        network = GuidedDenoiser(network, guidance)
    if bf16:
        from core.model import BFloat16Autocast

        network = BFloat16Autocast(network, dev.type)
    framework = model.framework
    y_raw = torch.tensor([[properties.get(n, math.nan) for n in model.property_names]], dtype=torch.float32)
    y_norm = model.normalise(y_raw).to(dev)
    cell_t = torch.tensor(cell, dtype=torch.float32, device=dev)
    plan = framework.plan(steps, float(grid_power))
    n_batches = math.ceil(n_samples / batch_size)
    total, done = n_batches * steps, 0
    info = {**{f"target_{k}": float(v) for k, v in properties.items()}, "framework": framework.name,
            "steps": int(steps), "grid_power": float(grid_power), "guidance": float(guidance) if guided else 0.0, "seed": int(seed), "device": str(dev), "checkpoint": str(model.path or "")}
    results = []
    devices = [dev.index or 0] if dev.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            for start in range(0, n_samples, batch_size):
                b = min(batch_size, n_samples - start)
                batch = torch.arange(b, device=dev).repeat_interleave(n_atoms)
                cells = cell_t.expand(b, 3, 3).contiguous()
                state = framework.prior(cells, batch, y_norm.expand(b, -1), plain_network.cfg.n_classes)
                for t, dt, stochastic in plan:
                    state = framework.step(network, state, t, dt, stochastic)
                    done += 1
                    if progress is not None:
                        progress(done, total)
                state = state.replace(pos=wrap(state.pos, state.cell, state.batch))
                results.extend(_to_atoms(state, cell, model, info))
    finally:
        plain_network.fast, plain_network.compiled = was
    return results
