"""On a GPU, the benchmark clock waits for the device: work a step has only queued is still timed.

Both frameworks dispatch GPU work asynchronously, so a clock that read the host's time without
synchronising would see a step end as soon as its kernels were queued. These tests queue a known amount of
GPU work, end a step on ``BenchmarkClock`` with the framework adapter's ``synchronize``, and compare the
submission time with the GPU time that the work took. They are skipped on machines without a GPU.
"""

from __future__ import annotations

import time

import pytest

from pytest_algoperf.clock import BenchmarkClock


def _torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _jax_gpu() -> bool:
    import jax

    return jax.default_backend() == "gpu"


@pytest.mark.skipif(not _torch_cuda(), reason="needs a CUDA GPU visible to PyTorch")
def test_pytorch_clock_includes_queued_cuda_work() -> None:
    import torch

    from pytest_algoperf.frameworks.pytorch_adapter import ADAPTER

    ADAPTER.activate("cuda")
    torch.cuda._sleep(1000)  # warm the context so the measured step is the sleep kernel alone
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    clock = BenchmarkClock(budget_sec=60.0, eval_period_sec=60.0, synchronize=ADAPTER.synchronize)
    clock.start()
    dispatch_start = time.perf_counter()
    start.record()
    torch.cuda._sleep(500_000_000)  # a kernel that spins for ~0.2-0.5 s, depending on the GPU's clock
    end.record()
    dispatch_time = time.perf_counter() - dispatch_start
    clock.end_step()
    gpu_time = start.elapsed_time(end) / 1000.0  # the events are complete once the clock synchronised
    assert dispatch_time < gpu_time / 2, "the kernel ran synchronously, so this test would show nothing"
    assert clock.submission_time >= 0.95 * gpu_time


@pytest.mark.skipif(not _jax_gpu(), reason="needs a GPU visible to JAX")
def test_jax_clock_includes_queued_gpu_work() -> None:
    import jax
    import jax.numpy as jnp

    from pytest_algoperf.frameworks.jax_adapter import ADAPTER

    ADAPTER.activate("cuda")

    @jax.jit
    def busy(x: jax.Array) -> jax.Array:
        return jax.lax.fori_loop(0, 200, lambda _, y: jnp.tanh(y @ y), x)

    x = jnp.full((4096, 4096), 1e-3, jnp.float32)
    jax.block_until_ready(busy(x))  # compile outside the measurement
    blocked_start = time.perf_counter()
    jax.block_until_ready(busy(x))
    compute_time = time.perf_counter() - blocked_start

    clock = BenchmarkClock(budget_sec=60.0, eval_period_sec=60.0, synchronize=ADAPTER.synchronize)
    clock.start()
    dispatch_start = time.perf_counter()
    outputs = busy(x)
    dispatch_time = time.perf_counter() - dispatch_start
    clock.end_step(outputs)
    assert dispatch_time < compute_time / 2, "the call blocked, so this test would show nothing"
    assert clock.submission_time >= 0.9 * compute_time
