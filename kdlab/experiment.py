"""The experiment kdlab runs everywhere: one teacher, then baseline vs distilled students over seeds.

Shared by the CLI and the notebooks so that a number in a notebook and a number printed by
`python -m kdlab distill` come from the same code.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from kdlab import distributed
from kdlab.checkpoints import reuse_checkpoint, save_checkpoint
from kdlab.data import TensorData, load_dataset
from kdlab.models import build_model, count_parameters, teacher_spec
from kdlab.train import distill, evaluate, fit, pick_device


# The default experiment (CLI, notebooks, explorer): a student learning from a small labelled
# transfer set, where the teacher's soft targets stand in for labels the student does not have.
TEACHER_EPOCHS = 30
TRANSFER_SIZE = 100
STUDENT_SIZE = "medium"
STUDENT_EPOCHS = 150
TEMPERATURE = 4.0
ALPHA = 0.9


def load_data_and_teacher(dataset: str = "digits", root="data", *, offline: bool = False,
                          teacher_epochs: int = TEACHER_EPOCHS, device=None, progress: bool = True):
    """(train, test, teacher, teacher_metadata): what every experiment starts from."""
    train, test = load_dataset(dataset, root, offline=offline)
    teacher, metadata = load_or_train_teacher(train, test, root=root, epochs=teacher_epochs,
                                              device=device, progress=progress)
    return train, test, teacher, metadata


def teacher_path(root, dataset: str, seed: int) -> Path:
    return Path(root) / f"teacher-{dataset}-seed{seed}.pt"


def load_or_train_teacher(train: TensorData, test: TensorData, *, root="data", epochs: int = TEACHER_EPOCHS,
                          seed: int = 0, device=None, progress: bool = True, retrain: bool = False):
    """The dataset's teacher from its checkpoint under `root`, trained and saved first if need be.

    Returns (teacher, metadata). A checkpoint made for another dataset, model, seed or epoch
    count is not reused: it is retrained and replaced, with a message saying why.
    """
    spec = teacher_spec(train.input_shape, train.num_classes)
    path = teacher_path(root, train.name, seed)
    expected = {"dataset": train.name, "seed": seed, "epochs": epochs}
    saved = None if retrain else reuse_checkpoint(path, expect_spec=spec, expect=expected)
    if saved:
        teacher, metadata = saved
        return teacher.to(pick_device(device)), metadata
    teacher = build_model(spec, seed=seed)
    history = fit(teacher, train, test, epochs=epochs, seed=seed, device=device, progress=progress)
    scores = evaluate(teacher, test, device=device)
    metadata = {**expected, "accuracy": scores["accuracy"], "interrupted": history.interrupted}
    if history.interrupted:
        print("The teacher was interrupted, so it is used but not saved.")
    elif distributed.world()[0] == 0:  # under torchrun every rank holds the same weights; one writes them
        save_checkpoint(path, teacher, spec, **metadata)
    return teacher, metadata


def compare_students(teacher, transfer: TensorData, test: TensorData, spec: dict, *, seeds=(0, 1, 2),
                     T: float = TEMPERATURE, alpha: float = ALPHA, epochs: int = STUDENT_EPOCHS, device=None,
                     progress: bool = True, **options) -> dict:
    """For each seed, a baseline student (hard labels) and a distilled student from the same
    initial weights, trained on `transfer` and scored on `test`.

    Returns {"runs": [per-seed dicts], "baseline": {mean, sd}, "distilled": {mean, sd}, ...}.
    """
    runs = []
    for seed in seeds:
        baseline = build_model(spec, seed=seed)
        student = build_model(spec, seed=seed)
        baseline_history = fit(baseline, transfer, test, epochs=epochs, seed=seed, device=device,
                               progress=progress, **options)
        distilled_history = distill(student, teacher, transfer, test, T=T, alpha=alpha, epochs=epochs,
                                    seed=seed, device=device, progress=progress, **options)
        baseline_scores = evaluate(baseline, test, teacher=teacher, device=device)
        distilled_scores = evaluate(student, test, teacher=teacher, device=device)
        runs.append({"seed": seed,
                     "baseline": baseline_scores["accuracy"], "distilled": distilled_scores["accuracy"],
                     "baseline_agreement": baseline_scores["agreement"],
                     "distilled_agreement": distilled_scores["agreement"],
                     "baseline_history": baseline_history.as_dict(),
                     "distilled_history": distilled_history.as_dict()})
        if baseline_history.interrupted or distilled_history.interrupted:
            break
    return {"runs": runs,
            "baseline": mean_sd([run["baseline"] for run in runs]),
            "distilled": mean_sd([run["distilled"] for run in runs]),
            "student_parameters": count_parameters(build_model(spec)),
            "teacher_parameters": count_parameters(teacher)}


def mean_sd(values) -> dict:
    """Mean and sample standard deviation (0 for a single value)."""
    values = list(values)
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}
