"""Scaling a workload's parameters (``frameworks.parameter_scale``): the model computes the same function from
the same initial weights, an optimizer holds ``theta = w / factor`` whose gradients are ``factor`` times the
weights', and evaluation, which calls ``model_fn`` itself, scales once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_algoperf.calibrate import find_entry
from pytest_algoperf.frameworks.parameter_scale import scale_parameters
from pytest_algoperf.spec import ForwardPassMode
from pytest_algoperf.validity import horizon

FACTOR = 8.0


def create_builtin(name: str, framework: str = "pytorch") -> Any:
    return find_entry(name).create(framework, None, "cpu")


def _rng(framework: str) -> Any:
    """Seed 0's key: a numpy key pair for PyTorch, a PRNGKey for JAX."""
    if framework == "jax":
        import jax

        return jax.random.PRNGKey(0)
    return np.array([0, 1], dtype=np.uint32)


def _workloads(framework: str) -> tuple[Any, Any]:
    plain = create_builtin("mnist", framework)
    return plain, scale_parameters(create_builtin("mnist", framework), FACTOR, framework)


def _batches(workload: Any, framework: str) -> tuple[dict, dict]:
    rng = _rng(framework)
    train = next(workload.build_input_queue(rng, "train", None, 16))
    return train, next(workload.build_input_queue(rng, "validation", None, 16))


def _summed_loss(workload: Any, params: Any, batch: dict) -> Any:
    logits, _ = workload.model_fn(params, batch, None, ForwardPassMode.TRAIN, None, False)
    return workload.loss_fn(batch["targets"], logits)["summed"]


def test_pytorch_stores_the_weights_divided_and_computes_the_same_function() -> None:
    torch = pytest.importorskip("torch")
    plain, scaled = _workloads("pytorch")
    model, _ = plain.init_model_fn(_rng("pytorch"))
    theta, _ = scaled.init_model_fn(_rng("pytorch"))
    for weight, stored in zip(model.parameters(), theta.parameters(), strict=True):
        torch.testing.assert_close(stored * FACTOR, weight)
    train, validation = _batches(plain, "pytorch")
    loss = _summed_loss(plain, model, train)
    scaled_loss = _summed_loss(scaled, theta, train)
    torch.testing.assert_close(scaled_loss, loss)
    loss.backward()
    scaled_loss.backward()
    for weight, stored in zip(model.parameters(), theta.parameters(), strict=True):
        torch.testing.assert_close(stored.grad, weight.grad * FACTOR)
    assert isinstance(next(theta.parameters()), torch.nn.Parameter), "the module holds theta again after"
    assert scaled.eval_batch(theta, None, validation) == pytest.approx(
        plain.eval_batch(model, None, validation)
    )


def test_jax_stores_the_weights_divided_and_computes_the_same_function() -> None:
    jax = pytest.importorskip("jax")
    plain, scaled = _workloads("jax")
    params, _ = plain.init_model_fn(_rng("jax"))
    theta, _ = scaled.init_model_fn(_rng("jax"))
    jax.tree.map(lambda w, t: np.testing.assert_allclose(t * FACTOR, w, rtol=1e-6), params, theta)
    train, validation = _batches(plain, "jax")
    loss, grads = jax.value_and_grad(lambda p: _summed_loss(plain, p, train))(params)
    scaled_loss, scaled_grads = jax.value_and_grad(lambda t: _summed_loss(scaled, t, train))(theta)
    np.testing.assert_allclose(scaled_loss, loss, rtol=1e-5)
    jax.tree.map(
        lambda g, s: np.testing.assert_allclose(s, g * FACTOR, rtol=1e-4, atol=1e-6), grads, scaled_grads
    )
    assert scaled.eval_batch(theta, None, validation) == pytest.approx(
        plain.eval_batch(params, None, validation)
    )


def test_a_scale_of_one_leaves_the_workload_as_it_was_and_a_bad_scale_or_framework_is_refused() -> None:
    workload = create_builtin("mnist")
    model_fn = workload.model_fn
    assert scale_parameters(workload, 1.0, "pytorch").model_fn == model_fn
    for bad in (0.0, -2.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="a parameter scale must be a positive number"):
            scale_parameters(workload, bad, "pytorch")
    with pytest.raises(ValueError, match="unknown framework 'tensorflow'; choose one of pytorch, jax"):
        scale_parameters(workload, 8.0, "tensorflow")


def test_horizon_labels_scaled_runs_and_refuses_a_scale_that_is_not_positive(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "scaled.jsonl"
    argv = ["--workload", "mnist", "--points", "adamw:0", "--steps", "5", "--output", str(output)]
    assert horizon.main([*argv, "--parameter-scale", "8"]) == 0
    assert "| adamw[0] params x8 |" in capsys.readouterr().out
    for bad in ("-2", "inf", "eight"):
        with pytest.raises(SystemExit):
            horizon.main([*argv, "--parameter-scale", bad])
        assert f"--parameter-scale takes a positive number like 8, got '{bad}'" in capsys.readouterr().err
