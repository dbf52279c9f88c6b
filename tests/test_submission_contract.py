"""The submission contract (ALGOPERF.md section 1): broken submissions are usage errors caught before any
training, and the harness's call conventions (batch size retry, ``train_state``)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tiny import (
    QUIET_PLUGINS,
    TINY_SUBMISSION,
    TinyWorkload,
    assert_usage_error,
    load_tiny_submission,
    tiny_hyperparameters,
    write_submission,
)

from pytest_algoperf.frameworks import get_adapter
from pytest_algoperf.loop import RunSettings, run_benchmark
from pytest_algoperf.results import RunResult
from pytest_algoperf.submission import Submission, SubmissionSource

TRAIN_STATE_KEYS = {
    "accumulated_submission_time",
    "accumulated_eval_time",
    "accumulated_logging_time",
    "last_eval_time",
    "last_step_end_time",
    "validation_goal_reached",
    "test_goal_reached",
    "is_time_remaining",
    "training_complete",
}


def run_submission(pytester: pytest.Pytester, spec: str) -> pytest.RunResult:
    return pytester.runpytest(*QUIET_PLUGINS, f"--algoperf-submission={spec}", "--algoperf-workloads=mnist")


# ---- broken submissions: one clear usage error, no traceback --------------------------------------------


def test_an_unknown_submission_name_is_one_clear_line(pytester: pytest.Pytester) -> None:
    result = run_submission(pytester, "does_not_exist")
    builtins = "built-in name (adamw, baseline, lawa_ema, lawa_queue, momentum, nadamw, nadamw_cyclic, "
    assert_usage_error(result, "unknown submission 'does_not_exist'", builtins)


def test_a_missing_submission_file_is_one_clear_line(pytester: pytest.Pytester) -> None:
    result = run_submission(pytester, "nowhere/pytorch.py")
    assert_usage_error(result, "'nowhere/pytorch.py' does not exist", str(pytester.path / "nowhere"))


def test_a_folder_without_the_frameworks_file_names_the_missing_file(pytester: pytest.Pytester) -> None:
    write_submission(pytester.path, "tinysgd")
    result = pytester.runpytest(*QUIET_PLUGINS, "--algoperf-submission=tinysgd", "--algoperf-framework=jax")
    assert_usage_error(result, "no jax implementation", str(pytester.path / "tinysgd" / "jax.py"))


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        pytest.param(
            TINY_SUBMISSION.replace("def update_params(", "def update_parameters("),
            ("update_params() is missing",),
            id="missing-update_params",
        ),
        pytest.param(
            TINY_SUBMISSION + "\n\ndef update_params(workload, params, batch):\n    return None\n",
            ("update_params() has the wrong signature", "current_param_container"),
            id="wrong-signature",
        ),
        pytest.param(
            TINY_SUBMISSION
            + "\n\ndef data_selection(workload, input_queue):\n    return next(input_queue)\n",
            ("data_selection() has the wrong signature",),
            id="wrong-data_selection-signature",
        ),
        pytest.param(
            TINY_SUBMISSION + "\n\ndef prepare_for_eval(workload):\n    pass\n",
            ("prepare_for_eval() has the wrong signature",),
            id="wrong-optional-prepare_for_eval",
        ),
        pytest.param(
            TINY_SUBMISSION + "\n\nget_batch_size = 32\n",
            ("get_batch_size is not a function",),
            id="not-callable",
        ),
        pytest.param(
            "import fancy_optimizer_that_is_not_installed\n" + TINY_SUBMISSION,
            ("importing it failed", "ModuleNotFoundError", "fancy_optimizer_that_is_not_installed"),
            id="import-error",
        ),
        pytest.param(
            TINY_SUBMISSION + "\n\nraise RuntimeError('set MY_TOKEN first')\n",
            ("importing it failed: RuntimeError: set MY_TOKEN first",),
            id="raises-on-import",
        ),
        pytest.param(
            TINY_SUBMISSION + "\n\ndef broken(:\n",
            ("importing it failed: SyntaxError",),
            id="syntax-error",
        ),
    ],
)
def test_a_broken_submission_file_is_a_usage_error_naming_the_file_and_the_function(
    pytester: pytest.Pytester, source: str, fragments: tuple[str, ...]
) -> None:
    path = write_submission(pytester.path, "broken", source=source)
    result = run_submission(pytester, "broken")
    assert_usage_error(result, str(path), *fragments)
    assert "step" not in result.stdout.str()  # nothing trained


@pytest.mark.parametrize(
    ("search_space", "fragments"),
    [
        pytest.param('[{"learning_rate": 0.1,}]', ("not valid JSON", "line 1"), id="not-json"),
        pytest.param(
            '{"learning_rate": {"min": 0.001, "max": 0.1}}',
            ("'learning_rate' is missing 'scaling'",),
            id="missing-field",
        ),
        pytest.param(
            '{"learning_rate": {"min": 0.1, "max": 0.001, "scaling": "log"}}',
            ("'learning_rate' has min 0.1 greater than max 0.001",),
            id="min-above-max",
        ),
        pytest.param('{"learning-rate": {"feasible_points": [0.1]}}', ("'learning-rate'",), id="bad-name"),
        pytest.param("[]", ("the list of fixed points is empty",), id="empty-list"),
    ],
)
def test_a_malformed_search_space_is_a_usage_error_naming_the_file_and_the_field(
    pytester: pytest.Pytester, search_space: str, fragments: tuple[str, ...]
) -> None:
    path = write_submission(pytester.path, "tinysgd").with_name("tuning_search_space.json")
    path.write_text(search_space)
    assert_usage_error(run_submission(pytester, "tinysgd"), str(path), *fragments)


def test_a_missing_search_space_is_a_usage_error_naming_the_file(pytester: pytest.Pytester) -> None:
    path = write_submission(pytester.path, "tinysgd").with_name("tuning_search_space.json")
    path.unlink()
    assert_usage_error(run_submission(pytester, "tinysgd"), str(path), "no such file")


# ---- call conventions ---------------------------------------------------------------------------------


def module_with(**functions: Any) -> types.ModuleType:
    module = types.ModuleType("fake_submission")
    for name, function in functions.items():
        setattr(module, name, function)
    return module


def fake_submission(module: types.ModuleType) -> Submission:
    return Submission(SubmissionSource("fake", "pytorch", Path("fake/pytorch.py")), module)


def variant_aware_batch_size(workload_name: str) -> int:
    if workload_name != "mnist":
        raise ValueError(f"no batch size for {workload_name}")
    return 64


def test_get_batch_size_retries_with_the_base_workload_name_for_a_variant() -> None:
    submission = fake_submission(module_with(get_batch_size=variant_aware_batch_size))
    assert submission.get_batch_size("mnist_tanh", "mnist") == 64


def test_get_batch_size_reraises_when_the_base_workload_is_the_one_asked() -> None:
    submission = fake_submission(module_with(get_batch_size=variant_aware_batch_size))
    with pytest.raises(ValueError, match="no batch size for cifar"):
        submission.get_batch_size("cifar", "cifar")


def test_get_batch_size_retries_only_on_value_error() -> None:
    def broken(workload_name: str) -> int:
        raise KeyError(workload_name)

    with pytest.raises(KeyError):
        fake_submission(module_with(get_batch_size=broken)).get_batch_size("mnist_tanh", "mnist")


def test_train_state_is_passed_only_when_update_params_names_it() -> None:
    calls: list[dict[str, Any]] = []

    def without_train_state(workload: Any, global_step: int) -> str:
        calls.append({"workload": workload, "global_step": global_step})
        return "without"

    def with_train_state(workload: Any, global_step: int, train_state: Any = None) -> str:
        calls.append({"workload": workload, "global_step": global_step, "train_state": train_state})
        return "with"

    state = types.MappingProxyType({"training_complete": False})
    built: list[int] = []

    def train_state() -> types.MappingProxyType:
        built.append(1)
        return state

    def update(submission: Any, global_step: int) -> str:  # as Trainer.step calls it
        extra = submission.train_state_argument(train_state)
        return submission.module.update_params(workload="w", global_step=global_step, **extra)

    plain = fake_submission(module_with(update_params=without_train_state))
    assert update(plain, 3) == "without"
    assert built == []  # not even built: the mapping is made only for a submission that takes it
    aware = fake_submission(module_with(update_params=with_train_state))
    assert update(aware, 4) == "with"
    assert calls == [
        {"workload": "w", "global_step": 3},
        {"workload": "w", "global_step": 4, "train_state": state},
    ]


TRAIN_STATE_RECORDER = (
    TINY_SUBMISSION.replace("def update_params(", "def _plain_update_params(")
    + """

SEEN = []


def update_params(
    workload,
    current_param_container,
    current_params_types,
    model_state,
    hyperparameters,
    batch,
    loss_type,
    optimizer_state,
    eval_results,
    global_step,
    rng,
    train_state=None,
):
    SEEN.append(train_state)
    return _plain_update_params(
        workload,
        current_param_container,
        current_params_types,
        model_state,
        hyperparameters,
        batch,
        loss_type,
        optimizer_state,
        eval_results,
        global_step,
        rng,
    )
"""
)


def test_the_harness_passes_a_read_only_train_state_with_algoperfs_keys(tmp_path: Path) -> None:
    submission = load_tiny_submission(tmp_path, TRAIN_STATE_RECORDER)
    result = RunResult("train-state", "tinysgd", "pytorch", "tiny", seed=0)
    run_benchmark(
        TinyWorkload(),
        submission,
        get_adapter("pytorch"),
        RunSettings(seed=0, hyperparameters=tiny_hyperparameters()),
        result,
    )
    seen: list[Mapping[str, Any]] = submission.module.SEEN
    assert len(seen) == result.global_step
    for train_state in seen:
        assert set(train_state) == TRAIN_STATE_KEYS
        with pytest.raises(TypeError):
            train_state["training_complete"] = True  # type: ignore[index]
    first, last = seen[0], seen[-1]
    assert first["accumulated_submission_time"] == 0.0
    assert first["is_time_remaining"] is True
    assert not first["validation_goal_reached"]
    times = [state["accumulated_submission_time"] for state in seen]
    assert times == sorted(times) and last["accumulated_submission_time"] > 0
    assert last["accumulated_eval_time"] > 0  # tiny evaluates after every step
    assert last["last_eval_time"] <= last["last_step_end_time"]
