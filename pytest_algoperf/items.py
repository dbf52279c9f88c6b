"""Benchmark tests: one pytest item per (submission, framework, workload), collected without any test file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_algoperf.distributed import BatchSizeError
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.loop import RunSettings, run_benchmark
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.tuning import as_hyperparameters, budget_factor

if TYPE_CHECKING:
    from pytest_algoperf.session import AlgoPerfSession, PlannedRun


class TargetMissed(Exception):
    """A run that ended without meeting its validation target: the benchmark test fails."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(describe_miss(result))
        self.result = result


def describe_miss(result: RunResult) -> str:
    best = "nothing" if result.best_validation is None else f"{result.best_validation:.4f}"
    direction = ">=" if result.higher_is_better else "<="
    why = {
        "diverged": "the run diverged (a validation metric became NaN or infinite)",
        "budget spent": f"the {result.budget_sec:g} s budget was spent",
        "training complete": "the submission ended training (TrainingCompleteError)",
    }.get(result.stop_reason, result.stop_reason)
    return (
        f"{result.workload}: validation/{result.target_metric} reached {best}, target {direction} "
        f"{result.validation_target:g}; {why} after {result.global_step} steps and {result.num_evals} evals"
    )


class BenchmarkSuite(pytest.Collector):
    """The root of all benchmark items; its node id is ``algoperf``."""

    def __init__(self, *, algoperf: AlgoPerfSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.algoperf = algoperf

    def collect(self) -> Iterator[BenchmarkItem]:
        for plan in self.algoperf.planned_runs():
            item = BenchmarkItem.from_parent(self, name=plan.test_id, plan=plan)
            if plan.skip_reason:
                item.add_marker(pytest.mark.skip(reason=plan.skip_reason))
            yield item


class BenchmarkItem(pytest.Item):
    """Trains one submission on one workload under AlgoPerf's clock; fails when the target is missed."""

    def __init__(self, *, plan: PlannedRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.result: RunResult | None = None
        self.extra_keyword_matches.update({plan.submission_name, plan.framework, plan.workload})
        if plan.base_workload:  # -k "ogbg_mini and not variant" selects the base workload alone
            self.extra_keyword_matches.update({plan.base_workload, "variant"})

    def setup(self) -> None:
        # Data generation and loading are setup, outside the clock (and cached for later runs).
        self.workload = self.parent.algoperf.workload(self.plan.workload, self.plan.framework)

    def runtest(self) -> None:
        session = self.parent.algoperf
        submission = session.submission(self.plan.submission_spec, self.plan.framework)
        adapter = get_adapter(self.plan.framework)
        self.result = RunResult(
            test_id=self.name,
            submission=submission.name,
            framework=self.plan.framework,
            workload=self.plan.workload,
            seed=self.plan.seed,
            study=self.plan.study,
            trial=self.plan.trial,
        )
        settings = RunSettings(
            seed=self.plan.seed,
            hyperparameters=as_hyperparameters(self.plan.hyperparameters),
            budget_factor=budget_factor(session.settings.ruleset),
            threads=session.threads,
            workers=session.workers,
            data_dir=session.settings.data_dir,
            eval_every_steps=session.settings.eval_every_steps,
            device=self.workload.device,
        )
        try:
            run_benchmark(
                self.workload,
                submission,
                adapter,
                settings,
                self.result,
                on_eval=lambda result, record: self.ihook.pytest_algoperf_eval(result=result, record=record),
            )
        except BaseException as error:
            self.result.stop_reason = "error"
            self.result.error = f"{type(error).__name__}: {error}"
            raise
        if not self.result.reached:
            if self.plan.trials_in_study > 1:
                # In a tuning study most trials may miss: the study's time is its fastest trial's, and the
                # session fails only when a workload's time is inf (see the recorder).
                pytest.xfail(f"trial missed its target (expected while tuning): {describe_miss(self.result)}")
            raise TargetMissed(self.result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, TargetMissed | BatchSizeError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style="short")

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # A line number, not None: pytest asserts one when a skip marker reports the item's location.
        return self.path, 0, f"algoperf benchmark {self.name}"
