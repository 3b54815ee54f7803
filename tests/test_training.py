"""Training: a tiny model fits a fixed batch, runs resume exactly, the CLI trains and generates,
and DistributedDataParallel with 2 gloo processes keeps the ranks in sync."""

import json
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
from core.model import Denoiser, DenoiserConfig
from core.sample import MaterialSample, collate, write_structures
from core.training import TrainConfig, Trainer, to_state

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
    from core.sample import read_structures

    return read_structures(path)


def _config(tmp_path, **kw):
    base = dict(framework="shortcut", data=str(_dataset(tmp_path / "d.extxyz")), out=str(tmp_path / "run"),
                properties=["shear_modulus"], steps=4, batch_size=2, val_every=0, ckpt_every=2,
                progress=False, sc_fraction=0.5, **TINY)
    base.update(kw)
    return TrainConfig(**base)


def test_bf16_autocasts_only_the_network(tmp_path, one_thread, monkeypatch):
    """Noising, wrapping and targets run in float32 even with --bf16; the network in bfloat16.
    (Under autocast, periodic.wrap's einsums rounded 17 Å coordinates to ~0.06 Å.)"""
    trainer = Trainer(_config(tmp_path, bf16=True, sc_fraction=1.0))
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
    """Warmup, then constant; with lr_decay_start a cosine from lr to lr_final at `steps`."""
    from core.training import _lr

    flat = TrainConfig(lr=1e-3, warmup_steps=100, steps=1000)
    assert _lr(flat, 0) == pytest.approx(1e-5) and _lr(flat, 49) == pytest.approx(5e-4)
    assert _lr(flat, 500) == _lr(flat, 999) == pytest.approx(1e-3)
    cos = TrainConfig(lr=1e-3, warmup_steps=100, steps=1000, lr_decay_start=600, lr_final=1e-5)
    assert _lr(cos, 599) == pytest.approx(1e-3)
    assert _lr(cos, 600) == pytest.approx(1e-3)
    assert _lr(cos, 800) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)  # half way: cos(pi/2) = 0
    assert _lr(cos, 1000) == pytest.approx(1e-5)


def test_warm_start_from_an_sde_gives_its_network_at_every_step_size(tmp_path, one_thread):
    """--init-from: the AMShortcut starts as the trained SDE network for any d (the step-size
    inputs start at zero), and a source of another size or schedule is refused."""
    sde = Trainer(_config(tmp_path, framework="sde", out=str(tmp_path / "sde"), steps=2))
    sde.run()
    sc = Trainer(_config(tmp_path, out=str(tmp_path / "sc"), init_from=str(tmp_path / "sde")))
    state = sc._make_batch(0)
    t = torch.full((state.n_structures,), 0.4)
    want = sde.ema(state.pos, state.elem, state.cell, state.batch, t, state.y)
    for d in (0.0, 1 / 64, 0.5, 1.0):
        for net in (sc.model, sc.ema):
            got = net(state.pos, state.elem, state.cell, state.batch, t, state.y, torch.full_like(t, d))
            assert all(torch.allclose(g, w, atol=1e-5) for g, w in zip(got, want))
    cold = Trainer(_config(tmp_path, out=str(tmp_path / "cold"))).model
    got = cold(state.pos, state.elem, state.cell, state.batch, t, state.y, torch.zeros_like(t))
    assert not torch.allclose(got[0], want[0], atol=1e-3)  # without the warm start they differ
    sc.run()  # and it trains from there
    assert json.loads((tmp_path / "sc" / "config.json").read_text())["training"]["train_config"]["init_from"]
    with pytest.raises(UserError, match="model width is 32 there, 16 here"):
        Trainer(_config(tmp_path, out=str(tmp_path / "x"), init_from=str(tmp_path / "sde"), width=16))
    with pytest.raises(UserError, match="schedule sigma_x_power is 1.0 there, 2.0 here"):
        Trainer(_config(tmp_path, out=str(tmp_path / "x"), init_from=str(tmp_path / "sde"), sigma_x_power=2.0))
    fork = Trainer(_config(tmp_path, out=str(tmp_path / "fork"), init_from=str(tmp_path / "sc"), sc_units="drift",
                           ghost_target="mean"))
    for a, b in zip(fork.model.state_dict().values(), sc.ema.state_dict().values()):
        assert torch.equal(a, b)  # an AMShortcut source is copied as it is (a fork with other loss settings)
    assert (fork.framework.config.sc_units, fork.framework.config.ghost_target) == ("drift", "mean")
    ode = Trainer(_config(tmp_path, framework="ode", out=str(tmp_path / "ode"), steps=1))
    ode.run()
    with pytest.raises(UserError, match="a Material SDE \\(or AMShortcut\\) checkpoint into AMShortcut"):
        Trainer(_config(tmp_path, out=str(tmp_path / "x"), init_from=str(tmp_path / "ode")))


def test_property_dropout_hides_properties_reproducibly(tmp_path, one_thread):
    """p = 0 leaves every property given (the paper's training); p > 0 hides each
    (structure, property) with probability p, the same pairs for the same step, and the loss
    stays finite with hidden (NaN) properties."""
    plain = Trainer(_config(tmp_path, out=str(tmp_path / "plain"), batch_size=2))
    assert torch.isfinite(plain._make_batch(0).y).all()
    drop = Trainer(_config(tmp_path, out=str(tmp_path / "drop"), batch_size=2, property_dropout=0.5))
    masks = torch.stack([torch.isnan(drop._make_batch(k).y).flatten() for k in range(200)])
    assert 0.4 < masks.float().mean().item() < 0.6
    assert torch.equal(masks[7], torch.isnan(drop._make_batch(7).y).flatten())
    state = drop._make_batch(int(torch.nonzero(masks.any(1))[0]))
    assert torch.isnan(state.y).any() and torch.isfinite(plain._make_batch(0).pos).all()
    assert torch.isfinite(drop.loss(state)[0])
    # the ghost padding (drawn before the mask) is the same as without dropout
    assert torch.equal(plain._make_batch(3).pos, drop._make_batch(3).pos)


def test_resume_continues_exactly(tmp_path, one_thread):
    straight = Trainer(_config(tmp_path, out=str(tmp_path / "a")))
    straight.run()
    first = Trainer(_config(tmp_path, out=str(tmp_path / "b"), steps=2))
    first.run()
    resumed = Trainer(_config(tmp_path, out=str(tmp_path / "b"), steps=4), resume=True)
    assert resumed.step == 2
    resumed.run()
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    for a, b in zip(straight.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


def test_resume_trims_the_log_and_refuses_another_schedule(tmp_path, one_thread):
    """Log lines written after the last checkpoint are dropped on resume (each step once);
    resuming with a different noise schedule is refused instead of silently mixing two."""
    first = Trainer(_config(tmp_path, steps=3, log_every=1, ckpt_every=2))
    first.run()  # checkpoints at 2 and at the end (3)
    out = Path(first.out)
    with open(out / "log.jsonl", "a") as f:  # as if a killed run had logged past its checkpoint
        f.write(json.dumps({"step": 4, "loss": 1.0}) + "\n")
    resumed = Trainer(_config(tmp_path, steps=5, log_every=1), resume=True)
    assert resumed.step == 3
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert max(steps) == 3
    resumed.run()
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines() if "loss" in line]
    assert steps == sorted(set(steps)) and steps[-1] == 5
    # a flag that the saved train_config.json predates is logged as a change from its default
    saved = json.loads((out / "train_config.json").read_text())
    del saved["sc_level_power"]
    (out / "train_config.json").write_text(json.dumps(saved))
    Trainer(_config(tmp_path, steps=6, log_every=1, sc_level_power=0.5), resume=True)
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert last == {"step": 5, "resumed": True, "changed": {"steps": [5, 6], "sc_level_power": [0.0, 0.5]}}
    with pytest.raises(UserError, match="sigma_x_power was 1.0"):
        Trainer(_config(tmp_path, steps=6, sigma_x_power=2.0), resume=True)
    with pytest.raises(UserError, match="distance_rbf was 0"):
        Trainer(_config(tmp_path, steps=6, distance_rbf=8), resume=True)


def test_cli_train_resume_and_generate(tmp_path, capsys, one_thread):
    data = _dataset(tmp_path / "d.extxyz")
    out = tmp_path / "run"
    args = ["train", "--framework", "shortcut", "--data", str(data), "--out", str(out), "--batch-size", "2",
            "--width", "16", "--layers", "1", "--vector-channels", "2", "--cutoff", "4", "--val-every", "2",
            "--val-steps", "1", "--ckpt-every", "2", "--properties", "shear_modulus", "--distance-rbf", "4"]
    main(args + ["--steps", "2"])
    # the EMA decay, the property dropout and the self-consistency level power may change on resume
    main(args + ["--steps", "3", "--resume", "--ema-decay", "0.99", "--property-dropout", "0.3",
                 "--sc-level-power", "0.5"])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("val_rdf_1" in rec for rec in log) and log[-1]["step"] == 3
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["step"] == 3 and config["model"]["distance_rbf"] == 4
    assert config["training"]["train_config"]["ema_decay"] == 0.99
    assert config["training"]["train_config"]["property_dropout"] == 0.3
    assert config["schedule"]["sc_level_power"] == 0.5
    resumes = [rec for rec in log if rec.get("resumed")]  # each phase's changed flags stay on record
    assert resumes == [{"step": 2, "resumed": True,
                        "changed": {"steps": [2, 3], "ema_decay": [0.999, 0.99], "property_dropout": [0.0, 0.3],
                                    "sc_level_power": [0.0, 0.5]}}]
    with pytest.raises(SystemExit) as exc:
        main(args + ["--steps", "4", "--ema-decay", "1.5"])
    assert exc.value.code == 2 and "--ema-decay must be in [0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(args + ["--steps", "4", "--property-dropout", "1"])
    assert exc.value.code == 2 and "--property-dropout must be in [0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(args + ["--steps", "4", "--sc-level-power", "-1"])
    assert exc.value.code == 2 and "--sc-level-power must be between 0 and 4" in capsys.readouterr().err
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
from core.training import TrainConfig, Trainer
cfg = TrainConfig(**__import__("json").loads(sys.argv[1]))
trainer = Trainer(cfg)
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
    cfg = _config(tmp_path, steps=3, batch_size=1, ckpt_every=3, threads=1, fast=fast)
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--master-addr", "127.0.0.1", "--master-port", str(port), str(script),
                           json.dumps(cfg.__dict__)],
                          capture_output=True, text=True, env=env, timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("MAXDIFF"))
    assert float(line.split()[1]) == 0.0 and line.split()[3] == "3", line
    # Trainer.close() tore the group down on both ranks before exit (no gloo teardown abort)
    assert sorted(ln for ln in proc.stdout.splitlines() if ln.startswith("CLOSED")) == \
        ["CLOSED 0 False", "CLOSED 1 False"], proc.stdout
    assert (Path(cfg.out) / "weights.pt").is_file()
