"""PyTorch: the clock synchronises CUDA; random keys are numpy-based as in AlgoPerf's PyTorch harness.

Under torchrun the model is wrapped in DistributedDataParallel (``pytest_algoperf.frameworks.pytorch_ddp``)
and each rank uses the GPU of its local rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pytest_algoperf.distributed import process_group
from pytest_algoperf.frameworks import numpy_rng, pytorch_ddp
from pytest_algoperf.frameworks.step_keys import StepKeys
from pytest_algoperf.spec import ParameterType, ShapeTuple


class PyTorchAdapter:
    name = "pytorch"
    parallel_unit = "torchrun ranks"

    def __init__(self) -> None:
        self._device = "cpu"

    @property
    def device(self) -> str:
        """The session's device ("cpu" or "cuda"): chosen by ``select_device``, set per run by ``activate``;
        AlgoPerf's ``pytorch_setup()`` answers from it when a submission is imported."""
        return self._device

    def select_device(self, requested: str) -> str:
        if requested == "cuda" and not torch.cuda.is_available():
            raise ValueError("--algoperf-device=cuda, but torch.cuda.is_available() is False on this machine")
        if requested == "auto":
            requested = "cuda" if torch.cuda.is_available() else "cpu"
        self._device = requested  # sessions choose the device before they import the submissions
        return requested

    def activate(self, device: str, threads: int | None = None) -> None:
        self._device = device
        if threads is not None:
            torch.set_num_threads(threads)
        if device == "cuda":
            torch.cuda.set_device(process_group().local_rank)

    def data_parallel_size(self) -> int:
        return process_group().world_size

    def prepare_model(self, params: Any, model_state: Any) -> tuple[Any, Any]:
        return pytorch_ddp.wrap_model(params, process_group(), self._device), model_state

    def prepare_optimizer_state(self, optimizer_state: Any) -> Any:
        return optimizer_state

    def eval_params(self, params: Any) -> Any:
        return pytorch_ddp.unwrap_model(params)

    make_rng = staticmethod(numpy_rng.make_key)
    split = staticmethod(numpy_rng.split)

    def step_keys(self, rng: Any) -> StepKeys:
        return StepKeys(rng, numpy_rng.step_keys_block)

    def synchronize(self, outputs: Any) -> None:
        if self._device == "cuda":
            torch.cuda.synchronize()

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "torch_threads": str(torch.get_num_threads())}


ADAPTER = PyTorchAdapter()


class TorchArrays:
    """Mixin for an ``ArrayWorkload``: numpy arrays become tensors on the workload's device, and the
    parameter bookkeeping of the Workload API: ``init_model_fn`` calls ``record_param_shapes(model)``, and a
    workload names each parameter's type by ``param_type(name)`` (or overrides ``model_params_types``)."""

    device: str
    _param_shapes: dict[str, ShapeTuple]

    def to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def record_param_shapes(self, model: torch.nn.Module) -> None:
        self._param_shapes = {name: ShapeTuple(p.shape) for name, p in model.named_parameters()}

    @property
    def param_shapes(self) -> dict[str, ShapeTuple]:
        return self._param_shapes

    @property
    def model_params_types(self) -> dict[str, ParameterType]:
        return {name: self.param_type(name) for name in self.param_shapes}

    def param_type(self, name: str) -> ParameterType:
        raise NotImplementedError(f"{type(self).__name__} must define param_type(name)")
