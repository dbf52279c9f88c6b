"""How many CPU threads a framework may use, so parallel benchmark processes do not slow each other.

Under pytest-xdist each worker gets its share of the cores (``cpu_count // workers``, at least one);
``--algoperf-threads`` overrides that. PyTorch is limited with ``torch.set_num_threads`` when a run starts.
XLA reads its flags once, when JAX's CPU backend starts, so its limit is set in ``XLA_FLAGS`` at configure
time; XLA can only be made single-threaded this way, so a share above one thread leaves XLA's own pool.
"""

from __future__ import annotations

import os

XLA_SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def choose_threads(requested: int | None, workers: int, cpu_count: int | None = None) -> int:
    if requested is not None:
        return requested
    return max(1, (cpu_count or os.cpu_count() or 1) // max(workers, 1))


def limit_xla_threads(threads: int) -> None:
    """Make XLA single-threaded when one thread is the share; must run before JAX's backend starts."""
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_SINGLE_THREAD_FLAGS}".strip()
