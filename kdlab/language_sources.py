"""How language models are distilled: which way the KL runs, and whose text it is computed on (notebook 12).

Two choices sit under every token-level distillation of a language model:

- the divergence: forward KL(p_teacher || q_student) (`kd_loss`, Hinton et al. 2015), which makes the student
  cover everything the teacher might say, or reverse KL(q_student || p_teacher) (`reverse_kd_loss`; MiniLLM,
  Gu et al. 2024), which lets it keep to what it can say well (mode-seeking). A one-dimensional toy shows the
  difference (`fit_one_mode`): a teacher with two modes, a student with one;
- the data: the teacher's next-token distribution can be computed at every position of *fixed text* (the
  training text), of *the teacher's own samples* (sequence-level KD, Kim & Rush 2016), or of *the student's own
  samples* (on-policy or generalised KD, Agarwal et al. 2024): the student is corrected where it actually goes,
  not only on text it will never write.

Every window starts with PROMPT characters of real text; the loss counts only the positions after them, so the
three sources differ in one thing, the text that follows the prompt. The teacher's samples are drawn once and
cached in the data root (`load_or_sample_teacher_text`); the student's are drawn every `refresh_every` steps, in a
batch (drawing them every step would cost more than training). T = 1 and alpha = 1 throughout: the teacher's
own distribution, no labels (sampled text has none).
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from kdlab.checkpoints import cache_path, load_or_compute, tensors_sha256, write_text_atomically
from kdlab.comparison import mean_sd, paired_difference
from kdlab.device import autocast, one_cpu_thread, pick_device
from kdlab.interrupt import TrainingInterrupted
from kdlab.language import (
    BATCH_SIZE,
    LEARNING_RATE,
    cache_teacher_logits,
    text_windows,
    train_language_model,
    validation_loss,
)
from kdlab.losses import kd_loss, reverse_kd_loss
from kdlab.models import build_model, count_parameters
from kdlab.optim import Adam
from kdlab.progress import TrainingLoop
from kdlab.text import CharCorpus
from kdlab.train import restores_global_rng

__all__ = ["DIVERGENCES", "PROMPT", "SOURCES", "DistillHistory", "compare_divergences", "compare_sources",
           "continue_text", "distill_on_source", "evaluate_student", "evaluation_windows", "fit_one_mode",
           "gaussian_on_grid", "known_word_share", "load_or_sample_teacher_text", "mixed_kl", "paired", "pool_windows",
           "token_divergence"]

PROMPT = 16  # characters of real text that start every window; the loss counts the positions after them
POOL_WINDOWS = 1000  # training windows whose prompts every source starts from (and the teacher continues, once)
POOL_SEED = 2024  # which training windows those are: fixed, so the cached teacher samples stay valid
WARMUP_STEPS = 150  # hard-label steps every student of a seed shares before distilling ("SFT" in GKD)
STEPS = 150  # distillation steps after the warm-up, for every source and divergence
REFRESH_EVERY = 20  # on-policy: the student writes fresh windows every this many steps ...
FRESH_WINDOWS = 64  # ... this many at a time, and the steps in between draw their batches from them
EVALUATION_PROMPTS = 32  # held-out prompts each student continues, for the teacher to score

DIVERGENCES = {"forward": kd_loss, "reverse": reverse_kd_loss}
SOURCES = {"text": "fixed text", "teacher": "the teacher's samples", "student": "the student's own samples"}


# ------------------------------------------------------------------ the toy: two modes, one Gaussian

def gaussian_on_grid(grid: torch.Tensor, mean, sd) -> torch.Tensor:
    """A Gaussian's probabilities on the points of `grid`, normalised to sum to 1 (a distribution over bins)."""
    return torch.softmax(-0.5 * ((grid - mean) / sd) ** 2, dim=-1)


def mixed_kl(p: torch.Tensor, q: torch.Tensor, mix: float) -> torch.Tensor:
    """mix * KL(p || q) + (1 - mix) * KL(q || p) for distributions over the same bins: mix = 1 is forward KL
    (the student q pays wherever the teacher p has mass), mix = 0 reverse KL (q pays only where it has mass)."""
    if not 0 <= mix <= 1:
        raise ValueError(f"mix must lie between 0 (reverse KL) and 1 (forward KL), got {mix!r}")
    p, q = p.clamp_min(1e-30), q.clamp_min(1e-30)  # a bin at exactly 0 contributes 0, not NaN
    forward = (p * (p.log() - q.log())).sum(-1)
    reverse = (q * (q.log() - p.log())).sum(-1)
    return mix * forward + (1 - mix) * reverse


def fit_one_mode(teacher: torch.Tensor, grid: torch.Tensor, mix: float, *, steps: int = 300, lr: float = 0.1,
                 start=(1.0, 0.5)) -> dict:
    """A one-Gaussian student fitted to `teacher` (probabilities on `grid`) by Adam on mixed_kl at `mix`.

    Returns {"mean", "sd", "student": its probabilities, "divergence": the final mixed KL}. `start` (mean, sd) is
    off-centre, so reverse KL has a mode to fall towards; the same start gives the same fit.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if teacher.shape != grid.shape or teacher.dim() != 1:
        raise ValueError(f"teacher and grid must be 1-D and of one shape, got {tuple(teacher.shape)} "
                         f"and {tuple(grid.shape)}")
    mean = torch.tensor(float(start[0]), dtype=torch.float64, requires_grad=True)
    log_sd = torch.tensor(math.log(start[1]), dtype=torch.float64, requires_grad=True)
    teacher, grid = teacher.double(), grid.double()
    optimizer = Adam([mean, log_sd], lr=lr)
    for _ in range(steps):
        loss = mixed_kl(teacher, gaussian_on_grid(grid, mean, log_sd.exp()), mix)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        student = gaussian_on_grid(grid, mean, log_sd.exp())
        return {"mean": mean.item(), "sd": log_sd.exp().item(), "student": student,
                "divergence": mixed_kl(teacher, student, mix).item()}


# ------------------------------------------------------------------ text from a model

@torch.no_grad()
def continue_text(model: nn.Module, prompts: torch.Tensor, length: int, *, seed: int = 0, temperature: float = 1.0,
                  device=None, batch_size: int = 512) -> torch.Tensor:
    """(N, P + length) character ids: each of the N prompts (N, P) followed by `length` characters the model
    draws one at a time (reading its last `context` characters; while the text fits the context, each character
    is read once, its keys and values cached). Batched; the same seed and batch_size draw the same text."""
    if prompts.dim() != 2 or prompts.shape[1] < 1:
        raise ValueError(f"prompts must be (N, P) character ids with P >= 1, got shape {tuple(prompts.shape)}")
    if length < 0:
        raise ValueError(f"length must be 0 or more characters, got {length}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    device = pick_device(device)
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same draws on any device
    was_training = model.training
    model.to(device).eval()
    texts = []
    try:
        with one_cpu_thread(device):
            for start in range(0, len(prompts), batch_size):
                ids = prompts[start:start + batch_size].to(device)
                cache = []  # keys and values of the characters read so far
                for _ in range(length):
                    with autocast(device):
                        if ids.shape[1] <= model.context:
                            logits = model(ids[:, -1:] if cache else ids, cache=cache)[:, -1]
                        else:  # the window slides, so every position moves: read it whole
                            logits = model(ids[:, -model.context:])[:, -1]
                    probabilities = torch.softmax(logits.float().cpu() / temperature, dim=-1)
                    drawn = torch.multinomial(probabilities, 1, generator=generator)
                    ids = torch.cat([ids, drawn.to(device)], dim=1)
                texts.append(ids.cpu())
    finally:
        model.train(was_training)
    return torch.cat(texts) if texts else prompts.new_zeros((0, prompts.shape[1] + length))


@torch.no_grad()
def _nll_per_character(model: nn.Module, windows: torch.Tensor, start: int, device) -> torch.Tensor:
    """(N,) mean negative log-likelihood, in nats, of each window's characters from position `start` on."""
    model.to(device).eval()
    with one_cpu_thread(device):
        logits = model(windows[:, :-1].to(device)).float()
        nll = F.cross_entropy(logits.transpose(1, 2), windows[:, 1:].to(device), reduction="none")
    return nll[:, start - 1:].mean(dim=1).cpu()


def pool_windows(corpus: CharCorpus, context: int, size: int | None = None, seed: int = POOL_SEED) -> torch.Tensor:
    """`size` training windows of context + 1 characters (default: POOL_WINDOWS, or all of a shorter text),
    drawn once (by `seed`) from the training text."""
    windows = text_windows(corpus.train, context)
    size = min(POOL_WINDOWS, len(windows)) if size is None else size
    if not 1 <= size <= len(windows):
        raise ValueError(f"the pool needs between 1 and {len(windows)} windows, got {size}")
    return windows[torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))[:size]]


def load_or_sample_teacher_text(teacher: nn.Module, corpus: CharCorpus, pool: torch.Tensor, *, root="data",
                                prompt: int = PROMPT, seed: int = 0, device=None,
                                retrain: bool = False) -> torch.Tensor:
    """The teacher's continuation of each pool window's first `prompt` characters, as windows of the pool's shape.

    Drawn once and cached in `root` as text (`lm-teacher-samples-<text>-<hash>-seed<seed>.json`). The cache is
    used only if it was drawn by these very teacher weights from these very prompts; otherwise it is redrawn.
    """
    _check_prompt(prompt, pool.shape[1])
    prompts = pool[:, :prompt]
    about = {"teacher_sha256": tensors_sha256(teacher.state_dict()), "prompt": prompt, "seed": seed,
             "length": pool.shape[1], "prompts": [corpus.decode(row) for row in prompts]}
    Path(root).mkdir(parents=True, exist_ok=True)
    path = cache_path(root, "lm-teacher-samples", f"{corpus.name}-{corpus.fingerprint[:12]}", seed=seed,
                      suffix=".json")

    def read(path):
        stored = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(stored, dict):
            raise ValueError("it is not a JSON object")
        for key, value in about.items():
            if stored.get(key) != value:
                raise ValueError(f"it was drawn with another {key}")
        windows = stored.get("windows")
        if not isinstance(windows, list) or len(windows) != len(pool) or \
                any(not isinstance(text, str) or len(text) != pool.shape[1] for text in windows):
            raise ValueError(f"it does not hold {len(pool)} windows of {pool.shape[1]} characters")
        return torch.stack([corpus.encode(text) for text in windows])

    def draw():
        return continue_text(teacher, prompts, pool.shape[1] - prompt, seed=seed, device=device)

    def write(path, windows):
        write_text_atomically(path, json.dumps({**about, "windows": [corpus.decode(row) for row in windows]}))

    return load_or_compute(path, read, draw, write, what="teacher's samples", retrain=retrain)


# ------------------------------------------------------------------ distilling on a source

def token_divergence(student_logits, teacher_logits, labels, divergence: str, *, check_inputs: bool = True):
    """The per-token KL, forward (kd_loss) or reverse (reverse_kd_loss), at T = 1 and alpha = 1 (no labels'
    term: `labels` are only checked), averaged over every (window, position)."""
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {', '.join(DIVERGENCES)}, got {divergence!r}")
    return DIVERGENCES[divergence](student_logits, teacher_logits, labels, T=1.0, alpha=1.0,
                                   check_inputs=check_inputs)


def _check_prompt(prompt: int, width: int) -> None:
    if not 1 <= prompt < width - 1:
        raise ValueError(f"the prompt must leave characters to distill: 1 <= prompt < {width - 1}, got {prompt}")


@dataclass
class DistillHistory:
    """Mean distillation loss over each tenth of the steps, and where the time went."""

    train_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    sampling_seconds: float = 0.0  # the student writing its own windows (on-policy only)
    interrupted: bool = False
    steps_completed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@restores_global_rng
def distill_on_source(model: nn.Module, teacher: nn.Module, pool: torch.Tensor, *, source: str = "text",
                      divergence: str = "forward", steps: int = STEPS, seed: int = 0, prompt: int = PROMPT,
                      pool_teacher_logits: torch.Tensor | None = None, batch_size: int = BATCH_SIZE,
                      lr: float = LEARNING_RATE, refresh_every: int = REFRESH_EVERY,
                      fresh_windows: int = FRESH_WINDOWS, device=None, progress: bool = False) -> DistillHistory:
    """Distil `teacher` into `model` in place, with Adam, on the positions after each window's `prompt`.

    source "text" or "teacher": batches of `pool` windows (real text, or the teacher's samples from
    load_or_sample_teacher_text), drawn at random by `seed`, with the teacher's logits for them
    (`pool_teacher_logits`, computed here if not given). source "student": every `refresh_every` steps the model
    continues `fresh_windows` prompts drawn from the pool, the teacher scores those windows, and the steps until
    the next refresh draw their batches from them. The same seed gives the same batches of pool indices for
    "text" and "teacher", so their students are paired window for window. Ctrl-C raises TrainingInterrupted.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {', '.join(DIVERGENCES)}, got {divergence!r}")
    if min(steps, batch_size, refresh_every, fresh_windows) < 1:
        raise ValueError(f"steps, batch_size, refresh_every and fresh_windows must be at least 1 "
                         f"(got {steps}, {batch_size}, {refresh_every}, {fresh_windows})")
    _check_prompt(prompt, pool.shape[1])
    if pool.shape[1] - 1 > model.context:
        raise ValueError(f"windows of {pool.shape[1]} characters do not fit a context of {model.context}")
    device = pick_device(device)
    generator = torch.Generator().manual_seed(seed)
    if source != "student" and pool_teacher_logits is None:
        pool_teacher_logits = cache_teacher_logits(teacher, pool, device=device)
    if pool_teacher_logits is not None and pool_teacher_logits.shape[:2] != pool[:, :-1].shape:
        raise ValueError(f"teacher logits of shape {tuple(pool_teacher_logits.shape)} do not match the pool's "
                         f"{len(pool)} windows of {pool.shape[1] - 1} characters")
    windows, logits = pool, pool_teacher_logits
    model.to(device).train()
    optimizer = Adam(model.parameters(), lr=lr)
    history = DistillHistory()
    tenths = {round(steps * (i + 1) / 10) for i in range(10)}
    loss_sum, losses_summed = 0.0, 0
    try:
        with TrainingLoop(steps, "steps", f"{source}/{divergence}", history=history, progress=progress,
                          device=device) as loop:
            for index in loop:
                if source == "student" and index % refresh_every == 0:
                    started = time.perf_counter()
                    prompts = pool[torch.randint(len(pool), (fresh_windows,), generator=generator), :prompt]
                    windows = continue_text(model, prompts, pool.shape[1] - prompt,
                                            seed=int(torch.randint(2**31 - 1, (), generator=generator)), device=device)
                    logits = cache_teacher_logits(teacher, windows, device=device)
                    history.sampling_seconds += time.perf_counter() - started
                    model.train()
                chosen = torch.randint(len(windows), (batch_size,), generator=generator)
                batch = windows[chosen].to(device)
                with autocast(device):
                    student_logits = model(batch[:, :-1])
                loss = token_divergence(student_logits[:, prompt - 1:], logits[chosen].to(device)[:, prompt - 1:],
                                        batch[:, prompt:], divergence, check_inputs=False)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                history.steps_completed = index + 1
                loss_sum, losses_summed = loss_sum + loss.item(), losses_summed + 1
                if index + 1 in tenths:
                    history.train_loss.append(loss_sum / losses_summed)
                    loss_sum, losses_summed = 0.0, 0
    finally:
        model.eval()
    return history


# ------------------------------------------------------------------ scoring a student

_WORD = re.compile(r"[A-Za-z]{2,}")


def known_word_share(texts, known_words) -> float:
    """Of the words (runs of two or more letters) in `texts`, the share found in `known_words`; NaN if none."""
    words = [word for text in texts for word in _WORD.findall(text)]
    return sum(word in known_words for word in words) / len(words) if words else math.nan


def evaluate_student(model: nn.Module, teacher: nn.Module, corpus: CharCorpus, validation: torch.Tensor,
                     prompts: torch.Tensor, *, known_words=None, seed: int = 0, device=None) -> dict:
    """How a student does on held-out text, and what it writes there.

    {"validation_loss": cross-entropy on the `validation` windows (nats/char, every position); "teacher_nll":
    the teacher's mean negative log-likelihood of the model's continuations of `prompts` (how likely the teacher
    finds what the student writes); "own_nll": the model's own, an estimate of its entropy per character (how
    varied it writes); "known_words": the share of its words found in `known_words`, if given; "samples": the
    continuations as text, and "sample_teacher_nll" each one's teacher_nll}. The prompts come from held-out
    text; the windows are context + 1 characters long.
    """
    device = pick_device(device)
    width = validation.shape[1]
    prompt = prompts.shape[1]
    _check_prompt(prompt, width)
    windows = continue_text(model, prompts, width - prompt, seed=seed, device=device)
    samples = [corpus.decode(row[prompt:]) for row in windows]
    teacher_nll = _nll_per_character(teacher, windows, prompt, device)
    result = {"validation_loss": validation_loss(model, validation, device=device),
              "teacher_nll": teacher_nll.mean().item(),
              "own_nll": _nll_per_character(model, windows, prompt, device).mean().item(),
              "samples": samples, "sample_teacher_nll": teacher_nll.tolist()}
    if known_words is not None:
        result["known_words"] = known_word_share(samples, known_words)
    return result


# ------------------------------------------------------------------ paired comparisons over seeds

def evaluation_windows(corpus: CharCorpus, context: int, count: int | None = None, seed: int = 0) -> torch.Tensor:
    """`count` validation windows (default: EVALUATION_PROMPTS, or all of a shorter text), drawn by `seed`: their
    starts are the prompts every model continues, the rest is what the held-out text really says."""
    windows = text_windows(corpus.validation, context)
    count = min(EVALUATION_PROMPTS, len(windows)) if count is None else count
    if not 1 <= count <= len(windows):
        raise ValueError(f"between 1 and {len(windows)} evaluation prompts, got {count}")
    return windows[torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))[:count]]


def compare_sources(teacher: nn.Module, corpus: CharCorpus, spec: dict, students: dict, *, seeds=(0, 1, 2, 3, 4),
                    warmup_steps: int = WARMUP_STEPS, steps: int = STEPS, pool: torch.Tensor | None = None,
                    teacher_text: torch.Tensor | None = None, prompt: int = PROMPT,
                    evaluation_count: int | None = None, device=None, progress: bool = False,
                    **options) -> dict:
    """For each seed, one student warmed up on hard labels, then copied once per entry of `students`
    ({name: (source, divergence)}) and distilled that way for `steps`; each scored by evaluate_student.

    Per seed the copies share the warm-up, and draw the same batch indices; each seed uses its own random half
    of the `pool` (default pool_windows) for the "text" and "teacher" sources (the same half for both), so
    the seeds vary initial weights, batches, that half and the students' own samples. `teacher_text` (pool
    windows continued by the teacher) is needed only for a "teacher" source. Returns {"runs": [{"seed",
    "warmup": validation loss after the warm-up, name: evaluate_student(...) | {"history", "model"}, ...}],
    "teacher": evaluate_student of the teacher itself, "prompts" and "held_out": the held-out prompts and what the
    text says after them, "seconds": {name: training seconds summed over seeds}, ...}.
    """
    if not students:
        raise ValueError("name at least one student: {name: (source, divergence)}")
    for name, (source, divergence) in students.items():
        if source not in SOURCES or divergence not in DIVERGENCES:
            raise ValueError(f"student {name!r}: source must be one of {', '.join(SOURCES)} and divergence one of "
                             f"{', '.join(DIVERGENCES)}, got {(source, divergence)!r}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be 0 or more, got {warmup_steps}")
    device = pick_device(device)
    context = spec["context"]
    pool = pool_windows(corpus, context) if pool is None else pool
    needs_teacher_text = any(source == "teacher" for source, _ in students.values())
    if needs_teacher_text and (teacher_text is None or teacher_text.shape != pool.shape):
        raise ValueError("a 'teacher' source needs teacher_text: the pool's windows continued by the teacher "
                         "(load_or_sample_teacher_text)")
    train, validation = text_windows(corpus.train, context), text_windows(corpus.validation, context)
    held_out = evaluation_windows(corpus, context, evaluation_count)
    prompts = held_out[:, :prompt]
    known_words = set(_WORD.findall(corpus.decode(corpus.train)))
    started = time.perf_counter()
    cached = {"text": cache_teacher_logits(teacher, pool, device=device)}
    if needs_teacher_text:
        cached["teacher"] = cache_teacher_logits(teacher, teacher_text, device=device)
    data = {"text": pool, "teacher": teacher_text, "student": pool}
    teacher_scores = evaluate_student(teacher, teacher, corpus, validation, prompts, known_words=known_words,
                                      device=device)
    about = {"teacher": teacher_scores, "teacher_cache_seconds": time.perf_counter() - started,
             "prompts": [corpus.decode(row) for row in prompts],
             "held_out": [corpus.decode(row[prompt:]) for row in held_out],
             "teacher_parameters": count_parameters(teacher), "student_parameters": count_parameters(build_model(spec)),
             "students": dict(students), "seconds": dict.fromkeys(students, 0.0),
             "sampling_seconds": dict.fromkeys(students, 0.0)}
    runs = []
    for seed in seeds:
        try:
            warm = build_model(spec, seed=seed)
            if warmup_steps:
                train_language_model(warm, train, validation[:1], steps=warmup_steps, seed=seed, device=device,
                                     evaluations=1, progress=progress)
            run = {"seed": seed, "warmup": validation_loss(warm, validation, device=device)}
            half = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:max(1, len(pool) // 2)]
            for name, (source, divergence) in students.items():
                model = copy.deepcopy(warm)
                history = distill_on_source(
                    model, teacher, data[source][half], source=source, divergence=divergence, steps=steps, seed=seed,
                    prompt=prompt, pool_teacher_logits=None if source == "student" else cached[source][half],
                    device=device, progress=progress, **options)
                about["seconds"][name] += history.seconds
                about["sampling_seconds"][name] += history.sampling_seconds
                run[name] = {**evaluate_student(model, teacher, corpus, validation, prompts, known_words=known_words,
                                                seed=seed, device=device),
                             "history": history.as_dict(), "model": model}
            runs.append(run)
        except KeyboardInterrupt as stop:
            message = (f"seed {seed}: {getattr(stop, 'message', 'interrupted')}; the comparison covers the "
                       f"{len(runs)} seed(s) whose students all finished")
            raise TrainingInterrupted(message, history=getattr(stop, "history", None),
                                      partial={"runs": runs, **about, "interrupted": message} if runs else None) \
                from None
    return {"runs": runs, **about}


def paired(results: dict, control: str, treated: str, metric: str = "validation_loss"):
    """paired_difference of `metric`, treated - control, over the seeds of compare_sources' results; for a loss
    (lower is better) "helps" means `treated` is lower."""
    values = {name: [run[name][metric] for run in results["runs"]] for name in (control, treated)}
    return paired_difference(values[control], values[treated], higher_is_better=False)


def compare_divergences(teacher: nn.Module, corpus: CharCorpus, spec: dict, *, divergence: str = "reverse",
                        seeds=(0, 1, 2, 3, 4), warmup_steps: int = WARMUP_STEPS, steps: int = STEPS, device=None,
                        progress: bool = False, **options) -> dict:
    """Forward KL (kd_loss) against `divergence` on fixed text, paired over seeds: notebook 12's headline.

    Each seed's two students share a warm-up on hard labels, then distil on the same windows of the training
    text at T = 1, alpha = 1, one with forward and one with `divergence` KL. Returns, like
    experiment.compare_language_students, {"runs": [{"seed", "forward", divergence: validation loss}], "forward"
    and divergence: mean_sd, "gain": paired_difference of forward - divergence (a loss: "helps" means the
    `divergence` student's validation loss is lower; None for one seed), "verdict", "teacher": its loss, ...}.
    `options` go to compare_sources (pool, prompt, evaluation_count, batch_size, lr). Ctrl-C raises
    TrainingInterrupted whose `partial` is this same summary over the seeds that finished (None if none did).
    """
    if divergence == "forward" or divergence not in DIVERGENCES:
        raise ValueError(f"compare forward KL with another divergence: "
                         f"{', '.join(d for d in DIVERGENCES if d != 'forward')}; got {divergence!r}")
    students = {"forward": ("text", "forward"), divergence: ("text", divergence)}
    try:
        results = compare_sources(teacher, corpus, spec, students, seeds=seeds, warmup_steps=warmup_steps,
                                  steps=steps, device=device, progress=progress, **options)
    except TrainingInterrupted as stop:  # the seeds that finished, summarised as a whole run would be
        partial = stop.partial and {**_divergence_summary(stop.partial, divergence, steps, warmup_steps),
                                    "interrupted": stop.message}
        raise TrainingInterrupted(stop.message, history=stop.history, partial=partial) from None
    return _divergence_summary(results, divergence, steps, warmup_steps)


def _divergence_summary(results: dict, divergence: str, steps: int, warmup_steps: int) -> dict:
    losses = {name: [run[name]["validation_loss"] for run in results["runs"]] for name in ("forward", divergence)}
    gain = paired_difference(control=losses[divergence], treated=losses["forward"]) if len(results["runs"]) > 1 \
        else None
    return {"runs": [{"seed": run["seed"], **{name: run[name]["validation_loss"] for name in losses}}
                     for run in results["runs"]],
            **{name: mean_sd(values) for name, values in losses.items()}, "gain": gain,
            "verdict": gain.verdict if gain else "inconclusive", "divergence": divergence,
            "teacher": results["teacher"]["validation_loss"], "teacher_parameters": results["teacher_parameters"],
            "student_parameters": results["student_parameters"], "steps": steps, "warmup_steps": warmup_steps}
