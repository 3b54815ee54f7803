"""The generation request as `param` state, with the validation the widgets cannot express."""

from __future__ import annotations

import math

import numpy as np
import param

from core.catalog import FRAMEWORK_LABELS, default_steps
from core.errors import UserError
from core.request import SEED_MAX, check_cell, check_seed, extrapolation_warnings
from studio.catalog import PROPERTY_UNITS, SYSTEM_PROPERTIES, SYSTEMS, CheckpointInfo, PropertyRange, default_cell

STEP_CHOICES = [1, 2, 4, 5, 10, 25, 50, 100, 250]
GRID_CHOICES = {"uniform (paper)": 1.0, "finer near the end, t^2": 2.0, "finest near the end, t^3": 3.0}
"""Sampling grids t_k = (1 - k/n)^p (`core.sampling.generate`'s grid_power; docs/model.md)."""
GUIDANCE_CHOICES = {"none (paper)": 0.0, "w = 1": 1.0, "w = 2": 2.0, "w = 4": 4.0}
"""Classifier-free guidance weights (`core.sampling.generate`'s guidance; docs/model.md): they act
only when a target is given, and cost a second network call per step."""
MAX_SAMPLES = 64
CELL_BOUNDS = (8.0, 30.0)  # Å, cubic cell edge
MAX_ATOMS_PER_SAMPLE = 3000  # padded atoms (ghosts included) per structure
MAX_ATOMS_TOTAL = 20000  # padded atoms in one request (all samples)


class PropertyTarget(param.Parameterized):
    """One conditioning property: on/off, its target and the training-data range."""

    enabled = param.Boolean(default=False, doc="Condition the generation on this property")
    target = param.Number(default=0.0, allow_None=True, doc="Target value (units of the training data)")
    low = param.Number(default=-math.inf, constant=True, doc="Smallest value in the training data")
    high = param.Number(default=math.inf, constant=True, doc="Largest value in the training data")

    @classmethod
    def from_range(cls, rng: PropertyRange) -> "PropertyTarget":
        start = rng.mean if math.isfinite(rng.mean) else 0.5 * (rng.low + rng.high)
        if not math.isfinite(start):
            start = 0.0
        # four significant digits: the mean of the training data is not known better than that,
        # and 25.089096448390677 does not fit a target box
        return cls(name=rng.name, target=float(f"{start:.4g}"), low=rng.low, high=rng.high)

    @property
    def range_known(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def extrapolating(self) -> bool:
        """True when the target lies outside the training data's range (`core.request`'s rule)."""
        return self.range_known and _finite(self.target) and bool(extrapolation_warnings([self], {self.name: self.target}))

    @property
    def unit(self) -> str:
        """The property's unit as the data stores it (`core.catalog.PROPERTY_UNITS`; '' if not listed)."""
        return PROPERTY_UNITS.get(self.name, "")

    def label(self) -> str:
        """'shear_modulus (training data: 16.94 – 37.95 GPa)': name, the training range and the unit."""
        if not self.range_known:
            return f"{self.name} ({self.unit + ', ' if self.unit else ''}training range unknown)"
        return f"{self.name} (training data: {self.low:.4g} – {self.high:.4g}{' ' + self.unit if self.unit else ''})"


def training_cell_edge(ckpt: CheckpointInfo | None) -> float | None:
    """Cube edge (Å, to 0.5 Å, within CELL_BOUNDS) of the volume of the checkpoint's recorded
    training cell; None when the checkpoint records none."""
    cell = ((ckpt.config or {}).get("training") or {}).get("cell") if ckpt else None
    try:
        volume = abs(float(np.linalg.det(np.asarray(cell, dtype=float))))
    except (TypeError, ValueError, np.linalg.LinAlgError):
        return None
    if not math.isfinite(volume) or volume <= 0:
        return None
    edge = round(2 * volume ** (1 / 3)) / 2
    return min(max(edge, CELL_BOUNDS[0]), CELL_BOUNDS[1])


class GenerationSettings(param.Parameterized):
    """Everything a Generate click sends to `core.sampling.generate`."""

    system = param.Selector(default="a-Si", objects=list(SYSTEMS), doc="Material system")
    framework = param.Selector(default=None, objects=[], allow_None=True,
                               doc="Generative framework (one per trained checkpoint)")
    # Set to the framework's default (core.catalog.DEFAULT_STEPS) whenever the framework changes:
    # 5 PF-shortcut steps for AMShortcut, many small steps for the SDE / ODE (BENCHMARKS.md)
    steps = param.Selector(default=5, objects=STEP_CHOICES, doc="Number of sampling steps")
    grid_power = param.Selector(default=1.0, objects=GRID_CHOICES,
                                doc="Step spacing: uniform in t, or shorter steps near t = 0 where bonds form")
    guidance = param.Selector(default=0.0, objects=GUIDANCE_CHOICES,
                              doc="Classifier-free guidance: push the samples further towards the given targets")
    # allow_None: a cleared input box arrives as None and becomes a validation message
    n_samples = param.Integer(default=4, bounds=(1, MAX_SAMPLES), allow_None=True, doc="Structures to generate")
    cell_size = param.Number(default=16.0, bounds=CELL_BOUNDS, step=0.5, allow_None=True,
                             doc="Edge of the cubic cell in Å")
    seed = param.Integer(default=0, bounds=(0, SEED_MAX), allow_None=True, doc="Random seed (core.request.check_seed)")
    relax = param.Boolean(default=False, doc="Relax the generated structures at fixed cell with the system's "
                          "classical potential (core.relax) before they are shown and measured")
    targets = param.List(default=[], item_type=PropertyTarget, doc="Conditioning properties")
    revision = param.Integer(default=0, doc="Bumped when any target changes, so views can depend on it")

    def __init__(self, catalog: dict[str, dict[str, CheckpointInfo]], **params):
        self.catalog = catalog
        super().__init__(**params)
        self.param.system.objects = list(catalog) or list(SYSTEMS)
        if self.system not in self.param.system.objects:
            self.system = self.param.system.objects[0]
        self._on_system()

    @param.depends("system", watch=True)
    def _on_system(self):
        frameworks = sorted(self.catalog.get(self.system, {}), key=lambda f: (f != "shortcut", f))
        self.param.framework.objects = {FRAMEWORK_LABELS.get(f, f): f for f in frameworks}
        self.framework = frameworks[0] if frameworks else None  # AMShortcut when it exists
        self._on_framework()

    @param.depends("framework", watch=True)
    def _on_framework(self):
        ckpt = self.checkpoint
        steps = default_steps(self.framework, self.system) if self.framework else None
        if steps in STEP_CHOICES:
            self.steps = steps
        # start at the system's generation cell, else where the model was trained; the user may change it
        edge = default_cell(self.system) or training_cell_edge(ckpt)
        if edge is not None:
            self.cell_size = edge
        targets = [PropertyTarget.from_range(r) for r in ckpt.properties] if ckpt else []
        for t in targets:
            t.param.watch(self._bump, ["enabled", "target"])
        self.targets = targets

    def _bump(self, *_):
        self.revision += 1

    @property
    def checkpoint(self) -> CheckpointInfo | None:
        return self.catalog.get(self.system, {}).get(self.framework) if self.framework else None

    @property
    def cutoff(self) -> float | None:
        """The checkpoint's neighbour cutoff in Å (None when its config does not say)."""
        model = ((self.checkpoint.config or {}).get("model") or {}) if self.checkpoint else {}
        return float(model["cutoff"]) if _finite(model.get("cutoff")) else None

    @property
    def cell(self) -> list[list[float]]:
        """Cubic cell matrix (rows are lattice vectors, Å)."""
        a = float(self.cell_size)
        return [[a, 0.0, 0.0], [0.0, a, 0.0], [0.0, 0.0, a]]

    @property
    def atoms_per_sample(self) -> int:
        """Padded atom count floor(rho_max · V), ghosts included (paper Sec. 3, Definition 2)."""
        rho = self.checkpoint.rho_max if self.checkpoint else 0.11
        if not _finite(self.cell_size):
            return 0
        return int(math.floor(rho * float(self.cell_size) ** 3 + 1e-9))

    def properties(self) -> dict[str, float]:
        """The enabled conditioning targets, {name: value}."""
        return {t.name: float(t.target) for t in self.targets if t.enabled}

    def errors(self) -> list[str]:
        """Reasons this request cannot run (empty when it can)."""
        out = []
        if self.checkpoint is None:
            out.append(self.missing_checkpoint())
        if self.steps not in STEP_CHOICES:
            out.append(f"Steps must be one of {STEP_CHOICES}, got {self.steps!r}")
        if not (_finite(self.n_samples) and 1 <= self.n_samples <= MAX_SAMPLES):
            out.append(f"Number of samples must be 1–{MAX_SAMPLES}")
        if not (_finite(self.cell_size) and CELL_BOUNDS[0] <= self.cell_size <= CELL_BOUNDS[1]):
            out.append(f"Cell size must be {CELL_BOUNDS[0]:g}–{CELL_BOUNDS[1]:g} Å")
        try:
            check_seed(self.seed)
        except UserError as exc:
            out.append(str(exc)[0].upper() + str(exc)[1:])
        for t in self.targets:
            if t.enabled and not _finite(t.target):
                out.append(f"Target for {t.name} is not a number")
        if not out and self.checkpoint is not None:
            try:
                check_cell(self.cell, self.cutoff)
            except UserError as exc:
                out.append(str(exc)[0].upper() + str(exc)[1:])
        if not out:
            n = self.atoms_per_sample
            if n > MAX_ATOMS_PER_SAMPLE:
                out.append(f"{n} atoms per structure (ghosts included) exceeds {MAX_ATOMS_PER_SAMPLE}: use a smaller cell")
            elif n * self.n_samples > MAX_ATOMS_TOTAL:
                out.append(f"{n * self.n_samples} atoms in total exceeds {MAX_ATOMS_TOTAL}: fewer samples or a smaller cell")
        return out

    def missing_checkpoint(self) -> str:
        """Why Generate is off for a system without a trained checkpoint, and what would turn it on."""
        props = ", ".join(f"{p} ({PROPERTY_UNITS[p]})" if p in PROPERTY_UNITS else p
                          for p in SYSTEM_PROPERTIES.get(self.system, ()))
        return (f"No trained checkpoint for {self.system}: Generate is off until a model is shipped in "
                f"assets/checkpoints/{self.system}/ (one folder per framework, e.g. shortcut/, with `config.json` "
                f"and `weights.pt`)" + (f"; its models condition on {props}" if props else ""))

    def warnings(self) -> list[str]:
        """Allowed but noteworthy: targets outside the training data (extrapolation)."""
        on = [t for t in self.targets if t.enabled and _finite(t.target)]
        return extrapolation_warnings(on, {t.name: t.target for t in on})

    def request(self) -> dict:
        """Keyword arguments for the backend's `generate` (call only when `errors()` is empty)."""
        return dict(n_samples=int(self.n_samples), steps=int(self.steps), cell=self.cell,
                    rho_max=self.checkpoint.rho_max, properties=self.properties(), seed=int(self.seed),
                    grid_power=float(self.grid_power), guidance=float(self.guidance))


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
