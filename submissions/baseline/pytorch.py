"""The baseline that set each workload's targets, in PyTorch (``target_setter`` says how it is chosen)."""

from __future__ import annotations

import functools

from algoperf_submissions.baseline.target_setter import delegating_functions
from pytest_algoperf.submission_helpers import batch_size, data_selection

__all__ = ["data_selection", "get_batch_size", "init_optimizer_state", "update_params"]

get_batch_size = functools.partial(batch_size, "baseline")  # every baseline trains with these sizes
init_optimizer_state, update_params = delegating_functions("pytorch")
