"""Benchmark tests: one pytest item per (submission, framework, workload), collected without any test file."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _pytest._code.code import Traceback

import pytest_algoperf
from pytest_algoperf.distributed import BatchSizeError
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.gate.paired import measure_paired
from pytest_algoperf.loop import RunSettings, Trainer, run_benchmark
from pytest_algoperf.results import SEED_NOISE_STDS, RunResult
from pytest_algoperf.score.tuning import as_hyperparameters, budget_factor
from pytest_algoperf.submission import Submission
from pytest_algoperf.watchdog import StepHangError

PLUGIN_DIR = Path(pytest_algoperf.__file__).parent

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
        "step budget spent": f"the step budget of {result.step_budget} steps was spent",
        "training complete": "the submission ended training (TrainingCompleteError)",
        "max_global_steps reached": f"training completed at max_global_steps ({result.max_global_steps}, "
        "--algoperf-max-global-steps)",
    }.get(result.stop_reason, result.stop_reason)
    return (
        f"{result.workload}: validation/{result.target_metric} reached {best}, target {direction} "
        f"{result.validation_target:g}; {why} after {result.global_step} steps and {result.num_evals} evals"
    )


def describe_miss_within_noise(result: RunResult) -> str:
    spread = (result.calibration or {}).get("target_seed_std") or 0.0
    return (
        f"missed by no more than {SEED_NOISE_STDS:g} seed standard deviations ({spread:.4g}) of the "
        f"baseline's calibration reruns, as one run of the baseline itself misses AlgoPerf's median target "
        f"about half the time; it counts as missed in scores: {describe_miss(result)}"
    )


class BaselineRefused(Exception):
    """The baseline entry was made under another calibration: comparing would be meaningless."""


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
        refusal = session.calibration_refusal(self.plan, self.workload)
        if refusal is not None:
            self.result.stop_reason, self.result.error = "refused", refusal
            raise BaselineRefused(refusal)
        schedule = session.step_schedule(self.plan, self.workload)
        settings = RunSettings(
            seed=self.plan.seed,
            hyperparameters=as_hyperparameters(self.plan.hyperparameters),
            budget_factor=budget_factor(session.settings.ruleset),
            threads=session.threads,
            workers=session.workers,
            data_dir=session.settings.data_dir,
            eval_every_steps=schedule.eval_every_steps if schedule else session.settings.eval_every_steps,
            step_budget=schedule.step_budget if schedule else None,
            # step mode has its own step budget; the cap is AlgoPerf's, for its time-based runs
            max_global_steps=None if schedule else session.max_global_steps(self.workload),
            device=self.workload.device,
            hang_limit_sec=session.settings.hang_timeout,
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
            self.result.stop_reason = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
            self.result.error = f"{type(error).__name__}: {error}"
            raise
        baseline_code = session.baseline_code.get((self.plan.submission_spec, self.plan.framework))
        if baseline_code is not None and self.result.met_target:
            try:
                self._measure_paired(baseline_code, submission, settings)
            except Exception as error:  # the run itself is measured and kept; only the pairing failed
                self.result.paired = {"error": f"{type(error).__name__}: {error}"}
                error.add_note(
                    f"while measuring step times against the baseline's code {baseline_code.name!r}"
                )
                raise
        self._judge_outcome()

    def _measure_paired(
        self, baseline_code: Submission, candidate: Submission, settings: RunSettings
    ) -> None:
        """Step time of the candidate against the baseline's code, interleaved (``gate.paired``)."""
        session = self.parent.algoperf
        adapter = get_adapter(self.plan.framework)
        point = session.study_points(baseline_code)[self.plan.study][self.plan.trial]
        baseline_settings = RunSettings(**{**vars(settings), "hyperparameters": as_hyperparameters(point)})
        paired = measure_paired(
            lambda: Trainer.start(self.workload, baseline_code, adapter, baseline_settings),
            lambda: Trainer.start(self.workload, candidate, adapter, settings),
            adapter.synchronize,
            seconds=session.settings.paired_sec,
            baseline_code=str(baseline_code.source.path),
        )
        if self.result is not None and paired is not None:
            self.result.paired = paired.to_json()

    def _judge_outcome(self) -> None:
        """Fail on a missed target, unless it was missed within the baseline's seed noise (xfailed: see
        ``RunResult.missed_within_seed_noise``). In step mode a miss means missed within the step budget: a
        target met past the time budget is the gate's to judge (a loaded machine must not turn a trajectory
        into a miss), so it passes with a warning."""
        result = self.result
        assert result is not None
        if result.met_target and not result.reached:
            warnings.warn(
                pytest.PytestWarning(
                    f"{self.name}: met its target at step {result.steps_to_target}, within the step budget "
                    f"of {result.step_budget}, but after {result.time_to_target:.2f} s of submission time, "
                    f"over the {result.budget_sec:g} s time budget; it counts as missed in scores"
                ),
                stacklevel=1,
            )
            return
        if not result.met_target:
            if self.plan.trials_in_study > 1:
                # In a tuning study most trials may miss: the study's time is its fastest trial's, and the
                # session fails only when a workload's time is inf (see the recorder).
                pytest.xfail(f"trial missed its target (expected while tuning): {describe_miss(result)}")
            if result.missed_within_seed_noise:
                pytest.xfail(describe_miss_within_noise(result))
            raise TargetMissed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, TargetMissed | BatchSizeError | StepHangError | BaselineRefused):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style="short")

    def _traceback_filter(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Traceback:
        """An error raised below the plugin (in the submission, or a workload or framework it calls) is shown
        from the first frame outside pytest-algoperf, pytest and pluggy; an error of the plugin itself keeps
        its whole traceback."""
        traceback = excinfo.traceback
        outside = [i for i, entry in enumerate(traceback) if not _in_plugin(Path(str(entry.path)))]
        if outside and any(_in_plugin(Path(str(entry.path))) for entry in traceback[: outside[0]]):
            return traceback[outside[0] :]
        return super()._traceback_filter(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # A line number, not None: pytest asserts one when a skip marker reports the item's location.
        return self.path, 0, f"algoperf benchmark {self.name}"


def _in_plugin(path: Path) -> bool:
    """A frame of pytest-algoperf, pytest or pluggy: machinery a submission's author need not read."""
    return path.is_relative_to(PLUGIN_DIR) or any(part in ("_pytest", "pluggy") for part in path.parts)
