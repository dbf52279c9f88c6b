"""The validity study: ``python -m pytest_algoperf.validity``.

    python -m pytest_algoperf.validity --framework pytorch --parallel 2 --output validity/

Each panel member (``panel.PANEL``) trains under external tuning (``--trials`` trials, default 5, in
``--studies`` studies, default 3) in a pytest session of its own, whose results land in
``OUTPUT/<framework>/<submission>/results.json`` beside its log. A member whose folder already records
every workload and trial is kept; one that records some trains only the missing runs, in ``resume-1``,
``resume-2``... beside them (``resume``), so an interrupted study, or one asked for more trials, resumes run
by run. ``--parallel N``
runs N sessions at once, each pinned to one CPU of this process's affinity. Then every framework's members
are scored on one board (AlgoPerf's performance profile, the fastest trial of each study) and printed
beside AlgoPerf v0.5's published scores, with Kendall's tau and the pairs AlgoPerf separates by more than
``--min-gap`` that the suite orders otherwise; with several studies each study is also scored alone, to show
how far one study's order moves. ``OUTPUT/validity.json`` keeps it all.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from pytest_algoperf.batch_size_rule import algoperf_name
from pytest_algoperf.registry import default_suite
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.boards import scoreboards
from pytest_algoperf.score.logs import ResultsFileError
from pytest_algoperf.threads import affinity
from pytest_algoperf.validity.agreement import disagreements, kendall_tau, workload_pairs
from pytest_algoperf.validity.panel import ALGOPERF_V05_RUNTIMES, PANEL, PanelMember, member
from pytest_algoperf.validity.resume import RunKey, next_resume_folder, recorded_runs, run_key

# A study runs for hours, and each member's session writes only to its own log: say how far it got this often.
PROGRESS_EVERY_SEC = 600.0


@dataclass(frozen=True)
class Session:
    """One member's pytest session in one framework."""

    member: PanelMember
    framework: str
    folder: Path

    def runs(self, session_seed: int | None = None) -> list[RunResult]:
        """What the member's folder records (``resume.recorded_runs``)."""
        return recorded_runs(self.folder, session_seed) if self.folder.is_dir() else []


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pytest_algoperf.validity", description=__doc__.split("\n")[0])
    p.add_argument("--output", type=Path, default=Path(".algoperf/validity"), help="the study's folder")
    p.add_argument("--framework", default="pytorch,jax", help="comma list (default: pytorch,jax)")
    p.add_argument("--submissions", default="", help="comma list of panel members (default: all)")
    p.add_argument("--workloads", default="", help="comma list (default: the base suite on AlgoPerf's board)")
    p.add_argument("--trials", type=int, default=5, help="external tuning trials per study (default: 5)")
    p.add_argument(
        "--studies",
        type=int,
        default=3,
        help="studies per workload (default: 3, AlgoPerf v0.6's count; one study gave tau +0.07 to +0.73)",
    )
    p.add_argument("--seed", type=int, default=0, help="the sessions' seed (default: 0)")
    p.add_argument("--parallel", type=int, default=1, help="sessions at once, one CPU each (default: 1)")
    p.add_argument("--min-gap", type=float, default=0.05, help="AlgoPerf score gap a pair must keep")
    p.add_argument("--score-only", action="store_true", help="score what the folder holds; run nothing")
    p.add_argument("--pytest-args", default="", help="more pytest options for every session, quoted")
    p.add_argument(
        "--cap-recorded-runs",
        action="store_true",
        help="score runs recorded without a step cap as if they had stopped at step_hint (AlgoPerf's "
        "--max_global_steps): a target first met after it counts as missed",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        members = [member(name) for name in _comma_list(args.submissions)] or list(PANEL)
        asked = _comma_list(args.workloads)
        workloads = asked or algoperf_board_workloads()
        sessions = [
            Session(m, framework, args.output / framework / m.submission)
            for framework in _comma_list(args.framework)
            for m in members
            if framework in m.frameworks
        ]
        if not sessions:
            raise ValueError(f"no panel member runs in {args.framework}")
        if args.trials < 1 or args.studies < 1 or args.parallel < 1:
            raise ValueError("--trials, --studies and --parallel must be at least 1")
        if not args.score_only:
            expected = len(_planned_runs(args, workloads))
            to_run = [s for s in sessions if _complete_runs(s, args, workloads) < expected]
            for s in sessions:
                if s not in to_run:
                    print(f"kept: {s.member.submission} ({s.framework}), {s.folder}")
            _run_sessions(to_run, args, workloads)
        # A folder may hold more than the study asks for; without --workloads, everything it holds counts.
        summary = score_study(sessions, args.min_gap, args.cap_recorded_runs, asked or None)
    except (ValueError, ResultsFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary["command"] = shlex.join(["python", "-m", "pytest_algoperf.validity", *(argv or sys.argv[1:])])
    summary["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "validity.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n".join(render(summary)))
    print(f"\nsaved: {args.output / 'validity.json'}")
    return 0


def algoperf_board_workloads() -> list[str]:
    """The base workloads that stand for one on AlgoPerf's scored board: not mnist (AlgoPerf's mnist is a
    development workload that no score counts), so a member's time there cannot move its score."""
    return [name for name in default_suite() if algoperf_name(name) is not None]


def _run_sessions(sessions: list[Session], args: argparse.Namespace, workloads: list[str]) -> None:
    """Runs the sessions, ``args.parallel`` at a time, each on a CPU of its own; a failing session (a
    missed target fails its test) still leaves its results."""
    cpus = sorted(affinity() or range(os.cpu_count() or 1))
    free = cpus[: args.parallel]
    running: dict[int, tuple[subprocess.Popen, Session, float]] = {}
    queue = list(sessions)
    done = 0
    last_progress = time.monotonic()
    while queue or running:
        while queue and free:
            session, cpu = queue.pop(0), free.pop(0)
            process, log = _start(session, args, workloads, cpu)
            running[cpu] = (process, session, time.monotonic())
            name = f"{session.member.submission} ({session.framework})"
            print(f"[{done + len(running)}/{len(sessions)}] {name} on CPU {cpu}: log {log}", flush=True)
        time.sleep(1.0)
        if running and time.monotonic() - last_progress >= PROGRESS_EVERY_SEC:
            last_progress = time.monotonic()
            print(_progress_line(list(running.values()), args, workloads, last_progress), flush=True)
        for cpu, (process, session, started) in list(running.items()):
            if process.poll() is None:
                continue
            del running[cpu]
            free.append(cpu)
            done += 1
            elapsed = time.monotonic() - started
            name = f"{session.member.submission} ({session.framework})"
            recorded = _complete_runs(session, args, workloads)
            print(f"done: {name} in {elapsed:.0f} s, {recorded} runs recorded", flush=True)
            planned = len(_planned_runs(args, workloads))
            if recorded < planned:
                print(
                    f"warning: {name} records {recorded} of the {planned} runs this study plans; its session "
                    f"stopped early (exit status {process.returncode}), see {session.folder}; rerun the same "
                    "command to train the missing ones",
                    flush=True,
                )


def _progress_line(
    running: list[tuple[subprocess.Popen, Session, float]],
    args: argparse.Namespace,
    workloads: list[str],
    now: float,
) -> str:
    """One line for a study that runs for hours: each running member's recorded runs and minutes so far."""
    planned = len(_planned_runs(args, workloads))
    members = (
        f"{session.member.submission} ({session.framework}) "
        f"{_complete_runs(session, args, workloads)}/{planned} runs in {(now - started) / 60:.0f} min"
        for _, session, started in running
    )
    return f"progress {datetime.now().strftime('%H:%M')}: " + "; ".join(members)


def _start(
    session: Session, args: argparse.Namespace, workloads: list[str], cpu: int
) -> tuple[subprocess.Popen, Path]:
    """Starts the member's session on ``cpu``; returns it with the path of its log."""
    recorded = [run_key(run) for run in session.runs(args.seed)]
    # A member with runs on record trains only the missing ones, into a folder of its own.
    folder = next_resume_folder(session.folder) if recorded else session.folder
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
        f"--algoperf-submission={session.member.submission}",
        f"--algoperf-framework={session.framework}",
        f"--algoperf-workloads={','.join(workloads)}",
        f"--algoperf-trials={args.trials}",
        f"--algoperf-studies={args.studies}",
        f"--algoperf-seed={args.seed}",
        "--algoperf-threads=1",
        f"--algoperf-output={folder.resolve()}",
        *shlex.split(args.pytest_args),
    ]  # fmt: skip
    if recorded:
        listed = folder / "recorded.json"
        listed.write_text(json.dumps(recorded) + "\n")
        # Resolved: the session runs in its own folder, so a path relative to ours would not be found.
        command += ["-p", "pytest_algoperf.validity.resume", f"--validity-recorded={listed.resolve()}"]
    if session.member.search_space is not None:
        command.append(f"--algoperf-tuning-search-space={session.member.search_space}")
    log_path = folder / "session.log"
    log = log_path.open("w")
    log.write(shlex.join(command) + "\n")
    log.flush()
    # The session's folder is its rootdir: no project's tests or ini settings come along.
    process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    # Pinned from here, not by a preexec_fn: that would run Python between fork and exec in a process whose
    # JAX or torch threads may hold locks. The child is still starting Python; threads it starts inherit this.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(process.pid, {cpu})
    return process, log_path


def _planned_runs(args: argparse.Namespace, workloads: list[str]) -> set[RunKey]:
    """The (workload, study, trial) runs this study plans for each member."""
    return {(w, s, t) for w in workloads for s in range(args.studies) for t in range(args.trials)}


def _complete_runs(session: Session, args: argparse.Namespace, workloads: list[str]) -> int:
    """The planned runs the member's folder records: runs of other workloads, studies or trials (an earlier
    study in the same folder) do not make this one complete."""
    try:
        recorded = {run_key(run) for run in session.runs(args.seed)}
        return len(_planned_runs(args, workloads) & recorded)
    except ResultsFileError:
        return 0


def score_study(
    sessions: list[Session],
    min_gap: float,
    cap_recorded: bool = False,
    workloads: Sequence[str] | None = None,
) -> dict:
    """Per framework: each member's score on the suite beside AlgoPerf's, Kendall's tau, disagreements. With
    several studies, also each study scored alone (``per_study``): how far one study's order moves. With
    ``cap_recorded``, uncapped runs are scored as if capped at step_hint (``capped_at_step_hint``). With
    ``workloads``, only those workloads' runs are scored; without, every run the folders record."""
    frameworks: dict[str, dict] = {}
    for framework in dict.fromkeys(s.framework for s in sessions):
        member_runs = {
            s: [run for run in s.runs() if workloads is None or run.workload in workloads]
            for s in sessions
            if s.framework == framework
        }
        late: dict[str, int] = {}
        if cap_recorded:
            for s, runs in member_runs.items():
                capped = [capped_at_step_hint(run) for run in runs]
                late[s.member.submission] = sum(
                    r.reached and not c.reached for c, r in zip(capped, runs, strict=True)
                )
                member_runs[s] = capped
        present = {s: runs for s, runs in member_runs.items() if runs}
        missing = [s.member.submission for s, runs in member_runs.items() if not runs]
        summary = _board_summary(present, min_gap)
        if summary is None:
            frameworks[framework] = {"members": [], "missing": missing, "note": "fewer than two members ran"}
            continue
        studies = sorted({run.study for runs in present.values() for run in runs})
        if len(studies) > 1:
            summary["per_study"] = []
            for study in studies:
                alone = _board_summary(
                    {s: [r for r in runs if r.study == study] for s, runs in present.items()}, min_gap
                )
                if alone is not None:
                    scores = {m["submission"]: m["score"] for m in alone["members"]}
                    pairs = alone["workload_pairs"]
                    summary["per_study"].append(
                        {
                            "study": study + 1,
                            "kendall_tau": alone["kendall_tau"],
                            "scores": scores,
                            "workload_pairs_in_order": [pairs["in_order"], pairs["pairs"]],
                        }
                    )
        frameworks[framework] = {**summary, "missing": missing}
        if cap_recorded:
            frameworks[framework]["met_after_step_hint"] = late
    return {"frameworks": frameworks}


def capped_at_step_hint(run: RunResult) -> RunResult:
    """A run recorded without a step cap, as AlgoPerf's scoring runs (``--max_global_steps`` = step_hint)
    would have ended it: its steps up to the cap are the same, so a target first met after step_hint is
    missed. A capped run also evaluates at step_hint itself, an eval this run does not have, so a target met
    between its last eval before step_hint and step_hint counts as missed here: a slight undercount."""
    hint = (run.calibration or {}).get("step_hint")
    late = run.reached and run.max_global_steps is None and hint and (run.steps_to_target or 0) > hint
    if not late:
        return run
    return replace(run, reached=False, test_reached=False, time_to_target=None, steps_to_target=None)


def _board_summary(member_runs: dict[Session, list[RunResult]], min_gap: float) -> dict | None:
    """The members' runs scored on one board beside AlgoPerf's scores; None with fewer than two members."""
    present = [s for s, runs in member_runs.items() if runs]
    if len(present) < 2:
        return None
    runs: list[RunResult] = [run for s in present for run in member_runs[s]]
    board, by_steps = scoreboards(runs)[0], scoreboards(_steps_as_time(runs))[0]
    rows = []
    for s in present:
        name = s.member.submission
        ratios = board.ratios.get(name, {})
        rows.append(
            {
                "submission": name,
                "stands_for": s.member.stands_for,
                "reached": sum(math.isfinite(t) for t in board.times[name].values()),
                "workloads": len(board.times[name]),
                "score": board.scores[name],
                "score_by_steps": by_steps.scores[name],
                "algoperf_score": s.member.algoperf_score,
                "ratios": {w: (r if math.isfinite(r) else None) for w, r in ratios.items()},
            }
        )
    ours = {r["submission"]: r["score"] for r in rows if r["algoperf_score"] is not None}
    theirs = {r["submission"]: r["algoperf_score"] for r in rows if r["algoperf_score"] is not None}
    tau = kendall_tau(ours, theirs)
    tau_by_steps = kendall_tau(
        {r["submission"]: r["score_by_steps"] for r in rows if r["submission"] in theirs}, theirs
    )
    return {
        "members": sorted(rows, key=lambda r: -r["score"]),
        "workloads": sorted(board.ratios[next(iter(board.ratios))]),
        "kendall_tau": None if math.isnan(tau) else tau,
        "kendall_tau_by_steps": None if math.isnan(tau_by_steps) else tau_by_steps,
        "disagreements": [_with_cut_runs(asdict(d)) for d in disagreements(ours, theirs, min_gap)],
        "min_gap": min_gap,
        "workload_pairs": _workload_pairs_summary(
            {s.member.submission: board.times[s.member.submission] for s in present}
        ),
    }


# A reading aid, not a measured bound on AlgoPerf's noise: the pairs whose AlgoPerf times are at least this
# factor apart are also counted alone, so that near ties on AlgoPerf's side do not decide the reading.
CLEAR_RATIO = 1.2


def _workload_pairs_summary(times: dict[str, dict[str, float]]) -> dict:
    """Workload by workload, the pairs of members whose AlgoPerf v0.5 times were published both finite
    (``panel.ALGOPERF_V05_RUNTIMES``) that the suite orders as AlgoPerf did: a finer reading than tau over
    the scores, which a workload AlgoPerf's runs were cut short on decides."""
    ours = {
        name: {algoperf_name(workload) or workload: time for workload, time in member_times.items()}
        for name, member_times in times.items()
    }
    pairs = workload_pairs(ours, ALGOPERF_V05_RUNTIMES)
    clear = [p for p in pairs if p.their_ratio >= CLEAR_RATIO]
    return {
        "pairs": len(pairs),
        "in_order": sum(p.in_order for p in pairs),
        "clear_ratio": CLEAR_RATIO,
        "clear_pairs": len(clear),
        "clear_in_order": sum(p.in_order for p in clear),
        "clear_against": [asdict(p) for p in clear if not p.in_order],
        "against": [asdict(p) for p in pairs if not p.in_order],
    }


def _with_cut_runs(pair: dict) -> dict:
    """The pair, with the workloads where AlgoPerf's published runs of either member were cut short."""
    cut = {name: list(member(name).algoperf_runs_cut) for name in (pair["better"], pair["worse"])}
    return {**pair, "algoperf_runs_cut": {name: w for name, w in cut.items() if w}}


def _steps_as_time(runs: list[RunResult]) -> list[RunResult]:
    """The runs as if each step took a second: a board by steps to target, where an update's cost does not
    count (AlgoPerf's own analysis compares the two boards the same way)."""
    return [replace(run, time_to_target=float(run.steps_to_target or 0)) for run in runs]


def render(summary: dict) -> list[str]:
    lines = []
    for framework, board in summary["frameworks"].items():
        lines.append(f"\nvalidity study, {framework}")
        if not board["members"]:
            lines.append(f"  {board['note']}; missing: {', '.join(board['missing']) or '-'}")
            continue
        lines.append(f"  workloads: {', '.join(board['workloads'])}")
        header = (
            f"  {'submission':<20} {'reached':>8} {'score here':>10} {'by steps':>8} {'AlgoPerf v0.5':>13}"
            "  stands for"
        )
        lines += [header, "  " + "-" * (len(header) + 20)]
        for row in board["members"]:
            theirs = "-" if row["algoperf_score"] is None else f"{row['algoperf_score']:.4f}"
            reached = f"{row['reached']}/{row['workloads']}"
            name, score = row["submission"], row["score"]
            steps = row["score_by_steps"]
            lines.append(
                f"  {name:<20} {reached:>8} {score:>10.3f} {steps:>8.3f} {theirs:>13}  {row['stands_for']}"
            )
        tau = board["kendall_tau"]
        scored = sum(row["algoperf_score"] is not None for row in board["members"])
        lines.append(
            f"  Kendall's tau over the {scored} on both boards: {_signed(tau)} "
            f"(by steps: {_signed(board['kendall_tau_by_steps'])})"
        )
        lines += _render_workload_pairs(board["workload_pairs"])
        gap = board["min_gap"]
        if board["disagreements"]:
            lines.append(f"  pairs AlgoPerf separates by more than {gap} that the suite does not:")
            for d in board["disagreements"]:
                lines.append(
                    f"    {d['better']} over {d['worse']}: AlgoPerf +{d['theirs_gap']:.4f}; "
                    f"here {d['ours'][0]:.3f} vs {d['ours'][1]:.3f}"
                )
                for name, workloads in d.get("algoperf_runs_cut", {}).items():
                    lines.append(
                        f"      AlgoPerf's published {name} runs stopped short of the budget on "
                        f"{', '.join(workloads)}, which its score counts as missed (VALIDITY.md)"
                    )
        else:
            lines.append(f"  every pair AlgoPerf separates by more than {gap} is in its order")
        for study in board.get("per_study", []):
            ranked = sorted(study["scores"].items(), key=lambda item: -item[1])
            order = ", ".join(f"{name} {score:.3f}" for name, score in ranked)
            in_order, pairs = study["workload_pairs_in_order"]
            per_workload = f", per workload {in_order} of {pairs}" if pairs else ""
            lines.append(
                f"  study {study['study']} alone: tau {_signed(study['kendall_tau'])}{per_workload}; {order}"
            )
        if "met_after_step_hint" in board:
            late = ", ".join(f"{name} {count}" for name, count in board["met_after_step_hint"].items())
            lines.append(f"  scored as capped at step_hint; targets met only after it, now missed: {late}")
        if board["missing"]:
            lines.append(f"  not run yet: {', '.join(board['missing'])}")
    return lines


def _render_workload_pairs(summary: dict) -> list[str]:
    if not summary["pairs"]:
        return []
    ratio = summary["clear_ratio"]
    in_order, clear_in_order, clear = summary["in_order"], summary["clear_in_order"], summary["clear_pairs"]
    lines = [
        f"  per workload, pairs whose AlgoPerf v0.5 times were both published: {in_order} of "
        f"{summary['pairs']} in AlgoPerf's order, {clear_in_order} of {clear} where its times differ by "
        f"x{ratio:g} or more"
    ]
    for pair in summary["clear_against"]:
        (their_fast, their_slow), (our_fast, our_slow) = pair["theirs"], pair["ours"]
        lines.append(
            f"    {pair['workload']}: {pair['faster']} before {pair['slower']} on AlgoPerf ({their_fast:.2f} "
            f"vs {their_slow:.2f} of the budget); here {our_fast:.1f} s vs {our_slow:.1f} s"
        )
    return lines


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    sys.exit(main())
