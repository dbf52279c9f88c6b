"""The controlling process's side of a session: collect results, write files, gate, summarise.

Results travel inside test reports (``report.algoperf_result``), so the same code serves a serial session
and a pytest-xdist controller, and a result is kept as soon as its test's report arrives. A benchmark test
whose report carries no result (its xdist worker died: ``os._exit``, a segfault; or its setup failed) is
kept too, as a run that ``crashed`` or hit an ``error``, so it is reported rather than lost. Runs are
kept in the planned order, so a parallel session's files list them as a serial session's do.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from pytest_algoperf.conclusion import Conclusion, ConclusionSettings, conclude, write_summary
from pytest_algoperf.provenance import plugin_version
from pytest_algoperf.reporting.environment import git_commit, machine_info, software_info
from pytest_algoperf.reporting.files import clear_session_files, write_results, write_run_folder
from pytest_algoperf.results import RunResult
from pytest_algoperf.session import AlgoPerfSession, PlannedRun
from pytest_algoperf.shards import session_record, shard_note

# The ``when`` of the report pytest-xdist makes for a test whose worker died while running it.
CRASHED_WHEN = "???"


class ResultsRecorder:
    def __init__(self, config: pytest.Config, session: AlgoPerfSession) -> None:
        self.config = config
        self.session = session
        self.settings = session.settings
        self.conclusion_settings = ConclusionSettings.of(self.settings)
        self.conclusion = Conclusion()
        self.tests_status: int | None = None  # pytest's exit status before the gate, at the session's end
        self._record: dict[str, Any] | None = None
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
        clear_session_files(output)

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
        """Apply the regression gate, save a baseline, score and report (``pytest_algoperf.conclusion``); a
        regression fails the session, no traceback."""
        self._keep_interrupted_run(session)
        self.tests_status = int(session.exitstatus)
        results = self.session.results
        if results or self.settings.shard:  # with the tests' status, which a merge of shards needs
            write_results(self.results_path, self.document(), results)
        self.conclusion = conclude(
            results, self.conclusion_settings, self.session.baseline, self.environment, self.document()
        )
        session.exitstatus = self.conclusion.exit_status(session.exitstatus, self.conclusion_settings)
        if self.settings.shard and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = (
                pytest.ExitCode.OK
            )  # more shards than runs: this one had none, and that is fine

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

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """One table of every run, then the regression gate's decisions and where the files are."""
        write_summary(
            terminalreporter,
            self.conclusion,
            self.session.results,
            self.conclusion_settings,
            self.session.baseline,
        )
        if self.settings.shard is not None and self.session.results:
            terminalreporter.write_line(shard_note(self.settings.shard))

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
                **self.record(),
                "tests_status": self.tests_status,
            },
            **self.environment,
        }

    def record(self) -> dict[str, Any]:
        """Hardware profiles, the shard and the settings a merge of shards needs (computed once)."""
        if self._record is None:
            self._record = {
                **session_record(self.session, [plan for _, plan in self.plans().values()]),
                "conclusion": self.conclusion_settings.to_json(),
            }
        return self._record
