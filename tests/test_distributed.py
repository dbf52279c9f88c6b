"""One run on several ranks: PyTorch DDP under torchrun (issue 7), and the framework-neutral pieces it rests
on (ranks from torchrun's variables, each rank's share of a batch, the batch-size rule)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
from tiny import QUIET_PLUGINS, assert_usage_error, run_tiny, write_tiny_project

from pytest_algoperf.array_workload import shuffled_batches
from pytest_algoperf.distributed import (
    SINGLE_PROCESS,
    BatchSizeError,
    ProcessGroup,
    check_batch_size,
    process_group,
    torchrun_environment,
)

# mnist with a budget the ranks cannot miss while they share one busy CPU core in the test suite (the
# calibrated 10 s is for quiet cores), and a copy whose eval hands back per-example rows, which the
# ranks gather rather than sum (299 train rows: unequal shares), with targets met at the first eval.
ROOMY_MNIST_CONFTEST = """\
import numpy as np
from algoperf_workloads.mnist.pytorch import MnistWorkload
from pytest_algoperf.registry import WorkloadEntry
from pytest_algoperf.spec import ForwardPassMode


class RoomyMnist(MnistWorkload):
    max_allowed_runtime_sec = 120.0


class RowsMnist(RoomyMnist):
    num_eval_train_examples = 299
    validation_target_value = 0.0
    test_target_value = 0.0

    def eval_batch(self, params, model_state, batch):
        logits, _ = self.model_fn(params, batch, model_state, ForwardPassMode.EVAL, None, False)
        targets = batch["targets"].numpy()
        return {"logits": logits.numpy(), "targets": targets, "correct": logits.argmax(-1).numpy() == targets}

    def summarize_eval(self, totals, num_examples):
        logits, targets, correct = totals["logits"], totals["targets"], totals["correct"]
        assert len(logits) == len(targets) == len(correct) == num_examples and correct.dtype == bool
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return {
            "loss": float(-log_probs[np.arange(num_examples), targets].mean()),
            "accuracy": float(correct.mean()),
            "first_target": float(targets[0]),  # rows come back in the serial order
        }


def pytest_algoperf_add_workloads(registry):
    registry.entries["mnist"] = WorkloadEntry("mnist", {"pytorch": RoomyMnist})
    registry.entries["mnist_rows"] = WorkloadEntry("mnist_rows", {"pytorch": RowsMnist}, base_name="mnist")
"""
# torchrun through this interpreter (venv-independent); --standalone picks a free rendezvous port.
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
# Two gloo ranks exercise the collectives, global_mean_loss and a scaled model under DDP directly; rank 0
# prints JSON.
COLLECTIVES_SCRIPT = """\
import json, os
import numpy as np, torch
from pytest_algoperf.distributed import torchrun_environment
from pytest_algoperf.frameworks.parameter_scale import scale_parameters
from pytest_algoperf.frameworks.pytorch_ddp import global_mean_loss, start_process_group, stop_process_group
from pytest_algoperf.frameworks.pytorch_ddp import wrap_model

group = start_process_group(torchrun_environment(), "cpu")
torch.manual_seed(0)
model = wrap_model(torch.nn.Linear(3, 1), group, "cpu")
inputs = torch.arange(24.0).reshape(8, 3) / 10
mask = torch.tensor([1.0, 1, 1, 0, 1, 0, 0, 0])  # rank 0 holds 3 valid examples, rank 1 one
part = group.shard(8)
per_example = (model(inputs[part]).squeeze(1) - 1.0) ** 2 * mask[part]
global_mean_loss({"summed": per_example.sum(), "n_valid_examples": mask[part].sum()}).backward()
rows = np.arange(3 * group.rank, 3 * group.rank + 3 - group.rank)  # 3 rows on rank 0, 2 on rank 1


class Linear:  # a workload whose parameters are stored divided by 4 (frameworks.parameter_scale)
    def init_model_fn(self, rng):
        torch.manual_seed(0)
        return torch.nn.Linear(3, 1), None

    def model_fn(self, model, x):
        return model(x)


scaled = scale_parameters(Linear(), 4.0, "pytorch")
theta = wrap_model(scaled.init_model_fn(None)[0], group, "cpu")
per_example = (scaled.model_fn(theta, inputs[part]).squeeze(1) - 1.0) ** 2 * mask[part]
global_mean_loss({"summed": per_example.sum(), "n_valid_examples": mask[part].sum()}).backward()
out = {
    "grad": model.module.weight.grad.tolist(),
    "scaled_grad": theta.module.weight.grad.tolist(),
    "max": group.max(float(group.rank)),
    "sums": group.sum_totals({"a": 1.0 + group.rank, "b": 10.0}),
    "rows": group.gather_rows(rows).tolist(),
    "flags": group.gather_rows(rows % 2 == 0).tolist(),
}
stop_process_group()
if group.is_main:
    print(json.dumps(out))
"""
MNIST_ARGS = (
    *QUIET_PLUGINS,
    "--algoperf-submission=adamw",
    "--algoperf-workloads=mnist,mnist_rows",
    "--algoperf-threads=1",
    "--algoperf-eval-every-steps=50",
)


def two_ranks(rank: int) -> ProcessGroup:
    return ProcessGroup(rank=rank, world_size=2)


def test_torchrun_variables_give_the_ranks_and_their_absence_gives_none() -> None:
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    group = torchrun_environment(env)
    assert group is not None
    assert (group.rank, group.world_size, group.local_rank, group.local_world_size) == (3, 4, 1, 2)
    assert group.is_distributed and not group.is_main
    assert torchrun_environment({"RANK": "0", "WORLD_SIZE": "2"}) is None
    assert process_group() is SINGLE_PROCESS  # nothing in this process started a group


@pytest.mark.parametrize(("size", "world_size"), [(32, 2), (33, 2), (10, 3), (7, 4)])
def test_the_ranks_shares_are_contiguous_cover_everything_and_differ_by_at_most_one(
    size: int, world_size: int
) -> None:
    parts = [ProcessGroup(rank=r, world_size=world_size).shard(size) for r in range(world_size)]
    assert [i for part in parts for i in range(size)[part]] == list(range(size))
    lengths = [part.stop - part.start for part in parts]
    assert max(lengths) - min(lengths) <= 1


def test_under_ddp_each_rank_gets_its_slice_of_the_same_global_batches() -> None:
    arrays = {"inputs": np.arange(100.0).reshape(50, 2), "targets": np.arange(50)}
    serial = shuffled_batches(arrays, 10, seed=5, group=SINGLE_PROCESS)
    ranks = [shuffled_batches(arrays, 10, seed=5, group=two_ranks(r)) for r in range(2)]
    for _ in range(12):  # past the end of the first epoch
        expected = next(serial)
        first, second = next(ranks[0]), next(ranks[1])
        for key in arrays:
            assert len(first[key]) == len(second[key]) == 5
            np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), expected[key])


def test_two_gloo_ranks_reduce_and_gather_and_their_loss_gradient_is_the_global_batchs(tmp_path: Any) -> None:
    script = tmp_path / "collectives.py"
    script.write_text(COLLECTIVES_SCRIPT)
    done = subprocess.run([*TORCHRUN, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["max"] == 1.0
    assert out["sums"] == {"a": 3.0, "b": 20.0}
    assert out["rows"] == [0, 1, 2, 3, 4]  # rank 0's rows, then rank 1's
    assert out["flags"] == [True, False, True, False, True]
    # The same loss on one process: the mean over the 4 valid examples of the whole batch.
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    inputs = torch.arange(24.0).reshape(8, 3) / 10
    mask = torch.tensor([1.0, 1, 1, 0, 1, 0, 0, 0])
    (((model(inputs).squeeze(1) - 1.0) ** 2 * mask).sum() / mask.sum()).backward()
    np.testing.assert_allclose(out["grad"], model.weight.grad.tolist(), rtol=1e-6)
    # Parameters stored at a quarter, multiplied back in the forward pass under DDP's wrapper: the same loss,
    # and the stored parameter's gradient, averaged by DDP's hooks, is 4 times the weight's.
    np.testing.assert_allclose(out["scaled_grad"], (4 * model.weight.grad).tolist(), rtol=1e-6)


def test_a_batch_size_that_does_not_divide_names_submission_workload_size_and_devices() -> None:
    check_batch_size("adamw", "mnist", 32, 2, "JAX devices")
    with pytest.raises(BatchSizeError) as error:
        check_batch_size("adamw", "mnist", 33, 2, "JAX devices")
    message = str(error.value)
    for fragment in ("'adamw'", "get_batch_size('mnist')", "33", "2 JAX devices"):
        assert fragment in message


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--algoperf-framework=jax",), "under torchrun only --algoperf-framework=pytorch"),
        (("-n", "2"), "torchrun and pytest-xdist (-n) cannot be combined"),
    ],
)
def test_torchrun_refuses_jax_and_xdist_before_anything_starts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...], fragment: str
) -> None:
    pytest.importorskip("xdist")
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    write_tiny_project(pytester)
    assert_usage_error(run_tiny(pytester, *extra), fragment)


def read_runs(path: Any) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["runs"]


def test_two_gloo_ranks_train_mnist_to_its_target_as_one_serial_process_would(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(ROOMY_MNIST_CONFTEST)
    command = [*TORCHRUN, "-m", "pytest", *MNIST_ARGS, "--algoperf-output=ddp"]
    done = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert output.count("algoperf summary") == 1, output  # only rank 0 reports
    ddp_runs = read_runs(pytester.path / "ddp" / "results.json")
    assert [run["workload"] for run in ddp_runs] == ["mnist", "mnist_rows"]
    assert all(run["reached"] for run in ddp_runs)
    assert [(r["world_size"], r["num_devices"], r["batch_size"]) for r in ddp_runs] == [(2, 2, 64)] * 2

    serial = pytester.runpytest(*MNIST_ARGS, "--algoperf-output=serial")
    assert serial.ret == pytest.ExitCode.OK
    serial_runs = read_runs(pytester.path / "serial" / "results.json")
    assert [(r["world_size"], r["num_devices"]) for r in serial_runs] == [(1, 1)] * 2
    # The same global batches, loss and gradient, and evals over whole splits: the metrics agree up to
    # float summation order.
    for ddp, alone in zip(ddp_runs, serial_runs, strict=True):
        for ddp_eval, serial_eval in zip(ddp["evals"][:5], alone["evals"][:5], strict=True):
            assert ddp_eval["global_step"] == serial_eval["global_step"]
            assert ddp_eval["metrics"] == pytest.approx(serial_eval["metrics"], rel=1e-4)
