"""AlgoPerf's clock (ALGOPERF.md section 3), as one object that both the harness and users' own tests use.

Submission time is the sum of the intervals from the end of one step (or of the last eval/logging) to the
end of the next step, plus the time of ``prepare_for_eval``. Evaluation and logging are excluded.

A step's end is read without waiting for the accelerator (``end_step``): waiting after every step would stop
an accelerator, or JAX's asynchronous dispatch on a CPU, from overlapping the next step's dispatch with this
step's compute, and would cost the harness a synchronisation per step (0.4 ms a step on mnist in JAX). The
intervals telescope, so their sum is exact as soon as the last one is closed by a reading taken after the
accelerator finished the last step's outputs (``settle``); every decision and every excluded section settles
first: ``timed_call`` (prepare_for_eval), ``untimed_eval``, ``untimed_logging``, ``resume``,
``time_remaining`` (the budget check) and ``total_duration``. Between decisions, ``submission_time`` may lag
by the work still queued; AlgoPerf's JAX runner reads its clock the same way. ``eval_due`` on the time-based
schedule reads that unsettled time, so an eval may come a step later than a synchronised clock would have
called it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Synchronize = Callable[[Any], None]


def _no_sync(outputs: Any) -> None:
    """Synchronisation for code that runs eagerly on the CPU: nothing to wait for."""


class BenchmarkClock:
    """Accumulates submission, eval and logging time under AlgoPerf's rules.

    ``eval_period_sec`` is AlgoPerf's time-based eval schedule; ``eval_every_steps``, when given, replaces
    it with a step-based one so that steps to target do not depend on machine speed (our documented
    deviation, used by the reproducibility checks and the regression gate's exact steps comparison).
    """

    def __init__(
        self,
        budget_sec: float,
        eval_period_sec: float,
        synchronize: Synchronize = _no_sync,
        eval_every_steps: int | None = None,
        now: Callable[[], float] = time.perf_counter,
    ) -> None:
        if budget_sec <= 0:
            raise ValueError(f"the time budget must be positive, got {budget_sec}")
        self.budget_sec = budget_sec
        self.eval_period_sec = eval_period_sec
        self.eval_every_steps = eval_every_steps
        self._synchronize = synchronize
        self._now = now
        self.submission_time = 0.0
        self.eval_time = 0.0
        self.logging_time = 0.0
        self.global_step = 0
        self.start_time = math.nan
        self.last_step_end_time = math.nan
        self.last_eval_time = -math.inf  # so the first eval comes right after step 1
        self._last_eval_step = -math.inf
        self._step_end_time = math.nan
        self._pending: Any = None  # outputs of the last step, not yet waited for
        self._settled = True

    def now(self, outputs: Any = None) -> float:
        """The current time, after the accelerator has finished computing ``outputs``."""
        self._synchronize(outputs)
        return self._now()

    def start(self) -> None:
        self.start_time = self.last_step_end_time = self.now()

    def end_step(self, outputs: Any = None) -> None:
        """Count the interval since the previous step ended (data selection and update included), read
        without waiting for ``outputs``; ``settle`` closes it exactly."""
        self.global_step += 1
        self._step_end_time = self._now()
        self.submission_time += self._step_end_time - self.last_step_end_time
        self.last_step_end_time = self._step_end_time
        self._pending, self._settled = outputs, False

    def settle(self) -> None:
        """Wait for the last step's outputs and close its interval: ``submission_time`` is then exact."""
        if self._settled:
            return
        end = self.now(self._pending)
        self.submission_time += end - self.last_step_end_time
        self.last_step_end_time = self._step_end_time = end
        self._pending, self._settled = None, True

    def eval_due(self, training_complete: bool = False) -> bool:
        if training_complete:
            return True
        if self.eval_every_steps is not None:
            return self.global_step - self._last_eval_step >= self.eval_every_steps
        return self._step_end_time - self.last_eval_time >= self.eval_period_sec

    def timed_call(self, function: Callable[..., Any], **kwargs: Any) -> Any:
        """Call ``function`` and count its time as submission time (``prepare_for_eval``)."""
        self.settle()
        begin = self.now()
        outputs = function(**kwargs)
        end = self.now(outputs)
        self.submission_time += end - begin
        self.last_step_end_time = end  # the next interval starts here, whether or not an eval follows
        return outputs

    @property
    def time_remaining(self) -> bool:
        """Whether submission time is still under budget; AlgoPerf checks this only at eval points."""
        self.settle()
        return self.submission_time < self.budget_sec

    @contextmanager
    def untimed_eval(self) -> Iterator[None]:
        """Evaluation, excluded from submission time (``prepare_for_eval`` before it is not eval time)."""
        self.settle()
        begin = self.now()
        try:
            yield
        finally:
            end = self.now()
            self.eval_time += end - begin
            self.last_eval_time = end
            self._last_eval_step = self.global_step

    @contextmanager
    def untimed_logging(self) -> Iterator[None]:
        self.settle()
        begin = self.now()
        try:
            yield
        finally:
            self.logging_time += self.now() - begin

    def resume(self) -> None:
        """Mark the end of eval/logging, so the next step's interval excludes them."""
        self.settle()
        self.last_step_end_time = self.now()

    @property
    def total_duration(self) -> float:
        self.settle()
        return self.now() - self.start_time
