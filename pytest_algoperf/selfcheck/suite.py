"""A session of the suite run serially and with ``-n 2``: the wall-time ratio, and how far each run's time
to target moved between the two."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SuiteTimes:
    workloads: tuple[str, ...]
    framework: str
    serial_sec: float
    parallel_sec: float
    largest_run_change: float | None  # max over runs of |parallel / serial - 1| of time to target

    @property
    def speedup(self) -> float:
        return self.serial_sec / self.parallel_sec


def _session(workloads: tuple[str, ...], framework: str, submission: str, folder: Path, *extra: str) -> float:
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--rootdir={folder}",
        f"--algoperf-submission={submission}", f"--algoperf-workloads={','.join(workloads)}",
        f"--algoperf-framework={framework}", "--algoperf-threads=1", f"--algoperf-output={folder}/out",
        *extra,
    ]  # fmt: skip
    begin = time.perf_counter()
    subprocess.run(command, cwd=folder, capture_output=True, check=False)
    return time.perf_counter() - begin


def _times(folder: Path) -> dict[str, float | None]:
    path = folder / "out" / "results.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    return {run["test_id"]: run.get("time_to_target") for run in runs}


def suite_times(workloads: tuple[str, ...], framework: str, submission: str) -> SuiteTimes:
    with tempfile.TemporaryDirectory(prefix="algoperf-selfcheck-") as scratch:
        serial_folder, parallel_folder = Path(scratch, "serial"), Path(scratch, "parallel")
        serial_folder.mkdir()
        parallel_folder.mkdir()
        serial = _session(workloads, framework, submission, serial_folder, "-p", "no:xdist")
        parallel = _session(workloads, framework, submission, parallel_folder, "-n", "2")
        before, after = _times(serial_folder), _times(parallel_folder)
    changes = [
        abs(after[test] / time_to_target - 1)
        for test, time_to_target in before.items()
        if time_to_target and after.get(test)
    ]
    return SuiteTimes(workloads, framework, serial, parallel, max(changes) if changes else None)
