"""The explorer: drag T and alpha and watch soft targets, the loss, its gradients and trained students change.

Two layers. Pure panel functions compute what each panel shows from (T, alpha, example) with
kdlab.losses, so they can be tested without a browser. `Explorer` only wires ipywidgets controls
to them and updates matplotlib artists in place (bar heights, `set_data`, `draw_idle` on ipympl
canvases): a slider move costs milliseconds, and nothing is re-plotted.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import torch
from ipympl.backend_nbagg import Canvas, FigureManager
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
import torch.nn.functional as F
from torch import nn

from kdlab import experiment
from kdlab.checkpoints import reuse_checkpoint, save_checkpoint
from kdlab.data import TensorData
from kdlab.losses import kd_loss, soft_targets, soft_term_gradient
from kdlab.models import build_model, student_spec
from kdlab.sweep import Grid, grid_from_cache_or_sweep
from kdlab.train import evaluate, fit, pick_device, predict_logits
from kdlab.viz import PROJECTOR_STYLE

T_RANGE = (0.5, 50.0)  # the temperature slider's ends (log scale)
# The browser snaps T to the slider's stops, 0.5 * 2**(k/300): a typed value moves by under 0.12%,
# and 1, 2, 4, 8, 16 (the grid's rows) are exact stops.
T_STEP = math.log10(2) / 300
ALPHA_RANGE = (0.0, 1.0)


# ----------------------------------------------------------------------------- pure panel functions

def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def soft_target_panel(teacher_logits: torch.Tensor, student_logits: torch.Tensor, T: float) -> dict:
    """Panel (a): teacher's and student's softmax(logits / T) for one example, shape (C,) each."""
    return {"teacher": _numpy(soft_targets(teacher_logits, T)), "student": _numpy(soft_targets(student_logits, T))}


def loss_panel(teacher_logits: torch.Tensor, student_logits: torch.Tensor, label: int, T: float,
               alpha: float) -> dict:
    """Panel (b): one example's loss split into alpha*T^2*KL (soft) and (1-alpha)*CE (hard), as floats."""
    parts = kd_loss(student_logits[None], teacher_logits[None], torch.tensor([label]), T=T, alpha=alpha,
                    return_parts=True)
    return {name: float(value) for name, value in parts._asdict().items()}


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
    temperatures = torch.as_tensor(LIMIT_TEMPERATURES, dtype=torch.float64)[:, None]  # (nT, 1)
    student, teacher = student_logits.detach().double(), teacher_logits.detach().double()
    # soft_term_gradient at T = 1 of logits already divided by T is q_T - p_T, for all nT rows at once
    difference = soft_term_gradient(student[None] / temperatures, teacher[None] / temperatures, 1.0)
    hard = torch.softmax(student, dim=-1) - F.one_hot(torch.tensor(label), len(student)).double()
    largest = max(float((temperatures * difference).abs().max()), float((difference / temperatures).abs().max()),
                  float(hard.abs().max()))
    return largest * 1.1


def grid_panel(grid: Grid, T: float, alpha: float) -> dict:
    """Panel (d): the grid's accuracies and the trained cell nearest to (T, alpha)."""
    row, column = grid.cell(T, alpha)
    return {"accuracy": np.asarray(grid.accuracy, dtype=float), "row": row, "column": column,
            "T": grid.temperatures[row], "alpha": grid.alphas[column], "cell_accuracy": float(grid.accuracy[row, column])}


# ----------------------------------------------------------------------------- what the explorer shows

@dataclass
class ExplorerData:
    """Everything the explorer shows, computed once when it starts."""

    test: TensorData  # the test images the example picker chooses from
    teacher_logits: torch.Tensor  # (n, C) on the CPU
    student_logits: torch.Tensor  # (n, C): the baseline student of the default experiment
    grid: Grid
    teacher: nn.Module  # for "Train now"
    transfer: TensorData  # the default experiment's small labelled transfer set
    student_spec: dict
    baseline_curve: list[float]  # the baseline student's test accuracy after each epoch
    epochs: int
    device: torch.device
    seed: int = 0  # picks the transfer set and every student's initial weights and batches


def all_panels(data: ExplorerData, T: float, alpha: float, example: int) -> dict:
    """What every panel shows for (T, alpha, example): the work of one slider move."""
    teacher, student = data.teacher_logits[example], data.student_logits[example]
    label = int(data.test.labels[example])
    return {"soft_targets": soft_target_panel(teacher, student, T),
            "loss": loss_panel(teacher, student, label, T, alpha),
            "gradients": gradient_panel(teacher, student, label, T, alpha),
            "grid": grid_panel(data.grid, T, alpha)}


def train_with_curve(spec: dict, transfer: TensorData, test: TensorData, *, teacher: nn.Module | None = None,
                     T: float = experiment.TEMPERATURE, alpha: float = experiment.ALPHA,
                     epochs: int = experiment.STUDENT_EPOCHS, seed: int = 0, device=None, on_epoch=None):
    """A student trained on `transfer` (distilled when a teacher is given) and its test accuracy per epoch.

    The student is scored by itself after each epoch (the teacher is not re-run on the test set),
    which keeps a curve cheap. `on_epoch(epochs_done)` reports progress. Returns (model, curve,
    interrupted): interrupted is True when Ctrl-C (KeyboardInterrupt) cut training short, and the
    curve then has fewer than `epochs` points (possibly none).
    """
    model = build_model(spec, seed=seed)
    curve: list[float] = []

    def record(history):
        curve.append(evaluate(model, test, device=device)["accuracy"])
        if on_epoch is not None:
            on_epoch(len(curve))

    with _one_cpu_thread():
        history = fit(model, transfer, None, epochs=epochs, seed=seed, device=device, progress=False,
                      teacher=teacher, T=T, alpha=alpha, on_epoch=record)
    return model, curve, history.interrupted


@contextlib.contextmanager
def _one_cpu_thread():
    """Run a small student's training on one CPU thread, then restore the thread count.

    Its matrices are too small to share: a second thread only adds waiting, and on a busy 2-core
    machine "Train now" took 22-33 s with two threads against 1.3 s with one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_or_train_baseline(spec: dict, transfer: TensorData, test: TensorData, *, root="data",
                           epochs: int = experiment.STUDENT_EPOCHS, seed: int = 0, device=None):
    """(baseline student, its test-accuracy curve), from `<root>/explorer-baseline-<dataset>-seed<seed>.pt`
    or trained on hard labels and saved first, so the page starts without training.

    A baseline whose training was interrupted is returned but not saved, so the next start trains it again."""
    path = Path(root) / f"explorer-baseline-{transfer.name}-seed{seed}.pt"
    expected = {"dataset": transfer.name, "seed": seed, "epochs": epochs, "transfer_size": len(transfer)}
    saved = reuse_checkpoint(path, expect_spec=spec, expect=expected)
    if saved:
        student, metadata = saved
        return student.to(pick_device(device)), metadata["curve"]
    student, curve, interrupted = train_with_curve(spec, transfer, test, epochs=epochs, seed=seed, device=device)
    if interrupted:
        print(f"The baseline's training was interrupted after {len(curve)} of {epochs} epochs, so it is shown "
              "but not saved.")
    else:
        save_checkpoint(path, student, spec, **expected, curve=curve)
    return student, curve


def load_explorer_data(dataset: str = "digits", root="data", *, epochs: int = experiment.STUDENT_EPOCHS,
                       seed: int = 0, device=None, offline: bool = False, progress: bool = False) -> ExplorerData:
    """The teacher and the grid from `root` (trained and swept first if missing), and a baseline student.

    The example's student is the default experiment's baseline, trained on TRANSFER_SIZE labelled
    examples with hard labels only (cached in `root` too), so its soft targets differ visibly
    from the teacher's.
    """
    device = pick_device(device)
    train, test, teacher, teacher_metadata = experiment.load_data_and_teacher(dataset, root, offline=offline,
                                                                              device=device, progress=progress)
    transfer = train.subset(experiment.TRANSFER_SIZE, seed=seed)  # the grid's, the baseline's and Train now's
    grid = grid_from_cache_or_sweep(root, transfer, test, teacher, teacher_metadata, epochs=epochs, seed=seed,
                                    device=device, progress=progress)
    spec = student_spec(train.input_shape, experiment.STUDENT_SIZE, train.num_classes)
    student, curve = load_or_train_baseline(spec, transfer, test, root=root, epochs=epochs, seed=seed, device=device)
    return ExplorerData(test=test, teacher_logits=predict_logits(teacher, test.inputs, device=device).cpu(),
                        student_logits=predict_logits(student, test.inputs, device=device).cpu(), grid=grid,
                        teacher=teacher, transfer=transfer, student_spec=spec, baseline_curve=curve, epochs=epochs,
                        device=device, seed=seed)


# ----------------------------------------------------------------------------- the widget layer

def _canvas(width: float, height: float, css_class: str) -> Figure:
    """A figure on its own ipympl canvas (a widget), independent of pyplot and the notebook's backend."""
    figure = Figure(figsize=(width, height), dpi=72, layout="constrained")
    canvas = Canvas(figure)
    FigureManager(canvas, 0)  # handles the browser's resize and draw requests
    canvas.header_visible = canvas.footer_visible = canvas.resizable = False
    canvas.toolbar_visible = False
    canvas.add_class(css_class)

    def freeze_layout(event):  # lay out once; later draws only move artists (about 40% faster)
        figure.set_layout_engine("none")
        canvas.mpl_disconnect(connection)

    connection = canvas.mpl_connect("draw_event", freeze_layout)
    return figure


def _image(inputs: torch.Tensor) -> np.ndarray:
    """(C, H, W) input as an (H, W) or (H, W, 3) picture in [0, 1]."""
    picture = inputs.float().cpu().numpy()
    picture = picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0)
    low, high = picture.min(), picture.max()
    return (picture - low) / (high - low if high > low else 1)


def _grouped_bars(ax, values: dict, labels: dict, colours: dict):
    """Side-by-side bars, one series per key; returns {key: BarContainer} for in-place updates."""
    positions = np.arange(len(next(iter(values.values()))))
    width = 0.8 / len(values)
    return {key: ax.bar(positions + (index - (len(values) - 1) / 2) * width, series, width, label=labels[key],
                        color=colours[key])
            for index, (key, series) in enumerate(values.items())}


def _set_heights(bars, heights) -> None:
    for bar, height in zip(bars, heights):
        bar.set_height(height)


def _report_errors(handler):
    """Show an unexpected error in the explorer's status line instead of losing it in a log: the page stays usable."""
    @functools.wraps(handler)
    def wrapper(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except Exception as error:  # shown to the user, not swallowed
            self.status.value = f"<b style='color:#b00'>Could not update: {error}</b>"
    return wrapper


class Explorer:
    """Sliders for T, alpha and the example; four panels that follow them; a "Train now" button.

    Display it (last expression of a cell, or `display(explorer)`). Setting a control's `.value`
    in Python updates the panels synchronously, which is how the tests drive it.
    """

    def __init__(self, data: ExplorerData, *, T: float = experiment.TEMPERATURE,
                 alpha: float = experiment.ALPHA, example: int = 0):
        self.data = data
        classes = [str(name) for name in data.test.classes]
        self.temperature = widgets.FloatLogSlider(
            value=T, base=10, min=math.log10(T_RANGE[0]), max=math.log10(T_RANGE[1]), step=T_STEP,
            description="T", readout_format=".3g", continuous_update=True)
        self.alpha = widgets.FloatSlider(value=alpha, min=ALPHA_RANGE[0], max=ALPHA_RANGE[1], step=0.01,
                                         description="α", readout_format=".2f", continuous_update=True)
        self.example = widgets.IntSlider(value=example, min=0, max=len(data.test) - 1,
                                         description="test image", continuous_update=True)
        for control, css_class in ((self.temperature, "kdlab-temperature"), (self.alpha, "kdlab-alpha"),
                                   (self.example, "kdlab-example")):
            control.style.description_width = "6em"
            control.layout.width = "26em"
            control.add_class(css_class)
        self.status = widgets.HTML().add_class("kdlab-status")
        self.readout = widgets.HTML().add_class("kdlab-readout")
        self.train_button = widgets.Button(description="Train now", button_style="primary", icon="play",
                                           tooltip="Distil a student at the chosen T and α").add_class("kdlab-train")
        self.progress = widgets.IntProgress(value=0, min=0, max=data.epochs, description="epochs")
        self.train_status = widgets.HTML(
            f"Distils a {_describe(data.student_spec)} student on {len(data.transfer)} labelled examples for "
            f"{data.epochs} epochs at the chosen T and α.").add_class("kdlab-train-status")

        with rc_context(PROJECTOR_STYLE):
            self._build_figures(classes)
        self.last_training = None  # T, alpha, curve and seconds of the latest "Train now"
        self._last_good = {"T": self.temperature.value, "alpha": self.alpha.value}

        self.temperature.observe(self._on_parameter, names="value")
        self.alpha.observe(self._on_parameter, names="value")
        self.example.observe(self._on_example, names="value")
        self.train_button.on_click(self._on_train)
        self._on_example()

        hint = widgets.HTML(
            "<div style='line-height:1.4'>Drag a slider, or type a number into the box beside it and press "
            f"Enter. T accepts {T_RANGE[0]:g} to {T_RANGE[1]:g} and α 0 to 1: a number outside is clamped to the "
            "nearest end, text is refused and the old value comes back. The student is the default "
            f"experiment's <i>baseline</i>: a {_describe(data.student_spec)} net trained on {len(data.transfer)} "
            "labelled examples with hard labels only.</div>")
        controls = widgets.VBox([self.temperature, self.alpha, self.example, self.figures["example"].canvas,
                                 self.status, hint], layout=widgets.Layout(width="27em"))
        panels = [self.figures[name].canvas for name in ("soft_targets", "loss", "gradients", "grid")]
        train_controls = widgets.VBox([self.train_button, self.progress, self.train_status],
                                      layout=widgets.Layout(width="26em"))
        wrap = widgets.Layout(flex_flow="row wrap", align_items="flex-start")
        self.widget = widgets.VBox([
            widgets.HBox([controls, widgets.VBox([panels[0], self.readout]), panels[1]], layout=wrap),
            widgets.HBox(panels[2:], layout=wrap),
            widgets.HBox([train_controls, self.figures["curves"].canvas], layout=wrap),
        ])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- figures, built once; every later change only moves artists
    def _build_figures(self, classes: list[str]) -> None:
        data = self.data
        self.figures = {"example": _canvas(3.2, 3.4, "kdlab-example-image"),
                        "soft_targets": _canvas(7.5, 4.6, "kdlab-soft-targets"),
                        "loss": _canvas(6, 4.6, "kdlab-loss"),
                        "gradients": _canvas(9.5, 4.8, "kdlab-gradients"),
                        "grid": _canvas(7, 4.8, "kdlab-grid"),
                        "curves": _canvas(9, 4.4, "kdlab-curves")}
        ax = self.figures["example"].add_subplot()
        self._picture = ax.imshow(_image(data.test.inputs[0]), cmap="gray_r", vmin=0, vmax=1)
        ax.set_axis_off()
        self._picture_title = ax.set_title("")

        zeros = np.zeros(len(classes))
        ax = self.figures["soft_targets"].add_subplot()
        self._soft_bars = _grouped_bars(ax, {"teacher": zeros, "student": zeros},
                                        {"teacher": "teacher", "student": "student (baseline)"},
                                        {"teacher": "tab:blue", "student": "tab:orange"})
        ax.set(ylim=(0, 1), xlabel="class", ylabel="probability", xticks=range(len(classes)))
        ax.set_xticklabels(classes)
        ax.legend(loc="upper right")
        self._soft_title = ax.set_title("")

        ax = self.figures["loss"].add_subplot()
        self._loss_bars = ax.bar(["α·T²·KL", "(1−α)·CE", "total"], [0, 0, 0],
                                 color=["tab:blue", "tab:green", "tab:gray"])
        self._loss_labels = [ax.text(bar.get_x() + bar.get_width() / 2, 0, "", ha="center", va="bottom")
                             for bar in self._loss_bars]
        ax.set(ylabel="loss on this example", title="The loss, split into its two terms")
        self._loss_axes = ax

        ax = self.figures["gradients"].add_subplot()
        self._gradient_bars = _grouped_bars(
            ax, {"soft": zeros, "soft_without_T2": zeros, "hard": zeros},
            {"soft": "soft term α·T²·KL", "soft_without_T2": "soft term without T²", "hard": "hard term (1−α)·CE"},
            {"soft": "tab:blue", "soft_without_T2": "lightsteelblue", "hard": "tab:green"})
        ax.axhline(0, color="black", linewidth=1)
        ax.set(xlabel="student logit (class)", ylabel="∂ loss / ∂ logit", xticks=range(len(classes)))
        ax.set_xticklabels(classes)
        ax.legend(loc="lower left", fontsize="small", ncols=3)
        self._gradient_axes = ax
        self._gradient_title = ax.set_title("")

        ax = self.figures["grid"].add_subplot()
        grid = data.grid
        accuracy = np.asarray(grid.accuracy, dtype=float)
        image = ax.imshow(accuracy, cmap="viridis", origin="lower", aspect="auto")
        self.figures["grid"].colorbar(image, ax=ax, label="test accuracy")
        ax.set(xticks=range(len(grid.alphas)), yticks=range(len(grid.temperatures)), xlabel="α (teacher weight)",
               ylabel="temperature T")
        ax.set_xticklabels([f"{alpha:g}" for alpha in grid.alphas])
        ax.set_yticklabels([f"{T:g}" for T in grid.temperatures])
        ax.grid(False)
        middle = np.nanmean(accuracy)
        for (row, column), value in np.ndenumerate(accuracy):
            ax.text(column, row, f"{value:.3f}", ha="center", va="center", fontsize="small",
                    color="black" if value > middle else "white")
        self._grid_cell = ax.add_patch(Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor="red", linewidth=4))
        self._grid_title = ax.set_title("")

        ax = self.figures["curves"].add_subplot()
        epochs = np.arange(1, len(data.baseline_curve) + 1)
        ax.plot(epochs, data.baseline_curve, color="tab:orange", label="baseline (hard labels)")
        (self._trained_line,) = ax.plot([], [], color="tab:blue", label="distilled (press Train now)")
        teacher_accuracy = (data.teacher_logits.argmax(1) == data.test.labels.cpu()).float().mean().item()
        ax.axhline(teacher_accuracy, color="black", linestyle="--", linewidth=1.5,
                   label=f"teacher ({teacher_accuracy:.3f})")
        low = min(data.baseline_curve[len(data.baseline_curve) // 5:] or data.baseline_curve or [1.0])
        ax.set(xlim=(0, data.epochs), ylim=(max(0.0, low - 0.1), 1.0), xlabel="epoch", ylabel="test accuracy",
               title="Students on the transfer set")
        ax.legend(loc="lower right")

    # -- observers
    @_report_errors
    def _on_example(self, change=None) -> None:
        data, example = self.data, self.example.value
        label = int(data.test.labels[example])
        limit = gradient_limit(data.teacher_logits[example], data.student_logits[example], label)
        self._gradient_axes.set_ylim(-limit, limit)
        self._picture.set_data(_image(data.test.inputs[example]))
        teacher_guess = int(data.teacher_logits[example].argmax())
        student_guess = int(data.student_logits[example].argmax())
        self._picture_title.set_text(f"#{example}: a {data.test.classes[label]}\n"
                                     f"teacher says {data.test.classes[teacher_guess]}, "
                                     f"student {data.test.classes[student_guess]}")
        self.figures["example"].canvas.draw_idle()
        self.update()

    @_report_errors
    def _on_parameter(self, change) -> None:
        name = "T" if change["owner"] is self.temperature else "alpha"
        if not math.isfinite(change["new"]):  # NaN set from Python: refuse it, keep the last good value
            change["owner"].value = self._last_good[name]
            self.status.value = f"<b style='color:#b00'>{name} must be a number; kept {self._last_good[name]:.3g}.</b>"
            return
        self._last_good[name] = change["new"]
        self.update()

    def update(self) -> None:
        """Recompute every panel for the controls' values and move the artists in place."""
        T, alpha, example = self.temperature.value, self.alpha.value, self.example.value
        panels = all_panels(self.data, T, alpha, example)
        classes = self.data.test.classes
        label = int(self.data.test.labels[example])

        soft = panels["soft_targets"]
        for key, bars in self._soft_bars.items():
            _set_heights(bars, soft[key])
        self._soft_title.set_text(f"Soft targets at T = {T:.3g}")
        self.readout.value = (f"T = {T:.3g}: teacher p({classes[label]}) = {soft['teacher'][label]:.3f}, "
                              f"student p({classes[label]}) = {soft['student'][label]:.3f}")

        loss = panels["loss"]
        heights = [loss["soft"], loss["hard"], loss["total"]]
        _set_heights(self._loss_bars, heights)
        for text, bar, height in zip(self._loss_labels, self._loss_bars, heights):
            text.set_y(height)
            text.set_text(f"{height:.3g}")
        self._loss_axes.set_ylim(0, max(heights) * 1.2 or 1.0)

        gradients = panels["gradients"]
        for key, bars in self._gradient_bars.items():
            _set_heights(bars, gradients[key])
        self._gradient_title.set_text(
            f"Gradient on each student logit: largest |soft| {np.abs(gradients['soft']).max():.2g}, "
            f"without T² {np.abs(gradients['soft_without_T2']).max():.2g}")

        cell = panels["grid"]
        self._grid_cell.set_xy((cell["column"] - 0.5, cell["row"] - 0.5))
        self._grid_title.set_text(f"Trained students: nearest cell T = {cell['T']:g}, α = {cell['alpha']:g}: "
                                  f"{cell['cell_accuracy']:.3f}")

        for name in ("soft_targets", "loss", "gradients", "grid"):
            self.figures[name].canvas.draw_idle()
        self.status.value = self._range_note(T, alpha)

    @staticmethod
    def _range_note(T: float, alpha: float) -> str:
        """Say so when a value sits at the end of its range: that is where a typed value was clamped."""
        notes = [f"{name} = {value:.3g} is the {end} end of its range ({low:g} to {high:g}); values beyond it "
                 "are clamped to it."
                 for name, value, (low, high) in (("T", T, T_RANGE), ("α", alpha, ALPHA_RANGE))
                 for end, bound in (("lower", low), ("upper", high)) if math.isclose(value, bound, rel_tol=1e-6,
                                                                                     abs_tol=1e-9)]
        return "".join(f"<div style='color:#a60; line-height:1.4'>{note}</div>" for note in notes) or "&nbsp;"

    @_report_errors
    def _on_train(self, button=None) -> None:
        data, T, alpha = self.data, self.temperature.value, self.alpha.value
        self.train_button.disabled = True
        self.progress.value = 0
        self.train_status.value = f"Distilling at T = {T:.3g}, α = {alpha:.2f} ..."
        start = time.perf_counter()
        try:
            def on_epoch(done):
                self.progress.value = done
            _, curve, interrupted = train_with_curve(data.student_spec, data.transfer, data.test, teacher=data.teacher,
                                                     T=T, alpha=alpha, epochs=data.epochs, seed=data.seed,
                                                     device=data.device, on_epoch=on_epoch)
        finally:
            self.train_button.disabled = False
        seconds = time.perf_counter() - start
        label = f"distilled, T = {T:.3g}, α = {alpha:.2f}"
        self._trained_line.set_data(np.arange(1, len(curve) + 1), curve)
        self._trained_line.set_label(label)
        with rc_context(PROJECTOR_STYLE):
            self._trained_line.axes.legend(loc="lower right")
        self.figures["curves"].canvas.draw_idle()
        baseline = f"{data.baseline_curve[-1]:.3f}" if data.baseline_curve else "not measured"
        accuracy = f"test accuracy <b>{curve[-1]:.3f}</b>" if curve else "no epoch finished"
        cut_short = (f"<b style='color:#a60'>Interrupted after {len(curve)} of {data.epochs} epochs</b>: "
                     if interrupted else "")
        self.train_status.value = (f"{cut_short}Distilled at T = {T:.3g}, α = {alpha:.2f} in {seconds:.1f} s: "
                                   f"{accuracy} (baseline {baseline}).")
        self.last_training = {"T": T, "alpha": alpha, "curve": curve, "seconds": seconds, "interrupted": interrupted}


def _describe(spec: dict) -> str:
    """'2x100' for an MLP spec: how the explorer's text names a student."""
    sizes = spec.get("hidden") or spec.get("channels")
    return "x".join(str(size) for size in sizes) if len(set(sizes)) > 1 else f"{len(sizes)}x{sizes[0]}"
