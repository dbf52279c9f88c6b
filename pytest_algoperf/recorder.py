"""The controlling process's side of a session: collect results, write files, gate, summarise.

Results travel inside test reports (``report.algoperf_result``), so the same code serves a serial session
and a pytest-xdist controller, and a result is kept as soon as its test's report arrives. A benchmark test
whose report carries no result (its xdist worker died: ``os._exit``, a segfault; or its setup failed) is
kept too, as a run that ``crashed`` or hit an ``error``, so it is reported rather than lost. Runs are
kept in the planned order, so a parallel session's files list them as a serial session's do.
"""

from __future__ import annotations

import math
import shutil
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from pytest_algoperf.gate.baseline_file import save_baseline
from pytest_algoperf.gate.verdicts import Verdict, judge
from pytest_algoperf.provenance import plugin_version
from pytest_algoperf.reporting.environment import git_commit, machine_info, software_info
from pytest_algoperf.reporting.files import write_results, write_run_folder
from pytest_algoperf.reporting.markdown import render_report, write_report
from pytest_algoperf.reporting.plots import plot_learning_curves, plot_performance_profile
from pytest_algoperf.reporting.tables import gate_table, runs_table, scores_table, workload_times_table
from pytest_algoperf.reporting.terminal import write_table
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.boards import Scoreboard, TimesByFramework, scoreboards, workload_times
from pytest_algoperf.session import AlgoPerfSession, PlannedRun

# The ``when`` of the report pytest-xdist makes for a test whose worker died while running it.
CRASHED_WHEN = "???"
STATUSES = ("regressed", "refused", "inconclusive", "ok", "new")


class ResultsRecorder:
    def __init__(self, config: pytest.Config, session: AlgoPerfSession) -> None:
        self.config = config
        self.session = session
        self.settings = session.settings
        self.verdicts: dict[str, Verdict] = {}
        self.times: TimesByFramework = {}
        self.missed: list[tuple[str, str, str]] = []  # (framework, submission, workload) with an inf time
        self.met_past_budget: set[tuple[str, str, str]] = set()  # of those, met within the step budget
        self.boards: list[Scoreboard] = []
        self.scoring_error: str | None = None
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self._plans: dict[str, tuple[int, PlannedRun]] | None = None
        self.environment = {
            "plugin_version": plugin_version(),
            "machine": machine_info(),
            "software": software_info(),
            "commit": git_commit(config.rootpath),
        }

    @property
    def results_path(self) -> Any:
        return self.settings.output / "results.json"

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Clear what the previous session wrote here, so this session's files never mix with older ones
        (use another --algoperf-output to keep them); files of other tools in the folder are left alone."""
        output = self.settings.output
        for stale in (output / "experiments", output / "curves"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in (
            output / "results.json",
            output / "report.md",
            *output.glob("performance_profile_*.png"),
        ):
            stale.unlink(missing_ok=True)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each result as its report arrives and announce it to ``pytest_algoperf_run_finished``."""
        data = getattr(report, "algoperf_result", None)
        if data is not None:
            result = RunResult.from_json(data)
        elif report.failed and (plan := self._unrecorded_plan(report.nodeid)) is not None:
            result = self._lost_run(plan, report)
        else:
            return
        self.session.results.append(result)
        order = self.plans()
        self.session.results.sort(key=lambda r: order[r.test_id][0] if r.test_id in order else len(order))
        self.config.hook.pytest_algoperf_run_finished(config=self.config, result=result)

    def plans(self) -> dict[str, tuple[int, PlannedRun]]:
        """Every planned benchmark test by id, with its position (an xdist controller collects no items)."""
        if self._plans is None:
            self._plans = {plan.test_id: (i, plan) for i, plan in enumerate(self.session.planned_runs())}
        return self._plans

    def _unrecorded_plan(self, nodeid: str) -> PlannedRun | None:
        """The plan of a benchmark test that has no result yet (a later teardown error adds none)."""
        parent, _, test_id = nodeid.rpartition("::")
        if parent != "algoperf" or test_id not in self.plans():
            return None
        if any(r.test_id == test_id for r in self.session.results):
            return None
        return self.plans()[test_id][1]

    def _lost_run(self, plan: PlannedRun, report: pytest.TestReport) -> RunResult:
        """A run known only by its failed report: what was planned, and why it ended."""
        crashed = report.when == CRASHED_WHEN  # type: ignore[comparison-overlap]
        detail = str(report.longrepr).strip().splitlines()
        base_name = self.session.registry[plan.workload].base_name
        return RunResult(
            test_id=plan.test_id,
            submission=plan.submission_name,
            framework=plan.framework,
            workload=plan.workload,
            seed=plan.seed,
            base_workload=base_name if base_name != plan.workload else "",
            study=plan.study,
            trial=plan.trial,
            hyperparameters=plan.hyperparameters,
            stop_reason="crashed" if crashed else "error",
            error=detail[-1] if detail else f"failed in {report.when}",
        )

    @pytest.hookimpl(trylast=True)
    def pytest_algoperf_run_finished(self, config: pytest.Config, result: RunResult) -> None:
        """Write the run's AlgoPerf folder and rewrite ``results.json``, so a later crash loses nothing."""
        write_run_folder(self.settings.output, result, self.environment)
        write_results(self.results_path, self.document(), self.session.results)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Apply the regression gate and save a baseline; a regression fails the session, no traceback."""
        self._keep_interrupted_run(session)
        settings = self.settings
        if self.session.baseline is not None:
            machine = self.environment["machine"]
            self.verdicts = {
                r.test_id: judge(r, self.session.baseline, settings.tolerances, machine)
                for r in self.session.results
            }
            regressed = any(v.status == "regressed" for v in self.verdicts.values())
            if regressed and session.exitstatus == pytest.ExitCode.OK and not settings.update_baseline:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if settings.save_baseline is not None:
            save_baseline(settings.save_baseline, self.session.results, self.environment)
        if settings.update_baseline and settings.baseline is not None:
            kept = self.session.baseline.entries if self.session.baseline is not None else {}
            save_baseline(settings.baseline, self.session.results, self.environment, keep=kept)
        if not self.session.results:
            return
        self.times = workload_times(self.session.results)
        self.missed = [
            (f, s, w)
            for f, subs in self.times.items()
            for s, row in subs.items()
            for w, t in row.items()
            if math.isinf(t)
        ]
        # Every trial of a tuning study missed. In step mode, a target met within the step budget but past
        # the time budget is no such miss: its time is the gate's to judge, not a load's to decide.
        met = {(r.framework, r.submission, r.workload) for r in self.session.results if r.met_target}
        self.met_past_budget = set(self.missed) & met
        if set(self.missed) - met and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        try:
            self.boards = scoreboards(
                self.session.results,
                self.settings.reference_submission,
                couple_variants=self.settings.variant_scoring == "v0.5",
            )
        except ValueError as error:
            self.scoring_error = str(error)
        self.write_report()

    def _keep_interrupted_run(self, session: pytest.Session) -> None:
        """After Ctrl-C in a serial session, keep the run that was training, as ``interrupted``, with its
        evals (its test made no report; every finished run is in results.json already)."""
        if session.exitstatus != pytest.ExitCode.INTERRUPTED:
            return
        recorded = {r.test_id for r in self.session.results}
        for item in session.items:
            result = getattr(item, "result", None)
            if isinstance(result, RunResult) and result.test_id not in recorded:
                result.stop_reason = "interrupted"
                self.session.results.append(result)
                write_results(self.results_path, self.document(), self.session.results)

    def write_report(self) -> None:
        """report.md with the scores, times and runs, and the PNG figures it shows."""
        output = self.settings.output
        figures = [
            plot_performance_profile(b, output / f"performance_profile_{b.framework}.png")
            for b in self.boards
        ]
        figures += plot_learning_curves(self.session.results, output / "curves")
        text = render_report(
            self.document(), self.session.results, self.times, self.boards, self.verdicts, figures, output
        )
        write_report(output / "report.md", text)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """One table of every run, then the regression gate's decisions and where the files are."""
        if not self.session.results:
            return
        write_table(terminalreporter, "algoperf summary", runs_table(self.session.results, self.verdicts))
        if self.settings.studies > 1 or self.settings.trials > 1:
            write_table(terminalreporter, "algoperf workload times", workload_times_table(self.times))
        for framework, submission, workload in self.missed:
            over_budget = (framework, submission, workload) in self.met_past_budget
            why = (
                "met only past the time budget (step mode)" if over_budget else "no study reached the target"
            )
            terminalreporter.write_line(
                f"MISSED {workload} ({submission}, {framework}): {why}", red=not over_budget
            )
        for board in self.boards:
            write_table(terminalreporter, f"algoperf scores ({board.framework})", scores_table(board))
        if self.scoring_error:
            terminalreporter.write_line(f"scores not computed: {self.scoring_error}", red=True)
        if self.verdicts:
            write_table(terminalreporter, "algoperf regression gate", gate_table(self.verdicts.values()))
        for verdict in self.verdicts.values():
            if verdict.status in ("regressed", "refused", "inconclusive"):
                result = verdict.result
                terminalreporter.write_line(
                    f"{verdict.status.upper()} {result.workload} ({result.test_id}): {verdict.detail}",
                    red=verdict.status != "inconclusive",
                    yellow=verdict.status == "inconclusive",
                )
            elif verdict.status == "new":
                terminalreporter.write_line(
                    f"new: {verdict.result.test_id} has no baseline entry", yellow=True
                )
        if self.session.baseline is not None:
            counts = {status: sum(v.status == status for v in self.verdicts.values()) for status in STATUSES}
            accepted = " (accepted: --algoperf-update-baseline)" if self.settings.update_baseline else ""
            terminalreporter.write_line(
                f"baseline {self.session.baseline.path}: "
                + ", ".join(f"{n} {status}" for status, n in counts.items() if n or status == "regressed")
                + f"{accepted}; tolerance {self.settings.tolerances.describe()}"
                f" + {self.settings.tolerances.seconds:g} s on stored times; steps exact"
            )
        if self.settings.update_baseline:
            terminalreporter.write_line(f"baseline updated: {self.settings.baseline}")
        if self.settings.save_baseline is not None:
            terminalreporter.write_line(f"baseline saved to {self.settings.save_baseline}")
        terminalreporter.write_line(
            f"results: {self.results_path}; report: {self.settings.output / 'report.md'}"
        )

    def document(self) -> dict[str, Any]:
        """Everything in ``results.json`` besides the runs."""
        return {
            "session": {
                "seed": self.settings.seed,
                "frameworks": list(self.settings.frameworks),
                "submissions": list(self.settings.submissions),
                "ruleset": self.settings.ruleset,
                "studies": self.settings.studies,
                "trials": self.settings.trials,
                "argv": sys.argv[1:],
                "started": self.started,
                "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            **self.environment,
        }
