"""NAdamW, AlgoPerf's current baseline: Nesterov Adam with decoupled weight decay, linear warmup then
cosine decay over ``workload.step_hint``, optional global-norm gradient clipping (``grad_clip``).

torch.optim.NAdam with ``decoupled_weight_decay=True`` is NAdamW once its momentum schedule is switched off:
an infinite ``momentum_decay`` makes Dozat's mu_t the constant beta1, and the update is then optax.nadamw's
step for step (tests/test_baselines.py checks it).
"""

from __future__ import annotations

import functools
from typing import Any

from pytest_algoperf.schedules import warmup_cosine_factor
from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.pytorch import data_selection, nadamw, optimizer_state, update_params

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "nadamw")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict[str, Any]:
    schedule = functools.partial(
        warmup_cosine_factor,
        warmup_steps=int(hyperparameters.warmup_factor * workload.step_hint),
        decay_steps=workload.step_hint,
    )
    return optimizer_state(nadamw(model_params, hyperparameters), schedule)
