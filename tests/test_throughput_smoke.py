"""benchmarks/throughput.py --quick: every path (plain, fast, compiled, fast in bfloat16) trains
and samples, each row names its precisions, and the results are written."""

from __future__ import annotations

import csv
import json

from core.benchmarking import load_script
from core.model.denoiser import native_bf16

throughput = load_script("throughput")


def test_quick_run_writes_every_path(tmp_path):
    rows = throughput.main(["--quick", "--out", str(tmp_path)])
    assert [(r["system"], r["task"], r["threads"]) for r in rows] == [("a-Si", "train", 1), ("a-Si", "sample 1 step", 1)]
    for row in rows:
        assert row["plain_structures_per_core_s"] > 0 and row["fast_structures_per_core_s"] > 0
        assert row["compiled_structures_per_core_s"] > 0 and row["speedup_compiled"] > 0
        assert row["speedup"] > 0 and row["plain_cpu_s_per_call"] > 0
    assert all(r["fast_bf16_structures_per_core_s"] > 0 for r in rows)
    # every path's share of its CPU time spent in the kernel (page faults), a fraction
    assert all(0 <= r[f"{p}_system_share"] <= 1 for r in rows for p in throughput.SAMPLE_PATHS)
    # training: plain is the shipped runs' bfloat16, fast the precision "auto" picks here
    assert rows[0]["plain_precision"] == "bfloat16" and rows[1]["plain_precision"] == "float32"
    assert rows[0]["fast_precision"] == ("bfloat16" if native_bf16("cpu") else "float32")
    saved = json.loads((tmp_path / "throughput.json").read_text())
    assert saved["rows"] == rows and saved["meta"]["quick"] is True
    assert saved["command"].endswith(f"throughput.py --quick --out {tmp_path}")
    with open(tmp_path / "throughput.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
