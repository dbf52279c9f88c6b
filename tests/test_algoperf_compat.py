"""AlgoPerf's package for submissions written against the reference harness (issue 15): ``algoperf`` and
``algorithmic_efficiency`` import without AlgoPerf installed, never in place of a real install, and answer
from the harness: its contract, its process group and device, its JAX mesh."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pytest_algoperf import compat
from pytest_algoperf import spec as harness_spec
from pytest_algoperf.distributed import ProcessGroup, process_group, set_process_group

# Every public name of AlgoPerf's spec.py (reference code v0.6), with its enums' members and values.
ALGOPERF_SPEC_NAMES = {
    "LossType", "ForwardPassMode", "ParameterType", "Tensor", "ShapeTuple", "Shape", "ParameterShapeTree",
    "ParameterKey", "ParameterContainer", "ParameterTypeTree", "RandomState", "OptimizerState",
    "Hyperparameters", "Timing", "Steps", "ModelAuxiliaryState", "ModelInitState", "Workload",
    "TrainingCompleteError", "InitOptimizerFn", "init_optimizer_state", "UpdateReturn", "UpdateParamsFn",
    "update_params", "PrepareForEvalFn", "prepare_for_eval", "DataSelectionFn", "data_selection",
    "get_batch_size",
}  # fmt: skip
ALGOPERF_ENUMS = {
    "LossType": ["SOFTMAX_CROSS_ENTROPY", "SIGMOID_CROSS_ENTROPY", "MEAN_SQUARED_ERROR", "CTC_LOSS",
                 "MEAN_ABSOLUTE_ERROR"],
    "ForwardPassMode": ["TRAIN", "EVAL"],
    "ParameterType": ["WEIGHT", "BIAS", "CONV_WEIGHT", "BATCH_NORM_SCALE", "BATCH_NORM_BIAS",
                      "LAYER_NORM_SCALE", "LAYER_NORM_BIAS", "EMBEDDING", "ATTENTION_Q", "ATTENTION_K",
                      "ATTENTION_V", "ATTENTION_OUT", "ATTENTION_QKV", "ATTENTION_KV", "ATTENTION_BIAS"],
}  # fmt: skip


def forget_algoperf_modules() -> None:
    for name in [m for m in sys.modules if m.partition(".")[0] in compat.ALIASES]:
        del sys.modules[name]


@pytest.fixture
def fresh_imports() -> Iterator[None]:
    """Each test imports ``algoperf`` afresh, and leaves no trace of it for the next."""
    compat.install()
    forget_algoperf_modules()
    yield
    forget_algoperf_modules()


@pytest.fixture
def harness_group() -> Iterator[None]:
    saved = process_group()
    yield
    set_process_group(saved)


# ---- the packages ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_imports")
def test_both_package_names_serve_the_harness_contract_itself() -> None:
    from algoperf import spec
    from algorithmic_efficiency import spec as legacy_spec

    assert spec is legacy_spec is importlib.import_module("pytest_algoperf.compat.spec")
    # The very classes the harness uses: a TrainingCompleteError a submission raises ends training.
    assert spec.TrainingCompleteError is harness_spec.TrainingCompleteError
    assert spec.Workload is harness_spec.Workload
    assert compat.is_compat_module(sys.modules["algoperf"])


@pytest.mark.usefixtures("fresh_imports")
def test_spec_has_every_public_name_of_algoperfs_spec_and_its_enums() -> None:
    from algoperf import spec

    assert {name for name in ALGOPERF_SPEC_NAMES if not hasattr(spec, name)} == set()
    assert set(spec.__all__) == ALGOPERF_SPEC_NAMES
    for enum_name, members in ALGOPERF_ENUMS.items():
        enum = getattr(spec, enum_name)
        assert [(member.name, member.value) for member in enum] == [(m, i) for i, m in enumerate(members)]
    with pytest.raises(NotImplementedError, match="the submission's own update_params"):
        spec.update_params(*[None] * 11)


def test_shape_tuple_is_algoperfs_leaf_and_compares_like_the_shape() -> None:
    shape = harness_spec.ShapeTuple((3, 4))
    assert shape.shape_tuple == (3, 4) and shape == (3, 4) and shape == harness_spec.ShapeTuple([3, 4])
    assert repr(shape) == "ShapeTuple((3, 4))"
    jax = pytest.importorskip("jax")
    tree = {"dense": {"kernel": shape, "bias": harness_spec.ShapeTuple((4,))}}
    assert jax.tree.leaves(tree) == [(4,), (3, 4)]  # one leaf per parameter, not one per dimension
    zeros = jax.tree.map(lambda s: jax.numpy.zeros(s.shape_tuple), tree)
    assert zeros["dense"]["kernel"].shape == (3, 4)


@pytest.mark.usefixtures("fresh_imports")
def test_a_real_install_is_used_and_never_completed_with_these_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "algoperf"
    real.mkdir()
    (real / "__init__.py").write_text("REAL = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import algoperf

    assert algoperf.REAL and not compat.is_compat_module(algoperf)
    with pytest.raises(ModuleNotFoundError, match="jax_sharding_utils"):
        importlib.import_module("algoperf.jax_sharding_utils")  # missing from the install: stays missing


@pytest.mark.usefixtures("fresh_imports")
def test_a_module_it_does_not_provide_is_an_import_error_saying_what_is_provided() -> None:
    with pytest.raises(ModuleNotFoundError, match="pytest-algoperf provides AlgoPerf's spec, pytorch_utils"):
        importlib.import_module("algoperf.workloads.workloads")
    import algoperf

    assert algoperf.spec is importlib.import_module("algoperf.spec")  # attribute access imports it


# ---- pytorch_utils -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_imports", "harness_group")
def test_pytorch_setup_answers_from_the_harness_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from algoperf.pytorch_utils import pytorch_setup

    from pytest_algoperf.frameworks.pytorch_adapter import ADAPTER

    monkeypatch.setattr(ADAPTER, "_device", "cpu")  # as --algoperf-device=cpu selects it
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(variable, raising=False)
    assert pytorch_setup() == (False, 0, torch.device("cpu"), 1)
    set_process_group(ProcessGroup(rank=3, world_size=4, local_rank=1, local_world_size=2))
    assert pytorch_setup() == (True, 1, torch.device("cpu"), 2)


@pytest.mark.usefixtures("fresh_imports", "harness_group")
def test_pytorch_setup_reads_torchrun_before_the_harness_starts_its_process_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("torch")
    from algoperf.pytorch_utils import pytorch_setup

    from pytest_algoperf.frameworks.pytorch_adapter import ADAPTER

    monkeypatch.setattr(ADAPTER, "_device", "cpu")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    use_ddp, rank, device, _ = pytorch_setup()  # at import time of a submission, under torchrun
    assert (use_ddp, rank, device.type) == (True, 1, "cpu")


# ---- JAX: sharding, placement, shapes ----------------------------------------------------------------


@pytest.mark.usefixtures("fresh_imports")
def test_jax_sharding_utils_shard_on_the_runs_mesh() -> None:
    pytest.importorskip("jax")
    from algoperf import jax_sharding_utils
    from jax.sharding import NamedSharding, PartitionSpec

    from pytest_algoperf.frameworks.jax_adapter import ADAPTER

    ADAPTER.activate("cpu")
    assert jax_sharding_utils.get_replicate_sharding() == NamedSharding(ADAPTER.run_mesh(), PartitionSpec())
    assert jax_sharding_utils.get_batch_dim_sharding().spec == PartitionSpec("batch")
    tree = jax_sharding_utils.replicate({"w": np.ones((4, 2))})
    assert tree["w"].sharding == jax_sharding_utils.get_replicate_sharding()
    rows = jax_sharding_utils.shard_along_batch_dim(np.ones((4, 2)))
    assert rows.sharding == jax_sharding_utils.get_batch_dim_sharding()


def test_jax_state_is_handed_over_replicated_and_a_submissions_own_placement_is_kept() -> None:
    jax = pytest.importorskip("jax")
    from jax.sharding import NamedSharding, PartitionSpec

    from pytest_algoperf.frameworks.jax_adapter import ADAPTER

    ADAPTER.activate("cpu")
    params, model_state = ADAPTER.prepare_model({"w": jax.numpy.ones(3)}, None)
    own = jax.device_put(jax.numpy.ones(4), NamedSharding(ADAPTER.run_mesh(), PartitionSpec("batch")))

    def update(x: object) -> object:
        return x

    state = ADAPTER.prepare_optimizer_state(({"count": jax.numpy.zeros([]), "own": own, "lr": 0.1}, update))
    assert params["w"].sharding == ADAPTER.replicated() and model_state is None
    assert state[0]["count"].sharding == ADAPTER.replicated()
    assert state[0]["own"].sharding.spec == PartitionSpec("batch")
    assert state[0]["lr"] == 0.1 and state[1] is update


@pytest.mark.usefixtures("fresh_imports")
@pytest.mark.parametrize("framework", ["pytorch", "jax"])
def test_param_shapes_are_trees_of_shape_tuples_as_algoperf_gives_them(framework: str) -> None:
    pytest.importorskip("torch" if framework == "pytorch" else "jax")
    from algoperf import param_utils

    from pytest_algoperf.registry import builtin_entries

    workload = next(e for e in builtin_entries() if e.name == "mnist").create(framework, None, "cpu")
    if framework == "pytorch":
        model, _ = workload.init_model_fn(np.array([0, 1], dtype=np.uint32))
        expected, shapes = param_utils.pytorch_param_shapes(model), list(workload.param_shapes.values())
    else:
        import jax

        params, _ = workload.init_model_fn(jax.random.PRNGKey(0))
        expected, shapes = param_utils.jax_param_shapes(params), jax.tree.leaves(workload.param_shapes)
        assert len(jax.tree.leaves(workload.model_params_types)) == len(shapes)
    assert workload.param_shapes == expected
    assert len(shapes) == 4 and all(isinstance(shape, harness_spec.ShapeTuple) for shape in shapes)


# ---- random_utils and param_utils --------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_imports")
def test_random_utils_keep_the_kind_of_key_the_harness_gave() -> None:
    from algoperf import random_utils as prng

    numpy_key = prng.PRNGKey(0)
    assert isinstance(numpy_key, np.ndarray) and numpy_key.shape == (2,)
    assert [k.tolist() for k in prng.split(numpy_key, 2)] != [numpy_key.tolist()] * 2
    assert prng.fold_in(numpy_key, 3).tolist() == prng.fold_in(numpy_key, 3).tolist()
    jax = pytest.importorskip("jax")
    jax_key = prng.PRNGKey(0, framework="jax")
    assert prng.split(jax_key, 3).shape == jax.random.split(jax_key, 3).shape
    assert (prng.fold_in(jax_key, 5) == jax.random.fold_in(jax_key, 5)).all()
