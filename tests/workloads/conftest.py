"""Fixtures of the workload test modules; their shared functions are in helpers.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for a module's tests, restored afterwards: their tensors are small, and a second
    thread only adds synchronisation, which costs several times the work itself on a busy machine (two
    spinning OpenMP threads ran the small U-Net and DLRM ~10x slower on a loaded 2-core machine; the
    benchmark sets its own thread count per run). A module asks for it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
