"""A session's hardware decisions: its CPU threads, its GPU, and the hardware profile of each workload.

``AlgoPerfSession.prepare`` calls these in order: ``session_threads`` (before JAX's backend starts, which
reads the thread limit once), ``assign_accelerator`` (before either framework touches CUDA), then, once the
frameworks have resolved their devices, ``resolve_profiles``, which raises ``NoProfileError`` naming what is
missing and how to make it rather than let a session borrow another hardware's budgets.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pytest_algoperf.calibration import offered_devices
from pytest_algoperf.hardware.gpus import Gpu, check_cpu_share, check_gpu_share, pin_worker_gpu, visible_gpus
from pytest_algoperf.hardware.profiles import (
    DeviceDescription,
    NoProfileError,
    choose_profile,
    fitting_threads,
    missing_profile_message,
)
from pytest_algoperf.registry import WorkloadRegistry
from pytest_algoperf.threads import allowed_cpus, choose_threads

Offered = Mapping[str, DeviceDescription] | None  # a workload's profiles; None: its budget is its own


@dataclass
class HardwareChoice:
    """What a session decided about its hardware, for the header, the runs and the results file."""

    threads: int = 1
    gpu: Gpu | None = None  # this worker's GPU, when pytest-xdist workers each got one
    gpu_per_worker: bool = False  # pytest-xdist workers each train on a GPU of their own
    visible: list[Gpu] = field(default_factory=list)  # the GPUs this process sees
    devices: dict[str, DeviceDescription] = field(default_factory=dict)  # framework -> what budgets need
    profiles: dict[tuple[str, str], str] = field(default_factory=dict)  # (workload, framework) -> profile
    requested: str | None = None  # --algoperf-hardware-profile

    def profile_of(self, workload: str, framework: str) -> str:
        return self.profiles.get((workload, framework), "")

    def to_json(self) -> dict[str, Any]:
        by_framework: dict[str, dict[str, str]] = {}
        for (workload, framework), profile in self.profiles.items():
            by_framework.setdefault(framework, {})[workload] = profile
        return {
            "devices": {framework: d.to_json() for framework, d in self.devices.items()},
            "profiles": by_framework,
            "requested": self.requested,
            "gpu": self.gpu.name if self.gpu else None,
            "gpu_per_worker": self.gpu_per_worker,
        }


@cache
def _offered_by_class(workload_class: type) -> Offered:
    return offered_devices(workload_class)


def offered_profiles(
    registry: WorkloadRegistry, names: Iterable[str], frameworks: Iterable[str]
) -> dict[tuple[str, str], Offered]:
    """Each (workload, framework)'s profiles, read from its class's calibration file (no instance made). A
    class that cannot be imported is left to fail its own tests, as it did before profiles."""
    offered = {}
    for name in names:
        entry = registry[name]
        for framework in frameworks:
            if framework in entry.implementations:
                try:
                    workload_class = entry.workload_class(framework)
                except ImportError:
                    continue
                offered[name, framework] = _offered_by_class(workload_class)
    return offered


def session_threads(
    requested: int | None, processes: int, offered: Mapping[Any, Offered], cpus: int | None = None
) -> int:
    """``--algoperf-threads``, capped at the CPUs; auto: the thread count of the CPU profile every workload
    has that fits in this process's share of the cores (so its budgets apply), else the share."""
    cpus = cpus or allowed_cpus()
    if requested is not None:
        return choose_threads(requested, processes, cpus)
    share = choose_threads(None, processes, cpus)
    counts = [
        {d.threads for d in devices.values() if d.kind == "cpu" and d.threads}
        for devices in offered.values()
        if devices
    ]
    common = set.intersection(*counts) if counts else set()
    return fitting_threads(common, share)


def check_cpus(processes: int, threads: int, share: bool, cpus: int | None = None) -> None:
    check_cpu_share(processes, threads, cpus or allowed_cpus(), share)


def assign_accelerator(
    choice: HardwareChoice,
    requested_device: str,
    workers: int,
    worker: int | None,
    share: bool,
    environ: MutableMapping[str, str] | None = None,
    gpus: list[Gpu] | None = None,
) -> None:
    """Under pytest-xdist with GPUs present, check there is one per worker (controller) and pin this
    worker's (worker k gets the k-th); records in ``choice`` this worker's GPU and the GPUs this process
    sees. ``--algoperf-device=cpu`` leaves GPUs alone."""
    environ = os.environ if environ is None else environ
    choice.visible = visible_gpus(environ) if gpus is None else list(gpus)
    choice.gpu_per_worker = requested_device != "cpu" and workers > 1 and bool(choice.visible)
    if not choice.gpu_per_worker:
        return
    if worker is None:  # the controller: refuse before any worker starts
        check_gpu_share(len(choice.visible), workers, share, ",".join(g.name for g in choice.visible))
        return
    choice.gpu = pin_worker_gpu(environ, choice.visible, worker, workers, share)
    choice.visible = [choice.gpu]


def describe_device(device: str, threads: int, visible: list[Gpu], gpus_per_run: int) -> DeviceDescription:
    """What budgets depend on, for a framework resolved to ``device``."""
    if device == "cpu":
        return DeviceDescription("cpu", threads=threads)
    model = visible[0].model if visible else None
    return DeviceDescription(device, gpu_model=model, gpus=gpus_per_run)


def resolve_profiles(
    offered: Mapping[tuple[str, str], Offered],
    devices: Mapping[str, DeviceDescription],
    requested: str | None,
) -> dict[tuple[str, str], str]:
    """The profile of each (workload, framework); ``NoProfileError`` lists, per framework, the workloads that
    have none for the device (or none named ``requested``)."""
    chosen: dict[tuple[str, str], str] = {}
    missing: dict[str, list[str]] = {}
    for (workload, framework), theirs in offered.items():
        if theirs is None:
            chosen[workload, framework] = ""
            continue
        name = choose_profile(theirs, devices[framework], requested)
        if name is None:
            missing.setdefault(framework, []).append(workload)
        else:
            chosen[workload, framework] = name
    if missing:
        framework, workloads = next(iter(missing.items()))
        theirs = offered[workloads[0], framework] or {}
        raise NoProfileError(
            missing_profile_message(framework, devices[framework], workloads, theirs, requested)
        )
    return chosen


def header_lines(choice: HardwareChoice, workers: int) -> list[str]:
    """Which profile each framework's workloads use, and which GPU this process (or each worker) has."""
    lines = []
    for framework, device in choice.devices.items():
        names = sorted({p for (_, f), p in choice.profiles.items() if f == framework and p})
        if not names:
            continue
        borrowed = f" (chosen with --algoperf-hardware-profile; this session runs on {device.describe()})"
        lines.append(
            f"algoperf: hardware profile for {framework}: {', '.join(names)}"
            + (borrowed if choice.requested else f" (matches {device.describe()})")
        )
    if choice.gpu_per_worker:
        gpus = ", ".join(g.name for g in choice.visible)
        lines.append(f"algoperf: one GPU per pytest-xdist worker: worker k gets the k-th of {gpus}")
    return lines


def describe_calibration_device(
    device: str, threads: int, frameworks: list[str], gpus: list[Gpu] | None = None
) -> DeviceDescription:
    """The device ``python -m pytest_algoperf.calibrate`` measures on. JAX trains on every visible GPU and
    PyTorch (without torchrun) on one, so calibrating both on several GPUs would mix two devices."""
    if device == "cpu":
        return DeviceDescription("cpu", threads=threads)
    visible = visible_gpus() if gpus is None else gpus
    if len(visible) > 1 and "jax" in frameworks and len(frameworks) > 1:
        raise ValueError(
            f"JAX trains on all {len(visible)} visible GPUs and PyTorch on one: set CUDA_VISIBLE_DEVICES to "
            "the GPUs one run should use (CUDA_VISIBLE_DEVICES=0 for a one-GPU profile)"
        )
    return describe_device(device, threads, visible, len(visible) if frameworks == ["jax"] else 1)
