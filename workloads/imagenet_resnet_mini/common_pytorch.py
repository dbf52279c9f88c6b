"""PyTorch pieces shared by the two image workloads: Flax-matching initialisers, the loss and eval.

imagenet_vit_mini imports this module too, so the loss and the eval outputs are written once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pytest_algoperf.frameworks.pytorch_adapter import TorchArrays
from pytest_algoperf.spec import ForwardPassMode

TRUNCATED_NORMAL_STDDEV = 0.87962566103423978  # stddev of a unit normal truncated to [-2, 2]


def lecun_normal_(weight: torch.Tensor) -> None:
    """Flax's default kernel init: a normal truncated at 2 stddev, variance 1 / fan_in."""
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(weight)
    stddev = math.sqrt(1.0 / fan_in) / TRUNCATED_NORMAL_STDDEV
    nn.init.trunc_normal_(weight, std=stddev, a=-2 * stddev, b=2 * stddev)


class TorchImageClassifier(TorchArrays):
    """Mixin for a ``BaseImageWorkload`` in PyTorch: parameter bookkeeping, loss, eval outputs.

    A subclass sets ``_param_shapes`` in ``init_model_fn`` and implements ``param_type(name)``."""

    output_layer = "head"

    def is_output_params(self, param_name: str) -> bool:
        return param_name.startswith(self.output_layer + ".")

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        per_example = F.cross_entropy(
            logits_batch, label_batch.long(), reduction="none", label_smoothing=label_smoothing
        )
        if mask_batch is not None:
            per_example = per_example * mask_batch
            n_valid = mask_batch.sum()
        else:
            n_valid = torch.tensor(len(label_batch), device=per_example.device)
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    def eval_batch(self, params: nn.Module, model_state: Any, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        """The logits and labels on the host; ``summarize_eval`` computes the metrics from them in numpy."""
        logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
        return {"logits": logits.float().cpu().numpy(), "targets": batch["targets"].cpu().numpy()}
