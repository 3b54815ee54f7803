"""AMShortcut Studio core library: samples, graphs, denoiser, frameworks, sampler, metrics."""

__version__ = "0.1.0"
