"""Scaling a workload's parameters (``frameworks.parameter_scale``): the model computes the same function from
the same initial weights, an optimizer holds ``theta = w / factor`` whose gradients are ``factor`` times the
weights', and evaluation, which calls ``model_fn`` itself, scales once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_algoperf import calibrate
from pytest_algoperf.calibrate import find_entry
from pytest_algoperf.calibration import PARAMETER_SCALE, CalibrationError
from pytest_algoperf.frameworks.parameter_scale import scale_parameters, sgd_equivalent_point
from pytest_algoperf.registry import WorkloadEntry
from pytest_algoperf.score.tuning import as_hyperparameters
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


class _TiedLSTMWorkload:
    """The module shapes the parameter swap must keep working for: an nn.LSTM (which caches its weights in
    ``_flat_weights``) and an embedding tied to the output layer (one parameter in two modules)."""

    def init_model_fn(self, rng: Any) -> tuple[Any, None]:
        import torch
        from torch import nn

        torch.manual_seed(0)
        model = nn.ModuleDict({"embed": nn.Embedding(11, 6), "lstm": nn.LSTM(6, 6, batch_first=True)})
        model["out"] = nn.Linear(6, 11, bias=False)
        model["out"].weight = model["embed"].weight
        return model, None

    def model_fn(self, model: Any, tokens: Any) -> Any:
        if tokens is None:
            raise RuntimeError("a model_fn that fails")
        hidden, _ = model["lstm"](model["embed"](tokens))
        return model["out"](hidden).square().mean()


def test_pytorch_scaling_keeps_lstm_weights_and_tied_parameters_and_restores_theta_after_an_error() -> None:
    torch = pytest.importorskip("torch")
    plain = _TiedLSTMWorkload()
    scaled = scale_parameters(_TiedLSTMWorkload(), FACTOR, "pytorch")
    model, _ = plain.init_model_fn(None)
    theta, _ = scaled.init_model_fn(None)
    tokens = torch.tensor([[1, 4, 9, 2], [3, 3, 0, 10]])
    loss, scaled_loss = plain.model_fn(model, tokens), scaled.model_fn(theta, tokens)
    torch.testing.assert_close(scaled_loss, loss)
    loss.backward()
    scaled_loss.backward()
    for weight, stored in zip(model.parameters(), theta.parameters(), strict=True):
        torch.testing.assert_close(stored.grad, weight.grad * FACTOR)
    with pytest.raises(RuntimeError, match="a model_fn that fails"):
        scaled.model_fn(theta, None)
    held = dict(theta.named_parameters())
    assert all(isinstance(p, torch.nn.Parameter) for p in held.values()), "the modules hold theta again"
    assert theta["out"].weight is theta["embed"].weight, "the tie survives the swap"
    torch.testing.assert_close(scaled.model_fn(theta, tokens), loss, msg="a second call after an error")


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


def _sgd_weights_after(workload: Any, scale: float, point: dict[str, Any], steps: int) -> list[Any]:
    """The weights ``w = scale * theta`` after ``steps`` steps of the SGD Nesterov baseline's update."""
    from pytest_algoperf.submission_helpers.pytorch import sgd_optimizer_state, train_step

    hyperparameters = as_hyperparameters(point)
    model, model_state = workload.init_model_fn(_rng("pytorch"))
    state = sgd_optimizer_state(workload, model, hyperparameters, nesterov=True)
    batches = workload.build_input_queue(_rng("pytorch"), "train", None, 16)
    for _ in range(steps):
        state, model, model_state = train_step(
            workload, model, model_state, hyperparameters, next(batches), state, None
        )
    return [parameter.detach() * scale for parameter in model.parameters()]


def test_an_sgd_point_has_an_exact_counterpart_on_scaled_parameters() -> None:
    torch = pytest.importorskip("torch")
    point = {
        "learning_rate": 0.05,
        "one_minus_beta1": 0.1,
        "weight_decay": 0.005,
        "warmup_factor": 0.05,
        "decay_steps_factor": 1.0,
        "end_factor": 0.01,
        "grad_clip": 0.5,  # small enough to clip on mnist's first steps
    }
    counterpart = sgd_equivalent_point(point, FACTOR)
    assert counterpart == {**point, "learning_rate": 0.05 / 64, "weight_decay": 0.005 * 64, "grad_clip": 4.0}
    plain, scaled = _workloads("pytorch")
    unscaled_steps = _sgd_weights_after(plain, 1.0, point, steps=5)
    for weight, counterpart_weight in zip(
        unscaled_steps, _sgd_weights_after(scaled, FACTOR, counterpart, steps=5), strict=True
    ):
        torch.testing.assert_close(counterpart_weight, weight, rtol=1e-4, atol=1e-6)
    # The same point unmapped takes other steps: FACTOR**2 times as long.
    moved = _sgd_weights_after(scaled, FACTOR, point, steps=5)
    assert not all(torch.allclose(a, b, atol=1e-3) for a, b in zip(moved, unscaled_steps, strict=True))


def _mnist_with_calibration(tmp_path: Path, scale: Any) -> WorkloadEntry:
    """mnist (PyTorch) reading a copy of its calibration file whose entry names ``scale``."""
    base = find_entry("mnist").workload_class("pytorch")
    document = json.loads(base.calibration_file.read_text())
    entry = find_entry("mnist").create("pytorch", None, "cpu").calibration_entry
    document[entry][PARAMETER_SCALE] = scale
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(document))
    recalibrated = type("RecalibratedMnist", (base,), {"calibration_file": path})
    return WorkloadEntry("mnist", {"pytorch": recalibrated})


def test_a_workload_is_created_at_the_scale_its_calibration_entry_names(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    plain = find_entry("mnist").create("pytorch", None, "cpu")
    assert plain.parameter_scale == 1.0  # an entry that names no scale
    weights, _ = plain.init_model_fn(_rng("pytorch"))
    entry = _mnist_with_calibration(tmp_path, 4)
    workload = entry.create("pytorch", None, "cpu")
    assert workload.parameter_scale == 4.0
    theta, _ = workload.init_model_fn(_rng("pytorch"))
    for weight, stored in zip(weights.parameters(), theta.parameters(), strict=True):
        torch.testing.assert_close(stored * 4, weight)
    unscaled, _ = entry.create("pytorch", None, "cpu", parameter_scale=1.0).init_model_fn(_rng("pytorch"))
    for weight, stored in zip(weights.parameters(), unscaled.parameters(), strict=True):
        torch.testing.assert_close(stored, weight)  # an explicit scale (calibrate's, horizon's) wins


@pytest.mark.parametrize("bad", [0, -1, "eight"])
def test_a_calibration_entry_whose_scale_is_not_positive_is_a_clear_error(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(CalibrationError, match=rf"has parameter_scale {bad!r}; it must be a positive number"):
        _mnist_with_calibration(tmp_path, bad).create("pytorch", None, "cpu")


def test_calibrate_sweeps_the_sgd_baselines_at_their_counterparts_and_the_others_as_published() -> None:
    (adamw, adamw_point), (sgd, sgd_point) = calibrate.sweep_points(
        ["adamw", "sgd_nesterov"], "pytorch", 1, 4.0, frozenset({"sgd_nesterov", "momentum"})
    )
    published = calibrate.sweep_points(["adamw", "sgd_nesterov"], "pytorch", 1)
    assert (adamw, adamw_point) == published[0]
    assert (sgd, sgd_point) == ("sgd_nesterov", sgd_equivalent_point(published[1][1], 4.0))


def test_calibrate_records_the_scale_with_the_targets_and_keeps_a_profile_at_the_committed_one(
    tmp_path: Path,
) -> None:
    output = tmp_path / "calibration.json"
    argv = ["--workload", "mnist", "--max-steps", "100", "--eval-every-steps", "50", "--eval-period-sec", "1"]
    argv += ["--quick", "--progress", str(tmp_path / "p.json"), "--write", "--output", str(output)]
    assert calibrate.main([*argv, "--parameter-scale", "4"]) == 0
    entry = find_entry("mnist").create("pytorch", None, "cpu").calibration_entry
    written = json.loads(output.read_text())[entry]
    assert written[PARAMETER_SCALE] == 4.0 and "--parameter-scale 4" in written["command"]
    with pytest.raises(
        SystemExit, match=r"targets were set at parameter scale 1: with --keep-targets leave out"
    ):
        calibrate.main(
            [
                "--workload",
                "mnist",
                "--max-steps",
                "1",
                "--eval-period-sec",
                "1",
                "--keep-targets",
                "--parameter-scale",
                "2",
            ]
        )
