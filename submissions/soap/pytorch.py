"""SOAP (Vyas et al., 2024: Adam in Shampoo's eigenbasis) from ``heavyball``, the panel's Shampoo-family
method in place of AlgoPerf v0.5's winner, Distributed Shampoo, which no package on the registry ships.
The schedule is the Shampoo submission's: linear warmup, then cosine decay to 0 at ``step_hint_factor`` x
``step_hint``; blocks of at most ``max_precond_dim``; the eigenbasis is refreshed every
``precondition_frequency`` steps. PyTorch only: no JAX package provides SOAP or Shampoo.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import heavyball
import heavyball.utils

from pytest_algoperf.schedules import warmup_cosine_factor
from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.pytorch import data_selection, optimizer_state, update_params

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "soap")

# heavyball compiles its step with torch.compile by default, and on a CPU the autotuning takes seconds per
# tensor shape, inside the clock: the eager step is what a mini workload can afford.
heavyball.utils.compile_mode = None
# The schedule changes the rate every step on purpose, which heavyball supports with its default multi_tensor.
warnings.filterwarnings("ignore", message="Learning rate changed between steps", module="heavyball")


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict[str, Any]:
    optimizer = heavyball.SOAP(
        model_params.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
        precondition_frequency=hyperparameters.precondition_frequency,
        max_precond_dim=hyperparameters.max_precond_dim,
        compile_step=False,
    )
    decay_steps = int(hyperparameters.step_hint_factor * workload.step_hint)
    schedule = functools.partial(
        warmup_cosine_factor,
        warmup_steps=int(hyperparameters.warmup_factor * decay_steps),
        decay_steps=decay_steps,
    )
    return optimizer_state(optimizer, schedule)
