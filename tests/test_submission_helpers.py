"""``pytest_algoperf.submission_helpers``: the public pieces the built-in baselines are made of, and the
README's example submission built from them, which trains mnist to its target."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from tiny import QUIET_PLUGINS, read_results

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", ["", ".pytorch", ".jax"])
def test_every_public_name_exists_and_none_is_private(module: str) -> None:
    helpers = importlib.import_module(f"pytest_algoperf.submission_helpers{module}")
    assert helpers.__all__
    for name in helpers.__all__:
        assert not name.startswith("_")
        assert callable(getattr(helpers, name)) or name == "BATCH_SIZES"


def test_the_batch_sizes_are_the_baselines_and_an_unknown_workload_is_a_value_error() -> None:
    from pytest_algoperf.submission_helpers import BATCH_SIZES, batch_size

    assert batch_size("mine", "ogbg_mini") == BATCH_SIZES["ogbg_mini"]
    with pytest.raises(ValueError, match="mine has no batch size for workload 'ogbg'"):
        batch_size("mine", "ogbg")  # AlgoPerf's name: the harness then asks with the mini workload's


def test_the_readmes_example_submission_reaches_the_mnist_target(pytester: pytest.Pytester) -> None:
    source = re.search(r"```python\n(# my_optimizer/pytorch.py.*?)```", README.read_text(), re.S)
    assert source is not None
    folder = pytester.mkdir("my_optimizer")
    (folder / "pytorch.py").write_text(source.group(1))
    (folder / "tuning_search_space.json").write_text('[{"learning_rate": 0.002}]')
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest(
        *QUIET_PLUGINS, "--algoperf-threads=1", "--algoperf-output=out", "--algoperf-submission=my_optimizer",
        "--algoperf-workloads=mnist",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    assert read_results(pytester)["runs"][0]["reached"] is True
