"""AMShortcut Studio: `panel serve studio` in a browser, or `Studio()` in Jupyter."""

from studio.app import Studio

__all__ = ["Studio"]
