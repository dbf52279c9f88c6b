"""Sharded sessions (issue 18): ``--algoperf-shard=K/N`` runs a deterministic part of the planned runs, and
``python -m pytest_algoperf.merge`` turns the shards' results into the runs, scores, report and gate verdict
(with its exit status) a single session gives."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tiny import BASE_ARGS, write_submission, write_tiny_project

from pytest_algoperf import merge
from pytest_algoperf.shards import split

# Two submissions (so there are scores) x two studies: four runs for three shards.
SESSION = (
    "--algoperf-workloads=tiny",
    "--algoperf-submission=tinysgd",
    "--algoperf-submission=slowsgd",
    "--algoperf-studies=2",
    "--algoperf-seed=3",
)
# What a seed decides, the same in any two sessions in step mode (times are measured, so they differ).
DETERMINISTIC = (
    "test_id", "submission", "study", "seed", "hyperparameters", "steps_to_target", "global_step",
    "eval_every_steps", "step_budget", "hardware_profile",
)  # fmt: skip


@given(st.lists(st.floats(0, 100), max_size=30), st.integers(1, 6))
def test_every_run_goes_to_one_shard_and_no_shard_holds_more_than_its_share_and_one_run(
    weights: list[float], count: int
) -> None:
    owners = split(weights, count)
    assert owners == split(weights, count)  # the same on every machine
    assert all(0 <= owner < count for owner in owners)
    loads = [sum(w for w, o in zip(weights, owners, strict=True) if o == k) for k in range(count)]
    assert max(loads) <= sum(weights) / count + max(weights, default=0) + 1e-9


def session(pytester: pytest.Pytester, output: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*BASE_ARGS, *SESSION, f"--algoperf-output={output}", *args)


def results(pytester: pytest.Pytester, output: str) -> dict[str, Any]:
    return json.loads((pytester.path / output / "results.json").read_text())


def deterministic(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**{key: run[key] for key in DETERMINISTIC}, "evals": [e["global_step"] for e in run["evals"]]}
        for run in runs
    ]


def gate_counts(output: str) -> str:
    """``1 regressed, 3 ok; tolerance ...`` from a summary's baseline line."""
    line = next(line for line in output.splitlines() if line.startswith("baseline ") and "regressed" in line)
    return line.split(": ", 1)[1]


def summary(output: str) -> list[str]:
    """A terminal summary from its first table to the files line, the results folder left out."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "algoperf summary" in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("results: "))
    return [re.sub(r"=+", "=", line) for line in lines[start:end]]


def regressed_baseline(pytester: pytest.Pytester) -> tuple[Path, str]:
    """The serial session's baseline, with one run's steps to target lowered to 1: that run now regresses."""
    document = json.loads((pytester.path / "base.json").read_text())
    entry = document["entries"]["slowsgd/pytorch/tiny"]
    entry["runs"][1]["steps_to_target"] = 1  # study 1
    path = pytester.path / "regressed.json"
    path.write_text(json.dumps(document))
    return path, "slowsgd-pytorch-tiny-study1-trial0"


def test_three_shards_merged_equal_the_serial_session_and_a_regression_in_one_shard_fails_the_merge(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tiny_project(pytester)
    write_submission(pytester.path, name="slowsgd")
    for name, rates in (("tinysgd", (0.2, 0.3)), ("slowsgd", (0.05, 0.04))):  # a point per study
        points = [{"learning_rate": rate} for rate in rates]
        (pytester.path / name / "tuning_search_space.json").write_text(json.dumps(points))
    assert session(pytester, "base", "--algoperf-save-baseline=base.json").ret == pytest.ExitCode.OK
    baseline, regressing = regressed_baseline(pytester)

    serial = session(pytester, "serial", f"--algoperf-baseline={baseline}")
    assert serial.ret == pytest.ExitCode.TESTS_FAILED, serial.stdout.str()
    shards = [
        session(pytester, f"shard{k}", f"--algoperf-baseline={baseline}", f"--algoperf-shard={k}/3")
        for k in (1, 2, 3)
    ]
    assigned = [results(pytester, f"shard{k}")["session"]["shard"]["assigned"] for k in (1, 2, 3)]
    planned = results(pytester, "shard1")["session"]["shard"]["planned"]
    assert (
        sorted(test_id for ids in assigned for test_id in ids) == sorted(planned) and len(planned) == 4
    )  # each run in one shard
    assert all(assigned)
    for result, ids in zip(shards, assigned, strict=True):  # the shard holding the regressed run fails
        assert result.ret == (pytest.ExitCode.TESTS_FAILED if regressing in ids else pytest.ExitCode.OK)
    capsys.readouterr()

    status = merge.main(
        [str(pytester.path / f"shard{k}") for k in (1, 2, 3)] + ["--output", str(pytester.path / "merged")]
    )
    merged = capsys.readouterr().out
    assert status == pytest.ExitCode.TESTS_FAILED, merged
    assert f"REGRESSED tiny ({regressing}): steps to target: " in merged
    assert gate_counts(merged) == gate_counts(serial.stdout.str())
    assert gate_counts(merged).startswith("1 regressed, 3 ok; ")
    merged_runs = results(pytester, "merged")["runs"]
    assert deterministic(merged_runs) == deterministic(results(pytester, "serial")["runs"])
    assert [
        r["test_id"] for r in merged_runs
    ] == planned  # in the planned order, as a single session lists them
    assert (
        pytester.path / "merged" / "experiments" / "slowsgd" / "study_1" / "tiny_pytorch" / "trial_1"
    ).is_dir()
    assert (pytester.path / "merged" / "performance_profile_pytorch.png").is_file()

    # The gate is the merge's own: against the unedited baseline the same shards pass.
    unedited = ["--baseline", str(pytester.path / "base.json"), "--output", str(pytester.path / "merged_ok")]
    assert merge.main([str(pytester.path / f"shard{k}") for k in (1, 2, 3)] + unedited) == pytest.ExitCode.OK
    passing = gate_counts(capsys.readouterr().out)
    assert passing.startswith("0 regressed, 4 ok; ")

    # Given the serial session's own runs, split as the shards were, the merge ends exactly as it did:
    # the same summary tables (scores included), report and exit status.
    serial_runs = {run["test_id"]: run for run in results(pytester, "serial")["runs"]}
    for k, ids in enumerate(assigned, start=1):
        document = results(pytester, f"shard{k}")
        document["runs"] = [serial_runs[test_id] for test_id in ids]
        (pytester.path / f"resplit{k}").mkdir()
        (pytester.path / f"resplit{k}" / "results.json").write_text(json.dumps(document))
    resplit = [str(pytester.path / f"resplit{k}") for k in (1, 2, 3)]
    assert merge.main([*resplit, "--output", str(pytester.path / "remerged")]) == pytest.ExitCode.TESTS_FAILED
    remerged = capsys.readouterr().out
    assert "algoperf scores (pytorch)" in remerged
    assert summary(remerged) == summary(serial.stdout.str())
    report = (pytester.path / "remerged" / "report.md").read_text()
    assert report == (pytester.path / "serial" / "report.md").read_text()
    assert results(pytester, "remerged")["runs"] == results(pytester, "serial")["runs"]


def shard_document(index: int, count: int, assigned: list[str], **session: Any) -> dict[str, Any]:
    planned = ["a", "b", "c"]
    return {
        "format": "pytest-algoperf-results",
        "version": 1,
        "session": {
            "seed": 0,
            "submissions": ["tinysgd"],
            "tests_status": 0,
            "shard": {"index": index, "count": count, "planned": planned, "assigned": assigned},
            **session,
        },
        "machine": {},
        "runs": [],
    }


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        (
            [shard_document(1, 3, ["a"]), shard_document(2, 3, ["b"])],
            "shard 3/3 is missing: give all 3 shards'",
        ),
        (
            [shard_document(1, 2, ["a", "c"]), shard_document(1, 2, ["a", "c"])],
            "shard 1 of 2 is given more than once",
        ),
        (
            [shard_document(1, 2, ["a"]), shard_document(2, 2, ["b"], seed=1)],
            "are shards of different sessions: seed 1 vs 0",
        ),
        ([shard_document(1, 1, ["a"], tests_status=None)], "its session did not finish"),
        ([shard_document(1, 1, ["a"], tests_status=2)], "its session was interrupted; rerun that shard"),
        (
            [{**shard_document(1, 1, ["a"]), "session": {"seed": 0, "tests_status": 0, "shard": None}}],
            "not a shard",
        ),
    ],
)
def test_shards_that_do_not_make_one_session_are_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], documents: list[dict[str, Any]], message: str
) -> None:
    paths = []
    for i, document in enumerate(documents):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(document))
    assert merge.main([*map(str, paths), "--output", str(tmp_path / "merged")]) == pytest.ExitCode.USAGE_ERROR
    assert message in capsys.readouterr().err
    assert not (tmp_path / "merged" / "report.md").exists()


def test_a_shard_option_that_is_not_k_of_n_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_tiny_project(pytester)
    result = pytester.runpytest(*BASE_ARGS, *SESSION[:2], "--algoperf-shard=4/3")
    result.stderr.fnmatch_lines(["ERROR: --algoperf-shard='4/3' is not valid; give K/N with 1 <= K <= N*"])
