"""The validity panel's submissions (pytest_algoperf.validity.panel): each is a built-in with its authors'
published points, each framework's version runs the same algorithm, and the pieces that make them (a cyclic
schedule, weight averages swapped in for evaluation, schedule-free's x and y) do what their papers say."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_baselines import BASELINES, optimizer_trajectories
from tiny import TinyWorkload

from pytest_algoperf.batch_size_rule import algoperf_name
from pytest_algoperf.registry import default_suite
from pytest_algoperf.schedules import cyclic_warmup_cosine_factor, warmup_cosine_factor
from pytest_algoperf.score.search_space import load_search_space
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.submission import builtin_submission_names, load_submission, resolve_submission
from pytest_algoperf.submission_helpers.averaging import AveragingSchedule, WeightAverage
from pytest_algoperf.validity.panel import ALGOPERF_V05_RUNTIMES, PANEL, member

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

PANEL_RUNS = [(m.submission, framework) for m in PANEL for framework in m.frameworks]


def test_every_panel_member_is_a_built_in_submission_and_six_have_algoperf_scores() -> None:
    # Besides the panel and the four baselines, the one that runs each workload's target-setting baseline.
    panel_and_baselines = {*BASELINES, *(m.submission for m in PANEL), "baseline"}
    assert sorted(builtin_submission_names()) == sorted(panel_and_baselines)
    scored = [m for m in PANEL if m.algoperf_score is not None]
    assert len(scored) >= 6
    assert [m.algoperf_score for m in scored] == sorted((m.algoperf_score for m in scored), reverse=True)


@pytest.mark.parametrize(("name", "framework"), PANEL_RUNS)
def test_panel_member_loads_with_a_point_for_each_of_five_trials(name: str, framework: str) -> None:
    source = resolve_submission(name, framework, Path.cwd())
    submission = load_submission(source)
    space = load_search_space(member(name).search_space or source.search_space_path)
    assert len(space.fixed_points) >= 5, "AlgoPerf's external tuning: five trials, one point each"
    if member(name).algoperf_score is not None:
        assert len(space.fixed_points) == 5, "the five points AlgoPerf scored"
    assert submission.get_batch_size("mnist", "mnist") == 64


def test_workloads_where_algoperfs_runs_were_cut_are_workloads_on_algoperfs_board() -> None:
    board = {algoperf_name(name) for name in default_suite()} - {None}
    cut = {w for m in PANEL for w in m.algoperf_runs_cut}
    assert cut and cut <= board
    assert {m.submission for m in PANEL if m.algoperf_runs_cut} == {"lawa_queue", "lawa_ema"}


def test_algoperfs_published_times_are_fractions_of_the_budget_on_its_eight_workloads() -> None:
    board = {algoperf_name(name) for name in default_suite()} - {None}
    assert set(ALGOPERF_V05_RUNTIMES) <= {m.submission for m in PANEL if m.algoperf_score is not None}
    for name, times in ALGOPERF_V05_RUNTIMES.items():
        assert set(times) == board, name
        assert all(0 < t <= 1 or t == math.inf for t in times.values()), name
        # A workload AlgoPerf's published runs were cut short on is one its times count as missed.
        assert all(times[w] == math.inf for w in member(name).algoperf_runs_cut), name


def test_the_panels_nadamw_is_algoperfs_baseline_not_our_tuned_list() -> None:
    ours = load_search_space(resolve_submission("nadamw", "pytorch", Path.cwd()).search_space_path)
    panel = load_search_space(member("nadamw").search_space)
    assert panel.fixed_points[0]["learning_rate"] == pytest.approx(0.001308209823469072)
    assert panel.fixed_points != ours.fixed_points[:5]


@pytest.mark.parametrize("cycles", [1, 2, 3])
def test_the_cyclic_schedule_restarts_with_a_full_warmup_and_matches_optax(cycles: int) -> None:
    from pytest_algoperf.submission_helpers.jax import cyclic_warmup_cosine

    point = SimpleNamespace(learning_rate=1.0, warmup_factor=0.05, cycles=cycles)
    schedule = cyclic_warmup_cosine(point, step_hint=120)
    ours = [cyclic_warmup_cosine_factor(step, 6, 120, cycles) for step in range(140)]
    np.testing.assert_allclose(ours, [float(schedule(step)) for step in range(140)], atol=1e-6)
    cycle = 120 // cycles
    assert [ours[c * cycle] for c in range(cycles)] == [0.0] * cycles, "each cycle starts from 0"
    assert ours[6] == pytest.approx(1.0) and ours[139] == 0.0
    if cycles == 1:
        assert ours == [warmup_cosine_factor(step, 6, 120) for step in range(140)]


def test_nadamw_cyclic_takes_the_same_steps_in_both_frameworks() -> None:
    point = dict(load_search_space(resolve_submission("nadamw_cyclic", "jax", Path.cwd()).search_space_path)
                 .fixed_points[3])  # fmt: skip
    assert point["cycles"] == 2
    ours, theirs = optimizer_trajectories("nadamw_cyclic", point, steps=45)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_a_lawa_queue_averages_the_last_k_snapshots_once_it_is_full() -> None:
    queue = WeightAverage(queue_length=3)
    for value in (1.0, 2.0):
        queue.add([np.full(2, value)])
    assert queue.average() is None
    for value in (3.0, 4.0):
        queue.add([np.full(2, value)])
    np.testing.assert_allclose(queue.average()[0], [3.0, 3.0])  # (2 + 3 + 4) / 3


def test_an_ema_weights_the_past_by_beta_and_beta_0_keeps_the_latest_snapshot() -> None:
    ema = WeightAverage(ema_beta=0.5)
    for value in (0.0, 4.0, 8.0):
        ema.add([np.full(1, value)])
    np.testing.assert_allclose(ema.average()[0], [5.0])  # ((0 + 4) / 2 + 8) / 2
    latest = WeightAverage(ema_beta=0.0)
    for value in (1.0, 7.0):
        latest.add([np.full(1, value)])
    np.testing.assert_allclose(latest.average()[0], [7.0])
    with pytest.raises(ValueError, match="one of queue_length"):
        WeightAverage(queue_length=2, ema_beta=0.5)


def test_snapshots_start_after_the_burn_in_and_follow_the_interval() -> None:
    point = SimpleNamespace(lawa_start_factor=0.02, lawa_interval_scaling=0.005)
    schedule = AveragingSchedule.from_hyperparameters(point, step_hint=1000)
    assert schedule == AveragingSchedule(start=20, every=5)
    assert [s for s in range(40) if schedule.takes_snapshot(s)] == [20, 25, 30, 35]


def _tiny_step(module: object, state: dict, model: torch.nn.Module, batch: dict, step: int) -> dict:
    workload = TinyWorkload()
    state, _, _ = module.update_params(
        workload=workload, current_param_container=model, current_params_types=None, model_state=None,
        hyperparameters=HYPERPARAMETERS, batch=batch, loss_type=None, optimizer_state=state,
        eval_results=[], global_step=step, rng=None,
    )  # fmt: skip
    return state


def _prepare(module: object, state: dict, model: torch.nn.Module, step: int) -> None:
    module.prepare_for_eval(
        workload=TinyWorkload(), current_param_container=model, current_params_types=None, model_state=None,
        hyperparameters=HYPERPARAMETERS, loss_type=None, optimizer_state=state, eval_results=[],
        global_step=step, rng=None,
    )  # fmt: skip


HYPERPARAMETERS = as_hyperparameters(
    {"learning_rate": 0.05, "one_minus_beta1": 0.1, "beta2": 0.99, "weight_decay": 0.0, "warmup_factor": 0.1,
     "lawa_start_factor": 0.0, "lawa_interval_scaling": 0.01, "k": 2}
)  # fmt: skip


def test_pytorch_lawa_evaluates_the_average_and_trains_on_from_the_raw_weights() -> None:
    module = load_submission(resolve_submission("lawa_queue", "pytorch", Path.cwd())).module
    workload = TinyWorkload()
    workload.step_hint = 100
    model, _ = workload.init_model_fn(np.zeros(2, np.uint32))
    state = module.init_optimizer_state(workload, model, None, HYPERPARAMETERS, None)
    batches = workload.build_input_queue(np.zeros(2, np.uint32), "train", None, 16)
    for step in range(3):  # snapshots after steps 1, 2 and 3: the queue holds those of 2 and 3
        state = _tiny_step(module, state, model, next(batches), step)
    raw = [p.detach().clone() for p in model.parameters()]
    snapshots = [s[0] for s in state["average"].queue]
    _prepare(module, state, model, 3)
    torch.testing.assert_close(next(model.parameters()), (snapshots[0] + snapshots[1]) / 2)
    _prepare(module, state, model, 3)  # a second evaluation keeps the raw weights it saved
    torch.testing.assert_close(state["training_weights"][0], raw[0])
    state["optimizer"].param_groups[0]["lr"] = 0.0  # a step that changes nothing shows what it started from
    state = _tiny_step(module, state, model, next(batches), 3)
    torch.testing.assert_close(next(model.parameters()), raw[0])


def test_jax_swap_for_eval_keeps_the_training_params_until_the_next_update() -> None:
    from pytest_algoperf.submission_helpers.jax import restore_training_params, swap_for_eval

    state: dict = {"training_params": None}
    params = {"w": jax.numpy.ones(2)}
    evaluated = swap_for_eval(state, params, lambda p: {"w": p["w"] * 3})
    np.testing.assert_allclose(evaluated["w"], [3.0, 3.0])
    assert swap_for_eval(state, evaluated, lambda p: {"w": p["w"] * 3}) is evaluated, "swapped once"
    assert restore_training_params(state, evaluated) is params
    assert restore_training_params(state, evaluated) is evaluated, "nothing left to restore"
    assert swap_for_eval(state, params, lambda p: None) is params, "nothing to evaluate yet"


def test_jax_lawa_evaluates_the_average_of_its_snapshots() -> None:
    from pytest_algoperf.submission_helpers.jax import averaged_optimizer_state, prepare_for_eval_with_average

    params = {"a": jax.numpy.zeros(2), "b": jax.numpy.zeros(1)}
    state = averaged_optimizer_state(
        optax.sgd(0.1), params, WeightAverage(queue_length=2), AveragingSchedule(0, 1)
    )
    for value in (2.0, 4.0):
        state["average"].add(jax.tree.leaves(jax.tree.map(lambda x, v=value: x + v, params)))
    state, evaluated, _ = prepare_for_eval_with_average(
        None, params, None, None, None, None, state, [], 2, None
    )
    np.testing.assert_allclose(evaluated["a"], [3.0, 3.0])
    assert state["training_params"] is params


def test_schedule_free_evaluates_x_and_trains_at_y_in_pytorch() -> None:
    module = load_submission(resolve_submission("schedule_free_adamw", "pytorch", Path.cwd())).module
    workload = TinyWorkload()
    model, _ = workload.init_model_fn(np.zeros(2, np.uint32))
    state = module.init_optimizer_state(workload, model, None, HYPERPARAMETERS, None)
    batches = workload.build_input_queue(np.zeros(2, np.uint32), "train", None, 16)
    for step in range(5):
        state = _tiny_step(module, state, model, next(batches), step)
    y = next(model.parameters()).detach().clone()
    _prepare(module, state, model, 5)
    x = next(model.parameters()).detach().clone()
    assert not torch.allclose(x, y), "evaluation sees the average x, not the gradient point y"
    _prepare(module, state, model, 5)
    torch.testing.assert_close(next(model.parameters()), x)
    state["optimizer"].train()  # what the next update_params does first
    torch.testing.assert_close(next(model.parameters()), y)
    state["optimizer"].eval()
    state = _tiny_step(module, state, model, next(batches), 5)
    assert state["optimizer"].param_groups[0]["train_mode"], "the update went back to y before its step"
