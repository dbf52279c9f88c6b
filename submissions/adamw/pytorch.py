"""AdamW (torch.optim.AdamW) with linear warmup then cosine decay over ``workload.step_hint``.

The training step, the batch sizes and data selection are the baselines' shared ones, public in
``pytest_algoperf.submission_helpers``; a submission of your own may equally define all five functions itself.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from pytest_algoperf.schedules import warmup_cosine_factor
from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.pytorch import data_selection, optimizer_state, update_params

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "adamw")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict[str, Any]:
    optimizer = torch.optim.AdamW(
        model_params.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
    )
    schedule = functools.partial(
        warmup_cosine_factor,
        warmup_steps=int(hyperparameters.warmup_factor * workload.step_hint),
        decay_steps=workload.step_hint,
    )
    return optimizer_state(optimizer, schedule)
