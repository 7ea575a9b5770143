"""Data-parallel training under torchrun, with no change to the code that trains.

    torchrun --standalone --nproc_per_node=2 -m kdlab teacher --retrain

torchrun starts one process per GPU (or per CPU worker) and sets RANK, WORLD_SIZE and
LOCAL_RANK. `kdlab.train.fit` sees them, joins the process group (NCCL on GPUs, gloo on the
CPU), wraps the model in DistributedDataParallel and gives each rank its share of every
batch. Every rank draws the same batch order (same seed), and the per-rank losses are scaled so
that DDP's gradient average equals the gradient of the whole batch: one step across N processes
is the step a single process would take, and all ranks end with identical weights.
Outside torchrun nothing here does anything.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["is_main_process", "join", "shard", "total", "world", "wrap"]


def world() -> tuple[int, int]:
    """(rank, world size) as torchrun set them; (0, 1) in an ordinary process."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main_process() -> bool:
    """Rank 0, the one process that writes files (under torchrun every rank holds the same weights)."""
    return world()[0] == 0


def join(device: torch.device) -> torch.device:
    """Join torchrun's process group (once per process) and return this rank's device."""
    rank, world_size = world()
    if world_size == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)
    return device


def _leave() -> None:
    """At exit: wait for every rank, then tear the group down, so that no rank closes its connections while
    another still uses them (a gloo rank then aborted at exit in about one CI run in four)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model DistributedDataParallel-wrapped when running under torchrun, else unchanged."""
    if world()[1] == 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(batch: tuple[torch.Tensor, ...]) -> tuple[tuple[torch.Tensor, ...], float]:
    """This rank's share of a batch (every world-size-th example), and the factor that scales its
    mean loss so that DDP's average over ranks is the mean over the whole batch."""
    rank, world_size = world()
    if world_size == 1:
        return batch, 1.0
    share = tuple(tensor[rank::world_size] for tensor in batch)
    return share, len(share[0]) * world_size / len(batch[0])


def total(value: torch.Tensor) -> torch.Tensor:
    """The sum of `value` over all ranks (for the epoch's training loss)."""
    if world()[1] > 1:
        dist.all_reduce(value)
    return value
