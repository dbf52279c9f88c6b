"""What dropout costs a step on the calibration's hardware, for the budget rule (VALIDITY.md, rule 2).

AlgoPerf's ``step_hint`` is the steps its baseline can take in the budget, and the baseline's search space
holds a point with ``dropout_rate`` 0.1 (``BASELINE_DROPOUT_RATE``). On AlgoPerf's GPUs dropout is a small
share of a step. On a CPU, with models a few hundred units wide, the masks cost as much as a good part of
the matrix products (x1.1-1.6 a step here), and a budget that holds ``step_hint`` steps of a baseline without
dropout cut every run with dropout 0.1 before ``step_hint``: a loss AlgoPerf's clock does not inflict. So
``calibrate`` measures the target-setting point's step with and without that dropout, and the budget holds
``step_hint`` steps at the slower of the two.

The two steps are timed in one process, in interleaved blocks, and compared round by round: a load that
slows the machine for a while slows both of a round's blocks."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from typing import Any

from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.hardware.derive import step_rate
from pytest_algoperf.loop import RunSettings, Trainer
from pytest_algoperf.score.tuning import as_hyperparameters
from pytest_algoperf.spec import Workload
from pytest_algoperf.submission import Submission

# The largest dropout_rate of AlgoPerf's baseline search space
# (prize_qualification_baselines/external_tuning/tuning_search_space.json: four points at 0.0, one at 0.1).
BASELINE_DROPOUT_RATE = 0.1
ROUNDS = 7
BLOCK_SEC = 0.5  # each block's length: long enough for the clock, short enough that rounds see the same load


def step_cost(plain_blocks: Sequence[float], dropout_blocks: Sequence[float]) -> float:
    """How many times longer a step with dropout takes: the median over rounds of one round's dropout block
    over its plain block, rounded to 0.01 and at least 1 (dropout never makes a step cheaper, so a ratio
    under 1 is the machine's noise, and a budget never shrinks by it)."""
    if not plain_blocks or len(plain_blocks) != len(dropout_blocks):
        raise ValueError("step_cost needs one plain and one dropout block per round")
    ratio = statistics.median(d / p for p, d in zip(plain_blocks, dropout_blocks, strict=True))
    return max(1.0, round(ratio, 2))


def dropout_step_cost(
    workload: Workload,
    submission: Submission,
    point: dict[str, Any],
    args: argparse.Namespace,
    rounds: int = ROUNDS,
    block_sec: float = BLOCK_SEC,
) -> float:
    """``step_cost`` of ``point`` against the same point with ``BASELINE_DROPOUT_RATE``, in ``submission``'s
    framework on ``args.device`` with ``args.threads``, over ``rounds`` pairs of blocks of about
    ``block_sec``; 1 where the point already drops out as much."""
    if float(point.get("dropout_rate") or 0.0) >= BASELINE_DROPOUT_RATE:
        return 1.0
    adapter = get_adapter(submission.source.framework)
    adapter.activate(args.device, args.threads)
    trainers = []
    for values in (point, {**point, "dropout_rate": BASELINE_DROPOUT_RATE}):
        settings = RunSettings(
            seed=0,
            hyperparameters=as_hyperparameters(values),
            data_dir=args.data_dir,
            threads=args.threads,
            device=args.device,
        )
        trainer = Trainer.start(workload, submission, adapter, settings)
        trainer.step()  # compilation and caches, outside the blocks
        adapter.synchronize(trainer.outputs)
        trainers.append(trainer)
    steps = max(3, round(block_sec / _block(trainers[0], 3)))
    blocks: list[list[float]] = [[], []]
    for round_index in range(rounds):
        order = (0, 1) if round_index % 2 == 0 else (1, 0)  # neither always runs first
        for which in order:
            blocks[which].append(_block(trainers[which], steps))
    return step_cost(*blocks)


def _block(trainer: Trainer, steps: int) -> float:
    """Seconds a step takes over ``steps`` steps of a trainer already warm (no warm-up steps)."""
    return 1 / step_rate(trainer, steps, warmup=0)
