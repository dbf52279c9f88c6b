"""The GPUs of this machine, found without importing a framework, and one per pytest-xdist worker.

A framework reads ``CUDA_VISIBLE_DEVICES`` once, when it initialises CUDA; after that a process cannot
change which GPUs it sees. So the GPUs are found here from what needs no framework: the
``CUDA_VISIBLE_DEVICES`` a scheduler or user set, ``nvidia-smi -L``, or ``/proc/driver/nvidia/gpus``; and
worker k of ``pytest -n N`` gets ``CUDA_VISIBLE_DEVICES`` set to the k-th of them before its session imports
PyTorch or JAX for the device. Both frameworks then see one GPU, as GPU 0: PyTorch no longer puts every
worker on GPU 0, and JAX no longer shards every worker's runs over all GPUs.

Every function takes what it reads as arguments (the environment, the ``nvidia-smi`` runner, the ``/proc``
folder), so tests describe fake machines on a CPU.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROC_GPUS = Path("/proc/driver/nvidia/gpus")
VISIBLE = "CUDA_VISIBLE_DEVICES"
ORDER = "CUDA_DEVICE_ORDER"
NVIDIA_SMI_LINE = re.compile(r"^GPU (\d+): (.+?) \(UUID: ([^)]+)\)")

NvidiaSmi = Callable[[], str | None]


@dataclass(frozen=True)
class Gpu:
    """One GPU as ``CUDA_VISIBLE_DEVICES`` names it (an index or a UUID), with its model when known."""

    name: str
    model: str | None = None
    uuid: str | None = None


class DeviceAssignmentError(ValueError):
    """Workers that would share GPUs or oversubscribe the cores; the message says how to avoid it."""


def run_nvidia_smi() -> str | None:
    """``nvidia-smi -L``'s output, or None where it is missing or fails."""
    try:
        completed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout if completed.returncode == 0 else None


def parse_nvidia_smi(output: str) -> list[Gpu]:
    """``GPU 0: NVIDIA H200 (UUID: GPU-5f0e...)`` lines (MIG lines below a GPU are skipped)."""
    return [
        Gpu(match[1], match[2].strip(), match[3].strip())
        for line in output.splitlines()
        if (match := NVIDIA_SMI_LINE.match(line.strip()))
    ]


def read_proc_gpus(root: Path = PROC_GPUS) -> list[Gpu]:
    """The driver's ``<pci bus id>/information`` files, in PCI bus order (nvidia-smi's order)."""
    if not root.is_dir():
        return []
    gpus = []
    for index, folder in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        try:
            text = (folder / "information").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        model = fields.get("Model", "").strip() or None
        uuid = fields.get("GPU UUID", "").strip() or None
        gpus.append(Gpu(str(index), model, uuid))
    return gpus


def machine_gpus(nvidia_smi: NvidiaSmi = run_nvidia_smi, proc_root: Path = PROC_GPUS) -> list[Gpu]:
    """Every GPU of the machine, by ``nvidia-smi -L``, else by ``/proc/driver/nvidia/gpus``."""
    output = nvidia_smi()
    found = parse_nvidia_smi(output) if output else []
    return found or read_proc_gpus(proc_root)


def visible_gpus(
    environ: MutableMapping[str, str] | None = None,
    nvidia_smi: NvidiaSmi = run_nvidia_smi,
    proc_root: Path = PROC_GPUS,
) -> list[Gpu]:
    """The GPUs this process may use: those ``CUDA_VISIBLE_DEVICES`` lists (their models looked up by index
    or UUID), or every GPU of the machine when it is unset."""
    environ = os.environ if environ is None else environ
    machine = machine_gpus(nvidia_smi, proc_root)
    listed = environ.get(VISIBLE)
    if listed is None:
        return machine
    gpus = []
    for token in (part.strip() for part in listed.split(",")):
        if not token or token.startswith("-"):
            break  # CUDA ignores every entry from the first invalid one on
        known = next((g for g in machine if token in (g.name, g.uuid) or _uuid_prefix(token, g)), None)
        gpus.append(Gpu(token, known.model if known else None, known.uuid if known else None))
    return gpus


def _uuid_prefix(token: str, gpu: Gpu) -> bool:
    return token.startswith("GPU-") and gpu.uuid is not None and gpu.uuid.startswith(token)


def worker_index(worker_id: str) -> int:
    """pytest-xdist's ``gw3`` is worker 3."""
    digits = re.sub(r"\D", "", worker_id)
    return int(digits) if digits else 0


def gpu_for_worker(gpus: Sequence[Gpu], worker: int, workers: int, share: bool) -> Gpu:
    """Worker k's GPU: the k-th; with more workers than GPUs, an error unless sharing is asked for (then
    worker k shares GPU k mod the count)."""
    check_gpu_share(len(gpus), workers, share, ",".join(g.name for g in gpus))
    return gpus[worker % len(gpus)]


def check_gpu_share(gpu_count: int, workers: int, share: bool, listed: str = "") -> None:
    if workers > gpu_count and not share:
        where = f" ({VISIBLE}={listed})" if listed else ""
        raise DeviceAssignmentError(
            f"-n {workers} puts {workers} pytest-xdist workers on {gpu_count} GPU"
            f"{'s' if gpu_count != 1 else ''}{where}: each worker trains on a GPU of its own, so that no "
            f"run's time includes another's. Use -n {gpu_count} or fewer, --algoperf-device=cpu, or "
            "--algoperf-share-devices to let workers share GPUs"
        )


def pin_worker_gpu(
    environ: MutableMapping[str, str], gpus: Sequence[Gpu], worker: int, workers: int, share: bool
) -> Gpu:
    """Give this worker its GPU: ``CUDA_VISIBLE_DEVICES`` names it alone. Indices found by nvidia-smi follow
    the PCI bus order, so CUDA is told to number GPUs that way too (its default puts the fastest first)."""
    gpu = gpu_for_worker(gpus, worker, workers, share)
    if VISIBLE not in environ:
        environ.setdefault(ORDER, "PCI_BUS_ID")
    environ[VISIBLE] = gpu.name
    return gpu


def check_cpu_share(processes: int, threads: int, cpus: int, share: bool) -> None:
    """Workers x threads must fit in the CPUs this process may use, unless sharing is asked for."""
    if processes * threads > cpus and not share:
        fits = max(1, cpus // threads)
        raise DeviceAssignmentError(
            f"{processes} benchmark processes x {threads} CPU thread{'s' if threads != 1 else ''} would need "
            f"{processes * threads} CPUs, and this process may use {cpus} (its affinity mask and cgroup "
            "quota): oversubscribed cores slow every run by each other's load. Use -n "
            f"{fits} or fewer, fewer --algoperf-threads, or --algoperf-share-devices to run anyway"
        )


@contextmanager
def gpu_probe_without_reservation(environ: MutableMapping[str, str] | None = None) -> Iterator[None]:
    """While the pytest-xdist controller asks the frameworks which device exists: JAX would otherwise
    reserve most of every GPU's memory in a process that never trains, and workers would find it taken.
    The environment is restored before the workers start, so they reserve as usual."""
    environ = os.environ if environ is None else environ
    key = "XLA_PYTHON_CLIENT_PREALLOCATE"
    before = environ.get(key)
    environ.setdefault(key, "false")
    try:
        yield
    finally:
        if before is None:
            environ.pop(key, None)
