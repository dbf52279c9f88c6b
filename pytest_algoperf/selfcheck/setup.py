"""What every measurement starts from: one workload and submission in one framework, set up once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_algoperf.frameworks import FrameworkAdapter, get_adapter
from pytest_algoperf.gate.schedule import step_schedule
from pytest_algoperf.loop import RunSettings
from pytest_algoperf.registry import builtin_entries
from pytest_algoperf.score.search_space import load_search_space
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.spec import Workload
from pytest_algoperf.submission import Submission, load_submission, resolve_submission


@dataclass
class Bench:
    """A workload, a submission at its tuned default point and the settings of a one-thread CPU run."""

    workload: Workload
    framework: str
    adapter: FrameworkAdapter
    submission: Submission
    settings: RunSettings

    @property
    def name(self) -> str:
        return self.workload.name

    def with_settings(self, **changes: Any) -> RunSettings:
        return replace(self.settings, **changes)

    @property
    def eval_every_steps(self) -> int:
        """The gate's step-mode eval interval: the eval period in steps at the calibrated step rate."""
        return step_schedule(self.workload).eval_every_steps


def make_bench(workload: str, framework: str, submission: str, seed: int = 0) -> Bench:
    entry = next((e for e in builtin_entries() if e.name == workload), None)
    if entry is None:
        raise ValueError(f"unknown workload {workload!r}")
    adapter = get_adapter(framework)
    adapter.activate("cpu", 1)
    loaded = load_submission(resolve_submission(submission, framework, Path.cwd()))
    point = load_search_space(loaded.source.search_space_path).first_point()
    settings = RunSettings(seed=seed, hyperparameters=as_hyperparameters(point), threads=1)
    return Bench(entry.create(framework, None, "cpu"), framework, adapter, loaded, settings)
