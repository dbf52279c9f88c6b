"""Result files: one ``results.json`` per session and AlgoPerf-style folders per run.

Layout under the output folder::

    results.json
    experiments/<submission>/study_<s>/<workload>_<framework>/trial_<t+1>/
        eval_measurements.csv   # AlgoPerf's columns, one row per eval
        measurements.csv        # every row AlgoPerf's logger writes: the submission's logged scalars
                                # (workload.metrics_logger) and the evals, in step order
        hparams.json            # the hyperparameters of the trial
        meta_data.json          # workload properties, seed, device, machine, software, commit
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_algoperf.results import EvalRecord, RunResult

RESULTS_FORMAT = "pytest-algoperf-results"
RESULTS_VERSION = 1
CLOCK_COLUMNS = (
    "accumulated_eval_time",
    "accumulated_logging_time",
    "accumulated_submission_time",
    "global_step",
    "preemption_count",
    "score",
    "total_duration",
)


def write_json_atomically(path: Path, document: Any) -> None:
    """Write via a temporary file and a rename, so a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    temporary.replace(path)


def clear_session_files(output: Path) -> None:
    """Remove what an earlier session wrote in ``output``, so files of two sessions never mix; files of other
    tools in the folder are left alone."""
    for stale in (output / "experiments", output / "curves"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in (output / "results.json", output / "report.md", *output.glob("performance_profile_*.png")):
        stale.unlink(missing_ok=True)


def write_results(path: Path, session: Mapping[str, Any], results: Iterable[RunResult]) -> None:
    document = {
        "format": RESULTS_FORMAT,
        "version": RESULTS_VERSION,
        **session,
        "runs": [result.to_json() for result in results],
    }
    write_json_atomically(path, document)


def run_folder(output: Path, result: RunResult) -> Path:
    return (
        output
        / "experiments"
        / result.submission
        / f"study_{result.study}"
        / f"{result.workload}_{result.framework}"
        / f"trial_{result.trial + 1}"
    )


def write_run_folder(output: Path, result: RunResult, environment: Mapping[str, Any]) -> Path:
    folder = run_folder(output, result)
    folder.mkdir(parents=True, exist_ok=True)
    write_eval_measurements(folder / "eval_measurements.csv", result)
    write_measurements(folder / "measurements.csv", result)
    write_json_atomically(folder / "hparams.json", result.hyperparameters)
    meta = {key: value for key, value in result.to_json().items() if key != "evals"}
    write_json_atomically(folder / "meta_data.json", {**meta, **environment})
    return folder


def write_eval_measurements(path: Path, result: RunResult) -> None:
    split_order = {"train": 0, "validation": 1, "test": 2}  # AlgoPerf's column order
    metric_names = sorted(
        {name for record in result.evals for name in record.metrics},
        key=lambda name: (split_order.get(name.split("/")[0], 3), name),
    )
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CLOCK_COLUMNS, *metric_names])
        for record in result.evals:
            row = eval_row(record)
            writer.writerow(
                [*(row[c] for c in CLOCK_COLUMNS), *(record.metrics.get(m, "") for m in metric_names)]
            )


def eval_row(record: EvalRecord) -> dict[str, Any]:
    """An eval as AlgoPerf's logger records it: the clock's readings and the metrics."""
    return {
        "accumulated_eval_time": record.accumulated_eval_time,
        "accumulated_logging_time": record.accumulated_logging_time,
        "accumulated_submission_time": record.score,
        "global_step": record.global_step,
        "preemption_count": 0,
        "score": record.score,
        "total_duration": record.total_duration,
        **record.metrics,
    }


def write_measurements(path: Path, result: RunResult) -> None:
    """AlgoPerf's ``measurements.csv``: the rows the submission logged and the eval rows, by step (a step's
    logged row first: the submission logs while training the step, the eval follows it)."""
    rows = [(row["global_step"], 0, row) for row in result.logged_metrics]
    rows += [(record.global_step, 1, eval_row(record)) for record in result.evals]
    rows.sort(key=lambda entry: entry[:2])
    columns = sorted({column for _, _, row in rows for column in row})
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(row for _, _, row in rows)
