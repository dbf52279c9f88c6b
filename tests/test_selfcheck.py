"""The self-check (``python -m pytest_algoperf.selfcheck``) runs and writes every measure; its numbers are
benchmarks, reported, never asserted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_algoperf.selfcheck.__main__ import main
from pytest_algoperf.selfcheck.report import jax_over_pytorch, suite_lines


def test_the_selfcheck_measures_overhead_data_selection_and_evals_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "selfcheck.json"
    arguments = ["--workloads=mnist", "--frameworks=pytorch", "--pairs=2", "--block-sec=0.05", "--repeats=2"]
    cpus = os.sched_getaffinity(0)
    assert main([*arguments, "--skip=suite", f"--output={output}"]) == 0
    document = json.loads(output.read_text())
    assert document["measured_on_cpu"] == min(cpus)  # measured on one CPU ...
    assert os.sched_getaffinity(0) == cpus  # ... and given every CPU back after
    [row] = document["rows"]
    assert row["overhead"]["pairs"] == 2 and row["overhead"]["ratio"] > 0
    assert 0 < row["data_selection_share"] < 1
    assert row["frequent_evals"]["evals"] >= 10
    assert row["repeats"]["same_steps"] is True and len(row["repeats"]["times"]) == 2
    assert "| mnist | pytorch |" in capsys.readouterr().out


def test_the_jax_over_pytorch_ratio_and_the_suite_line() -> None:
    rows = [
        {"workload": "w", "framework": "pytorch", "overhead": {"bare_step_sec": 0.010}},
        {"workload": "w", "framework": "jax", "overhead": {"bare_step_sec": 0.015}},
    ]
    assert jax_over_pytorch(rows, "w") == pytest.approx(1.5)
    assert jax_over_pytorch(rows[:1], "w") is None
    suite = {"workloads": ["mnist"], "framework": "jax", "serial_sec": 20.0, "parallel_sec": 11.0}
    line = suite_lines({"suites": [{**suite, "speedup": 20 / 11, "largest_run_change": 0.05}]})[0]
    expected = (
        "suite mnist (jax): serial 20.0 s, -n 2 11.0 s, 1.82x; largest change of a run's time to target"
    )
    assert line == f"{expected} 5.0%"
