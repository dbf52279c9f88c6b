"""Hardware profiles: a workload's budget, eval period and calibrated step rate on one kind of hardware.

In a workload's ``calibration.json`` the targets (quality) sit in the entry and are shared; each profile under
its ``profiles`` key holds what depends on speed, with the device it was measured on and how::

    "ogbg_mini": {
      "validation_target": ..., "test_target": ..., "step_hint": 1000, "command": "...", "measured": {...},
      "profiles": {
        "cpu-1thread": {
          "device": "cpu", "threads": 1,
          "max_allowed_runtime_sec": 31.55, "eval_period_time_sec": 3.0, "steps_in_budget": 1040,
          "command": "python -m pytest_algoperf.calibrate ...", "machine": "AMD EPYC", "date": "2026-11-27"
        }
      }
    }

Where the frameworks' step rates differ on that hardware, a profile's ``by_framework`` holds each
framework's own budget by the same rule (its baseline reaches the target at about 3/4 of it), with its steps
in the budget: ``"by_framework": {"pytorch": {"max_allowed_runtime_sec": 49.7, "steps_in_budget": 1154}}``.
Its keys override the profile's for runs in that framework; the profile's own budget is the slowest
framework's, and serves every framework that ``by_framework`` does not name.

A profile's device is ``cpu`` with the CPU threads per process, or ``cuda`` with the GPU model (as
``nvidia-smi -L`` names it) and the number of GPUs one run trains on. A session's device matches a profile
when all of these are equal; the CPU model is recorded (``machine``) but not matched, so a CPU profile serves
any CPU at that thread count. A *derived* profile (``derive``) carries ``derived``: the profile it was scaled
from and the step rates compared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEVICE_KEYS = ("device", "threads", "gpu", "gpus")
BUDGET_KEYS = ("max_allowed_runtime_sec", "eval_period_time_sec")
BY_FRAMEWORK = "by_framework"
# How many times longer the baseline's step is with AlgoPerf's baseline dropout (``dropout_cost``): recorded
# where it stretched the framework's budget.
DROPOUT_STEP_COST = "dropout_step_cost"
# What a framework may set for itself (a note says why an eval period was set by hand).
FRAMEWORK_KEYS = (
    "max_allowed_runtime_sec",
    "eval_period_time_sec",
    "steps_in_budget",
    "eval_period_note",
    DROPOUT_STEP_COST,
)


@dataclass(frozen=True)
class DeviceDescription:
    """What budgets depend on: the device kind, and CPU threads or the GPU model and count."""

    kind: str  # "cpu" or "cuda"
    threads: int | None = None  # CPU threads per process (cpu)
    gpu_model: str | None = None  # "NVIDIA H200" (cuda); None when it could not be told
    gpus: int = 1  # GPUs one run trains on (cuda)

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> DeviceDescription:
        kind = str(values.get("device", "cpu"))
        if kind == "cpu":
            return cls("cpu", threads=int(values.get("threads", 1)))
        gpu = values.get("gpu")
        return cls(kind, gpu_model=str(gpu) if gpu else None, gpus=int(values.get("gpus", 1)))

    def to_json(self) -> dict[str, Any]:
        if self.kind == "cpu":
            return {"device": "cpu", "threads": self.threads}
        return {"device": self.kind, "gpu": self.gpu_model, "gpus": self.gpus}

    def matches(self, other: DeviceDescription) -> bool:
        if self.kind != other.kind:
            return False
        if self.kind == "cpu":
            return self.threads == other.threads
        known = self.gpu_model is not None and other.gpu_model is not None
        return known and _model_key(self.gpu_model) == _model_key(other.gpu_model) and self.gpus == other.gpus

    def describe(self) -> str:
        if self.kind == "cpu":
            return f"cpu with {self.threads} thread{'s' if self.threads != 1 else ''}"
        count = f"{self.gpus}x " if self.gpus != 1 else ""
        return f"{self.kind} on {count}{self.gpu_model or 'a GPU of unknown model'}"

    def default_profile_name(self) -> str:
        """``cpu-1thread``, ``cpu-4threads``, ``cuda-nvidia-h200``, ``cuda-8x-nvidia-h100-80gb-hbm3``."""
        if self.kind == "cpu":
            return f"cpu-{self.threads}thread{'s' if self.threads != 1 else ''}"
        count = f"{self.gpus}x-" if self.gpus != 1 else ""
        return f"{self.kind}-{count}{_model_key(self.gpu_model or 'unknown-gpu')}"


def _model_key(model: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")


@dataclass(frozen=True)
class HardwareProfile:
    """One workload's numbers under one profile, with where they came from."""

    name: str
    device: DeviceDescription
    max_allowed_runtime_sec: float
    eval_period_time_sec: float
    steps_in_budget: int | None = None  # the calibration's fastest framework's steps in the budget
    command: str = ""
    machine: str = ""
    derived_from: str | None = None  # set for a profile scaled from another by step rate
    framework: str | None = None  # set when ``by_framework`` gave this framework its own budget

    @classmethod
    def from_json(cls, name: str, values: Mapping[str, Any], framework: str | None = None) -> HardwareProfile:
        """The profile ``name`` as ``values`` store it; for a run in ``framework``, with that framework's own
        budget where ``by_framework`` has one."""
        own = values.get(BY_FRAMEWORK, {}).get(framework) if framework else None
        if own:
            unknown = set(own) - set(FRAMEWORK_KEYS)
            if unknown:
                raise ValueError(f"{BY_FRAMEWORK}.{framework} sets {sorted(unknown)}; only {FRAMEWORK_KEYS}")
            values = {**values, **own}
        steps = values.get("steps_in_budget")
        derived = values.get("derived")
        return cls(
            name,
            DeviceDescription.from_json(values),
            float(values["max_allowed_runtime_sec"]),
            float(values["eval_period_time_sec"]),
            int(steps) if steps is not None else None,
            str(values.get("command", "")),
            str(values.get("machine", "")),
            str(derived["from"]) if isinstance(derived, Mapping) and "from" in derived else None,
            framework if own else None,
        )

    def describe(self) -> str:
        """``cpu-1thread (cpu with 1 thread; AMD EPYC)``, with ``derived from ...`` for a derived one."""
        details = [self.device.describe(), *([self.machine] if self.machine else [])]
        if self.derived_from:
            details.append(f"derived from {self.derived_from} by step rate")
        if self.framework:
            details.append(f"{self.framework}'s own budget")
        return f"{self.name} ({'; '.join(details)})"


class NoProfileError(LookupError):
    """No hardware profile fits a session's device; the message says how to make or choose one."""


def choose_profile(
    offered: Mapping[str, DeviceDescription], device: DeviceDescription, requested: str | None = None
) -> str | None:
    """The profile a session on ``device`` uses among ``offered`` (name -> device): ``requested`` when given
    (``--algoperf-hardware-profile``), else the first whose device matches; None when none does."""
    if requested:
        return requested if requested in offered else None
    return next((name for name, theirs in offered.items() if theirs.matches(device)), None)


def fitting_threads(offered_threads: set[int], share: int) -> int:
    """``--algoperf-threads=auto``: the thread count of the largest CPU profile that fits in this process's
    share of the cores, so that budgets measured with that many threads apply; the share when none fits."""
    fitting = [threads for threads in offered_threads if threads <= share]
    return max(fitting) if fitting else share


def missing_profile_message(
    framework: str,
    device: DeviceDescription,
    workloads: list[str],
    offered: Mapping[str, DeviceDescription],
    requested: str | None,
) -> str:
    """Say that no profile fits, which ones exist, and the commands that make or choose one."""
    existing = "; ".join(f"{name} ({theirs.describe()})" for name, theirs in offered.items()) or "none"
    if requested:
        return (
            f"--algoperf-hardware-profile={requested}: {', '.join(workloads)} has no hardware profile of "
            f"that name; its profiles: {existing}"
        )
    calibrate = "python -m pytest_algoperf.calibrate"
    source = next(iter(offered), "PROFILE")
    name = device.default_profile_name()
    on = f"--device cpu --threads {device.threads}" if device.kind == "cpu" else f"--device {device.kind}"
    matching = (
        f"--algoperf-threads={offered[source].threads}, or " if device.kind == "cpu" and offered else ""
    )
    return (
        f"no hardware profile for {framework} on {device.describe()} for {', '.join(workloads)}; profiles: "
        f"{existing}. Budgets are per hardware, and this session will not borrow another's. "
        f"Match one ({matching}--algoperf-hardware-profile=NAME to borrow its budgets knowingly); "
        f"or derive one in minutes from a calibrated profile's step rate: {calibrate} --derive-from {source} "
        f"{on} --framework {framework} --workload {','.join(workloads)} --profile {name} --write; "
        f"or calibrate one against the shared targets: {calibrate} --workload W {on} --framework {framework} "
        f"--keep-targets --max-steps N --eval-period-sec S --profile {name} --write"
    )
