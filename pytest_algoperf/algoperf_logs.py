"""Reading results back: our ``results.json`` files and AlgoPerf experiment folders.

An AlgoPerf folder (the reference harness's, or ours under ``.algoperf/experiments/<submission>``) holds
``study_*/<workload>_<framework>/trial_*/eval_measurements.csv``. Time to target is recomputed from the CSV:
the ``score`` (submission time) of the first eval whose validation metric meets the target. Targets come from
the trial's ``meta_data.json`` when we wrote it, else from AlgoPerf's published targets (ALGOPERF.md
section 6), else from a ``--targets`` JSON file.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_algoperf.results import EvalRecord, RunResult


@dataclass(frozen=True)
class Target:
    metric: str  # without the split prefix
    validation: float
    higher_is_better: bool
    budget_sec: float


# AlgoPerf's real-scale workloads (v0.6 targets and budgets, ALGOPERF.md section 6).
ALGOPERF_TARGETS = {
    "criteo1tb": Target("loss", 0.123735, False, 7703),
    "fastmri": Target("ssim", 0.723653, True, 4430),
    "imagenet_resnet": Target("accuracy", 0.77431, True, 66159),
    "imagenet_vit": Target("accuracy", 0.77309, True, 69768),
    "librispeech_conformer": Target("wer", 0.085884, False, 58015),
    "librispeech_deepspeech": Target("wer", 0.119936, False, 44405),
    "ogbg": Target("mean_average_precision", 0.28098, True, 12011),
    "wmt": Target("bleu", 30.8491, True, 43336),
    "mnist": Target("accuracy", 0.97, True, 60),
    "cifar": Target("accuracy", 0.85, True, 3600),
}
FOLDER = re.compile(r"^(?P<workload>.+)_(?P<framework>pytorch|jax)$")


class ResultsFileError(ValueError):
    """Input that cannot be scored; the message names the file and what is wrong with it."""


def load_results_file(path: Path) -> list[RunResult]:
    try:
        document = json.loads(path.read_text())
        return [RunResult.from_json(run) for run in document["runs"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ResultsFileError(f"{path}: not a pytest-algoperf results file ({error})") from None


def load_experiment_folder(
    folder: Path, submission: str | None = None, targets: dict[str, Target] | None = None
) -> list[RunResult]:
    """Every trial under ``folder`` (AlgoPerf's layout); the submission is named after the folder."""
    csv_files = sorted(folder.glob("study_*/*/trial_*/eval_measurements.csv"))
    if not csv_files:
        raise ResultsFileError(
            f"{folder}: no study_*/<workload>_<framework>/trial_*/eval_measurements.csv found"
        )
    return [_load_trial(path, submission or folder.name, targets or {}) for path in csv_files]


def _load_trial(path: Path, submission: str, targets: dict[str, Target]) -> RunResult:
    trial_folder, workload_folder, study_folder = path.parent, path.parent.parent, path.parent.parent.parent
    match = FOLDER.match(workload_folder.name)
    if match is None:
        raise ResultsFileError(f"{workload_folder}: expected a folder named <workload>_<pytorch|jax>")
    workload = match["workload"]
    target = _target(trial_folder, workload, targets)
    result = RunResult(
        test_id=f"{submission}-{match['framework']}-{workload}-{study_folder.name}-{trial_folder.name}",
        submission=submission,
        framework=match["framework"],
        workload=workload,
        seed=0,
        study=_index(study_folder.name),
        trial=max(_index(trial_folder.name) - 1, 0),
        target_metric=target.metric,
        higher_is_better=target.higher_is_better,
        validation_target=target.validation,
        budget_sec=target.budget_sec,
    )
    result.evals = _read_evals(path)
    column = f"validation/{target.metric}"
    for record in result.evals:
        value = record.metrics.get(column, math.nan)
        if value >= target.validation if target.higher_is_better else value <= target.validation:
            result.reached, result.time_to_target, result.steps_to_target = (
                True,
                record.score,
                record.global_step,
            )
            break
    return result


def _target(trial_folder: Path, workload: str, targets: dict[str, Target]) -> Target:
    if workload in targets:
        return targets[workload]
    meta = trial_folder / "meta_data.json"
    if meta.is_file():
        data: dict[str, Any] = json.loads(meta.read_text())
        if data.get("validation_target") is not None and data.get("target_metric"):
            return Target(
                data["target_metric"],
                float(data["validation_target"]),
                bool(data.get("higher_is_better", True)),
                float(data.get("budget_sec") or math.inf),
            )
    if workload in ALGOPERF_TARGETS:
        return ALGOPERF_TARGETS[workload]
    raise ResultsFileError(f"{trial_folder}: no target known for workload {workload!r}; pass --targets FILE")


def _read_evals(path: Path) -> list[EvalRecord]:
    def number(row: dict[str, str], key: str) -> float:
        value = row.get(key, "")
        return float(value) if value not in ("", None) else math.nan

    records = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            score = number(row, "score")
            records.append(
                EvalRecord(
                    global_step=int(float(row["global_step"])),
                    score=score if math.isfinite(score) else number(row, "accumulated_submission_time"),
                    accumulated_eval_time=number(row, "accumulated_eval_time"),
                    accumulated_logging_time=number(row, "accumulated_logging_time"),
                    total_duration=number(row, "total_duration"),
                    metrics={
                        k: number(row, k) for k in row if k.startswith(("train/", "validation/", "test/"))
                    },
                )
            )
    return records


def load_targets_file(path: Path) -> dict[str, Target]:
    """Targets as ``{"workload": {"metric": "accuracy", "validation": 0.9, "higher_is_better": true,
    "budget_sec": 60}}``."""
    try:
        data = json.loads(path.read_text())
        return {
            name: Target(
                v["metric"],
                float(v["validation"]),
                bool(v.get("higher_is_better", True)),
                float(v["budget_sec"]),
            )
            for name, v in data.items()
        }
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ResultsFileError(f"{path}: not a valid targets file ({error!r})") from None


def _index(name: str) -> int:
    digits = re.sub(r"\D", "", name)
    return int(digits) if digits else 0
