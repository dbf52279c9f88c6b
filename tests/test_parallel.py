"""Many runs at once under pytest-xdist: a dying worker fails only its own test, and a parallel session
records the same runs as a serial one (issue 7). Each session here is a real ``-n 2`` subprocess on the tiny
workload."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tiny import BASE_ARGS, TINY_SUBMISSION, read_results, run_tiny, write_submission, write_tiny_project

pytest.importorskip("xdist")

CRASHES = {
    "exits": ("import os", "os._exit(3)"),
    "segfaults": ("import ctypes", "ctypes.string_at(0)"),  # reads address 0: SIGSEGV
}
# What must agree between a serial and a parallel session with the same seed (timings may not).
SAME_IN_BOTH = ("seed", "study", "trial", "hyperparameters", "reached", "steps_to_target", "global_step")


def crashing_submission(imports: str, crash: str) -> str:
    """tinysgd whose update_params kills its process at the first step, before any result exists."""
    source = TINY_SUBMISSION.replace("import math\n", f"import math\n{imports}\n", 1)
    return source.replace(
        '    if global_step == getattr(hyperparameters, "complete_at_step", -1):',
        f'    {crash}\n    if global_step == getattr(hyperparameters, "complete_at_step", -1):',
        1,
    )


def run_parallel(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*BASE_ARGS, "-n", "2", "--algoperf-workloads=tiny", *args)


def runs_by_id(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    return {run["test_id"]: run for run in read_results(pytester)["runs"]}


def test_a_worker_that_dies_fails_only_its_own_test_and_every_other_run_is_reported(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    for name, (imports, crash) in CRASHES.items():
        write_submission(pytester.path, name=name, source=crashing_submission(imports, crash))
    result = run_parallel(
        pytester, *(f"--algoperf-submission={name}" for name in ("exits", "tinysgd", "segfaults"))
    )
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random(
        ["*crashed while running 'algoperf::exits-pytorch-tiny'*", "*algoperf::segfaults-pytorch-tiny*"]
    )

    runs = runs_by_id(pytester)
    assert list(runs) == ["exits-pytorch-tiny", "tinysgd-pytorch-tiny", "segfaults-pytorch-tiny"]
    assert runs["tinysgd-pytorch-tiny"]["reached"] is True
    assert runs["tinysgd-pytorch-tiny"]["workers"] == 2
    for test_id in ("exits-pytorch-tiny", "segfaults-pytorch-tiny"):
        crashed = runs[test_id]
        assert crashed["reached"] is False and crashed["stop_reason"] == "crashed"
        assert "crashed while running" in crashed["error"]
        assert crashed["hyperparameters"] == {"learning_rate": 0.2}
    report = (pytester.path / "out" / "report.md").read_text().splitlines()
    for submission, reached in (("exits", "crashed"), ("tinysgd", "yes"), ("segfaults", "crashed")):
        assert any(line.startswith(f"| {submission} | pytorch | tiny | {reached} |") for line in report)
    assert (
        pytester.path / "out/experiments/exits/study_0/tiny_pytorch/trial_1/eval_measurements.csv"
    ).exists()


def test_serial_and_parallel_sessions_with_the_same_seed_record_the_same_runs(
    pytester: pytest.Pytester,
) -> None:
    write_tiny_project(pytester)
    points = [{"learning_rate": lr} for lr in (0.2, 0.05, 0.3, 0.1)]
    (pytester.path / "tinysgd" / "tuning_search_space.json").write_text(json.dumps(points))
    args = (
        "--algoperf-studies=2",
        "--algoperf-trials=2",
        "--algoperf-eval-every-steps=3",
        "--algoperf-seed=7",
    )

    serial = run_tiny(pytester, *args)
    assert serial.ret == pytest.ExitCode.OK, serial.stdout.str()
    serial_runs = runs_by_id(pytester)
    parallel = run_parallel(pytester, "--algoperf-submission=tinysgd", *args)
    assert parallel.ret == pytest.ExitCode.OK, parallel.stdout.str()
    parallel_runs = runs_by_id(pytester)

    assert list(parallel_runs) == list(serial_runs)  # same ids, in the planned order
    assert len(serial_runs) == 4
    for test_id, run in serial_runs.items():
        assert {key: parallel_runs[test_id][key] for key in SAME_IN_BOTH} == {
            key: run[key] for key in SAME_IN_BOTH
        }
        assert [e["global_step"] for e in parallel_runs[test_id]["evals"]] == [
            e["global_step"] for e in run["evals"]
        ]
        assert (run["workers"], parallel_runs[test_id]["workers"]) == (1, 2)
        assert run["threads"] == parallel_runs[test_id]["threads"] == 1
    # Each worker keeps to a CPU of its own, so neither's steps wait for the other's threads.
    allowed = set(next(iter(serial_runs.values()))["cpus"])
    worker_cpus = {tuple(run["cpus"]) for run in parallel_runs.values()}
    assert len(worker_cpus) == 2 and all(len(cpus) == 1 and set(cpus) <= allowed for cpus in worker_cpus)
    # Each study runs the list from its first point, with seeds of its own.
    assert sorted(run["hyperparameters"]["learning_rate"] for run in serial_runs.values()) == [
        0.05,
        0.05,
        0.2,
        0.2,
    ]
    assert len({run["seed"] for run in serial_runs.values()}) == 4
