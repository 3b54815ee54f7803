"""Training recipes: one nested, typed config per run, read from and written to TOML.

A recipe is what ``amshortcut train --config FILE`` runs; ``configs/<system>/<framework>.toml``
reproduce the shipped models. Its sections, one dataclass each:

    [data]          dataset, conditioning properties, ghost padding density
    [network]       EGNN size (-> core.model.DenoiserConfig)
    [schedule]      framework and noise schedule (-> core.frameworks.FrameworkConfig)
    [optimisation]  steps, batch, piecewise learning rate, EMA, seed
    [validation]    sample-quality checks during training
    [runtime]       device, threads, bfloat16, logging and checkpoint cadence
    [init]          warm start: a checkpoint, or a parent recipe trained first
    [distillation]  the largest shortcut steps regressed onto a teacher's many-step trajectories
    [[phases]]      settings that differed in earlier steps of the run (e.g. property dropout)

The learning rate is piecewise (``optimisation.lr_schedule``, cosine segments / warm restarts)
and phases set the few settings a run may change on the way, so one file describes a run
that was trained in several sittings. Every range and choice check lives in ``Recipe.check`` and raises ``UserError`` with one line
naming the dotted key. Paths (``data.path``, ``init.checkpoint``, ``init.recipe``) are
relative to the working directory, as on the command line. Keys left out take the defaults
below (the paper's network and schedule, features off); the shipped recipes write every key.
"""

from __future__ import annotations

import json
import math
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from core.errors import UserError


@dataclass
class DataConfig:
    """What the network is trained on."""

    path: str = ""  # dataset directory (core.datasets, train/val splits) or one structure file
    properties: list[str] = field(default_factory=list)  # property names to condition on
    # share of (structure, property) pairs hidden (NaN -> the null embedding) in each batch;
    # 0 = all always given, as the paper; see core.training.Trainer._make_batch
    property_dropout: float = 0.0
    max_structures: int = 0  # train on the first N structures only (0 = all)
    # a dataset directory may hold shards of several MD recipes (meta.json's shard_recipe):
    # use only this one's (e.g. "melt-quench"); empty = every shard
    md_recipe: str = ""
    rho_max: float = 0.0  # atoms/Å^3 including ghosts; 0 = 1.1 x the densest training structure


@dataclass
class NetworkConfig:
    """EGNN size; maps onto ``DenoiserConfig`` (element classes, properties and the step-size
    input follow from the data and the framework). Defaults: the paper's 4 x 128, 6.5 Å."""

    width: int = 128
    layers: int = 4
    vector_channels: int = 8
    cutoff: float = 6.5  # Å
    property_dim: int = 8
    attention: bool = True
    aggregation_norm: float = 0.0  # message-sum divisor; 0 = mean sum_j f_cut(r_ij) of the training data
    distance_rbf: int = 0  # Gaussian distance features per edge (0 = the paper's tanh feature only)
    property_null: str = "normal"  # a missing property's vector: N(0, I) ("normal"), through the embedding's affine, or "learned"
    property_features: int = 0  # Gaussian bumps of each normalised property value before its Linear (0 = the value itself)

    def denoiser_config(self, n_classes: int, n_properties: int, use_dt: bool, aggregation_norm: float):
        from core.model import DenoiserConfig

        return DenoiserConfig(n_classes=n_classes, n_properties=n_properties, use_dt=use_dt,
                              **{**asdict(self), "aggregation_norm": aggregation_norm})


@dataclass
class ScheduleConfig:
    """Framework and its noise schedule / loss settings; maps onto ``FrameworkConfig``
    (see its docstring for what each does)."""

    framework: str = "shortcut"  # ode | sde | shortcut
    sigma_x_max: float = 12.0  # Å, position noise at t = 1
    sigma_x_power: float = 1.0  # sigma_x = sigma_x_max t^power (1 = the paper's linear schedule)
    sigma_e: float = 0.0  # element prior scale; 0 = the framework's default (ode 1.0, sde/shortcut 1.5)
    t_power: float = 1.0  # training times t = u^power, u ~ U(0, 1)
    t_band: list[float] = field(default_factory=lambda: [0.0, 1.0])  # [low, high] of the band below
    t_band_fraction: float = 0.0  # share of L_SDE's training times drawn uniformly from t_band
    sc_fraction: float = 0.25  # share of batches with the self-consistency loss (shortcut)
    sc_level_power: float = 0.0  # L_SC level 2d drawn with probability ~ (2d)^power (0 = uniform)
    sc_units: str = "noise"  # noise | drift
    ghost_target: str = "noise"  # noise | mean

    def framework_config(self):
        from core.frameworks import default_config

        base = default_config(self.framework)
        values = {k: v for k, v in asdict(self).items() if k != "framework"}
        if not values["sigma_e"]:
            values["sigma_e"] = base.sigma_e
        return replace(base, **values)


@dataclass
class LrSegment:
    """One piece of the learning-rate schedule: ``lr`` from the previous segment's end (or 0)
    to ``end``; from ``decay_start`` (0 = never) a cosine down to ``optimisation.lr_final`` at
    ``end``. Several segments are warm restarts; ``end`` 0 (last segment only) = ``steps``."""

    lr: float = 1e-3
    end: int = 0
    decay_start: int = 0


@dataclass
class OptimisationConfig:
    """AdamW with linear warmup, a piecewise cosine lr, gradient clipping and a weight EMA."""

    steps: int = 2000  # where training stops (a resume continues to the new value)
    batch_size: int = 4  # structures per process and step
    lr_schedule: list[LrSegment] = field(default_factory=lambda: [LrSegment()])
    lr_final: float = 1e-5
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # EMA of the weights: saved as the checkpoint and, for AMShortcut, builds the
    # self-consistency targets (lower = targets follow the network sooner)
    ema_decay: float = 0.999
    seed: int = 0

    def segment_bounds(self):
        """[(start, end, segment)] with each end resolved (0 -> steps)."""
        bounds, start = [], 0
        for seg in self.lr_schedule:
            end = seg.end or self.steps
            bounds.append((start, end, seg))
            start = end
        return bounds

    def lr_at(self, step: int) -> float:
        """Learning rate at ``step`` (a function of the step only, so resuming needs no state):
        linear warmup over the first ``warmup_steps``, then the segment's lr, cosine-decayed
        from its ``decay_start`` to ``lr_final`` at its end; past the last end, ``lr_final``."""
        bounds = self.segment_bounds()
        _, end, seg = next((b for b in bounds if step < b[1]), bounds[-1])
        lr = seg.lr * min(1.0, (step + 1) / max(1, self.warmup_steps))
        if seg.decay_start and step >= seg.decay_start:
            frac = min(1.0, (step - seg.decay_start) / max(1, end - seg.decay_start))
            lr = self.lr_final + (lr - self.lr_final) * 0.5 * (1 + math.cos(math.pi * frac))
        return lr


@dataclass
class ValidationConfig:
    """RDF/ADF RMSD of a few EMA samples against validation structures, in log.jsonl."""

    every: int = 500  # steps; 0 = never
    samples: int = 4  # structures generated per step count
    steps: list[int] = field(default_factory=lambda: [1, 10])  # sampling step counts


@dataclass
class RuntimeConfig:
    """Where and how the run executes; none of these change what is learned except ``bf16``."""

    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads (0 = torch's default)
    bf16: bool | str = False  # bfloat16 autocast of the network calls: true, false, or "auto" =
    # where the device computes bf16 natively (GPU, CPU with AMX / AVX512-BF16; core.model.native_bf16)
    fast: bool = False  # the network's fast path (core/model/fast.py): same outputs, fewer kernels
    compile: bool = False  # with fast: its per-layer kernels compiled by torch.compile (~1.2x a step, 1 min to start)
    progress: bool = True
    log_every: int = 10  # steps between log.jsonl loss lines
    checkpoint_every: int = 500  # steps between saved checkpoints (and the end)

    def use_bf16(self, device) -> bool:
        """``bf16`` resolved for ``device``: "auto" is bfloat16 where the hardware computes it."""
        from core.model.denoiser import native_bf16

        return native_bf16(device) if self.bf16 == "auto" else bool(self.bf16)


@dataclass
class InitConfig:
    """Warm start (core.training.warm_start) from a Material SDE network, into AMShortcut or (a
    fork: the same network trained on with other settings) into a Material SDE: either a
    checkpoint directory, or a parent recipe that ``train`` runs first into ``<out>/parent``
    (resumed if stopped, skipped if finished) up to ``step`` (0 = its own ``steps``)."""

    checkpoint: str = ""
    recipe: str = ""
    step: int = 0
    grow: bool = False  # the source may have fewer layers: the added ones start as the identity


@dataclass
class DistillationConfig:
    """AMShortcut only: besides L_SDE and L_SC, every step regresses the shortcuts of the n-step
    maps (n in ``maps``) onto stored trajectories of ``teacher_steps`` PF-ODE steps of a fixed
    teacher, from ``pairs`` prior draws in training cells (core/distillation.py). Off when
    ``teacher`` is empty."""

    teacher: str = ""  # checkpoint directory, or "init": the weights the run starts from
    teacher_steps: int = 16
    maps: list[int] = field(default_factory=lambda: [1, 2])  # the n-step maps distilled
    pairs: int = 2048  # stored teacher trajectories (OUT/teacher-pairs.pt; built first, resumable)
    batch_size: int = 4  # distilled segments added to each training batch
    weight: float = 1.0  # of the distillation loss against L_SDE + L_SC
    seed: int = 1  # of the prior draws (and the order of their training cells)


# Settings that may differ between the phases of one run (the trainer reads them at every step).
PHASE_KEYS = ("data.property_dropout", "optimisation.ema_decay", "schedule.sc_level_power")


@dataclass
class Phase:
    """Settings of the steps before ``end`` (and after the previous phase's end) that differ
    from the sections, which hold the run's last phase; e.g. a property dropout switched on
    at step 9,500. In TOML: ``[[phases]]`` with ``end = 9500`` and ``data.property_dropout = 0.0``."""

    end: int
    settings: dict  # {"section.key": value}, keys from PHASE_KEYS


@dataclass
class Recipe:
    """Everything a training run depends on; saved beside its checkpoint as recipe.toml."""

    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    optimisation: OptimisationConfig = field(default_factory=OptimisationConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    init: InitConfig = field(default_factory=InitConfig)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    phases: list[Phase] = field(default_factory=list)

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict:
        """Nested tables as in the TOML file (a phase as {"end", section: {key: value}})."""
        tables = {f.name: asdict(getattr(self, f.name)) for f in fields(self) if f.name != "phases"}
        if self.phases:
            tables["phases"] = [_phase_tables(phase) for phase in self.phases]
        return tables

    def flat(self) -> dict:
        """{"section.key": value} (the lr schedule as a list of dicts, "phases" as a list)."""
        flat = {f"{s}.{k}": v for s, table in self.to_dict().items() if s != "phases" for k, v in table.items()}
        return {**flat, "phases": [{"end": p.end, **p.settings} for p in self.phases]}

    def at(self, step: int) -> "Recipe":
        """The recipe in effect at ``step``: the sections with the settings of the phase that
        holds the step, if any."""
        phase = next((p for p in self.phases if step < p.end), None)
        if phase is None:
            return self
        sections = {}
        for key, value in phase.settings.items():
            section, name = key.split(".")
            sections[section] = replace(sections.get(section, getattr(self, section)), **{name: value})
        return replace(self, phases=[], **sections)

    @classmethod
    def from_dict(cls, tables: dict, source: str = "recipe") -> "Recipe":
        """Build and check a recipe from nested tables; unknown keys and wrong types are errors."""
        _require_table(tables, source)
        sections = [f.name for f in fields(cls) if f.name != "phases"]
        unknown = sorted(set(tables) - set(sections) - {"phases"})
        if unknown:
            raise UserError(f"{source}: unknown section{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(unknown)} (known: {', '.join(sections)}, phases)")
        hints = typing.get_type_hints(cls)
        built = {name: _build(hints[name], tables.get(name, {}), name, source) for name in sections}
        phases = tables.get("phases", [])
        if not isinstance(phases, list):
            raise UserError(f"{source}: phases must be a list of tables ([[phases]]), got {phases!r}")
        built["phases"] = [_build_phase(p, k, source, hints) for k, p in enumerate(phases)]
        recipe = cls(**built).check()
        if not recipe.schedule.sigma_e:  # written out, so a saved recipe states the value it ran with
            recipe.schedule.sigma_e = recipe.schedule.framework_config().sigma_e
        return recipe

    def with_overrides(self, assignments, source: str = "--set") -> "Recipe":
        """A copy with ``section.key=value`` assignments applied (values as TOML literals;
        text that is no TOML literal is taken as a string, e.g. a path)."""
        return Recipe.from_dict(_assign(self.to_dict(), assignments, source), source)

    def to_toml(self, header: str = "") -> str:
        """The recipe as a TOML file (every key written), ``header`` as comment lines on top."""
        lines = [f"# {line}" for line in header.splitlines()]
        for section, table in self.to_dict().items():
            if section == "phases":
                continue
            lines += ["", f"[{section}]"] if lines else [f"[{section}]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
        for phase in self.phases:
            lines += ["", "[[phases]]", f"end = {phase.end}"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in phase.settings.items()]
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ checks
    def check(self, paths: bool = False, init: bool = True) -> "Recipe":
        """Every range and choice check, in one place; ``paths`` also checks that the files
        named exist (those of [init] only with ``init``: a resumed run does not use them).
        Returns self; raises UserError naming the first bad key."""
        from core.catalog import FRAMEWORKS
        from core.frameworks.base import GHOST_TARGETS, SC_UNITS
        from core.model.embedding import PropertyEmbedding

        d, n, s, o, v, r, i = (self.data, self.network, self.schedule, self.optimisation, self.validation,
                               self.runtime, self.init)
        _choice("schedule.framework", s.framework, tuple(FRAMEWORKS))
        _choice("schedule.sc_units", s.sc_units, SC_UNITS)
        _choice("schedule.ghost_target", s.ghost_target, GHOST_TARGETS)
        _choice("runtime.device", r.device, ("auto", "cpu", "cuda"))
        _choice("runtime.bf16", r.bf16, (True, False, "auto"))
        if r.compile and not r.fast:
            raise UserError("runtime.compile compiles the fast path's kernels: set runtime.fast = true too")
        if not d.path:
            raise UserError("data.path is required (a dataset directory or a structure file)")
        _range("data.property_dropout", d.property_dropout, 0.0, 1.0, high_open=True)
        if d.property_dropout and not d.properties:
            raise UserError("data.property_dropout needs data.properties to condition on")
        if len(set(d.properties)) != len(d.properties):
            raise UserError(f"data.properties lists a name twice: {d.properties}")
        _at_least("data.max_structures", d.max_structures, 0)
        _at_least("data.rho_max", d.rho_max, 0.0)
        for key in ("width", "layers", "vector_channels", "property_dim"):
            _at_least(f"network.{key}", getattr(n, key), 1)
        _positive("network.cutoff", n.cutoff)
        _at_least("network.aggregation_norm", n.aggregation_norm, 0.0)
        _at_least("network.distance_rbf", n.distance_rbf, 0)
        _choice("network.property_null", n.property_null, PropertyEmbedding.NULLS)
        if not PropertyEmbedding.features_ok(n.property_features):
            raise UserError(f"network.property_features must be 0 (the value itself) or at least 2, got {n.property_features}")
        _positive("schedule.sigma_x_max", s.sigma_x_max)
        _range("schedule.sigma_x_power", s.sigma_x_power, 1.0, 4.0)
        _at_least("schedule.sigma_e", s.sigma_e, 0.0)
        _positive("schedule.t_power", s.t_power)
        _range("schedule.t_band_fraction", s.t_band_fraction, 0.0, 1.0)
        if not (isinstance(s.t_band, list) and len(s.t_band) == 2
                and all(isinstance(v, (int, float)) for v in s.t_band) and 0 <= s.t_band[0] < s.t_band[1] <= 1):
            raise UserError(f"schedule.t_band must be [low, high] with 0 <= low < high <= 1, got {s.t_band!r}")
        _range("schedule.sc_fraction", s.sc_fraction, 0.0, 1.0)
        _range("schedule.sc_level_power", s.sc_level_power, 0.0, 4.0)
        if s.sc_level_power and s.framework != "shortcut":
            raise UserError("schedule.sc_level_power applies to the shortcut framework only")
        if s.ghost_target != "noise" and s.framework == "ode":
            raise UserError("schedule.ghost_target applies to the sde and shortcut frameworks "
                            "(the ode has no noise target)")
        _at_least("optimisation.steps", o.steps, 1)
        _at_least("optimisation.batch_size", o.batch_size, 1)
        _at_least("optimisation.warmup_steps", o.warmup_steps, 0)
        _at_least("optimisation.weight_decay", o.weight_decay, 0.0)
        _positive("optimisation.grad_clip", o.grad_clip)
        _range("optimisation.ema_decay", o.ema_decay, 0.0, 1.0, high_open=True)
        self._check_lr_schedule()
        _at_least("validation.every", v.every, 0)
        _at_least("validation.samples", v.samples, 1)
        if v.every and not v.steps:
            raise UserError("validation.steps must list at least one step count when validation.every > 0")
        for k, count in enumerate(v.steps):
            _at_least(f"validation.steps[{k}]", count, 1)
        _at_least("runtime.threads", r.threads, 0)
        _at_least("runtime.log_every", r.log_every, 1)
        _at_least("runtime.checkpoint_every", r.checkpoint_every, 1)
        if i.checkpoint and i.recipe:
            raise UserError("init.checkpoint and init.recipe are alternatives: set one")
        if (i.checkpoint or i.recipe) and s.framework not in ("shortcut", "sde"):
            raise UserError(f"init (a warm start from a Material SDE) applies to the shortcut and sde frameworks, "
                            f"not {s.framework}")
        _at_least("init.step", i.step, 0)
        if i.grow and not (i.checkpoint or i.recipe):
            raise UserError("init.grow adds layers to a warm start: it needs init.checkpoint or init.recipe")
        dist = self.distillation
        if dist.teacher:
            if s.framework != "shortcut":
                raise UserError(f"distillation applies to the shortcut framework, not {s.framework}")
            if dist.teacher == "init" and not (i.checkpoint or i.recipe):
                raise UserError("distillation.teacher = \"init\" needs a warm start (init.checkpoint or init.recipe)")
            _at_least("distillation.pairs", dist.pairs, 1)
            _at_least("distillation.batch_size", dist.batch_size, 1)
            _positive("distillation.weight", dist.weight)
            if not dist.maps:
                raise UserError("distillation.maps must list at least one step count")
            for k, n_map in enumerate(dist.maps):
                _at_least(f"distillation.maps[{k}]", n_map, 1)
                if dist.teacher_steps % n_map:
                    raise UserError(f"distillation.teacher_steps ({dist.teacher_steps}) must be a multiple of "
                                    f"every map; {n_map} does not divide it")
        start = 0
        for k, phase in enumerate(self.phases):
            if phase.end <= start:
                raise UserError(f"phases[{k}].end must be after the previous phase's end ({start}), got {phase.end}")
            start = phase.end
            try:
                self.at(phase.end - 1).check()
            except UserError as exc:
                raise UserError(f"phases[{k}]: {exc}") from None
        if i.step and not i.recipe:
            raise UserError("init.step is the parent recipe's step to fork at: it needs init.recipe")
        if paths:
            if not Path(d.path).exists():
                raise UserError(f"data.path {d.path}: no such dataset directory or file")
            if init and i.checkpoint and not Path(i.checkpoint).is_dir():
                raise UserError(f"init.checkpoint {i.checkpoint}: no such checkpoint directory")
            if init and i.recipe and not Path(i.recipe).is_file():
                raise UserError(f"init.recipe {i.recipe}: no such recipe file")
            if dist.teacher not in ("", "init") and not Path(dist.teacher).is_dir():
                raise UserError(f"distillation.teacher {dist.teacher}: no such checkpoint directory")
        return self

    def _check_lr_schedule(self):
        o = self.optimisation
        if not o.lr_schedule:
            raise UserError("optimisation.lr_schedule needs at least one segment")
        for k, seg in enumerate(o.lr_schedule[:-1]):
            if not seg.end:
                raise UserError(f"optimisation.lr_schedule[{k}].end must be set (only the last segment "
                                "may leave it to optimisation.steps)")
        bounds = o.segment_bounds()
        for k, (start, end, seg) in enumerate(bounds):
            key = f"optimisation.lr_schedule[{k}]"
            _positive(f"{key}.lr", seg.lr)
            if end <= start:
                raise UserError(f"{key}.end must be after the segment's start ({start}), got {end}")
            if seg.decay_start and not start <= seg.decay_start < end:
                raise UserError(f"{key}.decay_start must be 0 (no decay) or in [{start}, {end}), "
                                f"got {seg.decay_start}")
            if not 0.0 <= o.lr_final <= seg.lr:
                raise UserError(f"optimisation.lr_final must be between 0 and {key}.lr ({seg.lr}), "
                                f"got {o.lr_final}")
        if o.steps > bounds[-1][1]:
            raise UserError(f"optimisation.steps ({o.steps}) runs past the end of the lr schedule "
                            f"({bounds[-1][1]}): extend its last segment or add one")


# ----------------------------------------------------------------------------- files


CONFIGS = Path(__file__).resolve().parents[1] / "configs"
"""The shipped models' recipe files, ``configs/<system>/<framework>.toml`` (a source checkout)."""


def shipped_fork(system: str, framework: str, out_of=None) -> Recipe:
    """The recipe of the shipped ``system``/``framework`` model, set to continue from its weights:
    its last phase's settings, no parent to train, and the shipped ``rho_max`` and message norm
    (recomputing them on another device or a data subset could give other values). ``out_of``
    is the shipped checkpoint directory (default: ``core.catalog.shipped_checkpoint``)."""
    from core.catalog import shipped_checkpoint

    src = Path(out_of) if out_of is not None else shipped_checkpoint(system, framework)
    path = CONFIGS / system / f"{framework}.toml"
    if not path.is_file():
        raise UserError(f"no recipe file for the shipped {framework} model of {system} ({path})")
    recipe = load_recipe(path)
    model = json.loads((src / "config.json").read_text())
    return replace(recipe, phases=[], init=InitConfig(checkpoint=str(src)),
                   data=replace(recipe.data, rho_max=model["rho_max"]),
                   network=replace(recipe.network, aggregation_norm=model["model"]["aggregation_norm"]))


def load_recipe(path, overrides=()) -> Recipe:
    """A recipe TOML file (``recipe.toml`` saved by a run is one too), with ``--set`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such recipe file")
    try:
        tables = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    # overrides go into the tables before defaults are filled in (e.g. sigma_e follows a new framework)
    return Recipe.from_dict(_assign(tables, overrides, "--set"), str(path))


def parse_value(text: str):
    """A ``--set`` value: a TOML literal (number, bool, string, array, inline table), else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


# Flat keys of runs saved before recipes (their train_config.json, and the
# "train_config" in their checkpoints' config.json) -> "section.key".
LEGACY_KEYS = {
    "framework": "schedule.framework", "data": "data.path", "properties": "data.properties",
    "property_dropout": "data.property_dropout", "max_structures": "data.max_structures",
    "rho_max": "data.rho_max", "steps": "optimisation.steps", "batch_size": "optimisation.batch_size",
    "lr_final": "optimisation.lr_final", "warmup_steps": "optimisation.warmup_steps",
    "weight_decay": "optimisation.weight_decay", "grad_clip": "optimisation.grad_clip",
    "ema_decay": "optimisation.ema_decay", "seed": "optimisation.seed", "init_from": "init.checkpoint",
    "val_every": "validation.every", "val_samples": "validation.samples", "val_steps": "validation.steps",
    "log_every": "runtime.log_every", "ckpt_every": "runtime.checkpoint_every", "bf16": "runtime.bf16",
    "device": "runtime.device", "threads": "runtime.threads", "progress": "runtime.progress",
    **{k: f"network.{k}" for k in ("width", "layers", "vector_channels", "cutoff", "property_dim", "attention",
                                     "aggregation_norm", "distance_rbf")},
    **{k: f"schedule.{k}" for k in ("sigma_x_max", "sigma_x_power", "sigma_e", "t_power", "sc_fraction",
                                     "sc_level_power", "sc_units", "ghost_target")},
}


def from_legacy(flat: dict) -> Recipe:
    """The recipe of a run saved as a flat ``train_config.json`` (one lr segment: ``lr`` with a
    cosine from ``lr_decay_start`` to ``steps``); keys it predates take their defaults."""
    tables: dict = {}
    for key, value in flat.items():
        if key in LEGACY_KEYS:
            section, name = LEGACY_KEYS[key].split(".")
            tables.setdefault(section, {})[name] = value
    steps = flat.get("steps", OptimisationConfig.steps)
    tables.setdefault("optimisation", {})["lr_schedule"] = [
        {"lr": flat.get("lr", LrSegment.lr), "end": steps, "decay_start": flat.get("lr_decay_start", 0)}]
    return Recipe.from_dict(tables, "train_config.json")


def saved_recipe(directory) -> Recipe | None:
    """The recipe a run saved in ``directory`` (recipe.toml, or an older train_config.json)."""
    directory = Path(directory)
    if (directory / "recipe.toml").is_file():
        return load_recipe(directory / "recipe.toml")
    if (directory / "train_config.json").is_file():
        return from_legacy(json.loads((directory / "train_config.json").read_text()))
    return None


# ----------------------------------------------------------------------------- helpers


def _assign(tables: dict, assignments, source) -> dict:
    """``tables`` with ``section.key=value`` assignments applied (see ``Recipe.with_overrides``)."""
    sections = [f.name for f in fields(Recipe) if f.name != "phases"]
    for item in assignments:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise UserError(f"{source} expects SECTION.KEY=VALUE (e.g. optimisation.steps=100), got {item!r}")
        section, name = parts
        if section not in sections:
            raise UserError(f"{source} {key.strip()}: unknown section {section!r} (known: {', '.join(sections)})")
        table = tables.setdefault(section, {})
        _require_table(table, f"[{section}]")
        table[name] = parse_value(text.strip())
    return tables


def _phase_tables(phase: Phase) -> dict:
    tables = {"end": phase.end}
    for key, value in phase.settings.items():
        section, name = key.split(".")
        tables.setdefault(section, {})[name] = value
    return tables


def _build_phase(table, k, source, hints) -> Phase:
    """A ``Phase`` from its TOML table {"end": N, section: {key: value}}."""
    where = f"phases[{k}]"
    _require_table(table, f"{source}: {where}")
    if "end" not in table:
        raise UserError(f"{source}: {where}.end is required (the step the phase ends at)")
    end = _coerce(table["end"], int, f"{where}.end", source)
    settings = {}
    for section, values in table.items():
        if section == "end":
            continue
        _require_table(values, f"{source}: {where}.{section}")
        for name, value in values.items():
            key = f"{section}.{name}"
            if key not in PHASE_KEYS:
                raise UserError(f"{source}: {where}.{key} cannot change within a run "
                                f"(a phase may set {', '.join(PHASE_KEYS)})")
            kind = typing.get_type_hints(hints[section])[name]
            settings[key] = _coerce(value, kind, f"{where}.{key}", source)
    return Phase(end, settings)


def _require_table(value, where):
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a table (section.key = value), got {value!r}")


def _build(cls, table, section, source):
    """An instance of dataclass ``cls`` from a TOML table, naming unknown keys and bad types."""
    _require_table(table, f"{source}: [{section}]")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(table) - set(known))
    if unknown:
        keys = ", ".join(f"{section}.{k}" for k in unknown)
        raise UserError(f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {keys} "
                        f"(known in [{section}]: {', '.join(known)})")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], f"{section}.{k}", source) for k, v in table.items()})


def _coerce(value, kind, key, source):
    """``value`` as type ``kind`` (int -> float is fine, bool is no number), else UserError."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):  # e.g. bool | str: the first type that fits
        for option in typing.get_args(kind):
            try:
                return _coerce(value, option, key, source)
            except UserError:
                pass
        raise UserError(f"{key} must be {' or '.join(map(_type_name, typing.get_args(kind)))}, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(kind)
        if not isinstance(value, list):
            raise UserError(f"{key} must be a list, got {value!r}")
        return [_coerce(v, item, f"{key}[{k}]", source) for k, v in enumerate(value)]
    if isinstance(kind, type) and hasattr(kind, "__dataclass_fields__"):
        return _build(kind, value, key, source)
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # e.g. 1e4 steps
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise UserError(f"{key} must be {_type_name(kind)}, got {value!r}")


def _type_name(kind) -> str:
    names = {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}
    return names.get(kind, kind.__name__)


def _choice(key, value, choices):
    if not any(value is c if isinstance(c, bool) else value == c for c in choices):
        shown = [str(c).lower() if isinstance(c, bool) else str(c) for c in choices]  # TOML spelling
        raise UserError(f"{key} must be one of {', '.join(shown)}, got {value!r}")


def _at_least(key, value, low):
    if value < low:
        raise UserError(f"{key} must be >= {low}, got {value}")


def _positive(key, value):
    if not value > 0:
        raise UserError(f"{key} must be > 0, got {value}")


def _range(key, value, low, high, high_open=False):
    if not (low <= value < high if high_open else low <= value <= high):
        raise UserError(f"{key} must be in [{low}, {high}{')' if high_open else ']'}, got {value}")


def _toml_value(value) -> str:
    """A TOML literal for the value types recipes hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return "[\n" + "".join(f"    {_toml_value(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")
