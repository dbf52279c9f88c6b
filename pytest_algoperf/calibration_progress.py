"""What a calibration keeps of its runs (``Trial``), saved after each so that an interrupted calibration
resumes (``Progress``), and its progress lines on stderr."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Trial:
    """What calibration keeps of one run: enough to set targets and to resume without rerunning it."""

    submission: str
    framework: str
    point: dict[str, Any]
    seed: int
    best_validation: float
    best_test: float
    steps_per_sec: float
    curve: list[tuple[float, float]]  # (submission time, validation value) at every eval

    def time_to(self, target: float, higher_is_better: bool) -> float:
        for score, value in self.curve:
            if value >= target if higher_is_better else value <= target:
                return score
        return math.inf


class Progress:
    """The finished runs of one calibration, saved after each, so an interrupted command resumes."""

    def __init__(self, path: Path, fingerprint: dict[str, Any]) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.trials: dict[str, Trial] = {}
        self.measures: dict[str, float] = {}  # measurements besides runs (``measure``)
        if path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("fingerprint") == fingerprint:
                self.trials = {key: _trial_from_json(value) for key, value in saved["trials"].items()}
                self.measures = {key: float(value) for key, value in saved.get("measures", {}).items()}
                say(f"resuming from {path}: {len(self.trials)} runs already done")
            else:  # another calibration's runs: kept aside, not overwritten by this one's first save
                kept = _free_name(path)
                os.replace(path, kept)
                say(
                    f"{path} holds a calibration with other arguments; starting afresh, its runs kept in "
                    f"{kept} (rename it back to resume that calibration)"
                )

    def run(self, key: str, train: Callable[[], Trial]) -> Trial:
        if key not in self.trials:
            self.trials[key] = train()
            self._save()
        return self.trials[key]

    def measure(self, key: str, measure: Callable[[], float]) -> float:
        """A number measured once and kept with the runs, as ``run`` keeps a run."""
        if key not in self.measures:
            self.measures[key] = float(measure())
            self._save()
        return self.measures[key]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        document = {
            "fingerprint": self.fingerprint,
            "trials": {k: asdict(t) for k, t in self.trials.items()},
            "measures": self.measures,
        }
        partial.write_text(json.dumps(document, indent=1))
        os.replace(partial, self.path)  # never a half-written progress file


def _free_name(path: Path) -> Path:
    """``W.json`` -> the first of ``W.1.json``, ``W.2.json`` ... that does not exist."""
    index = 1
    while (candidate := path.with_name(f"{path.stem}.{index}{path.suffix}")).exists():
        index += 1
    return candidate


def _trial_from_json(data: dict[str, Any]) -> Trial:
    return Trial(**{**data, "curve": [tuple(pair) for pair in data["curve"]]})


class Counter:
    """Progress lines on stderr: how many runs are done, and a rough time left from the mean so far."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def say(self, line: str) -> None:
        self.done += 1
        left = (time.monotonic() - self.started) / self.done * (self.total - self.done)
        say(f"[{self.done}/{self.total}, ~{left / 60:.0f} min left] {line}")


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
