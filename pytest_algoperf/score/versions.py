"""What each AlgoPerf version fixed for scoring: workloads, variants, targets, budgets, tuning counts.

Facts looked up in AlgoPerf's own sources (values only):

- Targets of every base workload and variant: ``scoring/workload_targets_v05.json`` and
  ``scoring/workload_targets.json`` (benchmark versions 0.5 and 0.6) of mlcommons/submissions_algorithms,
  generated from the workload classes of mlcommons/algorithmic-efficiency. The two versions share every
  target; v0.6 adds ``finewebedu_lm`` (perplexity 22.2995), which the later v0.6 leaderboard scores as a
  ninth base workload.
- Budgets (``max_allowed_runtime_sec``, external tuning): v0.5 from algorithmic-efficiency's
  ``scoring/compute_speedups.py`` (``MAX_BUDGETS``); v0.6 from its ``docs/DOCUMENTATION.md`` 0.6.0, after the
  CHANGELOG's "Modify the runtime budgets" (0.6.0, 2025-06-24). A variant has its base workload's budget.
- v0.5 held-out variants: ``scoring/algoperf_v05/held_out_workloads_algoperf_v05.json`` (one per base workload
  except imagenet_vit and librispeech_deepspeech). v0.6 removed held-out workloads (CHANGELOG 0.6.0).
- Studies: 5 in v0.5, 3 from v0.6 (CHANGELOG 0.6.0: "Reduced number of studies from 5 to 3"); 5 trials each
  under external tuning. Self-tuning budgets: 3x the external budget in v0.5 (ALGOPERF.md section 6), 1.5x
  in v0.6 (``SELF_TUNING_RUNTIME_FACTOR`` of submissions_algorithms' ``scoring/config.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

LOWER_IS_BETTER = frozenset({"loss", "ce_loss", "error_rate", "ctc_loss", "wer", "l1_loss", "ppl"})


@dataclass(frozen=True)
class Target:
    """A workload's validation target, the direction of its metric and its external-tuning budget."""

    metric: str  # without the split prefix, e.g. "accuracy"
    validation: float
    higher_is_better: bool
    budget_sec: float


@dataclass(frozen=True)
class AlgoPerfVersion:
    """The scoring constants of one AlgoPerf version."""

    name: str
    base_workloads: tuple[str, ...]
    held_out: tuple[str, ...]  # the variants that count; empty: variants are not scored
    targets: Mapping[str, Target]
    studies: int
    trials: int  # per study, external tuning
    self_tuning_budget_factor: float
    variant_of: Mapping[str, str] = field(default_factory=dict)  # every known variant -> its base workload

    def budget_factor(self, ruleset: str) -> float:
        return self.self_tuning_budget_factor if ruleset == "self" else 1.0

    def with_held_out(self, held_out: Iterable[str]) -> AlgoPerfVersion:
        return replace(self, held_out=tuple(held_out))


def _higher_is_better(name: str) -> bool:
    """AlgoPerf's maximize (True) or minimize (False) goal of a metric."""
    return name not in LOWER_IS_BETTER


# (metric, validation target) of each base workload and its variants; identical in v0.5 and v0.6.
_TARGETS: dict[str, tuple[str, float]] = {
    "criteo1tb": ("loss", 0.123735),
    "criteo1tb_layernorm": ("loss", 0.123757),
    "criteo1tb_embed_init": ("loss", 0.129657),
    "criteo1tb_resnet": ("loss", 0.12415),
    "fastmri": ("ssim", 0.723653),
    "fastmri_model_size": ("ssim", 0.723559),
    "fastmri_tanh": ("ssim", 0.71784),
    "fastmri_layernorm": ("ssim", 0.723284),
    "imagenet_resnet": ("accuracy", 0.77431),
    "imagenet_resnet_silu": ("accuracy", 0.75445),
    "imagenet_resnet_gelu": ("accuracy", 0.76765),
    "imagenet_resnet_large_bn_init": ("accuracy", 0.76526),
    "imagenet_vit": ("accuracy", 0.77309),
    "imagenet_vit_glu": ("accuracy", 0.75738),
    "imagenet_vit_post_ln": ("accuracy", 0.75312),
    "imagenet_vit_map": ("accuracy", 0.77113),
    "librispeech_conformer": ("wer", 0.085884),
    "librispeech_conformer_attention_temperature": ("wer", 0.109977),
    "librispeech_conformer_layernorm": ("wer", 0.09731),
    "librispeech_conformer_gelu": ("wer", 0.094114),
    "librispeech_deepspeech": ("wer", 0.119936),
    "librispeech_deepspeech_tanh": ("wer", 0.150883),
    "librispeech_deepspeech_no_resnet": ("wer", 0.131564),
    "librispeech_deepspeech_norm_and_spec_aug": ("wer", 0.14342),
    "ogbg": ("mean_average_precision", 0.28098),
    "ogbg_gelu": ("mean_average_precision", 0.27771),
    "ogbg_silu": ("mean_average_precision", 0.282178),
    "ogbg_model_size": ("mean_average_precision", 0.269446),
    "wmt": ("bleu", 30.8491),
    "wmt_post_ln": ("bleu", 30.0779),
    "wmt_attention_temp": ("bleu", 29.3379),
    "wmt_glu_tanh": ("bleu", 29.5779),
    "mnist": ("accuracy", 0.97),
    "cifar": ("accuracy", 0.85),
}
BASE_WORKLOADS = (
    "criteo1tb",
    "fastmri",
    "imagenet_resnet",
    "imagenet_vit",
    "librispeech_conformer",
    "librispeech_deepspeech",
    "ogbg",
    "wmt",
)
_BUDGETS_V05 = {
    "criteo1tb": 7703,
    "fastmri": 8859,
    "imagenet_resnet": 63008,
    "imagenet_vit": 77520,
    "librispeech_conformer": 61068,
    "librispeech_deepspeech": 55506,
    "ogbg": 18477,
    "wmt": 48151,
    "mnist": 60,
    "cifar": 3600,
}
_BUDGETS_V06 = {
    **_BUDGETS_V05,
    "fastmri": 4430,
    "imagenet_resnet": 66159,
    "imagenet_vit": 69768,
    "librispeech_conformer": 58015,
    "librispeech_deepspeech": 44405,
    "ogbg": 12011,
    "wmt": 43336,
}


def variant_base(name: str, bases: Iterable[str] = BASE_WORKLOADS) -> str | None:
    """The base workload a variant name extends (the longest base that prefixes it), None for a base."""
    candidates = [b for b in bases if name != b and name.startswith(b + "_")]
    return max(candidates, key=len) if candidates else None


def _version(
    name: str, budgets: Mapping[str, int], held_out: tuple[str, ...], **constants
) -> AlgoPerfVersion:
    targets = {}
    variant_of = {}
    for workload, (metric, value) in _TARGETS.items():
        base = variant_base(workload)
        if base is not None:
            variant_of[workload] = base
        budget = budgets[base or workload]
        targets[workload] = Target(metric, value, _higher_is_better(metric), float(budget))
    return AlgoPerfVersion(name, BASE_WORKLOADS, held_out, targets, variant_of=variant_of, **constants)


V05 = _version(
    "v0.5",
    _BUDGETS_V05,
    (
        "criteo1tb_embed_init",
        "fastmri_tanh",
        "imagenet_resnet_large_bn_init",
        "librispeech_conformer_layernorm",
        "ogbg_model_size",
        "wmt_glu_tanh",
    ),
    studies=5,
    trials=5,
    self_tuning_budget_factor=3.0,
)
V06 = _version("v0.6", _BUDGETS_V06, (), studies=3, trials=5, self_tuning_budget_factor=1.5)
# The later v0.6 leaderboard's language-model workload; its budget was not looked up, so speedups over it
# use the budget its own meta data carry.
V06 = replace(V06, targets={**V06.targets, "finewebedu_lm": Target("ppl", 22.2995, False, float("nan"))})
VERSIONS = {v.name: v for v in (V05, V06)}
