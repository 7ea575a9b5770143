"""Character language models: train, distill token by token, evaluate, sample, time.

Token-level distillation uses the same `kd_loss` as the image models: every position's
next-character distribution is a soft target. The logits (batch, length, vocab) are flattened to
(batch*length, vocab), so the "batchmean" KL and the cross-entropy average over characters.

The text is cut once into windows of `context + 1` characters on a fixed grid (each window
overlaps the next by one character, so every character after the first has exactly one window
that predicts it; a tail shorter than a window is dropped). Batches are windows drawn at random,
with replacement, from a seeded generator: a baseline and a distilled student
with the same seed see the same batches. Because the windows never move, the teacher's logits
for the whole training text are computed once (`cache_teacher_logits`) and sliced per batch: one
teacher pass over the text replaces one per step, for every student and every seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from kdlab.device import autocast, forward_seconds, one_cpu_thread, pick_device, predict_logits
from kdlab.losses import check_hyperparameters, kd_loss
from kdlab.models import gpt_spec
from kdlab.optim import Adam
from kdlab.progress import TrainingLoop
from kdlab.text import CharCorpus
from kdlab.train import restores_global_rng

__all__ = ["LanguageHistory", "bits_per_character", "cache_teacher_logits", "characters_per_second", "language_specs",
           "next_character_logits", "sample", "text_windows", "train_language_model", "validation_loss"]

# The default language models and their training, sized for 2 CPU cores (see notebook 08 for a GPU setting).
CONTEXT = 64
TEACHER_SIZE = {"width": 96, "depth": 2, "heads": 4}
STUDENT_SIZE = {"width": 48, "depth": 1, "heads": 4}
TEACHER_STEPS = 800
STUDENT_STEPS = 600
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
TEMPERATURE = 1.0  # T and alpha: notebook 08's sweep on text held out from the training text chooses them
ALPHA = 0.9


def language_specs(corpus: CharCorpus, context: int = CONTEXT, teacher_size=None, student_size=None):
    """(teacher_spec, student_spec) for the corpus: GPT-style models of the default sizes unless given."""
    return (gpt_spec(corpus.vocab_size, context, **(teacher_size or TEACHER_SIZE)),
            gpt_spec(corpus.vocab_size, context, **(student_size or STUDENT_SIZE)))


def text_windows(ids: torch.Tensor, context: int) -> torch.Tensor:
    """(windows, context + 1) character ids: inputs are [:, :-1], next-character targets [:, 1:]."""
    if context < 1:
        raise ValueError(f"context must be at least 1 character, got {context}")
    if len(ids) < context + 1:
        raise ValueError(f"the text has {len(ids)} characters, fewer than one window of {context + 1}; "
                         "use a longer text or a smaller context")
    return ids.unfold(0, context + 1, context)


def bits_per_character(nats: float) -> float:
    return nats / math.log(2)


@dataclass
class LanguageHistory:
    """Learning curves: mean training loss and validation cross-entropy (nats/char) at each `step`."""

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    steps_completed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def cache_teacher_logits(teacher: nn.Module, windows: torch.Tensor, *, device=None,
                         batch_size: int = 256) -> torch.Tensor:
    """The teacher's next-character logits for every window, once, stored as float16 to halve the memory."""
    return predict_logits(teacher, windows[:, :-1], device=device, batch_size=batch_size).half()


@torch.no_grad()
def validation_loss(model: nn.Module, windows: torch.Tensor, *, device=None, batch_size: int = 256) -> float:
    """Mean cross-entropy per predicted character, in nats, over all `windows`."""
    device = pick_device(device)
    was_training = model.training
    model.to(device).eval()
    total = torch.zeros((), device=device)
    try:
        with one_cpu_thread(device):
            for start in range(0, len(windows), batch_size):
                batch = windows[start:start + batch_size].to(device)
                with autocast(device):
                    logits = model(batch[:, :-1])
                total += F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten(), reduction="sum")
    finally:
        model.train(was_training)
    return total.item() / windows[:, 1:].numel()


@restores_global_rng
def train_language_model(model: nn.Module, windows: torch.Tensor, validation: torch.Tensor, *, steps: int,
                         batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE, seed: int = 0, device=None,
                         cached_teacher_logits: torch.Tensor | None = None, T: float = TEMPERATURE,
                         alpha: float = ALPHA, evaluations: int = 10, progress: bool = True) -> LanguageHistory:
    """Train `model` in place with Adam for `steps` batches of random training windows.

    On hard labels (next-character cross-entropy), or, given the teacher's logits for the same
    windows (`cache_teacher_logits`), with kd_loss at T and alpha over every position. Validation
    cross-entropy is measured `evaluations` times, evenly spaced. Same seed, same numbers on the CPU.
    Ctrl-C raises TrainingInterrupted (its history says how many steps finished); the model keeps
    the weights it had reached.
    """
    if steps < 1 or batch_size < 1 or evaluations < 1:
        raise ValueError(f"steps, batch_size and evaluations must be at least 1 "
                         f"(got {steps}, {batch_size}, {evaluations})")
    if cached_teacher_logits is not None:
        check_hyperparameters(T, alpha)
        if cached_teacher_logits.shape[:2] != windows[:, :-1].shape:
            raise ValueError(f"teacher logits of shape {tuple(cached_teacher_logits.shape)} do not match "
                             f"{len(windows)} windows of {windows.shape[1] - 1} characters; "
                             "compute them with cache_teacher_logits(teacher, windows)")
    device = pick_device(device)
    torch.manual_seed(seed)  # dropout draws from the global generator
    batches = torch.randint(len(windows), (steps, batch_size), generator=torch.Generator().manual_seed(seed))
    windows = windows.to(device)
    cache = None if cached_teacher_logits is None else cached_teacher_logits.to(device)
    checkpoints = {round(steps * (i + 1) / evaluations) for i in range(evaluations)}
    model.to(device).train()
    optimizer = Adam(model.parameters(), lr=lr)
    history = LanguageHistory()
    loss_sum, losses_summed = torch.zeros((), device=device), 0
    try:
        with TrainingLoop(steps, "steps", "distill" if cache is not None else "train", history=history,
                          progress=progress, device=device) as loop:
            for index in loop:
                step = index + 1
                batch_index = batches[index].to(device)
                batch = windows[batch_index]
                with autocast(device):
                    logits = model(batch[:, :-1])
                if cache is None:
                    loss = F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())
                else:
                    loss = kd_loss(logits, cache[batch_index], batch[:, 1:], T=T, alpha=alpha, check_inputs=False)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                history.steps_completed = step
                loss_sum += loss.detach()
                losses_summed += 1
                if step in checkpoints:
                    history.step.append(step)
                    history.train_loss.append(loss_sum.item() / losses_summed)
                    history.validation_loss.append(validation_loss(model, validation, device=device))
                    loss_sum.zero_()
                    losses_summed = 0
                    loop.show(validation=history.validation_loss[-1])
    finally:
        model.eval()
    return history


@torch.no_grad()
def next_character_logits(model: nn.Module, corpus: CharCorpus, prompt: str, *, device=None) -> torch.Tensor:
    """(vocab,) logits for the character after `prompt` (its last `context` characters are read)."""
    if not prompt:
        raise ValueError("the prompt is empty; type at least one character")
    device = pick_device(device)
    ids = corpus.encode(prompt)[-model.context:].unsqueeze(0).to(device)
    model.to(device).eval()
    return model(ids)[0, -1].float()


@torch.no_grad()
def sample(model: nn.Module, corpus: CharCorpus, prompt: str, length: int = 200, *, seed: int = 0,
           temperature: float = 1.0, device=None) -> str:
    """`length` characters drawn one at a time after `prompt`; the same seed draws the same text."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    generator = torch.Generator().manual_seed(seed)
    text = prompt
    for _ in range(length):
        probabilities = torch.softmax(next_character_logits(model, corpus, text, device=device).cpu() / temperature, -1)
        text += corpus.vocabulary[torch.multinomial(probabilities, 1, generator=generator).item()]
    return text[len(prompt):]


@torch.no_grad()
def characters_per_second(model: nn.Module, windows: torch.Tensor, *, batch_size: int = 64, repeats: int = 5,
                          device=None) -> float:
    """Characters scored per second (one forward pass over a batch of windows): the inference payoff."""
    batch = windows[:batch_size, :-1]
    return batch.numel() / forward_seconds(model, batch, repeats=repeats, device=device)
