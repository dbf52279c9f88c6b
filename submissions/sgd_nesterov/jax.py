"""SGD with Nesterov momentum (AlgoPerf's nesterov baseline), optax.sgd: L2 weight decay,
linear warmup then linear decay, optional gradient clipping (see pytest_algoperf.submission_helpers)."""

from __future__ import annotations

import functools
from typing import Any

from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.jax import data_selection, sgd_optimizer_state, update_params

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "sgd_nesterov")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> tuple[Any, Any]:
    return sgd_optimizer_state(workload, model_params, hyperparameters, nesterov=True)
