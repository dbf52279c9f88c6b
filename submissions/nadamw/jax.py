"""NAdamW, AlgoPerf's current baseline (optax.nadamw): Nesterov Adam with decoupled weight decay, linear
warmup then cosine decay over ``workload.step_hint``, optional global-norm gradient clipping."""

from __future__ import annotations

import functools
from typing import Any

from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.jax import (
    data_selection,
    nadamw,
    optimizer_state,
    update_params,
    warmup_cosine,
    with_grad_clip,
)

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "nadamw")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> tuple[Any, Any]:
    optimizer = nadamw(hyperparameters, warmup_cosine(hyperparameters, workload.step_hint))
    return optimizer_state(with_grad_clip(hyperparameters, optimizer), model_params)
