"""The validity panel: published training algorithms as built-in submissions, each with the search space
its authors published and, where AlgoPerf scored it, its v0.5 external-tuning score.

The scores are AlgoPerf v0.5's external-tuning leaderboard (mlcommons/submissions_algorithms,
``previous_leaderboards/algoperf_v05/README.md``, 2023-12-18). Where the panel's method stands in for the
scored one, ``stands_for`` says which; VALIDITY.md says how each one differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ALGOPERF_V05_RUNTIMES", "PANEL", "PanelMember", "member"]

HERE = Path(__file__).parent


@dataclass(frozen=True)
class PanelMember:
    submission: str  # a built-in submission
    stands_for: str  # the algorithm on AlgoPerf's board
    algoperf_score: float | None  # AlgoPerf v0.5 external tuning; None: not on the board
    frameworks: tuple[str, ...] = ("pytorch", "jax")
    search_space: Path | None = None  # None: the submission's own tuning_search_space.json
    # AlgoPerf's base workloads where the entry's published v0.5 trials stopped far short of the budget
    # without reaching the target (VALIDITY.md, "What AlgoPerf's LAWA scores measure"): its score counts them
    # as missed for a reason outside the algorithm, so a pair it loses there is not one to reproduce.
    algoperf_runs_cut: tuple[str, ...] = ()


PANEL: tuple[PanelMember, ...] = (
    PanelMember("soap", "Distributed Shampoo (SOAP from heavyball in its place)", 0.7784, ("pytorch",)),
    PanelMember("schedule_free_adamw", "Schedule Free AdamW", 0.7077),
    PanelMember("nadamw_cyclic", "Cyclic LR", 0.6301),
    # AlgoPerf's baseline with the five points it was scored with, not our own list for nadamw.
    PanelMember("nadamw", "Baseline (NAdamW)", 0.5707, search_space=HERE / "nadamw_algoperf_v05.json"),
    PanelMember(
        "lawa_queue",
        "LAWA Queue",
        0.3699,
        algoperf_runs_cut=("criteo1tb", "imagenet_resnet", "librispeech_conformer", "librispeech_deepspeech"),
    ),
    PanelMember(
        "lawa_ema",
        "LAWA EMA",
        0.3384,
        algoperf_runs_cut=("imagenet_resnet", "librispeech_conformer", "librispeech_deepspeech"),
    ),
    PanelMember("adamw", "AdamW (a baseline, not on the board)", None),
    PanelMember("sgd_nesterov", "SGD with Nesterov (a baseline, not on the board)", None),
)


# AlgoPerf v0.5's per-workload times, external tuning, as fractions of each workload's budget (the scored
# time: the median over studies of the fastest trial; inf: missed), as the organizers published them in
# mlcommons/algorithmic-efficiency issue 836 (2025-01-20), the numbers of Table 1 of Kasimbeg et al. (ICLR
# 2025). The rows of Distributed Shampoo and Schedule Free AdamW were not in the text we could read.
_INF = float("inf")
ALGOPERF_V05_RUNTIMES: dict[str, dict[str, float]] = {
    "nadamw_cyclic": {
        "criteo1tb": 0.67, "fastmri": 0.25, "imagenet_resnet": _INF, "imagenet_vit": 0.81,
        "librispeech_conformer": 0.94, "librispeech_deepspeech": 0.70, "ogbg": 0.38, "wmt": 0.49,
    },
    "nadamw": {
        "criteo1tb": 0.94, "fastmri": 0.23, "imagenet_resnet": _INF, "imagenet_vit": 0.91,
        "librispeech_conformer": 0.90, "librispeech_deepspeech": 0.65, "ogbg": 0.42, "wmt": 0.86,
    },
    "lawa_queue": {
        "criteo1tb": _INF, "fastmri": 0.22, "imagenet_resnet": _INF, "imagenet_vit": 0.66,
        "librispeech_conformer": _INF, "librispeech_deepspeech": _INF, "ogbg": 0.25, "wmt": 0.56,
    },
    "lawa_ema": {
        "criteo1tb": 0.69, "fastmri": 0.29, "imagenet_resnet": _INF, "imagenet_vit": 0.80,
        "librispeech_conformer": _INF, "librispeech_deepspeech": _INF, "ogbg": 0.57, "wmt": 0.89,
    },
}  # fmt: skip


def member(submission: str) -> PanelMember:
    for entry in PANEL:
        if entry.submission == submission:
            return entry
    names = ", ".join(entry.submission for entry in PANEL)
    raise ValueError(f"{submission!r} is not in the validity panel; choose from {names}")
