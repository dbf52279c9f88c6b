"""The forward and backward pass alone (see ``pytorch.py``) in the baselines' jitted step: updates of 0 x
the gradients, not ``optax.set_to_zero``, whose unused gradients XLA would drop with the backward pass."""

from __future__ import annotations

import functools
from typing import Any

import optax

from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.jax import data_selection, optimizer_state, update_params

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "gradient_only")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> tuple[Any, Any]:
    return optimizer_state(optax.scale(0.0), model_params)
