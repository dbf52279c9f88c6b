"""The JAX side of the baselines: one jitted training step around any optax transformation, the
schedules as optax builds them, and AlgoPerf's input-queue data selection.

``optimizer_state`` is ``(optax state, update function)``: the update function is a static argument of the
jitted step, so each optimizer compiles its own step once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import optax

from pytest_algoperf.spec import ForwardPassMode
from pytest_algoperf.submission_helpers import data_selection
from pytest_algoperf.submission_helpers.averaging import AveragingSchedule, WeightAverage

__all__ = [
    "averaged_optimizer_state",
    "cyclic_warmup_cosine",
    "data_selection",
    "nadamw",
    "optimizer_state",
    "prepare_for_eval_with_average",
    "restore_training_params",
    "sgd",
    "sgd_optimizer_state",
    "swap_for_eval",
    "update_params",
    "update_params_after_swap",
    "update_params_with_average",
    "warmup_cosine",
    "warmup_linear_decay",
    "with_grad_clip",
]


def warmup_cosine(hyperparameters: Any, step_hint: int) -> optax.Schedule:
    """Linear warmup over ``warmup_factor`` of ``step_hint``, then cosine decay to 0 at ``step_hint``."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=hyperparameters.learning_rate,
        warmup_steps=int(hyperparameters.warmup_factor * step_hint),
        decay_steps=step_hint,
        end_value=0.0,
    )


def cyclic_warmup_cosine(hyperparameters: Any, step_hint: int) -> optax.Schedule:
    """``hyperparameters.cycles`` copies of ``warmup_cosine`` over ``step_hint // cycles`` steps each, each
    with the full warmup (``pytest_algoperf.schedules.cyclic_warmup_cosine_factor``)."""
    cycle_steps = max(step_hint // hyperparameters.cycles, 1)
    cycle = {
        "init_value": 0.0,
        "peak_value": hyperparameters.learning_rate,
        "warmup_steps": int(hyperparameters.warmup_factor * step_hint),
        "decay_steps": cycle_steps,
        "end_value": 0.0,
    }
    return optax.sgdr_schedule([cycle] * hyperparameters.cycles)


def warmup_linear_decay(hyperparameters: Any, step_hint: int) -> optax.Schedule:
    """AlgoPerf's SGD baselines' schedule: linear warmup, then linear decay to ``end_factor`` x the peak at
    ``decay_steps_factor`` x ``step_hint``, then flat."""
    peak = hyperparameters.learning_rate
    warmup_steps = int(hyperparameters.warmup_factor * step_hint)
    decay_steps = max(int(hyperparameters.decay_steps_factor * step_hint) - warmup_steps, 1)
    return optax.join_schedules(
        [
            optax.linear_schedule(0.0, peak, warmup_steps),
            optax.linear_schedule(peak, peak * hyperparameters.end_factor, decay_steps),
        ],
        [warmup_steps],
    )


def nadamw(hyperparameters: Any, learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformation:
    """AlgoPerf's NAdamW (optax.nadamw) at the point's betas and weight decay."""
    return optax.nadamw(
        learning_rate=learning_rate,
        b1=1.0 - hyperparameters.one_minus_beta1,
        b2=hyperparameters.beta2,
        eps=1e-8,
        weight_decay=hyperparameters.weight_decay,
    )


def with_grad_clip(hyperparameters: Any, optimizer: optax.GradientTransformation) -> Any:
    """Clip the global gradient norm first when the point sets ``grad_clip``."""
    grad_clip = getattr(hyperparameters, "grad_clip", None)
    if grad_clip is None:
        return optimizer
    return optax.chain(optax.clip_by_global_norm(grad_clip), optimizer)


def sgd(hyperparameters: Any, step_hint: int, nesterov: bool) -> optax.GradientTransformation:
    """AlgoPerf's SGD baselines: L2 weight decay added to the gradient first, as torch.optim.SGD does."""
    return optax.chain(
        optax.add_decayed_weights(hyperparameters.weight_decay),
        optax.sgd(
            learning_rate=warmup_linear_decay(hyperparameters, step_hint),
            momentum=1.0 - hyperparameters.one_minus_beta1,
            nesterov=nesterov,
        ),
    )


def sgd_optimizer_state(workload: Any, model_params: Any, hyperparameters: Any, nesterov: bool) -> tuple:
    """The SGD baselines' optimizer_state: ``sgd`` with optional clipping, initialised on the parameters."""
    optimizer = sgd(hyperparameters, workload.step_hint, nesterov)
    return optimizer_state(with_grad_clip(hyperparameters, optimizer), model_params)


def optimizer_state(optimizer: optax.GradientTransformation, model_params: Any) -> tuple[Any, Any]:
    return optimizer.init(model_params), optimizer.update


# label_smoothing and dropout_rate are static: Python floats, so models may use them in Python control flow.
@functools.partial(jax.jit, static_argnums=(0, 1, 7, 8))
def _train_step(
    workload: Any,
    update_fn: Any,
    model_state: Any,
    optax_state: Any,
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
    updates, new_optax_state = update_fn(grads, optax_state, params)
    return new_optax_state, optax.apply_updates(params, updates), new_model_state, loss


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


def swap_for_eval(optimizer_state: dict[str, Any], params: Any, eval_params: Callable[[Any], Any]) -> Any:
    """``prepare_for_eval``'s half of evaluating other weights than those trained (an average, a
    schedule-free x): the params to evaluate, ``eval_params(params)``, with the training params kept in the
    state; ``params`` themselves while ``eval_params`` gives None or a swap is already in place."""
    if optimizer_state.get("training_params") is not None:
        return params
    evaluated = eval_params(params)
    if evaluated is None:
        return params
    optimizer_state["training_params"] = params
    return evaluated


def restore_training_params(optimizer_state: dict[str, Any], params: Any) -> Any:
    """``update_params``' half: the training params that ``swap_for_eval`` kept, or ``params``."""
    training = optimizer_state.get("training_params")
    optimizer_state["training_params"] = None
    return params if training is None else training


def averaged_optimizer_state(
    optimizer: optax.GradientTransformation,
    model_params: Any,
    average: WeightAverage,
    schedule: AveragingSchedule,
) -> dict[str, Any]:
    """``optimizer_state`` plus a weight average that ``prepare_for_eval_with_average`` evaluates."""
    return {
        "optax": optimizer_state(optimizer, model_params),
        "average": average,
        "averaging": schedule,
        "training_params": None,
    }


def update_params_after_swap(
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
) -> tuple[Any, Any, Any]:
    """``update_params`` for a state ``{"optax": optimizer_state(...), "training_params": ...}`` whose
    ``prepare_for_eval`` uses ``swap_for_eval``: the step on the training params it kept."""
    params = restore_training_params(optimizer_state, current_param_container)
    optimizer_state["optax"], params, model_state = update_params(
        workload, params, current_params_types, model_state, hyperparameters, batch, loss_type,
        optimizer_state["optax"], eval_results, global_step, rng,
    )  # fmt: skip
    return optimizer_state, params, model_state


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
) -> tuple[Any, Any, Any]:
    """``update_params`` for ``averaged_optimizer_state``: the step on the training params, then a
    snapshot when the averaging schedule says so (JAX arrays are immutable: a snapshot is the leaves)."""
    optimizer_state, params, model_state = update_params_after_swap(
        workload, current_param_container, current_params_types, model_state, hyperparameters, batch,
        loss_type, optimizer_state, eval_results, global_step, rng,
    )  # fmt: skip
    if optimizer_state["averaging"].takes_snapshot(global_step + 1):
        optimizer_state["average"].add(jax.tree.leaves(params))
    return optimizer_state, params, model_state


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
    """Evaluates the average once there is one; the training params wait in the optimizer state."""

    def averaged(params: Any) -> Any:
        average = optimizer_state["average"].average()
        return None if average is None else jax.tree.unflatten(jax.tree.structure(params), average)

    return optimizer_state, swap_for_eval(optimizer_state, current_param_container, averaged), model_state
