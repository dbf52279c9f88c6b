"""BenchmarkClock, AlgoPerf's clock (ALGOPERF.md section 3), driven by a fake ``now`` that moves only when
a test says so; and the public ``algoperf_clock`` fixture timing a training loop of the test's own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from pytest_algoperf.clock import BenchmarkClock


class FakeTime:
    """A ``now`` for the clock: time stands still until ``advance``; ``readings`` counts the calls."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


def make_clock(
    fake: FakeTime,
    budget_sec: float = 100.0,
    eval_period_sec: float = 10.0,
    eval_every_steps: int | None = None,
    synchronize: Callable[[Any], None] | None = None,
) -> BenchmarkClock:
    kwargs: dict[str, Any] = {"eval_every_steps": eval_every_steps, "now": fake}
    if synchronize is not None:
        kwargs["synchronize"] = synchronize
    clock = BenchmarkClock(budget_sec, eval_period_sec, **kwargs)
    clock.start()
    return clock


def step(clock: BenchmarkClock, fake: FakeTime, seconds: float) -> None:
    """One training step that takes ``seconds``, ended as the harness's loop ends it (``resume`` too)."""
    fake.advance(seconds)
    clock.end_step()
    clock.resume()


def test_steps_count_as_submission_time_from_the_start() -> None:
    fake = FakeTime()
    clock = make_clock(fake)
    step(clock, fake, 1.5)
    step(clock, fake, 2.0)
    assert clock.global_step == 2
    assert clock.submission_time == pytest.approx(3.5)


def test_eval_and_logging_time_are_excluded_from_submission_time() -> None:
    fake = FakeTime()
    clock = make_clock(fake)
    step(clock, fake, 1.0)
    with clock.untimed_eval():
        fake.advance(5.0)
    with clock.untimed_logging():
        fake.advance(0.5)
    clock.resume()
    step(clock, fake, 2.0)
    assert clock.submission_time == pytest.approx(3.0)
    assert clock.eval_time == pytest.approx(5.0)
    assert clock.logging_time == pytest.approx(0.5)
    assert clock.total_duration == pytest.approx(8.5)


def test_consecutive_steps_without_resume_are_each_counted_once() -> None:
    fake = FakeTime()
    clock = make_clock(fake)
    for seconds in (1.5, 2.0, 0.5):
        fake.advance(seconds)
        clock.end_step()
    assert clock.submission_time == pytest.approx(4.0)


def test_the_first_eval_is_due_right_after_step_one() -> None:
    fake = FakeTime()
    clock = make_clock(fake, eval_period_sec=10.0)
    assert clock.last_eval_time == -float("inf")
    step(clock, fake, 0.001)
    assert clock.eval_due()


def test_later_evals_are_due_every_eval_period_after_the_last_eval_ended() -> None:
    fake = FakeTime()
    clock = make_clock(fake, eval_period_sec=10.0)
    step(clock, fake, 1.0)
    with clock.untimed_eval():
        fake.advance(3.0)
    clock.resume()
    due = []
    for _ in range(12):
        step(clock, fake, 1.0)
        due.append(clock.eval_due())
    # The period counts wall time since the last eval ended: due once 10 s have passed, at step 11.
    assert due == [False] * 9 + [True] * 3
    assert clock.eval_due(training_complete=True)


def test_training_complete_makes_an_eval_due_at_once() -> None:
    fake = FakeTime()
    clock = make_clock(fake, eval_period_sec=10.0)
    step(clock, fake, 1.0)
    with clock.untimed_eval():
        pass
    step(clock, fake, 1.0)
    assert not clock.eval_due()
    assert clock.eval_due(training_complete=True)


def test_eval_every_steps_makes_evals_due_every_n_steps_whatever_the_time() -> None:
    """With ``eval_every_steps=3`` evals fall on steps 1, 4, 7 ..., however long each step takes."""
    fake = FakeTime()
    clock = make_clock(fake, eval_period_sec=0.0, eval_every_steps=3)
    evaluated = []
    for seconds in (0.1, 50.0, 0.1, 0.1, 0.1, 50.0, 0.1, 0.1, 0.1, 0.1):
        fake.advance(seconds)
        clock.end_step()
        if clock.eval_due():
            with clock.untimed_eval():
                evaluated.append(clock.global_step)
        clock.resume()
    assert evaluated == [1, 4, 7, 10]


def test_the_budget_is_a_strict_limit_read_only_through_time_remaining() -> None:
    """Steps past the budget are still counted: the loop decides at eval points, by reading
    ``time_remaining``; there the run stops once submission time has reached the budget."""
    fake = FakeTime()
    clock = make_clock(fake, budget_sec=3.0)
    step(clock, fake, 2.0)
    assert clock.time_remaining
    step(clock, fake, 1.0)
    assert clock.submission_time == pytest.approx(3.0)
    assert not clock.time_remaining
    step(clock, fake, 1.0)
    assert clock.global_step == 3
    assert clock.submission_time == pytest.approx(4.0)


def test_a_non_positive_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="budget must be positive"):
        BenchmarkClock(0.0, 1.0)


def test_timed_call_adds_prepare_for_eval_time_to_submission_time() -> None:
    fake = FakeTime()
    clock = make_clock(fake)
    step(clock, fake, 1.0)

    def prepare_for_eval(*, weights: str) -> str:
        fake.advance(0.25)
        return f"averaged {weights}"

    assert clock.timed_call(prepare_for_eval, weights="w") == "averaged w"
    assert clock.submission_time == pytest.approx(1.25)


def test_prepare_for_eval_time_is_not_also_counted_as_eval_time() -> None:
    fake = FakeTime()
    clock = make_clock(fake)
    step(clock, fake, 1.0)
    clock.timed_call(lambda: fake.advance(0.25))
    with clock.untimed_eval():
        fake.advance(5.0)
    assert clock.submission_time == pytest.approx(1.25)
    assert clock.eval_time == pytest.approx(5.0)
    assert clock.submission_time + clock.eval_time <= clock.total_duration


def test_a_step_end_does_not_wait_for_the_accelerator_but_every_decision_does() -> None:
    """``end_step`` reads the time at once (no synchronisation per step); ``settle``, which every decision and
    every excluded section calls first, waits for the last step's outputs before it reads the time."""
    fake = FakeTime()
    synchronized: list[tuple[Any, int]] = []
    clock = make_clock(fake, synchronize=lambda outputs: synchronized.append((outputs, fake.readings)))
    outputs = ("optimizer_state", "params", "model_state")
    fake.advance(1.0)
    clock.end_step(outputs)
    assert [o for o, _ in synchronized] == [None]  # only start()'s reading
    assert clock.time_remaining
    assert synchronized[-1] == (outputs, fake.readings - 1)  # waited for the step, then read the time


@pytest.mark.parametrize(
    "decision",
    [
        lambda clock: clock.time_remaining,
        lambda clock: clock.timed_call(lambda: None),
        lambda clock: clock.untimed_eval().__enter__(),
        lambda clock: clock.resume(),
        lambda clock: clock.total_duration,
    ],
    ids=["budget", "timed-call", "eval", "resume", "total-duration"],
)
def test_work_still_queued_at_a_step_end_is_counted_before_any_decision(
    decision: Callable[[BenchmarkClock], Any],
) -> None:
    """The step's own reading saw 1 s; the accelerator needed 0.5 s more, which ``settle`` adds: the
    intervals telescope, so the sum is exact once the last one is closed after the outputs are ready."""
    fake = FakeTime()
    clock = make_clock(fake, synchronize=lambda outputs: fake.advance(0.5) if outputs == "queued" else None)
    fake.advance(1.0)
    clock.end_step("queued")
    assert clock.submission_time == pytest.approx(1.0)
    decision(clock)
    assert clock.submission_time == pytest.approx(1.5)
    clock.settle()  # idempotent: nothing is queued any more
    assert clock.submission_time == pytest.approx(1.5)


# ---- the public fixture ------------------------------------------------------------------------------


def test_algoperf_clock_fixture_times_your_own_training_loop(
    algoperf_clock: Callable[..., BenchmarkClock],
) -> None:
    """How a user times a loop of their own under AlgoPerf's rules: ``end_step`` after each step, eval
    inside ``untimed_eval``, ``resume`` before the next step. Here each eval sleeps 0.05 s, and the clock
    keeps that out of the submission time."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs = torch.randn(64, 4)
    targets = inputs.sum(dim=1, keepdim=True)
    losses = []

    clock = algoperf_clock(budget_sec=60.0, framework="pytorch", eval_every_steps=5)
    clock.start()
    while clock.global_step < 20 and clock.time_remaining:
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clock.end_step(loss)
        if clock.eval_due():
            with clock.untimed_eval():
                time.sleep(0.05)
                losses.append((clock.global_step, loss.item()))
        clock.resume()

    assert clock.global_step == 20
    assert [global_step for global_step, _ in losses] == [1, 6, 11, 16]
    assert losses[-1][1] < losses[0][1]  # it trained
    assert clock.eval_time >= 4 * 0.05
    assert clock.submission_time < clock.eval_time / 2
    assert clock.total_duration >= clock.submission_time + clock.eval_time
