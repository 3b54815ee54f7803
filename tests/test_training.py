"""Training: a tiny model fits a fixed batch, runs resume exactly, the CLI trains from a recipe and
generates, and DistributedDataParallel with 2 gloo processes keeps the ranks in sync."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk

from core.cli import main
from core.errors import UserError
from core.frameworks import default_config, make_framework
from core.material import MaterialSample, collate, write_structures
from core.model import Denoiser, DenoiserConfig
from core.recipe import Recipe
from core.training import Trainer, to_state

TINY = dict(width=32, layers=2, vector_channels=4, cutoff=4.0)


def _dataset(path: Path, n=2):
    """n perturbed 64-atom diamond-Si cells (10.86 Å) with a shear_modulus property."""
    rng = np.random.default_rng(0)
    frames = []
    for k in range(n):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2))
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        atoms.info["shear_modulus"] = 30.0 + 5 * k
        frames.append(atoms)
    write_structures(path, frames)
    return path


@pytest.mark.parametrize("name, lr, steps", [("ode", 1e-2, 400), ("sde", 3e-3, 300), ("shortcut", 3e-3, 300)])
def test_tiny_model_overfits_a_fixed_batch(tmp_path, one_thread, name, lr, steps):
    """Same (t, noise) every step -> a plain regression on 2 structures that must fall >= 10x.

    AMShortcut is fitted on its L_SDE path (d = 0 input): with a frozen seed the
    self-consistency term would always use the same d, whose outputs nothing anchors (they
    only serve as targets), so a fixed-batch L_SC drifts; its correctness is pinned by the
    exact-shortcut tests in test_frameworks_math.py instead."""
    frames = [MaterialSample.from_atoms(a) for a in _read(_dataset(tmp_path / "d.extxyz"))]
    rng = np.random.default_rng(0)
    padded = [s.pad_ghosts(0.06, rng) for s in frames]
    data = to_state(collate(padded, [14]), 2, lambda y: y, "cpu")
    schedule = default_config(name)
    schedule.sc_fraction = 0.0
    framework = make_framework(schedule)
    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig(n_classes=2, use_dt=framework.uses_dt, **TINY))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        torch.manual_seed(1)
        loss, logs = framework.loss(model, data)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-10:]) < losses[0] / 10, (losses[0], losses[-10:])


def _read(path):
    from core.material import read_structures

    return read_structures(path)


def _config(tmp_path, *sets):
    """A tiny shortcut recipe on a 2-structure dataset, with ``section.key=value`` changes."""
    base = {"data": {"path": str(_dataset(tmp_path / "d.extxyz")), "properties": ["shear_modulus"]},
            "network": {"width": 32, "layers": 2, "vector_channels": 4, "cutoff": 4.0},
            "schedule": {"framework": "shortcut", "sc_fraction": 0.5},
            "optimisation": {"steps": 4, "batch_size": 2},
            "validation": {"every": 0}, "runtime": {"checkpoint_every": 2, "progress": False}}
    return Recipe.from_dict(base).with_overrides(sets)


def test_bf16_auto_trains_in_the_precision_the_cpu_computes_and_logs_it(tmp_path, one_thread, monkeypatch):
    """``runtime.bf16 = "auto"`` resolves once per run; each loss line of log.jsonl says which."""
    from core.model.denoiser import native_bf16

    for native in (False, True):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda native=native: {"avx2": True, "amx_bf16": native})
        out = tmp_path / f"run-{native}"
        trainer = Trainer(_config(tmp_path, "runtime.bf16='auto'", "optimisation.steps=1", "runtime.log_every=1"), out)
        assert trainer.bf16 is native is native_bf16("cpu")
        trainer.run()
        (line,) = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
        assert line["bf16"] is native and math.isfinite(line["loss"])


def test_bf16_autocasts_only_the_network(tmp_path, one_thread, monkeypatch):
    """Noising, wrapping and targets run in float32 even with --bf16; the network in bfloat16.
    (Under autocast, periodic.wrap's einsums rounded 17 Å coordinates to ~0.06 Å.)"""
    trainer = Trainer(_config(tmp_path, "runtime.bf16=true", "schedule.sc_fraction=1.0"), tmp_path / "run")
    seen = {"noisy": [], "network": []}
    noisy = trainer.framework.noisy

    def spy_noisy(data, t):
        seen["noisy"].append(torch.is_autocast_enabled("cpu"))
        out = noisy(data, t)
        assert all(x.dtype == torch.float32 for x in (out[0].pos, out[1], out[2]))
        return out

    forward = trainer.model.forward

    def spy_forward(*args, **kwargs):
        seen["network"].append(torch.is_autocast_enabled("cpu"))
        return forward(*args, **kwargs)

    monkeypatch.setattr(trainer.framework, "noisy", spy_noisy)
    monkeypatch.setattr(trainer.model, "forward", spy_forward)
    loss, logs = trainer.loss(trainer._make_batch(0))
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and "loss_sc" in logs
    assert seen["noisy"] and not any(seen["noisy"])
    assert seen["network"] and all(seen["network"])


def test_learning_rate_schedule_closed_form():
    """Warmup, then constant; with decay_start a cosine from lr to lr_final at the segment's end."""
    from core.recipe import LrSegment, OptimisationConfig

    flat = OptimisationConfig(steps=1000, warmup_steps=100, lr_schedule=[LrSegment(lr=1e-3)])
    assert flat.lr_at(0) == pytest.approx(1e-5) and flat.lr_at(49) == pytest.approx(5e-4)
    assert flat.lr_at(500) == flat.lr_at(999) == pytest.approx(1e-3)
    cos = OptimisationConfig(steps=1000, warmup_steps=100, lr_final=1e-5,
                             lr_schedule=[LrSegment(lr=1e-3, decay_start=600)])
    assert cos.lr_at(599) == pytest.approx(1e-3)
    assert cos.lr_at(600) == pytest.approx(1e-3)
    assert cos.lr_at(800) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)  # half way: cos(pi/2) = 0
    assert cos.lr_at(1000) == pytest.approx(1e-5)


def test_warm_start_from_an_sde_gives_its_network_at_every_step_size(tmp_path, one_thread):
    """init.checkpoint: the AMShortcut starts as the trained SDE network for any d (the step-size
    inputs start at zero), and a source of another size or schedule is refused."""
    sde = Trainer(_config(tmp_path, "schedule.framework='sde'", "optimisation.steps=2"), tmp_path / "sde")
    sde.run()
    fork_of = f"init.checkpoint='{tmp_path / 'sde'}'"
    sc = Trainer(_config(tmp_path, fork_of), tmp_path / "sc")
    state = sc._make_batch(0)
    t = torch.full((state.n_structures,), 0.4)
    want = sde.ema(state.pos, state.elem, state.cell, state.batch, t, state.y)
    for d in (0.0, 1 / 64, 0.5, 1.0):
        for net in (sc.model, sc.ema):
            got = net(state.pos, state.elem, state.cell, state.batch, t, state.y, torch.full_like(t, d))
            assert all(torch.allclose(g, w, atol=1e-5) for g, w in zip(got, want))
    cold = Trainer(_config(tmp_path), tmp_path / "cold").model
    got = cold(state.pos, state.elem, state.cell, state.batch, t, state.y, torch.zeros_like(t))
    assert not torch.allclose(got[0], want[0], atol=1e-3)  # without the warm start they differ
    sc.run()  # and it trains from there
    assert json.loads((tmp_path / "sc" / "config.json").read_text())["training"]["recipe"]["init"]["checkpoint"]
    with pytest.raises(UserError, match="model width is 32 there, 16 here"):
        Trainer(_config(tmp_path, fork_of, "network.width=16"), tmp_path / "x")
    with pytest.raises(UserError, match="schedule sigma_x_power is 1.0 there, 2.0 here"):
        Trainer(_config(tmp_path, fork_of, "schedule.sigma_x_power=2.0"), tmp_path / "x")
    fork = Trainer(_config(tmp_path, f"init.checkpoint='{tmp_path / 'sc'}'", "schedule.sc_units='drift'",
                           "schedule.ghost_target='mean'"), tmp_path / "fork")
    for a, b in zip(fork.model.state_dict().values(), sc.ema.state_dict().values()):
        assert torch.equal(a, b)  # an AMShortcut source is copied as it is (a fork with other loss settings)
    assert (fork.framework.config.sc_units, fork.framework.config.ghost_target) == ("drift", "mean")
    sde_fork = Trainer(_config(tmp_path, "schedule.framework='sde'", fork_of, "schedule.t_power=2.0"),
                       tmp_path / "sde-fork")
    for a, b in zip(sde_fork.model.state_dict().values(), sde.ema.state_dict().values()):
        assert torch.equal(a, b)  # an SDE continued as an SDE, here with other training times
    with pytest.raises(UserError, match="not shortcut into sde"):
        Trainer(_config(tmp_path, "schedule.framework='sde'", f"init.checkpoint='{tmp_path / 'sc'}'"), tmp_path / "x")
    bumps = Trainer(_config(tmp_path, f"init.checkpoint='{tmp_path / 'sc'}'", "network.property_null='learned'",
                            "network.property_features=6"), tmp_path / "bumps")
    source = sc.ema.state_dict()
    for name, value in bumps.model.state_dict().items():  # another property embedding starts afresh
        if not name.startswith("properties."):
            assert torch.equal(value, source[name]), name
    assert bumps.model.properties.weight.shape[1] == 6 and not bumps.model.properties.null_vector.any()
    bumps.run()
    back = Trainer(_config(tmp_path, f"init.checkpoint='{tmp_path / 'bumps'}'"), tmp_path / "back")
    assert not hasattr(back.model.properties, "null_vector")  # a learned null dropped when forking back
    ode = Trainer(_config(tmp_path, "schedule.framework='ode'", "optimisation.steps=1"), tmp_path / "ode")
    ode.run()
    with pytest.raises(UserError, match="a Material SDE \\(or AMShortcut\\) checkpoint into AMShortcut"):
        Trainer(_config(tmp_path, f"init.checkpoint='{tmp_path / 'ode'}'"), tmp_path / "x")


def test_property_dropout_hides_properties_reproducibly(tmp_path, one_thread):
    """p = 0 leaves every property given (the paper's training); p > 0 hides each
    (structure, property) with probability p, the same pairs for the same step, and the loss
    stays finite with hidden (NaN) properties."""
    plain = Trainer(_config(tmp_path), tmp_path / "plain")
    assert torch.isfinite(plain._make_batch(0).y).all()
    drop = Trainer(_config(tmp_path, "data.property_dropout=0.5"), tmp_path / "drop")
    masks = torch.stack([torch.isnan(drop._make_batch(k).y).flatten() for k in range(200)])
    assert 0.4 < masks.float().mean().item() < 0.6
    assert torch.equal(masks[7], torch.isnan(drop._make_batch(7).y).flatten())
    state = drop._make_batch(int(torch.nonzero(masks.any(1))[0]))
    assert torch.isnan(state.y).any() and torch.isfinite(plain._make_batch(0).pos).all()
    assert torch.isfinite(drop.loss(state)[0])
    # the ghost padding (drawn before the mask) is the same as without dropout
    assert torch.equal(plain._make_batch(3).pos, drop._make_batch(3).pos)


def test_resume_continues_exactly(tmp_path, one_thread):
    straight = Trainer(_config(tmp_path), tmp_path / "a")
    straight.run()
    first = Trainer(_config(tmp_path, "optimisation.steps=2"), tmp_path / "b")
    first.run()
    resumed = Trainer(_config(tmp_path, "optimisation.steps=4"), tmp_path / "b", resume=True)
    assert resumed.step == 2
    resumed.run()
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    for a, b in zip(straight.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


def test_resume_trims_the_log_and_refuses_another_schedule(tmp_path, one_thread):
    """Log lines written after the last checkpoint are dropped on resume (each step once);
    resuming with a different noise schedule is refused instead of silently mixing two."""
    run = tmp_path / "run"
    first = Trainer(_config(tmp_path, "optimisation.steps=3", "runtime.log_every=1"), run)
    first.run()  # checkpoints at 2 and at the end (3)
    out = Path(first.out)
    with open(out / "log.jsonl", "a") as f:  # as if a killed run had logged past its checkpoint
        f.write(json.dumps({"step": 4, "loss": 1.0}) + "\n")
    resumed = Trainer(_config(tmp_path, "optimisation.steps=5", "runtime.log_every=1"), run, resume=True)
    assert resumed.step == 3
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert max(steps) == 3
    resumed.run()
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines() if "loss" in line]
    assert steps == sorted(set(steps)) and steps[-1] == 5
    # a key the saved recipe.toml predates is logged as a change from its default
    saved = (out / "recipe.toml").read_text()
    (out / "recipe.toml").write_text(saved.replace("sc_level_power = 0.0\n", ""))
    Trainer(_config(tmp_path, "optimisation.steps=6", "runtime.log_every=1", "schedule.sc_level_power=0.5"), run,
            resume=True)
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert last == {"step": 5, "resumed": True, "changed": {"schedule.sc_level_power": [0.0, 0.5],
                                                            "optimisation.steps": [5, 6]}}
    with pytest.raises(UserError, match="schedule.sigma_x_power was 1.0"):
        Trainer(_config(tmp_path, "optimisation.steps=6", "schedule.sigma_x_power=2.0"), run, resume=True)
    with pytest.raises(UserError, match="network.distance_rbf was 0"):
        Trainer(_config(tmp_path, "optimisation.steps=6", "network.distance_rbf=8"), run, resume=True)


def test_cli_train_resume_and_generate(tmp_path, capsys, one_thread):
    data = _dataset(tmp_path / "d.extxyz")
    out = tmp_path / "run"
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(f"""
[data]
path = "{data}"
properties = ["shear_modulus"]
[network]
width = 16
layers = 1
vector_channels = 2
cutoff = 4.0
distance_rbf = 4
[optimisation]
steps = 2
batch_size = 2
[validation]
every = 2
steps = [1]
[runtime]
checkpoint_every = 2
""")
    main(["train", "--config", str(recipe), "--out", str(out)])
    # the EMA decay, the property dropout and the self-consistency level power may change on resume;
    # without --config the run's own recipe.toml is used
    main(["train", "--resume", "--out", str(out), "--set", "optimisation.steps=3", "--set", "optimisation.ema_decay=0.99",
          "--set", "data.property_dropout=0.3", "--set", "schedule.sc_level_power=0.5"])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("val_rdf_1" in rec for rec in log) and log[-1]["step"] == 3
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["step"] == 3 and config["model"]["distance_rbf"] == 4
    assert config["training"]["recipe"]["optimisation"]["ema_decay"] == 0.99
    assert config["training"]["recipe"]["data"]["property_dropout"] == 0.3
    assert config["schedule"]["sc_level_power"] == 0.5
    resumes = [rec for rec in log if rec.get("resumed")]  # each phase's changed settings stay on record
    assert resumes == [{"step": 2, "resumed": True,
                        "changed": {"data.property_dropout": [0.0, 0.3], "schedule.sc_level_power": [0.0, 0.5],
                                    "optimisation.steps": [2, 3], "optimisation.ema_decay": [0.999, 0.99]}}]
    for change, message in [("optimisation.ema_decay=1.5", "optimisation.ema_decay must be in [0.0, 1.0), got 1.5"),
                            ("data.property_dropout=1", "data.property_dropout must be in [0.0, 1.0), got 1.0"),
                            ("schedule.sc_level_power=-1", "schedule.sc_level_power must be in [0.0, 4.0], got -1.0")]:
        with pytest.raises(SystemExit) as exc:
            main(["train", "--config", str(recipe), "--out", str(tmp_path / "bad"), "--set", change])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    gen = tmp_path / "gen.extxyz"
    main(["generate", "--checkpoint", str(out), "--steps", "2", "--n", "2", "--out", str(gen),
          "--property", "shear_modulus=33"])
    frames = _read(gen)
    assert len(frames) == 2 and frames[0].info["target_shear_modulus"] == 33.0
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--checkpoint", str(out), "--steps", "0", "--out", str(gen)])
    assert exc.value.code == 2 and "steps must be a positive" in capsys.readouterr().err


DDP_SCRIPT = """
import sys, torch, torch.distributed as dist
from core.recipe import Recipe
from core.training import Trainer
trainer = Trainer(Recipe.from_dict(__import__("json").loads(sys.argv[1])), sys.argv[2])
trainer.run()
flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(2)]
dist.all_gather(gathered, flat)
if trainer.rank == 0:
    print("MAXDIFF", float((gathered[0] - gathered[1]).abs().max()), "STEP", trainer.step, flush=True)
trainer.close()
import os; os.write(1, f"CLOSED {trainer.rank} {dist.is_initialized()}\\n".encode())  # one atomic write
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize("fast", [False, True])
def test_ddp_two_gloo_processes_stay_in_sync(tmp_path, fast):
    recipe = _config(tmp_path, "optimisation.steps=3", "optimisation.batch_size=1", "runtime.checkpoint_every=3",
                     "runtime.threads=1", f"runtime.fast={str(fast).lower()}")
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--master-addr", "127.0.0.1", "--master-port", str(port), str(script),
                           json.dumps(recipe.to_dict()), str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("MAXDIFF"))
    assert float(line.split()[1]) == 0.0 and line.split()[3] == "3", line
    # Trainer.close() tore the group down on both ranks before exit (no gloo teardown abort)
    assert sorted(ln for ln in proc.stdout.splitlines() if ln.startswith("CLOSED")) == \
        ["CLOSED 0 False", "CLOSED 1 False"], proc.stdout
    assert (tmp_path / "run" / "weights.pt").is_file()


def test_grown_warm_start_computes_the_source_and_then_trains(tmp_path, one_thread):
    """init.grow: a 2-layer AMShortcut forked into 4 layers gives the same outputs at the start (the
    added layers are the identity), its added layers get gradients, and a smaller target is refused."""
    src = Trainer(_config(tmp_path, "optimisation.steps=2"), tmp_path / "src")
    src.run()
    fork = f"init.checkpoint='{tmp_path / 'src'}'"
    grown = Trainer(_config(tmp_path, fork, "init.grow=true", "network.layers=4"), tmp_path / "grown")
    state = grown._make_batch(0)
    t, d = torch.full((state.n_structures,), 0.7), torch.full((state.n_structures,), 0.25)
    want = src.ema(state.pos, state.elem, state.cell, state.batch, t, state.y, d)
    got = grown.model(state.pos, state.elem, state.cell, state.batch, t, state.y, d)
    assert len(grown.model.layers) == 4 and all(torch.allclose(g, w, atol=1e-5) for g, w in zip(got, want))
    (got[0].square().sum() + got[1].square().sum()).backward()
    assert grown.model.layers[3].node[-1].weight.grad.abs().sum() > 0
    with pytest.raises(UserError, match="model layers is 2 there, 4 here"):
        Trainer(_config(tmp_path, fork, "network.layers=4"), tmp_path / "x")
    with pytest.raises(UserError, match="init.grow adds layers; the source has 2, this model 1"):
        Trainer(_config(tmp_path, fork, "init.grow=true", "network.layers=1"), tmp_path / "y")
