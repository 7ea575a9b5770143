"""A grid of students over temperature T x teacher weight alpha, and its cached accuracies.

Every cell of the grid is one student distilled at its own (T, alpha); the alpha=0 column
ignores the teacher (pure cross-entropy) and is the baseline the other columns are read
against. Cell k (row-major: k = row * len(alphas) + column) starts from
`build_model(spec, seed=seed + k)`, and all students see the same batches (drawn with `seed`),
so a cell equals `distill(build_model(spec, seed + k), teacher, ..., seed=seed)`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdlab import experiment
from kdlab.losses import check_hyperparameters
from kdlab.models import build_model, student_spec
from kdlab.train import distill, evaluate

GRID_TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0)
GRID_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class Grid:
    """Test accuracy of one student per (T, alpha): rows are temperatures, columns alphas."""

    temperatures: tuple[float, ...]
    alphas: tuple[float, ...]
    accuracy: np.ndarray  # (len(temperatures), len(alphas))
    dataset: str
    settings: dict  # epochs, seed, transfer_size, student spec, ...

    def cell(self, T: float, alpha: float) -> tuple[int, int]:
        """(row, column) of the grid cell nearest to (T, alpha); T is compared on a log scale."""
        check_hyperparameters(T, alpha)
        row = int(np.argmin([abs(math.log(T) - math.log(t)) for t in self.temperatures]))
        column = int(np.argmin([abs(alpha - a) for a in self.alphas]))
        return row, column

    def to_json(self) -> dict:
        return {"temperatures": list(self.temperatures), "alphas": list(self.alphas),
                "accuracy": self.accuracy.tolist(), "dataset": self.dataset, "settings": self.settings}

    @classmethod
    def from_json(cls, payload: dict) -> Grid:
        """The Grid `to_json` wrote; ValueError if the payload is not one."""
        try:
            grid = cls(temperatures=tuple(float(t) for t in payload["temperatures"]),
                       alphas=tuple(float(a) for a in payload["alphas"]),
                       accuracy=np.asarray(payload["accuracy"], dtype=float),
                       dataset=str(payload["dataset"]), settings=dict(payload["settings"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a kdlab grid ({type(error).__name__}: {error})") from None
        if grid.accuracy.shape != (len(grid.temperatures), len(grid.alphas)):
            raise ValueError(f"grid accuracy has shape {grid.accuracy.shape}, expected "
                             f"({len(grid.temperatures)}, {len(grid.alphas)})")
        return grid


def sweep(teacher, transfer, test, spec: dict, temperatures=GRID_TEMPERATURES, alphas=GRID_ALPHAS, *,
          epochs: int = experiment.STUDENT_EPOCHS, seed: int = 0, lr: float = 1e-3, batch_size: int = 64, device=None,
          progress: bool = True) -> Grid:
    """Distil one student per (T, alpha) on `transfer` and score each on `test`."""
    temperatures, alphas = _check_axes(temperatures, alphas)
    accuracy = np.zeros((len(temperatures), len(alphas)))
    for row, T in enumerate(temperatures):
        for column, alpha in enumerate(alphas):
            student = build_model(spec, seed=seed + row * len(alphas) + column)
            distill(student, teacher, transfer, None, T=T, alpha=alpha, epochs=epochs, seed=seed, lr=lr,
                    batch_size=batch_size, device=device, progress=progress)
            accuracy[row, column] = evaluate(student, test, device=device)["accuracy"]
    settings = {"epochs": epochs, "seed": seed, "lr": lr, "batch_size": batch_size,
                "transfer_size": len(transfer), "student": spec}
    return Grid(temperatures, alphas, accuracy, transfer.name, settings)


def _check_axes(temperatures, alphas) -> tuple[tuple[float, ...], tuple[float, ...]]:
    temperatures, alphas = tuple(temperatures), tuple(alphas)
    if not temperatures or not alphas:
        raise ValueError("a grid needs at least one temperature and one alpha")
    for T in temperatures:
        for alpha in alphas:
            check_hyperparameters(T, alpha)
    return tuple(float(T) for T in temperatures), tuple(float(a) for a in alphas)


def grid_path(root, dataset: str) -> Path:
    return Path(root) / f"grid-{dataset}.json"


def load_or_run_grid(root="data", *, dataset: str = "digits", temperatures=GRID_TEMPERATURES, alphas=GRID_ALPHAS,
                     epochs: int = experiment.STUDENT_EPOCHS, seed: int = 0, device=None, progress: bool = True,
                     offline: bool = False) -> Grid:
    """The default experiment's grid from `<root>/grid-<dataset>.json`, or swept and saved first.

    A missing or corrupt file, or one made with other settings, is recomputed with a message
    saying why. Students follow kdlab.experiment: STUDENT_SIZE on TRANSFER_SIZE labelled examples.
    """
    temperatures, alphas = _check_axes(temperatures, alphas)
    train, test, teacher, _ = experiment.load_data_and_teacher(dataset, root, offline=offline, device=device,
                                                               progress=progress)
    transfer = train.subset(experiment.TRANSFER_SIZE)
    spec = student_spec(train.input_shape, experiment.STUDENT_SIZE, train.num_classes)
    expected = {"epochs": epochs, "seed": seed, "lr": 1e-3, "batch_size": 64,
                "transfer_size": len(transfer), "student": spec}
    path = grid_path(root, train.name)
    reason = _reason_to_recompute(path, temperatures, alphas, expected)
    if reason is None:
        return Grid.from_json(json.loads(path.read_text()))
    print(f"Sweeping the {len(temperatures)}x{len(alphas)} grid: {reason}.")
    grid = sweep(teacher, transfer, test, spec, temperatures, alphas, epochs=epochs, seed=seed, device=device,
                 progress=progress)
    _write_atomically(path, json.dumps(grid.to_json(), indent=1))
    return grid


def _reason_to_recompute(path: Path, temperatures, alphas, expected: dict) -> str | None:
    """Why the cached grid at `path` cannot be used, or None if it can."""
    if not path.is_file():
        return f"no saved grid at {path}"
    try:
        grid = Grid.from_json(json.loads(path.read_text()))
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        return f"{path} is unreadable or corrupt ({error})"
    if (grid.temperatures, grid.alphas) != (temperatures, alphas):
        return f"{path} holds T={grid.temperatures}, alpha={grid.alphas}"
    for key, value in expected.items():
        if grid.settings.get(key) != value:
            return f"{path} was made with {key}={grid.settings.get(key)!r}, expected {value!r}"
    return None


def _write_atomically(path: Path, text: str) -> None:
    """A temp file beside the target, then a rename: an interrupted write never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
