"""A submission with helpers beside it, as leaderboard submissions come: a package ``optimizers/`` imported by
its own name and a module ``schedules.py`` imported relatively. Batch sizes by AlgoPerf's names."""

from collections.abc import Iterator
from typing import Any

import torch
from algoperf import spec
from optimizers.adam import HandwrittenAdamW

from .schedules import warmup_cosine

BATCH_SIZES = {"criteo1tb": 262_144, "mnist": 16}


def init_optimizer_state(
    workload: spec.Workload,
    model_params: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    rng: spec.RandomState,
) -> spec.OptimizerState:
    optimizer = HandwrittenAdamW(
        model_params.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
    )
    schedule = warmup_cosine(workload.step_hint, hyperparameters.warmup_factor)
    return {"optimizer": optimizer, "scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)}


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
) -> spec.UpdateReturn:
    optimizer_state["optimizer"].zero_grad()
    logits, new_model_state = workload.model_fn(
        current_param_container, batch, model_state, spec.ForwardPassMode.TRAIN, rng, True, 0.0
    )
    losses = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
    (losses["summed"] / losses["n_valid_examples"]).backward()
    optimizer_state["optimizer"].step()
    optimizer_state["scheduler"].step()
    return optimizer_state, current_param_container, new_model_state


def get_batch_size(workload_name: str) -> int:
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"Unsupported workload name: {workload_name}.")
    return BATCH_SIZES[workload_name]


def data_selection(
    workload: spec.Workload,
    input_queue: Iterator[dict[str, Any]],
    optimizer_state: spec.OptimizerState,
    current_param_container: spec.ParameterContainer,
    model_state: spec.ModelAuxiliaryState,
    hyperparameters: spec.Hyperparameters,
    global_step: int,
    rng: spec.RandomState,
) -> dict[str, spec.Tensor]:
    return next(input_queue)
