"""``pytest --algoperf-list``: every workload and variant with what a session would judge it by.

The numbers come from each workload's class without building its data: a calibrated workload reads them from
its ``calibration.json``, so listing costs an import of the framework, not a data generation.
"""

from __future__ import annotations

import math
from typing import Any

from pytest_algoperf.calibration import CalibratedWorkload
from pytest_algoperf.gate.schedule import step_schedule
from pytest_algoperf.registry import WorkloadEntry, WorkloadRegistry
from pytest_algoperf.spec import Workload

Table = list[list[str]]


def peek(entry: WorkloadEntry) -> Workload:
    """A workload object that answers its properties without its data: the base class's ``__init__`` only,
    falling back to a full construction for a workload whose properties need more."""
    framework = next(iter(entry.implementations))
    cls = entry.workload_class(framework)
    workload = cls.__new__(cls)
    Workload.__init__(workload)
    workload.name, workload.base_name = entry.name, entry.base_name or entry.name
    try:
        workload.validation_target_value  # noqa: B018 (a property read: does it need the data?)
    except AttributeError:
        workload = entry.create(framework, None, "cpu")
    return workload


def workloads_table(registry: WorkloadRegistry) -> Table:
    table = [
        [
            "workload",
            "variant of",
            "metric",
            "validation target",
            "test target",
            "budget",
            "eval period",
            "step hint",
            "step mode (eval every / budget)",
            "hardware profile",
            "default suite",
            "frameworks",
        ]
    ]
    for entry in registry:
        table.append(_row(entry))
    return table


def _row(entry: WorkloadEntry) -> list[str]:
    frameworks = ", ".join(entry.implementations)
    try:
        workload = peek(entry)
        values = _values(workload, list(entry.implementations))
    except Exception as error:  # one broken workload must not hide the others
        values = [f"unavailable: {type(error).__name__}: {error}"] + ["-"] * 7
    in_suite = "-" if entry.is_variant else ("yes" if entry.in_default_suite else "no (name it to run)")
    if entry.requires_data:
        in_suite = "needs --algoperf-data-dir"
    return [entry.name, entry.base_name if entry.is_variant else "-", *values, in_suite, frameworks]


def _values(workload: Workload, frameworks: list[str]) -> list[str]:
    direction = ">=" if workload.target_metric_higher_is_better else "<="
    return [
        f"{workload.target_metric_name} ({direction})",
        _number(workload.validation_target_value),
        _number(workload.test_target_value),
        *_speed_values(workload, frameworks),
        str(getattr(workload, "hardware_profile", None) or "-"),
    ]


def _speed_values(workload: Workload, frameworks: list[str]) -> list[str]:
    """Budget, eval period, step hint and step mode: one value, or one per framework where a framework has a
    budget of its own (``hardware.profiles``), as ``49.7 s (pytorch), 84.22 s (jax)``."""
    columns: list[dict[str, str]] = [{}, {}, {}, {}]
    for framework in frameworks if isinstance(workload, CalibratedWorkload) else [None]:
        if framework is not None:
            workload.budget_framework = framework
        schedule = step_schedule(workload, max_global_steps=workload.step_hint)  # a default session's cap
        values = (
            f"{workload.max_allowed_runtime_sec:g} s",
            f"{workload.eval_period_time_sec:g} s",
            str(workload.step_hint),
            f"{schedule.eval_every_steps} / {schedule.step_budget}",
        )
        for column, value in zip(columns, values, strict=True):
            column[framework or ""] = value
    return [
        next(iter(c.values())) if len(set(c.values())) == 1 else ", ".join(f"{v} ({f})" for f, v in c.items())
        for c in columns
    ]


def _number(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:g}"
