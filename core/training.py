"""Training loop for Material ODE / SDE / AMShortcut (nanoGPT style: config, data, loop, save).

One process or many: under ``torchrun`` (WORLD_SIZE > 1) the network is wrapped in
DistributedDataParallel (NCCL on GPUs, gloo on CPU) and every rank takes its own slice of
each global batch.  Everything random derives from ``seed`` (data order and ghost padding
from (seed, epoch); torch RNG from seed and rank), and ``resume`` restores the RNG state,
so a resumed run continues exactly where it stopped.

What a run does is a ``core.recipe.Recipe``. Files in ``out``: ``config.json`` + ``weights.pt``
(the EMA network, a loadable checkpoint), ``train_state.pt`` (raw weights, EMA, optimiser, step,
RNG; tensors only), ``recipe.toml`` (the run's recipe, itself a valid ``--config``) and
``log.jsonl`` (one JSON line per log/validation event, and one per resume naming the settings
that changed, ``{"step", "resumed", "changed": {"section.key": [before, after]}}``). A recipe
with a parent (``init.recipe``) trains it first into ``out/parent``.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from core.checkpoint import Checkpoint, save_checkpoint
from core.errors import UserError
from core.frameworks import State, make_framework
from core.model import BFloat16Autocast, Denoiser
from core.model.denoiser import mean_neighbour_weight
from core.recipe import Recipe, load_recipe, saved_recipe
from core.material import GHOST, MaterialSample, collate


# Recipe keys a resumed run must share with the saved one (the others, e.g. steps, the lr
# schedule, EMA decay, property dropout, threads, validation and checkpoint cadence, may change
# between sittings; each change is logged).
RESUME_MUST_MATCH = ("schedule.framework", "network.width", "network.layers", "network.vector_channels",
                     "network.cutoff", "network.property_dim", "network.attention", "network.distance_rbf",
                     "network.property_null", "network.property_features",
                     "data.path", "data.md_recipe", "data.properties", "schedule.sigma_x_max", "schedule.sigma_x_power",
                     "schedule.sigma_e", "schedule.t_power", "schedule.t_band", "schedule.t_band_fraction",
                     "schedule.sc_fraction", "schedule.sc_units",
                     "schedule.ghost_target", "init.checkpoint", "init.recipe", "init.step", "init.grow",
                     "distillation.teacher", "distillation.teacher_steps", "distillation.maps", "distillation.pairs",
                     "distillation.seed")


# ----------------------------------------------------------------------------- data


def load_structures(data: str, split: str | None, md_recipe: str = ""):
    """ase.Atoms of a dataset directory's split (via core.datasets; with ``md_recipe``, only the
    shards that MD recipe made) or of one structure file."""
    path = Path(data)
    if path.is_dir():
        from core.datasets import load_dataset

        return load_dataset(path, split=split, recipe=md_recipe or None)
    from core.material import read_structures

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
    """torch-geometric batch from ``core.material.collate`` -> framework ``State`` (one-hot elements)."""
    elem = torch.nn.functional.one_hot(batch.element, n_classes).float()
    return State(batch.pos.to(device), elem.to(device), batch.cell.to(device), batch.batch.to(device),
                 normalise(batch.y).to(device))


# ----------------------------------------------------------------------------- warm start

# Schedule settings the SDE network's outputs depend on: they must agree for its eps / v
# predictions to mean the same in the shortcut model.
WARM_START_SCHEDULE = ("sigma_x_max", "sigma_x_power", "sigma_e")


def warm_start(model, framework, species, property_names, source, grow=False):
    """Load a Material SDE checkpoint's network into a fresh AMShortcut ``model`` so that
    u(M_t, t, d) equals the SDE network for every d at the start.

    AMShortcut is the SDE network plus the step size d as extra node inputs (the last columns
    of the raw node features, which enter the input embedding and every node MLP): those
    weight columns start at zero and everything else is copied. Training then spends its
    steps on the shortcut hierarchy, whose base level is this already-trained drift
    (``AMShortcut.teacher_dt``). An AMShortcut source into AMShortcut, or a Material SDE source
    into Material SDE training, is copied as it is (a fork: the same network continued with
    other settings, e.g. ``sc_units`` or ``t_power``; the optimiser starts afresh). UserError
    when the source is not an SDE or AMShortcut model (an SDE only, into an SDE) of the same
    size, species, properties and noise schedule.

    ``grow``: the source may have fewer message-passing layers than ``model``; its layers become
    the first ones and the added layers start as the identity (their node-update and coordinate
    output weights zero; both updates are residual), so the grown network computes the source's
    function at the start and training adds depth (the paper's a-Si network has 8 blocks)."""
    from core.checkpoint import load_checkpoint

    src = load_checkpoint(source)
    where = f"warm start from {source}"
    allowed = {"shortcut": ("sde", "shortcut"), "sde": ("sde",)}.get(framework.name, ())
    if src.framework.name not in allowed:
        raise UserError(f"{where}: a warm start takes a Material SDE (or AMShortcut) checkpoint into AMShortcut "
                        f"training, or a Material SDE into Material SDE training, not {src.framework.name} "
                        f"into {framework.name}")
    mine, theirs = model.cfg.to_dict(), src.network.cfg.to_dict()
    if grow and theirs["layers"] > mine["layers"]:
        raise UserError(f"{where}: init.grow adds layers; the source has {theirs['layers']}, this model {mine['layers']}")
    # the step input and the property embedding may change (a property embedding of another
    # shape starts afresh, below)
    for key in sorted(set(mine) - {"use_dt", "property_null", "property_features"} - ({"layers"} if grow else set())):
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
        fresh_properties = mine["property_features"] != theirs.get("property_features", 0)
        for name, value in src.network.state_dict().items():
            if name.startswith("properties.") and (fresh_properties or name not in state):
                continue  # a property embedding of another kind keeps its initial values; a null vector no longer used is dropped
            target = state[name]
            if target.shape == value.shape:
                target.copy_(value)
            elif target.dim() == 2 and target.shape[0] == value.shape[0] and target.shape[1] > value.shape[1]:
                target.zero_()  # step-size columns (the tail of the raw node input) start at zero
                target[:, : value.shape[1]].copy_(value)
            else:
                raise UserError(f"{where}: parameter {name} has shape {tuple(value.shape)} there, "
                                f"{tuple(target.shape)} here")
        for layer in model.layers[src.network.cfg.layers:]:
            last_node = layer.node[-1]
            last_node.weight.zero_(), last_node.bias.zero_()
            (layer.coord if layer.coord_from_message else layer.coord.out[-1]).weight.zero_()


# ----------------------------------------------------------------------------- loop helpers


def _distributed():
    """(rank, world size), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


@torch.no_grad()
def _update_ema(ema, model, step, decay):
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - d)


class Trainer:
    """Holds data, model, optimiser and EMA; ``run()`` trains to ``optimisation.steps``.

    ``init_from`` is the checkpoint to warm-start from when the recipe names a parent recipe
    (``train`` passes ``out/parent``); ``init.checkpoint`` is used as it is."""

    def __init__(self, recipe: Recipe, out, resume: bool = False, init_from=None):
        self.recipe, self.out = recipe.check(paths=True, init=not resume), Path(out)
        self.rank, self.world = _distributed()
        rt = recipe.runtime
        if rt.threads:
            torch.set_num_threads(rt.threads)
        self.device = torch.device("cuda", self.rank % max(1, torch.cuda.device_count())) \
            if (rt.device == "auto" and torch.cuda.is_available()) or rt.device == "cuda" else torch.device("cpu")
        self.bf16 = rt.use_bf16(self.device)
        self._load_data()
        self.framework = make_framework(recipe.schedule.framework_config())
        net = recipe.network
        model_cfg = net.denoiser_config(n_classes=len(self.species) + 1, n_properties=len(recipe.data.properties),
                                        use_dt=self.framework.uses_dt,
                                        aggregation_norm=net.aggregation_norm or self._neighbour_weight())
        torch.manual_seed(recipe.optimisation.seed)  # identical initial weights on every rank
        self.model = Denoiser(model_cfg).to(self.device)
        self.model.fast = rt.fast  # the EMA copy below inherits it
        self.model.compiled = rt.compile
        source = init_from or recipe.init.checkpoint
        if recipe.init.recipe and not (source or resume):
            raise UserError("init.recipe: the parent is trained by core.training.train (or `amshortcut train`), "
                            "which passes its checkpoint as init_from")
        if source and not resume:
            warm_start(self.model, self.framework, self.species, recipe.data.properties, source,
                       grow=recipe.init.grow)
        self.ema = copy.deepcopy(self.model).eval()
        self.teacher_source = source if recipe.distillation.teacher == "init" else recipe.distillation.teacher
        self.pairs = None  # core.distillation.TeacherPairs, built by run() when distilling
        opt = recipe.optimisation
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=opt.lr_schedule[0].lr,
                                           weight_decay=opt.weight_decay)
        self.step = 0
        torch.manual_seed(opt.seed * 1000 + self.rank)
        if resume:
            self._resume()
        self.ddp = DistributedDataParallel(self.model) if self.world > 1 else self.model

    def _load_data(self):
        data = self.recipe.data
        train = load_structures(data.path, "train", data.md_recipe)
        if data.max_structures:
            train = train[:data.max_structures]
        if not train:
            raise UserError(f"{data.path}: no training structures")
        self.val = load_structures(data.path, "val", data.md_recipe) if Path(data.path).is_dir() else train
        self.val = self.val or train
        self.samples = [MaterialSample.from_atoms(a, data.properties) for a in train]
        self.species = sorted({int(z) for s in self.samples for z in s.numbers if z != GHOST})
        self.stats = property_stats(self.samples, data.properties)
        densest = max(s.density for s in self.samples)
        self.rho_max = data.rho_max or round(1.1 * densest, 4)
        if self.rho_max < densest:
            raise UserError(f"data.rho_max {self.rho_max} is below the densest training structure "
                            f"({densest:.4f} atoms/Å^3)")

    def _neighbour_weight(self):
        """Mean weighted neighbour count of (up to 16) ghost-padded training structures."""
        rng = np.random.default_rng([self.recipe.optimisation.seed, 1 << 20])
        padded = [s.pad_ghosts(self.rho_max, rng) for s in self.samples[:16]]
        batch = collate(padded, self.species)
        return round(mean_neighbour_weight(batch.pos, batch.cell, batch.batch, self.recipe.network.cutoff), 3)

    def checkpoint(self) -> Checkpoint:
        """The EMA network as a generation checkpoint (in memory)."""
        return Checkpoint(self.ema, self.framework, self.species, self.rho_max, list(self.recipe.data.properties),
                          self.stats, {"recipe": self.recipe.to_dict(), "step": self.step,
                                       "n_train": len(self.samples), "cell": self.samples[0].cell.tolist()})

    def _resume(self):
        path = self.out / "train_state.pt"
        if not path.is_file():
            raise UserError(f"cannot resume: {path} does not exist")
        saved = saved_recipe(self.out)
        if saved is None:
            raise UserError(f"cannot resume: {self.out} has no recipe.toml")
        before, now = saved.flat(), self.recipe.flat()
        for key in RESUME_MUST_MATCH:
            if before[key] != now[key]:
                raise UserError(f"cannot resume: {key} was {before[key]!r} in {self.out}, now {now[key]!r} "
                                f"(keep the run's value; see its recipe.toml)")
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self._trim_log()
        changed = {key: [before[key], value] for key, value in now.items()
                   if before[key] != value and key != "runtime.progress"}
        # recipe.toml keeps only the latest settings: the log keeps each phase's changes
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
        (self.out / "recipe.toml").write_text(self.recipe.to_toml(
            f"The recipe of this run (step {self.step}); `amshortcut train --config` reads it."))
        (self.out / "train_config.json").unlink(missing_ok=True)  # an older run's flat config, now in recipe.toml
        tmp = self.out / "train_state.pt.tmp"
        torch.save({"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                    "optimizer": self.optimizer.state_dict(), "step": self.step, "rng": rngs}, tmp)
        tmp.replace(self.out / "train_state.pt")
        save_checkpoint(self.checkpoint(), self.out)

    def _batch_indices(self, step):
        """Indices of this rank's structures at ``step`` (epochs are seeded permutations)."""
        batch_size = self.recipe.optimisation.batch_size
        global_batch = batch_size * self.world
        per_epoch = max(1, len(self.samples) // global_batch)
        epoch, k = divmod(step, per_epoch)
        order = np.random.default_rng([self.recipe.optimisation.seed, epoch]).permutation(len(self.samples))
        if len(order) < global_batch:
            order = np.resize(order, global_batch)
        start = k * global_batch + self.rank * batch_size
        return epoch, order[start:start + batch_size]

    def _make_batch(self, step):
        """This rank's ghost-padded batch at ``step``; with ``property_dropout`` p each property of
        each structure is independently set missing with probability p.

        Why: a network trained with every property present never sees the null embedding (a
        fresh N(0, I) vector), and LayerNorm(Linear(y)) of a scalar y is close to one of two
        fixed vectors (the sign of y), nothing like N(0, I). Measured on the a-SiO2 AMShortcut
        trained without dropout: with the properties unset its element-prediction MSE at
        t = 0.05 is 1.35 against 0.036 with them given, and 25-step samples score RDF RMSD 0.73
        unset against 0.61 given the training means (docs/model.md: the null property embedding
        was never trained)."""
        epoch, idx = self._batch_indices(step)
        rng = np.random.default_rng([self.recipe.optimisation.seed, epoch, step, self.rank])
        padded = [self.samples[i].pad_ghosts(self.rho_max, rng) for i in idx]
        data = self.recipe.at(step).data
        batch = collate(padded, self.species, data.properties)
        state = to_state(batch, len(self.species) + 1, self.checkpoint().normalise, self.device)
        if data.property_dropout > 0 and state.y.shape[1]:
            drop = torch.from_numpy(rng.random(tuple(state.y.shape)) < data.property_dropout)
            state = state.replace(y=torch.where(drop.to(state.y.device), torch.nan, state.y))
        return state

    def validate(self):
        """RDF/ADF RMSD of a few EMA samples (per step count) against validation structures."""
        from core.metrics import structure_rmsd
        from core.sampling import generate

        val = self.recipe.validation
        ref = self.val[: max(val.samples, 16)]
        cell = ref[0].cell.array
        result = {}
        for n_steps in val.steps:
            gen = generate(self.checkpoint(), val.samples, int(n_steps), cell, self.rho_max,
                           device=self.device, seed=self.recipe.optimisation.seed)
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

    def _build_pairs(self):
        """The run's teacher trajectories (``[distillation]``): loaded from OUT/teacher-pairs.pt,
        integrating the missing ones first (rank 0; the others wait and read the file)."""
        from core import distillation
        from core.checkpoint import load_checkpoint

        dist_cfg = self.recipe.distillation
        path = self.out / "teacher-pairs.pt"
        self.out.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            teacher = load_checkpoint(self.teacher_source)
            self.pairs = distillation.build(path, teacher, self.samples, dist_cfg.pairs, self.rho_max,
                                            self.checkpoint().normalise, dist_cfg.maps, dist_cfg.teacher_steps,
                                            dist_cfg.seed, fast=True, bf16=self.bf16,
                                            progress=self.recipe.runtime.progress)
        if self.world > 1:
            dist.barrier()
            if self.rank != 0:
                self.pairs = distillation.TeacherPairs.concat(
                    [distillation.TeacherPairs(**p) for p in torch.load(path, weights_only=True)["chunks"]])

    def _distill_batch(self, step):
        """This rank's distillation batch at ``step`` (None when not distilling), on the device."""
        if self.pairs is None:
            return None
        from core import distillation

        cfg = self.recipe.distillation
        rng = np.random.default_rng([cfg.seed, step, self.rank, 11])
        state, t, d, drift_x, drift_e = distillation.draw_batch(self.pairs, cfg.maps, cfg.batch_size, rng)
        dev = self.device
        state = State(state.pos.to(dev), state.elem.to(dev), state.cell.to(dev), state.batch.to(dev), state.y.to(dev))
        return state, t.to(dev), d.to(dev), drift_x.to(dev), drift_e.to(dev), cfg.weight

    def loss(self, state):
        """(loss, logs) of one batch. Under bfloat16 (``runtime.bf16`` resolved for the device,
        ``self.bf16``) only the network calls run under bfloat16
        autocast: the noising, wrapping and targets stay float32 (under autocast the einsums
        of ``periodic.wrap`` would round 17 Å coordinates to ~0.06 Å, and the noise targets
        at sigma < 0.1 Å with them)."""
        model, teacher = self.ddp, self.ema
        if self.bf16:
            model, teacher = (BFloat16Autocast(m, self.device.type) for m in (model, teacher))
        distill = self._distill_batch(self.step)
        if distill is None:
            return self.framework.loss(model, state, target_model=teacher)
        return self.framework.loss(model, state, target_model=teacher, distill=distill)

    def run(self, on_step=None):
        """Train until ``optimisation.steps``; returns the list of per-step loss dicts of this call."""
        from tqdm.auto import tqdm

        opt, val, rt = self.recipe.optimisation, self.recipe.validation, self.recipe.runtime
        history = []
        bar = tqdm(total=opt.steps, initial=self.step, disable=not rt.progress or self.rank != 0,
                   desc=f"train {self.framework.name} ({'bfloat16' if self.bf16 else 'float32'})", unit="step")
        if self.recipe.distillation.teacher and self.pairs is None and self.step < opt.steps:
            self._build_pairs()
        t0 = time.perf_counter()
        self.model.train()
        while self.step < opt.steps:
            now = self.recipe.at(self.step)  # the phase's property dropout, EMA decay and L_SC level power
            self.framework.config.sc_level_power = now.schedule.sc_level_power
            state = self._make_batch(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = opt.lr_at(self.step)
            loss, logs = self.loss(state)
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss became {loss.item()} at step {self.step}; lower the learning rate")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), opt.grad_clip))
            self.optimizer.step()
            _update_ema(self.ema, self.model, self.step, now.optimisation.ema_decay)
            self.step += 1
            history.append(logs)
            bar.update(1)
            bar.set_postfix(loss=f"{logs['loss']:.4f}")
            if self.step % rt.log_every == 0 or self.step == opt.steps:
                self._log({"step": self.step, "time_s": round(time.perf_counter() - t0, 2), "bf16": self.bf16, **logs})
            if val.every and self.step % val.every == 0 and self.rank == 0:
                scores = self.validate()
                self._log({"step": self.step, **scores})
                bar.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()
                                                           if isinstance(v, float)))
            if self.step % rt.checkpoint_every == 0 or self.step == opt.steps:
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


def train(recipe: Recipe, out, resume: bool = False):
    """Train (or resume) the recipe's model into ``out``; returns the Trainer (its ``out`` holds
    the checkpoint). A parent recipe (``init.recipe``) is trained first into ``out/parent``."""
    init_from = None
    if recipe.init.recipe and not resume:
        init_from = train_parent(recipe, out)
    trainer = Trainer(recipe, out, resume=resume, init_from=init_from)
    trainer.run()
    trainer.close()
    return trainer


def train_parent(recipe: Recipe, out) -> Path:
    """Train the parent recipe of ``recipe`` into ``out/parent`` up to ``init.step`` (its own
    steps if 0) and return that directory: a finished parent is skipped, a stopped one resumed.
    The parent runs on this run's device, threads and progress setting; its own parent, if any,
    goes to ``out/parent/parent``."""
    init, rt = recipe.init, recipe.runtime
    sets = [f"runtime.device={rt.device!r}", f"runtime.threads={rt.threads}",
            f"runtime.progress={str(rt.progress).lower()}"]
    if init.step:
        sets.append(f"optimisation.steps={init.step}")
    parent = load_recipe(init.recipe, sets)
    target = parent.optimisation.steps
    where = Path(out) / "parent"
    done = _saved_step(where)
    if done is not None and done > target:
        raise UserError(f"{where} is at step {done}, past the parent's step {target} to fork at "
                        f"(init.step): remove it or fork at {done}")
    if done != target:
        if parent.init.recipe and done is None:
            grand = train_parent(parent, where)
        else:
            grand = None
        trainer = Trainer(parent, where, resume=done is not None, init_from=grand)
        trainer.run()
        trainer.ddp = trainer.model  # the run's own wrapper is done; the process group stays for the child
        if trainer.world > 1:
            dist.barrier()  # rank 0 has written the parent's checkpoint before anyone forks it
    return where


def _saved_step(directory: Path):
    """The step of the resumable run in ``directory``, or None if there is none."""
    if not (directory / "train_state.pt").is_file() or not (directory / "config.json").is_file():
        return None
    return int(json.loads((directory / "config.json").read_text())["training"]["step"])
