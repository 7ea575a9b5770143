"""Where models run: the device kdlab picks, the precision it runs them in, and their logits.

Every module that trains or scores a model (training, the sweep, the language models, the explorer)
asks here, so that "CUDA if present, bfloat16 autocast on CUDA, eval mode under no_grad" is one
decision made in one place.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

__all__ = ["autocast", "pick_device", "predict_logits"]


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
        with autocast(device):
            chunks = [model(inputs[start:start + batch_size].to(device, non_blocking=True)).float()
                      for start in range(0, len(inputs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(chunks)
