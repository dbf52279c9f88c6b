"""Schedule-Free AdamW (Defazio et al., 2024), AlgoPerf v0.5's external-tuning runner-up, with the
``schedulefree`` package: gradients at y, an average x evaluated, linear warmup over ``warmup_factor`` x
0.75 x ``step_hint`` as its submission did, then a constant rate (no schedule to size).

``prepare_for_eval`` puts the optimizer in eval mode (the weights become x); ``update_params`` back in train
mode (y) before its step. ``r`` stays 0, the package's default and the only value optax offers, so both
frameworks run one algorithm; the v0.5 submission used 0.5 (its v2 notes say so).
"""

from __future__ import annotations

import functools
from typing import Any

import schedulefree

from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.pytorch import data_selection, optimizer_state, train_step

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "prepare_for_eval", "update_params"]

get_batch_size = functools.partial(batch_size, "schedule_free_adamw")


def _warmup_steps(hyperparameters: Any, step_hint: int) -> int:
    return int(hyperparameters.warmup_factor * 0.75 * step_hint)


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict[str, Any]:
    optimizer = schedulefree.AdamWScheduleFree(
        model_params.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
        warmup_steps=_warmup_steps(hyperparameters, workload.step_hint),
        weight_lr_power=2.0,
    )
    optimizer.train()
    return optimizer_state(optimizer, _constant)


def update_params(
    workload: Any,
    current_param_container: Any,
    current_params_types: Any,
    model_state: Any,
    hyperparameters: Any,
    batch: dict[str, Any],
    loss_type: Any,
    optimizer_state: dict[str, Any],
    eval_results: list,
    global_step: int,
    rng: Any,
) -> tuple[dict[str, Any], Any, Any]:
    optimizer_state["optimizer"].train()  # a no-op unless an evaluation left it in eval mode
    return train_step(
        workload, current_param_container, model_state, hyperparameters, batch, optimizer_state, rng
    )


def prepare_for_eval(
    workload: Any,
    current_param_container: Any,
    current_params_types: Any,
    model_state: Any,
    hyperparameters: Any,
    loss_type: Any,
    optimizer_state: dict[str, Any],
    eval_results: list,
    global_step: int,
    rng: Any,
) -> tuple[dict[str, Any], Any, Any]:
    optimizer_state["optimizer"].eval()
    return optimizer_state, current_param_container, model_state


def _constant(step: int) -> float:
    return 1.0  # the optimizer warms up by itself
