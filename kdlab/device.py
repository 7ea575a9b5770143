"""Where models run: the device kdlab picks, the precision it runs them in, and their logits.

Every module that trains or scores a model (training, the sweep, the language models, the explorer)
asks here, so that "CUDA if present, bfloat16 autocast on CUDA, eval mode under no_grad" is one
decision made in one place.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import statistics
import sys
import time

import torch
from torch import nn

__all__ = ["autocast", "forward_seconds", "one_cpu_thread", "pick_device", "predict_logits"]


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """CUDA if present, else Apple's MPS, else the CPU; or the device asked for, if it exists."""
    if preferred is None or str(preferred) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(preferred)
    except RuntimeError:
        raise ValueError(f"unknown device {preferred!r}; use 'auto', 'cpu', 'cuda' or 'mps'") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise ValueError(f"device {str(device)!r} is not available on this machine; use 'auto' or 'cpu'")
    return device


def autocast(device: torch.device):
    """bfloat16 autocast on CUDA (no loss scaling needed); full precision elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_logits(model: nn.Module, inputs: torch.Tensor, *, device=None, batch_size: int = 2048) -> torch.Tensor:
    """The model's logits in eval mode (float32, on `device`), in chunks so large sets fit.

    The model moves to `device` too, so a model fresh from a checkpoint (on the CPU) just works."""
    device = pick_device(device)
    was_training = model.training
    model.to(device).eval()
    try:
        with one_cpu_thread(device), autocast(device):
            chunks = [model(inputs[start:start + batch_size].to(device, non_blocking=True)).float()
                      for start in range(0, len(inputs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(chunks)


@contextlib.contextmanager
def one_cpu_thread(device="cpu"):
    """On the CPU, one thread for the duration, then the thread count restored (elsewhere nothing).

    kdlab trains and scores its models this way on the CPU, for three reasons: the same seed then
    gives the same numbers on any machine, whatever its core count (sums in another order change
    the last digits, and a trained network amplifies them); its matrices are too small to share, so
    a second thread only adds waiting (on a busy 2-core machine the explorer's "Train now" took
    22-33 s with two threads against 1.3 s with one); and a timing on one thread is the cost per core.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    reuse_large_blocks()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


LARGE_BLOCK_BYTES = 1 << 30


@functools.cache
def reuse_large_blocks() -> bool:
    """Let glibc keep freed blocks of up to 1 GiB for reuse, once per process; True if it could (Linux).

    By default glibc hands every freed block over 32 MB straight back to the system, and the next one is
    faulted in again page by page, zeroed by the kernel. kdlab's CPU work allocates such blocks all the time:
    the MNIST ConvNet teacher scoring 2,000 images needs about 200 MB of activations per call, and a CPU run
    of `python -m kdlab distill --dataset mnist` spent 10 of its 35 s in the kernel doing this (25 s with
    blocks reused; benchmarks/bench_allocator.py measures it). No number changes: only where memory comes
    from. The cost is that up to 1 GiB freed stays with the process, not the system, until it exits.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt (not glibc): nothing to tune
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
    return bool(mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, LARGE_BLOCK_BYTES))


def forward_seconds(model: nn.Module, inputs: torch.Tensor, *, repeats: int = 50, device=None) -> float:
    """Median seconds of one forward pass over `inputs` in eval mode, after a warm-up: the inference
    cost distillation buys down. On the CPU it runs on one thread; on CUDA it waits for the GPU."""
    device = pick_device(device)
    with one_cpu_thread(device):
        predict_logits(model, inputs, device=device)  # warm-up: first calls allocate
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            predict_logits(model, inputs, device=device)
            if device.type == "cuda":
                torch.cuda.synchronize()  # note: the GPU runs asynchronously; count its work, not the launch
            timings.append(time.perf_counter() - start)
    return statistics.median(timings)
