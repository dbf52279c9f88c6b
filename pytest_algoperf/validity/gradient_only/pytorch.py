"""The forward and backward pass alone: a submission whose optimizer does nothing, so its step time is what
every other submission's step spends before its update (``pytest_algoperf.validity.update_share``)."""

from __future__ import annotations

import functools
from typing import Any

import torch

from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.pytorch import data_selection, optimizer_state, update_params

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "gradient_only")


class NoUpdate(torch.optim.Optimizer):
    """Keeps the parameters as they are: ``zero_grad`` still clears the gradients, as for any optimizer."""

    def __init__(self, parameters: Any) -> None:
        super().__init__(parameters, {"lr": 0.0})

    def step(self, closure: Any = None) -> None:
        return None


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict[str, Any]:
    return optimizer_state(NoUpdate(model_params.parameters()), lambda step: 1.0)
