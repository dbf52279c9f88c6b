"""The batch size of a submission whose ``get_batch_size`` knows AlgoPerf's workload names only.

A submission written for AlgoPerf answers ``get_batch_size('ogbg')`` and raises ``ValueError`` for
``ogbg_mini``. The harness then asks for the AlgoPerf workload a mini workload stands for (its name without
``_mini``: ``ogbg_mini`` -> ``ogbg``, ``ogbg_mini_gelu`` -> ``ogbg_gelu``; one variant is renamed,
``criteo1tb_mini_residual`` -> ``criteo1tb_resnet``) and scales the answer by the ratio of the two workloads'
baseline batch sizes:

    mini batch size = round(answer / AlgoPerf's baseline size x the mini workload's baseline size), at least 1

AlgoPerf's baseline sizes are its NAdamW baseline's (ALGOPERF.md section 6); the mini workloads' are
pytest-algoperf's baselines' (``pytest_algoperf.submission_helpers.BATCH_SIZES``), the sizes their targets
were calibrated with. So the AlgoPerf baseline's own answer maps to the mini baseline's size (``ogbg``: 512 ->
32), and a submission that doubles the baseline's batch on AlgoPerf doubles it here. A variant's answer is
scaled by its base workload's sizes (``imagenet_resnet_silu``: 512 of 1,024 -> 32 of 64).

Names the submission knows are always asked first and used as given, so a submission that knows
pytest-algoperf's names keeps full control. ``mnist`` and ``cifar`` are AlgoPerf's own names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pytest_algoperf.submission_helpers import BATCH_SIZES as MINI_BASELINE_BATCH_SIZES

# AlgoPerf's NAdamW baseline's global batch size per base workload (reference code v0.6).
ALGOPERF_BASELINE_BATCH_SIZES = {
    "criteo1tb": 262_144,
    "fastmri": 32,
    "imagenet_resnet": 1024,
    "imagenet_vit": 1024,
    "librispeech_conformer": 256,
    "librispeech_deepspeech": 256,
    "ogbg": 512,
    "wmt": 128,
}
MINI_SUFFIX = "_mini"
# Variants whose AlgoPerf name is not the mini name without "_mini".
RENAMED = {"criteo1tb_mini_residual": "criteo1tb_resnet"}


def algoperf_name(workload_name: str) -> str | None:
    """The AlgoPerf workload a mini workload or variant stands for; None for any other name."""
    if workload_name in RENAMED:
        return RENAMED[workload_name]
    base, suffix, variant = workload_name.partition(MINI_SUFFIX)
    if not suffix or base not in ALGOPERF_BASELINE_BATCH_SIZES or (variant and not variant.startswith("_")):
        return None
    return base + variant


def scale_to_mini(batch_size: int, mini_base_name: str) -> int:
    """A batch size for ``mini_base_name``'s AlgoPerf workload, scaled to the mini workload."""
    algoperf_base = algoperf_name(mini_base_name)
    if algoperf_base not in ALGOPERF_BASELINE_BATCH_SIZES or mini_base_name not in MINI_BASELINE_BATCH_SIZES:
        raise ValueError(f"no baseline batch sizes to scale by for {mini_base_name!r}")
    ratio = MINI_BASELINE_BATCH_SIZES[mini_base_name] / ALGOPERF_BASELINE_BATCH_SIZES[algoperf_base]
    return max(1, round(batch_size * ratio))


@dataclass(frozen=True)
class Question:
    """One name to ask ``get_batch_size`` for, and whether its answer is scaled to the mini workload."""

    name: str
    scaled_for: str | None = None  # the mini base workload whose sizes scale the answer


def questions(workload_name: str, base_workload_name: str) -> list[Question]:
    """The names to ask, in order: the workload, its base workload, then the AlgoPerf names they stand for."""
    asked = [Question(workload_name)]
    if base_workload_name != workload_name:
        asked.append(Question(base_workload_name))
    can_scale = algoperf_name(base_workload_name) in ALGOPERF_BASELINE_BATCH_SIZES
    for name in (workload_name, base_workload_name):
        algoperf = algoperf_name(name)
        if can_scale and algoperf is not None and all(q.name != algoperf for q in asked):
            asked.append(Question(algoperf, scaled_for=base_workload_name))
    return asked


def batch_size(get_batch_size: Callable[[str], int], workload_name: str, base_workload_name: str) -> int:
    """Ask ``get_batch_size`` each of ``questions`` until one is answered; a ``ValueError`` moves on to the
    next name, and when every name is refused the error names them all."""
    refusals: list[tuple[str, ValueError]] = []
    asked = questions(workload_name, base_workload_name)
    for question in asked:
        try:
            answer = int(get_batch_size(question.name))
        except ValueError as error:
            refusals.append((question.name, error))
            continue
        return answer if question.scaled_for is None else scale_to_mini(answer, question.scaled_for)
    if len(refusals) == 1:
        raise refusals[0][1]
    names = ", ".join(repr(name) for name, _ in refusals)
    raise ValueError(
        f"get_batch_size refused every name for {workload_name!r} ({names}); the last said: {refusals[-1][1]}"
    ) from refusals[-1][1]
