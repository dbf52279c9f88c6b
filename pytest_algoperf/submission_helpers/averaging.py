"""Weight averaging for ``prepare_for_eval``, the same in both frameworks: arithmetic on flat lists of
arrays (torch tensors or JAX arrays alike), so one piece serves the PyTorch and the JAX side.

AlgoPerf v0.5's LAWA submissions evaluate an average of recent weights and keep training the raw ones:
``prepare_for_eval`` swaps the average in (``.pytorch.swap_in_average``, ``.jax.swap_in_average``) and the
next ``update_params`` swaps the training weights back before its step.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AveragingSchedule", "WeightAverage"]


@dataclass(frozen=True)
class AveragingSchedule:
    """Snapshots from ``start`` on, every ``every`` steps: LAWA's ``lawa_start_factor`` and
    ``lawa_interval_scaling``, both shares of ``step_hint``."""

    start: int
    every: int

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Any, step_hint: int) -> AveragingSchedule:
        return cls(
            start=math.ceil(step_hint * hyperparameters.lawa_start_factor),
            every=max(1, math.ceil(step_hint * hyperparameters.lawa_interval_scaling)),
        )

    def takes_snapshot(self, step: int) -> bool:
        return step >= self.start and (step - self.start) % self.every == 0


class WeightAverage:
    """The uniform average of the last ``queue_length`` snapshots (LAWA queue; none until the queue is
    full), or their exponential moving average with weight ``ema_beta`` on the past (LAWA EMA)."""

    def __init__(self, *, queue_length: int | None = None, ema_beta: float | None = None) -> None:
        if (queue_length is None) == (ema_beta is None):
            raise ValueError("give one of queue_length (a LAWA queue) or ema_beta (an EMA)")
        if queue_length is not None and queue_length < 1:
            raise ValueError(f"queue_length must be at least 1, not {queue_length}")
        self.queue: deque[list[Any]] | None = None if queue_length is None else deque(maxlen=queue_length)
        self.ema_beta = ema_beta
        self.ema: list[Any] | None = None

    def add(self, snapshot: Sequence[Any]) -> None:
        """Adds a snapshot: copies of the weights, which this object keeps and never changes in place."""
        if self.queue is not None:
            self.queue.append(list(snapshot))
        elif self.ema is None:
            self.ema = list(snapshot)
        else:
            beta = self.ema_beta
            self.ema = [beta * old + (1.0 - beta) * new for old, new in zip(self.ema, snapshot, strict=True)]

    def average(self) -> list[Any] | None:
        """The weights to evaluate, or None while there are none yet."""
        if self.queue is None:
            return self.ema
        if len(self.queue) < self.queue.maxlen:
            return None
        return [sum(arrays[1:], arrays[0]) / len(arrays) for arrays in zip(*self.queue, strict=True)]
