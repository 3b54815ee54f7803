"""The `amshortcut` console script, run as a user would: help, metrics numbers, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms

from core.metrics import structure_rmsd

AMSHORTCUT = Path(sys.executable).parent / "amshortcut"
CELL = np.diag([10.4, 10.4, 10.4])


def run(*args, cwd=None):
    return subprocess.run([str(AMSHORTCUT), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120, stdin=subprocess.DEVNULL)


def random_set(n_structures, seed):
    rng = np.random.default_rng(seed)
    return [Atoms("Si48", scaled_positions=rng.random((48, 3)), cell=CELL, pbc=True)
            for _ in range(n_structures)]


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sets")
    a, b = random_set(3, seed=1), random_set(2, seed=2)
    b[0].positions *= 0.9  # compress one structure so the two sets clearly differ
    ase.io.write(folder / "a.extxyz", a)
    ase.io.write(folder / "b.extxyz", b)
    return folder / "a.extxyz", folder / "b.extxyz", structure_rmsd(a, b)


def test_help_explains_the_commands():
    top = run("--help")
    assert top.returncode == 0
    assert "AMShortcut Studio" in top.stdout and "metrics" in top.stdout
    sub = run("metrics", "--help")
    assert sub.returncode == 0
    for phrase in ("RMSD", "--plot", "A.extxyz", "B.extxyz", "Ghost atoms", "Example"):
        assert phrase in sub.stdout
    train = run("train", "--help")
    assert train.returncode == 0
    for phrase in ("--config", "--set", "SECTION.KEY=VALUE", "configs/a-Si/shortcut.toml", "optimisation", "--resume",
                   "parent"):
        assert phrase in train.stdout


def test_generate_help_states_the_samplers_switch():
    """The help's step count is a literal (importing the framework would load torch for --help):
    it must be the one the sampler uses."""
    from core.cli.generate_cmd import HELP
    from core.frameworks.shortcut import PF_BELOW_STEPS

    assert f"shortcuts below {PF_BELOW_STEPS} steps and Euler–Maruyama from {PF_BELOW_STEPS} on" in HELP


def test_metrics_prints_the_rmsd(two_sets, tmp_path):
    a, b, expected = two_sets
    assert expected["rdf"] > 0.1 and expected["adf"] > 1e-4
    out = run("metrics", a, b, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["rdf_rmsd"] == pytest.approx(expected["rdf"], rel=1e-12)
    assert result["adf_rmsd"] == pytest.approx(expected["adf"], rel=1e-12)
    assert (result["n_a"], result["n_b"]) == (3, 2)

    plot = tmp_path / "curves.png"
    table = run("metrics", a, b, "--plot", plot)
    assert table.returncode == 0, table.stderr
    assert f"RDF RMSD  {expected['rdf']:.6f}" in table.stdout
    assert f"ADF RMSD  {expected['adf']:.6f}" in table.stdout
    assert "3 structures" in table.stdout and "2 structures" in table.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_metrics_of_a_set_with_itself_is_zero(two_sets):
    a, _, _ = two_sets
    result = json.loads(run("metrics", a, a, "--json").stdout)
    assert result["rdf_rmsd"] == 0.0 and result["adf_rmsd"] == 0.0


GOOD_FRAME = 'Lattice="10.4 0 0 0 10.4 0 0 0 10.4" Properties=species:S:1:pos:R:3 pbc="T T T"'
BAD_FILES = {
    "empty.extxyz": ("", "file is empty"),
    "garbage.extxyz": ("this is not\nan xyz file\n", "cannot parse"),
    "nocell.extxyz": ("2\nProperties=species:S:1:pos:R:3\nSi 0 0 0\nSi 1 1 1\n", "periodic"),
    "slab.extxyz": ("2\n" + GOOD_FRAME.replace('"T T T"', '"T T F"') + "\nSi 0 0 0\nSi 1 1 1\n", "periodic"),
    "unknown.extxyz": ("2\n" + GOOD_FRAME + "\nSi 0 0 0\nQq 1 1 1\n", "unknown element"),
    "nan.extxyz": ("2\n" + GOOD_FRAME + "\nSi 0 0 0\nSi nan 1 1\n", "NaN"),
    "only-ghosts.extxyz": ("2\n" + GOOD_FRAME + "\nX 0 0 0\nX 1 1 1\n", "no real (non-ghost) atoms"),
}


@pytest.mark.parametrize("name", [*BAD_FILES, "missing.extxyz"])
def test_bad_input_gives_one_line_error(two_sets, tmp_path, name):
    a, _, _ = two_sets
    text, problem = BAD_FILES.get(name, (None, "not found"))
    if text is not None:
        (tmp_path / name).write_text(text)
    out = run("metrics", a, tmp_path / name)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ") and name in lines[0] and problem in lines[0]
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_bad_options_give_clear_errors(two_sets, tmp_path):
    a, b, _ = two_sets
    wrong_suffix = run("metrics", a, b, "--plot", tmp_path / "curves.jpg")
    assert wrong_suffix.returncode == 2 and "must end in .png" in wrong_suffix.stderr
    no_folder = run("metrics", a, b, "--plot", tmp_path / "nowhere" / "c.png")
    assert no_folder.returncode == 2 and "does not exist" in no_folder.stderr
    negative = run("metrics", a, b, "--r-max", "-1")
    assert negative.returncode == 2 and "--r-max must be positive" in negative.stderr
    missing_arg = run("metrics", a)
    assert missing_arg.returncode == 2 and "Missing argument 'B.extxyz'" in missing_arg.stderr
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'[data]\npath = "{a}"\n[schedule]\nframework = "shortcut"\n')
    ghosts = run("train", "--config", recipe, "--out", tmp_path / "run", "--set", "schedule.ghost_target=zero")
    assert ghosts.returncode == 2 and "schedule.ghost_target must be one of noise, mean, got 'zero'" in ghosts.stderr
    ode_ghosts = run("train", "--config", recipe, "--out", tmp_path / "run", "--set", "schedule.framework=ode",
                     "--set", "schedule.ghost_target=mean")
    assert ode_ghosts.returncode == 2 and "applies to the sde and shortcut" in ode_ghosts.stderr
    no_recipe = run("train", "--out", tmp_path / "run")
    assert no_recipe.returncode == 2 and "--config is required" in no_recipe.stderr
    assert not (tmp_path / "run").exists()
    for out in (wrong_suffix, no_folder, negative, missing_arg, ghosts, ode_ghosts, no_recipe):
        assert len(out.stderr.strip().splitlines()) == 1 or out is missing_arg
        assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained checkpoint (4 Å cutoff, ring_size_mean trained on 5.5–7): the real CLI path, fast."""
    from tests.studio_fakes import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _one_line_error(out, *phrases):
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args, phrases", [
    (["--cell", "-5"], ["cell lengths must be positive", "-5"]),
    (["--cell", "3"], ["cell too small for this model", "3 Å is below 8 Å", "4 Å neighbour cutoff"]),
    (["--cell", "10,10"], ["one length or three"]),
    (["--batch-size", "-1"], ["batch size must be a positive whole number", "-1"]),
    (["--seed", "-1"], ["seed must be a whole number from 0 to 2147483647, got -1"]),
    (["--n", "0"], ["--n must be a positive"]),
    (["--property", "ring_size_mean=abc"], ["is not a number"]),
])
def test_generate_refuses_bad_values(tiny_checkpoint, tmp_path, args, phrases):
    out = tmp_path / "gen.extxyz"
    result = run("generate", "--checkpoint", tiny_checkpoint, "--out", out, "--cell", "9", "--steps", "1", *args)
    _one_line_error(result, *phrases)
    assert not out.exists() and result.stdout == ""


def test_generate_refuses_bad_output_paths(tiny_checkpoint, tmp_path):
    base = ("generate", "--checkpoint", tiny_checkpoint, "--cell", "9", "--steps", "1")
    _one_line_error(run(*base, "--out", tmp_path), str(tmp_path), "is a directory")
    _one_line_error(run(*base, "--out", tmp_path / "x.png"), "x.png", "Portable Network Graphics", ".extxyz")
    _one_line_error(run(*base, "--out", tmp_path / "noext"), "noext", "cannot tell a structure format")
    _one_line_error(run(*base, "--n", "2", "--out", tmp_path / "POSCAR"), "holds one structure, not 2")
    _one_line_error(run(*base, "--out", "/proc/x.extxyz"), "/proc/x.extxyz", "cannot write there")
    assert list(tmp_path.iterdir()) == []  # nothing written, no stray file left behind


def test_generate_warns_about_extrapolation_and_writes_by_extension(tiny_checkpoint, tmp_path):
    base = ("generate", "--checkpoint", tiny_checkpoint, "--cell", "9", "--steps", "1", "--n", "2")
    outside = run(*base, "--out", tmp_path / "g.extxyz", "--property", "ring_size_mean=9")
    assert outside.returncode == 0, outside.stderr
    warnings = [line for line in outside.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: ring_size_mean = 9 is outside the training data (5.5 – 7): extrapolation, "
                        "expect larger errors"]
    assert [f.info["target_ring_size_mean"] for f in ase.io.read(tmp_path / "g.extxyz", ":")] == [9.0, 9.0]
    inside = run(*base, "--out", tmp_path / "g.cif", "--property", "ring_size_mean=6")
    assert inside.returncode == 0 and "warning" not in inside.stderr
    assert len(ase.io.read(tmp_path / "g.cif", ":")) == 2  # a real CIF, as the name says


def test_generate_relax_writes_both_sets_and_prints_the_checks(tiny_checkpoint, tmp_path):
    out = tmp_path / "g.extxyz"
    result = run("generate", "--checkpoint", tiny_checkpoint, "--cell", "9", "--steps", "1", "--out", out, "--relax")
    assert result.returncode == 0, result.stderr
    relaxed, unrelaxed = ase.io.read(out), ase.io.read(tmp_path / "g.unrelaxed.extxyz")
    assert len(relaxed) == len(unrelaxed) > 0 and not np.allclose(relaxed.positions, unrelaxed.positions)
    assert relaxed.info["energy_relaxed"] < relaxed.info["energy_unrelaxed"]  # Stillinger–Weber, eV/atom
    lines = result.stdout.splitlines()
    assert lines[0].startswith("relaxed 1 structure in ") and "Stillinger–Weber" in lines[0]
    assert lines[1].split() == ["check", "before", "after"]
    energy = next(line for line in lines if "energy eV/atom" in line).split()
    assert float(energy[-1]) == pytest.approx(relaxed.info["energy_relaxed"], abs=1e-3)
    assert lines[-1].endswith("the unrelaxed ones to " + str(tmp_path / "g.unrelaxed.extxyz"))


def test_generate_relax_refuses_a_chemistry_without_potential_before_sampling(tmp_path):
    from tests.studio_fakes import make_tiny_checkpoint

    aluminium = make_tiny_checkpoint(tmp_path / "al", species=(13,))
    out = tmp_path / "g.extxyz"
    _one_line_error(run("generate", "--checkpoint", aluminium, "--cell", "9", "--steps", "1", "--out", out, "--relax"),
                    "no classical potential to relax Al")
    assert not out.exists() and not (tmp_path / "g.unrelaxed.extxyz").exists()


def test_metrics_plot_to_an_unwritable_place(two_sets):
    a, b, _ = two_sets
    _one_line_error(run("metrics", a, b, "--plot", "/proc/x.png"), "/proc/x.png", "cannot write there")


def test_flags_show_no_value_type_in_help():
    for command in (("metrics", "--help"), ("train", "--help"), ("generate", "--help")):
        text = run(*command).stdout
        assert "--help" in text and "<bool>" not in text
    assert "--json " in run("metrics", "--help").stdout


def test_seed_rule_is_shared_by_cli_core_and_studio():
    from core.errors import UserError
    from core.request import SEED_MAX, check_seed
    from studio.settings import GenerationSettings

    assert check_seed(0) == 0 and check_seed(SEED_MAX) == SEED_MAX
    for bad in (-1, SEED_MAX + 1, 1.5, True, None):
        with pytest.raises(UserError, match="seed must be a whole number from 0 to 2147483647"):
            check_seed(bad)
    assert GenerationSettings.param.seed.bounds == (0, SEED_MAX)


def test_version_prints_the_installed_package_version():
    import tomllib

    want = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["version"]
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"amshortcut {want}"
