"""What produced a number: the plugin's version, the calibration a run was judged by, the submission file.

A time to target means something only against the targets, budget and eval period it was measured with. Each
run records those values with a digest (``calibration_record``), and the digest of its submission file; a
baseline file keeps both, and the regression gate refuses to compare a run with a baseline made under another
calibration (``calibration_change`` says what changed), unless ``--algoperf-allow-recalibration`` is given.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_algoperf.frameworks.parameter_scale import own_parameter_scale
from pytest_algoperf.spec import Workload

DIGEST_LENGTH = 16  # hex characters: enough to tell calibrations apart, short enough to read


def plugin_version() -> str:
    try:
        return metadata.version("pytest-algoperf")
    except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown"


def digest_of(values: Mapping[str, Any]) -> str:
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:DIGEST_LENGTH]


def calibration_values(workload: Workload) -> dict[str, Any]:
    """The workload's calibrated numbers, as the run sees them (a variant's budget is its base's), and its
    parameter scale where it is not 1 (the targets hold only at it; left out at 1, so that records made
    before workloads had one keep their digest)."""
    scale = own_parameter_scale(workload)
    return {
        "validation_target": workload.validation_target_value,
        "test_target": workload.test_target_value,
        "max_allowed_runtime_sec": workload.max_allowed_runtime_sec,
        "eval_period_time_sec": workload.eval_period_time_sec,
        "step_hint": workload.step_hint,
        "steps_in_budget": getattr(workload, "steps_in_budget", None),
        "hardware_profile": getattr(workload, "hardware_profile", None),
        "target_seed_std": getattr(workload, "target_seed_std", None),
        **({"parameter_scale": scale} if scale != 1 else {}),
    }


def calibration_record(workload: Workload) -> dict[str, Any]:
    """The values and their digest, as results and baseline files keep them."""
    values = calibration_values(workload)
    return {**values, "digest": digest_of(values)}


def calibration_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """What differs between two calibration records: ``validation_target 0.67 -> 0.7, ...``."""
    keys = sorted((set(before) | set(after)) - {"digest"})
    differing = [key for key in keys if before.get(key) != after.get(key)]
    changes = [f"{key} {before.get(key)} -> {after.get(key)}" for key in differing]
    return ", ".join(changes) or "the digest differs"
