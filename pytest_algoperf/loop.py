"""The timed training loop, exactly as ALGOPERF.md section 3 writes it (see ``BenchmarkClock``).

Deviation, documented in the README: a run whose validation metrics turn non-finite stops at that eval as
``diverged`` instead of burning the rest of its budget; it could not have reached the target either way.

Data parallelism (``pytest_algoperf.distributed``): the adapter places the model (DDP-wrapped or replicated),
the global batch must divide over its devices or ranks, and under torchrun every clock reading is the
latest over ranks, so all ranks take the same decisions at the same steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pytest_algoperf.clock import BenchmarkClock
from pytest_algoperf.distributed import check_batch_size, process_group
from pytest_algoperf.frameworks import FrameworkAdapter
from pytest_algoperf.metrics_logger import RunMetricsLogger
from pytest_algoperf.results import EvalRecord, RunResult
from pytest_algoperf.spec import TrainingCompleteError, Workload
from pytest_algoperf.submission import Submission

OnEval = Callable[[RunResult, EvalRecord], None]


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
    max_steps: int | None = None  # calibration: stop after this many steps, so load cannot change the run


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
    workload.attach_metrics_logger(RunMetricsLogger(result))

    # Untimed setup: input queue, model init, optimizer init.
    adapter.activate(settings.device, settings.threads)
    result.num_devices = adapter.data_parallel_size()
    result.world_size = process_group().world_size
    rng = adapter.make_rng(settings.seed)
    data_rng, opt_init_rng, model_init_rng, rng = adapter.split(rng, 4)
    result.batch_size = submission.get_batch_size(workload.name, workload.base_name or workload.name)
    check_batch_size(
        submission.name, workload.name, result.batch_size, result.num_devices, adapter.parallel_unit
    )
    input_queue = workload.build_input_queue(data_rng, "train", settings.data_dir, result.batch_size)
    params, model_state = adapter.prepare_model(*workload.init_model_fn(model_init_rng))
    hyperparameters = settings.hyperparameters
    optimizer_state = submission.module.init_optimizer_state(
        workload=workload,
        model_params=params,
        model_state=model_state,
        hyperparameters=hyperparameters,
        rng=opt_init_rng,
    )
    optimizer_state = adapter.prepare_optimizer_state(optimizer_state)
    prepare_for_eval = submission.function("prepare_for_eval")

    clock = BenchmarkClock(
        budget,
        workload.eval_period_time_sec,
        adapter.synchronize,
        settings.eval_every_steps,
        now=process_group().clock(),
    )
    eval_results: list[tuple[int, dict[str, float]]] = []
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

    step_limit_reached = False  # kept out of train_state, which holds AlgoPerf's keys only
    clock.start()
    while (
        state["is_time_remaining"]
        and not _goals_reached(state)
        and not state["training_complete"]
        and not step_limit_reached
    ):
        step = clock.global_step
        data_select_rng, update_rng, prep_eval_rng, eval_rng = adapter.split(adapter.fold_in(rng, step), 4)
        batch = submission.module.data_selection(
            workload=workload,
            input_queue=input_queue,
            optimizer_state=optimizer_state,
            current_param_container=params,
            model_state=model_state,
            hyperparameters=hyperparameters,
            global_step=step,
            rng=data_select_rng,
        )
        try:
            optimizer_state, params, model_state = submission.update_params(
                train_state(),
                workload=workload,
                current_param_container=params,
                current_params_types=workload.model_params_types,
                model_state=model_state,
                hyperparameters=hyperparameters,
                batch=batch,
                loss_type=workload.loss_type,
                optimizer_state=optimizer_state,
                eval_results=eval_results,
                global_step=step,
                rng=update_rng,
            )
        except TrainingCompleteError:
            state["training_complete"] = True
        clock.end_step((optimizer_state, params, model_state))
        result.global_step = clock.global_step
        result.submission_time = clock.submission_time
        step_limit_reached = clock.global_step >= (settings.max_steps or math.inf)

        if clock.eval_due(state["training_complete"] or step_limit_reached):
            if prepare_for_eval is not None:
                optimizer_state, params, model_state = clock.timed_call(
                    prepare_for_eval,
                    workload=workload,
                    current_param_container=params,
                    current_params_types=workload.model_params_types,
                    model_state=model_state,
                    hyperparameters=hyperparameters,
                    loss_type=workload.loss_type,
                    optimizer_state=optimizer_state,
                    eval_results=eval_results,
                    global_step=clock.global_step,
                    rng=prep_eval_rng,
                )
            state["is_time_remaining"] = clock.time_remaining
            if state["is_time_remaining"]:
                score = clock.submission_time
                with clock.untimed_eval():
                    del batch
                    metrics = workload.eval_model(
                        workload.eval_batch_size,
                        adapter.eval_params(params),
                        model_state,
                        eval_rng,
                        settings.data_dir,
                        clock.global_step,
                    )
                    metrics = {k: float(v) for k, v in metrics.items()}
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
                eval_results.append((clock.global_step, metrics))
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

    result.submission_time = clock.submission_time
    result.eval_time = clock.eval_time
    result.logging_time = clock.logging_time
    result.total_duration = clock.total_duration
    result.stop_reason = result.stop_reason or _stop_reason(state, step_limit_reached)
    return result


def _describe(result: RunResult, workload: Workload, settings: RunSettings, budget: float) -> None:
    if workload.base_name and workload.base_name != workload.name:
        result.base_workload = workload.base_name
    result.target_metric = workload.target_metric_name
    result.higher_is_better = workload.target_metric_higher_is_better
    result.validation_target = workload.validation_target_value
    result.test_target = workload.test_target_value
    result.budget_sec = budget
    result.device = settings.device
    result.eval_every_steps = settings.eval_every_steps
    result.threads = settings.threads
    result.workers = settings.workers
    hp = settings.hyperparameters
    result.hyperparameters = hp._asdict() if hasattr(hp, "_asdict") else hp


def _record_eval(result: RunResult, workload: Workload, record: EvalRecord, state: dict[str, bool]) -> None:
    """Time to target is the score of the first eval that meets the validation target."""
    result.evals.append(record)
    value = record.metrics.get(f"validation/{workload.target_metric_name}", math.nan)
    if math.isfinite(value):
        better = max if workload.target_metric_higher_is_better else min
        result.best_validation = (
            value if result.best_validation is None else better(result.best_validation, value)
        )
    if not result.reached and workload.has_reached_validation_target(record.metrics):
        result.reached = True
        result.time_to_target = record.score
        result.steps_to_target = record.global_step
    result.test_reached = state["test_goal_reached"]


def _goals_reached(state: dict[str, bool]) -> bool:
    return state["validation_goal_reached"] and state["test_goal_reached"]


def _diverged(metrics: dict[str, float]) -> bool:
    return any(k.startswith("validation/") and not math.isfinite(v) for k, v in metrics.items())


def _stop_reason(state: dict[str, bool], step_limit_reached: bool) -> str:
    if _goals_reached(state):
        return "targets reached"
    if state["training_complete"]:
        return "training complete"
    if step_limit_reached:
        return "step limit"
    return "budget spent"
