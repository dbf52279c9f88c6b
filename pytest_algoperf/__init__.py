"""pytest-algoperf: training-algorithm benchmarks as pytest tests, following MLCommons AlgoPerf."""

from pytest_algoperf.clock import BenchmarkClock
from pytest_algoperf.registry import WorkloadEntry, WorkloadRegistry
from pytest_algoperf.results import EvalRecord, RunResult
from pytest_algoperf.spec import (
    ForwardPassMode,
    LossType,
    ParameterType,
    TrainingCompleteError,
    Workload,
)

__all__ = [
    "BenchmarkClock",
    "EvalRecord",
    "ForwardPassMode",
    "LossType",
    "ParameterType",
    "RunResult",
    "TrainingCompleteError",
    "Workload",
    "WorkloadEntry",
    "WorkloadRegistry",
]
