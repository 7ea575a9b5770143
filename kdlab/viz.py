"""The plots the notebooks and the explorer share.

Every function draws onto an Axes (its own, or one passed in) and returns it, or the Figure for
multi-panel plots; none calls plt.show, so a notebook decides when and where a plot appears and a
test can inspect what was drawn. `use_projector_style` makes everything legible from the back row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from kdlab.losses import soft_targets

__all__ = ["class_similarity", "plot_class_similarity", "plot_learning_curves", "plot_soft_targets", "show_digits",
           "use_projector_style"]

PROJECTOR_STYLE = {
    "font.size": 15,
    "axes.titlesize": 17,
    "axes.labelsize": 16,
    "xtick.labelsize": 14,
    "ytick.labelsize": 14,
    "legend.fontsize": 14,
    "figure.titlesize": 18,
    "lines.linewidth": 2.5,
    "figure.figsize": (9, 5),
    "axes.grid": True,
    "grid.alpha": 0.3,
}

_METRIC_LABELS = {
    "train_loss": "training loss",
    "test_loss": "test loss (cross-entropy)",
    "test_accuracy": "test accuracy",
    "agreement": "agreement with the teacher",
}


def use_projector_style() -> None:
    """Large fonts and thick lines for every later plot: slides are read from across a room."""
    plt.rcParams.update(PROJECTOR_STYLE)


def _new_axes(ax):
    return plt.subplots()[1] if ax is None else ax


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values)


def show_digits(images, titles: Sequence[str] | None = None, *, columns: int = 10, size: float = 1.6,
                title: str | None = None):
    """A grid of images (n, H, W), (n, 1, H, W) or (n, 3, H, W), each titled; returns the Figure.

    Each image is rescaled to its own range, so normalised inputs display as they were drawn.
    """
    pictures = _as_numpy(images)
    if pictures.ndim == 4 and pictures.shape[1] in (1, 3):
        pictures = pictures.transpose(0, 2, 3, 1)
        if pictures.shape[-1] == 1:
            pictures = pictures[..., 0]
    if pictures.ndim not in (3, 4) or len(pictures) == 0:
        raise ValueError(f"images must be a non-empty (n, H, W), (n, 1, H, W) or (n, 3, H, W) batch, "
                         f"got shape {tuple(_as_numpy(images).shape)}")
    if titles is not None and len(titles) != len(pictures):
        raise ValueError(f"give one title per image: {len(pictures)} images, {len(titles)} titles")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    columns = min(columns, len(pictures))
    rows = -(-len(pictures) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows * 1.25), squeeze=False,
                                layout="constrained")
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(pictures):
            continue
        picture = pictures[index]
        low, high = picture.min(), picture.max()
        ax.imshow((picture - low) / (high - low if high > low else 1), cmap="gray_r" if picture.ndim == 2 else None)
        if titles is not None:
            ax.set_title(titles[index], fontsize=plt.rcParams["font.size"])
    if title is not None:
        figure.suptitle(title)
    return figure


def plot_soft_targets(logits, temperatures: Sequence[float], classes: Sequence[str], *, ax=None,
                      log_scale: bool = False, title: str | None = None):
    """One example's softmax(logits / T) as grouped bars, one colour per temperature; returns the Axes.

    With log_scale the tiny wrong-class probabilities at T=1 become visible.
    """
    logits = torch.as_tensor(logits).flatten()
    if len(logits) != len(classes):
        raise ValueError(f"one logit per class: got {len(logits)} logits for {len(classes)} classes")
    if len(temperatures) == 0:
        raise ValueError("give at least one temperature")
    ax = _new_axes(ax)
    positions = np.arange(len(classes))
    width = 0.8 / len(temperatures)
    for index, T in enumerate(temperatures):
        probabilities = _as_numpy(soft_targets(logits, T))
        ax.bar(positions + (index - (len(temperatures) - 1) / 2) * width, probabilities, width, label=f"T = {T:g}")
    ax.set_xticks(positions, classes)
    ax.set_xlabel("class")
    ax.set_ylabel("probability")
    if log_scale:
        ax.set_yscale("log")
    ax.set_title(title or "Soft targets: softmax(logits / T)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: the bars fill the whole axes
    return ax


def class_similarity(logits, labels, T: float = 1.0) -> torch.Tensor:
    """(C, C): row i is the average wrong-class distribution of examples of class i at temperature T.

    The true class is removed and each example's remaining probabilities renormalised, so a row
    says which other classes the model thinks class i looks like: the ranking hard labels throw away.
    The diagonal is NaN.
    """
    logits, labels = torch.as_tensor(logits), torch.as_tensor(labels)
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (n, C) with labels (n,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    num_classes = logits.shape[1]
    true_class = torch.nn.functional.one_hot(labels, num_classes).bool()
    # softmax over the other logits: the renormalised wrong classes, without the 0/0 of a confident model
    wrong = soft_targets(logits.float().masked_fill(true_class, float("-inf")), T)
    similarity = torch.full((num_classes, num_classes), float("nan"))
    for label in range(num_classes):
        members = labels == label
        if members.any():
            similarity[label] = wrong[members].mean(dim=0)
    similarity.fill_diagonal_(float("nan"))
    return similarity


def plot_class_similarity(matrix, classes: Sequence[str], *, ax=None, title: str = "Which classes look alike",
                          xlabel: str = "wrong class", ylabel: str = "true class", annotate: bool = True):
    """A (C, C) matrix as a heatmap with its values written in; NaN cells stay blank. Returns the Axes."""
    values = _as_numpy(matrix).astype(float)
    if values.shape != (len(classes), len(classes)):
        raise ValueError(f"matrix must be ({len(classes)}, {len(classes)}) for {len(classes)} classes, "
                         f"got {values.shape}")
    ax = _new_axes(ax)
    image = ax.imshow(values, cmap="viridis")
    ax.figure.colorbar(image, ax=ax)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(False)
    if annotate:
        middle = np.nanmean(values)
        for (row, column), value in np.ndenumerate(values):
            if np.isfinite(value):
                ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize="x-small",
                        color="black" if value > middle else "white")
    return ax


def _metric(history, metric: str) -> np.ndarray:
    values = history[metric] if isinstance(history, Mapping) else getattr(history, metric, None)
    if values is None:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(_METRIC_LABELS)}")
    if len(values) == 0:
        raise ValueError(f"the history has no {metric!r} values: pass test data to fit/distill to record them")
    return np.asarray(values, dtype=float)


def plot_learning_curves(histories: Mapping, metric: str = "test_accuracy", *, ax=None, title: str | None = None):
    """One line per name: a History (or History.as_dict()) per epoch; returns the Axes.

    A name may map to a list of histories (one per seed): their mean is drawn with a band of
    plus or minus one standard deviation, so a difference can be judged against the seed noise.
    """
    if metric not in _METRIC_LABELS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(_METRIC_LABELS)}")
    if not histories:
        raise ValueError("give at least one history, e.g. {'baseline': history}")
    ax = _new_axes(ax)
    for name, history in histories.items():
        runs = history if isinstance(history, (list, tuple)) else [history]
        curves = [_metric(run, metric) for run in runs]
        length = min(len(curve) for curve in curves)  # an interrupted run may be shorter
        curves = np.stack([curve[:length] for curve in curves])
        epochs = np.arange(1, length + 1)
        mean = curves.mean(axis=0)
        (line,) = ax.plot(epochs, mean, label=name if len(curves) == 1 else f"{name} (mean of {len(curves)})")
        if len(curves) > 1:
            spread = curves.std(axis=0, ddof=1)
            ax.fill_between(epochs, mean - spread, mean + spread, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(_METRIC_LABELS[metric])
    ax.set_title(title or f"{_METRIC_LABELS[metric].capitalize()} per epoch")
    ax.legend()
    return ax
