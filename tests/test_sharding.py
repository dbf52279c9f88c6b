"""One JAX run on several devices (issue 7): batches sharded on the batch axis and parameters replicated with
NamedSharding, on two CPU devices made by ``XLA_FLAGS=--xla_force_host_platform_device_count=2``. XLA reads
that flag when its backend starts, so every check runs in a fresh subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tiny import QUIET_PLUGINS

from pytest_algoperf.submission import BUILTIN_SUBMISSIONS_DIR

pytest.importorskip("jax")

TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
# mnist with a budget that JAX compiling on a busy shared core cannot exhaust (calibrated: 10 s, quiet core).
ROOMY_MNIST_CONFTEST = """\
from algoperf_workloads.mnist.jax import MnistWorkload
from pytest_algoperf.registry import WorkloadEntry


class RoomyMnist(MnistWorkload):
    max_allowed_runtime_sec = 120.0


def pytest_algoperf_add_workloads(registry):
    registry.entries["mnist"] = WorkloadEntry("mnist", {"jax": RoomyMnist})
"""
# AdamW whose global batch (33) cannot be split over two devices.
ODD_BATCH_SUBMISSION = """\
from algoperf_submissions.adamw.jax import data_selection, init_optimizer_state, update_params  # noqa: F401


def get_batch_size(workload_name):
    return 33
"""
# The first AdamW step on the same mnist batch, on one device and sharded over two; prints JSON.
FIRST_STEP_SCRIPT = """\
import collections, json
import jax, numpy as np
from pytest_algoperf.submission_helpers.jax import _train_step
from algoperf_submissions.adamw import jax as adamw
from algoperf_workloads.mnist.jax import MnistWorkload
from pytest_algoperf.frameworks.jax_adapter import ADAPTER
from pytest_algoperf.submission import BUILTIN_SUBMISSIONS_DIR

point = json.loads((BUILTIN_SUBMISSIONS_DIR / "adamw" / "tuning_search_space.json").read_text())[0]
hyperparameters = collections.namedtuple("Hyperparameters", sorted(point))(**point)
workload = MnistWorkload()

def first_step(sharded):
    ADAPTER.activate("cpu")
    if not sharded:
        ADAPTER.mesh = None
    rng = jax.random.PRNGKey(0)
    params, model_state = ADAPTER.prepare_model(*workload.init_model_fn(rng))
    batch = next(workload.build_input_queue(rng, "train", None, 64))
    optax_state, update_fn = adamw.init_optimizer_state(workload, params, model_state, hyperparameters, rng)
    _, new_params, _, loss = _train_step(
        workload, update_fn, model_state, optax_state, params, batch, rng, 0.0, None
    )
    return {
        "devices": ADAPTER.data_parallel_size(),
        "batch_shards": len(batch["inputs"].addressable_shards),
        "batch_shard_rows": batch["inputs"].addressable_shards[0].data.shape[0],
        "param_devices": len(jax.tree.leaves(new_params)[0].sharding.device_set),
        "loss": float(loss),
        "params": [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(new_params)],
    }

print(json.dumps({"unsharded": first_step(False), "sharded": first_step(True)}))
"""


def two_device_env() -> dict[str, str]:
    return {**os.environ, **TWO_DEVICES}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One pytest session on two devices: adamw on mnist, and the odd-batch copy that must be refused."""
    folder = tmp_path_factory.mktemp("sharded")
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(ROOMY_MNIST_CONFTEST)
    (folder / "adamw_odd").mkdir()
    (folder / "adamw_odd" / "jax.py").write_text(ODD_BATCH_SUBMISSION)
    shutil.copy(BUILTIN_SUBMISSIONS_DIR / "adamw" / "tuning_search_space.json", folder / "adamw_odd")
    command = [sys.executable, "-m", "pytest", *QUIET_PLUGINS, "--algoperf-framework=jax"]
    command += ["--algoperf-submission=adamw", "--algoperf-submission=adamw_odd"]
    command += ["--algoperf-workloads=mnist", "--algoperf-threads=1", "--algoperf-output=out"]
    done = subprocess.run(
        command, cwd=folder, env=two_device_env(), capture_output=True, text=True, timeout=600
    )
    return done, folder


def runs(folder: Path) -> dict[str, dict[str, Any]]:
    return {run["test_id"]: run for run in json.loads((folder / "out" / "results.json").read_text())["runs"]}


def test_mnist_reaches_its_target_with_batches_sharded_over_two_devices(
    session: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, folder = session
    assert "1 failed, 1 passed" in done.stdout, done.stdout + done.stderr  # the odd batch fails
    run = runs(folder)["adamw-jax-mnist"]
    assert run["reached"] is True and run["stop_reason"] == "targets reached"
    assert (run["num_devices"], run["world_size"], run["batch_size"]) == (2, 1, 64)


def test_a_batch_size_that_does_not_divide_over_the_devices_fails_its_run_with_a_clear_error(
    session: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, folder = session
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    expected = (
        "submission 'adamw_odd': get_batch_size('mnist') returned 33, which is not divisible by the 2 JAX "
        "devices each global batch is split over; return a multiple of 2"
    )
    assert expected in done.stdout
    assert "Traceback" not in done.stdout
    run = runs(folder)["adamw_odd-jax-mnist"]
    assert run["stop_reason"] == "error" and expected in run["error"]


def test_a_sharded_first_step_gives_the_unsharded_loss_and_parameters() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FIRST_STEP_SCRIPT],
        env=two_device_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    unsharded, sharded = steps["unsharded"], steps["sharded"]
    assert (unsharded["devices"], unsharded["batch_shards"], unsharded["param_devices"]) == (1, 1, 1)
    assert (sharded["devices"], sharded["batch_shards"], sharded["batch_shard_rows"]) == (2, 2, 32)
    assert sharded["param_devices"] == 2  # replicated
    assert abs(sharded["loss"] - unsharded["loss"]) <= 1e-5
    for a, b in zip(sharded["params"], unsharded["params"], strict=True):
        assert max(abs(x - y) for x, y in zip(_flat(a), _flat(b), strict=True)) <= 1e-5


def _flat(value: Any) -> list[float]:
    return [x for item in value for x in _flat(item)] if isinstance(value, list) else [value]
