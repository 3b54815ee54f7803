"""Node-input embeddings of the denoiser: flexible properties, time and step size."""

import math

import torch
from torch import nn


class PropertyEmbedding(nn.Module):
    """Flexible property embedding (Sadat et al. 2025; paper eq. 6).

    For each property i, ``h_i = LayerNorm_i(Linear_i(y_i))`` when y_i is given and a fresh
    ``N(0, I)`` vector when it is missing (NaN), drawn anew at every call and independently
    per structure, so a missing property is indistinguishable in distribution from an
    unconditioned one.  Inputs are properties already normalised by the dataset mean/std.
    All properties are handled in one vectorised op (per-property weights, shape (P, d), or
    (P, K, d) with ``features``).

    ``null`` says where a missing property's vector lives. ``"normal"`` is eq. 6 as written: a
    plain N(0, I) draw. The LayerNorm's learned scale and shift move the given embeddings away
    from that distribution (trained MEG and a-SiO2 models: given vectors of norm ~0.3 beside
    null draws of norm ~2.8), and the network then learns to mute the property inputs to reject
    the null noise, signal included. ``"affine"`` passes the draw through the same scale and
    shift, so a missing property's vector keeps the given ones' per-component scale throughout
    training. ``"learned"`` replaces the draw by one trained vector per property (the null token
    of classifier-free guidance): nothing random reaches the network, so muting the property
    inputs no longer pays (docs/model.md, "Property embedding").

    ``features`` K > 0 feeds the Linear K Gaussian bumps of the value instead of the value itself.
    LayerNorm of ``y w + b`` (a line in R^d) saturates: beyond |y| ~ |b| / |w| it is +-w's
    direction whatever y is (trained MEG model: Li targets of 4 to 16 % gave the same glasses).
    The bumps, centred on [-4, 4] (the normalised value clamped to +-4.5), spread the values over
    d dimensions, so the LayerNorm keeps them apart across the data's range.
    """

    NULLS = ("normal", "affine", "learned")
    FEATURE_RANGE = 4.0  # bump centres on [-R, R] of the normalised value; values clamped to R + 0.5

    def __init__(self, n_properties: int, dim: int, null: str = "normal", features: int = 0):
        super().__init__()
        if null not in self.NULLS:
            raise ValueError(f"property null must be one of {self.NULLS}, got {null!r}")
        if not self.features_ok(features):
            raise ValueError(f"property features must be 0 (the value itself) or at least 2, got {features}")
        self.n_properties, self.dim, self.null, self.features = n_properties, dim, null, features
        self.weight = nn.Parameter(torch.randn(n_properties, features, dim) if features
                                   else torch.randn(n_properties, dim))
        self.bias = nn.Parameter(0.1 * torch.randn(n_properties, dim))
        self.norm_weight = nn.Parameter(torch.ones(n_properties, dim))
        self.norm_bias = nn.Parameter(torch.zeros(n_properties, dim))
        if null == "learned":
            self.null_vector = nn.Parameter(torch.zeros(n_properties, dim))

    @property
    def out_dim(self) -> int:
        return self.n_properties * self.dim

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """(B, P) normalised properties with NaN for missing -> (B, P * d) embeddings."""
        missing = torch.isnan(y).unsqueeze(-1)
        value = torch.nan_to_num(y, nan=0.0)
        if self.features:
            z = torch.einsum("bpk,pkd->bpd", self.bumps(value), self.weight) + self.bias
        else:
            z = value.unsqueeze(-1) * self.weight + self.bias
        z = nn.functional.layer_norm(z, (self.dim,)) * self.norm_weight + self.norm_bias
        if self.null == "learned":
            null = self.null_vector.expand_as(z)
        else:
            null = torch.randn(z.shape, device=z.device, dtype=z.dtype)
            if self.null == "affine":
                null = null * self.norm_weight + self.norm_bias
        return torch.where(missing, null, z).flatten(1)

    @staticmethod
    def features_ok(features: int) -> bool:
        """0 (the value itself) or at least 2 bumps (their width is the spacing of their centres)."""
        return features == 0 or features >= 2

    def bumps(self, value: torch.Tensor) -> torch.Tensor:
        """(B, P) normalised values -> (B, P, K) Gaussian bumps centred evenly on [-R, R], each as
        wide as their spacing."""
        r = self.FEATURE_RANGE
        centres = torch.linspace(-r, r, self.features, device=value.device, dtype=value.dtype)
        width = 2 * r / (self.features - 1)
        v = value.clamp(-r - 0.5, r + 0.5).unsqueeze(-1)
        return torch.exp(-0.5 * ((v - centres) / width) ** 2)


def time_features(t: torch.Tensor, n_frequencies: int) -> torch.Tensor:
    """(B,) times in [0, 1] -> (B, 1 + 2F): t and sin/cos(pi 2^j t), j < F."""
    freqs = math.pi * 2.0 ** torch.arange(n_frequencies, device=t.device, dtype=t.dtype)
    angles = t.unsqueeze(-1) * freqs
    return torch.cat([t.unsqueeze(-1), torch.sin(angles), torch.cos(angles)], dim=-1)


def step_features(dt: torch.Tensor, n_frequencies: int) -> torch.Tensor:
    """(B,) step sizes in [0, 1] -> (B, 2 + 2F): time features of dt plus a log2 scale.

    The log feature ``-log2(max(dt, 2^-10)) / 10`` separates the powers of two used in
    training (1/128 ... 1) evenly; dt = 0 (the instantaneous SDE network) maps to 1.
    """
    log_scale = -torch.log2(dt.clamp_min(2.0**-10)) / 10.0
    return torch.cat([time_features(dt, n_frequencies), log_scale.unsqueeze(-1)], dim=-1)


def step_feature_dim(n_frequencies: int) -> int:
    return 2 + 2 * n_frequencies


def time_feature_dim(n_frequencies: int) -> int:
    return 1 + 2 * n_frequencies
