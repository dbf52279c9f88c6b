"""Reading logs: our ``results.json`` files and experiment folders in AlgoPerf's layout.

An experiment folder holds ``study_<s>/<workload>_<framework>/trial_<t>/eval_measurements.csv``; the folder
above ``study_*`` is the submission. AlgoPerf's leaderboard repositories nest submissions as
``{external_tuning,self_tuning}/[<team>/]<submission>``; the ruleset comes from that path, else from the
trial's ``flags_<rank>.json`` (``tuning_ruleset``), else it is external. Time to target is recomputed from
the CSV: the ``score`` (submission time) of the first eval whose validation metric meets the target.

A trial's target comes from, in order: ``--targets FILE``; the trial's meta data (our ``meta_data.json``, or
AlgoPerf's ``meta_data_<rank>.json`` with its ``workload.*`` keys); the built-in table of the AlgoPerf
version (``versions.py``). Every workload still unknown is named in one error.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_algoperf.results import EvalRecord, RunResult
from pytest_algoperf.score.versions import LOWER_IS_BETTER, V06, AlgoPerfVersion, Target

FOLDER = re.compile(r"^(?P<workload>.+)_(?P<framework>pytorch|jax)$")
RULESET_FOLDERS = {"external_tuning": "external", "self_tuning": "self"}
ALGOPERF = "algoperf"  # where a run came from: AlgoPerf's harness ...
OURS = "pytest-algoperf"  # ... or ours


class ResultsFileError(ValueError):
    """Input that cannot be scored; the message names the file and what is wrong with it."""


@dataclass
class LoadedRuns:
    """Runs grouped by ruleset, with what the report needs to say about where they came from."""

    runs: dict[str, list[RunResult]] = field(default_factory=dict)  # [ruleset] -> runs
    origins: set[str] = field(default_factory=set)
    folders: dict[str, Path] = field(default_factory=dict)  # test_id -> trial folder
    hardware: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def add(self, ruleset: str, run: RunResult, origin: str, folder: Path | None = None) -> None:
        self.runs.setdefault(ruleset, []).append(run)
        self.origins.add(origin)
        if folder is not None:
            self.folders[run.test_id] = folder

    @property
    def all_runs(self) -> list[RunResult]:
        return [r for runs in self.runs.values() for r in runs]


def load_results_file(path: Path) -> list[RunResult]:
    try:
        document = json.loads(path.read_text())
        return [RunResult.from_json(run) for run in document["runs"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ResultsFileError(f"{path}: not a pytest-algoperf results file ({error})") from None


def _results_file_ruleset(path: Path) -> str:
    try:
        return json.loads(path.read_text()).get("session", {}).get("ruleset") or "external"
    except (OSError, json.JSONDecodeError, AttributeError):
        return "external"


def submission_folders(root: Path) -> list[Path]:
    """Every folder under ``root`` (``root`` included) that holds ``study_*`` folders."""
    found = {p.parent for p in root.rglob("study_*") if p.is_dir()}
    if any(p.is_dir() for p in root.glob("study_*")):
        found.add(root)
    return sorted(found)


def _ruleset_from_path(folder: Path, root: Path) -> str | None:
    for part in (*root.parts, *folder.relative_to(root).parts):
        if part in RULESET_FOLDERS:
            return RULESET_FOLDERS[part]
    return None


def load(
    paths: Iterable[Path], version: AlgoPerfVersion = V06, targets: Mapping[str, Target] | None = None
) -> LoadedRuns:
    """Reads every results file and experiment folder in ``paths``; see the module docstring."""
    paths = list(paths)
    loaded = LoadedRuns()
    unknown: dict[str, Path] = {}
    for path in paths:
        if path.is_file():
            for run in load_results_file(path):
                loaded.add(_results_file_ruleset(path), run, OURS)
            continue
        folders = submission_folders(path) if path.is_dir() else []
        if not folders:
            raise ResultsFileError(f"{path}: neither a results.json nor a folder with study_* subfolders")
        names = _submission_names(folders, path)
        for folder in folders:
            _load_submission(
                folder, names[folder], _ruleset_from_path(folder, path), version, targets, loaded, unknown
            )
    if unknown:
        listing = "; ".join(f"{w!r} (e.g. {p})" for w, p in sorted(unknown.items()))
        raise ResultsFileError(
            f"no target known for {len(unknown)} workload(s): {listing}; pass --targets FILE with "
            '{"<workload>": {"metric": ..., "validation": ..., "higher_is_better": ..., "budget_sec": ...}}'
        )
    if not loaded.runs and not any(p.is_file() for p in paths):
        where = ", ".join(map(str, paths))
        raise ResultsFileError(
            f"{where}: no study_*/<workload>_<framework>/trial_*/eval_measurements.csv found"
        )
    return loaded


def _submission_names(folders: list[Path], root: Path) -> dict[Path, str]:
    """A submission is named after its folder; where two share a name in one ruleset (two teams), the
    name includes the folder above it."""
    names = {f: f.name for f in folders}
    seen: dict[tuple[str | None, str], list[Path]] = {}
    for f in folders:
        seen.setdefault((_ruleset_from_path(f, root), f.name), []).append(f)
    for clash in (fs for fs in seen.values() if len(fs) > 1):
        for f in clash:
            names[f] = f"{f.parent.name}/{f.name}"
    return names


def load_experiment_folder(
    folder: Path,
    submission: str | None = None,
    targets: Mapping[str, Target] | None = None,
    version: AlgoPerfVersion = V06,
) -> list[RunResult]:
    """Every trial under one submission's folder (AlgoPerf's layout), named after the folder."""
    loaded, unknown = LoadedRuns(), {}
    _load_submission(folder, submission or folder.name, None, version, targets, loaded, unknown)
    if not loaded.runs and not unknown:
        raise ResultsFileError(loaded.notes[0])
    if unknown:
        workload, path = next(iter(unknown.items()))
        raise ResultsFileError(f"{path}: no target known for workload {workload!r}; pass --targets FILE")
    return loaded.all_runs


def _load_submission(
    folder: Path,
    submission: str,
    ruleset: str | None,
    version: AlgoPerfVersion,
    targets: Mapping[str, Target] | None,
    loaded: LoadedRuns,
    unknown: dict[str, Path],
) -> None:
    csv_files = sorted(folder.glob("study_*/*/trial_*/eval_measurements.csv"), key=_trial_order)
    if not csv_files:
        # AlgoPerf's scoring reads only these files; a folder without any (only .log files) adds no runs.
        loaded.notes.append(f"{folder}: no study_*/<workload>_<framework>/trial_*/eval_measurements.csv")
        return
    for path in csv_files:
        trial = path.parent
        match = FOLDER.match(trial.parent.name)
        if match is None:
            raise ResultsFileError(f"{trial.parent}: expected a folder named <workload>_<pytorch|jax>")
        workload = match["workload"]
        meta, origin = _meta_data(trial)
        trial_ruleset = ruleset or _flags(trial).get("tuning_ruleset") or "external"
        target = _target(workload, meta, origin, version, targets, loaded)
        if target is None:
            unknown.setdefault(workload, trial)
            continue
        # AlgoPerf's meta data give the external budget; self-tuning runs had the version's multiple of it.
        factor = version.budget_factor(trial_ruleset) if origin == ALGOPERF else 1.0
        result = _trial_result(path, submission, match["framework"], workload, target, factor)
        result.base_workload = (
            version.variant_of.get(workload, "") if origin == ALGOPERF else meta.get("base_workload", "")
        )
        hardware = _hardware(meta)
        if hardware:
            loaded.hardware.add(hardware)
        loaded.add(trial_ruleset, result, origin, trial)


def _trial_order(path: Path) -> tuple[int, str, int]:
    trial, workload_folder, study = path.parent, path.parent.parent, path.parent.parent.parent
    return (_index(study.name), workload_folder.name, _index(trial.name))


def _meta_data(trial: Path) -> tuple[dict[str, Any], str]:
    """The trial's meta data and who wrote it: ours (``meta_data.json``) or AlgoPerf's (rank 0's)."""
    ours = trial / "meta_data.json"
    if ours.is_file():
        return _json(ours), OURS
    ranks = sorted(trial.glob("meta_data_*.json"), key=lambda p: _index(p.stem))
    return (_json(ranks[0]) if ranks else {}), ALGOPERF


def _flags(trial: Path) -> dict[str, Any]:
    ranks = sorted(trial.glob("flags_*.json"), key=lambda p: _index(p.stem))
    return _json(ranks[0]) if ranks else {}


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ResultsFileError(f"{path}: not valid JSON ({error})") from None
    return data if isinstance(data, dict) else {}


def _target(
    workload: str,
    meta: Mapping[str, Any],
    origin: str,
    version: AlgoPerfVersion,
    targets: Mapping[str, Target] | None,
    loaded: LoadedRuns,
) -> Target | None:
    known = version.targets.get(workload)
    if targets and workload in targets:
        return targets[workload]
    if origin == OURS and meta.get("validation_target") is not None and meta.get("target_metric"):
        return Target(
            meta["target_metric"],
            float(meta["validation_target"]),
            bool(meta.get("higher_is_better", True)),
            float(meta.get("budget_sec") or math.inf),
        )
    value, metric = meta.get("workload.validation_target_value"), meta.get("workload.target_metric_name")
    if value is not None and metric:
        budget = meta.get("workload.max_allowed_runtime_sec") or (known.budget_sec if known else math.nan)
        logged = Target(metric, float(value), metric not in LOWER_IS_BETTER, float(budget))
        if known and (known.metric, known.validation) != (logged.metric, logged.validation):
            note = (
                f"{workload}: the logs' target ({logged.metric} {logged.validation:g}) differs from "
                f"AlgoPerf {version.name}'s ({known.metric} {known.validation:g}); the logs' is used "
                "(--targets FILE overrides it)"
            )
            if note not in loaded.notes:
                loaded.notes.append(note)
        return logged
    return known


def _trial_result(
    path: Path,
    submission: str,
    framework: str,
    workload: str,
    target: Target,
    budget_factor: float,
) -> RunResult:
    trial, study = path.parent, path.parent.parent.parent
    result = RunResult(
        test_id=f"{submission}-{framework}-{workload}-{study.name}-{trial.name}",
        submission=submission,
        framework=framework,
        workload=workload,
        seed=0,
        study=_index(study.name),
        trial=max(_index(trial.name) - 1, 0),  # trial_1 is our trial 0, as our own folders are written
        target_metric=target.metric,
        higher_is_better=target.higher_is_better,
        validation_target=target.validation,
        budget_sec=target.budget_sec * budget_factor,
    )
    result.evals = read_evals(path)
    column = f"validation/{target.metric}"
    values = [record.metrics.get(column, math.nan) for record in result.evals]
    if result.evals and all(column not in record.metrics for record in result.evals):
        raise ResultsFileError(
            f"{path}: no column {column!r} for the target of {workload!r}; the CSV has "
            f"{sorted(result.evals[0].metrics)}; pass --targets FILE with the right metric"
        )
    for record, value in zip(result.evals, values, strict=True):
        if value >= target.validation if target.higher_is_better else value <= target.validation:
            result.reached, result.time_to_target, result.steps_to_target = (
                True,
                record.score,
                record.global_step,
            )
            break
    finite = [v for v in values if math.isfinite(v)]
    if finite:
        result.best_validation = max(finite) if target.higher_is_better else min(finite)
    if result.evals:
        last = result.evals[-1]
        result.global_step, result.submission_time = last.global_step, last.score
        result.eval_time, result.logging_time = (
            _finite(last.accumulated_eval_time),
            _finite(last.accumulated_logging_time),
        )
        result.total_duration = _finite(last.total_duration)
    result.stop_reason = "reached" if result.reached else "missed"
    return result


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def read_evals(path: Path) -> list[EvalRecord]:
    """The rows of an ``eval_measurements.csv``; ``score`` falls back to accumulated_submission_time."""

    def number(row: dict[str, str], key: str) -> float:
        value = row.get(key, "")
        try:
            return float(value) if value not in ("", None) else math.nan
        except ValueError:
            return math.nan

    records = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            score = number(row, "score")
            records.append(
                EvalRecord(
                    global_step=int(number(row, "global_step"))
                    if math.isfinite(number(row, "global_step"))
                    else 0,
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


def _hardware(meta: Mapping[str, Any]) -> str:
    model, count = meta.get("gpu_model_name"), meta.get("gpu_count")
    if model:
        return f"{count}x {model}" if count else str(model)
    return str(meta.get("processor") or "")


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


def load_held_out_file(path: Path) -> list[str]:
    """A JSON list of held-out variant names, as AlgoPerf's ``held_out_workloads_*.json``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ResultsFileError(f"{path}: not a valid held-out workloads file ({error})") from None
    if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
        raise ResultsFileError(
            f'{path}: expected a JSON list of variant names, e.g. ["criteo1tb_embed_init", "fastmri_tanh"]'
        )
    return data


def _index(name: str) -> int:
    digits = re.sub(r"\D", "", name)
    return int(digits) if digits else 0
