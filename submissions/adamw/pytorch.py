"""AdamW with linear warmup then cosine decay over ``workload.step_hint`` (torch.optim)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pytest_algoperf.schedules import warmup_cosine_factor
from pytest_algoperf.spec import ForwardPassMode

BATCH_SIZES = json.loads(Path(__file__).with_name("batch_sizes.json").read_text())


def get_batch_size(workload_name: str) -> int:
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"adamw has no batch size for workload {workload_name!r}")
    return BATCH_SIZES[workload_name]


def init_optimizer_state(
    workload: Any, model_params: Any, model_state: Any, hyperparameters: Any, rng: Any
) -> dict:
    optimizer = torch.optim.AdamW(
        model_params.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
    )
    warmup_steps = int(hyperparameters.warmup_factor * workload.step_hint)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine_factor(step, warmup_steps, workload.step_hint)
    )
    return {"optimizer": optimizer, "scheduler": scheduler}


def update_params(
    workload: Any,
    current_param_container: Any,
    current_params_types: Any,
    model_state: Any,
    hyperparameters: Any,
    batch: dict[str, Any],
    loss_type: Any,
    optimizer_state: dict,
    eval_results: list,
    global_step: int,
    rng: Any,
) -> tuple[dict, Any, Any]:
    model = current_param_container
    optimizer_state["optimizer"].zero_grad()
    logits, new_model_state = workload.model_fn(
        params=model,
        augmented_and_preprocessed_input_batch=batch,
        model_state=model_state,
        mode=ForwardPassMode.TRAIN,
        rng=rng,
        update_batch_norm=True,
        dropout_rate=getattr(hyperparameters, "dropout_rate", None),
    )
    loss_dict = workload.loss_fn(
        label_batch=batch["targets"],
        logits_batch=logits,
        mask_batch=batch.get("weights"),
        label_smoothing=getattr(hyperparameters, "label_smoothing", 0.0),
    )
    # Under DDP (torchrun), all-reduce summed_loss and n_valid_examples here before dividing.
    loss = loss_dict["summed"] / loss_dict["n_valid_examples"]
    loss.backward()
    optimizer_state["optimizer"].step()
    optimizer_state["scheduler"].step()
    return optimizer_state, model, new_model_state


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
