"""The flexible material denoiser (paper Sec. 4.4): an E(n)-equivariant GNN on periodic graphs."""

from core.model.denoiser import BFloat16Autocast, Denoiser, DenoiserConfig
from core.model.guidance import GuidedDenoiser

__all__ = ["BFloat16Autocast", "Denoiser", "DenoiserConfig", "GuidedDenoiser"]
