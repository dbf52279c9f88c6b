"""Hook specifications that pytest-algoperf adds; implement them in a ``conftest.py`` or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_algoperf.registry import WorkloadRegistry
    from pytest_algoperf.results import EvalRecord, RunResult


def pytest_algoperf_add_workloads(registry: WorkloadRegistry) -> None:
    """Register extra workloads, e.g. ``registry.register("tiny", pytorch=TinyWorkload)``.

    Called once per session, after the built-in workloads are registered; names must be unique.
    """


def pytest_algoperf_eval(result: RunResult, record: EvalRecord) -> None:
    """Called after each untimed evaluation of a run, in the process that trains it.

    Runs inside the clock's logging section, so its time counts as logging time, never submission time.
    The built-in live progress line is an implementation of this hook.
    """


@pytest.hookspec(firstresult=False)
def pytest_algoperf_run_finished(config: pytest.Config, result: RunResult) -> None:
    """Called in the controlling process (the only one under pytest-xdist) when a run's result arrives.

    The result files are rewritten after each run through this hook, so a crash later loses nothing.
    """
