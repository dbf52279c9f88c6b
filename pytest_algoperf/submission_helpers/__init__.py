"""Helpers for writing a submission: what the built-in baselines are made of, public and stable.

A submission written against AlgoPerf's API alone runs as it is; these save repeating the parts every
optimizer shares, so a submission says only how its optimizer is built (``submissions/adamw/`` is one file
per framework of that size):

- ``batch_size(submission, workload_name)``: the baselines' batch size per workload (``BATCH_SIZES``), the
  sizes every target was calibrated with.
- ``warmup_cosine_factor``, ``warmup_linear_decay_factor``: learning-rate multipliers as pure functions
  (PyTorch's ``LambdaLR``); in ``.jax``, ``warmup_cosine`` and ``warmup_linear_decay`` as optax schedules that
  match them step for step.
- ``.pytorch``: ``optimizer_state(optimizer, lr_factor)``, then ``update_params`` (forward, the global mean
  loss, backward, optional ``grad_clip``, optimizer and schedule step) and ``data_selection``;
  ``sgd_optimizer_state`` for the SGD family.
- ``.jax``: ``optimizer_state(optax_transformation, params)``, then a jitted ``update_params`` (the update
  function is a static argument, so each optimizer compiles its step once), ``data_selection``,
  ``with_grad_clip`` and ``sgd_optimizer_state``.

Each module's ``__all__`` is the stable surface; names with a leading underscore may change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_algoperf.schedules import warmup_cosine_factor, warmup_linear_decay_factor

__all__ = [
    "BATCH_SIZES",
    "batch_size",
    "data_selection",
    "warmup_cosine_factor",
    "warmup_linear_decay_factor",
]

BATCH_SIZES: dict[str, int] = json.loads(Path(__file__).with_name("batch_sizes.json").read_text())


def batch_size(submission: str, workload_name: str) -> int:
    """The baselines' batch size for a workload: AlgoPerf's baselines share one per workload too."""
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"{submission} has no batch size for workload {workload_name!r}")
    return BATCH_SIZES[workload_name]


def data_selection(
    workload: Any,
    input_queue: Any,
    optimizer_state: Any,
    current_param_container: Any,
    model_state: Any,
    hyperparameters: Any,
    global_step: int,
    rng: Any,
) -> Any:
    """AlgoPerf's default data selection, in either framework: the input queue's next batch."""
    return next(input_queue)
