"""Learning-rate schedules as small pure functions, shared by the PyTorch baselines.

The JAX baselines use optax's own schedules; these match them step for step (see the tests)."""

from __future__ import annotations

import math


def warmup_cosine_factor(step: int, warmup_steps: int, decay_steps: int) -> float:
    """The multiplier of the peak learning rate at ``step``, as ``optax.warmup_cosine_decay_schedule``
    computes it with ``init_value=0`` and ``end_value=0``: linear from 0 to 1 over ``warmup_steps``, then
    a cosine from 1 to 0 until ``decay_steps``, and 0 after."""
    if step < warmup_steps:
        return step / warmup_steps
    span = max(decay_steps - warmup_steps, 1)
    progress = min(step - warmup_steps, span) / span
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_linear_decay_factor(step: int, warmup_steps: int, decay_steps: int, end_factor: float) -> float:
    """The multiplier of the peak learning rate at ``step`` for AlgoPerf's SGD baselines, as optax's
    ``join_schedules`` of a linear warmup from 0 and a ``polynomial_schedule`` of power 1 computes it: linear
    from 0 to 1 over ``warmup_steps``, linear from 1 to ``end_factor`` until ``decay_steps``, then flat."""
    if step < warmup_steps:
        return step / warmup_steps
    span = max(decay_steps - warmup_steps, 1)
    progress = min(step - warmup_steps, span) / span
    return 1.0 + (end_factor - 1.0) * progress


def cyclic_warmup_cosine_factor(step: int, warmup_steps: int, decay_steps: int, cycles: int) -> float:
    """``cycles`` back-to-back copies of ``warmup_cosine_factor``, each ``decay_steps // cycles`` long and
    each with the full warmup (AlgoPerf v0.5's Cyclic LR submission); 0 after the last cycle, as
    ``optax.sgdr_schedule`` of the same cycles computes it."""
    cycle_steps = max(decay_steps // cycles, 1)
    cycle = min(step // cycle_steps, cycles - 1)
    return warmup_cosine_factor(step - cycle * cycle_steps, warmup_steps, cycle_steps)
