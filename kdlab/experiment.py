"""The experiments kdlab runs everywhere: one teacher, then baseline vs distilled students over seeds.

Shared by the CLI and the notebooks so that a number in a notebook and a number printed by
`python -m kdlab distill` come from the same code. Two experiments, built the same way: images
(a teacher trained on a dataset; students on a small transfer set) and text (a character language
model; students distilled token by token). Each comparison is paired: for each seed the two students
share their initial weights and their batches (and, for images, a transfer set each seed draws
afresh), so the interval on the gain includes the luck of the draw. Every cached file is named by
checkpoints.cache_path.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from kdlab import distributed, language
from kdlab.checkpoints import cache_path, load_or_train
from kdlab.comparison import mean_interval, mean_sd, paired_difference, paired_difference_over_examples
from kdlab.data import TensorData, load_dataset
from kdlab.device import pick_device
from kdlab.interrupt import TrainingInterrupted
from kdlab.losses import check_hyperparameters
from kdlab.models import build_model, count_parameters, teacher_spec
from kdlab.text import CharCorpus
from kdlab.train import check_method, evaluate, fit, teacher_answers, train_student

__all__ = ["DKD_STUDENTS", "LANGUAGE_SETTING", "SETTINGS", "VALIDATION_SEED", "LanguageSetting", "Setting",
           "Split", "compare_dkd_with_kd", "compare_language_students", "compare_students", "language_setting",
           "load_data_and_teacher", "load_or_train_language_teacher", "load_or_train_teacher", "setting_for",
           "split_dataset", "teacher_cache_name"]


@dataclass(frozen=True)
class Setting:
    """One image dataset's default experiment: how its teacher is trained and what its students learn from.

    Chosen on a validation split carved from the training data (`python -m kdlab distill
    --validation N`); the test set only reports. See README, "How the defaults were chosen".
    """

    teacher_epochs: int
    teacher_jitter: int  # pixels each training image is moved by, at most (Hinton et al.'s jitter)
    transfer_size: int  # labelled examples each seed draws for its students; 0 = the whole training set
    student: str  # a size in models.STUDENT_SIZES
    epochs: int  # the students' budget
    T: float
    alpha: float
    validation: int  # training images held out for choosing: no teacher or student ever trains on them
    # DKD's beta (decoupled_kd_loss's nckd_weight) at this T and alpha: the best of notebook 11's validation grid
    # (0.5-16, 5 transfer sets; on MNIST its run by benchmarks/mnist_lessons.py); 8.0, mdistiller's CIFAR-100
    # value, where unmeasured
    nckd_weight: float = 8.0


@dataclass(frozen=True)
class LanguageSetting:
    """The language experiment's default: notebook 08's T and alpha, chosen on held-out training text."""

    teacher_steps: int = language.TEACHER_STEPS
    steps: int = language.STUDENT_STEPS  # each student's budget, in batches
    T: float = language.TEMPERATURE
    alpha: float = language.ALPHA


SETTINGS = {
    # 100 labelled digits: the teacher's soft targets stand in for the labels the student lacks. T and alpha:
    # the best cell of notebook 06's validation grid (T 1-16 x alpha 0-1, 10 transfer sets, scored on the 300
    # validation images; sweep.sweep_transfer_sets and sweep.best_cell), where T >= 4 with alpha >= 0.25 is a
    # plateau within about a point.
    "digits": Setting(teacher_epochs=30, teacher_jitter=0, transfer_size=100, student="medium", epochs=150,
                      T=12.0, alpha=1.0, validation=300, nckd_weight=1.0),
    # Real handwriting: a ConvNet teacher trained with jitter, distilled into a 2x100 MLP from 1,000 labels. T and
    # alpha: the best cell of `python benchmarks/choose_T_alpha.py --dataset mnist --data-root COPY --offline`
    # on the 10,000-image fixture (5 transfer sets, scored on its 1,000 validation images; README).
    "mnist": Setting(teacher_epochs=20, teacher_jitter=2, transfer_size=1000, student="medium", epochs=60,
                     T=12.0, alpha=0.9, validation=1000, nckd_weight=2.0),
    # Fashion-MNIST and CIFAR-10 cannot be downloaded here: their settings are unmeasured guesses.
    "fashion-mnist": Setting(teacher_epochs=20, teacher_jitter=2, transfer_size=1000, student="medium", epochs=60,
                             T=4.0, alpha=0.9, validation=5000),
    "cifar10": Setting(teacher_epochs=30, teacher_jitter=0, transfer_size=0, student="medium", epochs=30,
                       T=4.0, alpha=0.9, validation=5000),
}
LANGUAGE_SETTING = LanguageSetting()
VALIDATION_SEED = 12345  # the held-out split never moves with the students' seeds


def setting_for(dataset: str, **overrides) -> Setting:
    """The default experiment for a dataset name (as TensorData.name spells it), with the `overrides`
    that are not None in place of its defaults; T and alpha are checked as kd_loss checks them."""
    if dataset not in SETTINGS:
        raise ValueError(f"no default experiment for {dataset!r}; known: {', '.join(SETTINGS)}")
    return _with_overrides(SETTINGS[dataset], overrides)


def language_setting(**overrides) -> LanguageSetting:
    """LANGUAGE_SETTING with the `overrides` that are not None in place of its defaults, checked."""
    return _with_overrides(LANGUAGE_SETTING, overrides)


def _with_overrides(setting, overrides: dict):
    setting = dataclasses.replace(setting, **{name: value for name, value in overrides.items() if value is not None})
    check_hyperparameters(setting.T, setting.alpha)
    return setting


# The notebooks run on the embedded digits: their defaults, by name.
TEACHER_EPOCHS = SETTINGS["digits"].teacher_epochs
TRANSFER_SIZE = SETTINGS["digits"].transfer_size
STUDENT_SIZE = SETTINGS["digits"].student
STUDENT_EPOCHS = SETTINGS["digits"].epochs
TEMPERATURE = SETTINGS["digits"].T
ALPHA = SETTINGS["digits"].alpha
NCKD_WEIGHT = SETTINGS["digits"].nckd_weight


# ----------------------------------------------------------------------------------------- images

class Split(NamedTuple):
    """One split for everything, made by split_dataset: choices are made on `validation`, which no teacher
    and no student ever trains on; `test` only reports."""

    pool: TensorData  # the teacher's training images, and every transfer set's
    validation: TensorData
    test: TensorData


def split_dataset(train: TensorData, test: TensorData, *, validation: int | None = None) -> Split:
    """The pool, validation and test images of a dataset: `validation` training images (the dataset's
    Setting.validation by default; always the same ones, balanced over the classes) are held out of the pool."""
    size = setting_for(train.name).validation if validation is None else validation
    if not 1 <= size < len(train):
        raise ValueError(f"--validation {size}: hold out between 1 and {len(train) - 1} of {train.name}'s "
                         f"{len(train)} training examples, so that the pool keeps some")
    pool, held_out = train.split(size, seed=VALIDATION_SEED)
    return Split(pool, held_out, test)


def load_data_and_teacher(dataset: str = "digits", root="data", *, offline: bool = False,
                          teacher_epochs: int | None = None, validation: int | None = None, device=None,
                          progress: bool = True) -> tuple[Split, nn.Module, dict]:
    """(split, teacher, teacher_metadata): what every image experiment starts from; the teacher never saw
    split.validation."""
    split = split_dataset(*load_dataset(dataset, root, offline=offline), validation=validation)
    teacher, metadata = load_or_train_teacher(split, root=root, epochs=teacher_epochs, device=device,
                                              progress=progress)
    return split, teacher, metadata


def teacher_cache_name(dataset: str, *, epochs: int, jitter: int, validation: int) -> str:
    """The `name` of a teacher's cache file: the dataset alone for its default Setting (the file the
    notebooks, the grid and committed caches expect), else the dataset and each setting that differs,
    e.g. "digits-epochs1", so a quick run never replaces the real teacher."""
    default = SETTINGS[dataset]
    given = {"epochs": (epochs, default.teacher_epochs), "jitter": (jitter, default.teacher_jitter),
             "validation": (validation, default.validation)}
    return "-".join([dataset, *(f"{name}{value}" for name, (value, usual) in given.items() if value != usual)])


def load_or_train_teacher(split: Split, *, root="data", epochs: int | None = None, jitter: int | None = None,
                          seed: int = 0, device=None, progress: bool = True, retrain: bool = False):
    """The dataset's teacher, trained on split.pool only, from `<root>/teacher-<name>-seed<seed>.pt`, trained
    and saved first if need be.

    Returns (teacher, metadata), whose "accuracy" is on the test images and "validation_accuracy" on the
    held-out ones. `epochs` and `jitter` default to the dataset's Setting; `<name>` is teacher_cache_name's,
    so a teacher trained with other settings has a file of its own and never replaces the default one. A
    checkpoint made for another dataset, model, seed, epoch count, jitter or split (a teacher from before the
    split, trained on every training image, included) is not reused: it is retrained and replaced, with a
    message saying why. Ctrl-C keeps the half-trained teacher in a file of its own (never loaded
    automatically) and raises TrainingInterrupted.
    """
    pool, validation, test = split
    setting = setting_for(pool.name, teacher_epochs=epochs, teacher_jitter=jitter)
    spec = teacher_spec(pool.input_shape, pool.num_classes)
    expected = {"dataset": pool.name, "seed": seed, "epochs": setting.teacher_epochs,
                "jitter": setting.teacher_jitter, "validation": len(validation), "pool": len(pool)}

    def train_teacher(teacher):
        # scored on validation after every epoch only for the progress bar to show: on MNIST a tenth of the time
        fit(teacher, pool, validation if progress else None, epochs=setting.teacher_epochs, seed=seed, device=device,
            progress=progress, jitter_pixels=setting.teacher_jitter)
        return {"accuracy": evaluate(teacher, test, device=device)["accuracy"],
                "validation_accuracy": evaluate(teacher, validation, device=device)["accuracy"]}

    name = teacher_cache_name(pool.name, epochs=setting.teacher_epochs, jitter=setting.teacher_jitter,
                              validation=len(validation))
    teacher, metadata = load_or_train(cache_path(root, "teacher", name, seed=seed), spec, expected,
                                      train_teacher, seed=seed, what="the teacher", retrain=retrain,
                                      write=distributed.is_main_process())
    return teacher.to(pick_device(device)), metadata


def compare_students(teacher, pool: TensorData, test: TensorData, spec: dict, *, transfer_size: int | None = None,
                     seeds=(0, 1, 2, 3, 4), T: float = TEMPERATURE, alpha: float = ALPHA,
                     epochs: int = STUDENT_EPOCHS, device=None, progress: bool = True, scored_on: str = "test images",
                     watch: TensorData | None = None, **options) -> dict:
    """For each seed, a baseline student (hard labels) and a distilled student from the same initial
    weights and batches, trained on a transfer set and scored on `test`.

    Each student's "<name>_history" scores it after every epoch on `watch` (default `test`): one run watched on
    validation images can choose a budget, and its students are then the students of that budget.

    With `transfer_size`, each seed draws its own balanced transfer set of that size from `pool`;
    without it, every seed trains on all of `pool`. Returns {"runs": [per seed], "baseline" and
    "distilled": mean_interval of accuracy, "gain": paired_difference_over_examples (distilled - baseline,
    with a 95 % interval over the seeds and the images scored on, named by `scored_on`, and its verdict; None for a
    single seed), ...}.
    Each run keeps its students' per-example "baseline_correct" / "distilled_correct". Ctrl-C raises TrainingInterrupted
    whose `partial` holds the same summary over the seeds whose two students both finished.
    """
    answers = teacher_answers(teacher, test, device=device)  # what each student's agreement is measured against
    watched = test if watch is None else watch

    def compare_once(seed):
        transfer = pool.subset(transfer_size, seed=seed) if transfer_size else pool
        common = {"epochs": epochs, "seed": seed, "device": device, "progress": progress, **options}
        students = _train_pair({"baseline": lambda: train_student(spec, transfer, watched, **common),
                                "distilled": lambda: train_student(spec, transfer, watched, teacher=teacher, T=T,
                                                                   alpha=alpha, **common)})
        run = {"seed": seed, "transfer_size": len(transfer)}
        for name, (model, history) in students.items():
            run |= _scores_of(name, model, test, answers, device) | {f"{name}_history": history.as_dict()}
        return run

    def summary(runs):
        baseline, distilled = [run["baseline"] for run in runs], [run["distilled"] for run in runs]
        gain = (paired_difference_over_examples([run["baseline_correct"] for run in runs],
                                                [run["distilled_correct"] for run in runs], scored_on=scored_on)
                if len(runs) > 1 else None)
        return {"runs": runs, "baseline": _spread(baseline), "distilled": _spread(distilled), "gain": gain,
                "verdict": gain.verdict if gain else "inconclusive",
                "baseline_loss": _spread(run["baseline_loss"] for run in runs),
                "distilled_loss": _spread(run["distilled_loss"] for run in runs),
                "student_parameters": count_parameters(build_model(spec)),
                "teacher_parameters": count_parameters(teacher)}

    return _paired_over_seeds(seeds, compare_once, summary)


DKD_STUDENTS = ("baseline", "kd", "dkd")  # what compare_dkd_with_kd trains per seed, in this order


def compare_dkd_with_kd(teacher, pool: TensorData, test: TensorData, spec: dict, *, nckd_weight: float = NCKD_WEIGHT,
                        tckd_weight: float = 1.0, transfer_size: int | None = None, seeds=(0, 1, 2, 3, 4),
                        T: float = TEMPERATURE, alpha: float = ALPHA, epochs: int = STUDENT_EPOCHS, device=None,
                        progress: bool = True, scored_on: str = "test images") -> dict:
    """For each seed, three students from the same initial weights and batches on that seed's transfer set (drawn
    as compare_students draws it): a baseline on hard labels, one distilled with kd_loss and one with
    decoupled_kd_loss (DKD) at the same T and alpha, with tckd_weight and nckd_weight (beta); scored on `test`.

    The three train at once (sweep.distill_students, equal to one-at-a-time training within float rounding).
    Returns {"runs": [per seed, with each student's accuracy, loss, agreement and per-example "<name>_correct"],
    "baseline", "kd", "dkd": mean_interval of accuracy, "compared": "dkd - kd", "gain": DKD - KD,
    paired_difference_over_examples (over the seeds and the images scored on, named by `scored_on`; None for a
    single seed), "verdict" (the gain's), "kd_gain" and "dkd_gain": each against the baseline, ...}. Ctrl-C raises
    TrainingInterrupted whose `partial` holds the same summary over the seeds whose students all finished.
    """
    from kdlab.sweep import distill_students  # sweep imports this module's defaults

    check_hyperparameters(T, alpha)
    check_method("dkd", tckd_weight, nckd_weight)
    answers = teacher_answers(teacher, test, device=device)

    def compare_once(seed):
        transfer = pool.subset(transfer_size, seed=seed) if transfer_size else pool
        try:
            students = distill_students(spec, teacher, transfer, seeds=[seed] * 3, temperatures=[T] * 3,
                                        alphas=[0.0, alpha, alpha],
                                        dkd_weights=[None, None, (tckd_weight, nckd_weight)],
                                        epochs=epochs, seed=seed, device=device, progress=progress)
        except TrainingInterrupted as stop:
            raise TrainingInterrupted(f"the baseline, KD and DKD students' {stop.message}") from None
        run = {"seed": seed, "transfer_size": len(transfer)}
        for name, model in zip(DKD_STUDENTS, students):
            run |= _scores_of(name, model, test, answers, device)
        return run

    def summary(runs):
        def gain(control, treated):
            return (paired_difference_over_examples([run[f"{control}_correct"] for run in runs],
                                                    [run[f"{treated}_correct"] for run in runs], scored_on=scored_on)
                    if len(runs) > 1 else None)

        headline = gain("kd", "dkd")
        return {"runs": runs, **{name: _spread(run[name] for run in runs) for name in DKD_STUDENTS},
                **{f"{name}_loss": _spread(run[f"{name}_loss"] for run in runs) for name in DKD_STUDENTS},
                "compared": "dkd - kd", "gain": headline, "verdict": headline.verdict if headline else "inconclusive",
                "kd_gain": gain("baseline", "kd"), "dkd_gain": gain("baseline", "dkd"),
                "tckd_weight": tckd_weight, "nckd_weight": nckd_weight,
                "student_parameters": count_parameters(build_model(spec)),
                "teacher_parameters": count_parameters(teacher)}

    return _paired_over_seeds(seeds, compare_once, summary)


def _scores_of(name: str, model, test: TensorData, teacher_predictions: torch.Tensor, device) -> dict:
    """A student's accuracy, loss and agreement with the teacher's top-1 classes on `test`, and its per-example
    "<name>_correct"."""
    scores = evaluate(model, test, teacher_predictions=teacher_predictions, device=device, per_example=True)
    return {name: scores["accuracy"], f"{name}_loss": scores["loss"], f"{name}_agreement": scores["agreement"],
            f"{name}_correct": scores["correct"]}


# ------------------------------------------------------------------------------------------- text

def load_or_train_language_teacher(corpus: CharCorpus, *, root="data", spec: dict | None = None,
                                   steps: int = LANGUAGE_SETTING.teacher_steps, seed: int = 0, device=None,
                                   progress: bool = True, retrain: bool = False):
    """(teacher, metadata): from `<root>/lm-teacher-<text>-<hash>-seed<seed>.pt`, or trained on the corpus and saved.

    `lm-` keeps text teachers apart from image teachers (digits.txt is not the digits dataset), and
    the corpus hash keeps two texts with the same file name apart. A checkpoint made for another
    text, model, seed or step count is retrained and replaced. Ctrl-C leaves that checkpoint as it
    was, saves the half-trained teacher under a name of its own (never loaded automatically) and
    raises TrainingInterrupted saying where.
    """
    spec = spec or language.language_specs(corpus)[0]
    expected = {"corpus": corpus.name, "fingerprint": corpus.fingerprint, "seed": seed, "steps": steps}
    validation = language.text_windows(corpus.validation, spec["context"])

    def train_teacher(teacher):
        # scored on validation along the way only for the progress bar to show (each pass about half a second of
        # CPU); the last score, after the last step, is the teacher's
        history = language.train_language_model(teacher, language.text_windows(corpus.train, spec["context"]),
                                                validation, steps=steps, seed=seed, device=device,
                                                progress=progress, evaluations=10 if progress else 1)
        return {"validation_loss": history.validation_loss[-1], "seconds": history.seconds,
                "history": history.as_dict()}

    path = cache_path(root, "lm-teacher", f"{corpus.name}-{corpus.fingerprint[:12]}", seed=seed)
    teacher, metadata = load_or_train(path, spec, expected, train_teacher, seed=seed, what="the teacher",
                                      retrain=retrain)
    return teacher.to(pick_device(device)), metadata


def compare_language_students(teacher: nn.Module, corpus: CharCorpus, spec: dict, *, seeds=(0, 1, 2),
                              steps: int = LANGUAGE_SETTING.steps, T: float = LANGUAGE_SETTING.T,
                              alpha: float = LANGUAGE_SETTING.alpha, device=None, progress: bool = True,
                              **options) -> dict:
    """For each seed, a baseline student (next-character labels) and a distilled student (kd_loss
    over every position) from the same initial weights and batches; validation loss in nats/char.

    Returns {"runs", "baseline" and "distilled": mean_sd of the losses, "gain": paired_difference of
    baseline - distilled (a lower loss is better, so "helps" means the distilled student's is lower;
    None for a single seed), "teacher": its loss, ...}. Ctrl-C raises TrainingInterrupted whose
    `partial` is this same summary over the seeds whose two students both finished.
    """
    check_hyperparameters(T, alpha)
    train = language.text_windows(corpus.train, spec["context"])
    validation = language.text_windows(corpus.validation, spec["context"])
    start = time.perf_counter()
    cache = language.cache_teacher_logits(teacher, train, device=device)
    about = {"teacher": language.validation_loss(teacher, validation, device=device),
             "teacher_cache_seconds": time.perf_counter() - start, "teacher_windows": len(train),
             "teacher_parameters": count_parameters(teacher), "student_parameters": count_parameters(build_model(spec))}

    def train_one(seed, **teaching):
        model = build_model(spec, seed=seed)  # both students start from the same weights
        history = language.train_language_model(model, train, validation, steps=steps, seed=seed, device=device,
                                                progress=progress, **teaching, **options)
        return model, history

    def compare_once(seed):
        students = _train_pair({"baseline": lambda: train_one(seed),
                                "distilled": lambda: train_one(seed, cached_teacher_logits=cache, T=T, alpha=alpha)})
        run = {"seed": seed}
        for name, (model, history) in students.items():
            run |= {name: language.validation_loss(model, validation, device=device),
                    f"{name}_history": history.as_dict(), f"{name}_model": model}
        return run

    def summary(runs):
        baseline, distilled = [run["baseline"] for run in runs], [run["distilled"] for run in runs]
        gain = paired_difference(control=distilled, treated=baseline) if len(runs) > 1 else None
        return {"runs": runs, "baseline": mean_sd(baseline), "distilled": mean_sd(distilled), "gain": gain,
                "verdict": gain.verdict if gain else "inconclusive", **about}

    return _paired_over_seeds(seeds, compare_once, summary)


# ------------------------------------------------------------------------------- shared by both

def _train_pair(trainers: dict) -> dict:
    """{name: what trainers[name]() returns}, in order; an interruption says which student it stopped."""
    trained = {}
    for name, train_one in trainers.items():
        try:
            trained[name] = train_one()
        except TrainingInterrupted as stop:
            raise TrainingInterrupted(f"the {name} student's {stop.message}", history=stop.history) from None
    return trained


def _paired_over_seeds(seeds, compare_once, summary) -> dict:
    """summary([compare_once(seed) for seed in seeds]); on Ctrl-C, TrainingInterrupted whose `partial`
    is the summary of the seeds whose two students both finished, with an "interrupted" note (None if
    no seed finished). A Ctrl-C between trainings (while scoring) keeps the finished seeds too."""
    runs = []
    for seed in seeds:
        try:
            runs.append(compare_once(seed))
        except KeyboardInterrupt as stop:
            what = stop.message if isinstance(stop, TrainingInterrupted) else "scoring its students was interrupted"
            message = (f"seed {seed}: {what}; the comparison covers the {len(runs)} seed(s) whose "
                       "students both finished")
            partial = {**summary(runs), "interrupted": message} if runs else None
            raise TrainingInterrupted(message, history=getattr(stop, "history", None), partial=partial) from None
    return summary(runs)


def _spread(values) -> dict:
    values = list(values)
    return mean_interval(values) if len(values) > 1 else {**mean_sd(values), "n": len(values)}
