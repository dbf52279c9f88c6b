"""AdamW (optax.adamw) with linear warmup then cosine decay over ``workload.step_hint``, one jitted step
(``pytest_algoperf.submission_helpers.jax``)."""

from __future__ import annotations

import functools
from typing import Any

import optax

from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.jax import (
    data_selection,
    optimizer_state,
    update_params,
    warmup_cosine,
    with_grad_clip,
)

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "adamw")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> tuple[Any, Any]:
    optimizer = optax.adamw(
        learning_rate=warmup_cosine(hyperparameters, workload.step_hint),
        b1=1.0 - hyperparameters.one_minus_beta1,
        b2=hyperparameters.beta2,
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
    )
    return optimizer_state(with_grad_clip(hyperparameters, optimizer), model_params)
