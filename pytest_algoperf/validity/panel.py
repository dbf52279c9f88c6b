"""The validity panel: published training algorithms as built-in submissions, each with the search space
its authors published and, where AlgoPerf scored it, its v0.5 external-tuning score.

The scores are AlgoPerf v0.5's external-tuning leaderboard (mlcommons/submissions_algorithms,
``previous_leaderboards/algoperf_v05/README.md``, 2023-12-18). Where the panel's method stands in for the
scored one, ``stands_for`` says which; VALIDITY.md says how each one differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["PANEL", "PanelMember", "member"]

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


def member(submission: str) -> PanelMember:
    for entry in PANEL:
        if entry.submission == submission:
            return entry
    names = ", ".join(entry.submission for entry in PANEL)
    raise ValueError(f"{submission!r} is not in the validity panel; choose from {names}")
