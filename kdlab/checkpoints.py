"""Checkpoints that are safe to write, safe to load, and say what they hold.

Written atomically (a temp file beside the target, then a rename) so an interrupted save never
leaves half a file; loaded with `torch.load(weights_only=True)`, which refuses arbitrary pickled
code. The model spec travels with the weights, so a checkpoint rebuilds its own network and a
mismatch is caught with a message rather than a shape error deep inside torch. A SHA-256 of the
tensors travels too, so flipped bytes are caught instead of loading silently. Every way a file can
be damaged, malformed or foreign is one CheckpointError with a one-line message; so is metadata of
the wrong type, which the SHA-256 does not cover.

Only regular files are ever replaced: a folder, a device (/dev/null), a FIFO, a socket or a symbolic
link at the target is refused, never renamed over. Each save is fsync-ed before its rename (and the
folder after it), so a power cut cannot leave an empty file behind a save that had completed. A save
that fails all the same (a full disk, a read-only mount) is reported in one line by load_or_compute,
which carries on with what it computed; `collect_unsaved` lets a caller (the CLI) say so at the end.

Files get the user's umask, like any file the user creates. A save killed midway (SIGKILL) leaves
its `.NAME.<random>.tmp` behind; the next save of NAME removes such files once they are stale:
older than STALE_TEMPORARY_SECONDS and not locked. Each writer holds an flock on its temporary
file until it is renamed, so a concurrent writer's file is never taken for an orphan.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import math
import os
import re
import reprlib
import secrets
import stat
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import kdlab
from kdlab import distributed
from kdlab.interrupt import TrainingInterrupted
from kdlab.models import build_model

__all__ = ["CheckpointError", "cache_path", "collect_unsaved", "is_cache_file", "is_checkpoint", "load_checkpoint",
           "load_or_compute", "load_or_train", "report_unsaved", "save_checkpoint", "tensors_sha256",
           "check_writable_folder", "write_text_atomically"]

try:
    import fcntl
except ImportError:  # Windows: no flock, so staleness rests on age alone
    fcntl = None

FORMAT = "kdlab-checkpoint/2"  # /2 adds the SHA-256; a /1 file is reported as outdated and retrained
STALE_TEMPORARY_SECONDS = 60
_ZIP_MAGIC = b"PK\x03\x04"  # what torch.save writes first


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or not the one that was asked for.

    `reason` is the problem alone; the message adds `advice`, what the user should do, which a caller
    that rebuilds the file itself (load_or_compute) leaves out.
    """

    def __init__(self, reason: str, advice: str = ""):
        super().__init__(f"{reason}; {advice}" if advice else reason)
        self.reason = reason


_RETRAIN = "delete it and train again"


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


def _not_a_regular_file(path: Path) -> str | None:
    """What `path` is if it exists but is not a regular file ("a folder", ...), else None; links are not followed."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode):
        return None
    return {stat.S_IFDIR: "a folder", stat.S_IFLNK: "a symbolic link"}.get(stat.S_IFMT(mode),
                                                                         "a device, FIFO or socket")


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename inside it survives a power cut; where folders cannot be opened
    (Windows) the rename is left to the file system."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _write_atomically(path, write) -> Path:
    """Call write(binary_file) on a temp file beside `path`, fsync it, then rename it over `path`.

    Refuses (OSError) to replace anything but a regular file. The temp file is created with mode 0o666,
    so the kernel applies the user's umask; it stays flock-ed until the rename, so another save's
    cleanup cannot mistake it for an orphan.
    """
    path = Path(path)
    what = _not_a_regular_file(path)
    if what:
        raise FileExistsError(f"{path} is {what}; kdlab replaces only regular files")
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
            os.fsync(file.fileno())
            if fcntl is not None:  # renamed while still locked: never a moment where it looks orphaned
                os.replace(temporary, path)
        if fcntl is None:  # Windows cannot rename an open file
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def check_writable_folder(folder: Path, label: str) -> None:
    """Create `folder` if needed and prove a file can be written there, before any work that would be lost;
    ValueError, starting with `label` (a flag or OUT_DIR), says why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"{label}: cannot write into {folder} ({error.strerror or error}); "
                         "choose a folder you can write to") from None


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
    serialized = io.BytesIO()  # torch's zip writer turns a full disk into a RuntimeError: keep it off the disk
    torch.save(payload, serialized)
    return _write_atomically(path, lambda file: file.write(serialized.getbuffer()))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_fraction(value) -> bool:
    return _is_number(value) and 0 <= value <= 1


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# The metadata kdlab writes, by key: what its value must be. The SHA-256 covers only the weights, so
# these are checked on every load; a key not listed here is a plain value weights_only has let through.
METADATA_TYPES = {
    **dict.fromkeys(("accuracy", "validation_accuracy"), (_is_fraction, "a number in [0, 1]")),
    **dict.fromkeys(("epochs", "steps", "seed", "jitter", "transfer_size", "epochs_requested", "steps_requested",
                     "validation", "pool"),
                    (_is_count, "a whole number")),
    **dict.fromkeys(("validation_loss", "seconds"), (_is_number, "a finite number")),
    **dict.fromkeys(("dataset", "corpus", "fingerprint", "kdlab_version"), (lambda value: isinstance(value, str),
                                                                           "a text")),
    "curve": (lambda value: isinstance(value, list) and all(map(_is_fraction, value)),
              "a list of numbers in [0, 1]"),
    "history": (lambda value: isinstance(value, dict), "a dictionary"),
    "interrupted": (lambda value: isinstance(value, bool), "True or False"),
}


def _check_metadata(path: Path, metadata: dict) -> None:
    for key, (fits, description) in METADATA_TYPES.items():
        if key in metadata and not fits(metadata[key]):
            raise CheckpointError(_one_line(f"{path} is malformed: its metadata has {key}="
                                            f"{reprlib.repr(metadata[key])}, not {description}"), _RETRAIN)


def _checked_payload(path: Path, payload) -> dict:
    """The payload if it is a well-formed, undamaged kdlab checkpoint; otherwise CheckpointError."""
    if not isinstance(payload, dict) or not str(payload.get("format", "")).startswith("kdlab-checkpoint/"):
        raise CheckpointError(f"{path} is not a kdlab checkpoint (expected format {FORMAT})", _RETRAIN)
    if payload["format"] != FORMAT:
        raise CheckpointError(f"{path} has the outdated format {payload['format']} (this kdlab writes "
                              f"{FORMAT}, with a SHA-256 of the weights)", _RETRAIN)
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
            raise CheckpointError(f"{path} is malformed: it has {what}", _RETRAIN)
    _check_metadata(path, payload["metadata"])
    try:
        digest = tensors_sha256(state_dict)
    except Exception as error:  # e.g. sparse or meta tensors, which no kdlab model saves
        raise CheckpointError(_one_line(f"{path} is malformed: its tensors cannot be read ({error})"),
                              _RETRAIN) from None
    if digest != payload["sha256"]:
        raise CheckpointError(f"{path} is damaged: its weights do not match their SHA-256", _RETRAIN)
    return payload


def load_checkpoint(path, *, expect_spec: dict | None = None, expect: dict | None = None,
                    map_location="cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode, metadata). `expect_spec` / `expect` (metadata values) must match if given."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}", "train one first (e.g. `python -m kdlab teacher`)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises zip, unpickling and EOF errors for damaged files
        raise CheckpointError(f"{path} is corrupt or not a kdlab checkpoint ({type(error).__name__})",
                              _RETRAIN) from None
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


_CACHE_NAME = re.compile(r"[^.].*-.+-seed[0-9]+(\..*)?")  # cache_path's rule, and the files derived from it


def is_cache_file(path, root) -> bool:
    """True if `path`, in the folder `root` (by any path to it), has a name cache_path could give, or one
    derived from such a name (an interrupted teacher's): a file kdlab may read or replace at any time."""
    path = Path(path)
    return bool(_CACHE_NAME.fullmatch(path.name)) and os.path.realpath(path.parent) == os.path.realpath(root)


_unsaved: contextvars.ContextVar[list | None] = contextvars.ContextVar("kdlab_unsaved", default=None)


@contextlib.contextmanager
def collect_unsaved():
    """`with collect_unsaved() as unsaved:` lists, as "path (reason)", every save report_unsaved reported
    in the block, so a caller can finish its work and still say at the end that something was lost."""
    unsaved: list[str] = []
    token = _unsaved.set(unsaved)
    try:
        yield unsaved
    finally:
        _unsaved.reset(token)


def report_unsaved(path, error: OSError, what: str, *, kept_in_memory: bool = True) -> None:
    """Say in one line, on stderr, that `what` could not be saved to `path` and why; record it for collect_unsaved."""
    reason = _one_line(error.strerror or error)
    then = "; carrying on with it in memory." if kept_in_memory else "."
    print(f"Could not save {what} to {path} ({reason}){then}", file=sys.stderr)
    unsaved = _unsaved.get()
    if unsaved is not None:
        unsaved.append(f"{path} ({reason})")


def load_or_compute(path, read, compute, write, *, what: str = "model", retrain: bool = False):
    """`read(path)` if it can be used, else `compute()`, stored with `write(path, result)`: every cache's recipe.

    A missing file is a silent miss. `read` raises ValueError (CheckpointError is one), OSError,
    TypeError, KeyError or RecursionError saying why a file cannot be used (damaged, malformed, hostile,
    made with other settings); that reason is printed in one line, and the file is rebuilt. A path that
    is not a regular file (a folder, a device, a symbolic link: see _write_atomically) is read if it
    can be, but never rebuilt: ValueError before computing, since nothing could be saved there.
    A write that fails (OSError: a full disk, a read-only mount) is reported by report_unsaved, and the
    result is returned all the same. `retrain` skips the file. A second process that misses the same file
    while the first is building it waits for the first and reads its file (_one_builder_at_a_time).
    """
    path = Path(path)
    if not retrain and path.is_file():
        usable, result = _read_usable(path, read, what)
        if usable:
            return result
    in_the_way = _not_a_regular_file(path)
    if in_the_way:  # nothing could be saved there: say so before the work, not after
        raise ValueError(f"{path} is {in_the_way}, not the {what}'s file; move it away or choose another data root")
    with _one_builder_at_a_time(path, what) as waited:
        if waited and not retrain and path.is_file():  # built by the process this one waited for
            usable, result = _read_usable(path, read, what)
            if usable:
                return result
        result = compute()
        try:
            write(path, result)
        except OSError as error:
            report_unsaved(path, error, f"the {what}")
    return result


def _read_usable(path: Path, read, what: str) -> tuple[bool, object]:
    """(True, read(path)), or (False, None) after saying in one line why the file cannot be used."""
    try:
        return True, read(path)
    except (OSError, ValueError, TypeError, KeyError, RecursionError) as error:
        reason = error.reason if isinstance(error, CheckpointError) else _one_line(error)
        print(f"Not reusing the saved {what}: {reason}; rebuilding it.")
        return False, None


@contextlib.contextmanager
def _one_builder_at_a_time(path: Path, what: str):
    """Hold an flock on `.NAME.lock` beside `path` while building it; yields whether another process held it
    first. Two processes that miss the same cache at once (two notebooks, the test suite's workers) would
    otherwise both train it: the second now waits, saying so, and reads what the first saved. The lock file is
    removed once built; a waiter that finds its lock file gone or replaced takes the new one, so only one builder
    runs at a time. Without flock (Windows) or a writable folder nothing is locked, nor under torchrun, whose
    ranks build together (one waiting for another would leave the rest waiting for it in their first all-reduce)."""
    lock_path = path.with_name(f".{path.name}.lock")
    waited = False
    while fcntl is not None and distributed.world()[1] == 1:
        try:
            handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:  # a read-only folder: nothing can be saved there, so nobody waits for it
            break
        with os.fdopen(handle, "rb") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"Waiting for another process that is building the {what} at {path}.", flush=True)
                fcntl.flock(lock, fcntl.LOCK_EX)
                waited = True
            try:
                held = os.stat(lock_path).st_ino == os.fstat(lock.fileno()).st_ino
            except FileNotFoundError:
                held = False
            if not held:  # its builder finished and removed it while this process waited: lock the new one
                continue
            try:
                yield waited
            finally:
                lock_path.unlink(missing_ok=True)  # while still locked, so no waiter is left holding a stale one
        return
    yield waited


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
                try:
                    save_checkpoint(kept, model, spec, **{**expect, stop.unit: stop.done},
                                    **{f"{stop.unit}_requested": expect.get(stop.unit)}, interrupted=True)
                except OSError as error:
                    report_unsaved(kept, error, f"{what}'s interrupted weights", kept_in_memory=False)
                    kept = None
            where = f"; its weights are in {kept}, which is never loaded automatically" if kept else ""
            raise TrainingInterrupted(f"{what}'s {stop.message}{where}; {path} was left as it was",
                                      history=stop.history, partial=stop.partial) from None
        return model, {**expect, **extra}

    def save(path, trained):
        if write:
            save_checkpoint(path, trained[0], spec, **trained[1])

    return load_or_compute(path, lambda path: load_checkpoint(path, expect_spec=spec, expect=expect), train_new,
                           save, retrain=retrain)
