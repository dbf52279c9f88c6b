"""mnist in PyTorch: the MLP, its loss and batched evaluation on the run's device."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algoperf_workloads.mnist.workload import HIDDEN_UNITS, NUM_CLASSES, BaseMnistWorkload
from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.frameworks.pytorch_adapter import TorchArrays
from pytest_algoperf.spec import ForwardPassMode, ParameterType


def lecun_normal_(weight: torch.Tensor) -> None:
    """Flax's default kernel init (truncated normal, variance 1/fan_in), so both frameworks start alike."""
    stddev = math.sqrt(1.0 / weight.shape[1]) / 0.87962566103423978
    nn.init.trunc_normal_(weight, std=stddev, a=-2 * stddev, b=2 * stddev)


class MLP(nn.Module):
    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(num_features, HIDDEN_UNITS)
        self.output = nn.Linear(HIDDEN_UNITS, NUM_CLASSES)
        for layer in (self.hidden, self.output):
            lecun_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.output(torch.sigmoid(self.hidden(inputs)))


class MnistWorkload(TorchArrays, BaseMnistWorkload):
    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(rng))
        model = MLP(self.data.num_features).to(self.device)
        self.record_param_shapes(model)
        return model, None

    def param_type(self, name: str) -> ParameterType:
        return ParameterType.BIAS if name.endswith("bias") else ParameterType.WEIGHT

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith("output.")

    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: dict[str, Any],
        model_state: Any,
        mode: ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[torch.Tensor, Any]:
        params.train(mode == ForwardPassMode.TRAIN)
        with torch.set_grad_enabled(mode == ForwardPassMode.TRAIN):
            return params(augmented_and_preprocessed_input_batch["inputs"]), model_state

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        per_example = F.cross_entropy(
            logits_batch, label_batch, reduction="none", label_smoothing=label_smoothing
        )
        if mask_batch is not None:
            per_example = per_example * mask_batch
            n_valid = mask_batch.sum()
        else:
            n_valid = torch.tensor(len(label_batch), device=per_example.device)
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    def eval_batch(self, params: nn.Module, model_state: Any, batch: dict[str, Any]) -> dict[str, float]:
        logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
        loss = self.loss_fn(batch["targets"], logits)["summed"]
        return {"loss": float(loss), "correct": float((logits.argmax(dim=-1) == batch["targets"]).sum())}
