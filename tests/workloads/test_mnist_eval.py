"""mnist's eval_model in both frameworks gives the metrics it gave before issue 17 (the workload's data and
whole sessions are tested in tests/test_mnist.py)."""

from __future__ import annotations

import pytest
from helpers import RNGS, assert_eval_unchanged, create_builtin


@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_eval_metrics_at_init_are_unchanged(framework: str) -> None:
    workload = create_builtin("mnist", framework)
    params, model_state = workload.init_model_fn(RNGS[framework](0))
    metrics = workload.eval_model(workload.eval_batch_size, params, model_state, RNGS[framework](3), None, 0)
    assert_eval_unchanged(metrics, f"mnist {framework} at init")
