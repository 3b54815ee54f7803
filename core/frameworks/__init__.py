"""Material ODE, Material SDE and AMShortcut behind one interface (``base.Framework``)."""

from core.catalog import FRAMEWORKS
from core.frameworks.base import Framework, FrameworkConfig, State
from core.frameworks.ode import MaterialODE
from core.frameworks.sde import MaterialSDE
from core.frameworks.shortcut import AMShortcut

_CLASSES = {cls.name: cls for cls in (AMShortcut, MaterialSDE, MaterialODE)}
"""Framework class per name of ``core.catalog.FRAMEWORKS`` (the one list of names, kept light there)."""


def default_config(name: str) -> FrameworkConfig:
    """Defaults per framework: the ODE keeps the paper's N(0, I) element prior (sigma_e = 1)."""
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}; choose one of {', '.join(FRAMEWORKS)}")
    return FrameworkConfig(name=name, sigma_e=1.0 if name == "ode" else 1.5)


def make_framework(config: FrameworkConfig) -> Framework:
    return _CLASSES[config.name](config)


__all__ = ["AMShortcut", "FRAMEWORKS", "Framework", "FrameworkConfig", "MaterialODE", "MaterialSDE",
           "State", "default_config", "make_framework"]
