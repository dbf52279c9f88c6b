"""The pytest hooks of pytest-algoperf (registered through the ``pytest11`` entry point).

With ``--algoperf-submission`` the session collects benchmark tests instead of test files; without it the
plugin only offers its options, its hooks and the ``algoperf_clock`` fixture, and a plain ``pytest`` runs the
project's own tests.

Only one process reports and writes files: the pytest-xdist controller (results reach it inside the test
reports), or rank 0 under torchrun (every rank computes the same results; the others stay silent).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _pytest.config import create_terminal_writer

from pytest_algoperf import hookspecs, shards
from pytest_algoperf.allocator import freed_memory_kept
from pytest_algoperf.clock import BenchmarkClock
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.gate.schedule import uses_step_mode
from pytest_algoperf.hardware.gpus import worker_index
from pytest_algoperf.hardware.selection import header_lines
from pytest_algoperf.items import BenchmarkItem, BenchmarkSuite
from pytest_algoperf.listing import workloads_table
from pytest_algoperf.options import add_options, flag_value, resolve_settings
from pytest_algoperf.recorder import ResultsRecorder
from pytest_algoperf.registry import WorkloadRegistry, builtin_entries
from pytest_algoperf.reporting.tables import as_text
from pytest_algoperf.reporting.terminal import ProgressReporter
from pytest_algoperf.run_warnings import RunWarnings
from pytest_algoperf.session import AlgoPerfSession

SESSION = pytest.StashKey[AlgoPerfSession]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Make the ``pytest_algoperf_*`` hooks of :mod:`pytest_algoperf.hookspecs` available to conftests."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--algoperf-*`` options, each mirrored by an ``algoperf_*`` ini setting."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Resolve options and, when benchmarking, validate submissions and workloads before anything runs."""
    config.addinivalue_line("markers", "algoperf: a pytest-algoperf benchmark test (added automatically)")
    settings = resolve_settings(config)
    if not settings.benchmarking:
        return
    registry = _registry(config)
    workers, worker = _xdist_workers(config)
    session = AlgoPerfSession(settings, registry, workers=workers, worker_index=worker)
    under_xdist = _is_xdist_worker(config) or bool(getattr(config.option, "numprocesses", None))
    session.prepare(Path(config.invocation_params.dir), under_xdist=under_xdist)
    config.stash[SESSION] = session
    config.pluginmanager.register(RunWarnings(), "algoperf-run-warnings")
    if not _is_xdist_worker(config) and session.group.is_main:
        config.pluginmanager.register(ProgressReporter(config), "algoperf-progress")
        config.pluginmanager.register(ResultsRecorder(config, session), "algoperf-recorder")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--algoperf-list``: print every workload and what a session judges it by; then exit, as --markers."""
    if not flag_value(config, "algoperf_list"):
        return None
    writer = create_terminal_writer(config)
    for line in as_text(workloads_table(_registry(config))):
        writer.line(line)
    return 0


def _registry(config: pytest.Config) -> WorkloadRegistry:
    """The built-in workloads, then those conftests and plugins add."""
    registry = WorkloadRegistry()
    for entry in builtin_entries():
        registry.add(entry)
    config.hook.pytest_algoperf_add_workloads(registry=registry)
    return registry


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave the torchrun process group (if any) when the session ends."""
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """Show the session seed and what is benchmarked, so a run can be reproduced from its log."""
    session = config.stash.get(SESSION, None)
    if session is None:
        return None
    s = session.settings
    devices = ", ".join(f"{framework} on {device}" for framework, device in session.devices.items())
    lines = [
        f"algoperf: seed {s.seed}; submissions {', '.join(s.submissions)}; {devices}",
        f"algoperf: {session.threads} CPU threads per process"
        + ("; freed memory kept (glibc malloc)" if freed_memory_kept() else "")
        + f"; results in {s.output}",
    ]
    if session.group.is_distributed:
        group = session.group
        lines.append(
            f"algoperf: torchrun rank {group.rank} of {group.world_size} ({group.backend}); "
            "DDP in every run, rank 0 reports"
        )
    lines += header_lines(session.hardware, session.workers)
    lines += [line] if (line := shards.header_line(session)) else []
    lines += _gate_header(session)
    uncalibrated = [e.name for e in session.registry if not e.in_default_suite and e.name not in s.workloads]
    if uncalibrated and not s.workloads:
        lines.append(f"algoperf: not run until calibrated (name them to run): {', '.join(uncalibrated)}")
    return lines


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """While benchmarking, test files are not collected: the benchmark tests are the session."""
    return True if SESSION in config.stash else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Put the benchmark tests in place, before ``-k`` and ``-m`` deselect among them."""
    algoperf = config.stash.get(SESSION, None)
    if algoperf is None:
        return
    suite = BenchmarkSuite.from_parent(session, name="algoperf", nodeid="algoperf", algoperf=algoperf)
    items[:] = list(suite.collect())
    shards.keep_shard(config, algoperf, items)
    # Report the suite like any collected node, so the terminal counts "collected N items" and xdist sees it.
    session.ihook.pytest_collectreport(report=pytest.CollectReport(suite.nodeid, "passed", None, items))
    for item in items:
        item.add_marker(pytest.mark.algoperf)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the run's result to its report, which carries it to the controller under pytest-xdist."""
    report = yield
    if isinstance(item, BenchmarkItem) and call.when == "call" and item.result is not None:
        report.algoperf_result = item.result.to_json()
    return report


@pytest.fixture
def algoperf_clock() -> Callable[..., BenchmarkClock]:
    """A factory of AlgoPerf clocks for timing your own training loop under the benchmark's rules.

    ``algoperf_clock(budget_sec, eval_period_sec=0.0, framework=None, eval_every_steps=None)`` returns a
    :class:`~pytest_algoperf.clock.BenchmarkClock`; with ``framework="pytorch"`` or ``"jax"`` its readings
    synchronise that framework's accelerator first.
    """

    def make(
        budget_sec: float,
        eval_period_sec: float = 0.0,
        framework: str | None = None,
        eval_every_steps: int | None = None,
    ) -> BenchmarkClock:
        if framework is None:
            return BenchmarkClock(budget_sec, eval_period_sec, eval_every_steps=eval_every_steps)
        return BenchmarkClock(
            budget_sec, eval_period_sec, get_adapter(framework).synchronize, eval_every_steps
        )

    return make


def _gate_header(session: AlgoPerfSession) -> list[str]:
    """Say how a gated session measures, and warn when its steps cannot match the baseline's exactly."""
    s = session.settings
    lines = []
    if uses_step_mode(s.schedule, s.gating):
        lines.append(
            "algoperf: step mode: evals every N steps and a step budget (from the baseline file, or the "
            "calibrated step rate), so a seed gives the same steps on any load"
        )
    if session.baseline is not None:
        theirs = sorted({e.threads for e in session.baseline.entries.values() if e.threads is not None})
        if theirs and theirs != [session.threads]:
            lines.append(
                f"algoperf: WARNING: the baseline's runs used {', '.join(map(str, theirs))} CPU threads and "
                f"this session uses {session.threads}: PyTorch's numbers, and so steps to target, change "
                f"with the thread count; set --algoperf-threads={theirs[0]} to compare steps exactly"
            )
    if s.baseline_code:
        lines.append(f"algoperf: step times paired with the baseline's code: {s.baseline_code}")
    return lines


def _xdist_workers(config: pytest.Config) -> tuple[int, int | None]:
    """(workers benchmarking side by side, this worker's number or None outside workers): in a worker from
    its workerinput, in the controller from ``-n`` (which pytest-xdist has resolved by now)."""
    if _is_xdist_worker(config):
        workerinput = config.workerinput  # type: ignore[attr-defined]
        return workerinput["workercount"], worker_index(workerinput["workerid"])
    return max(1, int(getattr(config.option, "numprocesses", 0) or 0)), None


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")
