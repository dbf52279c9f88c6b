"""The framework-neutral half of the ``baseline`` submission: which built-in submission and point set a
workload's targets, as its ``calibration.json`` entry records them (``measured.submission`` and
``measured.point``)."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any

from pytest_algoperf.calibration import target_setter
from pytest_algoperf.score.tuning import as_hyperparameters

# An entry that records no calibrated point (a provisional one) falls back to the tuned default of AdamW.
FALLBACK = ("adamw", {"learning_rate": 0.002, "one_minus_beta1": 0.1, "beta2": 0.999, "weight_decay": 0.01,
                      "warmup_factor": 0.05, "label_smoothing": 0.0, "dropout_rate": 0.0})  # fmt: skip


def delegate(workload: Any, framework: str) -> tuple[ModuleType, Any]:
    """The target-setting submission's module for ``framework`` and its point as the hyperparameters it
    expects. Cached per calibration entry: ``update_params`` asks on every step."""
    return _delegate(workload.calibration_file, workload.calibration_entry, framework)


@functools.cache
def _delegate(calibration_file: Any, entry: str, framework: str) -> tuple[ModuleType, Any]:
    name, point = target_setter(calibration_file, entry) or FALLBACK
    module = importlib.import_module(f"algoperf_submissions.{name}.{framework}")
    return module, as_hyperparameters(point)
