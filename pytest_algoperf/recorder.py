"""The controlling process's side of a session: collect results, write files, gate, summarise.

Results travel inside test reports (``report.algoperf_result``), so the same code serves a serial session
and a pytest-xdist controller, and a result is kept as soon as its test's report arrives.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from pytest_algoperf.baseline import Verdict, compare, save_baseline
from pytest_algoperf.reporting.environment import git_commit, machine_info, software_info
from pytest_algoperf.reporting.files import write_results, write_run_folder
from pytest_algoperf.reporting.terminal import write_summary
from pytest_algoperf.results import RunResult
from pytest_algoperf.session import AlgoPerfSession


class ResultsRecorder:
    def __init__(self, config: pytest.Config, session: AlgoPerfSession) -> None:
        self.config = config
        self.session = session
        self.settings = session.settings
        self.verdicts: dict[str, Verdict] = {}
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self.environment = {
            "machine": machine_info(),
            "software": software_info(),
            "commit": git_commit(config.rootpath),
        }

    @property
    def results_path(self) -> Any:
        return self.settings.output / "results.json"

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each result as its report arrives and announce it to ``pytest_algoperf_run_finished``."""
        data = getattr(report, "algoperf_result", None)
        if data is None:
            return
        result = RunResult.from_json(data)
        self.session.results.append(result)
        self.config.hook.pytest_algoperf_run_finished(config=self.config, result=result)

    @pytest.hookimpl(trylast=True)
    def pytest_algoperf_run_finished(self, config: pytest.Config, result: RunResult) -> None:
        """Write the run's AlgoPerf folder and rewrite ``results.json``, so a later crash loses nothing."""
        write_run_folder(self.settings.output, result, self.environment)
        write_results(self.results_path, self.document(), self.session.results)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Apply the regression gate and save a baseline; a regression fails the session, no traceback."""
        if self.session.baseline is not None:
            self.verdicts = {
                r.test_id: compare(
                    r, self.session.baseline, self.settings.tolerance, self.settings.tolerance_sec
                )
                for r in self.session.results
            }
            regressed = any(v.status == "regressed" for v in self.verdicts.values())
            if regressed and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.settings.save_baseline is not None:
            save_baseline(self.settings.save_baseline, self.session.results, self.environment["machine"])

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """One table of every run, then the regression gate's decisions and where the files are."""
        if not self.session.results:
            return
        write_summary(terminalreporter, self.session.results, self.verdicts)
        regressed = [v for v in self.verdicts.values() if v.status == "regressed"]
        for verdict in regressed:
            terminalreporter.write_line(
                f"REGRESSED {verdict.result.workload} ({verdict.result.test_id}): {verdict.detail}", red=True
            )
        for verdict in self.verdicts.values():
            if verdict.status == "new":
                terminalreporter.write_line(
                    f"new: {verdict.result.test_id} has no baseline entry", yellow=True
                )
        if self.session.baseline is not None:
            terminalreporter.write_line(
                f"baseline {self.session.baseline.path}: {len(regressed)} regressed, "
                f"tolerance {self.settings.tolerance:.0%} + {self.settings.tolerance_sec:g} s"
            )
        if self.settings.save_baseline is not None:
            terminalreporter.write_line(f"baseline saved to {self.settings.save_baseline}")
        terminalreporter.write_line(f"results: {self.results_path}")

    def document(self) -> dict[str, Any]:
        """Everything in ``results.json`` besides the runs."""
        return {
            "session": {
                "seed": self.settings.seed,
                "frameworks": list(self.settings.frameworks),
                "submissions": list(self.settings.submissions),
                "argv": sys.argv[1:],
                "started": self.started,
                "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            **self.environment,
        }
