"""Stop a submission step that hangs, so one deadlock cannot wedge a whole session.

While a run trains, a periodic ``SIGALRM`` (once a second) checks how long the current step
(``data_selection`` + ``update_params``, or ``prepare_for_eval``) has been running. Past the limit it raises
``StepHangError`` in the training thread: the run's test fails with that reason and the session goes on. A
step stuck inside C code that never gives control back to Python cannot be interrupted that way; for it,
``faulthandler`` (re-armed at every check) prints every thread's stack and ends the process ``grace_sec``
after the limit. Under pytest-xdist that is one crashed worker, which fails only its own test; in a serial
session the results of every finished run are already in results.json.

The watchdog needs the main thread and a free ``SIGALRM``: where another tool holds it (pytest-timeout's
signal method) or on Windows, it stays off and says so in ``reason_off``.
"""

from __future__ import annotations

import faulthandler
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

CHECK_PERIOD_SEC = 1.0
DEFAULT_GRACE_SEC = 30.0


class StepHangError(Exception):
    """A submission step ran past the hang limit; the run fails with this reason."""


class StepWatchdog:
    """``with watchdog.running():`` around a run, ``watchdog.begin("update_params")`` ... ``watchdog.end()``
    around each submission call."""

    def __init__(self, limit_sec: float, grace_sec: float = DEFAULT_GRACE_SEC) -> None:
        self.limit_sec = limit_sec
        self.grace_sec = grace_sec
        self.reason_off = _reason_off() if math.isfinite(limit_sec) else "no finite limit"
        self._what: str | None = None  # the step running now; None between steps
        self._since = 0.0

    @contextmanager
    def running(self) -> Iterator[StepWatchdog]:
        """Arm the periodic check for the duration of a run; restore the previous handler afterwards."""
        if self.reason_off is not None:
            yield self
            return
        previous = signal.signal(signal.SIGALRM, self._check)
        signal.setitimer(signal.ITIMER_REAL, CHECK_PERIOD_SEC, CHECK_PERIOD_SEC)
        self._arm_hard_stop()
        try:
            yield self
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            faulthandler.cancel_dump_traceback_later()
            self._what = None

    def begin(self, what: str) -> None:
        """A submission call starts: from now it is timed against the limit (two attribute writes)."""
        self._what, self._since = what, time.monotonic()

    def end(self) -> None:
        """The submission call returned (an exception leaves ``running``, which stops the watch)."""
        self._what = None

    def _check(self, signum: int, frame: FrameType | None) -> None:
        self._arm_hard_stop()
        if self._what is not None and time.monotonic() - self._since > self.limit_sec:
            what, self._what = self._what, None
            raise StepHangError(
                f"{what} did not return within the hang limit of {self.limit_sec:g} s (a deadlock or an "
                "endless loop in the submission?); raise it with --algoperf-hang-timeout if a step really "
                "takes that long"
            )

    def _arm_hard_stop(self) -> None:
        faulthandler.dump_traceback_later(self.limit_sec + self.grace_sec, exit=True, file=sys.__stderr__)


def _reason_off() -> str | None:
    if not hasattr(signal, "setitimer"):
        return "no SIGALRM on this platform"
    if threading.current_thread() is not threading.main_thread():
        return "the run does not train in the main thread"
    if (
        signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None)
        or signal.getitimer(signal.ITIMER_REAL)[0]
    ):
        return "SIGALRM is in use by another tool (pytest-timeout's signal method?)"
    return None
