"""NAdamW with a cyclic schedule (AlgoPerf v0.5's Cyclic LR): optax.nadamw on ``cycles`` warmup-then-cosine
cycles of ``step_hint // cycles`` steps (``optax.sgdr_schedule``)."""

from __future__ import annotations

import functools
from typing import Any

from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.jax import (
    cyclic_warmup_cosine,
    data_selection,
    nadamw,
    optimizer_state,
    update_params,
    with_grad_clip,
)

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "nadamw_cyclic")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> tuple[Any, Any]:
    optimizer = nadamw(hyperparameters, cyclic_warmup_cosine(hyperparameters, workload.step_hint))
    return optimizer_state(with_grad_clip(hyperparameters, optimizer), model_params)
