"""What the built-in baselines share: the batch size per workload, the PyTorch and JAX training steps, and
the learning-rate schedules. Each baseline module then says only how its optimizer is built, as AlgoPerf's
reference submissions would if they did not repeat themselves. The leading underscore keeps this folder out
of the list of built-in submissions."""

from __future__ import annotations

import json
from pathlib import Path

BATCH_SIZES: dict[str, int] = json.loads(Path(__file__).with_name("batch_sizes.json").read_text())


def batch_size(submission: str, workload_name: str) -> int:
    """The baselines' batch size for a workload: AlgoPerf's baselines share one per workload too."""
    if workload_name not in BATCH_SIZES:
        raise ValueError(f"{submission} has no batch size for workload {workload_name!r}")
    return BATCH_SIZES[workload_name]
