"""What one benchmark run measured, as plain data that round-trips through JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

# A run that misses its target by more than this many seed standard deviations of the baseline is worse
# than the baseline beyond its seed noise (a normal seed falls that far short 0.13% of the time).
SEED_NOISE_STDS = 3.0


@dataclass
class EvalRecord:
    """One untimed evaluation, with the clock's readings at that point (an ``eval_measurements.csv`` row)."""

    global_step: int
    score: float  # submission time when the eval began
    accumulated_eval_time: float
    accumulated_logging_time: float
    total_duration: float
    metrics: dict[str, float]


@dataclass
class RunResult:
    """One (submission, framework, workload, study, trial) run; the unit of every report and of the gate."""

    test_id: str
    submission: str
    framework: str
    workload: str
    seed: int
    base_workload: str = ""  # a variant's base workload; empty for a base workload
    study: int = 0
    trial: int = 0
    hyperparameters: dict[str, Any] | None = None
    batch_size: int = 0
    device: str = "cpu"
    threads: int | None = None
    workers: int = 1  # pytest-xdist workers benchmarking side by side
    num_devices: int = 1  # devices (JAX) or ranks (PyTorch DDP) each global batch was split over
    world_size: int = 1  # processes training this run together (torchrun ranks)
    hardware_profile: str = ""  # whose budget, eval period and step rate applied; "" for a workload's own
    cuda_visible_devices: str | None = None  # the GPUs this run's process saw (one per xdist worker)
    cpus: list[int] | None = None  # the CPUs this run's process could use (its own, under pytest-xdist)
    freed_memory_kept: bool = False  # its process kept freed memory (pytest_algoperf.allocator)
    target_metric: str = ""
    higher_is_better: bool = True
    validation_target: float = math.nan
    test_target: float = math.nan
    budget_sec: float = math.nan
    eval_every_steps: int | None = None  # None: AlgoPerf's time-based eval schedule
    step_budget: int | None = (
        None  # the gate's step mode: the run stops after this many steps, not at budget_sec
    )
    max_global_steps: int | None = None  # training completed at this step (AlgoPerf's --max_global_steps)
    reached: bool = False  # AlgoPerf's sense: the validation target was met within the time budget
    test_reached: bool = False
    # Of the first eval that met the validation target; with a step budget it may lie past the time budget
    # (then ``reached`` is False: the run met its target, but too late to count).
    time_to_target: float | None = None
    steps_to_target: int | None = None
    best_validation: float | None = None
    submission_time: float = 0.0
    eval_time: float = 0.0
    logging_time: float = 0.0
    total_duration: float = 0.0
    global_step: int = 0
    stop_reason: str = ""
    error: str | None = None
    calibration: dict[str, Any] | None = None  # pytest_algoperf.provenance.calibration_record: what judged it
    submission_digest: str | None = None  # of the submission file that ran
    load: dict[str, Any] | None = None  # pytest_algoperf.load.LoadReport: what other processes took meanwhile
    paired: dict[str, Any] | None = None  # pytest_algoperf.gate.paired: step time against the baseline's code
    evals: list[EvalRecord] = field(default_factory=list)
    logged_metrics: list[dict[str, Any]] = field(default_factory=list)  # workload.metrics_logger's rows

    @property
    def key(self) -> str:
        """The regression gate's key: what stays the same when the same benchmark is run again."""
        return f"{self.submission}/{self.framework}/{self.workload}"

    @property
    def met_target(self) -> bool:
        """The validation target was met at some eval, within the time budget or (step mode) past it."""
        return self.steps_to_target is not None

    @property
    def missed_within_seed_noise(self) -> bool:
        """Missed, but by at most ``SEED_NOISE_STDS`` of the calibration reruns' seed spread: AlgoPerf puts a
        target at the median of the baseline's seeds, so one run of the baseline itself misses about half
        the time by this much. A diverged run, or one without a recorded spread, is no such miss."""
        spread = (self.calibration or {}).get("target_seed_std")
        if self.met_target or not spread or self.best_validation is None or self.stop_reason == "diverged":
            return False
        shortfall = self.validation_target - self.best_validation
        return (shortfall if self.higher_is_better else -shortfall) <= SEED_NOISE_STDS * spread

    @property
    def contended(self) -> bool:
        return bool(self.load and self.load.get("contended"))

    @property
    def num_evals(self) -> int:
        return len(self.evals)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["num_evals"] = self.num_evals
        return _finite_or_none(data)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["evals"] = [EvalRecord(**e) for e in data.get("evals", [])]
        for name in NAN_FIELDS:  # JSON holds NaN as null
            if fields.get(name, 0.0) is None:
                fields[name] = math.nan
        return cls(**fields)


NAN_FIELDS = tuple(
    name
    for name, spec in RunResult.__dataclass_fields__.items()
    if isinstance(spec.default, float) and math.isnan(spec.default)
)


def _finite_or_none(value: Any) -> Any:
    """Replace NaN and infinities, which strict JSON cannot hold, by null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value
