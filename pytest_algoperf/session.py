"""The state of one pytest-algoperf session: settings, loaded submissions, planned runs and their results.

It lives in ``config.stash`` and is built in ``pytest_configure``, where every user input (options,
submissions, search spaces, baseline file) is validated, so mistakes surface before any training.
"""

from __future__ import annotations

import collections
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from pytest_algoperf.baseline import Baseline, load_baseline
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.options import Settings
from pytest_algoperf.registry import WorkloadRegistry
from pytest_algoperf.results import RunResult
from pytest_algoperf.search_space import SearchSpaceError, load_search_space
from pytest_algoperf.spec import Workload
from pytest_algoperf.submission import Submission, SubmissionError, load_submission, resolve_submission


@dataclass(frozen=True)
class PlannedRun:
    """One benchmark test before it runs."""

    submission_spec: str
    submission_name: str
    framework: str
    workload: str
    seed: int
    study: int = 0
    trial: int = 0
    skip_reason: str | None = None

    @property
    def test_id(self) -> str:
        return f"{self.submission_name}-{self.framework}-{self.workload}"


def run_seed(session_seed: int, workload: str, study: int, trial: int) -> int:
    """A run's seed, independent of the submission so every submission sees the same data order and init
    (common random numbers make comparisons less noisy), and stable across processes (no ``hash()``)."""
    entropy = [session_seed, zlib.crc32(workload.encode()), study, trial]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass
class AlgoPerfSession:
    settings: Settings
    registry: WorkloadRegistry
    devices: dict[str, str] = field(default_factory=dict)  # framework -> resolved device
    submissions: dict[tuple[str, str], Submission] = field(default_factory=dict)
    baseline: Baseline | None = None
    results: list[RunResult] = field(default_factory=list)
    _workloads: dict[tuple[str, str], Workload] = field(default_factory=dict)
    _hyperparameters: dict[str, Any] = field(default_factory=dict)

    def prepare(self, invocation_dir: Any) -> None:
        """Validate everything a benchmark session needs; raise ``pytest.UsageError`` on the first problem."""
        unknown = [name for name in self.settings.workloads if name not in self.registry]
        if unknown:
            known = ", ".join(entry.name for entry in self.registry)
            raise pytest.UsageError(
                f"--algoperf-workloads: unknown workload {', '.join(unknown)}; known: {known}"
            )
        for framework in self.settings.frameworks:
            try:
                self.devices[framework] = get_adapter(framework).select_device(self.settings.device)
            except ImportError as error:
                raise pytest.UsageError(
                    f"--algoperf-framework={framework} needs the {error.name} package: "
                    f"pip install 'pytest-algoperf[{framework}]'"
                ) from None
            except ValueError as error:
                raise pytest.UsageError(str(error)) from None
            for spec in self.settings.submissions:
                try:
                    submission = load_submission(resolve_submission(spec, framework, invocation_dir))
                    self.hyperparameters(submission)
                except (SubmissionError, SearchSpaceError) as error:
                    raise pytest.UsageError(str(error)) from None
                self.submissions[spec, framework] = submission
        if self.settings.baseline is not None:
            try:
                self.baseline = load_baseline(self.settings.baseline)
            except ValueError as error:
                raise pytest.UsageError(str(error)) from None

    def planned_runs(self) -> list[PlannedRun]:
        names = list(self.settings.workloads) or self.registry.base_names()
        runs = []
        for spec in self.settings.submissions:
            for framework in self.settings.frameworks:
                submission = self.submissions[spec, framework]
                for name in names:
                    entry = self.registry[name]
                    skip = None
                    if framework not in entry.implementations:
                        skip = f"{name} has no {framework} implementation"
                    elif entry.requires_data and not self.settings.data_dir:
                        skip = entry.requires_data
                    seed = run_seed(self.settings.seed, name, 0, 0)
                    runs.append(PlannedRun(spec, submission.name, framework, name, seed, skip_reason=skip))
        _check_unique_ids(runs)
        return runs

    def submission(self, spec: str, framework: str) -> Submission:
        return self.submissions[spec, framework]

    def workload(self, name: str, framework: str) -> Workload:
        """The workload instance, created once per session so data generation is not repeated."""
        key = (name, framework)
        if key not in self._workloads:
            entry = self.registry[name]
            self._workloads[key] = entry.create(framework, self.settings.data_dir, self.devices[framework])
        return self._workloads[key]

    def hyperparameters(self, submission: Submission) -> Any:
        """The search space's first point (the tuned default), as the namedtuple submissions receive."""
        path = submission.source.search_space_path
        if path not in self._hyperparameters:
            point = load_search_space(path).first_point()
            self._hyperparameters[path] = collections.namedtuple("Hyperparameters", sorted(point))(**point)
        return self._hyperparameters[path]


def _check_unique_ids(runs: list[PlannedRun]) -> None:
    seen: dict[str, str] = {}
    for run in runs:
        if run.test_id in seen and seen[run.test_id] != run.submission_spec:
            raise pytest.UsageError(
                f"submissions {seen[run.test_id]!r} and {run.submission_spec!r} share the name "
                f"{run.submission_name!r}; rename one folder or file so their results can be told apart"
            )
        seen[run.test_id] = run.submission_spec
