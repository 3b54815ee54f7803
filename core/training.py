"""Training loop for Material ODE / SDE / AMShortcut (nanoGPT style: config, data, loop, save).

One process or many: under ``torchrun`` (WORLD_SIZE > 1) the network is wrapped in
DistributedDataParallel (NCCL on GPUs, gloo on CPU) and every rank takes its own slice of
each global batch.  Everything random derives from ``seed`` (data order and ghost padding
from (seed, epoch); torch RNG from seed and rank), and ``resume`` restores the RNG state,
so a resumed run continues exactly where it stopped.

Files in ``out``: ``config.json`` + ``weights.pt`` (the EMA network, a loadable checkpoint),
``train_state.pt`` (raw weights, EMA, optimiser, step, RNG; tensors only),
``train_config.json`` and ``log.jsonl`` (one JSON line per log/validation event, and one per resume
naming the flags that changed, ``{"step", "resumed", "changed": {flag: [before, after]}}``).
"""

from __future__ import annotations

import copy
import gc
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from core.checkpoint import Checkpoint, save_checkpoint
from core.errors import UserError
from core.frameworks import State, default_config, make_framework
from core.model import Denoiser, DenoiserConfig
from core.model.denoiser import mean_neighbour_weight
from core.sample import GHOST, MaterialSample, collate


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as train_config.json and in the checkpoint."""

    framework: str = "shortcut"  # ode | sde | shortcut
    data: str = ""  # dataset directory (core.datasets) or one structure file
    out: str = "runs/model"
    properties: list = field(default_factory=list)
    steps: int = 2000
    batch_size: int = 4  # structures per rank and step
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_decay_start: int = 0  # cosine decay of lr from this step to lr_final at `steps`; 0 = constant
    lr_final: float = 1e-5
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    rho_max: float = 0.0  # atoms/Å^3 incl. ghosts; 0 = 1.1 x the densest training structure
    max_structures: int = 0  # use only the first N training structures (0 = all)
    init_from: str = ""  # AMShortcut: start from this Material SDE checkpoint's network (see warm_start)
    # share of (structure, property) pairs given as missing (NaN -> the null embedding) in each batch;
    # 0 = always all present (SPEC §3, the paper); see Trainer._make_batch
    property_dropout: float = 0.0
    # network
    width: int = 128
    layers: int = 4
    vector_channels: int = 8
    cutoff: float = 6.5
    property_dim: int = 8
    attention: bool = True
    aggregation_norm: float = 0.0  # message-sum divisor; 0 = mean sum_j f_cut(r_ij) of the training data
    distance_rbf: int = 0  # Gaussian radial basis functions on edge distances (0 = the paper's tanh feature only)
    # schedule (0 = framework default)
    sigma_x_max: float = 12.0
    sigma_x_power: float = 1.0
    sigma_e: float = 0.0
    sc_fraction: float = 0.25
    sc_level_power: float = 0.0  # L_SC level d drawn with probability ~ (2d)^power (0 = uniform); may change on resume
    sc_units: str = "noise"  # L_SC in noise units (as L_SDE) or drift units (SPEC §2); see FrameworkConfig
    ghost_target: str = "noise"  # ghosts' position target: their noise, or its mean 0; see FrameworkConfig
    t_power: float = 1.0
    # bookkeeping
    log_every: int = 10
    val_every: int = 500  # 0 = never
    val_samples: int = 4
    val_steps: list = field(default_factory=lambda: [1, 10])
    ckpt_every: int = 500
    bf16: bool = False  # bfloat16 autocast (CPU AMX / GPU)
    fast: bool = False  # the network's fast path (core.model.fast): same network and loss, fewer kernels
    device: str = "auto"
    threads: int = 0  # torch CPU threads (0 = torch default)
    progress: bool = True


class BFloat16Autocast:
    """Calls a network under bfloat16 autocast and returns its outputs as float32."""

    def __init__(self, network, device_type: str):
        self.network, self.device_type = network, device_type

    def __call__(self, *args, **kwargs):
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            out = self.network(*args, **kwargs)
        return tuple(o.float() for o in out)


# Settings a resumed run must share with the saved one (the others, e.g. steps, threads,
# validation and checkpoint cadence, may change between sessions).
RESUME_MUST_MATCH = ("framework", "width", "layers", "vector_channels", "cutoff", "properties", "data",
                     "sigma_x_max", "sigma_x_power", "sigma_e", "t_power", "sc_fraction", "property_dim",
                     "attention", "init_from", "distance_rbf", "sc_units", "ghost_target")


# ----------------------------------------------------------------------------- data


def load_structures(data: str, split: str | None):
    """ase.Atoms of a dataset directory's split (via core.datasets) or of one structure file."""
    path = Path(data)
    if path.is_dir():
        from core.datasets import load_dataset

        return load_dataset(path, split=split)
    from core.sample import read_structures

    return read_structures(path)


def property_stats(samples, names):
    """{name: {mean, std, min, max}} over the samples that have the property (std 1 if constant)."""
    stats = {}
    for name in names:
        values = np.array([s.properties.get(name, math.nan) for s in samples], dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            raise UserError(f"no training structure has the property {name!r}")
        std = float(values.std()) if len(values) > 1 and values.std() > 0 else 1.0
        stats[name] = {"mean": float(values.mean()), "std": std, "min": float(values.min()), "max": float(values.max())}
    return stats


def to_state(batch, n_classes, normalise, device):
    """torch-geometric batch from ``core.sample.collate`` -> framework ``State`` (one-hot elements)."""
    elem = torch.nn.functional.one_hot(batch.element, n_classes).float()
    return State(batch.pos.to(device), elem.to(device), batch.cell.to(device), batch.batch.to(device),
                 normalise(batch.y).to(device))


# ----------------------------------------------------------------------------- warm start

# Schedule settings the SDE network's outputs depend on: they must agree for its eps / v
# predictions to mean the same in the shortcut model.
WARM_START_SCHEDULE = ("sigma_x_max", "sigma_x_power", "sigma_e")


def warm_start(model, framework, species, property_names, source):
    """Load a Material SDE checkpoint's network into a fresh AMShortcut ``model`` so that
    u(M_t, t, d) equals the SDE network for every d at the start.

    AMShortcut is the SDE network plus the step size d as extra node inputs (the last columns
    of the raw node features, which enter the input embedding and every node MLP): those
    weight columns start at zero and everything else is copied. Training then spends its
    steps on the shortcut hierarchy, whose base level is this already-trained drift
    (``AMShortcut.teacher_dt``). An AMShortcut source is copied as it is (a fork: the same
    network continued with other loss settings, e.g. ``sc_units``; the optimiser starts
    afresh). UserError when the source is not an SDE or AMShortcut model of the same size,
    species, properties and noise schedule."""
    from core.checkpoint import load_checkpoint

    src = load_checkpoint(source)
    where = f"--init-from {source}"
    if framework.name != "shortcut" or src.framework.name not in ("sde", "shortcut"):
        raise UserError(f"{where}: a warm start takes a Material SDE (or AMShortcut) checkpoint into AMShortcut "
                        f"training, not {src.framework.name} into {framework.name}")
    mine, theirs = model.cfg.to_dict(), src.network.cfg.to_dict()
    for key in sorted(set(mine) - {"use_dt"}):
        if mine[key] != theirs.get(key):
            raise UserError(f"{where}: model {key} is {theirs.get(key)!r} there, {mine[key]!r} here")
    for key in WARM_START_SCHEDULE:
        a, b = getattr(src.framework.config, key), getattr(framework.config, key)
        if a != b:
            raise UserError(f"{where}: schedule {key} is {a!r} there, {b!r} here")
    if list(src.species) != list(species) or list(src.property_names) != list(property_names):
        raise UserError(f"{where}: species/properties {src.species}/{src.property_names} there, "
                        f"{list(species)}/{list(property_names)} here")
    state = model.state_dict()
    with torch.no_grad():
        for name, value in src.network.state_dict().items():
            target = state[name]
            if target.shape == value.shape:
                target.copy_(value)
            elif target.dim() == 2 and target.shape[0] == value.shape[0] and target.shape[1] > value.shape[1]:
                target.zero_()  # step-size columns (the tail of the raw node input) start at zero
                target[:, : value.shape[1]].copy_(value)
            else:
                raise UserError(f"{where}: parameter {name} has shape {tuple(value.shape)} there, "
                                f"{tuple(target.shape)} here")


# ----------------------------------------------------------------------------- loop helpers


def _distributed():
    """(rank, world size), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _lr(cfg, step):
    """Linear warmup, then constant, or a cosine from ``lr`` at ``lr_decay_start`` to
    ``lr_final`` at ``steps`` (a function of the step only, so resuming needs no state)."""
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    if cfg.lr_decay_start and step >= cfg.lr_decay_start:
        frac = min(1.0, (step - cfg.lr_decay_start) / max(1, cfg.steps - cfg.lr_decay_start))
        lr = cfg.lr_final + (lr - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * frac))
    return lr


@torch.no_grad()
def _update_ema(ema, model, step, decay):
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - d)


class Trainer:
    """Holds data, model, optimiser and EMA; ``run()`` trains to ``cfg.steps``."""

    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.cfg, self.out = cfg, Path(cfg.out)
        self.rank, self.world = _distributed()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device("cuda", self.rank % max(1, torch.cuda.device_count())) \
            if (cfg.device == "auto" and torch.cuda.is_available()) or cfg.device == "cuda" else torch.device("cpu")
        self._load_data()
        schedule = default_config(cfg.framework)
        schedule.sigma_x_max = cfg.sigma_x_max
        schedule.sigma_x_power = cfg.sigma_x_power
        schedule.sc_fraction = cfg.sc_fraction
        schedule.sc_level_power = cfg.sc_level_power
        schedule.sc_units = cfg.sc_units
        schedule.ghost_target = cfg.ghost_target
        schedule.t_power = cfg.t_power
        if cfg.sigma_e:
            schedule.sigma_e = cfg.sigma_e
        self.framework = make_framework(schedule)
        model_cfg = DenoiserConfig(n_classes=len(self.species) + 1, n_properties=len(cfg.properties),
                                   width=cfg.width, layers=cfg.layers, vector_channels=cfg.vector_channels,
                                   cutoff=cfg.cutoff, property_dim=cfg.property_dim,
                                   use_dt=self.framework.uses_dt, attention=cfg.attention,
                                   distance_rbf=cfg.distance_rbf,
                                   aggregation_norm=cfg.aggregation_norm or self._neighbour_weight())
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.model = Denoiser(model_cfg).to(self.device)
        self.model.fast = cfg.fast  # the EMA copy below inherits it
        if cfg.init_from and not resume:
            warm_start(self.model, self.framework, self.species, cfg.properties, cfg.init_from)
        self.ema = copy.deepcopy(self.model).eval()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.step = 0
        torch.manual_seed(cfg.seed * 1000 + self.rank)
        if resume:
            self._resume()
        self.ddp = DistributedDataParallel(self.model) if self.world > 1 else self.model

    def _load_data(self):
        cfg = self.cfg
        train = load_structures(cfg.data, "train")
        if cfg.max_structures:
            train = train[:cfg.max_structures]
        if not train:
            raise UserError(f"{cfg.data}: no training structures")
        self.val = load_structures(cfg.data, "val") if Path(cfg.data).is_dir() else train
        self.val = self.val or train
        self.samples = [MaterialSample.from_atoms(a, cfg.properties) for a in train]
        self.species = sorted({int(z) for s in self.samples for z in s.numbers if z != GHOST})
        self.stats = property_stats(self.samples, cfg.properties)
        densest = max(s.density for s in self.samples)
        self.rho_max = cfg.rho_max or round(1.1 * densest, 4)
        if self.rho_max < densest:
            raise UserError(f"rho_max {self.rho_max} is below the densest training structure ({densest:.4f} atoms/Å^3)")

    def _neighbour_weight(self):
        """Mean weighted neighbour count of (up to 16) ghost-padded training structures."""
        rng = np.random.default_rng([self.cfg.seed, 1 << 20])
        padded = [s.pad_ghosts(self.rho_max, rng) for s in self.samples[:16]]
        batch = collate(padded, self.species)
        return round(mean_neighbour_weight(batch.pos, batch.cell, batch.batch, self.cfg.cutoff), 3)

    def checkpoint(self) -> Checkpoint:
        """The EMA network as a generation checkpoint (in memory)."""
        return Checkpoint(self.ema, self.framework, self.species, self.rho_max, list(self.cfg.properties),
                          self.stats, {"train_config": asdict(self.cfg), "step": self.step,
                                       "n_train": len(self.samples), "cell": self.samples[0].cell.tolist()})

    def _resume(self):
        path = self.out / "train_state.pt"
        if not path.is_file():
            raise UserError(f"cannot resume: {path} does not exist")
        saved = json.loads((self.out / "train_config.json").read_text())
        defaults = TrainConfig(framework=self.cfg.framework, data=self.cfg.data, out=self.cfg.out)
        # the saved flags; a key the saved config predates counts as its default
        before = {key: saved.get(key, value) for key, value in asdict(defaults).items()}
        for key in RESUME_MUST_MATCH:
            if before[key] != getattr(self.cfg, key):
                raise UserError(f"cannot resume: {key} was {before[key]!r} in {self.out}, now {getattr(self.cfg, key)!r} "
                                f"(pass the run's original value; see {self.out / 'train_config.json'})")
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self._trim_log()
        changed = {key: [before[key], value] for key, value in asdict(self.cfg).items()
                   if before[key] != value and key not in ("out", "progress")}
        # train_config.json keeps only the latest flags: the log keeps each phase's changes
        self._log({"step": self.step, "resumed": True, "changed": changed})
        torch.set_rng_state(state["rng"][self.rank].cpu())

    def _save(self):
        rngs = [torch.get_rng_state()]
        if self.world > 1:
            gathered = [None] * self.world
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "train_config.json").write_text(json.dumps(asdict(self.cfg), indent=2))
        tmp = self.out / "train_state.pt.tmp"
        torch.save({"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                    "optimizer": self.optimizer.state_dict(), "step": self.step, "rng": rngs}, tmp)
        tmp.replace(self.out / "train_state.pt")
        save_checkpoint(self.checkpoint(), self.out)

    def _batch_indices(self, step):
        """Indices of this rank's structures at ``step`` (epochs are seeded permutations)."""
        global_batch = self.cfg.batch_size * self.world
        per_epoch = max(1, len(self.samples) // global_batch)
        epoch, k = divmod(step, per_epoch)
        order = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.samples))
        if len(order) < global_batch:
            order = np.resize(order, global_batch)
        start = k * global_batch + self.rank * self.cfg.batch_size
        return epoch, order[start:start + self.cfg.batch_size]

    def _make_batch(self, step):
        """This rank's ghost-padded batch at ``step``; with ``property_dropout`` p each property of
        each structure is independently set missing with probability p.

        Why: a network trained with every property present never sees the null embedding (a
        fresh N(0, I) vector), and LayerNorm(Linear(y)) of a scalar y is close to one of two
        fixed vectors (the sign of y), nothing like N(0, I). Measured on the a-SiO2 AMShortcut
        trained without dropout: with the properties unset its element-prediction MSE at
        t = 0.05 is 1.35 against 0.036 with them given, and 25-step samples score RDF RMSD 0.73
        unset against 0.61 given the training means (docs/model.md, "Session 9: the null property
        embedding was never trained")."""
        epoch, idx = self._batch_indices(step)
        rng = np.random.default_rng([self.cfg.seed, epoch, step, self.rank])
        padded = [self.samples[i].pad_ghosts(self.rho_max, rng) for i in idx]
        batch = collate(padded, self.species, self.cfg.properties)
        state = to_state(batch, len(self.species) + 1, self.checkpoint().normalise, self.device)
        if self.cfg.property_dropout > 0 and state.y.shape[1]:
            drop = torch.from_numpy(rng.random(tuple(state.y.shape)) < self.cfg.property_dropout)
            state = state.replace(y=torch.where(drop.to(state.y.device), torch.nan, state.y))
        return state

    def validate(self):
        """RDF/ADF RMSD of a few EMA samples (per step count) against validation structures."""
        from core.metrics import structure_rmsd
        from core.sampling import generate

        ref = self.val[: max(self.cfg.val_samples, 16)]
        cell = ref[0].cell.array
        result = {}
        for n_steps in self.cfg.val_steps:
            gen = generate(self.checkpoint(), self.cfg.val_samples, int(n_steps), cell, self.rho_max,
                           device=self.device, seed=self.cfg.seed)
            try:
                r = structure_rmsd(gen, ref)
            except Exception as exc:  # noqa: BLE001 - e.g. a sample with no real atoms early in training
                result[f"val_{n_steps}_error"] = str(exc)
                continue
            result[f"val_rdf_{n_steps}"], result[f"val_adf_{n_steps}"] = r["rdf"], r["adf"]
        self.ema.to(self.device)
        return result

    def _trim_log(self):
        """Drop log records past the restored step (written after the last checkpoint), so a
        resumed run's log.jsonl has each step once."""
        path = self.out / "log.jsonl"
        if self.rank != 0 or not path.is_file():
            return
        lines = path.read_text().splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= self.step]
        if len(kept) != len(lines):
            path.write_text("".join(line + "\n" for line in kept))

    def _log(self, record):
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def loss(self, state):
        """(loss, logs) of one batch. With ``bf16`` only the network calls run under bfloat16
        autocast: the noising, wrapping and targets stay float32 (under autocast the einsums
        of ``periodic.wrap`` would round 17 Å coordinates to ~0.06 Å, and the noise targets
        at sigma < 0.1 Å with them)."""
        model, teacher = self.ddp, self.ema
        if self.cfg.bf16:
            model, teacher = (BFloat16Autocast(m, self.device.type) for m in (model, teacher))
        return self.framework.loss(model, state, target_model=teacher)

    def run(self, on_step=None):
        """Train until ``cfg.steps``; returns the list of per-step loss dicts of this call."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        history = []
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not cfg.progress or self.rank != 0,
                   desc=f"train {cfg.framework}", unit="step")
        t0 = time.perf_counter()
        self.model.train()
        while self.step < cfg.steps:
            state = self._make_batch(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = _lr(cfg, self.step)
            loss, logs = self.loss(state)
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss became {loss.item()} at step {self.step}; lower the learning rate")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip))
            self.optimizer.step()
            _update_ema(self.ema, self.model, self.step, cfg.ema_decay)
            self.step += 1
            history.append(logs)
            bar.update(1)
            bar.set_postfix(loss=f"{logs['loss']:.4f}")
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                self._log({"step": self.step, "time_s": round(time.perf_counter() - t0, 2), **logs})
            if cfg.val_every and self.step % cfg.val_every == 0 and self.rank == 0:
                val = self.validate()
                self._log({"step": self.step, **val})
                bar.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in val.items()
                                                           if isinstance(v, float)))
            if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                self._save()
            if on_step is not None:
                on_step(self.step, logs)
        bar.close()
        return history

    def close(self):
        """End distributed training cleanly (a no-op in one process).

        The DDP wrapper's reducer holds the process group, so ``destroy_process_group`` alone
        leaves gloo's worker threads alive until interpreter teardown, where they were
        destroyed unjoined in ~7 % of two-rank runs ("terminate called without an active
        exception", SIGABRT after training had finished). Drop the wrapper, wait for every
        rank, then destroy the group while the interpreter is whole.
        """
        if self.world == 1 or not dist.is_initialized():
            return
        self.ddp = self.model
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def train(cfg: TrainConfig, resume: bool = False):
    """Train (or resume) a model; returns the Trainer (its ``out`` holds the checkpoint)."""
    trainer = Trainer(cfg, resume=resume)
    trainer.run()
    trainer.close()
    return trainer
