"""AlgoPerf's ``param_utils`` shape helpers: parameter shapes as trees of ``ShapeTuple`` leaves.

AlgoPerf's name-based guessers of parameter types (``pytorch_param_types``, ``jax_param_types``) are left
out: pytest-algoperf's workloads give each parameter's type themselves (``workload.model_params_types``).
"""

from __future__ import annotations

from typing import Any

from pytest_algoperf.spec import ShapeTuple


def pytorch_param_shapes(model: Any) -> dict[str, ShapeTuple]:
    return {name: ShapeTuple(parameter.shape) for name, parameter in model.named_parameters()}


def jax_param_shapes(params: Any) -> Any:
    import jax

    return jax.tree.map(lambda leaf: ShapeTuple(leaf.shape), params)
