"""Checkpoints that are safe to write, safe to load, and say what they hold.

Written atomically (a temp file beside the target, then a rename) so an interrupted save never
leaves half a file; loaded with `torch.load(weights_only=True)`, which refuses arbitrary pickled
code. The model spec travels with the weights, so a checkpoint rebuilds its own network and a
mismatch is caught with a message rather than a shape error deep inside torch. A SHA-256 of the
tensors travels too, so flipped bytes are caught instead of loading silently. Every way a file can
be damaged, malformed or foreign is one CheckpointError with a one-line message.

Files get the user's umask, like any file the user creates. A save killed midway (SIGKILL) leaves
its `.NAME.<random>.tmp` behind; the next save of NAME removes such files once they are stale:
older than STALE_TEMPORARY_SECONDS and not locked. Each writer holds an flock on its temporary
file until it is renamed, so a concurrent writer's file is never taken for an orphan.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from pathlib import Path

import torch
from torch import nn

import kdlab
from kdlab.interrupt import TrainingInterrupted
from kdlab.models import build_model

__all__ = ["CheckpointError", "cache_path", "is_checkpoint", "load_checkpoint", "load_or_compute", "load_or_train",
           "save_checkpoint", "tensors_sha256", "write_text_atomically"]

try:
    import fcntl
except ImportError:  # Windows: no flock, so staleness rests on age alone
    fcntl = None

FORMAT = "kdlab-checkpoint/2"  # /2 adds the SHA-256; a /1 file is reported as outdated and retrained
STALE_TEMPORARY_SECONDS = 60
_ZIP_MAGIC = b"PK\x03\x04"  # what torch.save writes first


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or not the one that was asked for."""


def _one_line(text) -> str:
    return " ".join(str(text).split())


def tensors_sha256(state_dict: dict) -> str:
    """SHA-256 over each tensor's name, dtype, shape and bytes, in name order: same weights, same hash."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _is_stale(temporary: Path) -> bool:
    """Old enough not to be a writer that just started, and not locked by a writer still running."""
    try:
        if time.time() - temporary.stat().st_mtime < STALE_TEMPORARY_SECONDS:
            return False
        if fcntl is None:
            return True
        with open(temporary, "rb") as file:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock dies with its writer
        return True
    except OSError:  # gone already, or locked: leave it
        return False


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temp files a killed save of `path` left behind (see the module docstring)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]+\.tmp")
    for candidate in path.parent.iterdir():
        if pattern.fullmatch(candidate.name) and _is_stale(candidate):
            candidate.unlink(missing_ok=True)


def _write_atomically(path, write) -> Path:
    """Call write(binary_file) on a temp file beside `path`, then rename it over `path`.

    The temp file is created with mode 0o666, so the kernel applies the user's umask; it stays
    flock-ed until the rename, so another save's cleanup cannot mistake it for an orphan.
    """
    path = Path(path)
    _remove_stale_temporaries(path)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            handle = os.open(temporary, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(handle, "wb") as file:
            if fcntl is not None:
                fcntl.flock(file, fcntl.LOCK_EX)
            write(file)
            file.flush()
            if fcntl is not None:  # renamed while still locked: never a moment where it looks orphaned
                os.replace(temporary, path)
        if fcntl is None:  # Windows cannot rename an open file
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path, text: str) -> Path:
    """Write UTF-8 `text` to `path` so that readers see the old file or the new one, never a mix.

    The folder must exist (as for Path.write_text); the file gets the user's umask.
    """
    return _write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def is_checkpoint(path) -> bool:
    """True if `path` is an existing file that looks like a checkpoint: a .pt/.pth name or torch's zip format.

    Cheap (reads 4 bytes), for refusing to write something else, such as JSON, over a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix in (".pt", ".pth"):
        return True
    try:
        with open(path, "rb") as file:
            return file.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
    except OSError:
        return False


def save_checkpoint(path, model: nn.Module, spec: dict, **metadata) -> Path:
    """Save weights with the spec, their SHA-256 and metadata (dataset, seed, accuracy, ...; plain values)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "spec": spec,
        "metadata": {"kdlab_version": kdlab.__version__, **metadata},
        "state_dict": state_dict,
        "sha256": tensors_sha256(state_dict),
    }
    return _write_atomically(path, lambda file: torch.save(payload, file))


def _checked_payload(path: Path, payload) -> dict:
    """The payload if it is a well-formed, undamaged kdlab checkpoint; otherwise CheckpointError."""
    advice = "delete it and train again"
    if not isinstance(payload, dict) or not str(payload.get("format", "")).startswith("kdlab-checkpoint/"):
        raise CheckpointError(f"{path} is not a kdlab checkpoint (expected format {FORMAT}); {advice}")
    if payload["format"] != FORMAT:
        raise CheckpointError(f"{path} has the outdated format {payload['format']} (this kdlab writes "
                              f"{FORMAT}, with a SHA-256 of the weights); {advice}")
    state_dict = payload.get("state_dict")
    problems = [
        (not isinstance(payload.get("spec"), dict), "no model spec"),
        (not isinstance(payload.get("metadata"), dict), "no metadata dictionary"),
        (not (isinstance(state_dict, dict)
              and all(isinstance(name, str) and isinstance(tensor, torch.Tensor)
                      for name, tensor in state_dict.items())), "no dictionary of named tensors"),
        (not isinstance(payload.get("sha256"), str), "no SHA-256 of its weights"),
    ]
    for missing, what in problems:
        if missing:
            raise CheckpointError(f"{path} is malformed: it has {what}; {advice}")
    try:
        digest = tensors_sha256(state_dict)
    except Exception as error:  # e.g. sparse or meta tensors, which no kdlab model saves
        raise CheckpointError(_one_line(f"{path} is malformed: its tensors cannot be read ({error}); "
                                        f"{advice}")) from None
    if digest != payload["sha256"]:
        raise CheckpointError(f"{path} is damaged: its weights do not match their SHA-256; {advice}")
    return payload


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
    payload = _checked_payload(path, payload)
    spec, metadata = payload["spec"], payload["metadata"]
    if expect_spec is not None and spec != expect_spec:
        raise CheckpointError(_one_line(f"{path} holds a different model: {spec} (expected {expect_spec})"))
    for key, value in (expect or {}).items():
        if metadata.get(key) != value:
            raise CheckpointError(_one_line(f"{path} was made with {key}={metadata.get(key)!r}, "
                                            f"expected {value!r}"))
    try:
        model = build_model(spec)
        model.load_state_dict(payload["state_dict"])
    except Exception as error:  # a spec kdlab cannot build, or weights of other names or shapes
        raise CheckpointError(_one_line(f"{path}: weights do not fit the model they claim to be "
                                        f"({type(error).__name__}: {error})")) from None
    return model.eval(), metadata


def cache_path(root, kind: str, name: str, *, seed: int, suffix: str = ".pt") -> Path:
    """The one naming rule for every file kdlab caches: `<root>/<kind>-<name>-seed<seed><suffix>`.

    `kind` says what the file holds ("teacher", "lm-teacher", "explorer-baseline", "grid"), `name`
    what it was made from (a dataset, or a text and its hash), so no two caches can share a file.
    """
    return Path(root) / f"{kind}-{name}-seed{seed}{suffix}"


def load_or_compute(path, read, compute, write, *, what: str = "model", retrain: bool = False):
    """`read(path)` if it can be used, else `compute()`, stored with `write(path, result)`: every cache's recipe.

    A missing file is a silent miss. `read` raises ValueError (CheckpointError is one) or OSError
    saying why a file cannot be used (damaged, malformed, made with other settings); that reason is
    printed in one line, because the file is about to be replaced. `retrain` skips the file.
    """
    path = Path(path)
    if not retrain and path.exists():
        try:
            return read(path)
        except (OSError, ValueError) as error:
            print(f"Not reusing the saved {what}: {_one_line(error)}. Making a new one.")
    result = compute()
    write(path, result)
    return result


def load_or_train(path, spec: dict, expect: dict, train, *, seed: int, what: str = "the model",
                  retrain: bool = False, write: bool = True, keep_interrupted: bool = True) -> tuple[nn.Module, dict]:
    """(model, metadata): every cached model, through load_or_compute.

    The checkpoint at `path` if it was made with exactly `spec` and the `expect` metadata; else a model
    built from `spec` with `seed`, trained in place by `train(model)` (which returns more metadata to
    store) and saved with `write`. Ctrl-C leaves `path` as it was; with `keep_interrupted` the
    half-trained weights go to `<name>.interrupted-<epoch|step><N>.pt`, whose metadata records the N it
    had, so it never passes for the full model, and TrainingInterrupted says where they are.
    """
    def train_new():
        model = build_model(spec, seed=seed)
        try:
            extra = train(model)
        except TrainingInterrupted as stop:
            kept = None
            if write and keep_interrupted and stop.done:
                kept = Path(path).with_name(f"{Path(path).stem}.interrupted-{stop.unit.rstrip('s')}{stop.done}.pt")
                save_checkpoint(kept, model, spec, **{**expect, stop.unit: stop.done},
                                **{f"{stop.unit}_requested": expect.get(stop.unit)}, interrupted=True)
            where = f"; its weights are in {kept}, which is never loaded automatically" if kept else ""
            raise TrainingInterrupted(f"{what}'s {stop.message}{where}; {path} was left as it was",
                                      history=stop.history, partial=stop.partial) from None
        return model, {**expect, **extra}

    def save(path, trained):
        if write:
            save_checkpoint(path, trained[0], spec, **trained[1])

    return load_or_compute(path, lambda path: load_checkpoint(path, expect_spec=spec, expect=expect), train_new,
                           save, retrain=retrain)
