"""Choosing trials: each study's best trial, and each workload's time (ALGOPERF.md section 4).

A study's time is the time of its best trial that reached the target (inf if none did); a workload's time is
the median over studies, inf counting as a value. Which trial is "best" has two readings in AlgoPerf:

- ``fastest``: the trial with the least submission time to the target. AlgoPerf's documentation says so
  ("the tuning trial with the fastest training time to achieve the validation target", DOCUMENTATION.md
  0.5 and 0.6), and pytest-algoperf sessions follow it.
- ``fewest-evals``: the trial that reached the target at the earliest eval, ties to the first trial in
  folder order; its time is that eval's submission time. AlgoPerf's scoring code does this
  (``get_best_trial_index`` in ``scoring/performance_profile.py``, v0.5 and v0.6), and its published
  leaderboards were computed with it. Eval periods are in wall time, so the two can pick different trials.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_algoperf.results import RunResult
from pytest_algoperf.score.profiles import check_time

BEST_TRIAL_RULES = ("fewest-evals", "fastest")

# times[framework][submission][workload]
TimesByFramework = dict[str, dict[str, dict[str, float]]]


def run_time(result: RunResult) -> float:
    """A run's time to target; inf when it missed."""
    return result.time_to_target if result.reached and result.time_to_target else math.inf


def evals_to_target(result: RunResult) -> int | None:
    """The 0-based index of the first eval that met the target, None when the run missed it."""
    if not math.isfinite(run_time(result)):
        return None
    for index, record in enumerate(result.evals):
        if record.global_step == result.steps_to_target and record.score == result.time_to_target:
            return index
    return len(result.evals)  # reached, but its evals were not kept: rank it after any with evals


def best_trial(trials: Sequence[RunResult], rule: str = "fastest") -> RunResult | None:
    """The trial a study is scored by under ``rule`` (see the module docstring); None if none reached.

    ``trials`` must be in folder order (trial_1, trial_2, ...): ties go to the first.
    """
    if rule not in BEST_TRIAL_RULES:
        raise ValueError(f"unknown best-trial rule {rule!r}; choose one of {', '.join(BEST_TRIAL_RULES)}")
    reached = [t for t in trials if math.isfinite(run_time(t))]
    if not reached:
        return None
    if rule == "fastest":
        return min(reached, key=run_time)
    return min(reached, key=lambda t: evals_to_target(t) or 0)


def study_time(trial_times: Sequence[float]) -> float:
    """A study's time: its fastest trial that reached the target, inf if none did (ALGOPERF.md section 4)."""
    if len(trial_times) == 0:
        raise ValueError("study_time needs at least one trial time")
    return min(check_time(t, f"trial {i}") for i, t in enumerate(trial_times))


def workload_time(study_times: Sequence[float]) -> float:
    """A workload's time: the median over studies, where inf counts as a value (ALGOPERF.md section 4).

    With an even count it is the mean of the two middle values, so inf if either is inf (as numpy's median,
    which AlgoPerf uses). Hence the result is inf exactly when at least half of the studies missed.
    """
    n = len(study_times)
    if n == 0:
        raise ValueError("workload_time needs at least one study time")
    ordered = sorted(check_time(t, f"study {i}") for i, t in enumerate(study_times))
    if n % 2:
        return ordered[n // 2]
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


@dataclass(frozen=True)
class StudyChoice:
    """One study of one (framework, submission, workload): its trials and the one it is scored by."""

    framework: str
    submission: str
    workload: str
    study: int
    trials: tuple[RunResult, ...]
    chosen: RunResult | None

    @property
    def time(self) -> float:
        return math.inf if self.chosen is None else run_time(self.chosen)


def choose_trials(results: Iterable[RunResult], rule: str = "fastest") -> list[StudyChoice]:
    """Every study's choice, ordered by framework, submission, workload and study."""
    studies: dict[tuple[str, str, str, int], list[RunResult]] = defaultdict(list)
    for result in results:
        studies[result.framework, result.submission, result.workload, result.study].append(result)
    choices = []
    for (framework, submission, workload, study), trials in sorted(studies.items()):
        ordered = tuple(sorted(trials, key=lambda r: r.trial))
        choices.append(
            StudyChoice(framework, submission, workload, study, ordered, best_trial(ordered, rule))
        )
    return choices


def workload_times(results: Iterable[RunResult], rule: str = "fastest") -> TimesByFramework:
    """Per (framework, submission, workload): the median over studies of each study's best trial's time."""
    studies: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for choice in choose_trials(results, rule):
        studies[choice.framework, choice.submission, choice.workload].append(choice.time)
    table: TimesByFramework = defaultdict(lambda: defaultdict(dict))
    for (framework, submission, workload), times in studies.items():
        table[framework][submission][workload] = workload_time(times)
    return {f: {s: dict(w) for s, w in subs.items()} for f, subs in table.items()}
