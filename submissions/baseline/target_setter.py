"""The framework-neutral half of the ``baseline`` submission: which built-in submission and point set a
workload's targets, as its ``calibration.json`` entry records them (``measured.submission`` and
``measured.point``)."""

from __future__ import annotations

import functools
import importlib
import json
from types import ModuleType
from typing import Any

from pytest_algoperf.calibration import target_setter
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.submission import BUILTIN_SUBMISSIONS_DIR

# An entry that records no calibrated point (a provisional one) falls back to AdamW's tuned default.
FALLBACK_SUBMISSION = "adamw"


def delegate(workload: Any, framework: str) -> tuple[ModuleType, Any]:
    """The target-setting submission's module for ``framework`` and its point as the hyperparameters it
    expects. Cached per calibration entry: ``update_params`` asks on every step."""
    return _delegate(workload.calibration_file, workload.calibration_entry, framework)


def _tuned_default() -> dict[str, Any]:
    """The first point of the fallback submission's search space, its tuned default."""
    path = BUILTIN_SUBMISSIONS_DIR / FALLBACK_SUBMISSION / "tuning_search_space.json"
    return dict(json.loads(path.read_text())[0])


@functools.cache
def _delegate(calibration_file: Any, entry: str, framework: str) -> tuple[ModuleType, Any]:
    name, point = target_setter(calibration_file, entry) or (FALLBACK_SUBMISSION, _tuned_default())
    module = importlib.import_module(f"algoperf_submissions.{name}.{framework}")
    return module, as_hyperparameters(point)
