"""The state of one pytest-algoperf session: settings, loaded submissions, planned runs and their results.

It lives in ``config.stash`` and is built in ``pytest_configure``, where every user input (options,
submissions, search spaces, baseline file) is validated, so mistakes surface before any training. Under
torchrun it also starts this rank's ``torch.distributed`` process group (``pytest_algoperf.distributed``).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_algoperf.allocator import keep_freed_memory
from pytest_algoperf.calibration import CalibratedWorkload, CalibrationError
from pytest_algoperf.distributed import SINGLE_PROCESS, ProcessGroup, set_process_group, torchrun_environment
from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.gate.baseline_code import resolve_baseline_code
from pytest_algoperf.gate.baseline_file import Baseline, BaselineEntry, load_baseline
from pytest_algoperf.gate.schedule import StepSchedule, step_schedule, uses_step_mode
from pytest_algoperf.hardware import selection
from pytest_algoperf.hardware.gpus import DeviceAssignmentError, gpu_probe_without_reservation
from pytest_algoperf.hardware.profiles import NoProfileError
from pytest_algoperf.options import STEP_HINT, Settings
from pytest_algoperf.provenance import calibration_change, calibration_record
from pytest_algoperf.registry import WorkloadRegistry
from pytest_algoperf.results import RunResult
from pytest_algoperf.score.search_space import SearchSpaceError, load_search_space
from pytest_algoperf.score.tuning import budget_factor, step_cap, study_points, trials_per_study
from pytest_algoperf.spec import Workload
from pytest_algoperf.submission import Submission, SubmissionError, load_submission, resolve_submission
from pytest_algoperf.threads import limit_xla_threads, pin_worker_cpus


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
    hyperparameters: dict[str, Any] | None = None
    trials_in_study: int = 1
    show_study_and_trial: bool = False
    skip_reason: str | None = None
    base_workload: str = ""  # set for a variant: the workload it varies

    @property
    def test_id(self) -> str:
        test_id = f"{self.submission_name}-{self.framework}-{self.workload}"
        return f"{test_id}-study{self.study}-trial{self.trial}" if self.show_study_and_trial else test_id


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
    workers: int = 1  # pytest-xdist workers running benchmarks side by side
    worker_index: int | None = None  # this pytest-xdist worker's number (gw3: 3); None outside workers
    hardware: selection.HardwareChoice = field(default_factory=selection.HardwareChoice)
    threads: int | None = None  # CPU threads per framework in this process
    group: ProcessGroup = SINGLE_PROCESS  # the torchrun ranks this process trains with
    baseline_code: dict[tuple[str, str], Submission] = field(default_factory=dict)  # (spec, framework)
    results: list[RunResult] = field(default_factory=list)
    workload_names: list[str] = field(default_factory=list)  # base workloads and selected variants, in order
    _workloads: dict[tuple[str, str], Workload] = field(default_factory=dict)
    _points: dict[Any, list[list[Any]]] = field(default_factory=dict)
    _scratch: Path | None = None  # baseline code extracted from git

    def prepare(self, invocation_dir: Any, under_xdist: bool = False) -> None:
        """Validate everything a benchmark session needs; raise ``pytest.UsageError`` on the first problem."""
        torchrun = torchrun_environment()
        torchrun = torchrun if torchrun is not None and torchrun.is_distributed else None
        if torchrun is not None:
            self._check_distributed(under_xdist)
        processes = self.workers * (torchrun.local_world_size if torchrun else 1)
        unknown = [name for name in self.settings.workloads if name not in self.registry]
        if unknown:
            known = ", ".join(entry.name for entry in self.registry if not entry.is_variant)
            raise pytest.UsageError(
                f"--algoperf-workloads: unknown workload {', '.join(unknown)}; known: {known}"
            )
        try:
            self.workload_names = self.registry.select(
                self.settings.workloads, self.settings.variants, self.settings.seed
            )
        except ValueError as error:
            raise pytest.UsageError(f"--algoperf-variants: {error}") from None
        offered = self._assign_hardware(processes)
        limit_xla_threads(self.threads)
        keep_freed_memory()  # so that no step faults its activations in again (allocator)
        for framework in self.settings.frameworks:
            try:
                # The xdist controller only asks which device exists; JAX must not reserve the GPUs' memory.
                with (
                    gpu_probe_without_reservation()
                    if under_xdist and self.worker_index is None
                    else nullcontext()
                ):
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
                    self.study_points(submission)
                    if self.settings.baseline_code:
                        self.baseline_code[spec, framework] = self._load_baseline_code(
                            submission, invocation_dir
                        )
                except (SubmissionError, SearchSpaceError) as error:
                    raise pytest.UsageError(str(error)) from None
                self.submissions[spec, framework] = submission
        self._choose_profiles(offered, torchrun)
        if self.settings.baseline is not None:
            try:
                self.baseline = load_baseline(self.settings.baseline)
            except ValueError as error:
                if not (self.settings.update_baseline and not self.settings.baseline.exists()):
                    raise pytest.UsageError(str(error)) from None
        if torchrun is not None:
            self._start_distributed(torchrun)

    def _assign_hardware(self, processes: int) -> dict[tuple[str, str], selection.Offered]:
        """Threads per process (before JAX's backend starts) and this worker's GPU (before CUDA starts);
        returns each workload's hardware profiles."""
        s, hardware = self.settings, self.hardware
        try:
            offered = selection.offered_profiles(self.registry, self.workload_names, s.frameworks)
        except CalibrationError as error:
            raise pytest.UsageError(str(error)) from None
        self.threads = hardware.threads = selection.session_threads(s.threads, processes, offered)
        try:
            selection.assign_accelerator(hardware, s.device, self.workers, self.worker_index, s.share_devices)
            selection.check_cpus(processes, self.threads, s.share_devices)
        except DeviceAssignmentError as error:
            raise pytest.UsageError(str(error)) from None
        cpu_workers = self.workers > 1 and not hardware.gpu_per_worker and not s.share_devices
        if cpu_workers and self.worker_index is not None:
            pin_worker_cpus(self.worker_index, self.threads)
        return offered

    def _choose_profiles(self, offered: dict[tuple[str, str], selection.Offered], torchrun: Any) -> None:
        """Each workload's hardware profile for its framework's device; none matching is a usage error."""
        hardware = self.hardware
        ranks = torchrun.world_size if torchrun is not None else 1
        for framework, device in self.devices.items():
            per_run = len(hardware.visible) if framework == "jax" else ranks  # JAX uses every visible GPU
            hardware.devices[framework] = selection.describe_device(
                device, self.threads or 1, hardware.visible, per_run
            )
        hardware.requested = self.settings.hardware_profile
        try:
            hardware.profiles = selection.resolve_profiles(offered, hardware.devices, hardware.requested)
        except NoProfileError as error:
            raise pytest.UsageError(str(error)) from None

    def _check_distributed(self, under_xdist: bool) -> None:
        if under_xdist:
            raise pytest.UsageError(
                "torchrun and pytest-xdist (-n) cannot be combined: under torchrun every rank must run the "
                "same tests in the same order; drop -n"
            )
        if self.settings.frameworks != ("pytorch",):
            raise pytest.UsageError(
                "under torchrun only --algoperf-framework=pytorch runs (DistributedDataParallel); JAX "
                "shards each batch over all the devices of one process, so run it without torchrun"
            )

    def _start_distributed(self, torchrun: ProcessGroup) -> None:
        """Join the torchrun ranks: every rank runs the same benchmark tests in lockstep, one DDP run each."""
        from pytest_algoperf.frameworks import pytorch_ddp

        self.group = pytorch_ddp.start_process_group(torchrun, self.devices["pytorch"])
        set_process_group(self.group)

    def _load_baseline_code(self, candidate: Submission, invocation_dir: Path) -> Submission:
        """``--algoperf-baseline-code`` for this candidate, imported and checked like a submission."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="algoperf-baseline-code-"))
        spec = self.settings.baseline_code or ""
        source = resolve_baseline_code(spec, candidate.source, Path(invocation_dir), self._scratch)
        code = load_submission(source)
        self.study_points(code)
        return code

    def close(self) -> None:
        """Leave the torchrun process group, if this session joined one; remove extracted baseline code."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        if self.group.is_distributed:
            from pytest_algoperf.frameworks import pytorch_ddp

            pytorch_ddp.stop_process_group()
            set_process_group(SINGLE_PROCESS)
            self.group = SINGLE_PROCESS

    def planned_runs(self) -> list[PlannedRun]:
        """Every (submission, framework, workload, study, trial), in that nesting order."""
        s = self.settings
        names = self.workload_names
        trials = trials_per_study(s.ruleset, s.trials)
        runs = []
        for spec in s.submissions:
            for framework in s.frameworks:
                submission = self.submissions[spec, framework]
                points = self.study_points(submission)
                for name in names:
                    skip = self._skip_reason(name, framework)
                    for study, trial in itertools.product(range(s.studies), range(trials)):
                        runs.append(
                            PlannedRun(
                                spec,
                                submission.name,
                                framework,
                                name,
                                run_seed(s.seed, name, study, trial),
                                study,
                                trial,
                                points[study][trial],
                                trials_in_study=trials,
                                show_study_and_trial=s.studies * trials > 1,
                                skip_reason=skip,
                                base_workload=self._base_of_variant(name),
                            )
                        )
        _check_unique_ids(runs)
        return runs

    def _base_of_variant(self, name: str) -> str:
        entry = self.registry[name]
        return entry.base_name if entry.is_variant else ""

    def _skip_reason(self, name: str, framework: str) -> str | None:
        entry = self.registry[name]
        if framework not in entry.implementations:
            return f"{name} has no {framework} implementation"
        if entry.requires_data and not self.settings.data_dir:
            return entry.requires_data
        return None

    def submission(self, spec: str, framework: str) -> Submission:
        return self.submissions[spec, framework]

    def _baseline_entry(self, plan: PlannedRun) -> BaselineEntry | None:
        if self.baseline is None:
            return None
        return self.baseline.find(plan.submission_name, plan.framework, plan.workload)

    def calibration_refusal(self, plan: PlannedRun, workload: Workload) -> str | None:
        """Why this run cannot be compared with its baseline entry (another calibration made it), or None."""
        entry = self._baseline_entry(plan)
        allowed = self.settings.allow_recalibration or self.settings.update_baseline  # updating replaces it
        if entry is None or entry.calibration is None or allowed:
            return None
        now = calibration_record(workload)
        if now["digest"] == entry.calibration.get("digest"):
            return None
        return (
            f"{plan.workload}: the baseline was made under another calibration "
            f"({calibration_change(entry.calibration, now)}); re-create the baseline with "
            "--algoperf-save-baseline, or compare anyway with --algoperf-allow-recalibration"
        )

    def step_schedule(self, plan: PlannedRun, workload: Workload) -> StepSchedule | None:
        """The run's step schedule in step mode (None in AlgoPerf's time mode): the baseline entry's when it
        has one, so both sessions evaluate at the same steps, else the rule of ``gate.schedule``, its step
        budget at most ``--algoperf-max-global-steps`` (a budget that holds step_hint steps at a step with
        dropout holds more at the baseline's own); ``--algoperf-eval-every-steps`` overrides the eval period
        either way."""
        s = self.settings
        if not uses_step_mode(s.schedule, s.gating):
            return None
        entry = self._baseline_entry(plan)
        if entry is not None and entry.eval_every_steps and entry.step_budget:
            schedule = StepSchedule(entry.eval_every_steps, entry.step_budget)
        else:
            schedule = step_schedule(workload, budget_factor(s.ruleset), self.max_global_steps(workload))
        if s.eval_every_steps:
            schedule = StepSchedule(s.eval_every_steps, schedule.step_budget)
        return schedule

    def max_global_steps(self, workload: Workload) -> int | None:
        """The step at which a time-mode run's training completes (``--algoperf-max-global-steps``)."""
        cap = self.settings.max_global_steps
        if cap == STEP_HINT:
            return step_cap(workload.step_hint, self.settings.ruleset) if workload.step_hint else None
        return cap if isinstance(cap, int) else None

    def workload(self, name: str, framework: str) -> Workload:
        """The workload instance, created once per session so data generation is not repeated."""
        key = (name, framework)
        if key not in self._workloads:
            entry = self.registry[name]
            workload = entry.create(framework, self.settings.data_dir, self.devices[framework])
            if profile := self.hardware.profile_of(name, framework):
                workload.hardware_profile = profile
            if isinstance(workload, CalibratedWorkload):  # its framework's own budget, where it has one
                workload.budget_framework = framework
            self._workloads[key] = workload
        return self._workloads[key]

    def study_points(self, submission: Submission) -> list[list[dict[str, Any] | None]]:
        """``points[study][trial]`` under the session's ruleset (None everywhere for self-tuning)."""
        s = self.settings
        if s.ruleset == "self":
            return [[None] for _ in range(s.studies)]
        path = s.tuning_search_space or submission.source.search_space_path
        if path not in self._points:
            self._points[path] = study_points(load_search_space(path), s.studies, s.trials, s.seed)
        return self._points[path]


def _check_unique_ids(runs: list[PlannedRun]) -> None:
    seen: dict[str, str] = {}
    for run in runs:
        if run.test_id in seen and seen[run.test_id] != run.submission_spec:
            raise pytest.UsageError(
                f"submissions {seen[run.test_id]!r} and {run.submission_spec!r} share the name "
                f"{run.submission_name!r}; rename one folder or file so their results can be told apart"
            )
        seen[run.test_id] = run.submission_spec
