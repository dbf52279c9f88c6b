"""Merge the shards of one session: ``python -m pytest_algoperf.merge SHARD... --output DIR``.

Each SHARD is the output folder (or its ``results.json``) of a session run with ``--algoperf-shard=K/N``. The
merge checks that the shards belong to one plan (same seed, submissions, frameworks, workloads, ruleset,
studies, trials and hardware profiles) and that together they ran every shard 1..N exactly once, then ends
the merged session exactly as a single session would (``pytest_algoperf.conclusion``): ``results.json`` with
every run in planned order, the AlgoPerf run folders, ``report.md`` and its figures, the terminal summary with
scores and the regression gate's table, a baseline saved or updated if the shards were told to, and the exit
status: 0, 1 when a test failed in a shard or the gate finds a regression or a workload missed in every study,
4 when the shards cannot be merged (the message says why).

The gate's settings (baseline file, tolerances, update or save) are the shards'; ``--baseline`` and the other
options override them, for a merge on a machine where the baseline file lies elsewhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from pytest_algoperf.conclusion import ConclusionSettings, PrintedTerminal, conclude, write_summary
from pytest_algoperf.gate.baseline_file import Baseline, load_baseline
from pytest_algoperf.gate.verdicts import Tolerances, parse_tolerances
from pytest_algoperf.reporting.files import (
    RESULTS_FORMAT,
    clear_session_files,
    write_results,
    write_run_folder,
)
from pytest_algoperf.results import RunResult
from pytest_algoperf.shards import ShardPlan

SAME_IN_EVERY_SHARD = ("seed", "frameworks", "submissions", "ruleset", "studies", "trials", "workloads")
NOT_ENVIRONMENT = ("format", "version", "session", "runs")  # the rest: machine, software, commit ...


class MergeError(ValueError):
    """Shards that cannot be merged into one session; the message names the shard and the problem."""


@dataclass(frozen=True)
class Shard:
    path: Path
    document: dict[str, Any]
    plan: ShardPlan
    runs: tuple[RunResult, ...]

    @property
    def session(self) -> dict[str, Any]:
        return self.document["session"]

    @property
    def environment(self) -> dict[str, Any]:
        return {key: value for key, value in self.document.items() if key not in NOT_ENVIRONMENT}

    @property
    def profiles(self) -> Any:
        return (self.session.get("hardware") or {}).get("profiles")


def load_shard(path: Path) -> Shard:
    """A shard's ``results.json`` (or the folder holding it), checked to be a finished shard."""
    file = path / "results.json" if path.is_dir() else path
    try:
        document = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise MergeError(f"{file}: cannot read a results file ({error})") from None
    if not isinstance(document, dict) or document.get("format") != RESULTS_FORMAT:
        raise MergeError(f"{file}: not a pytest-algoperf results file")
    session = document.get("session") or {}
    if not session.get("shard"):
        raise MergeError(f"{file}: not a shard; run each part of the session with --algoperf-shard=K/N")
    status = session.get("tests_status")
    if status is None:
        raise MergeError(f"{file}: its session did not finish (no final status); rerun that shard")
    if status == pytest.ExitCode.INTERRUPTED:
        raise MergeError(f"{file}: its session was interrupted; rerun that shard")
    try:
        plan = ShardPlan.from_json(session["shard"])
        runs = tuple(RunResult.from_json(run) for run in document["runs"])
    except (KeyError, TypeError, ValueError) as error:
        raise MergeError(f"{file}: malformed shard record or run ({error!r})") from None
    return Shard(file, document, plan, runs)


def check_shards(shards: Sequence[Shard]) -> tuple[str, ...]:
    """The plan the shards share, after checking that they are the N shards of one session; MergeError
    says which shard differs, which are missing, or which run is where it should not be."""
    first = shards[0]
    count = first.plan.count
    for shard in shards[1:]:
        for key in SAME_IN_EVERY_SHARD:
            if shard.session.get(key) != first.session.get(key):
                raise MergeError(
                    f"{shard.path} and {first.path} are shards of different sessions: {key} "
                    f"{shard.session.get(key)!r} vs {first.session.get(key)!r}"
                )
        if shard.profiles != first.profiles:
            raise MergeError(
                f"{shard.path} and {first.path} ran under different hardware profiles ({shard.profiles} vs "
                f"{first.profiles}): their times are not comparable; run every shard on the same hardware"
            )
        if (shard.plan.count, shard.plan.planned) != (count, first.plan.planned):
            raise MergeError(f"{shard.path} and {first.path} split different plans into shards")
    indexes = [shard.plan.index for shard in shards]
    repeated = sorted({i for i in indexes if indexes.count(i) > 1})
    missing = sorted(set(range(1, count + 1)) - set(indexes))
    if repeated:
        raise MergeError(f"shard {', '.join(map(str, repeated))} of {count} is given more than once")
    if missing:
        raise MergeError(
            f"shard {', '.join(f'{i}/{count}' for i in missing)} is missing: give all {count} shards' results"
        )
    for shard in shards:
        stray = [run.test_id for run in shard.runs if run.test_id not in shard.plan.assigned]
        if stray:
            raise MergeError(f"{shard.path} holds runs of another shard: {', '.join(stray)}")
    return first.plan.planned


def merged_runs(shards: Sequence[Shard], planned: Sequence[str]) -> list[RunResult]:
    """Every shard's runs, in the planned order (as a single session lists them)."""
    order = {test_id: i for i, test_id in enumerate(planned)}
    return sorted((run for shard in shards for run in shard.runs), key=lambda run: order[run.test_id])


def conclusion_settings(shards: Sequence[Shard], args: argparse.Namespace) -> ConclusionSettings:
    """The shards' gate and scoring settings (each shard's session had them), with the options' overrides."""
    recorded = shards[0].session.get("conclusion") or {}
    tolerance = recorded.get("tolerance") or {}
    tolerances = Tolerances(
        tolerance.get("default", 0.1), tolerance.get("per_workload") or {}, tolerance.get("seconds", 1.0)
    )
    if args.tolerance is not None or args.tolerance_sec is not None:
        seconds = args.tolerance_sec if args.tolerance_sec is not None else tolerances.seconds
        tolerances = (
            parse_tolerances(args.tolerance, seconds)
            if args.tolerance is not None
            else replace(tolerances, seconds=seconds)
        )
    baseline = args.baseline or _path(recorded.get("baseline"))
    save = args.save_baseline or _path(recorded.get("save_baseline"))
    session = shards[0].session
    return ConclusionSettings(
        args.output,
        session.get("studies", 1),
        session.get("trials", 1),
        recorded.get("reference_submission"),
        recorded.get("variant_scoring", "v0.6"),
        tolerances,
        baseline,
        bool(args.update_baseline or recorded.get("update_baseline")),
        save,
    )


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def merge(shards: Sequence[Shard], settings: ConclusionSettings) -> int:
    """Write the merged session's files, print its summary, and return its exit status."""
    planned = check_shards(shards)
    runs = merged_runs(shards, planned)
    baseline = _baseline(settings)
    shard_of = {run.test_id: shard for shard in shards for run in shard.runs}
    tests_failed = any(shard.session["tests_status"] == pytest.ExitCode.TESTS_FAILED for shard in shards)
    tests_status = pytest.ExitCode.TESTS_FAILED if tests_failed else pytest.ExitCode.OK
    first = shards[0]
    document = {
        "session": {
            **first.session,
            "argv": sys.argv[1:],
            "shard": None,
            "merged_from": [str(shard.path) for shard in shards],
            "tests_status": int(tests_status),
        },
        **first.environment,
    }
    settings.output.mkdir(parents=True, exist_ok=True)
    clear_session_files(settings.output)
    for run in runs:
        write_run_folder(settings.output, run, shard_of[run.test_id].environment)
    write_results(settings.output / "results.json", document, runs)
    conclusion = conclude(
        runs,
        settings,
        baseline,
        first.environment,
        document,
        machine_of=lambda run: shard_of[run.test_id].document.get("machine") or {},
    )
    write_summary(PrintedTerminal(), conclusion, runs, settings, baseline)
    status = int(conclusion.exit_status(tests_status, settings))
    print(f"merged {len(shards)} shards, {len(runs)} runs of {len(planned)} planned: exit status {status}")
    return status


def _baseline(settings: ConclusionSettings) -> Baseline | None:
    if settings.baseline_path is None:
        return None
    try:
        return load_baseline(settings.baseline_path, option="the shards' --algoperf-baseline")
    except ValueError as error:
        if settings.update_baseline and not settings.baseline_path.exists():
            return None
        raise MergeError(f"{error}; or pass the file with --baseline FILE") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pytest_algoperf.merge", description=__doc__.split("\n\n")[0])
    p.add_argument("shards", nargs="+", type=Path, help="each shard's output folder or results.json")
    p.add_argument("--output", type=Path, required=True, help="folder for the merged session's files")
    p.add_argument("--baseline", type=Path, help="the baseline file to gate against (default: the shards')")
    p.add_argument("--save-baseline", type=Path, help="write the merged runs to this baseline file")
    p.add_argument(
        "--update-baseline", action="store_true", help="rewrite the baseline's entries for the merged runs"
    )
    p.add_argument("--tolerance", help="as --algoperf-tolerance (default: the shards')")
    p.add_argument("--tolerance-sec", type=float, help="as --algoperf-tolerance-sec (default: the shards')")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        shards = [load_shard(path) for path in args.shards]
        return merge(shards, conclusion_settings(shards, args))
    except ValueError as error:  # MergeError, or a bad --tolerance
        print(f"error: {error}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)


if __name__ == "__main__":
    raise SystemExit(main())
