"""The ``baseline`` submission, framework-neutral: on each workload, the built-in submission and point whose
reruns set that workload's targets, as its ``calibration.json`` entry records them (``measured.submission``
and ``measured.point``).

AlgoPerf sets each workload's target from the best of several tuned baselines (AdamW, NAdamW, SGD with
Nesterov, heavy-ball momentum), so no single baseline is the one that meets them all: on imagenet_vit_mini
and imagenet_resnet_mini SGD with Nesterov set them. ``make bench`` runs this submission. Its search space is
one placeholder point, ``from_calibration``: the hyperparameters the harness passes are not used.

It trains as the target-setting runs did, over 3/4 of step_hint (AlgoPerf's target-setting submissions do the
same), so it meets a target about where they did, at about 3/4 of the budget.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

from pytest_algoperf.calibration import target_setter, target_setting_steps
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.submission import BUILTIN_SUBMISSIONS_DIR

# An entry that records no calibrated point (a provisional one) falls back to AdamW's tuned default.
FALLBACK_SUBMISSION = "adamw"


def delegate(workload: Any, framework: str) -> tuple[ModuleType, Any]:
    """The target-setting submission's module for ``framework`` and its point as the hyperparameters it
    expects. Cached per calibration entry: ``update_params`` asks on every step."""
    return _delegate(workload.calibration_file, workload.calibration_entry, framework)


def delegating_functions(framework: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``init_optimizer_state`` and ``update_params`` for ``framework`` that hand each call to the workload's
    target-setting submission, with its point in place of the harness's hyperparameters."""

    def init_optimizer_state(
        workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
    ) -> Any:
        module, point = delegate(workload, framework)
        return module.init_optimizer_state(TargetSettingView(workload), model_params, model_state, point, rng)

    def update_params(
        workload: Any,
        current_param_container: Any,
        current_params_types: Any,
        model_state: Any,
        hyperparameters: Any,
        batch: dict[str, Any],
        loss_type: Any,
        optimizer_state: Any,
        eval_results: list,
        global_step: int,
        rng: Any,
    ) -> tuple[Any, Any, Any]:
        module, point = delegate(workload, framework)
        return module.update_params(
            workload, current_param_container, current_params_types, model_state, point, batch, loss_type,
            optimizer_state, eval_results, global_step, rng,
        )  # fmt: skip

    return init_optimizer_state, update_params


class TargetSettingView:
    """The workload as a target-setting run sees it: its step_hint is the target-setting schedule's, the rest
    is the workload's. Only the optimizer's schedule reads it (``init_optimizer_state``)."""

    def __init__(self, workload: Any) -> None:
        self._workload = workload

    def __getattr__(self, name: str) -> Any:
        return getattr(self._workload, name)

    @property
    def step_hint(self) -> int:
        return target_setting_steps(self._workload.step_hint)


def _tuned_default() -> dict[str, Any]:
    """The first point of the fallback submission's search space, its tuned default."""
    path = BUILTIN_SUBMISSIONS_DIR / FALLBACK_SUBMISSION / "tuning_search_space.json"
    return dict(json.loads(path.read_text())[0])


@functools.cache
def _delegate(calibration_file: Any, entry: str, framework: str) -> tuple[ModuleType, Any]:
    name, point = target_setter(calibration_file, entry) or (FALLBACK_SUBMISSION, _tuned_default())
    module = importlib.import_module(f"algoperf_submissions.{name}.{framework}")
    return module, as_hyperparameters(point)
