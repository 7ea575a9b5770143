"""What the explorer shows, loaded or trained once per start: teacher, grid, baseline student, logits.

Kept apart from the widgets so that the page's wiring never trains or caches anything itself,
and so that a test or a benchmark can build the data once and drive many explorers with it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from kdlab import experiment
from kdlab.checkpoints import cache_path, load_or_train
from kdlab.data import TensorData
from kdlab.device import pick_device, predict_logits
from kdlab.interrupt import TrainingInterrupted
from kdlab.models import build_model, student_spec
from kdlab.sweep import GRID_TRANSFER_SETS, Grid, grid_from_cache_or_sweep
from kdlab.train import evaluate, fit

__all__ = ["ExplorerData", "SAY_AFTER_SECONDS", "load_explorer_data", "load_or_train_baseline", "train_with_curve"]

SAY_AFTER_SECONDS = 1.0  # a step still running after this long says what it is doing (a cached one is done by then)

@dataclass
class ExplorerData:
    """Everything the explorer shows, computed once when it starts."""

    test: TensorData  # the test images the example picker chooses from (shown, never scored on to choose)
    validation: TensorData  # what the grid, the baseline's curve and "Train now" are scored on
    teacher_logits: torch.Tensor  # (n, C) on the CPU
    student_logits: torch.Tensor  # (n, C): the baseline student of the default experiment
    grid: Grid
    teacher: nn.Module  # for "Train now"
    transfer: TensorData  # the default experiment's small labelled transfer set
    student_spec: dict
    baseline_curve: list[float]  # the baseline student's validation accuracy after each epoch
    epochs: int
    device: torch.device
    teacher_accuracy: float  # on the validation images, beside the students' curves (no default: 0 would draw)
    seed: int = 0  # picks the transfer set and every student's initial weights and batches


def train_with_curve(spec: dict, transfer: TensorData, scored_on: TensorData, *, teacher: nn.Module | None = None,
                     T: float = experiment.TEMPERATURE, alpha: float = experiment.ALPHA,
                     epochs: int = experiment.STUDENT_EPOCHS, seed: int = 0, device=None, on_epoch=None):
    """(model, curve): a student trained on `transfer` (distilled when a teacher is given) and its accuracy on
    `scored_on` (the explorer's validation images) after each epoch.

    The student is scored by itself after each epoch (the teacher is not re-run on `scored_on`),
    which keeps a curve cheap. `on_epoch(epochs_done)` reports progress. Ctrl-C raises
    TrainingInterrupted with `partial` set to the curve so far (possibly empty).
    """
    model = build_model(spec, seed=seed)
    return model, _train_with_curve(model, transfer, scored_on, teacher=teacher, T=T, alpha=alpha, epochs=epochs,
                                    seed=seed, device=device, on_epoch=on_epoch)


def _train_with_curve(model: nn.Module, transfer: TensorData, test: TensorData, *, teacher, T, alpha, epochs, seed,
                      device, on_epoch=None) -> list[float]:
    curve: list[float] = []

    def record(history):
        curve.append(evaluate(model, test, device=device)["accuracy"])
        if on_epoch is not None:
            on_epoch(len(curve))

    try:  # on the CPU fit trains on one thread, which is what keeps "Train now" at about a second
        fit(model, transfer, None, epochs=epochs, seed=seed, device=device, progress=False,
            teacher=teacher, T=T, alpha=alpha, on_epoch=record)
    except TrainingInterrupted as error:
        error.partial = curve
        raise
    return curve


def load_or_train_baseline(spec: dict, transfer: TensorData, scored_on: TensorData, *, root="data",
                           epochs: int = experiment.STUDENT_EPOCHS, seed: int = 0, device=None):
    """(baseline student, its accuracy curve on `scored_on`), from `<root>/explorer-baseline-<dataset>-seed<seed>.pt`
    or trained on hard labels and saved first, so the page starts without training.

    Ctrl-C raises TrainingInterrupted and saves nothing, so the next start trains it again."""
    expected = {"dataset": transfer.name, "seed": seed, "epochs": epochs, "transfer_size": len(transfer),
                "validation": len(scored_on)}

    def train_baseline(student):
        return {"curve": _train_with_curve(student, transfer, scored_on, teacher=None, T=experiment.TEMPERATURE,
                                           alpha=experiment.ALPHA, epochs=epochs, seed=seed, device=device)}

    path = cache_path(root, "explorer-baseline", transfer.name, seed=seed)
    student, metadata = load_or_train(path, spec, expected, train_baseline, seed=seed,
                                      what="the explorer's baseline", keep_interrupted=False)
    return student.to(pick_device(device)), metadata["curve"]


@contextmanager
def said_if_slow(text: str, enabled: bool = True):
    """Print `text` if the block is still running SAY_AFTER_SECONDS in: a cache hit stays silent, while a first run
    that trains says so from its first second instead of leaving a silent "[*]"."""
    timer = threading.Timer(SAY_AFTER_SECONDS, print, (text,), {"flush": True}) if enabled else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


def load_explorer_data(dataset: str = "digits", root="data", *, epochs: int = experiment.STUDENT_EPOCHS,
                       seed: int = 0, device=None, offline: bool = False, progress: bool = False) -> ExplorerData:
    """The teacher and the grid from `root` (trained and swept first if missing), and a baseline student.

    The example's student is the default experiment's baseline, trained on TRANSFER_SIZE labelled
    examples of the pool with hard labels only (cached in `root` too), so its soft targets differ visibly
    from the teacher's. Each grid cell is the mean of GRID_TRANSFER_SETS students, one per transfer set (seeds
    `seed`, `seed + 1`, ...; the first is the baseline's), so its hatching says what the luck of the draw
    hides, as in notebook 06. Every accuracy it shows is on the validation images, which a reader may tune
    on; the test images are only looked at. With `progress`, training prints its progress, and a step still
    running after SAY_AFTER_SECONDS says what it is doing (a cached step is silent).
    """
    device = pick_device(device)
    with said_if_slow(f"Loading the {dataset} images and their teacher from {root} (a first run trains the teacher "
                      "here, then caches it)...", progress):
        (pool, validation, test), teacher, teacher_metadata = experiment.load_data_and_teacher(
            dataset, root, offline=offline, device=device, progress=progress)
    transfer = pool.subset(experiment.TRANSFER_SIZE, seed=seed)  # the baseline's, Train now's and the grid's first
    grid = grid_from_cache_or_sweep(root, pool, validation, teacher, teacher_metadata, epochs=epochs,
                                    transfer_size=experiment.TRANSFER_SIZE,
                                    seeds=range(seed, seed + GRID_TRANSFER_SETS), device=device, progress=progress)
    spec = student_spec(pool.input_shape, experiment.STUDENT_SIZE, pool.num_classes)
    with said_if_slow(f"Training the baseline student: {len(transfer)} labelled images, hard labels only, {epochs} "
                      "epochs (once, then cached)...", progress):
        student, curve = load_or_train_baseline(spec, transfer, validation, root=root, epochs=epochs, seed=seed,
                                                device=device)
    return ExplorerData(test=test, validation=validation,
                        teacher_logits=predict_logits(teacher, test.inputs, device=device).cpu(),
                        student_logits=predict_logits(student, test.inputs, device=device).cpu(), grid=grid,
                        teacher=teacher, transfer=transfer, student_spec=spec, baseline_curve=curve, epochs=epochs,
                        device=device, seed=seed, teacher_accuracy=teacher_metadata["validation_accuracy"])
