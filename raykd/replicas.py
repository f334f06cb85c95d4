"""Data-parallel replicas (torch.distributed, as a Ray Train worker group sets it up).

One recipe whatever the worker count: every rank walks the same global batches and trains on its
rows of each one; rank 0 alone evaluates, measures and writes, and tells the others what it
decided. These helpers are the only place the method touches torch.distributed, and each is a
no-op (or the identity) without a process group, so the same code runs in a notebook.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import torch
from torch import nn

from raykd.task_interface import Batch, batch_rows

T = TypeVar("T")


def world() -> tuple[int, int]:
    """(world size, rank) of the torch.distributed group, (1, 0) when there is none."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def is_main() -> bool:
    return world()[1] == 0


def shard_batch(batch: Batch, rank: int, size: int) -> Batch:
    """Rank `rank`'s rows of a global batch (rows rank, rank + size, ...); every tensor of a
    batch is batch-first."""
    if size == 1:
        return batch
    rows = batch_rows(batch)
    return {k: v[rank::size] if v.ndim and v.shape[0] == rows else v for k, v in batch.items()}


def from_main(value: T) -> T:
    """Rank 0's `value` on every rank (a JSON-able object: decisions, metrics)."""
    size, rank = world()
    if size == 1:
        return value
    import torch.distributed as dist

    box = [json.dumps(value, default=float) if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return json.loads(box[0])


def total(value: float) -> float:
    """The sum of `value` over every rank."""
    if world()[0] == 1:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0])


def broadcast_weights(model: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (in place)."""
    size, _ = world()
    if size == 1:
        return
    import torch.distributed as dist

    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def barrier() -> None:
    """Wait until every rank gets here (the others wait while rank 0 evaluates and writes)."""
    if world()[0] > 1:
        import torch.distributed as dist

        dist.barrier()


def replicas_identical(model: nn.Module) -> bool:
    """Whether every rank holds exactly the same weights (SHA-256 of the state, all-gathered)."""
    size, _ = world()
    if size == 1:
        return True
    import torch.distributed as dist

    from raykd.resume import model_digest

    digests: list[Any] = [None] * size
    dist.all_gather_object(digests, model_digest(model))
    return len(set(digests)) == 1


def wrap_ddp(model: nn.Module) -> nn.Module:
    """Wrap for data-parallel training. Unused parameters are allowed: a pruned block with no
    heads left keeps (empty) projections that take no part in the forward pass."""
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
