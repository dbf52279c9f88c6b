"""Batch sizes of submissions that know AlgoPerf's workload names only (pytest_algoperf.batch_size_rule):
a mini workload stands for its AlgoPerf workload, and the answer is scaled by the two baseline sizes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_algoperf.batch_size_rule import (
    ALGOPERF_BASELINE_BATCH_SIZES,
    MINI_BASELINE_BATCH_SIZES,
    algoperf_name,
    batch_size,
    scale_to_mini,
)
from pytest_algoperf.registry import builtin_entries

# AlgoPerf's workloads and variants (algoperf/workloads/workloads.py, reference code v0.6).
ALGOPERF_WORKLOADS = {
    "criteo1tb", "criteo1tb_layernorm", "criteo1tb_embed_init", "criteo1tb_resnet", "fastmri",
    "fastmri_model_size", "fastmri_tanh", "fastmri_layernorm", "imagenet_resnet", "imagenet_resnet_silu",
    "imagenet_resnet_gelu", "imagenet_resnet_large_bn_init", "imagenet_vit", "imagenet_vit_glu",
    "imagenet_vit_post_ln", "imagenet_vit_map", "librispeech_conformer",
    "librispeech_conformer_attention_temperature", "librispeech_conformer_layernorm",
    "librispeech_conformer_gelu", "librispeech_deepspeech", "librispeech_deepspeech_tanh",
    "librispeech_deepspeech_no_resnet", "librispeech_deepspeech_norm_and_spec_aug", "ogbg", "ogbg_gelu",
    "ogbg_silu", "ogbg_model_size", "wmt", "wmt_post_ln", "wmt_attention_temp", "wmt_glu_tanh",
}  # fmt: skip
MINI_WORKLOADS = [entry for entry in builtin_entries() if "_mini" in entry.name]


def knows(**sizes: int) -> Callable[[str], int]:
    """A get_batch_size that knows these names and refuses every other one, as AlgoPerf's do."""

    def get_batch_size(workload_name: str) -> int:
        if workload_name not in sizes:
            raise ValueError(f"Unsupported workload name: {workload_name}.")
        return sizes[workload_name]

    return get_batch_size


ALGOPERF_BASELINE = knows(**ALGOPERF_BASELINE_BATCH_SIZES, imagenet_resnet_silu=512, mnist=16)


@pytest.mark.parametrize("entry", MINI_WORKLOADS, ids=lambda entry: entry.name)
def test_every_mini_workload_and_variant_stands_for_an_algoperf_workload(entry) -> None:
    assert algoperf_name(entry.name) in ALGOPERF_WORKLOADS
    if entry.is_variant:
        assert algoperf_name(entry.name).startswith(algoperf_name(entry.base_name))


def test_names_that_are_no_mini_workload_stand_for_nothing() -> None:
    assert [algoperf_name(name) for name in ("mnist", "cifar", "tiny", "ogbg", "foo_mini")] == [None] * 5


def test_algoperfs_baseline_answers_become_the_mini_baselines_sizes() -> None:
    for base in (entry for entry in MINI_WORKLOADS if not entry.is_variant):
        assert batch_size(ALGOPERF_BASELINE, base.name, base.name) == MINI_BASELINE_BATCH_SIZES[base.name]
    assert batch_size(ALGOPERF_BASELINE, "ogbg_mini", "ogbg_mini") == 32  # 512 of 512, times 32


def test_a_variants_algoperf_answer_is_scaled_by_its_base_workloads_sizes() -> None:
    # AlgoPerf's baseline runs imagenet_resnet_silu at 512, half its base's 1,024: half of 64 here.
    assert batch_size(ALGOPERF_BASELINE, "imagenet_resnet_mini_silu", "imagenet_resnet_mini") == 32
    # A variant it has no size for falls back to the base workload's AlgoPerf name.
    assert batch_size(ALGOPERF_BASELINE, "ogbg_mini_gelu", "ogbg_mini") == 32


def test_a_submission_that_knows_pytest_algoperfs_names_keeps_full_control() -> None:
    both = knows(ogbg_mini=24, ogbg=512, mnist=16)
    assert batch_size(both, "ogbg_mini", "ogbg_mini") == 24
    assert batch_size(both, "ogbg_mini_gelu", "ogbg_mini") == 24  # the base name, before any AlgoPerf name
    assert batch_size(both, "mnist", "mnist") == 16  # mnist is AlgoPerf's own name: never scaled


def test_every_name_refused_is_one_error_naming_them_all() -> None:
    with pytest.raises(ValueError, match="'ogbg_mini_gelu', 'ogbg_mini', 'ogbg_gelu', 'ogbg'") as error:
        batch_size(knows(mnist=16), "ogbg_mini_gelu", "ogbg_mini")
    assert "Unsupported workload name: ogbg." in str(error.value)


def test_only_a_value_error_asks_the_next_name() -> None:
    def broken(workload_name: str) -> int:
        raise KeyError(workload_name)

    with pytest.raises(KeyError):
        batch_size(broken, "ogbg_mini", "ogbg_mini")


@given(
    base=st.sampled_from(sorted(name for name in MINI_BASELINE_BATCH_SIZES if algoperf_name(name))),
    answer=st.integers(min_value=1, max_value=2**20),
    factor=st.integers(min_value=2, max_value=8),
)
def test_scaling_keeps_the_submissions_ratio_to_algoperfs_baseline(
    base: str, answer: int, factor: int
) -> None:
    scaled, scaled_larger = scale_to_mini(answer, base), scale_to_mini(answer * factor, base)
    assert scaled >= 1 and scaled_larger >= scaled  # monotone, never zero
    exact = answer * MINI_BASELINE_BATCH_SIZES[base] / ALGOPERF_BASELINE_BATCH_SIZES[algoperf_name(base)]
    assert abs(scaled - max(exact, 1)) <= 0.5  # the nearest whole batch size
