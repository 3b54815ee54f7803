"""Material ODE, Material SDE and AMShortcut behind one interface (``base.Framework``)."""

from core.frameworks.base import Framework, FrameworkConfig, State
from core.frameworks.ode import MaterialODE
from core.frameworks.sde import MaterialSDE
from core.frameworks.shortcut import AMShortcut

FRAMEWORKS = {cls.name: cls for cls in (MaterialODE, MaterialSDE, AMShortcut)}


def default_config(name: str) -> FrameworkConfig:
    """Defaults per framework: the ODE keeps the paper's N(0, I) element prior (sigma_e = 1)."""
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}; choose one of {', '.join(FRAMEWORKS)}")
    return FrameworkConfig(name=name, sigma_e=1.0 if name == "ode" else 1.5)


def make_framework(config: FrameworkConfig) -> Framework:
    return FRAMEWORKS[config.name](config)


__all__ = ["AMShortcut", "FRAMEWORKS", "Framework", "FrameworkConfig", "MaterialODE", "MaterialSDE",
           "State", "default_config", "make_framework"]
