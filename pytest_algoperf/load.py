"""How busy the machine was while a run trained, so a time measured under contention is not taken as is.

A run records the CPU time that *other* processes used while it trained (the machine's busy time from
``/proc/stat`` minus this process's own CPU time), the time a hypervisor stole from the machine's virtual
CPUs, and the 1-minute load average at both ends. A run is **contended** when other processes kept, on
average, at least ``CONTENDED_CPUS`` CPUs busy (a tenth of the CPUs on machines with more than 2.5 of them),
or when at least ``CONTENDED_STEAL`` of the CPU time was stolen. On a 2-core machine another training process
on the other core is contention: it moved step times by up to 41% (shared caches and memory bandwidth).
Where ``/proc`` is missing (macOS, Windows) nothing is known and a run is never marked contended.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CONTENDED_CPUS = 0.25
CONTENDED_CPU_SHARE = 0.1
CONTENDED_STEAL = 0.02
PROC_STAT = Path("/proc/stat")
PROC_LOADAVG = Path("/proc/loadavg")


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU counters at one moment; two samples give the load between them."""

    wall: float  # time.monotonic()
    busy: float  # CPU seconds all CPUs spent running anything (nan without /proc/stat)
    steal: float  # CPU seconds the hypervisor took from this machine's virtual CPUs
    total: float  # all CPU seconds, idle included
    own: float  # CPU seconds of this process, every thread
    loadavg: float  # 1-minute load average (nan without /proc/loadavg)


@dataclass(frozen=True)
class LoadReport:
    """The load other processes put on the machine between two samples."""

    other_cpus: float | None  # CPUs kept busy by other processes, on average
    steal_fraction: float | None  # share of the machine's CPU time stolen by the hypervisor
    loadavg_start: float | None
    loadavg_end: float | None
    cpu_count: int
    contended: bool

    def describe(self) -> str:
        if self.other_cpus is None:
            return "load unknown (no /proc)"
        text = f"other processes used {self.other_cpus:.2f} of {self.cpu_count} CPUs"
        if self.steal_fraction:
            text += f", {self.steal_fraction:.0%} stolen"
        return text

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> LoadReport | None:
        return None if data is None else cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


def sample(stat_path: Path = PROC_STAT, loadavg_path: Path = PROC_LOADAVG) -> CpuSample:
    times = os.times()
    busy = steal = total = math.nan
    try:
        fields = stat_path.read_text().split("\n", 1)[0].split()
        # cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
        ticks = [int(value) for value in fields[1:9]]
        per_second = os.sysconf("SC_CLK_TCK")
        busy = (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / per_second
        steal = ticks[7] / per_second
        total = sum(ticks) / per_second
    except (OSError, ValueError, IndexError):
        pass
    try:
        loadavg = float(loadavg_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        loadavg = math.nan
    return CpuSample(time.monotonic(), busy, steal, total, times.user + times.system, loadavg)


def load_between(start: CpuSample, end: CpuSample, cpu_count: int | None = None) -> LoadReport:
    cpus = cpu_count or os.cpu_count() or 1
    wall = end.wall - start.wall
    loadavg = (_finite(start.loadavg), _finite(end.loadavg))
    if wall <= 0 or not math.isfinite(end.busy - start.busy):
        return LoadReport(None, None, *loadavg, cpus, contended=False)
    others = max(0.0, (end.busy - start.busy) - (end.own - start.own)) / wall
    total = end.total - start.total
    steal = (end.steal - start.steal) / total if total > 0 else 0.0
    contended = others >= max(CONTENDED_CPUS, CONTENDED_CPU_SHARE * cpus) or steal >= CONTENDED_STEAL
    return LoadReport(round(others, 3), round(steal, 4), *loadavg, cpus, contended)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
