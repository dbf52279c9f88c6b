"""How many CPU threads a framework may use, so parallel benchmark processes do not slow each other.

A process may use the CPUs of its affinity mask (``taskset``, ``docker --cpuset-cpus``), and no more than its
cgroup's CPU quota allows (``docker --cpus``, Kubernetes limits): ``allowed_cpus`` is the smaller of the two.
Under pytest-xdist each worker gets its share (``allowed_cpus // workers``, at least one; the session then
takes the largest CPU hardware profile's thread count that fits in it, ``hardware.selection``);
``--algoperf-threads`` overrides that, up to the allowed CPUs, and workers x threads beyond the allowed CPUs
are refused (``hardware.gpus.check_cpu_share``). PyTorch is limited with
``torch.set_num_threads`` when a run starts.
XLA reads its flags once, when JAX's CPU backend starts, so its limit is set in ``XLA_FLAGS`` at configure
time; XLA can only be made single-threaded this way, so a share above one thread leaves XLA's own pool.
Each xdist worker on the CPU also keeps to CPUs of its own (``pin_worker_cpus``), as calibration runs did.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable
from pathlib import Path

XLA_SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def affinity() -> set[int] | None:
    """The CPUs this process may run on (its affinity mask), or None where there are no masks."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # macOS, Windows
        return None


def allowed_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may keep busy: its affinity mask, bounded by its cgroup's CPU quota."""
    mask = affinity()
    cpus = len(mask) if mask is not None else os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    # A quota of 1.5 CPUs allows one thread: two would be throttled for a third of every period.
    return max(1, min(cpus, math.floor(quota))) if quota is not None else max(1, cpus)


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs' worth of time the cgroup allows per period (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``);
    None when there is no limit or no cgroup file to read."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def choose_threads(requested: int | None, workers: int, cpu_count: int | None = None) -> int:
    """``requested`` threads, or this worker's share of the allowed CPUs; never more than those CPUs: more
    threads than cores only make PyTorch's thread pool stall (steps 10-100x slower on a busy machine)."""
    cpus = cpu_count or allowed_cpus()
    if requested is not None:
        return max(1, min(requested, cpus))
    return max(1, cpus // max(workers, 1))


def limit_xla_threads(threads: int) -> None:
    """Make XLA single-threaded when one thread is the share; must run before JAX's backend starts."""
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_SINGLE_THREAD_FLAGS}".strip()


def worker_cpus(worker: int, threads: int, allowed: Iterable[int]) -> list[int]:
    """Worker k's own CPUs: the k-th run of ``threads`` CPUs of ``allowed``, in order (empty past its end)."""
    return sorted(allowed)[worker * threads : (worker + 1) * threads]


def pin_worker_cpus(worker: int, threads: int) -> list[int] | None:
    """Keep this pytest-xdist worker on CPUs of its own, before a framework starts, as calibration runs were
    (one per core); the CPUs, or None where affinity masks do not exist or its share does not fit. XLA
    also sizes its pools by the CPUs a process may use, whatever its flags say."""
    mask = affinity()
    if mask is None:
        return None
    mine = worker_cpus(worker, threads, mask)
    if len(mine) < threads:
        return None
    set_affinity(mine)
    return mine


def set_affinity(cpus: Iterable[int]) -> None:
    """Keep every thread of this process on ``cpus``: a thread's affinity is its own, and threads started
    before (XLA's pools, execnet's) would otherwise keep theirs; threads started later inherit it."""
    mask = set(cpus)
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # no /proc: this thread only
    for tid in threads:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, mask)
