"""The flexible material denoiser (SPEC §3): an E(n)-equivariant GNN on periodic graphs."""

from core.model.denoiser import Denoiser, DenoiserConfig
from core.model.guidance import GuidedDenoiser

__all__ = ["Denoiser", "DenoiserConfig", "GuidedDenoiser"]
