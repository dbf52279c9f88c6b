"""NAdamW with a cyclic schedule: AlgoPerf v0.5's Cyclic LR submission (Ajroldi, Orvieto, Geiping).
``cycles`` copies of the baseline's warmup-then-cosine over ``step_hint // cycles`` steps each, each
with the full warmup; one cycle is the NAdamW baseline."""

from __future__ import annotations

import functools
from typing import Any

from pytest_algoperf.schedules import cyclic_warmup_cosine_factor
from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.pytorch import data_selection, nadamw, optimizer_state, update_params

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "nadamw_cyclic")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict[str, Any]:
    schedule = functools.partial(
        cyclic_warmup_cosine_factor,
        warmup_steps=int(hyperparameters.warmup_factor * workload.step_hint),
        decay_steps=workload.step_hint,
        cycles=hyperparameters.cycles,
    )
    return optimizer_state(nadamw(model_params, hyperparameters), schedule)
