"""Data-parallel replicas (torch.distributed, as a Ray Train worker group sets it up).

One recipe whatever the worker count: every rank walks the same global batches and trains on its
rows of each one; rank 0 alone evaluates, measures and writes, and tells the others what it
decided. These helpers are the only place the method touches torch.distributed, and each is a
no-op (or the identity) without a process group, so the same code runs in a notebook.

Every tensor a helper hands to a collective sits on the device the group's backend reduces on
(`collective_device`): NCCL, Ray Train's backend on GPU workers, takes only CUDA tensors, on the
current CUDA device (Ray Train sets it to the worker's GPU); gloo takes CPU tensors.
"""

from __future__ import annotations

import json
from typing import TypeVar

import torch
from torch import nn

from raykd.task_interface import Batch, batch_rows

T = TypeVar("T")


def world() -> tuple[int, int]:
    """(world size, rank) of the torch.distributed group, (1, 0) when there is none."""
    if _grouped():
        import torch.distributed as dist

        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def is_main() -> bool:
    return world()[1] == 0


def _grouped() -> bool:
    """Whether a default process group exists (of any size: the collectives run even on one rank,
    so a world-size-1 group checks the backend's device handling, as bench/gpu_check.py does)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def served_devices() -> dict[str, str]:
    """Device type -> backend of the default group: {"cuda": "nccl"}, {"cpu": "gloo"}, or the
    pairs of a mixed backend such as "cpu:gloo,cuda:nccl" (each tensor goes to its device's).

    A single backend is taken to serve one device: the CPU if it can (gloo takes CUDA tensors in
    some collectives only, CPU tensors in all), else its accelerator (NCCL: CUDA)."""
    import torch.distributed as dist

    name = str(dist.get_backend()).lower()
    if ":" in name:
        return {device.strip(): backend.strip() for device, backend in (pair.split(":", 1) for pair in name.split(","))}
    capable = dist.Backend.backend_capability.get(name, [])
    if not capable:
        raise RuntimeError(f"torch.distributed backend {name!r} names no device it serves; raykd knows gloo and nccl")
    return {"cpu" if "cpu" in capable else capable[0]: name}


def collective_device(prefer: torch.device | None = None) -> torch.device:
    """The device a collective's tensors must sit on under the default group's backend: the
    current CUDA device for NCCL, the CPU for gloo. With a mixed backend, `prefer` (a tensor's
    own device, saving a copy) where one of its backends serves that device type, else the CPU,
    else the first device named."""
    served = served_devices()
    if prefer is not None and prefer.type in served:
        kind = prefer.type
    else:
        kind = "cpu" if "cpu" in served else next(iter(served))
    if kind == "cpu":
        return torch.device("cpu")
    return torch.device(kind, torch.get_device_module(kind).current_device())


def shard_batch(batch: Batch, rank: int, size: int) -> Batch:
    """Rank `rank`'s rows of a global batch (rows rank, rank + size, ...); every tensor of a
    batch is batch-first."""
    if size == 1:
        return batch
    rows = batch_rows(batch)
    return {k: v[rank::size] if v.ndim and v.shape[0] == rows else v for k, v in batch.items()}


def from_main(value: T) -> T:
    """Rank 0's `value` on every rank (a JSON-able object: decisions, metrics)."""
    if not _grouped():
        return value
    import torch.distributed as dist

    box = [json.dumps(value, default=float) if is_main() else None]
    # NCCL moves the pickled object through a tensor on this device (torch would guess otherwise)
    dist.broadcast_object_list(box, src=0, device=collective_device())
    return json.loads(box[0])


def total(value: float) -> float:
    """The sum of `value` over every rank."""
    if not _grouped():
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=collective_device())
    dist.all_reduce(t)
    return float(t[0])


def broadcast_weights(model: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (in place). A tensor the backend cannot
    take where it lies (CPU weights under NCCL) travels through a copy on the backend's device."""
    if not _grouped():
        return
    import torch.distributed as dist

    with torch.no_grad():
        for tensor in model.state_dict().values():
            device = collective_device(tensor.device)
            if tensor.device == device and tensor.is_contiguous():
                dist.broadcast(tensor, src=0)
            else:
                carrier = tensor.to(device).contiguous()
                dist.broadcast(carrier, src=0)
                tensor.copy_(carrier)


def barrier() -> None:
    """Wait until every rank gets here (the others wait while rank 0 evaluates and writes)."""
    if not _grouped():
        return
    import torch.distributed as dist

    device = collective_device()
    if device.type == "cpu":
        dist.barrier()
    else:  # NCCL's barrier is an all-reduce: on this rank's device, not one guessed from the rank
        dist.barrier(device_ids=[device.index])


def replicas_identical(model: nn.Module) -> bool:
    """Whether every rank holds exactly the same weights (SHA-256 of the state, all-gathered as
    32 bytes on the backend's device)."""
    if not _grouped():
        return True
    import torch.distributed as dist

    from raykd.resume import model_digest

    device = collective_device()
    mine = torch.tensor(list(bytes.fromhex(model_digest(model))), dtype=torch.uint8, device=device)
    digests = [torch.empty_like(mine) for _ in range(world()[0])]
    dist.all_gather(digests, mine)
    return all(torch.equal(d, mine) for d in digests)


def wrap_ddp(model: nn.Module) -> nn.Module:
    """Wrap for data-parallel training. Unused parameters are allowed: a pruned block with no
    heads left keeps (empty) projections that take no part in the forward pass."""
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    if _grouped():
        import torch.distributed as dist

        name = str(dist.get_backend()).lower()
        takes = set(served_devices()) if ":" in name else set(dist.Backend.backend_capability.get(name, []))
        if device.type not in takes:  # NCCL and a CPU model: say so before DDP's first all-reduce fails
            raise RuntimeError(f"the model is on {device}, but the {name} process group takes only "
                               f"{', '.join(sorted(takes))} tensors: move the model to the worker's device first")
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)
