"""PyTorch DistributedDataParallel under torchrun: the process group, the model wrapper, and the loss
reduction that submissions call.

The harness starts ``torch.distributed`` (gloo on the CPU, nccl on CUDA) when torchrun launched pytest,
wraps the model in ``DistributedDataParallel`` and gives each rank its slice of every global batch. DDP
averages gradients over ranks, so a submission must compute its loss over the *global* batch: sum the
per-rank ``summed`` losses and ``n_valid_examples`` with an autograd-aware all-reduce before dividing, as
AlgoPerf's reference submissions do. ``global_mean_loss`` is that step, and a plain mean when not under DDP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from pytest_algoperf.distributed import ProcessGroup


def ddp_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def global_mean_loss(loss_dict: dict[str, Any]) -> torch.Tensor:
    """``summed / n_valid_examples`` of a workload's ``loss_fn`` output, over the global batch under DDP.

    The all-reduce is autograd-aware (as ``torch.distributed.nn.functional.all_reduce``, deprecated in
    torch 2.13): each rank's gradient then carries the other ranks' share of the normaliser, and DDP's
    gradient averaging yields the global batch's gradient.
    """
    summed, n_valid = loss_dict["summed"], loss_dict["n_valid_examples"]
    if not ddp_active():
        return summed / n_valid
    # One all-reduce for both; at least float32, so that counts stay exact under half precision (workloads
    # may give n_valid_examples as a Python int or an integer tensor).
    dtype = torch.promote_types(summed.dtype, torch.float32)
    n_valid = torch.as_tensor(n_valid, device=summed.device).to(dtype)
    totals = _SumOverRanks.apply(torch.stack([summed.to(dtype), n_valid]))
    return totals[0] / totals[1]


class _SumOverRanks(torch.autograd.Function):
    """All-reduce SUM whose backward is the all-reduce SUM of the gradient (every rank's loss uses it)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


class TorchCollectives:
    """``pytest_algoperf.distributed.Collectives`` on ``torch.distributed`` (host tensors for gloo,
    the rank's GPU for nccl, which cannot reduce CPU tensors)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def max(self, value: float) -> float:
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor.item())

    def sum(self, values: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().numpy()

    def gather_rows(self, array: np.ndarray) -> np.ndarray:
        # all_gather needs equal shapes: gather the row counts, pad to the longest, then trim.
        is_bool = array.dtype == np.bool_
        local = torch.from_numpy(np.ascontiguousarray(array.view(np.uint8) if is_bool else array))
        count = torch.tensor([local.shape[0]], dtype=torch.int64, device=self.device)
        counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
        dist.all_gather(counts, count)
        longest = max(int(c.item()) for c in counts)
        padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype)
        padded[: local.shape[0]] = local
        padded = padded.to(self.device)
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        rows = np.concatenate([p[: int(c.item())].cpu().numpy() for p, c in zip(parts, counts, strict=True)])
        return rows.view(np.bool_) if is_bool else rows


def start_process_group(group: ProcessGroup, device: str) -> ProcessGroup:
    """Initialise ``torch.distributed`` for the ranks torchrun set, and return the group with its
    collectives; torchrun's MASTER_ADDR/MASTER_PORT variables are the rendezvous."""
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        torch.cuda.set_device(group.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=group.rank, world_size=group.world_size)
    collective_device = torch.device("cuda", group.local_rank) if device == "cuda" else torch.device("cpu")
    return ProcessGroup(
        rank=group.rank,
        world_size=group.world_size,
        local_rank=group.local_rank,
        local_world_size=group.local_world_size,
        backend=backend,
        collectives=TorchCollectives(collective_device),
    )


def stop_process_group() -> None:
    """Wait for every rank (rank 0 writes the reports last: torchrun stops all ranks as soon as one exits
    with a failure, as a missed target makes pytest do), then leave the group."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap_model(model: Any, group: ProcessGroup, device: str) -> Any:
    """``DistributedDataParallel(model)`` under DDP (a model without trainable parameters stays as it is)."""
    if not group.is_distributed or not isinstance(model, torch.nn.Module):
        return model
    if not any(p.requires_grad for p in model.parameters()):
        return model
    device_ids = [group.local_rank] if device == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: Any) -> Any:
    return model.module if isinstance(model, DistributedDataParallel) else model
