"""A workload's trainable parameters stored divided by a factor and multiplied back in its forward pass.

The reparametrization ``w = factor * theta`` leaves the model's function, its initial weights and its exact
gradients unchanged; it changes how far an optimizer's step in ``theta`` moves the weights ``w``: ``factor``
times as far for updates normalised by the gradient's scale (Adam and its kin), ``factor**2`` times for SGD
(the gradient in ``theta`` is ``factor`` times the one in ``w``), and not at all for decoupled weight decay,
which shrinks both by the same fraction.

Why: on the mini workloads' short schedules NAdamW wants learning rates 4-16 times AlgoPerf's (VALIDITY.md,
"Which learning rate the mini workloads want"). Scaling the parameters is a way to let AlgoPerf's published
points do here what they do on AlgoPerf's long schedules without changing a submission. The horizon tool
measures it (``validity.horizon --parameter-scale``). A workload's calibration entry names the scale its
targets were set with (``calibration.PARAMETER_SCALE``) and ``WorkloadEntry.create`` applies it.

SGD's update is not invariant to the gradient's scale, so a point tuned for SGD on the unscaled parameters
has its exact counterpart on scaled ones (``sgd_equivalent_point``): calibration sweeps SGD baselines with it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

__all__ = ["own_parameter_scale", "resolved_parameter_scale", "scale_parameters", "sgd_equivalent_point"]


def own_parameter_scale(workload: Any) -> float:
    """The scale a workload's targets were set at (its calibration entry's), 1 for one that names none."""
    return getattr(workload, "parameter_scale", 1.0)


def resolved_parameter_scale(workload: Any, requested: float | None) -> float:
    """The scale a run trains ``workload`` at: ``requested`` where a tool asks for one, else its own."""
    return own_parameter_scale(workload) if requested is None else requested


def scale_parameters(workload: Any, factor: float, framework: str) -> Any:
    """Reparametrize ``workload`` (an instance, in place) by ``factor``; a factor of 1 changes nothing.

    ``init_model_fn`` returns ``theta = w / factor``; ``model_fn`` and ``eval_batch`` compute with
    ``factor * theta``. Under DDP ``model_fn`` receives the wrapper, whose parameters are swapped under their
    wrapped names; gradients still reach the leaf ``theta``, where DDP's hooks average them (two gloo ranks on
    mnist at scale 4 matched a serial run, tests/test_distributed.py's comparison run by hand).
    """
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"a parameter scale must be a positive number, got {factor}")
    if framework not in _SCALERS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(_SCALERS)}")
    if factor == 1:
        return workload
    divide, call_scaled = _SCALERS[framework]
    init_model_fn = workload.init_model_fn

    @functools.wraps(init_model_fn)
    def init_scaled(rng: Any) -> tuple[Any, Any]:
        params, model_state = init_model_fn(rng)
        return divide(params, factor), model_state

    workload.init_model_fn = init_scaled
    # eval_batch may call model_fn: only the outermost call scales, or the parameters would be scaled twice.
    depth = [0]

    def outermost_scaled(call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def scaled(params: Any, *args: Any, **kwargs: Any) -> Any:
            if depth[0]:
                return call(params, *args, **kwargs)
            depth[0] += 1
            try:
                return call_scaled(call, params, factor, args, kwargs)
            finally:
                depth[0] -= 1

        return scaled

    workload.model_fn = outermost_scaled(workload.model_fn)
    if hasattr(workload, "eval_batch"):
        workload.eval_batch = outermost_scaled(workload.eval_batch)
    return workload


def sgd_equivalent_point(point: dict[str, Any], factor: float) -> dict[str, Any]:
    """The SGD point (L2 weight decay added to the gradient, heavy-ball or Nesterov momentum, optional
    gradient-norm clip) that takes on parameters stored at ``factor`` exactly the steps ``point`` takes on
    unscaled ones: learning rate / factor**2, weight decay x factor**2, ``grad_clip`` x factor.

    Why: in theta = w / factor the gradient is ``factor * g`` and the decay term ``weight_decay * theta``;
    a step of ``lr`` in theta moves w by ``factor * lr`` times that, so ``lr / factor**2`` and
    ``weight_decay * factor**2`` give back ``lr * (g + weight_decay * w)``. Momentum is linear and keeps it.
    """
    scaled = {**point, "learning_rate": point["learning_rate"] / factor**2}
    if "weight_decay" in scaled:
        scaled["weight_decay"] = scaled["weight_decay"] * factor**2
    if scaled.get("grad_clip") is not None:
        scaled["grad_clip"] = scaled["grad_clip"] * factor
    return scaled


def _torch_divide(model: Any, factor: float) -> Any:
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            parameter.div_(factor)
    return model


def _torch_call_scaled(call: Callable[..., Any], model: Any, factor: float, args: tuple, kwargs: dict) -> Any:
    # The module keeps theta (what optimizers hold); inside the context its attributes are factor * theta,
    # so the workload's own forward code, which reads module attributes, runs unchanged. functional_call
    # uses the same context, but it would call the module itself rather than the workload's model_fn.
    import torch
    from torch.nn.utils.stateless import _reparametrize_module

    names, parameters = zip(*model.named_parameters(), strict=True)
    scaled = dict(zip(names, torch._foreach_mul(list(parameters), factor), strict=True))  # one fused kernel
    with _reparametrize_module(model, scaled, tie_weights=True):
        return call(model, *args, **kwargs)


def _jax_divide(params: Any, factor: float) -> Any:
    import jax

    return jax.tree_util.tree_map(lambda leaf: leaf / factor, params)


def _jax_call_scaled(call: Callable[..., Any], params: Any, factor: float, args: tuple, kwargs: dict) -> Any:
    import jax

    return call(jax.tree_util.tree_map(lambda leaf: leaf * factor, params), *args, **kwargs)


_SCALERS = {"pytorch": (_torch_divide, _torch_call_scaled), "jax": (_jax_divide, _jax_call_scaled)}
