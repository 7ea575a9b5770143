"""The explorer's panels: a pure function of (T, alpha, example) beside a small object that describes its chart.

Each pure panel function computes what its panel shows with kdlab.losses, so tests need no browser.
Each panel object describes its chart once (`spec`: axes, labels, colours), which the page receives once,
and says what it shows at one setting (`data`). The page computes that data itself from the logits it was
sent (kdlab/explorer_static/explorer.js, tested equal to these functions); `static_figure` draws the kernel's
with matplotlib, for a page read without a kernel.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps, colors
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from kdlab.losses import kd_loss, soft_targets, soft_term_gradient
from kdlab.sweep import Grid
from kdlab.viz import plot_heatmap

__all__ = ["CurvesPanel", "GradientPanel", "GridPanel", "LossPanel", "MODEL_COLOURS", "PicturePanel",
           "SoftTargetsPanel", "TERM_COLOURS", "T_RANGE", "all_panels", "chart_data", "explorer_panels",
           "gradient_limit", "gradient_limits", "gradient_panel", "grid_panel", "loss_panel", "soft_target_panel",
           "static_figure"]

T_RANGE = (0.5, 50.0)  # the temperature slider's ends (log scale)
ALPHA_RANGE = (0.0, 1.0)
STATIC_SMALLEST_PT = 10  # the static picture's legends, its smallest text
# One colour per term, as in notebook 03: soft (teacher) blue, hard (labels) orange, total green.
TERM_COLOURS = {"soft": "#1f77b4", "soft_without_T2": "#aec7e8", "hard": "#ff7f0e", "total": "#2ca02c"}
MODEL_COLOURS = {"teacher": "#333333", "student": "#9467bd"}


# ----------------------------------------------------------------------------- pure panel functions

def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def soft_target_panel(teacher_logits: torch.Tensor, student_logits: torch.Tensor, T: float) -> dict:
    """Panel (a): teacher's and student's softmax(logits / T) for one example, shape (C,) each."""
    return {"teacher": _numpy(soft_targets(teacher_logits, T)), "student": _numpy(soft_targets(student_logits, T))}


def loss_panel(teacher_logits: torch.Tensor, student_logits: torch.Tensor, label: int, T: float,
               alpha: float) -> dict:
    """Panel (b): one example's loss split into alpha*T^2*KL (soft) and (1-alpha)*CE (hard), as floats.

    A KL is never negative; float rounding can make it -6e-16, so every part is clamped at 0.
    """
    parts = kd_loss(student_logits[None], teacher_logits[None], torch.tensor([label]), T=T, alpha=alpha,
                    return_parts=True)
    return {name: max(0.0, float(value)) for name, value in parts._asdict().items()}


def gradient_panel(teacher_logits: torch.Tensor, student_logits: torch.Tensor, label: int, T: float,
                   alpha: float) -> dict:
    """Panel (c): the gradient of each term of the loss on each student logit, shape (C,) each.

    "soft" is the gradient of alpha*T^2*KL; "soft_without_T2" what it would be without the T^2
    factor (it shrinks as 1/T^2 at high T); "hard" is the gradient of (1-alpha)*CE, by autograd.
    """
    soft = alpha * soft_term_gradient(student_logits[None], teacher_logits[None], T)[0]
    student = student_logits.detach().double().requires_grad_()
    hard = kd_loss(student[None], teacher_logits[None], torch.tensor([label]), T=T, alpha=alpha,
                   return_parts=True).hard
    (hard_gradient,) = torch.autograd.grad(hard, student)
    return {"soft": _numpy(soft * T**2), "soft_without_T2": _numpy(soft), "hard": _numpy(hard_gradient)}


LIMIT_TEMPERATURES = np.geomspace(*T_RANGE, 25)  # where gradient_limit samples T_RANGE


def gradient_limit(teacher_logits: torch.Tensor, student_logits: torch.Tensor, label: int) -> float:
    """10% above the largest gradient panel (c) shows for this example at 25 sampled temperatures
    spanning T_RANGE (LIMIT_TEMPERATURES) and any alpha in [0, 1].

    The panel keeps this y-range while T and alpha move, so shrinking bars are seen to shrink.
    Closed form, every sampled T at once: each term is largest at alpha = 1 (soft) or alpha = 0
    (hard); the hard gradient softmax(z_s) - onehot does not depend on T; the soft one is
    T^2 * (1/T)(q_T - p_T) = T (q_T - p_T), and T (q_T - p_T) / T^2 without the T^2 factor.
    """
    return float(gradient_limits(teacher_logits[None], student_logits[None], torch.tensor([label]))[0])


def gradient_limits(teacher_logits: torch.Tensor, student_logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """gradient_limit of each of n examples, (n, C) logits and (n,) labels, in one pass: what the page is sent."""
    temperatures = torch.as_tensor(LIMIT_TEMPERATURES, dtype=torch.float64)[:, None, None]  # (nT, 1, 1)
    student, teacher = student_logits.detach().double(), teacher_logits.detach().double()
    # soft_term_gradient at T = 1 of logits already divided by T is q_T - p_T, for all nT temperatures at once
    difference = soft_term_gradient(student[None] / temperatures, teacher[None] / temperatures, 1.0)
    hard = torch.softmax(student, dim=-1) - F.one_hot(torch.as_tensor(labels), student.shape[-1]).double()
    largest = torch.stack([(temperatures * difference).abs().amax(dim=(0, 2)),
                           (difference / temperatures).abs().amax(dim=(0, 2)), hard.abs().amax(dim=-1)])
    return (largest.amax(dim=0) * 1.1).numpy()


def grid_panel(grid: Grid, T: float, alpha: float) -> dict:
    """Panel (d): the trained cell nearest to (T, alpha), its mean accuracy and 95 % interval (or None)."""
    row, column = grid.cell(T, alpha)
    return {"row": row, "column": column, "T": grid.temperatures[row], "alpha": grid.alphas[column],
            "cell_accuracy": float(grid.accuracy[row, column]), "interval": grid.interval(row, column)}


def all_panels(data, T: float, alpha: float, example: int) -> dict:
    """What every panel shows for (T, alpha, example) of an ExplorerData: the work of one slider move."""
    teacher, student = data.teacher_logits[example], data.student_logits[example]
    label = int(data.test.labels[example])
    return {"soft_targets": soft_target_panel(teacher, student, T),
            "loss": loss_panel(teacher, student, label, T, alpha),
            "gradients": gradient_panel(teacher, student, label, T, alpha),
            "grid": grid_panel(data.grid, T, alpha)}


def example_picture(inputs: torch.Tensor) -> np.ndarray:
    """(C, H, W) input as an (H, W) or (H, W, 3) picture in [0, 1]."""
    picture = inputs.float().cpu().numpy()
    picture = picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0)
    low, high = picture.min(), picture.max()
    return (picture - low) / (high - low if high > low else 1)


# ----------------------------------------------------------------------------- panel objects

def _rounded(values, digits: int = 4) -> list:
    """JSON-ready values, rounded: a move ships hundreds of numbers, not thousands of digits."""
    return np.round(np.asarray(values, dtype=float), digits).tolist()


class Panel:
    """A chart: its description, built once (`spec`), and what it shows at one setting (`data`). The page
    computes the same data itself (explorer.js, panelData); the kernel's is drawn for a page without one."""

    def spec(self) -> dict:
        raise NotImplementedError


class PicturePanel(Panel):
    """The example: its picture, its label and what the teacher and the student guess."""

    def __init__(self, classes):
        self.classes = [str(name) for name in classes]

    def spec(self) -> dict:
        return {"kind": "image", "width": 250, "height": 88}

    def data(self, picture: np.ndarray, example: int, label: int, teacher_guess: int, student_guess: int) -> dict:
        classes = self.classes
        return {"pixels": _rounded(picture, 3), "title": f"#{example}: a {classes[label]}\nteacher says "
                                                         f"{classes[teacher_guess]}, student {classes[student_guess]}"}


class SoftTargetsPanel(Panel):
    """Panel (a): grouped bars of the teacher's and the student's soft targets."""

    def __init__(self, classes):
        self.classes = [str(name) for name in classes]

    def spec(self) -> dict:
        return {"kind": "bars", "width": 292, "height": 200, "categories": self.classes, "ylim": [0, 1],
                "xlabel": "class", "ylabel": "probability",
                "series": [{"label": "teacher", "colour": MODEL_COLOURS["teacher"]},
                           {"label": "student (baseline)", "colour": MODEL_COLOURS["student"]}]}

    def data(self, panel: dict, T: float, label: int) -> dict:
        name = self.classes[label]
        return {"values": [_rounded(panel["teacher"]), _rounded(panel["student"])],
                "title": f"(a) Soft targets at T = {T:.3g}",
                "caption": f"T = {T:.3g}: p({name}) teacher {panel['teacher'][label]:.3f}, "
                           f"student {panel['student'][label]:.3f}"}


class LossPanel(Panel):
    """Panel (b): the example's loss as its soft part, its hard part and their total."""

    def spec(self) -> dict:
        return {"kind": "bars", "width": 280, "height": 190, "categories": ["α·T²·KL", "(1−α)·CE", "total"],
                "colours": [TERM_COLOURS[key] for key in ("soft", "hard", "total")], "series": [{"label": "loss"}],
                "xlabel": "term", "ylabel": "loss on this example"}

    def data(self, panel: dict, T: float, alpha: float) -> dict:
        heights = [panel["soft"], panel["hard"], panel["total"]]
        return {"values": [_rounded(heights, 6)], "labels": [f"{height:.3g}" for height in heights],
                "ylim": [0, max(heights) * 1.25 or 1.0], "title": f"(b) The loss at T = {T:.3g}, α = {alpha:.2f}"}


class GradientPanel(Panel):
    """Panel (c): each term's gradient on each student logit, on a y-range fixed per example (gradient_limit)."""

    SERIES = {"soft": "soft term α·T²·KL", "soft_without_T2": "soft, without T²", "hard": "hard term (1−α)·CE"}

    def __init__(self, classes):
        self.classes = [str(name) for name in classes]

    def spec(self) -> dict:
        return {"kind": "bars", "width": 292, "height": 220, "categories": self.classes, "zero_line": True,
                "xlabel": "student logit (class)", "ylabel": "∂ loss / ∂ logit",
                "series": [{"label": label, "colour": TERM_COLOURS[key]} for key, label in self.SERIES.items()]}

    def data(self, panel: dict, T: float, alpha: float, limit: float) -> dict:
        return {"values": [_rounded(panel[key], 5) for key in self.SERIES], "ylim": [-limit, limit],
                "title": f"(c) Gradients at T = {T:.3g}, α = {alpha:.2f}\nlargest |soft| "
                         f"{np.abs(panel['soft']).max():.2g}, without T² {np.abs(panel['soft_without_T2']).max():.2g}"}


class GridPanel(Panel):
    """Panel (d): students trained over T x alpha, T = 1 on top as in notebook 06, coloured by their mean
    `measure` with a colour bar beside them; cells within noise of the alpha = 0 column are hatched, so only
    real differences stand out. The title gives the cell nearest the sliders and its 95 % interval, and says
    what the interval covers: the grid's transfer sets (`settings["seeds"]`), or else its students."""

    COLOURBAR_STEPS = 32  # the colour bar's bands, low to high

    def __init__(self, grid: Grid, measure: str = "validation accuracy"):
        self.grid, self.measure = grid, measure

    def runs_covered(self) -> str:
        """What a cell's interval covers, in words: "5 transfer sets", or "3 students" on one transfer set."""
        runs = 1 if self.grid.runs is None else len(self.grid.runs)
        if "seeds" in self.grid.settings:
            return f"{runs} transfer set{'s' * (runs != 1)}"
        return f"{runs} student{'s' * (runs != 1)}"

    def spec(self) -> dict:
        grid, accuracy = self.grid, np.asarray(self.grid.accuracy, dtype=float)
        low, high = float(np.nanmin(accuracy)), float(np.nanmax(accuracy))
        high = high if high > low else low + 1e-9
        shade = colors.Normalize(low, high)
        cells = colormaps["viridis"](shade(accuracy))
        noise = grid.within_noise()
        note = (f"mean of {self.runs_covered()}; hatched: within\nnoise of α = 0 (paired, 95 %)" if noise is not None
                else "one student per cell: read with care")
        bands = colormaps["viridis"](np.linspace(0, 1, self.COLOURBAR_STEPS))
        ticks = [float(t) for t in MaxNLocator(5, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
                 if low - 1e-12 <= t <= high + 1e-12]
        decimals = next((d for d in range(1, 6) if all(abs(round(t, d) - t) < 1e-9 for t in ticks)), 6)  # 0.90, 0.91
        return {"kind": "heatmap", "width": 280, "height": 244, "right": 62,
                "rows": [f"{T:g}" for T in grid.temperatures],
                "columns": [f"{alpha:g}" for alpha in grid.alphas], "xlabel": "α (teacher weight)",
                "ylabel": "temperature T", "values": _rounded(accuracy),
                "colours": [[colors.to_hex(cell) for cell in row] for row in cells],
                "text": [[f"{value:.3f}" for value in row] for row in accuracy],
                "text_colours": [["black" if cell[:3] @ (0.299, 0.587, 0.114) > 0.5 else "white" for cell in row]
                                 for row in cells],
                "marks": None if noise is None else noise.tolist(), "note": note,
                "colorbar": {"low": round(low, 6), "high": round(high, 6), "label": self.measure,
                             "colours": [colors.to_hex(band) for band in bands], "ticks": _rounded(ticks, 6),
                             "tick_labels": [f"{t:.{decimals}f}" for t in ticks]}}

    def data(self, panel: dict) -> dict:
        interval = panel["interval"]
        spread = (f"95 % CI over {self.runs_covered()}: {interval[0]:.3f}–{interval[1]:.3f}" if interval
                  else "one student: no interval")
        return {"highlight": [panel["row"], panel["column"]],  # the sliders' T and α need not be a cell's
                "title": f"(d) Nearest grid cell: T = {panel['T']:g}, α = {panel['alpha']:g}\n"
                         f"{self.measure} {panel['cell_accuracy']:.3f}\n{spread}"}

    def page(self) -> dict:
        """What the page needs to write this panel's title for any cell: every cell's mean and interval."""
        grid = self.grid
        return {"temperatures": list(grid.temperatures), "alphas": list(grid.alphas),
                "accuracy": np.asarray(grid.accuracy, dtype=float).tolist(),
                "intervals": [[_interval(grid, row, column) for column in range(len(grid.alphas))]
                              for row in range(len(grid.temperatures))],
                "measure": self.measure, "covered": self.runs_covered()}


def _interval(grid: Grid, row: int, column: int) -> list[float] | None:
    interval = grid.interval(row, column)
    return None if interval is None else [float(bound) for bound in interval]


class CurvesPanel(Panel):
    """The baseline's validation accuracy per epoch, the teacher's, and the latest "Train now" student's."""

    def __init__(self, baseline_curve: list[float], teacher_accuracy: float, epochs: int):
        self.baseline = {"x": list(range(1, len(baseline_curve) + 1)), "y": _rounded(baseline_curve),
                         "label": "baseline", "colour": TERM_COLOURS["hard"]}
        self.teacher = {"x": [0, epochs], "y": [teacher_accuracy] * 2, "dash": True, "colour": "#333333",
                        "label": f"teacher {teacher_accuracy:.3f}"}
        low = min(baseline_curve[len(baseline_curve) // 5:] or baseline_curve or [1.0])
        self.ylim, self.epochs = [max(0.0, math.floor((low - 0.1) * 10) / 10), 1.0], epochs

    def spec(self) -> dict:
        return {"kind": "lines", "width": 250, "height": 150, "xlim": [0, self.epochs], "ylim": self.ylim,
                "xlabel": "epoch", "ylabel": "accuracy", "left": 46}

    def data(self, curve: list[float] | None = None, label: str = "Train now") -> dict:
        distilled = {"x": list(range(1, len(curve or []) + 1)), "y": _rounded(curve or []), "label": label,
                     "colour": TERM_COLOURS["soft"]}
        return {"lines": [self.baseline, distilled, self.teacher], "title": "Validation accuracy by epoch"}


def explorer_panels(data) -> dict:
    """The explorer's panel objects for an ExplorerData, by name."""
    classes = data.test.classes
    return {"picture": PicturePanel(classes), "soft": SoftTargetsPanel(classes), "loss": LossPanel(),
            "gradients": GradientPanel(classes), "grid": GridPanel(data.grid),
            "curves": CurvesPanel(data.baseline_curve, data.teacher_accuracy, data.epochs)}


def chart_data(data, panels: dict, T: float, alpha: float, example: int) -> dict:
    """What each panel but the curves shows at (T, alpha, example), by name: the kernel's twin of the page's."""
    computed = all_panels(data, T, alpha, example)
    teacher, student = data.teacher_logits[example], data.student_logits[example]
    label = int(data.test.labels[example])
    return {"picture": panels["picture"].data(example_picture(data.test.inputs[example]), example, label,
                                              int(teacher.argmax()), int(student.argmax())),
            "soft": panels["soft"].data(computed["soft_targets"], T, label),
            "loss": panels["loss"].data(computed["loss"], T, alpha),
            "gradients": panels["gradients"].data(computed["gradients"], T, alpha,
                                                  gradient_limit(teacher, student, label)),
            "grid": panels["grid"].data(computed["grid"])}


# ----------------------------------------------------------------------------- the static view

def static_figure(charts, columns: int = 2) -> Figure:
    """The charts (spec and data each) drawn by matplotlib into one figure, as the browser draws them.

    960 px wide at its natural size, so a notebook cell at 1440x900 never scales it down, and no text under
    10 pt (11 px at its dpi of 80), the smallest a class reads on a projector; two columns leave room for that."""
    rows = math.ceil(len(charts) / columns)
    figure = Figure(figsize=(6.0 * columns, 3.0 * rows), dpi=80, layout="constrained")
    with matplotlib.rc_context({"font.size": 12, "legend.fontsize": STATIC_SMALLEST_PT}):  # "small" is 10 pt
        axes = list(figure.subplots(rows, columns, squeeze=False).flat)  # before any colour bar adds its own axes
        for ax, (spec, data) in zip(axes, charts):
            _STATIC[spec["kind"]](ax, spec, data)
            ax.set_title(data.get("title", ""), fontsize="medium", pad=24 if ax.get_legend() else 6)
    for ax in axes[len(charts):]:
        ax.set_axis_off()
    return figure


def _static_bars(ax, spec, data) -> None:
    series, positions = spec["series"], np.arange(len(spec["categories"]))
    width = 0.8 / len(series)
    for index, (style, values) in enumerate(zip(series, data["values"])):
        ax.bar(positions + (index - (len(series) - 1) / 2) * width, values, width, label=style["label"],
               color=spec.get("colours") or style["colour"])
    for position, text, value in zip(positions, data.get("labels", []), data["values"][0]):
        ax.text(position, value, text, ha="center", va="bottom")
    if spec.get("zero_line"):
        ax.axhline(0, color="black", linewidth=1)
    ax.set(xticks=positions, ylim=data.get("ylim") or spec.get("ylim"), xlabel=spec["xlabel"], ylabel=spec["ylabel"])
    ax.set_xticklabels(spec["categories"])
    if len(series) > 1:  # above the axes, as in the browser: a legend never covers a bar
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(series), frameon=False)


def _static_heatmap(ax, spec, data) -> None:
    # the browser's viridis scale, its colour bar (when it has one), its text and its marks
    bar = spec.get("colorbar")
    plot_heatmap(spec["values"], spec["rows"], spec["columns"], ax=ax, xlabel=spec["xlabel"], ylabel=spec["ylabel"],
                 labels=spec["text"], hatched=spec["marks"], highlight=data["highlight"], colorbar=bar is not None,
                 colorbar_label=bar and bar["label"], vmin=bar and bar["low"], vmax=bar and bar["high"])
    if bar is not None:
        ax.collections[0].colorbar.set_ticks(bar["ticks"], labels=bar["tick_labels"])  # the bar of its cells


def _static_lines(ax, spec, data) -> None:
    for line in data["lines"]:
        ax.plot(line["x"], line["y"], color=line["colour"], linestyle="--" if line.get("dash") else "-",
                label=line["label"])
    ax.set(xlim=spec["xlim"], ylim=spec["ylim"], xlabel=spec["xlabel"], ylabel=spec["ylabel"])
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=3, frameon=False)


def _static_image(ax, spec, data) -> None:
    ax.imshow(np.asarray(data["pixels"]), cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()


_STATIC = {"bars": _static_bars, "heatmap": _static_heatmap, "lines": _static_lines, "image": _static_image}
