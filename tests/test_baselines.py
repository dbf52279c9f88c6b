"""The built-in baselines (adamw, nadamw, sgd_nesterov, momentum): each is a valid submission in both
frameworks with a loadable search space, and each framework's optimizer takes the same steps as the other's,
schedule and gradient clipping included, so a baseline means the same algorithm in PyTorch and in JAX."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pytest_algoperf.schedules import warmup_linear_decay_factor
from pytest_algoperf.score.search_space import load_search_space
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.submission import builtin_submission_names, load_submission, resolve_submission

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

BASELINES = ["adamw", "momentum", "nadamw", "sgd_nesterov"]
FRAMEWORKS = ["pytorch", "jax"]
STEP_HINT = 40


def test_the_four_baselines_are_built_in_and_the_shared_folder_is_not() -> None:
    assert set(BASELINES) <= set(builtin_submission_names())


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", BASELINES)
def test_baseline_is_a_valid_submission_whose_points_all_load(name: str, framework: str) -> None:
    source = resolve_submission(name, framework, Path.cwd())
    submission = load_submission(source)
    space = load_search_space(source.search_space_path)
    assert space.fixed_points, "the first point is the tuned default, so baselines list fixed points"
    assert submission.get_batch_size("mnist", "mnist") == 64
    with pytest.raises(ValueError, match="no batch size for workload 'nope'"):
        submission.module.get_batch_size("nope")


def optimizer_trajectories(
    name: str, point: dict[str, Any], steps: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """The parameters after each of ``steps`` updates with the same gradients, in PyTorch and in JAX."""
    hyperparameters = as_hyperparameters(point)
    workload = SimpleNamespace(step_hint=STEP_HINT)
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype(np.float32)
    gradients = [rng.normal(size=(4, 3)).astype(np.float32) * 3 for _ in range(steps)]

    torch_module = load_submission(resolve_submission(name, "pytorch", Path.cwd())).module
    model = torch.nn.Linear(3, 4, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(start))
    state = torch_module.init_optimizer_state(workload, model, None, hyperparameters, None)
    torch_path = []
    for gradient in gradients:
        model.weight.grad = torch.from_numpy(gradient.copy())
        grad_clip = getattr(hyperparameters, "grad_clip", None)
        if grad_clip is not None:  # what the shared train step does between backward and step
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=grad_clip)
        state["optimizer"].step()
        state["scheduler"].step()
        torch_path.append(model.weight.detach().numpy().copy())

    jax_module = load_submission(resolve_submission(name, "jax", Path.cwd())).module
    params = {"weight": jax.numpy.asarray(start)}
    optax_state, update = jax_module.init_optimizer_state(workload, params, None, hyperparameters, None)
    jax_path = []
    for gradient in gradients:
        updates, optax_state = update({"weight": jax.numpy.asarray(gradient)}, optax_state, params)
        params = optax.apply_updates(params, updates)
        jax_path.append(np.asarray(params["weight"]))
    return np.stack(torch_path), np.stack(jax_path)


@pytest.mark.parametrize("name", BASELINES)
def test_pytorch_and_jax_baselines_take_the_same_steps(name: str) -> None:
    space = load_search_space(resolve_submission(name, "jax", Path.cwd()).search_space_path)
    ours, theirs = optimizer_trajectories(name, dict(space.fixed_points[0], warmup_factor=0.1))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    assert not np.allclose(ours[0], ours[-1]), "the parameters moved"


@pytest.mark.parametrize("name", ["nadamw", "sgd_nesterov"])
def test_gradient_clipping_is_the_same_in_both_frameworks_and_changes_the_steps(name: str) -> None:
    space = load_search_space(resolve_submission(name, "jax", Path.cwd()).search_space_path)
    clipped = dict(space.fixed_points[0], grad_clip=0.5)
    ours, theirs = optimizer_trajectories(name, clipped)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    unclipped, _ = optimizer_trajectories(name, space.fixed_points[0])
    assert not np.allclose(ours, unclipped)


def test_nesterov_and_heavy_ball_momentum_differ() -> None:
    space = load_search_space(resolve_submission("momentum", "jax", Path.cwd()).search_space_path)
    heavy_ball, _ = optimizer_trajectories("momentum", space.fixed_points[0])
    nesterov, _ = optimizer_trajectories("sgd_nesterov", space.fixed_points[0])
    assert not np.allclose(heavy_ball, nesterov)


@pytest.mark.parametrize(
    ("warmup", "decay", "end"), [(0, 10, 0.01), (4, 20, 0.1), (5, 6, 0.0), (10, 40, 1e-3)]
)
def test_warmup_linear_decay_matches_the_jax_schedule_at_every_step(
    warmup: int, decay: int, end: float
) -> None:
    from pytest_algoperf.submission_helpers.jax import warmup_linear_decay

    point = SimpleNamespace(
        learning_rate=1.0, warmup_factor=warmup / 100, decay_steps_factor=decay / 100, end_factor=end
    )
    schedule = warmup_linear_decay(point, step_hint=100)
    steps = range(decay + 10)
    ours = [warmup_linear_decay_factor(step, warmup, decay, end) for step in steps]
    np.testing.assert_allclose(ours, [float(schedule(step)) for step in steps], rtol=1e-5, atol=1e-6)
    assert ours[decay:] == pytest.approx([end] * 10)
