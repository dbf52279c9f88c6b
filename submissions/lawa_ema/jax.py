"""NAdamW (optax.nadamw, the baseline's warmup and cosine) that evaluates averaged weights: an exponential
moving average (weight ``lawa_beta`` on the past) of snapshots taken every ``lawa_interval_scaling`` x
``step_hint`` steps from ``lawa_start_factor`` x ``step_hint`` on (AlgoPerf v0.5's LAWA EMA, Ajroldi,
Orvieto, Geiping). Its published code read ``int(lawa_beta)``, so the EMA it was scored with was the latest
snapshot; ``tuning_search_space.json`` says so with ``lawa_beta`` 0.0.

``prepare_for_eval`` swaps the average in; the next ``update_params`` trains on from the raw params.
"""

from __future__ import annotations

import functools
from typing import Any

from algoperf_submissions.lawa_queue.jax import nadamw_with_average
from pytest_algoperf.submission_helpers import batch_size
from pytest_algoperf.submission_helpers.averaging import WeightAverage
from pytest_algoperf.submission_helpers.jax import (
    data_selection,
    prepare_for_eval_with_average,
    update_params_with_average,
)

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "prepare_for_eval", "update_params"]

get_batch_size = functools.partial(batch_size, "lawa_ema")
update_params = update_params_with_average
prepare_for_eval = prepare_for_eval_with_average


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict[str, Any]:
    return nadamw_with_average(
        workload, model_params, hyperparameters, WeightAverage(ema_beta=hyperparameters.lawa_beta)
    )
