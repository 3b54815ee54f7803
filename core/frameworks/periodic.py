"""Periodic-cell helpers for diffusion on positions: wrapping, minimum image, uniform
prior and the wrapped-normal noise target.

Cells follow ``core.material``: rows are lattice vectors (Å), so Cartesian = fractional @ cell.
Functions take the cells (B, 3, 3) and the structure index ``batch`` (N,) of every atom.
"""

import itertools
import math

import torch

# Image window per lattice direction for the real-space and Fourier sums: 7^3 = 343 terms.
_K = 3
_OFFSETS = torch.tensor(list(itertools.product(range(-_K, _K + 1), repeat=3)), dtype=torch.float32)
# Below this ratio sigma / (smallest interplanar spacing) the real-space image sum converges
# within the window (>= 6 sigma of margin); above it the Fourier sum does (|G| terms decay
# faster than exp(-2 pi^2 0.16 m^2)).
_SWITCH = 0.4


def to_fractional(pos, cell, batch):
    """Cartesian (N,3) Å -> fractional (N,3)."""
    return torch.einsum("ni,nij->nj", pos, torch.linalg.inv(cell)[batch])


def to_cartesian(frac, cell, batch):
    """Fractional (N,3) -> Cartesian (N,3) Å."""
    return torch.einsum("ni,nij->nj", frac, cell[batch])


def wrap(pos, cell, batch):
    """Wrap Cartesian positions into the cell (fractional coordinates in [0, 1))."""
    frac = to_fractional(pos, cell, batch)
    return to_cartesian(frac - torch.floor(frac), cell, batch)


def minimum_image(disp, cell, batch):
    """Displacement reduced by rounding its fractional coordinates (the `pbc` of paper App. B.1).

    Exact minimum image for orthorhombic cells; for triclinic cells it is the image in the
    fractional box [-0.5, 0.5)^3, which is what the Material ODE path needs (a consistent,
    bijective pairing), not necessarily the globally shortest vector.
    """
    frac = to_fractional(disp, cell, batch)
    return to_cartesian(frac - torch.round(frac), cell, batch)


def uniform_positions(cell, batch, generator=None):
    """Positions drawn uniformly in each atom's cell (the t = 1 prior)."""
    frac = torch.rand(batch.shape[0], 3, generator=generator, device=cell.device, dtype=cell.dtype)
    return to_cartesian(frac, cell, batch)


def interplanar_spacings(cells):
    """Distances between lattice planes, shape (..., 3), Å: h_i = 1 / |row i of C^-T|."""
    return 1.0 / torch.linalg.inv(cells).transpose(-1, -2).norm(dim=-1)


def prior_mismatch(cell, sigma_max):
    """Largest nonzero Fourier coefficient ``exp(-sigma^2 |G|^2 / 2)`` of the wrapped normal.

    It bounds how far the t = 1 position marginal (data + wrapped noise of sigma_max Å) is
    from uniform: 0 means exactly uniform; 0.01 means density modulations of ~2%.
    """
    cell = torch.as_tensor(cell, dtype=torch.float64).reshape(3, 3)
    recip = 2 * math.pi * torch.linalg.inv(cell).T
    g = _OFFSETS.double() @ recip
    g2 = (g**2).sum(-1)
    return float(torch.exp(-0.5 * sigma_max**2 * g2[g2 > 1e-12].min()))


def wrapped_normal_eps(x_t, x_0, sigma, cell, batch):
    """Noise target ``-sigma * grad_{x_t} log p(x_t | x_0)`` of the wrapped normal (N,3).

    ``p(x_t | x_0) = sum_L N(x_t; x_0 + L, sigma^2 I)`` over lattice vectors L.  Evaluated
    as a real-space image sum for sigma < 0.4 h_min and as its Fourier (theta-function) dual
    otherwise; both converge to ~1e-6 inside the 7^3 window.  For sigma much smaller than
    the cell it equals the minimum-image noise ``(x_t - x_0) / sigma``; for sigma much larger
    it tends to 0 (the wrapped distribution is uniform and carries no information).
    ``sigma`` has shape (N,1) or (N,), in Å.
    """
    sigma = sigma.reshape(-1, 1).to(x_t.dtype)
    cells = cell[batch]
    h_min = interplanar_spacings(cell).min(dim=-1).values[batch].unsqueeze(-1)
    real = (sigma <= _SWITCH * h_min).squeeze(-1)
    offsets = _OFFSETS.to(device=x_t.device, dtype=x_t.dtype)
    frac = to_fractional(x_t - x_0, cell, batch)
    frac = frac - torch.round(frac)
    out = torch.empty_like(x_t)
    if real.any():
        f, c, s = frac[real], cells[real], sigma[real]
        images = torch.einsum("nmi,nij->nmj", f.unsqueeze(1) + offsets, c)  # (n, 343, 3)
        weights = torch.softmax(-(images**2).sum(-1) / (2 * s**2), dim=1)
        out[real] = (weights.unsqueeze(-1) * images).sum(1) / s
    if (~real).any():
        f, c, s = frac[~real], cells[~real], sigma[~real]
        recip = (2 * math.pi * torch.linalg.inv(cell).transpose(1, 2))[batch][~real]
        g = torch.einsum("mi,nij->nmj", offsets, recip)  # (n, 343, 3) reciprocal vectors
        coef = torch.exp(-0.5 * s**2 * (g**2).sum(-1))
        phase = 2 * math.pi * f @ offsets.T  # G . (x_t - x_0)
        num = ((coef * torch.sin(phase)).unsqueeze(-1) * g).sum(1)
        den = (coef * torch.cos(phase)).sum(1, keepdim=True)
        out[~real] = s * num / den
    return out
