"""A tiny PyTorch workload and submission that exercise pytest-algoperf end to end in well under a second.

``TinyWorkload`` is logistic regression (one ``nn.Linear``) on a fixed synthetic two-class dataset: two
Gaussian blobs in 8 dimensions. Its initial weights deliberately point the wrong way (accuracy near 0), so
the number of steps to the target grows with the inverse of the learning rate: plain SGD at the tiny
submission's learning rate of 0.2 reaches 90% validation accuracy in about 15 steps, and 100x smaller takes
over a thousand. Tests tune the class attributes (targets, budget, eval period, ``eval_sleep_sec``) in a
subclass, which ``conftest_source`` writes into a pytester folder.

This is a helper module, not a test module; tests import it as ``tiny`` (the tests folder is on sys.path).
"""

from __future__ import annotations

import collections
import json
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pytest_algoperf.frameworks.numpy_rng import to_seed
from pytest_algoperf.spec import ForwardPassMode, LossType, ParameterType, Workload
from pytest_algoperf.submission import Submission, SubmissionSource, load_submission

TESTS_DIR = Path(__file__).resolve().parent
NUM_FEATURES = 8
SPLIT_SIZES = {"train": 400, "validation": 100, "test": 100}
DATA_SEED = 0
BLOB_DISTANCE = 1.5  # each class mean sits this far from the origin, along one fixed direction
WRONG_INIT_SCALE = 3.0  # initial weights point the wrong way with this norm
TINY_LEARNING_RATE = 0.2

Split = tuple[np.ndarray, np.ndarray]


def warm_up_torch() -> None:
    """Take one optimizer step, so PyTorch's ~800 lazy imports (torch._dynamo ...) happen now.

    pytester's in-process sessions drop the modules first imported inside them; importing torch._dynamo
    again in a later session then fails (a TORCH_LIBRARY namespace registered twice). Imported before
    any session starts, they are kept.
    """
    model = nn.Linear(2, 2)
    for optimizer in (torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.AdamW(model.parameters())):
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()


# PyTorch's intra-op thread pool stalls small ops for milliseconds whenever another process holds one of a
# small machine's cores (mnist's steps went from 1 ms to 70 ms on a busy 2-core machine); the test suite's
# runs are tiny, and one thread keeps them fast and their timings steady.
torch.set_num_threads(1)
warm_up_torch()


def make_tiny_data(seed: int = DATA_SEED) -> tuple[np.ndarray, dict[str, Split]]:
    """The blobs' direction and the train / validation / test splits: (float32 inputs, int64 labels)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=NUM_FEATURES)
    direction /= np.linalg.norm(direction)
    total = sum(SPLIT_SIZES.values())
    labels = rng.integers(0, 2, total)
    inputs = rng.normal(size=(total, NUM_FEATURES)) + np.outer(2 * labels - 1, direction) * BLOB_DISTANCE
    splits, start = {}, 0
    for name, size in SPLIT_SIZES.items():
        splits[name] = (inputs[start : start + size].astype(np.float32), labels[start : start + size])
        start += size
    return direction.astype(np.float32), splits


class TinyWorkload(Workload):
    """Logistic regression on two Gaussian blobs; a test tunes it by overriding the class attributes."""

    name = "tiny"
    base_name = "tiny"

    validation_target_value = 0.9
    test_target_value = 0.85
    max_allowed_runtime_sec = 5.0
    eval_period_time_sec = 0.0  # 0: every step is an eval point
    step_hint = 200
    eval_sleep_sec = 0.0  # extra seconds each eval_model call sleeps, to show eval time is excluded

    target_metric_name = "accuracy"
    loss_type = LossType.SOFTMAX_CROSS_ENTROPY
    num_train_examples = SPLIT_SIZES["train"]
    num_eval_train_examples = 100
    num_validation_examples = SPLIT_SIZES["validation"]
    num_test_examples = SPLIT_SIZES["test"]
    eval_batch_size = 1000

    def __init__(self, data_dir: str | None = None, device: str = "cpu") -> None:
        super().__init__(data_dir, device)
        self.direction, self.splits = make_tiny_data()
        self._param_shapes = {"weight": (2, NUM_FEATURES), "bias": (2,)}

    def build_input_queue(
        self, data_rng: Any, split: str, data_dir: str | None, global_batch_size: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        inputs, labels = (torch.from_numpy(array) for array in self.splits[split])
        shuffler = np.random.default_rng(to_seed(np.asarray(data_rng)))
        while True:
            order = torch.from_numpy(shuffler.permutation(len(labels)))
            for start in range(0, len(labels) - global_batch_size + 1, global_batch_size):
                index = order[start : start + global_batch_size]
                yield {"inputs": inputs[index], "targets": labels[index]}

    def init_model_fn(self, rng: Any) -> tuple[nn.Module, None]:
        torch.manual_seed(to_seed(np.asarray(rng)))
        model = nn.Linear(NUM_FEATURES, 2)
        wrong = torch.from_numpy(np.stack([self.direction, -self.direction])) * WRONG_INIT_SCALE
        with torch.no_grad():
            model.weight.copy_(wrong + 0.1 * torch.randn_like(wrong))
            model.bias.zero_()
        return model, None

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return self._param_shapes

    @property
    def model_params_types(self) -> dict[str, ParameterType]:
        return {"weight": ParameterType.WEIGHT, "bias": ParameterType.BIAS}

    def model_fn(
        self,
        params: nn.Module,
        augmented_and_preprocessed_input_batch: dict[str, Any],
        model_state: Any,
        mode: ForwardPassMode,
        rng: Any,
        update_batch_norm: bool,
        dropout_rate: float | None = None,
    ) -> tuple[torch.Tensor, Any]:
        with torch.set_grad_enabled(mode == ForwardPassMode.TRAIN):
            return params(augmented_and_preprocessed_input_batch["inputs"]), model_state

    def loss_fn(
        self,
        label_batch: torch.Tensor,
        logits_batch: torch.Tensor,
        mask_batch: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> dict[str, Any]:
        per_example = F.cross_entropy(
            logits_batch, label_batch, reduction="none", label_smoothing=label_smoothing
        )
        if mask_batch is not None:
            per_example = per_example * mask_batch
        n_valid = len(label_batch) if mask_batch is None else mask_batch.sum()
        return {"summed": per_example.sum(), "n_valid_examples": n_valid, "per_example": per_example}

    def eval_model(
        self,
        global_batch_size: int,
        params: nn.Module,
        model_state: Any,
        rng: Any,
        data_dir: str | None,
        global_step: int,
    ) -> dict[str, float]:
        if self.eval_sleep_sec:
            time.sleep(self.eval_sleep_sec)
        metrics = {}
        limits = {"train": self.num_eval_train_examples, "validation": None, "test": None}
        for split, limit in limits.items():
            inputs, labels = (torch.from_numpy(array[:limit]) for array in self.splits[split])
            batch = {"inputs": inputs}
            logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
            metrics[f"{split}/loss"] = float(F.cross_entropy(logits, labels))
            metrics[f"{split}/accuracy"] = float((logits.argmax(dim=-1) == labels).float().mean())
        return metrics


# ---- the tiny submission ------------------------------------------------------------------------------

TINY_SUBMISSION = '''\
"""tinysgd: plain SGD for the tiny workload. Optional hyperparameters switch on behaviours tests need:
complete_at_step (raise TrainingCompleteError), raise_at_step (raise RuntimeError) and nan_from_step
(multiply the loss by NaN from that step on)."""

import math

import torch

from pytest_algoperf.spec import ForwardPassMode, TrainingCompleteError


def get_batch_size(workload_name):
    return 32


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"optimizer": torch.optim.SGD(model_params.parameters(), lr=hyperparameters.learning_rate)}


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
):
    if global_step == getattr(hyperparameters, "complete_at_step", -1):
        raise TrainingCompleteError
    if global_step == getattr(hyperparameters, "raise_at_step", -1):
        raise RuntimeError(f"tinysgd fails on purpose at step {global_step}")
    model = current_param_container
    logits, _ = workload.model_fn(model, batch, model_state, ForwardPassMode.TRAIN, rng, True)
    losses = workload.loss_fn(batch["targets"], logits)
    loss = losses["summed"] / losses["n_valid_examples"]
    if global_step >= getattr(hyperparameters, "nan_from_step", math.inf):
        loss = loss * float("nan")
    optimizer = optimizer_state["optimizer"]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return optimizer_state, model, model_state


def data_selection(
    workload,
    input_queue,
    optimizer_state,
    current_param_container,
    model_state,
    hyperparameters,
    global_step,
    rng,
):
    return next(input_queue)
'''


HOLD = '''
import time as _time

STEP_SEC = {seconds}


def update_params(**kwargs):
    """tinysgd's step, then held until STEP_SEC after it began: a known step time."""
    deadline = _time.perf_counter() + STEP_SEC
    outputs = _tiny_update_params(**kwargs)
    {hold}
    return outputs
'''
SPIN = "while _time.perf_counter() < deadline:\n        pass"  # busy, like real work: slowed by contention
SLEEP = "_time.sleep(max(0.0, deadline - _time.perf_counter()))"  # idle: a waking sleeper is scheduled first


def held_submission(step_sec: float, busy: bool = True) -> str:
    """tinysgd whose every step lasts ``step_sec``, spinning (``busy``) or sleeping the rest of it."""
    source = TINY_SUBMISSION.replace("def update_params(", "def _tiny_update_params(", 1)
    return source + HOLD.format(seconds=step_sec, hold=SPIN if busy else SLEEP)


def search_space_text(**hyperparameters: float) -> str:
    """A tuning_search_space.json in list form: one fixed point, the learning rate 0.2 unless given."""
    return json.dumps([{"learning_rate": TINY_LEARNING_RATE, **hyperparameters}])


def tiny_hyperparameters(**hyperparameters: float) -> Any:
    """The namedtuple a submission receives for the point ``search_space_text(**hyperparameters)``."""
    point = {"learning_rate": TINY_LEARNING_RATE, **hyperparameters}
    return collections.namedtuple("Hyperparameters", sorted(point))(**point)


def write_submission(
    folder: Path, name: str = "tinysgd", source: str = TINY_SUBMISSION, **hyperparameters: float
) -> Path:
    """Write ``<folder>/<name>/pytorch.py`` and its tuning_search_space.json; return the .py path."""
    directory = folder / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tuning_search_space.json").write_text(search_space_text(**hyperparameters))
    path = directory / "pytorch.py"
    path.write_text(source)
    return path


def load_tiny_submission(folder: Path, source: str = TINY_SUBMISSION) -> Submission:
    """Import a tiny submission from a file under ``folder`` as the harness does, for in-process runs."""
    path = write_submission(folder, source=source)
    return load_submission(SubmissionSource(path.parent.name, "pytorch", path))


# ---- pytester projects --------------------------------------------------------------------------------


def conftest_source(**workload_attributes: Any) -> str:
    """A conftest registering ``tiny``: TinyWorkload with the given class attributes overridden."""
    body = [f"    {name} = {value!r}" for name, value in workload_attributes.items()] or ["    pass"]
    return "\n".join(
        [
            "import sys",
            "",
            f"sys.path.insert(0, {str(TESTS_DIR)!r})",
            "from tiny import TinyWorkload  # noqa: E402",
            "",
            "",
            "class Workload(TinyWorkload):",
            *body,
            "",
            "",
            "def pytest_algoperf_add_workloads(registry):",
            '    registry.register("tiny", pytorch=Workload)',
            "",
        ]
    )


def write_tiny_project(
    pytester: pytest.Pytester,
    workload: Mapping[str, Any] | None = None,
    ini: str = "",
    **hyperparameters: float,
) -> None:
    """A pytester folder with a pytest.ini (pinning rootdir), the tiny conftest and the tinysgd submission."""
    pytester.makeini("[pytest]\n" + ini)
    pytester.makeconftest(conftest_source(**(workload or {})))
    write_submission(pytester.path, **hyperparameters)


# Inner sessions skip the cache and hypothesis plugins: hypothesis would be imported afresh in each one.
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
# One CPU thread: see torch.set_num_threads above; the harness sets the thread count at each run's start.
ONE_THREAD = "--algoperf-threads=1"
BASE_ARGS = (*QUIET_PLUGINS, ONE_THREAD, "--algoperf-output=out")


def run_tiny(pytester: pytest.Pytester, *args: str, submission: str = "tinysgd") -> pytest.RunResult:
    """Benchmark ``submission`` (default tinysgd) on the tiny workload in-process; results go to ``out``."""
    return pytester.runpytest(
        *BASE_ARGS, f"--algoperf-submission={submission}", "--algoperf-workloads=tiny", *args
    )


def read_results(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "out" / "results.json").read_text())


def only_run(pytester: pytest.Pytester) -> dict[str, Any]:
    """The one run of results.json."""
    runs = read_results(pytester)["runs"]
    assert len(runs) == 1, runs
    return runs[0]


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def assert_usage_error(result: pytest.RunResult, *fragments: str) -> str:
    """Exit code 4 (usage error), one ``ERROR:`` line holding every fragment, and no traceback anywhere."""
    output = [*result.stdout.lines, *result.stderr.lines]
    assert result.ret == pytest.ExitCode.USAGE_ERROR, "\n".join(output)
    errors = [line for line in output if line.startswith("ERROR:")]
    assert len(errors) == 1, "\n".join(output)
    for fragment in fragments:
        assert fragment in errors[0]
    assert not any("Traceback" in line or "INTERNALERROR" in line for line in output), "\n".join(output)
    return errors[0]
