"""Same-seed repeats of a whole run to its target: how much the time to target moves, whether the steps to
target stay the same, and how much of the wall time the evals take."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from pytest_algoperf.gate.schedule import step_schedule
from pytest_algoperf.loop import run_benchmark
from pytest_algoperf.results import RunResult
from pytest_algoperf.selfcheck.setup import Bench


@dataclass(frozen=True)
class Repeats:
    schedule: str  # "steps" (the gate's step mode) or "time" (AlgoPerf's)
    times: tuple[float | None, ...]  # time to target of each repeat; None where it missed
    steps: tuple[int | None, ...]
    eval_share: float  # eval time over wall time (setup excluded), over all repeats

    @property
    def cv(self) -> float | None:
        """Coefficient of variation of the times to target (None unless every repeat met the target)."""
        times = [t for t in self.times if t is not None]
        if len(times) < 2 or len(times) < len(self.times):
            return None
        return statistics.stdev(times) / statistics.mean(times)

    @property
    def same_steps(self) -> bool:
        return len(set(self.steps)) == 1 and None not in self.steps


def repeats(bench: Bench, count: int, schedule: str) -> Repeats:
    if schedule == "steps":
        plan = step_schedule(bench.workload)
        settings = bench.with_settings(eval_every_steps=plan.eval_every_steps, step_budget=plan.step_budget)
    else:
        settings = bench.settings
    results = []
    for _ in range(count):
        result = RunResult("selfcheck", bench.submission.name, bench.framework, bench.name, settings.seed)
        results.append(run_benchmark(bench.workload, bench.submission, bench.adapter, settings, result))
    eval_time = sum(r.eval_time for r in results)
    wall = sum(r.total_duration for r in results)
    return Repeats(
        schedule,
        tuple(r.time_to_target if r.met_target else None for r in results),
        tuple(r.steps_to_target for r in results),
        eval_time / wall if wall > 0 else 0.0,
    )
