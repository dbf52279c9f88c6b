"""AlgoPerf's ``spec`` module: every public name of its ``spec.py``, served by pytest-algoperf's contract.

The enums, ``ShapeTuple``, ``TrainingCompleteError``, the type aliases and ``Workload`` are the very objects
of :mod:`pytest_algoperf.spec`, so ``spec.Workload`` is pytest-algoperf's abstract workload class and a
``TrainingCompleteError`` a submission raises ends training. AlgoPerf's spec also writes the five submission
functions out as empty signatures: they are here with the same signatures, and raise, because a submission
defines its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pytest_algoperf.spec import (
    DataSelectionFn,
    ForwardPassMode,
    Hyperparameters,
    InitOptimizerFn,
    LossType,
    ModelAuxiliaryState,
    ModelInitState,
    OptimizerState,
    ParameterContainer,
    ParameterKey,
    ParameterShapeTree,
    ParameterType,
    ParameterTypeTree,
    PrepareForEvalFn,
    RandomState,
    Shape,
    ShapeTuple,
    Steps,
    Tensor,
    Timing,
    TrainingCompleteError,
    UpdateParamsFn,
    UpdateReturn,
    Workload,
)

__all__ = [
    "DataSelectionFn",
    "ForwardPassMode",
    "Hyperparameters",
    "InitOptimizerFn",
    "LossType",
    "ModelAuxiliaryState",
    "ModelInitState",
    "OptimizerState",
    "ParameterContainer",
    "ParameterKey",
    "ParameterShapeTree",
    "ParameterType",
    "ParameterTypeTree",
    "PrepareForEvalFn",
    "RandomState",
    "Shape",
    "ShapeTuple",
    "Steps",
    "Tensor",
    "Timing",
    "TrainingCompleteError",
    "UpdateParamsFn",
    "UpdateReturn",
    "Workload",
    "data_selection",
    "get_batch_size",
    "init_optimizer_state",
    "prepare_for_eval",
    "update_params",
]


def _defined_by_the_submission(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"spec.{name} is the contract's signature; the harness calls the submission's own {name}()"
    )


def init_optimizer_state(
    workload: Workload,
    model_params: ParameterContainer,
    model_state: ModelAuxiliaryState,
    hyperparameters: Hyperparameters,
    rng: RandomState,
) -> OptimizerState:
    raise _defined_by_the_submission("init_optimizer_state")


def update_params(
    workload: Workload,
    current_param_container: ParameterContainer,
    current_params_types: ParameterTypeTree,
    model_state: ModelAuxiliaryState,
    hyperparameters: Hyperparameters,
    batch: dict[str, Tensor],
    loss_type: LossType,
    optimizer_state: OptimizerState,
    eval_results: list[tuple[int, float]],
    global_step: int,
    rng: RandomState,
    train_state: dict[str, Any] | None = None,
) -> UpdateReturn:
    raise _defined_by_the_submission("update_params")


def prepare_for_eval(
    workload: Workload,
    current_param_container: ParameterContainer,
    current_params_types: ParameterTypeTree,
    model_state: ModelAuxiliaryState,
    hyperparameters: Hyperparameters,
    loss_type: LossType,
    optimizer_state: OptimizerState,
    eval_results: list[tuple[int, float]],
    global_step: int,
    rng: RandomState,
) -> UpdateReturn:
    raise _defined_by_the_submission("prepare_for_eval")


def data_selection(
    workload: Workload,
    input_queue: Iterator[dict[str, Any]],
    optimizer_state: OptimizerState,
    current_param_container: ParameterContainer,
    model_state: ModelAuxiliaryState,
    hyperparameters: Hyperparameters,
    global_step: int,
    rng: RandomState,
) -> dict[str, Tensor]:
    raise _defined_by_the_submission("data_selection")


def get_batch_size(workload_name: str) -> int:
    raise _defined_by_the_submission("get_batch_size")
