"""Checkpoints that are safe to write, safe to load, and say what they hold.

Written atomically (a temp file beside the target, then a rename) so an interrupted save never
leaves half a file; loaded with `torch.load(weights_only=True)`, which refuses arbitrary pickled
code. The model spec travels with the weights, so a checkpoint rebuilds its own network and a
mismatch is caught with a message rather than a shape error deep inside torch.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

import kdlab
from kdlab.models import build_model

FORMAT = "kdlab-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or not the one that was asked for."""


def save_checkpoint(path, model: nn.Module, spec: dict, **metadata) -> Path:
    """Save weights with the spec and metadata (dataset, seed, accuracy, ...; plain values only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "spec": spec,
        "metadata": {"kdlab_version": kdlab.__version__, **metadata},
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path, *, expect_spec: dict | None = None, expect: dict | None = None,
                    map_location="cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode, metadata). `expect_spec` / `expect` (metadata values) must match if given."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train one first (e.g. `python -m kdlab teacher`)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises zip, unpickling and EOF errors for damaged files
        raise CheckpointError(f"{path} is corrupt or not a kdlab checkpoint ({type(error).__name__}); "
                              "delete it and train again") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a kdlab checkpoint (expected format {FORMAT}); "
                              "delete it and train again")
    spec, metadata = payload["spec"], payload["metadata"]
    if expect_spec is not None and spec != expect_spec:
        raise CheckpointError(f"{path} holds a different model: {spec} (expected {expect_spec})")
    for key, value in (expect or {}).items():
        if metadata.get(key) != value:
            raise CheckpointError(f"{path} was made with {key}={metadata.get(key)!r}, expected {value!r}")
    model = build_model(spec)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the model they claim to be ({error})") from None
    return model.eval(), metadata


def reuse_checkpoint(path, *, expect_spec: dict, expect: dict) -> tuple[nn.Module, dict] | None:
    """(model, metadata) from `path` if it was made with exactly this spec and metadata, else None.

    For caches that train on a miss: a missing file is a silent miss; a corrupt or mismatched one
    is reported, because it is about to be replaced.
    """
    if not Path(path).exists():
        return None
    try:
        return load_checkpoint(path, expect_spec=expect_spec, expect=expect)
    except CheckpointError as error:
        print(f"Not reusing the saved model: {error}. Training a new one.")
        return None
