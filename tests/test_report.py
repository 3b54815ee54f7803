"""The generated tables in BENCHMARKS.md, README.md and the model cards match benchmarks/results/.

`scripts/report.py --check` is what keeps a figure from being typed twice: each table is written
from the results files, and a table that disagrees with its file fails here.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from core.benchmarking import SCRIPTS, load_script

ROOT = Path(__file__).resolve().parents[1]

report = load_script("report", SCRIPTS)
MODELS = tuple(report.HEADLINE)  # every shipped model with a card and a README row


@pytest.fixture
def tree(tmp_path):
    """A copy of the files the report reads and writes."""
    for name in ("BENCHMARKS.md", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "benchmarks" / "results", tmp_path / "benchmarks" / "results",
                    ignore=shutil.ignore_patterns("*.png"))
    for model in MODELS:
        (tmp_path / "assets" / "checkpoints" / model).mkdir(parents=True)
        for name in ("config.json", "acceptance.json", "MODEL_CARD.md"):
            shutil.copy(ROOT / "assets" / "checkpoints" / model / name, tmp_path / "assets" / "checkpoints" / model)
    return tmp_path


def test_generated_files_are_up_to_date_with_the_results():
    assert report.main(["--check"]) == 0, "run: .venv/bin/python scripts/report.py"


def test_a_changed_result_makes_the_check_fail_and_the_rewrite_carries_it(tree, capsys):
    path = tree / "benchmarks" / "results" / "structure_a-Si.csv"
    rows = list(csv.DictReader(open(path, newline="")))
    shipped_1 = next(r for r in rows if r["framework"] == "shortcut" and r["n_s"] == "1")
    shipped_1["rdf_rmsd"] = "0.0123456"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert report.main(["--root", str(tree), "--check"]) == 1
    err = capsys.readouterr().err
    assert "BENCHMARKS.md" in err and "README.md" in err and "a-Si/shortcut/MODEL_CARD.md" in err
    assert "a-Si/sde/MODEL_CARD.md" not in err
    assert report.main(["--root", str(tree)]) == 0 and report.main(["--root", str(tree), "--check"]) == 0
    adf = f"{float(shipped_1['adf_rmsd']):.5f}"
    assert f"| 1 | 0.012 / {adf} (" in (tree / "BENCHMARKS.md").read_text()
    assert f"1 step: 0.012 / {adf}" in (tree / "README.md").read_text()


def test_throughput_is_optional_and_rendered_from_its_rows(tree):
    (tree / "benchmarks" / "results" / "throughput.json").unlink(missing_ok=True)
    report.main(["--root", str(tree)])
    assert "Not measured" in (tree / "BENCHMARKS.md").read_text()
    (tree / "benchmarks" / "results" / "throughput.json").write_text(json.dumps(
        {"command": "python benchmarks/throughput.py", "rows": [{"what": "train", "ratio": 2.5}]}))
    report.main(["--root", str(tree)])
    text = (tree / "BENCHMARKS.md").read_text()
    assert "Not measured" not in text and "| what | ratio |" in text and "| train | 2.5 |" in text


def test_a_column_measured_at_another_training_step_is_refused(tree):
    path = tree / "assets" / "checkpoints" / "a-Si" / "sde" / "config.json"
    config = json.loads(path.read_text())
    config["training"]["step"] += 1
    path.write_text(json.dumps(config))
    with pytest.raises(SystemExit, match="training step 12500"):
        report.main(["--root", str(tree), "--check"])


def test_a_missing_block_names_the_file_and_the_markers(tree):
    card = tree / "assets" / "checkpoints" / "a-Si" / "ode" / "MODEL_CARD.md"
    card.write_text("no markers\n")
    with pytest.raises(SystemExit, match="MODEL_CARD.md: no generated block 'metrics'"):
        report.main(["--root", str(tree), "--check"])


def test_bond_network_columns_show_where_recorded_and_a_dash_where_not(tree):
    results = tree / "benchmarks" / "results"
    path = results / "structure_a-SiO2.csv"
    rows = list(csv.DictReader(open(path, newline="")))
    one = next(r for r in rows if r["n_s"] == "1" and r["framework"] == "shortcut")
    one.update(Si_4O_share="0.37", O_2Si_share="0.8", close_pairs_per_atom="0.0125", close_pair_structure_share="0.5",
               O_Si_min="1.95", O_Si_max="2.1", O_Si_within_share="0.75")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(one))
        w.writeheader()
        w.writerows(rows)
    summary = json.loads((results / "structure_a-SiO2.json").read_text())
    summary["summary"]["floors"]["held_out"].update(Si_4O_share=0.709, O_2Si_share=0.97, close_pairs_per_atom=0.0,
                                                    close_pair_structure_share=0.0, O_Si_min=2.0, O_Si_max=2.0,
                                                    O_Si_within_share=1.0)
    (results / "structure_a-SiO2.json").write_text(json.dumps(summary))
    # an a-Si results file written before the benchmark measured the bond network
    older = results / "structure_a-Si.csv"
    base = ["framework", "n_s", "n_structures", "n_empty", "mean_atoms", "rdf_rmsd", "adf_rmsd",
            "seconds_per_structure", "seconds_total", "minutes_per_10k"]
    rows = [{k: r[k] for k in base} for r in csv.DictReader(open(older, newline=""))]
    with open(older, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=base)
        w.writeheader()
        w.writerows(rows)
    assert report.main(["--root", str(tree), "--check"]) == 1
    report.main(["--root", str(tree)])
    text = (tree / "BENCHMARKS.md").read_text()
    assert "| held-out data | | 70.9 | 97.0 | 0 | 0.0 | 2 | 2 | 100.0 |" in text
    assert "| AMShortcut | 1 | 37.0 | 80.0 | 0.0125 | 50.0 | 1.95 | 2.1 | 75.0 |" in text
    assert "| AMShortcut | 1 | – | – | – |" in text  # the older a-Si results: not measured
    assert report.main(["--root", str(tree), "--check"]) == 0


def test_inverse_table_shows_sweeps_controls_data_and_goals_and_dashes_for_older_files(tree):
    """A results file of the sweep benchmark (control and data rows, goals) beside older ones."""
    results = tree / "benchmarks" / "results"
    step = json.loads((tree / "assets" / "checkpoints" / "a-SiO2" / "shortcut" / "config.json").read_text())
    step = step["training"]["step"]
    common = dict(property="shear_modulus", sweep="paper", target_low=10.0, target_high=50.0, n="160", n_missing="0")
    rows = [dict(model="All", n_s="10", mae=4.0, rmse=5.0, mape=12.5, slope=0.61, mean_achieved=29.0, **common),
            dict(model="None", n_s="10", mae=9.0, rmse=11.0, mape=30.0, slope="nan", mean_achieved=24.0, **common),
            dict(model="Data", n_s="", mae=8.5, rmse=10.0, mape=28.25, slope="nan", mean_achieved=25.1, **common)]
    with open(results / "inverse_a-SiO2.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    goal = {"property": "shear_modulus", "sweep": "paper", "steps": 10, "goal": "MAPE <= 15 %", "value": 12.5,
            "passed": True}
    summary = {"scale": "32 structures per target", "goals": [goal],
               "checkpoints": [{"model": m, "training_step": step} for m in ("All", "None")]}
    (results / "inverse_a-SiO2.json").write_text(json.dumps({"summary": summary, "rows": rows}))
    report.main(["--root", str(tree)])
    text = (tree / "BENCHMARKS.md").read_text()
    assert ("| shear modulus G (paper, 10–50 GPa) | All | 10 | 4 GPa | 5 GPa | 12.5 % | 0.61 | "
            "9 GPa / 11 GPa / 30.0 % | 28.2 % | 29 GPa |") in text
    assert "| All, guidance w = 2 | 10 | 11.3 GPa | 12.5 GPa | 38.9 % | 0.34 | – | – | 16.2 GPa |" in text  # older
    assert "- pass: shear modulus G, paper sweep, 10 steps, MAPE <= 15 %: 12.5 (`inverse_a-SiO2.csv`)" in text
    assert "| None |" not in text and "| Data |" not in text  # folded into the control and data columns
    assert report.main(["--root", str(tree), "--check"]) == 0


def test_cation_shares_render_only_where_a_results_file_holds_them(tree):
    from core.metrics import cation_share_columns

    keys = [key for key, _, _ in cation_share_columns("MEG")]
    results = tree / "benchmarks" / "results"
    path, summary_path = results / "structure_MEG.csv", results / "structure_MEG.json"
    rows = list(csv.DictReader(open(path, newline="")))
    summary = json.loads(summary_path.read_text())

    def write(shares: dict, held_shares: dict):
        fields = [k for k in rows[0] if k not in keys] + (keys if shares else [])
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows([{**r, **shares} for r in rows])
        held = {k: v for k, v in summary["summary"]["floors"]["held_out"].items() if k not in keys}
        summary["summary"]["floors"]["held_out"] = {**held, **held_shares}
        summary_path.write_text(json.dumps(summary))
        report.main(["--root", str(tree)])
        return (tree / "BENCHMARKS.md").read_text()

    assert "Cation shares" not in write({}, {})  # a results file without them: no table, no dashes
    text = write({**{k: "0.1" for k in keys[:-1]}, "O_per_cation": "1.84"}, {**{k: 0.1 for k in keys[:-1]},
                                                                             "O_per_cation": 1.9})
    assert "| set | n_s | Si % | P % | Al % | Li % | Be % | K % | Ca % | Ti % | Ba % | Zn % | O per cation |" in text
    assert "| held-out data | | " + "10.0 | " * 10 + "1.9 |" in text
    assert "| AMShortcut | 25 | " + "10.0 | " * 10 + "1.84 |" in text
    assert text.count("Cation shares") == 1  # a-SiO2 has one cation species: no table
