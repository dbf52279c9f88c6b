"""In-process measurements of one workload and framework: the harness's overhead, data selection's share,
the bare step time, and what ten times more evals do to submission time."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from pytest_algoperf.gate.paired import ratio_estimate
from pytest_algoperf.loop import Trainer, run_benchmark
from pytest_algoperf.results import RunResult
from pytest_algoperf.selfcheck.setup import Bench

NO_EVALS = 10**9  # an eval interval no run reaches: only the first eval (after step 1) and the last


@dataclass(frozen=True)
class Overhead:
    bare_step_sec: float
    harness_step_sec: float
    ratio: float  # median over pairs of harness / bare
    low: float
    high: float
    pairs: int
    steps: int


def select(trainer: Trainer, step: int, rng: Any) -> Any:
    """The submission's own ``data_selection``, called as the harness calls it."""
    return trainer.submission.module.data_selection(
        workload=trainer.workload,
        input_queue=trainer.input_queue,
        optimizer_state=trainer.optimizer_state,
        current_param_container=trainer.params,
        model_state=trainer.model_state,
        hyperparameters=trainer.hyperparameters,
        global_step=step,
        rng=rng,
    )


def bare_block(bench: Bench, steps: int) -> float:
    """Seconds a step of the submission's own calls takes: one key, one synchronisation at the end."""
    trainer = Trainer.start(bench.workload, bench.submission, bench.adapter, bench.settings)
    trainer.step()  # the first step compiles and fills caches: outside, as the harness's block leaves it out
    bench.adapter.synchronize(trainer.outputs)
    module, workload, rng = bench.submission.module, bench.workload, trainer.keys[1]
    begin = time.perf_counter()
    for step in range(1, steps + 1):
        batch = select(trainer, step, rng)
        trainer.optimizer_state, trainer.params, trainer.model_state = module.update_params(
            workload=workload,
            current_param_container=trainer.params,
            current_params_types=trainer.params_types,
            model_state=trainer.model_state,
            hyperparameters=trainer.hyperparameters,
            batch=batch,
            loss_type=workload.loss_type,
            optimizer_state=trainer.optimizer_state,
            eval_results=[],
            global_step=step,
            rng=rng,
        )
    bench.adapter.synchronize(trainer.outputs)
    return (time.perf_counter() - begin) / steps


def harness_run(bench: Bench, steps: int, eval_every_steps: int = NO_EVALS) -> RunResult:
    """``run_benchmark`` for ``steps`` steps after the first, with no target to stop it early."""
    result = RunResult("selfcheck", bench.submission.name, bench.framework, bench.name, bench.settings.seed)
    settings = bench.with_settings(eval_every_steps=eval_every_steps, step_budget=steps + 1, budget_sec=1e9)
    return run_benchmark(bench.workload, bench.submission, bench.adapter, settings, result)


def steps_after_the_first(result: RunResult) -> float:
    """Submission seconds per step after step 1 (whose time includes compilation and first touches)."""
    return (result.submission_time - result.evals[0].score) / (result.global_step - 1)


def harness_block(bench: Bench, steps: int) -> float:
    return steps_after_the_first(harness_run(bench, steps))


def overhead(bench: Bench, block_sec: float, pairs: int) -> Overhead:
    """Bare and harness blocks of the same steps in ABBA order; the median ratio and its interval."""
    probe = bare_block(bench, 5)
    steps = max(5, round(block_sec / probe))
    bare, harness = [], []
    for pair in range(pairs):
        order = (bare_block, harness_block) if pair % 2 == 0 else (harness_block, bare_block)
        first, second = (measure(bench, steps) for measure in order)
        bare.append(first if pair % 2 == 0 else second)
        harness.append(second if pair % 2 == 0 else first)
    ratio, low, high, _ = ratio_estimate([h / b for h, b in zip(harness, bare, strict=True)])
    return Overhead(statistics.median(bare), statistics.median(harness), ratio, low, high, pairs, steps)


def data_selection_share(bench: Bench, steps: int, bare_step_sec: float) -> float:
    """``data_selection`` alone, as a share of a bare step."""
    trainer = Trainer.start(bench.workload, bench.submission, bench.adapter, bench.settings)
    begin = time.perf_counter()
    for step in range(steps):
        select(trainer, step, trainer.step_keys(step)[0])
    return (time.perf_counter() - begin) / steps / bare_step_sec


def frequent_evals(bench: Bench) -> tuple[float, int]:
    """Submission time per step with evals ten times as often as the default, over the default's, on the
    same steps (one default eval period); and how many evals the frequent run made."""
    period = bench.eval_every_steps
    default = harness_run(bench, period, eval_every_steps=period)
    frequent = harness_run(bench, period, eval_every_steps=max(1, period // 10))
    return steps_after_the_first(frequent) / steps_after_the_first(default), frequent.num_evals
