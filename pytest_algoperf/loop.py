"""The timed training loop, exactly as ALGOPERF.md section 3 writes it (see ``BenchmarkClock``).

``Trainer`` is one submission training on one workload: the untimed setup, then one AlgoPerf step per call.
``run_benchmark`` drives it under the clock with evaluations; the regression gate's paired throughput
measurement (``pytest_algoperf.gate.paired``) drives two of them side by side.

Deviations, documented in the README: a run whose validation metrics turn non-finite stops at that eval as
``diverged`` instead of burning the rest of its budget; with a step budget (``RunSettings.step_budget``, the
regression gate's step mode) a run stops after that many steps and the time budget no longer stops it.

Data parallelism (``pytest_algoperf.distributed``): the adapter places the model (DDP-wrapped or replicated),
the global batch must divide over its devices or ranks, and under torchrun every clock reading is the
latest over ranks, so all ranks take the same decisions at the same steps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pytest_algoperf import load
from pytest_algoperf.allocator import freed_memory_kept
from pytest_algoperf.clock import BenchmarkClock
from pytest_algoperf.distributed import check_batch_size, process_group
from pytest_algoperf.frameworks import FrameworkAdapter, set_active_framework
from pytest_algoperf.frameworks.step_keys import StepKeys
from pytest_algoperf.metrics_logger import RunMetricsLogger
from pytest_algoperf.provenance import calibration_record, file_digest
from pytest_algoperf.results import EvalRecord, RunResult
from pytest_algoperf.spec import TrainingCompleteError, Workload
from pytest_algoperf.submission import Submission
from pytest_algoperf.threads import affinity
from pytest_algoperf.watchdog import StepWatchdog

OnEval = Callable[[RunResult, EvalRecord], None]
MIN_HANG_LIMIT_SEC = 30.0


@dataclass
class RunSettings:
    """How one run is measured; the plugin builds it from options, a user's test may build it directly."""

    seed: int
    hyperparameters: Any = None
    data_dir: str | None = None
    budget_sec: float | None = None  # defaults to the workload's max_allowed_runtime_sec x budget_factor
    budget_factor: float = 1.0  # 1.5 under the self-tuning ruleset
    eval_every_steps: int | None = None
    device: str = "cpu"
    threads: int | None = None  # CPU threads for the framework; None leaves its default
    workers: int = 1  # benchmark processes running side by side (pytest-xdist workers)
    # Stop after this many steps; the time budget then no longer stops the run, so a loaded machine cannot
    # change where it ends (the regression gate's step mode, and calibration runs).
    step_budget: int | None = None
    # AlgoPerf's --max_global_steps: training completes at this step (an eval follows), and the time budget
    # still applies. AlgoPerf's scoring runs set it to the workload's step_hint (scoring/run_workloads.py).
    max_global_steps: int | None = None
    hang_limit_sec: float | None = None  # a longer submission step is a hang; default: the budget, >= 30 s


def _empty_train_state() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass
class Trainer:
    """One submission on one workload: ``Trainer.start`` is the untimed setup, ``step`` one AlgoPerf step."""

    workload: Workload
    submission: Submission
    adapter: FrameworkAdapter
    hyperparameters: Any
    batch_size: int
    step_keys: StepKeys
    input_queue: Iterator[Any]
    params: Any
    model_state: Any
    optimizer_state: Any
    params_types: Any  # workload.model_params_types, read once: the parameters' types do not change
    global_step: int = 0
    eval_results: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    keys: Any = None  # this step's keys: data selection, update, prepare_for_eval, eval

    @classmethod
    def start(
        cls, workload: Workload, submission: Submission, adapter: FrameworkAdapter, settings: RunSettings
    ) -> Trainer:
        """Input queue, model init and optimizer init: outside the clock, as in AlgoPerf."""
        set_active_framework(adapter.name)
        workload.attach_metrics_logger(None)  # until a run attaches its own (run_benchmark)
        rng = adapter.make_rng(settings.seed)
        data_rng, opt_init_rng, model_init_rng, rng = adapter.split(rng, 4)
        batch_size = submission.get_batch_size(workload.name, workload.base_name or workload.name)
        check_batch_size(
            submission.name, workload.name, batch_size, adapter.data_parallel_size(), adapter.parallel_unit
        )
        input_queue = workload.build_input_queue(data_rng, "train", settings.data_dir, batch_size)
        params, model_state = adapter.prepare_model(*workload.init_model_fn(model_init_rng))
        try:
            optimizer_state = submission.module.init_optimizer_state(
                workload=workload,
                model_params=params,
                model_state=model_state,
                hyperparameters=settings.hyperparameters,
                rng=opt_init_rng,
            )
        except Exception as error:
            _note(error, submission, "init_optimizer_state")
            raise
        optimizer_state = adapter.prepare_optimizer_state(optimizer_state)
        return cls(
            workload,
            submission,
            adapter,
            settings.hyperparameters,
            batch_size,
            adapter.step_keys(rng),
            input_queue,
            params,
            model_state,
            optimizer_state,
            workload.model_params_types,
        )

    def step(self, train_state: Callable[[], Mapping[str, Any]] = _empty_train_state) -> bool:
        """``data_selection`` then ``update_params``; True when the submission ended training.
        ``train_state`` builds the read-only clock state, for a submission whose signature asks for it."""
        step = self.global_step
        self.keys = keys = self.step_keys(step)
        try:
            batch = self.submission.module.data_selection(
                workload=self.workload,
                input_queue=self.input_queue,
                optimizer_state=self.optimizer_state,
                current_param_container=self.params,
                model_state=self.model_state,
                hyperparameters=self.hyperparameters,
                global_step=step,
                rng=keys[0],
            )
        except Exception as error:
            _note(error, self.submission, "data_selection", step)
            raise
        complete = False
        extra = self.submission.train_state_argument(train_state)
        try:
            self.optimizer_state, self.params, self.model_state = self.submission.module.update_params(
                workload=self.workload,
                current_param_container=self.params,
                current_params_types=self.params_types,
                model_state=self.model_state,
                hyperparameters=self.hyperparameters,
                batch=batch,
                loss_type=self.workload.loss_type,
                optimizer_state=self.optimizer_state,
                eval_results=self.eval_results,
                global_step=step,
                rng=keys[1],
                **extra,
            )
        except TrainingCompleteError:
            complete = True
        except Exception as error:
            _note(error, self.submission, "update_params", step)
            raise
        self.global_step += 1
        return complete

    @property
    def outputs(self) -> tuple[Any, Any, Any]:
        """What the clock synchronises on at the end of a step."""
        return self.optimizer_state, self.params, self.model_state

    def prepare_for_eval(self, function: Callable[..., Any]) -> tuple[Any, Any, Any]:
        try:
            self.optimizer_state, self.params, self.model_state = function(
                workload=self.workload,
                current_param_container=self.params,
                current_params_types=self.params_types,
                model_state=self.model_state,
                hyperparameters=self.hyperparameters,
                loss_type=self.workload.loss_type,
                optimizer_state=self.optimizer_state,
                eval_results=self.eval_results,
                global_step=self.global_step,
                rng=self.keys[2],
            )
        except Exception as error:
            _note(error, self.submission, "prepare_for_eval", self.global_step)
            raise
        return self.outputs

    def evaluate(self, data_dir: str | None) -> dict[str, float]:
        metrics = self.workload.eval_model(
            self.workload.eval_batch_size,
            self.adapter.eval_params(self.params),
            self.model_state,
            self.keys[3],
            data_dir,
            self.global_step,
        )
        return {k: float(v) for k, v in metrics.items()}


def _note(error: Exception, submission: Submission, function: str, step: int | None = None) -> None:
    """Name the submission function and step that raised ``error`` (shown under its traceback)."""
    when = "before the first step" if step is None else f"at step {step}"
    error.add_note(f"raised by {function}() of submission {submission.name!r} {when}")


def run_benchmark(
    workload: Workload,
    submission: Submission,
    adapter: FrameworkAdapter,
    settings: RunSettings,
    result: RunResult,
    on_eval: OnEval | None = None,
) -> RunResult:
    """Train ``submission`` on ``workload`` until both targets are met, the budget is spent, or training
    completes; fill ``result`` in place as it goes, so a run interrupted by an exception keeps its evals."""
    budget = settings.budget_sec or workload.max_allowed_runtime_sec * settings.budget_factor
    _describe(result, workload, settings, budget)
    result.submission_digest = file_digest(submission.source.path)
    adapter.activate(settings.device, settings.threads)
    result.num_devices = adapter.data_parallel_size()
    result.world_size = process_group().world_size
    trainer = Trainer.start(workload, submission, adapter, settings)
    workload.attach_metrics_logger(RunMetricsLogger(result))  # its rows are the run's
    result.batch_size = trainer.batch_size
    prepare_for_eval = submission.function("prepare_for_eval")
    step_budget = settings.step_budget or math.inf
    max_global_steps = settings.max_global_steps or math.inf
    watchdog = StepWatchdog(settings.hang_limit_sec or max(budget, MIN_HANG_LIMIT_SEC))

    clock = BenchmarkClock(
        budget,
        workload.eval_period_time_sec,
        adapter.synchronize,
        settings.eval_every_steps,
        now=process_group().clock(),
    )
    state = {
        "validation_goal_reached": False,
        "test_goal_reached": False,
        "training_complete": False,
        "is_time_remaining": True,
    }

    def train_state() -> MappingProxyType:
        return MappingProxyType(
            {
                **state,
                "accumulated_submission_time": clock.submission_time,
                "accumulated_eval_time": clock.eval_time,
                "accumulated_logging_time": clock.logging_time,
                "last_eval_time": clock.last_eval_time,
                "last_step_end_time": clock.last_step_end_time,
            }
        )

    load_start = load.sample()
    clock.start()
    # Every condition that ends the loop changes only at an eval (a completed training or a spent step
    # budget makes one due), so the steps between evals test nothing else: each microsecond a step spends
    # here is harness overhead on a small model.
    step_budget_spent = False
    try:
        with watchdog.running():
            while True:
                watchdog.begin("data_selection/update_params")
                state["training_complete"] = trainer.step(train_state)
                watchdog.end()
                clock.end_step(trainer.outputs)
                state["training_complete"] |= clock.global_step >= max_global_steps
                # not in train_state, which holds AlgoPerf's keys only
                step_budget_spent = clock.global_step >= step_budget

                if not clock.eval_due(state["training_complete"] or step_budget_spent):
                    continue
                result.global_step = clock.global_step
                result.submission_time = clock.submission_time
                if prepare_for_eval is not None:
                    watchdog.begin("prepare_for_eval")
                    clock.timed_call(lambda: trainer.prepare_for_eval(prepare_for_eval))
                    watchdog.end()
                state["is_time_remaining"] = clock.time_remaining
                if state["is_time_remaining"] or settings.step_budget:
                    score = clock.submission_time
                    with clock.untimed_eval():
                        metrics = trainer.evaluate(settings.data_dir)
                        state["validation_goal_reached"] |= workload.has_reached_validation_target(metrics)
                        state["test_goal_reached"] |= workload.has_reached_test_target(metrics)
                    record = EvalRecord(
                        clock.global_step,
                        score,
                        clock.eval_time,
                        clock.logging_time,
                        clock.total_duration,
                        metrics,
                    )
                    trainer.eval_results.append((clock.global_step, metrics))
                    with clock.untimed_logging():
                        _record_eval(result, workload, record, state)
                        if on_eval is not None:
                            on_eval(result, record)
                    if _diverged(metrics):
                        result.stop_reason = "diverged"
                        break
                # Only here: a reading per step more would cost an all-reduce per step under DDP, and AlgoPerf
                # too restarts the step interval after evals alone.
                clock.resume()
                if not _keep_training(state, bool(settings.step_budget), step_budget_spent):
                    break
    finally:  # a run stopped by an exception (a hang, Ctrl-C) keeps the steps it made
        result.global_step = clock.global_step
        result.submission_time = clock.submission_time

    result.load = load.load_between(load_start, load.sample()).to_json()
    result.eval_time = clock.eval_time
    result.logging_time = clock.logging_time
    result.total_duration = clock.total_duration
    result.stop_reason = result.stop_reason or _stop_reason(
        state, step_budget_spent, clock.global_step >= max_global_steps
    )
    return result


def _describe(result: RunResult, workload: Workload, settings: RunSettings, budget: float) -> None:
    if workload.base_name and workload.base_name != workload.name:
        result.base_workload = workload.base_name
    result.calibration = calibration_record(workload)
    result.target_metric = workload.target_metric_name
    result.higher_is_better = workload.target_metric_higher_is_better
    result.validation_target = workload.validation_target_value
    result.test_target = workload.test_target_value
    result.budget_sec = budget
    result.step_budget = settings.step_budget
    result.max_global_steps = settings.max_global_steps
    result.device = settings.device
    result.hardware_profile = workload.hardware_profile
    result.cuda_visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    result.cpus = sorted(mask) if (mask := affinity()) is not None else None
    result.freed_memory_kept = freed_memory_kept()
    result.eval_every_steps = settings.eval_every_steps
    result.threads = settings.threads
    result.workers = settings.workers
    hp = settings.hyperparameters
    result.hyperparameters = hp._asdict() if hasattr(hp, "_asdict") else hp


def _record_eval(result: RunResult, workload: Workload, record: EvalRecord, state: dict[str, bool]) -> None:
    """Time to target is the score of the first eval that meets the validation target. With a step budget,
    evals go on past the time budget: a target met there has its steps and time, but is not reached."""
    result.evals.append(record)
    value = record.metrics.get(f"validation/{workload.target_metric_name}", math.nan)
    if math.isfinite(value):
        better = max if workload.target_metric_higher_is_better else min
        result.best_validation = (
            value if result.best_validation is None else better(result.best_validation, value)
        )
    if result.steps_to_target is None and workload.has_reached_validation_target(record.metrics):
        result.reached = record.score < result.budget_sec
        result.time_to_target = record.score
        result.steps_to_target = record.global_step
    result.test_reached = state["test_goal_reached"]


def _keep_training(state: dict[str, bool], step_budget: bool, step_budget_spent: bool) -> bool:
    """AlgoPerf's loop condition, after an eval: time left (or a step budget instead), targets not both
    met, training not complete, steps left."""
    return (
        (state["is_time_remaining"] or step_budget)
        and not _goals_reached(state)
        and not state["training_complete"]
        and not step_budget_spent
    )


def _goals_reached(state: dict[str, bool]) -> bool:
    return state["validation_goal_reached"] and state["test_goal_reached"]


def _diverged(metrics: dict[str, float]) -> bool:
    return any(k.startswith("validation/") and not math.isfinite(v) for k, v in metrics.items())


def _stop_reason(state: dict[str, bool], step_budget_spent: bool, at_max_global_steps: bool) -> str:
    if _goals_reached(state):
        return "targets reached"
    if at_max_global_steps:
        return "max_global_steps reached"
    if state["training_complete"]:
        return "training complete"
    if step_budget_spent:
        return "step budget spent"
    return "budget spent"
