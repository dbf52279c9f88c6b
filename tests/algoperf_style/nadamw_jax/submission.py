"""NAdamW with linear warmup and cosine decay, written as a JAX submission to AlgoPerf v0.6: it imports only
through ``algoperf`` (plus chex and absl), builds its optimizer state from ``workload.param_shapes``, jits its
step with ``in_shardings``/``out_shardings`` on ``jax_sharding_utils``' mesh and donates the state it
replaces, and its batch sizes are AlgoPerf's, keyed by AlgoPerf's workload names."""

from collections.abc import Iterator
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from absl import logging
from algoperf import jax_sharding_utils, spec

BATCH_SIZES = {
    "criteo1tb": 262_144,
    "fastmri": 32,
    "imagenet_resnet": 1024,
    "imagenet_vit": 1024,
    "librispeech_conformer": 256,
    "librispeech_deepspeech": 256,
    "ogbg": 512,
    "wmt": 128,
    "mnist": 16,
}


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
    del model_params, model_state, rng
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=hyperparameters.learning_rate,
        warmup_steps=int(hyperparameters.warmup_factor * workload.step_hint),
        decay_steps=workload.step_hint,
    )
    optimizer = optax.nadamw(
        learning_rate=schedule,
        b1=1.0 - hyperparameters.one_minus_beta1,
        b2=hyperparameters.beta2,
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
    )
    zeros = jax.tree.map(lambda shape: jnp.zeros(shape.shape_tuple), workload.param_shapes)
    return optimizer.init(zeros), optimizer.update


def train_step(
    workload: spec.Workload,
    update_fn: Any,
    model_state: spec.ModelAuxiliaryState,
    optimizer_state: Any,
    params: spec.ParameterContainer,
    batch: dict[str, spec.Tensor],
    rng: spec.RandomState,
    label_smoothing: float,
    dropout_rate: float,
) -> tuple[Any, spec.ParameterContainer, spec.ModelAuxiliaryState, chex.Array, chex.Array]:
    def loss_fn(params: spec.ParameterContainer) -> tuple[chex.Array, Any]:
        logits, new_model_state = workload.model_fn(
            params,
            batch,
            model_state,
            spec.ForwardPassMode.TRAIN,
            rng,
            update_batch_norm=True,
            dropout_rate=dropout_rate,
        )
        losses = workload.loss_fn(
            label_batch=batch["targets"],
            logits_batch=logits,
            mask_batch=batch.get("weights"),
            label_smoothing=label_smoothing,
        )
        return losses["summed"], (losses["n_valid_examples"], new_model_state)

    (summed, (n_valid, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads = jax.tree.map(lambda g: g / n_valid, grads)
    updates, new_optimizer_state = update_fn(grads, optimizer_state, params)
    return (
        new_optimizer_state,
        optax.apply_updates(params, updates),
        new_model_state,
        summed / n_valid,
        (optax.global_norm(grads)),
    )


def update_params(
    workload: spec.Workload,
    current_param_container: spec.ParameterContainer,
    current_params_types: spec.ParameterTypeTree,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    batch: dict[str, spec.Tensor],
    loss_type: spec.LossType,
    optimizer_state: spec.OptimizerState,
    eval_results: list[tuple[int, float]],
    global_step: int,
    rng: spec.RandomState,
    train_state: dict[str, Any] | None = None,
) -> spec.UpdateReturn:
    del current_params_types, loss_type, eval_results, train_state
    optimizer_state, update_fn = optimizer_state
    replicated = jax_sharding_utils.get_replicate_sharding()
    sharded = jax_sharding_utils.get_batch_dim_sharding()
    # Label smoothing and the dropout rate are Python floats, static: a model may branch on them, and a rate
    # of 0 compiles no dropout at all.
    jitted_step = jax.jit(
        train_step,
        static_argnums=(0, 1, 7, 8),
        donate_argnums=(2, 3, 4),
        in_shardings=(replicated, replicated, replicated, sharded, replicated),
        out_shardings=(replicated,) * 5,
    )
    new_optimizer_state, new_params, new_model_state, loss, grad_norm = jitted_step(
        workload,
        update_fn,
        model_state,
        optimizer_state,
        current_param_container,
        batch,
        rng,
        getattr(hyperparameters, "label_smoothing", 0.0),
        hyperparameters.dropout_rate,
    )
    if global_step % 100 == 0 and workload.metrics_logger is not None:
        workload.metrics_logger.append_scalar_metrics(
            {"loss": loss.item(), "grad_norm": grad_norm.item()}, global_step
        )
        logging.info("step %d: loss %.4f", global_step, loss.item())
    return (new_optimizer_state, update_fn), new_params, new_model_state


def get_batch_size(workload_name: str) -> int:
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"Unsupported workload name: {workload_name}.")
    return BATCH_SIZES[workload_name]


def data_selection(
    workload: spec.Workload,
    input_queue: Iterator[dict[str, spec.Tensor]],
    optimizer_state: spec.OptimizerState,
    current_param_container: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    global_step: int,
    rng: spec.RandomState,
) -> dict[str, spec.Tensor]:
    return next(input_queue)
