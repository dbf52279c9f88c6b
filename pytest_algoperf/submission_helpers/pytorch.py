"""The PyTorch side of the baselines: one training step around any ``torch.optim`` optimizer and a
``LambdaLR`` schedule, the SGD family's optimizer, and AlgoPerf's input-queue data selection."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from pytest_algoperf.frameworks.pytorch_ddp import global_mean_loss
from pytest_algoperf.schedules import warmup_linear_decay_factor
from pytest_algoperf.spec import ForwardPassMode
from pytest_algoperf.submission_helpers import data_selection
from pytest_algoperf.submission_helpers.averaging import AveragingSchedule, WeightAverage

__all__ = [
    "averaged_optimizer_state",
    "data_selection",
    "nadamw",
    "optimizer_state",
    "prepare_for_eval_with_average",
    "sgd_optimizer_state",
    "train_step",
    "update_params",
    "update_params_with_average",
]


def optimizer_state(optimizer: torch.optim.Optimizer, lr_factor: Callable[[int], float]) -> dict[str, Any]:
    """The baselines' optimizer_state: the optimizer and its schedule (a multiplier of the peak rate)."""
    return {"optimizer": optimizer, "scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)}


def nadamw(model: torch.nn.Module, hyperparameters: Any) -> torch.optim.Optimizer:
    """AlgoPerf's NAdamW: torch.optim.NAdam with decoupled weight decay and Dozat's momentum schedule
    switched off (an infinite ``momentum_decay`` makes mu_t the constant beta1), optax.nadamw's update."""
    return torch.optim.NAdam(
        model.parameters(),
        lr=hyperparameters.learning_rate,
        betas=(1.0 - hyperparameters.one_minus_beta1, hyperparameters.beta2),
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
        momentum_decay=float("inf"),
        decoupled_weight_decay=True,
    )


def sgd_optimizer_state(workload: Any, model: torch.nn.Module, hyperparameters: Any, nesterov: bool) -> dict:
    """AlgoPerf's SGD baselines: L2 weight decay added to the gradient, linear warmup, then linear decay to
    ``end_factor`` x the peak at ``decay_steps_factor`` x ``step_hint``."""
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=hyperparameters.learning_rate,
        momentum=1.0 - hyperparameters.one_minus_beta1,
        weight_decay=hyperparameters.weight_decay,
        nesterov=nesterov,
    )
    schedule = functools.partial(
        warmup_linear_decay_factor,
        warmup_steps=int(hyperparameters.warmup_factor * workload.step_hint),
        decay_steps=int(hyperparameters.decay_steps_factor * workload.step_hint),
        end_factor=hyperparameters.end_factor,
    )
    return optimizer_state(optimizer, schedule)


def update_params(
    workload: Any,
    current_param_container: Any,
    current_params_types: Any,
    model_state: Any,
    hyperparameters: Any,
    batch: dict[str, Any],
    loss_type: Any,
    optimizer_state: dict[str, Any],
    eval_results: list,
    global_step: int,
    rng: Any,
) -> tuple[dict[str, Any], Any, Any]:
    """The Submission API's update_params for every optimizer built by ``optimizer_state``."""
    return train_step(
        workload, current_param_container, model_state, hyperparameters, batch, optimizer_state, rng
    )


def train_step(
    workload: Any,
    model: torch.nn.Module,
    model_state: Any,
    hyperparameters: Any,
    batch: dict[str, Any],
    optimizer_state: dict[str, Any],
    rng: Any,
) -> tuple[dict[str, Any], torch.nn.Module, Any]:
    """Forward, mean loss over the valid examples, backward, optional global-norm clipping
    (``hyperparameters.grad_clip``), optimizer and schedule step; returns update_params' triple."""
    optimizer = optimizer_state["optimizer"]
    optimizer.zero_grad()
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
    # The mean over the global batch: under DDP (torchrun) the summed loss and n_valid_examples are
    # all-reduced over ranks before dividing, as AlgoPerf's reference submissions do.
    loss = global_mean_loss(loss_dict)
    loss.backward()
    grad_clip = getattr(hyperparameters, "grad_clip", None)
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=grad_clip)
    optimizer.step()
    optimizer_state["scheduler"].step()
    return optimizer_state, model, new_model_state


def averaged_optimizer_state(
    optimizer: torch.optim.Optimizer,
    lr_factor: Callable[[int], float],
    average: WeightAverage,
    schedule: AveragingSchedule,
) -> dict[str, Any]:
    """``optimizer_state`` plus a weight average that ``prepare_for_eval_with_average`` evaluates."""
    state = optimizer_state(optimizer, lr_factor)
    state.update(average=average, averaging=schedule, training_weights=None)
    return state


def update_params_with_average(
    workload: Any,
    current_param_container: Any,
    current_params_types: Any,
    model_state: Any,
    hyperparameters: Any,
    batch: dict[str, Any],
    loss_type: Any,
    optimizer_state: dict[str, Any],
    eval_results: list,
    global_step: int,
    rng: Any,
) -> tuple[dict[str, Any], Any, Any]:
    """``update_params`` for ``averaged_optimizer_state``: puts back the training weights that the last
    evaluation swapped out, takes the step, then a snapshot when the averaging schedule says so."""
    model = current_param_container
    if optimizer_state["training_weights"] is not None:
        _load_weights(model, optimizer_state["training_weights"])
        optimizer_state["training_weights"] = None
    result = train_step(workload, model, model_state, hyperparameters, batch, optimizer_state, rng)
    if optimizer_state["averaging"].takes_snapshot(global_step + 1):
        optimizer_state["average"].add(_weights(model))
    return result


def prepare_for_eval_with_average(
    workload: Any,
    current_param_container: Any,
    current_params_types: Any,
    model_state: Any,
    hyperparameters: Any,
    loss_type: Any,
    optimizer_state: dict[str, Any],
    eval_results: list,
    global_step: int,
    rng: Any,
) -> tuple[dict[str, Any], Any, Any]:
    """Evaluates the average once there is one; the training weights wait in the optimizer state."""
    model = current_param_container
    average = optimizer_state["average"].average()
    if average is not None and optimizer_state["training_weights"] is None:
        optimizer_state["training_weights"] = _weights(model)
        _load_weights(model, average)
    return optimizer_state, model, model_state


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [parameter.detach().clone() for parameter in model.parameters()]


@torch.no_grad()
def _load_weights(model: torch.nn.Module, weights: list[torch.Tensor]) -> None:
    for parameter, weight in zip(model.parameters(), weights, strict=True):
        parameter.copy_(weight)
