"""AdamW with linear warmup then cosine decay over ``workload.step_hint`` (optax), one jitted step."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jax
import optax

from pytest_algoperf.spec import ForwardPassMode

BATCH_SIZES = json.loads(Path(__file__).with_name("batch_sizes.json").read_text())


def get_batch_size(workload_name: str) -> int:
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"adamw has no batch size for workload {workload_name!r}")
    return BATCH_SIZES[workload_name]


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> Any:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=hyperparameters.learning_rate,
        warmup_steps=int(hyperparameters.warmup_factor * workload.step_hint),
        decay_steps=workload.step_hint,
        end_value=0.0,
    )
    optimizer = optax.adamw(
        learning_rate=schedule,
        b1=1.0 - hyperparameters.one_minus_beta1,
        b2=hyperparameters.beta2,
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
    )
    return optimizer.init(model_params), optimizer.update


# label_smoothing and dropout_rate are static: Python floats, so models may use them in Python control flow.
@functools.partial(jax.jit, static_argnums=(0, 1, 7, 8))
def _train_step(
    workload: Any,
    update_fn: Any,
    model_state: Any,
    optimizer_state: Any,
    params: Any,
    batch: dict[str, Any],
    rng: Any,
    label_smoothing: float,
    dropout_rate: float | None,
) -> tuple[Any, Any, Any, jax.Array]:
    def loss_fn(params: Any) -> tuple[jax.Array, Any]:
        logits, new_model_state = workload.model_fn(
            params,
            batch,
            model_state,
            ForwardPassMode.TRAIN,
            rng,
            update_batch_norm=True,
            dropout_rate=dropout_rate,
        )
        loss_dict = workload.loss_fn(batch["targets"], logits, batch.get("weights"), label_smoothing)
        return loss_dict["summed"] / loss_dict["n_valid_examples"], new_model_state

    (loss, new_model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, new_optimizer_state = update_fn(grads, optimizer_state, params)
    return new_optimizer_state, optax.apply_updates(params, updates), new_model_state, loss


def update_params(
    workload: Any,
    current_param_container: Any,
    current_params_types: Any,
    model_state: Any,
    hyperparameters: Any,
    batch: dict[str, Any],
    loss_type: Any,
    optimizer_state: Any,
    eval_results: list,
    global_step: int,
    rng: Any,
) -> tuple[Any, Any, Any]:
    optax_state, update_fn = optimizer_state
    new_optax_state, new_params, new_model_state, _ = _train_step(
        workload,
        update_fn,
        model_state,
        optax_state,
        current_param_container,
        batch,
        rng,
        getattr(hyperparameters, "label_smoothing", 0.0),
        getattr(hyperparameters, "dropout_rate", None),
    )
    return (new_optax_state, update_fn), new_params, new_model_state


def data_selection(
    workload: Any,
    input_queue: Any,
    optimizer_state: Any,
    current_param_container: Any,
    model_state: Any,
    hyperparameters: Any,
    global_step: int,
    rng: Any,
) -> dict[str, Any]:
    return next(input_queue)
