"""Distributed data-parallel training: process-group set-up and the few collectives the trainer uses.

Launch (one host, two processes)::

    torchrun --nproc_per_node 2 -m chronorec train --data prepared/amazon-grocery --model tin

Several hosts (run the same command on every host; the rendezvous endpoint is any reachable
``host:port`` on one of them)::

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv-backend c10d --rdzv-id tin-run \\
             --rdzv-endpoint node0.example:29400 -m chronorec train --data ... --model tin

How chronorec uses the processes (see also ``docs/ddp.md``):

* Backend: ``gloo`` on CPU, ``nccl`` when CUDA is available (each process takes GPU ``LOCAL_RANK``).
* ``train.batch_size`` is the *global* batch: each of the W processes takes ``batch_size // W`` rows
  of the same epoch permutation (the loader shards by ``rank``/``world_size``), so one process and W
  processes take the same number of optimizer steps over the same data per epoch.
* Every process runs ``min`` over ranks of its batch count per epoch, so uneven shards cannot hang.
* The model is wrapped in :class:`torch.nn.parallel.DistributedDataParallel` (gradients averaged).
  Rank 0 holds the run folder: it writes config, metrics and checkpoints, and it evaluates on the
  whole validation/test split with the unwrapped model while the others wait at a broadcast of the
  outcome (stop or go). Evaluation on one rank keeps the metrics identical to a single-process run
  and needs no gathering of per-user predictions for GAUC; it is the cheap part of a run.
* Torch threads default to the host's cores divided by the processes on the host.
* Checkpoints hold every rank's RNG states, so a resume with the same world size is exact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto", timeout_minutes: int = 120) -> DistInfo:
    """Join the process group torchrun describes in the environment; a plain launch is rank 0 of 1.

    ``device``: "auto" (CUDA ``LOCAL_RANK`` if available, else CPU), "cpu" or "cuda".
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    dev = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=timeout_minutes))
    return DistInfo(rank, world, local_rank, local_world, dev)


def shutdown(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo, find_unused_parameters: bool = False) -> nn.Module:
    """``DistributedDataParallel(model)`` in a multi-process job, the model itself otherwise."""
    if not info.distributed:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=ids, find_unused_parameters=find_unused_parameters
    )


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def broadcast(obj: Any, info: DistInfo, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable objects; small ones only)."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_min(value: int, info: DistInfo) -> int:
    """The minimum of an integer over ranks."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()
