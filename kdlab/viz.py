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
import torch.nn.functional as F
from matplotlib.patches import Rectangle

from kdlab.losses import soft_targets

__all__ = ["class_similarity", "mean_soft_targets", "plot_class_similarity", "plot_heatmap", "plot_learning_curves",
           "plot_soft_targets", "show_digits", "use_projector_style"]

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


def _logits_and_labels(logits, labels) -> tuple[torch.Tensor, torch.Tensor]:
    logits, labels = torch.as_tensor(logits), torch.as_tensor(labels)
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (n, C) with labels (n,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    return logits.float(), labels.long()


def mean_soft_targets(logits, labels, T: float = 1.0) -> torch.Tensor:
    """(C, C): row i is softmax(logits / T) averaged over the examples of class i; NaN for a class without any.

    What a teacher teaches about class i on average: the soft targets its examples carry.
    """
    logits, labels = _logits_and_labels(logits, labels)
    members = F.one_hot(labels, logits.shape[1]).float()  # (n, C): which class each example belongs to
    return members.T @ soft_targets(logits, T) / members.sum(dim=0)[:, None]  # 0 / 0 = NaN for an absent class


def class_similarity(logits, labels, T: float = 1.0) -> torch.Tensor:
    """(C, C): row i is the average wrong-class distribution of examples of class i at temperature T.

    The true class is removed and each example's remaining probabilities renormalised, so a row
    says which other classes the model thinks class i looks like: the ranking hard labels throw away.
    The diagonal is NaN.
    """
    logits, labels = _logits_and_labels(logits, labels)
    true_class = F.one_hot(labels, logits.shape[1]).bool()
    # softmax over the other logits: the renormalised wrong classes, without the 0/0 of a confident model
    similarity = mean_soft_targets(logits.masked_fill(true_class, float("-inf")), labels, T)
    return similarity.fill_diagonal_(float("nan"))


def plot_heatmap(values, rows: Sequence[str], columns: Sequence[str], *, ax=None, title: str | None = None,
                 xlabel: str | None = None, ylabel: str | None = None, fmt: str | None = "{:.2f}", labels=None,
                 hatched=None, highlight: tuple[int, int] | None = None, colorbar: bool = True,
                 colorbar_label: str | None = None, cmap: str = "viridis", vmin: float | None = None,
                 vmax: float | None = None):
    """An (R, C) matrix as coloured cells with their values written in; returns the Axes.

    The project's one heatmap (class similarity, notebook grids, the explorer's static view), so
    every matrix reads the same way. Each finite value is written in its cell, in black or white by
    the cell's luminance; `labels`, (R, C) strings, replaces the formatted values (e.g. "0.934*"),
    and fmt=None with no labels writes nothing. NaN cells stay blank. Cells where the (R, C) boolean
    mask `hatched` is true are hatched; `highlight` = (row, column) is outlined in red. Values beyond
    vmin or vmax take the end colours: capping vmax keeps one large value from washing out the rest.
    """
    matrix = _as_numpy(values).astype(float)
    shape = (len(rows), len(columns))
    if matrix.shape != shape:
        raise ValueError(f"values must be {shape} for {len(rows)} rows and {len(columns)} columns, got {matrix.shape}")
    for name, given in (("labels", labels), ("hatched", hatched)):
        if given is not None and np.shape(given) != shape:
            raise ValueError(f"{name} must be {shape} like the values, got {np.shape(given)}")
    ax = _new_axes(ax)
    image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=colorbar_label)
    cells = image.cmap(image.norm(matrix))  # (R, C, 4): the colour each cell is drawn in
    for (row, column), value in np.ndenumerate(matrix):
        if np.isfinite(value) and (labels is not None or fmt is not None):
            text = fmt.format(value) if labels is None else labels[row][column]
            ax.text(column, row, text, ha="center", va="center", fontsize="small",
                    color="black" if cells[row, column, :3] @ (0.299, 0.587, 0.114) > 0.5 else "white")
        if hatched is not None and hatched[row][column]:
            ax.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, hatch="//", edgecolor="white",
                                   linewidth=0, alpha=0.5))
    if highlight is not None:
        row, column = highlight
        ax.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=3))
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set(**{name: words for name, words in (("title", title), ("xlabel", xlabel), ("ylabel", ylabel)) if words})
    ax.grid(False)
    return ax


def plot_class_similarity(matrix, classes: Sequence[str], *, ax=None, title: str = "Which classes look alike",
                          xlabel: str = "wrong class", ylabel: str = "true class", annotate: bool = True):
    """A (C, C) matrix as a heatmap with its values written in; NaN cells stay blank. Returns the Axes."""
    return plot_heatmap(matrix, classes, classes, ax=ax, title=title, xlabel=xlabel, ylabel=ylabel,
                        fmt="{:.2f}" if annotate else None)


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
