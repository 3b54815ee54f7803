"""Distillation of AMShortcut's largest steps (core/distillation.py, recipe [distillation]):
stored teacher trajectories are consistent, a one-step teacher distils into itself with zero
loss, the pairs build resumes to the same pairs, and a run trains and resumes with it."""

import pytest
import torch

from core import distillation
from core.errors import UserError
from core.frameworks.periodic import wrap
from core.training import Trainer
from tests.test_training import _config

DISTIL = ("init.checkpoint='{src}'", "distillation.teacher='init'", "distillation.pairs=3",
          "distillation.teacher_steps=4", "distillation.maps=[1, 2]", "distillation.batch_size=2")


@pytest.fixture
def teacher_run(tmp_path, one_thread):
    """A tiny AMShortcut trained 2 steps: the teacher and the warm start of the distilled runs."""
    Trainer(_config(tmp_path, "optimisation.steps=2"), tmp_path / "teacher").run()
    return tmp_path / "teacher"


def _distilled(tmp_path, src, *sets):
    return Trainer(_config(tmp_path, *[s.format(src=src) for s in DISTIL], *sets), tmp_path / "run")


def test_grid_and_its_rule():
    assert distillation.grid([1, 2], 16) == [1, 0.5, 0]
    assert [float(g) for g in distillation.grid([1, 4], 8)] == [1, 0.75, 0.5, 0.25, 0]
    with pytest.raises(ValueError, match="multiple of every map"):
        distillation.grid([1, 3], 16)


def test_trajectories_add_up_and_segments_split_the_map(tmp_path, teacher_run):
    """Each stored state is the previous one minus the stored displacement (wrapped); the two
    halves of the 2-step map average to the 1-step map's drift."""
    trainer = _distilled(tmp_path, teacher_run)
    trainer._build_pairs()
    pairs = trainer.pairs
    assert len(pairs) == 3 and pairs.pos.shape[0] == 3 and pairs.times == [1.0, 0.5, 0.0]
    batch = torch.repeat_interleave(torch.arange(3), pairs.offsets.diff())
    for g in range(2):
        moved = wrap(pairs.pos[g] - pairs.step_x[g], pairs.cell, batch)
        frac = torch.linalg.solve(pairs.cell[batch].transpose(1, 2), (moved - pairs.pos[g + 1]).unsqueeze(-1))
        assert (frac - frac.round()).abs().max() < 1e-4
        assert torch.allclose(pairs.elem[g] - pairs.step_e[g], pairs.elem[g + 1], atol=1e-5)
    state, t, drift_x, _ = pairs.segment(1, 1, 0)
    halves = [pairs.segment(1, 2, k) for k in range(2)]
    assert t == 1.0 and [h[1] for h in halves] == [1.0, 0.5] and state.pos.shape[0] == int(pairs.offsets.diff()[1])
    assert torch.allclose(drift_x, 0.5 * (halves[0][2] + halves[1][2]), atol=1e-5)
    assert torch.equal(halves[1][0].pos, pairs.pos[1, pairs.offsets[1]:pairs.offsets[2]])


def test_a_one_step_teacher_distils_into_itself_with_zero_loss(tmp_path, teacher_run):
    """With teacher_steps = 1 the stored drift is the teacher's own 1-step shortcut, so the
    teacher's distillation loss is zero (float32) and a perturbed network's is not."""
    trainer = _distilled(tmp_path, teacher_run, "distillation.teacher_steps=1", "distillation.maps=[1]")
    trainer._build_pairs()
    fw, teacher = trainer.framework, trainer.model  # the warm start: the teacher's weights
    state, t, d, drift_x, drift_e, _ = trainer._distill_batch(0)
    out_x, out_e = fw.predict(teacher, state, t, d)
    assert fw.distill_loss(out_x, out_e, state, t, drift_x, drift_e).item() < 1e-8
    assert fw.distill_loss(out_x + 0.01, out_e, state, t, drift_x, drift_e).item() > 5e-5  # 0.01^2 in noise units


def test_pairs_resume_to_the_same_pairs_and_the_run_trains(tmp_path, teacher_run, monkeypatch):
    monkeypatch.setattr(distillation, "CHUNK", 2)  # two chunks: 2 + 1 draws
    trainer = _distilled(tmp_path, teacher_run)
    trainer._build_pairs()
    full = trainer.pairs
    path = tmp_path / "run" / "teacher-pairs.pt"
    saved = torch.load(path, weights_only=True)
    torch.save({"chunks": saved["chunks"][:1]}, path)  # as if stopped after the first chunk
    again = _distilled(tmp_path, teacher_run)
    again._build_pairs()
    for name in ("cell", "offsets", "pos", "elem", "step_x", "step_e"):
        assert torch.equal(getattr(full, name), getattr(again.pairs, name)), name
    logs = again.run()
    assert len(logs) == 4 and all("loss_distill" in log and log["loss_distill"] > 0 for log in logs)
    resumed = Trainer(_config(tmp_path, *[s.format(src=teacher_run) for s in DISTIL], "optimisation.steps=6"),
                      tmp_path / "run", resume=True)
    assert resumed.run() and resumed.step == 6
    with pytest.raises(UserError, match="distillation.teacher_steps was 4"):
        Trainer(_config(tmp_path, *[s.format(src=teacher_run) for s in DISTIL], "distillation.teacher_steps=8"),
                tmp_path / "run", resume=True)


@pytest.mark.parametrize("sets, message", [
    (("distillation.teacher='init'",), 'distillation.teacher = "init" needs a warm start'),
    (("distillation.teacher='/nonexistent'",), "distillation.teacher /nonexistent: no such checkpoint"),
    (("init.checkpoint='x'", "distillation.teacher='init'", "distillation.teacher_steps=5"),
     "distillation.teacher_steps (5) must be a multiple of every map; 2 does not divide it"),
    (("schedule.framework='sde'", "distillation.teacher='x'"), "distillation applies to the shortcut framework"),
])
def test_bad_distillation_settings_name_the_key(tmp_path, sets, message):
    with pytest.raises(UserError, match=message.replace("(", "\\(").replace(")", "\\)")):
        _config(tmp_path, *sets).check(paths=True, init=False)
