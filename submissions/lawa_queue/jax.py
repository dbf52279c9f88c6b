"""NAdamW (optax.nadamw, the baseline's warmup and cosine) that evaluates averaged weights: the uniform
average of the last ``k`` snapshots, taken every ``lawa_interval_scaling`` x ``step_hint`` steps from
``lawa_start_factor`` x ``step_hint`` on (AlgoPerf v0.5's LAWA Queue, Ajroldi, Orvieto, Geiping).

``prepare_for_eval`` swaps the average in; the next ``update_params`` trains on from the raw params.
"""

from __future__ import annotations

import functools
from typing import Any

from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.averaging import AveragingSchedule, WeightAverage
from pytest_algoperf.submission_helpers.jax import (
    averaged_optimizer_state,
    data_selection,
    nadamw,
    prepare_for_eval_with_average,
    update_params_with_average,
    warmup_cosine,
)

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "prepare_for_eval", "update_params"]

get_batch_size = functools.partial(batch_size, "lawa_queue")
update_params = update_params_with_average
prepare_for_eval = prepare_for_eval_with_average


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict[str, Any]:
    return nadamw_with_average(
        workload, model_params, hyperparameters, WeightAverage(queue_length=hyperparameters.k)
    )


def nadamw_with_average(
    workload: Any, model_params: Any, hyperparameters: Any, average: WeightAverage
) -> dict[str, Any]:
    """The baseline's NAdamW, warmup and cosine, with ``average`` taking snapshots on LAWA's schedule."""
    return averaged_optimizer_state(
        nadamw(hyperparameters, warmup_cosine(hyperparameters, workload.step_hint)),
        model_params,
        average,
        AveragingSchedule.from_hyperparameters(hyperparameters, workload.step_hint),
    )
