"""Schedule-Free AdamW (Defazio et al., 2024; AlgoPerf v0.5's external-tuning runner-up) with
``optax.contrib.schedule_free_adamw``: gradients at y, evaluates x (``schedule_free_eval_params``), linear
warmup over ``warmup_factor`` x 0.75 x ``step_hint``, then a constant rate. See ``pytorch.py`` for ``r``."""

from __future__ import annotations

import functools
from typing import Any

import optax

from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers import jax as helpers
from pytest_algoperf.submission_helpers.jax import data_selection, swap_for_eval
from pytest_algoperf.submission_helpers.jax import update_params_after_swap as update_params

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "prepare_for_eval", "update_params"]

get_batch_size = functools.partial(batch_size, "schedule_free_adamw")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict[str, Any]:
    optimizer = optax.contrib.schedule_free_adamw(
        learning_rate=hyperparameters.learning_rate,
        warmup_steps=int(hyperparameters.warmup_factor * 0.75 * workload.step_hint),
        b1=1.0 - hyperparameters.one_minus_beta1,
        b2=hyperparameters.beta2,
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
        weight_lr_power=2.0,
    )
    return {"optax": helpers.optimizer_state(optimizer, model_params), "training_params": None}


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
    optax_state, _ = optimizer_state["optax"]

    def x(params: Any) -> Any:
        return optax.contrib.schedule_free_eval_params(optax_state, params)

    return optimizer_state, swap_for_eval(optimizer_state, current_param_container, x), model_state
