"""Data parallelism inside one run: the process group a run belongs to, and the batch-size rule.

Two engines, both the ones AlgoPerf uses (ALGOPERF.md section 1):

- PyTorch DDP: ``torchrun --nproc_per_node=N -m pytest ...`` starts N pytest sessions, one per rank, that
  run every benchmark test in lockstep. ``torchrun_environment`` reads the ranks torchrun sets; the PyTorch
  side (``pytest_algoperf.frameworks.pytorch_ddp``) starts ``torch.distributed`` and installs its
  collectives here with ``set_process_group``. Framework-neutral code (the clock, ``ArrayWorkload``'s
  batching and eval) then shards and reduces through ``process_group()``, without importing torch.
- JAX: one process drives every device; batches are sharded on the batch axis with ``NamedSharding`` (see
  ``pytest_algoperf.frameworks.jax_adapter``), so the process group stays the single process.

Either way a submission's ``get_batch_size`` is the global batch, split evenly over the devices or ranks,
so it must be divisible by their number (``check_batch_size``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class Collectives(Protocol):
    """The three reductions the harness needs across ranks, on host values (every rank must call them)."""

    def max(self, value: float) -> float: ...

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum over ranks of a float64 vector."""

    def gather_rows(self, array: np.ndarray) -> np.ndarray:
        """Every rank's rows, concatenated in rank order (ranks may hold different numbers of rows)."""


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the ranks that train one run together (one rank when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = ""
    collectives: Collectives | None = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that reports and writes files."""
        return self.rank == 0

    def shard(self, size: int) -> slice:
        """This rank's contiguous part of ``size`` items; parts differ in length by at most one."""
        bounds = np.linspace(0, size, self.world_size + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def max(self, value: float) -> float:
        return value if self.collectives is None else self.collectives.max(value)

    def sum_totals(self, totals: Mapping[str, float]) -> dict[str, float]:
        """Per-rank sums (eval accumulators) summed over ranks; keys must be the same on every rank."""
        if self.collectives is None or not totals:
            return dict(totals)
        keys = sorted(totals)
        summed = self.collectives.sum(np.array([totals[key] for key in keys], dtype=np.float64))
        return {key: float(value) for key, value in zip(keys, summed, strict=True)}

    def gather_rows(self, array: np.ndarray) -> np.ndarray:
        return array if self.collectives is None else self.collectives.gather_rows(array)

    def clock(self, now: Callable[[], float] = time.perf_counter) -> Callable[[], float]:
        """A time source every rank agrees on: the latest reading over ranks, as AlgoPerf's DDP clock does,
        so all ranks count the same submission time and decide alike when to evaluate and stop."""
        if not self.is_distributed:
            return now
        return lambda: self.max(now())


SINGLE_PROCESS = ProcessGroup()
_current = SINGLE_PROCESS


def process_group() -> ProcessGroup:
    """The process group of this process: ``SINGLE_PROCESS`` unless torchrun started a distributed one."""
    return _current


def set_process_group(group: ProcessGroup) -> None:
    global _current
    _current = group


def torchrun_environment(environ: Mapping[str, str] | None = None) -> ProcessGroup | None:
    """The ranks torchrun (or any launcher setting its variables) gave this process; None outside it."""
    env = os.environ if environ is None else environ
    if not all(name in env for name in TORCHRUN_VARIABLES):
        return None
    world_size = int(env["WORLD_SIZE"])
    return ProcessGroup(
        rank=int(env["RANK"]),
        world_size=world_size,
        local_rank=int(env["LOCAL_RANK"]),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", world_size)),
    )


class BatchSizeError(ValueError):
    """A global batch size that cannot be split evenly over the devices or ranks of a run."""


def check_batch_size(submission: str, workload: str, batch_size: int, devices: int, what: str) -> None:
    """Raise ``BatchSizeError`` naming everything needed to fix it when ``batch_size % devices != 0``."""
    if batch_size % devices:
        raise BatchSizeError(
            f"submission {submission!r}: get_batch_size({workload!r}) returned {batch_size}, which is not "
            f"divisible by the {devices} {what} each global batch is split over; return a multiple of "
            f"{devices}"
        )
