"""PyTorch: the clock synchronises CUDA; random keys are numpy-based as in AlgoPerf's PyTorch harness."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pytest_algoperf.frameworks import numpy_rng


class PyTorchAdapter:
    name = "pytorch"

    def __init__(self) -> None:
        self._device = "cpu"

    def select_device(self, requested: str) -> str:
        if requested == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if requested == "cuda" and not torch.cuda.is_available():
            raise ValueError("--algoperf-device=cuda, but torch.cuda.is_available() is False on this machine")
        return requested

    def activate(self, device: str, threads: int | None = None) -> None:
        self._device = device
        if threads is not None:
            torch.set_num_threads(threads)
        if device == "cuda":
            torch.cuda.set_device(0)

    make_rng = staticmethod(numpy_rng.make_key)
    fold_in = staticmethod(numpy_rng.fold_in)
    split = staticmethod(numpy_rng.split)

    def synchronize(self, outputs: Any) -> None:
        if self._device == "cuda":
            torch.cuda.synchronize()

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "torch_threads": str(torch.get_num_threads())}


ADAPTER = PyTorchAdapter()


class TorchArrays:
    """Mixin for an ``ArrayWorkload``: numpy arrays become tensors on the workload's device."""

    device: str

    def to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
