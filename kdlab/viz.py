"""The plots the notebooks and the explorer share, readable by everyone in the room.

Every function draws onto an Axes (its own, or one passed in) and returns it, or the Figure for
multi-panel plots; none calls plt.show, so a test can inspect what was drawn. A notebook shows a
figure with `show(figure, alt=...)`, which gives it alt text every reader of the notebook gets.
`use_projector_style` makes everything legible from the back row and safe for colour-blind eyes:
matplotlib's tableau-colorblind10 colours, each line with its own dash, and viridis for matrices.
Matrices, per-seed curves and per-seed gains are drawn by seaborn.

JupyterLab shrinks an image to its cell's width (about CELL_WIDTH_PX at 1440x900 with the file browser open), so
`show` records, beside the alt text, the smallest font the figure was drawn with in pixels at the PNG's natural size
(`smallest_font_px`), and warns when that text would show under MIN_TEXT_PX in such a cell. A table is shown with
`show_table`: an HTML table, which JupyterLab scrolls in its own box instead of wrapping a printed line mid-number.
"""

from __future__ import annotations

import base64
import html
import io
import re
import warnings
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from cycler import cycler
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from kdlab.losses import soft_targets

__all__ = ["COLOURS", "DASHES", "HATCHES", "LINE_STYLES", "class_similarity", "figure_bundle", "mean_soft_targets",
           "plot_class_similarity", "plot_heatmap", "plot_learning_curves", "plot_paired_gains", "plot_soft_targets",
           "show", "show_digits", "show_table", "smallest_font_px", "table_bundle", "use_projector_style"]

# Tableau's colour-blind-safe ten (matplotlib's "tableau-colorblind10" style). Colour alone never carries a
# meaning: lines also differ in dash, and bars in hatching, in the same order.
COLOURS = plt.style.library["tableau-colorblind10"]["axes.prop_cycle"].by_key()["color"]
DASHES = ["", (4, 1.5), (1, 1), (3, 1.25, 1.5, 1.25), (5, 1, 1, 1), (8, 2), (2, 2, 6, 2), (1, 3), (6, 1, 1, 1, 1, 1),
          (3, 3)]  # on/off lengths, as seaborn takes them; "" is solid
LINE_STYLES = ["-" if not dash else (0, dash) for dash in DASHES]  # the same, as matplotlib takes them
HATCHES = ["", "//", "..", "xx", "\\\\", "oo", "++", "--", "||", "**"]

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
    "axes.prop_cycle": cycler(color=COLOURS) + cycler(linestyle=LINE_STYLES),
    "patch.facecolor": COLOURS[0],
    "image.cmap": "viridis",
}

# What a class must read, on screen, and the width JupyterLab 4 gives an output at 1440x900 with the file browser
# open (measured in Chromium: 1000 pixels; 1092 on a 1280x720 projector with the file browser collapsed).
MIN_TEXT_PX = 11
CELL_WIDTH_PX = 1000

_METRIC_LABELS = {
    "train_loss": "training loss",
    "test_loss": "test loss (cross-entropy)",
    "test_accuracy": "test accuracy",
    "agreement": "agreement with the teacher",
}


def use_projector_style() -> None:
    """Large fonts, thick lines and colour-blind-safe colours for every later plot: slides are read from
    across a room, by everyone in it."""
    plt.rcParams.update(PROJECTOR_STYLE)


def figure_bundle(png: bytes, alt: str, smallest_font_px: float | None = None) -> tuple[dict, dict]:
    """A PNG as a display bundle and its metadata, with `alt` where each reader of a notebook looks for it.

    JupyterLab (4.6) and nbconvert's default HTML template ignore alt metadata on image/png, but prefer
    text/html, which Jupyter Book and mkdocs-jupyter also render: so the bundle carries the picture as an
    <img alt=...> there. image/png stays for what takes no HTML (LaTeX/PDF export, GitHub), its metadata
    holding the alt as IPython.display.Image writes it (read by nbconvert's classic template), and
    text/plain is the alt text itself, for a terminal or a screen reader reading the text outputs.
    `smallest_font_px`, the smallest text in pixels at the PNG's natural size, joins the alt in the metadata,
    where a layout test reads it to work out how large that text shows once JupyterLab has scaled the image.
    """
    if not alt or not alt.strip():
        raise ValueError("give alt text that says what the figure shows: a reader who cannot see it gets only that")
    encoded = base64.b64encode(png).decode("ascii")
    picture = f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt.strip(), quote=True)}"/>'
    metadata = {"alt": alt.strip()}
    if smallest_font_px is not None:
        metadata["smallest_font_px"] = round(float(smallest_font_px), 1)
    return ({"image/png": encoded, "text/html": picture, "text/plain": alt.strip()}, {"image/png": metadata})


def smallest_font_px(figure, dpi: float | None = None) -> float | None:
    """The smallest font of any text the figure draws (titles, axis labels, tick labels, legends, values written in
    cells), in pixels at `dpi` (the figure's own by default): points x dpi / 72. None for a figure without text."""
    figure = figure.figure
    figure.draw_without_rendering()  # tick labels get their text when drawn
    hidden = set()  # texts that are not drawn: those of hidden axes, and the axis labels of an Axes turned off
    for ax in figure.axes:
        for part in (ax,) if not ax.get_visible() else [axis for axis in (ax.xaxis, ax.yaxis)
                                                       if not ax.axison or not axis.get_visible()]:
            hidden.update(map(id, part.findobj(Text)))
    sizes = [text.get_fontsize() for text in figure.findobj(Text)
             if text.get_visible() and text.get_text().strip() and id(text) not in hidden]
    return min(sizes) * (figure.dpi if dpi is None else dpi) / 72 if sizes else None


def show(figure, alt: str) -> None:
    """Display a Figure (or an Axes' figure) in the notebook with its alt text, then close it, so the
    inline backend does not show it a second time without one.

    Records the smallest font in pixels at the PNG's natural size in the output's metadata, and warns when
    JupyterLab, scaling the picture to a CELL_WIDTH_PX-pixel cell, would show that text under MIN_TEXT_PX.
    """
    from IPython.display import display  # only a notebook needs IPython

    figure = figure.figure  # an Axes' figure; a Figure's is itself
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", dpi=figure.dpi)  # as the inline backend draws it
    png = buffer.getvalue()
    smallest = smallest_font_px(figure)
    width = int.from_bytes(png[16:20], "big")  # the IHDR chunk's width
    if smallest is not None and smallest * min(1.0, CELL_WIDTH_PX / width) < MIN_TEXT_PX:
        warnings.warn(f"this figure's smallest text ({smallest:.1f} px in a {width}-pixel image) shows at "
                      f"{smallest * CELL_WIDTH_PX / width:.1f} px in a {CELL_WIDTH_PX}-pixel JupyterLab cell, under "
                      f"{MIN_TEXT_PX} px: narrow the figure or enlarge its smallest font", stacklevel=2)
    data, metadata = figure_bundle(png, alt, smallest)
    display(data, raw=True, metadata=metadata)
    plt.close(figure)


# Two numbers joined by "to" (an interval, "+0.75 to +3.25"), or a number and the word after it: kept on one line.
_UNBREAKABLE = re.compile(r"([+\-−]?\d[\d.,]*%?) (to [+\-−]?\d[\d.,]*%?|points\b|nats\b|images\b|seeds\b)")


# Rows as close as printed lines (a slide holds a table and a figure), the caption over the first column; specific
# enough to win over reveal.js' table padding. Pixels, not ems: no decimal here can be read as a number the notebook
# printed. Front ends that strip <style> (JupyterLab, for an untrusted notebook) keep their own spacing.
_TABLE_STYLE = ("<style>table.dataframe.kdlab-table td, table.dataframe.kdlab-table th {padding: 0 8px;} "
                "table.dataframe.kdlab-table caption {text-align: left;}</style>\n")


def table_bundle(frame: pd.DataFrame | pd.Series, caption: str | None = None, *,
                 formatters: Mapping[str, Callable] | None = None, float_format: Callable | None = None,
                 na_rep: str = "NaN", index: bool = True) -> dict:
    """A table as a display bundle: text/html for JupyterLab, nbconvert and static sites, text/plain (the caption
    on its own line, then the table as DataFrame.to_string prints it) for a terminal and every text-only reader.

    Both are formatted by pandas from the same `formatters` (column name -> function), `float_format` and
    `na_rep` (what a missing value reads as), so the numbers are written alike in each. In the HTML an interval
    ("+0.75 to +3.25") or a number and its unit ("+4.20 points") never breaks across lines; a wide table scrolls
    in its own box instead.
    """
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"show a pandas DataFrame (or Series) as a table, got {type(frame).__name__}")
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise ValueError(f"the table is empty ({frame.shape[0]} rows, {frame.shape[1]} columns): nothing to show")
    unknown = sorted(map(str, set(formatters or {}) - set(frame.columns)))
    if unknown:
        raise ValueError(f"formatters for columns the table does not have: {unknown}; "
                         f"its columns are {[str(column) for column in frame.columns]}")
    options = {"formatters": dict(formatters) if formatters else None, "float_format": float_format,
               "na_rep": na_rep, "index": index}
    text = frame.to_string(**options)
    table = frame.to_html(**options, border=0, classes="kdlab-table")

    def unbreakable(cell: re.Match) -> str:
        return _UNBREAKABLE.sub(lambda pair: f"{pair[1]}\u00a0{pair[2].replace(' ', chr(0xA0))}", cell[0])

    table = re.sub(r"<td>[^<]*</td>", unbreakable, table)
    if caption:
        table = table.replace(">", f">\n  <caption>{html.escape(caption)}</caption>", 1)  # after <table ...>
        text = f"{caption}\n{text}"
    return {"text/html": _TABLE_STYLE + table, "text/plain": text}


def show_table(frame: pd.DataFrame | pd.Series, caption: str | None = None, *,
               formatters: Mapping[str, Callable] | None = None, float_format: Callable | None = None,
               na_rep: str = "NaN", index: bool = True) -> None:
    """Display a DataFrame as a table in the notebook, instead of printing DataFrame.to_string.

    JupyterLab wraps a printed line wider than its cell, so a printed table breaks mid-number; an HTML table
    keeps its rows and scrolls. `caption` goes above it; `formatters`, `float_format` and `na_rep` are pandas'
    (as in to_string), so the numbers read as they printed. See `table_bundle` for what each reader gets.
    """
    from IPython.display import display  # only a notebook needs IPython

    display(table_bundle(frame, caption, formatters=formatters, float_format=float_format, na_rep=na_rep,
                         index=index), raw=True)


def _new_axes(ax):
    return plt.subplots()[1] if ax is None else ax


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values)


def show_digits(images, titles: Sequence[str] | None = None, *, columns: int = 10, size: float = 1.35,
                title: str | None = None):
    """A grid of images (n, H, W), (n, 1, H, W) or (n, 3, H, W), each titled; returns the Figure.

    Each image is rescaled to its own range, so normalised inputs display as they were drawn. `size`
    inches per image: ten in a row stay under 14 inches, so a projector does not shrink their titles.
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
    """One example's softmax(logits / T) as grouped bars, one colour and hatching per temperature; returns
    the Axes.

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
        ax.bar(positions + (index - (len(temperatures) - 1) / 2) * width, probabilities, width, label=f"T = {T:g}",
               hatch=HATCHES[index % len(HATCHES)], edgecolor="white", linewidth=0)
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
    every matrix reads the same way. seaborn.heatmap draws it: each finite value written in its cell,
    dark or light by the cell's luminance, NaN cells blank, a colour bar. `labels`, (R, C) strings,
    replaces the formatted values (e.g. "0.934*"), and fmt=None with no labels writes nothing. On top:
    cells where the (R, C) boolean mask `hatched` is true are hatched, so a mark never rests on colour
    alone, and `highlight` = (row, column) is outlined in red. Values beyond vmin or vmax take the end
    colours: capping vmax keeps one large value from washing out the rest. Keep to viridis or cividis:
    perceptually uniform, they read alike in greyscale and to colour-blind eyes.
    """
    matrix = _as_numpy(values).astype(float)
    shape = (len(rows), len(columns))
    if matrix.shape != shape:
        raise ValueError(f"values must be {shape} for {len(rows)} rows and {len(columns)} columns, got {matrix.shape}")
    for name, given in (("labels", labels), ("hatched", hatched)):
        if given is not None and np.shape(given) != shape:
            raise ValueError(f"{name} must be {shape} like the values, got {np.shape(given)}")
    if labels is None and fmt is not None:
        labels = [[fmt.format(value) for value in row] for row in matrix]
    import seaborn as sns  # here, not at the top: it costs a kernel or a page 0.6 s to import, often for nothing

    ax = sns.heatmap(matrix, ax=_new_axes(ax), cmap=cmap, vmin=vmin, vmax=vmax, cbar=colorbar,
                     cbar_kws={"label": colorbar_label}, xticklabels=list(columns), yticklabels=list(rows),
                     annot=False if labels is None else np.asarray(labels, dtype=object), fmt="",
                     annot_kws={"fontsize": "small"})
    if hatched is not None:
        for row, column in zip(*np.nonzero(np.asarray(hatched, bool))):
            ax.add_patch(Rectangle((column, row), 1, 1, fill=False, hatch="//", edgecolor="white", linewidth=0,
                                   alpha=0.5))
    if highlight is not None:
        row, column = highlight
        ax.add_patch(Rectangle((column, row), 1, 1, fill=False, edgecolor="red", linewidth=3))
    ax.tick_params(axis="y", labelrotation=0)  # seaborn stands row names on end; level, they read faster
    ax.set(**{name: words for name, words in (("title", title), ("xlabel", xlabel), ("ylabel", ylabel)) if words})
    ax.grid(False)  # the projector style's grid would cross every cell
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
    """One line per name, each in its own colour and dash: a History (or History.as_dict()) per epoch;
    returns the Axes.

    A name may map to a list of histories (one per seed): seaborn draws their mean with a band of
    plus or minus one standard deviation, so a difference can be judged against the seed noise.
    """
    if metric not in _METRIC_LABELS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(_METRIC_LABELS)}")
    if not histories:
        raise ValueError("give at least one history, e.g. {'baseline': history}")
    runs = []
    for name, history in histories.items():
        seeds = history if isinstance(history, (list, tuple)) else [history]
        curves = [_metric(seed, metric) for seed in seeds]
        length = min(len(curve) for curve in curves)  # an interrupted run may be shorter
        label = name if len(curves) == 1 else f"{name} (mean of {len(curves)})"
        runs += [pd.DataFrame({"epoch": np.arange(1, length + 1), metric: curve[:length], "run": label})
                 for curve in curves]
    styles = range(len(histories))
    import seaborn as sns

    ax = sns.lineplot(pd.concat(runs), x="epoch", y=metric, hue="run", style="run", errorbar="sd", ax=_new_axes(ax),
                      palette=[COLOURS[i % len(COLOURS)] for i in styles],
                      dashes=[DASHES[i % len(DASHES)] for i in styles])
    ax.set_xlabel("epoch")
    ax.set_ylabel(_METRIC_LABELS[metric])
    ax.set_title(title or f"{_METRIC_LABELS[metric].capitalize()} per epoch")
    ax.legend()  # from the labelled lines, so a line a notebook adds later joins it
    return ax


def plot_paired_gains(gains: Mapping[str, Mapping], per_seed: Mapping[str, Sequence[float]] | None = None, *,
                      scale: float = 100.0, ax=None, title: str | None = None, xlabel: str = "gain (points)"):
    """One row per name: the mean paired gain with its 95 % interval, each seed's own gain as a dot beside it,
    and zero marked; returns the Axes.

    `gains` maps a name to a paired_difference result (or any mapping with mean, ci_low and ci_high);
    `per_seed` maps it to the seeds' differences, which seaborn strips along the row, so a reader sees
    what the interval summarises. The interval is drawn as computed: seaborn's own intervals would cover
    the seeds only, not the finite test set that paired_difference_over_examples adds. Values are
    multiplied by `scale` (100: accuracy differences in points).
    """
    if not gains:
        raise ValueError("give at least one gain, e.g. {'distilled': paired_difference(baseline, distilled)}")
    names = list(gains)
    ax = _new_axes(ax)
    if per_seed is not None:
        missing = [name for name in names if name not in per_seed]
        if missing:
            raise ValueError(f"per_seed has no differences for {missing}")
        seeds = pd.DataFrame([(name, scale * value) for name in names for value in per_seed[name]],
                             columns=["name", "gain"])
        import seaborn as sns

        drawn = len(ax.collections)
        sns.stripplot(seeds, x="gain", y="name", order=names, color=COLOURS[3], size=7, jitter=0.15, alpha=0.8,
                      ax=ax)
        ax.collections[drawn].set_label("one seed")  # one entry in the legend, not one per row
    means = np.array([scale * gains[name]["mean"] for name in names])
    spans = np.array([[scale * (gains[name]["mean"] - gains[name]["ci_low"]) for name in names],
                      [scale * (gains[name]["ci_high"] - gains[name]["mean"]) for name in names]])
    ax.errorbar(means, np.arange(len(names)), xerr=spans, fmt="D", markersize=9, color=COLOURS[0], capsize=6,
                linewidth=2.5, label="mean, 95 % interval")
    ax.axvline(0, color="0.2", linewidth=1)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # the first name on top
    ax.set(xlabel=xlabel, ylabel="", title=title or "")
    ax.legend()
    return ax
