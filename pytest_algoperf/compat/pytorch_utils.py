"""AlgoPerf's ``pytorch_utils`` for submissions: ``pytorch_setup()`` and ``sync_ddp_time()``.

AlgoPerf's ``pytorch_setup()`` reads torchrun's ``LOCAL_RANK``; this one answers from the harness instead,
which is what a submission needs to agree with: the torchrun process group the session trains with (it may be
started after the submission is imported, so torchrun's variables stand in until then) and the device
``--algoperf-device`` chose.
"""

from __future__ import annotations

import torch

from pytest_algoperf.distributed import SINGLE_PROCESS, ProcessGroup, process_group, torchrun_environment
from pytest_algoperf.frameworks.pytorch_adapter import ADAPTER


def harness_group() -> ProcessGroup:
    """The ranks this process trains with: the started process group, else torchrun's variables."""
    group = process_group()
    if group.is_distributed:
        return group
    return torchrun_environment() or SINGLE_PROCESS


def pytorch_setup() -> tuple[bool, int, torch.device, int]:
    """``(use_pytorch_ddp, rank, device, n_gpus)`` as AlgoPerf's submissions unpack them.

    ``use_pytorch_ddp`` is whether the run is DistributedDataParallel over several ranks; ``rank`` is this
    process's local rank (AlgoPerf's, which picks the GPU); ``device`` is ``cuda:<local rank>`` on GPUs, else
    the CPU; ``n_gpus`` is the GPUs on this host when on GPUs, else the ranks on this host, so per-device
    arithmetic (``global_batch_size // n_gpus``) stays right on the CPU too.
    """
    group = harness_group()
    on_gpu = ADAPTER.device == "cuda"
    device = torch.device("cuda", group.local_rank) if on_gpu else torch.device("cpu")
    n_gpus = torch.cuda.device_count() if on_gpu else group.local_world_size
    return group.is_distributed, group.local_rank, device, n_gpus


def sync_ddp_time(time: float, device: torch.device) -> float:
    """The latest of every rank's ``time`` (AlgoPerf's clock under DDP); ``time`` when not distributed."""
    return process_group().max(time)
