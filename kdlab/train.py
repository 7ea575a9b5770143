"""Training: a teacher or a baseline student on hard labels, a student distilled from a teacher.

Design choices that make the comparison fair and the loop fast:
- `fit` and `distill` share one loop; a baseline and a distilled student built with the same
  seed (`build_model(spec, seed)`) start from identical weights and see the same batches.
- The teacher runs once, in eval mode under no_grad, over the whole training set; its logits
  are cached and sliced alongside the batches (the inputs are not augmented, so they never change).
- Small data lives on the device (see `kdlab.data.make_loader`); the step loop never calls
  `.item()`, so nothing waits on the host until the epoch ends.
- On CUDA the forward pass runs under bfloat16 autocast (the loss in float32), CNNs in channels_last;
  `compile=True` adds torch.compile. Under torchrun, training is data-parallel (kdlab.distributed).
- Ctrl-C stops training at once: the model keeps the weights it reached, and TrainingInterrupted
  (a KeyboardInterrupt carrying the history) stops whatever would have used it next.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from kdlab import distributed
from kdlab.data import TensorData, jitter, make_loader
from kdlab.device import autocast, pick_device, predict_logits
from kdlab.losses import check_hyperparameters, decoupled_kd_loss, kd_loss
from kdlab.models import build_model
from kdlab.optim import Adam
from kdlab.progress import TrainingLoop

__all__ = ["METHODS", "History", "check_method", "distill", "evaluate", "fit", "teacher_answers", "train_student"]

METHODS = ("kd", "dkd")  # how a distilled student learns from its teacher: kd_loss, or decoupled_kd_loss


@dataclass
class History:
    """Per-epoch numbers for learning curves. `interrupted` is True after a Ctrl-C."""

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate(model: nn.Module, data: TensorData, *, teacher: nn.Module | None = None,
             teacher_predictions: torch.Tensor | None = None, device=None, per_example: bool = False) -> dict:
    """Accuracy and cross-entropy on `data`; with a teacher, how often the top-1 classes agree; with
    `per_example`, "correct": 1/0 per example, what an interval over the test images needs.

    `teacher_predictions`, the teacher's top-1 classes on `data` (`teacher_answers`), stand in for `teacher`
    where many students are scored against one teacher: its forward pass then runs once, not once a student."""
    device = pick_device(device)
    if teacher is not None and teacher_predictions is not None:
        raise ValueError("give the teacher or its predictions, not both")
    if teacher is not None:
        teacher_predictions = teacher_answers(teacher, data, device=device)
    return _scores(model, data, teacher_predictions, device, per_example)


def teacher_answers(teacher: nn.Module, data: TensorData, *, device=None) -> torch.Tensor:
    """The teacher's top-1 class for every example of `data`, on `device`."""
    return predict_logits(teacher, data.inputs, device=pick_device(device)).argmax(dim=1)


def _scores(model: nn.Module, data: TensorData, teacher_predictions: torch.Tensor | None, device,
            per_example: bool = False) -> dict:
    logits = predict_logits(model, data.inputs, device=device)
    labels = data.labels.to(device)
    predictions = logits.argmax(dim=1)
    correct = predictions == labels
    result = {"accuracy": correct.float().mean().item(), "loss": F.cross_entropy(logits, labels).item()}
    if per_example:
        result["correct"] = correct.int().tolist()
    if teacher_predictions is not None:
        result["agreement"] = (predictions == teacher_predictions).float().mean().item()
    return result


def restores_global_rng(train_function):
    """Training seeds torch's global generator (dropout draws from it); give the caller's random
    stream back afterwards, so the code after a training call is not silently fixed by its seed."""
    @functools.wraps(train_function)
    def train_and_restore(*args, **kwargs):
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            return train_function(*args, **kwargs)
    return train_and_restore


@restores_global_rng
def fit(model: nn.Module, train: TensorData, test: TensorData | None = None, *, epochs: int = 20,
        lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
        device=None, progress: bool = True, teacher: nn.Module | None = None,
        T: float = 4.0, alpha: float = 0.9, on_epoch: Callable[[History], None] | None = None,
        compile: bool = False, jitter_pixels: int = 0, label_smoothing: float = 0.0, method: str = "kd",
        tckd_weight: float = 1.0, nckd_weight: float = 8.0) -> History:
    """Train `model` in place with Adam on hard labels; with `teacher`, distill instead: kd_loss at T, alpha, or
    with method="dkd" decoupled_kd_loss at T, alpha, tckd_weight and nckd_weight (notebook 11).

    Returns the per-epoch history. The same seed gives identical numbers on the CPU. `on_epoch`,
    if given, is called with the history after every epoch (a progress bar, a live curve).
    `compile=True` runs the training forward pass through torch.compile (worth it for long runs
    on a GPU; the first epoch pays for the compilation). `jitter_pixels` moves each training image
    by up to that many pixels every time it is seen (teachers only: a distilled student's cached
    teacher logits belong to the unshifted images). `label_smoothing` (hard labels only) moves that much
    of each target's probability evenly onto all classes: the control that asks whether a teacher
    teaches more than softer labels would. Under torchrun the model trains with
    DistributedDataParallel, each process taking a share of every batch (see kdlab.distributed).
    """
    _check_fit_options(epochs, batch_size, teacher is not None, T, alpha, jitter_pixels, label_smoothing)
    check_method(method, tckd_weight, nckd_weight, distilling=teacher is not None)
    device = distributed.join(pick_device(device))
    rank, _ = distributed.world()
    torch.manual_seed(seed + rank)  # dropout draws from the global generator
    channels_last = _wants_channels_last(model, device)
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format).train()
    cached_logits, teacher_test_predictions = _teacher_targets(teacher, train, test, device)
    loader = make_loader(train, batch_size, shuffle=True, device=device, seed=seed, extras=cached_logits)
    shift_generator = torch.Generator(device=device).manual_seed(seed + rank)
    optimizer = Adam(model.parameters(), lr=lr)
    trained = distributed.wrap(model, device)
    trained = torch.compile(trained) if compile else trained

    def prepare(inputs):
        inputs = jitter(inputs, jitter_pixels, shift_generator)
        return inputs.contiguous(memory_format=torch.channels_last) if channels_last else inputs

    def loss_of(logits, labels, cached):
        if not len(labels):  # a rank with no examples in a short last batch still takes part
            return logits.float().sum()
        if cached and method == "dkd":
            return decoupled_kd_loss(logits, cached[0], labels, T=T, alpha=alpha, tckd_weight=tckd_weight,
                                     nckd_weight=nckd_weight, check_inputs=False)
        if cached:
            return kd_loss(logits, cached[0], labels, T=T, alpha=alpha, check_inputs=False)
        return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)

    history = History()
    try:
        with TrainingLoop(epochs, "epochs", "distill" if teacher is not None else "fit", history=history,
                          progress=progress and rank == 0, device=device) as loop:
            for _ in loop:
                loss_sum = _fit_epoch(trained, loader, optimizer, prepare, loss_of, device)
                history.train_loss.append(distributed.total(loss_sum).item() / len(train))
                if test is not None:
                    scores = _scores(model, test, teacher_test_predictions, device)
                    history.test_loss.append(scores["loss"])
                    history.test_accuracy.append(scores["accuracy"])
                    if teacher is not None:
                        history.agreement.append(scores["agreement"])
                    loop.show(loss=history.train_loss[-1], acc=scores["accuracy"])
                if on_epoch is not None:
                    on_epoch(history)
    finally:
        model.eval()
    return history


def _check_fit_options(epochs, batch_size, distilling: bool, T, alpha, jitter_pixels, label_smoothing) -> None:
    """Refuse bad options before any work, saying what to pass instead."""
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1 (got epochs={epochs}, batch_size={batch_size})")
    if distilling:
        check_hyperparameters(T, alpha)
        if jitter_pixels:
            raise ValueError("jitter_pixels is for training on labels: the cached teacher logits belong to the "
                             "unshifted images; distill with jitter_pixels=0")
        if label_smoothing:
            raise ValueError("label_smoothing is for training on labels; a distilled student's soft targets "
                             "come from its teacher, so distill with label_smoothing=0")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
    if jitter_pixels < 0:
        raise ValueError(f"jitter_pixels must be 0 or more, got {jitter_pixels}")


def check_method(method: str, tckd_weight: float = 1.0, nckd_weight: float = 8.0, *, distilling: bool = True) -> None:
    """Refuse an unknown method, DKD without a teacher, or a DKD weight that is not a finite number >= 0."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "dkd" and not distilling:
        raise ValueError('method="dkd" distills from a teacher; pass teacher=..., or train on labels with method="kd"')
    for name, weight in (("tckd_weight", tckd_weight), ("nckd_weight", nckd_weight)):
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < math.inf:
            raise ValueError(f"{name} must be a finite number >= 0, got {weight!r}")


def _teacher_targets(teacher, train: TensorData, test: TensorData | None, device):
    """The teacher's logits on the training set (computed once, sliced with every batch) and its top-1
    predictions on the test set (for agreement); empty and None without a teacher."""
    if teacher is None:
        return (), None
    teacher.to(device)
    train_logits = predict_logits(teacher, train.inputs, device=device)
    test_predictions = None if test is None else teacher_answers(teacher, test, device=device)
    return (train_logits,), test_predictions


def _fit_epoch(trained, loader, optimizer, prepare, loss_of, device) -> torch.Tensor:
    """One pass over the batches; the summed training loss stays on the device (no host sync per step)."""
    loss_sum = torch.zeros((), device=device)
    for batch in loader:
        (inputs, labels, *cached), share = distributed.shard(batch)
        with autocast(device):
            logits = trained(prepare(inputs))
        loss = loss_of(logits, labels, cached)
        optimizer.zero_grad()
        (loss * share).backward()
        optimizer.step()
        loss_sum += loss.detach() * len(labels)
    return loss_sum


def _wants_channels_last(model: nn.Module, device: torch.device) -> bool:
    """channels_last for convolutional nets on CUDA, where cuDNN's fastest (tensor-core) kernels want it."""
    return device.type == "cuda" and any(isinstance(module, nn.Conv2d) for module in model.modules())


def distill(student: nn.Module, teacher: nn.Module, train: TensorData, test: TensorData | None = None, *,
            T: float = 4.0, alpha: float = 0.9, **options) -> History:
    """Train `student` on the teacher's soft targets at temperature T plus the hard labels, weighted by alpha."""
    return fit(student, train, test, teacher=teacher, T=T, alpha=alpha, **options)


def train_student(spec: dict, train: TensorData, test: TensorData | None = None, *, teacher: nn.Module | None = None,
                  seed: int = 0, **options) -> tuple[nn.Module, History]:
    """(student, history): a new network built from `spec` with `seed`, trained by `fit` on hard labels,
    or distilled from `teacher` (T, alpha and the method among the options). Two calls with the same spec and seed
    start from the same weights and see the same batches: a paired comparison."""
    student = build_model(spec, seed=seed)
    return student, fit(student, train, test, teacher=teacher, seed=seed, **options)
