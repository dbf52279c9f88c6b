"""``workload.metrics_logger`` during a run: AlgoPerf's ``MetricLogger`` API over the run's result.

AlgoPerf's submissions log training scalars with
``workload.metrics_logger.append_scalar_metrics({'loss': ..., 'grad_norm': ...}, global_step)``. AlgoPerf
writes each such row, and every eval row, to the trial's ``measurements.csv`` (``eval_measurements.csv``
holds the eval rows alone). Here each row is kept in ``RunResult.logged_metrics``, so it reaches
results.json (and the pytest-xdist controller) with the run, and the run's folder gets AlgoPerf's
``measurements.csv`` (:func:`pytest_algoperf.reporting.files.write_measurements`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_algoperf.results import RunResult


def scalar(value: Any) -> float | str:
    """A logged value as a number: Python and numpy numbers, one-element torch tensors and JAX arrays;
    anything else is kept as its text rather than failing the run."""
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return str(value)


class RunMetricsLogger:
    """Collects a submission's logged scalars into ``result.logged_metrics``, one row per call."""

    def __init__(self, result: RunResult) -> None:
        self.result = result

    def append_scalar_metrics(
        self,
        metrics: Mapping[str, Any],
        global_step: int,
        preemption_count: int | None = None,
        is_eval: bool = False,
    ) -> None:
        """AlgoPerf's signature. ``is_eval`` rows are kept like any other: the harness records its own evals
        (runs are never preempted here, so ``preemption_count`` is kept only when given)."""
        row: dict[str, Any] = {name: scalar(value) for name, value in metrics.items()}
        row["global_step"] = int(global_step)
        if preemption_count is not None:
            row["preemption_count"] = int(preemption_count)
        self.result.logged_metrics.append(row)
