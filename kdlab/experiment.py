"""The experiment kdlab runs everywhere: one teacher, then baseline vs distilled students over seeds.

Shared by the CLI and the notebooks so that a number in a notebook and a number printed by
`python -m kdlab distill` come from the same code. The comparison is paired: for each seed the
two students share their initial weights, their batches and their transfer set, which each seed
draws afresh, so the interval on the gain includes the luck of the draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kdlab import distributed
from kdlab.checkpoints import load_or_train
from kdlab.comparison import mean_interval, mean_sd, paired_difference
from kdlab.data import TensorData, load_dataset
from kdlab.device import pick_device
from kdlab.interrupt import TrainingInterrupted
from kdlab.models import build_model, count_parameters, teacher_spec
from kdlab.train import distill, evaluate, fit

__all__ = ["SETTINGS", "Setting", "compare_students", "load_data_and_teacher", "load_or_train_teacher",
           "setting_for", "teacher_path"]


@dataclass(frozen=True)
class Setting:
    """One dataset's default experiment: how its teacher is trained and what its students learn from.

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


SETTINGS = {
    # 100 labelled digits: the teacher's soft targets stand in for the labels the student lacks.
    "digits": Setting(teacher_epochs=30, teacher_jitter=0, transfer_size=100, student="medium", epochs=150,
                      T=4.0, alpha=0.9),
    # Real handwriting: a ConvNet teacher trained with jitter, distilled into a 2x100 MLP from 1,000 labels.
    "mnist": Setting(teacher_epochs=20, teacher_jitter=2, transfer_size=1000, student="medium", epochs=60,
                     T=4.0, alpha=0.9),
    # Fashion-MNIST and CIFAR-10 cannot be downloaded here: their settings are unmeasured guesses.
    "fashion-mnist": Setting(teacher_epochs=20, teacher_jitter=2, transfer_size=1000, student="medium", epochs=60,
                             T=4.0, alpha=0.9),
    "cifar10": Setting(teacher_epochs=30, teacher_jitter=0, transfer_size=0, student="medium", epochs=30,
                       T=4.0, alpha=0.9),
}


def setting_for(dataset: str) -> Setting:
    """The default experiment for a dataset name (as TensorData.name spells it)."""
    if dataset not in SETTINGS:
        raise ValueError(f"no default experiment for {dataset!r}; known: {', '.join(SETTINGS)}")
    return SETTINGS[dataset]


# The notebooks run on the embedded digits: their defaults, by name.
TEACHER_EPOCHS = SETTINGS["digits"].teacher_epochs
TRANSFER_SIZE = SETTINGS["digits"].transfer_size
STUDENT_SIZE = SETTINGS["digits"].student
STUDENT_EPOCHS = SETTINGS["digits"].epochs
TEMPERATURE = SETTINGS["digits"].T
ALPHA = SETTINGS["digits"].alpha


def load_data_and_teacher(dataset: str = "digits", root="data", *, offline: bool = False,
                          teacher_epochs: int | None = None, device=None, progress: bool = True):
    """(train, test, teacher, teacher_metadata): what every experiment starts from."""
    train, test = load_dataset(dataset, root, offline=offline)
    teacher, metadata = load_or_train_teacher(train, test, root=root, epochs=teacher_epochs,
                                              device=device, progress=progress)
    return train, test, teacher, metadata


def teacher_path(root, dataset: str, seed: int) -> Path:
    return Path(root) / f"teacher-{dataset}-seed{seed}.pt"


def load_or_train_teacher(train: TensorData, test: TensorData, *, root="data", epochs: int | None = None,
                          jitter: int | None = None, seed: int = 0, device=None, progress: bool = True,
                          retrain: bool = False):
    """The dataset's teacher from its checkpoint under `root`, trained and saved first if need be.

    Returns (teacher, metadata). `epochs` and `jitter` default to the dataset's Setting. A
    checkpoint made for another dataset, model, seed, epoch count or jitter is not reused: it is
    retrained and replaced, with a message saying why. Ctrl-C keeps the half-trained teacher in a
    file of its own (never loaded automatically) and raises TrainingInterrupted.
    """
    setting = setting_for(train.name)
    epochs = setting.teacher_epochs if epochs is None else epochs
    jitter = setting.teacher_jitter if jitter is None else jitter
    spec = teacher_spec(train.input_shape, train.num_classes)
    path = teacher_path(root, train.name, seed)
    expected = {"dataset": train.name, "seed": seed, "epochs": epochs, "jitter": jitter}

    def train_teacher(teacher):
        fit(teacher, train, test, epochs=epochs, seed=seed, device=device, progress=progress, jitter_pixels=jitter)
        return {"accuracy": evaluate(teacher, test, device=device)["accuracy"]}

    teacher, metadata = load_or_train(path, spec, expected, train_teacher, seed=seed, what="the teacher",
                                      retrain=retrain, write=distributed.is_main_process())
    return teacher.to(pick_device(device)), metadata


def compare_students(teacher, pool: TensorData, test: TensorData, spec: dict, *, transfer_size: int | None = None,
                     seeds=(0, 1, 2, 3, 4), T: float = TEMPERATURE, alpha: float = ALPHA,
                     epochs: int = STUDENT_EPOCHS, device=None, progress: bool = True, **options) -> dict:
    """For each seed, a baseline student (hard labels) and a distilled student from the same initial
    weights and batches, trained on a transfer set and scored on `test`.

    With `transfer_size`, each seed draws its own balanced transfer set of that size from `pool`;
    without it, every seed trains on all of `pool`. Returns {"runs": [per seed], "baseline" and
    "distilled": mean_interval of accuracy, "gain": paired_difference (distilled - baseline, with
    its 95 % interval and verdict; None for a single seed), ...}. Ctrl-C raises TrainingInterrupted
    whose `partial` holds the same summary over the seeds whose two students both finished.
    """
    runs = []
    for seed in seeds:
        transfer = pool.subset(transfer_size, seed=seed) if transfer_size else pool
        try:
            runs.append(_compare_once(teacher, transfer, test, spec, seed=seed, T=T, alpha=alpha, epochs=epochs,
                                      device=device, progress=progress, **options))
        except TrainingInterrupted as stop:
            raise TrainingInterrupted(f"seed {seed}: {stop.message}; the comparison covers the {len(runs)} "
                                      "seed(s) whose students both finished", history=stop.history,
                                      partial=_summary(runs, teacher, spec) if runs else None) from None
    return _summary(runs, teacher, spec)


def _compare_once(teacher, transfer, test, spec, *, seed, T, alpha, epochs, device, progress, **options) -> dict:
    baseline, student = build_model(spec, seed=seed), build_model(spec, seed=seed)
    common = {"epochs": epochs, "seed": seed, "device": device, "progress": progress, **options}
    histories = {}
    trainers = {"baseline": lambda: fit(baseline, transfer, test, **common),
                "distilled": lambda: distill(student, teacher, transfer, test, T=T, alpha=alpha, **common)}
    for name, train_one in trainers.items():
        try:
            histories[name] = train_one()
        except TrainingInterrupted as stop:
            raise TrainingInterrupted(f"the {name} student's {stop.message}", history=stop.history) from None
    run = {"seed": seed, "transfer_size": len(transfer)}
    for name, model in (("baseline", baseline), ("distilled", student)):
        scores = evaluate(model, test, teacher=teacher, device=device)
        run |= {name: scores["accuracy"], f"{name}_loss": scores["loss"], f"{name}_agreement": scores["agreement"],
                f"{name}_history": histories[name].as_dict()}
    return run


def _summary(runs: list[dict], teacher, spec: dict) -> dict:
    def spread(values):
        values = list(values)
        return mean_interval(values) if len(values) > 1 else {**mean_sd(values), "n": len(values)}

    baseline, distilled = [run["baseline"] for run in runs], [run["distilled"] for run in runs]
    gain = paired_difference(baseline, distilled) if len(runs) > 1 else None
    return {"runs": runs, "baseline": spread(baseline), "distilled": spread(distilled), "gain": gain,
            "verdict": gain.verdict if gain else "inconclusive",
            "baseline_loss": spread(run["baseline_loss"] for run in runs),
            "distilled_loss": spread(run["distilled_loss"] for run in runs),
            "student_parameters": count_parameters(build_model(spec)),
            "teacher_parameters": count_parameters(teacher)}
