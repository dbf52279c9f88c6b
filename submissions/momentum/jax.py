"""SGD with heavy-ball momentum (AlgoPerf's momentum baseline), optax.sgd: L2 weight decay,
linear warmup then linear decay, optional gradient clipping (see algoperf_submissions._common)."""

from __future__ import annotations

import functools
from typing import Any

from algoperf_submissions._common import batch_size
from algoperf_submissions._common.jax import (
    data_selection,
    optimizer_state,
    sgd,
    update_params,
    with_grad_clip,
)

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "momentum")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> tuple[Any, Any]:
    optimizer = sgd(hyperparameters, workload.step_hint, nesterov=False)
    return optimizer_state(with_grad_clip(hyperparameters, optimizer), model_params)
