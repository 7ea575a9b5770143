"""The explorer: drag T and alpha and watch soft targets, the loss, its gradients and trained students change.

Thin wiring only. kdlab.explorer_data loads what the explorer shows; `page_payload` packs it, once, into
what the page computes every panel from (kdlab.panels describes each chart); kdlab.canvas.ExplorerView
is the page, which computes and draws each move itself. The kernel reads the link and runs "Train now".
A view can be shared as a link: Voilà hands the page's query string to the kernel
(`?T=8&alpha=0.5&example=12&hide=grid,train`), and `Explorer.from_query` opens with it.
A link is anyone's text: what the page echoes of it is plain text, shortened and listed a few names at a time.
"""

from __future__ import annotations

import base64
import functools
import io
import os
import re
import time
import urllib.parse

import numpy as np
import torch

from kdlab import experiment
from kdlab.canvas import NUMBER_PATTERN, ExplorerView, parse_number, round_half_up
from kdlab.explorer_data import ExplorerData, train_with_curve
from kdlab.interrupt import TrainingInterrupted
from kdlab.panels import (
    ALPHA_RANGE,
    T_RANGE,
    chart_data,
    example_picture,
    explorer_panels,
    gradient_limits,
    static_figure,
)
from kdlab.viz import figure_bundle, smallest_font_px

__all__ = ["Explorer", "page_payload", "parse_view"]

# The arrow keys' stops for T: 20 steps of 2^(1/3) from 0.5 to 50, rounded as printed, so 1, 2, 4, 8 and 16
# (the grid's rows) are stops; alpha steps by 0.05.
T_STOPS = sorted({float(f"{0.5 * 2 ** (k / 3):.2g}") for k in range(20)} | {T_RANGE[1]})
ALPHA_STOPS = [k / 20 for k in range(21)]
HIDEABLE = ("picture", "soft", "loss", "gradients", "grid", "train")  # what `hide=` in a link may name
VOILA_PARAMETERS = ("voila-template", "voila-theme", "template", "theme")  # Voilà's own: not ours to judge
ECHO_CHARACTERS = 40  # of one text from a link or the readout, echoed on the page
ECHO_NAMES = 5  # unknown names from a link, listed on the page


def parse_view(query: str, examples: int) -> tuple[dict, list[str]]:
    """(settings, notes): what a link's query string asks for, each value clamped to its range or
    ignored, with one note per value changed or ignored, for the page to show as plain text."""
    fields = urllib.parse.parse_qs(query or "", keep_blank_values=True)
    settings, notes = {}, []
    for key, (low, high) in (("T", T_RANGE), ("alpha", ALPHA_RANGE), ("example", (0, examples - 1))):
        if key not in fields:
            continue
        text = fields.pop(key)[-1]
        value = parse_number(text)
        if value is None:
            notes.append(f"{key}={_quoted(text)} in the link {_why_refused(text)}: ignored")
            continue
        clamped = min(max(value, low), high)
        given, shown = round_half_up(clamped) if key == "example" else clamped, _shorten(text, ECHO_CHARACTERS)
        if clamped != value:
            notes.append(f"{key}={shown} in the link is outside {low:g} to {high:g}: {given:g} is shown")
        elif given != value:
            notes.append(f"{key}={shown} in the link is not a whole number: {given:g} is shown")
        settings[key] = given
    asked = [name for part in fields.pop("hide", []) for name in part.split(",") if name]
    settings["hide"] = tuple(name for name in asked if name in HIDEABLE)
    if unknown := [name for name in asked if name not in HIDEABLE]:
        notes.append(f"hide={_echo_names(unknown)} in the link names no panel (known: {', '.join(HIDEABLE)}): "
                     "ignored")
    if unknown := [key for key in fields if key not in VOILA_PARAMETERS]:
        notes.append(f"{_echo_names(unknown)} in the link: not a setting of the explorer, ignored")
    return settings, notes


def _why_refused(text: str) -> str:
    """Why parse_number refused `text`, in words for the page."""
    if re.fullmatch(NUMBER_PATTERN, text):
        return "is too large"
    return "is not a number (write it as 8, 0.5 or 1e-3)"


def _shorten(text: str, characters: int) -> str:
    return text if len(text) <= characters else text[:characters - 1] + "…"


def _quoted(text: str) -> str:
    """Someone's text as the page repeats it: quoted, and shortened to ECHO_CHARACTERS."""
    return repr(_shorten(text, ECHO_CHARACTERS))


def _echo_names(names: list[str]) -> str:
    listed = ", ".join(_quoted(name) for name in names[:ECHO_NAMES])
    return listed + (f" and {len(names) - ECHO_NAMES} more" if len(names) > ECHO_NAMES else "")


def controls(examples: int) -> dict:
    """The three sliders' ranges, keyboard stops and readouts, for the page and for clamping in the kernel."""
    return {"T": {"description": "T", "low": T_RANGE[0], "high": T_RANGE[1], "log": True, "stops": T_STOPS,
                  "precision": 3, "whole": False},
            "alpha": {"description": "α", "low": ALPHA_RANGE[0], "high": ALPHA_RANGE[1], "log": False,
                      "stops": ALPHA_STOPS, "precision": 2, "whole": False},
            "example": {"description": "test image", "low": 0, "high": examples - 1, "log": False,
                        "stops": list(range(examples)), "precision": 0, "whole": True}}


def page_payload(data: ExplorerData, examples: int | None = None, *, train: str | None = None) -> dict:
    """What the page computes and draws every panel from, sent once: the first `examples` test images (all by
    default) with their teacher's and baseline student's logits (float32, as the kernel holds them), labels,
    pictures (bytes) and gradient ranges; every grid cell's mean and interval; each chart's description; the
    controls. `train` says what "Train now" does, or how to get it where nothing can train."""
    count = len(data.test) if examples is None else min(examples, len(data.test))
    panels = explorer_panels(data)
    teacher, student = data.teacher_logits[:count].float(), data.student_logits[:count].float()
    labels = [int(label) for label in data.test.labels[:count]]
    pictures = np.stack([example_picture(data.test.inputs[index]) for index in range(count)])
    return {
        "classes": [str(name) for name in data.test.classes],
        "examples": {"labels": labels, "teacher_logits": teacher.tolist(), "student_logits": student.tolist(),
                     "gradient_limits": gradient_limits(teacher, student, torch.tensor(labels)).tolist(),
                     "pictures": {"shape": list(pictures.shape[1:]), "base64": base64.b64encode(
                         np.round(pictures * 255).astype(np.uint8).tobytes()).decode()}},
        "grid": panels["grid"].page(),
        "specs": {name: panel.spec() for name, panel in panels.items()},
        "charts": {"curves": panels["curves"].data()},
        "controls": controls(count),
        "hideable": list(HIDEABLE),
        "defaults": {"T": experiment.TEMPERATURE, "alpha": experiment.ALPHA, "example": 0},
        "train": {"epochs": data.epochs, "description": train or (
            f"Distils a {_describe(data.student_spec)} student on {len(data.transfer)} labelled examples for "
            f"{data.epochs} epochs at the chosen T and α; scores it on {len(data.validation)} validation images.")},
    }


def _report_errors(handler):
    """Show an unexpected error on the page instead of losing it in a log: the page stays usable."""
    @functools.wraps(handler)
    def wrapper(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except Exception as error:  # shown to the user, not swallowed
            self.view.error = f"Could not update: {_shorten(str(error), 200)}"
    return wrapper


class Explorer:
    """Sliders for T, alpha and the example; panels that follow them; a "Train now" button.

    Display it (last expression of a cell, or `display(explorer)`). The page computes and draws every move
    itself; `explorer.view.T = 8` (or `alpha`, `example`) moves it from Python, clamped as the page clamps.
    """

    def __init__(self, data: ExplorerData, *, T: float = experiment.TEMPERATURE,
                 alpha: float = experiment.ALPHA, example: int = 0, hide=(), notes=()):
        self.data, self.panels = data, explorer_panels(data)
        self.last_training = None  # T, alpha, curve, seconds and interrupted of the latest "Train now"
        self.view = ExplorerView(payload=page_payload(data), T=T, alpha=alpha, example=example, hide=list(hide),
                                 notes=list(notes), link="anchor" if "SCRIPT_NAME" in os.environ else "text")
        self.view.on_msg(self._on_message)

    @classmethod
    def from_query(cls, data: ExplorerData, query: str | None = None, **defaults) -> Explorer:
        """An explorer at the settings a link asks for: `query`, or the page's own under Voilà
        (its QUERY_STRING); bad values are clamped or ignored, and the page says which."""
        query = os.environ.get("QUERY_STRING", "") if query is None else query
        settings, notes = parse_view(query, len(data.test))
        return cls(data, **{**defaults, **settings}, notes=notes)

    def _repr_mimebundle_(self, **kwargs):
        """The live page, with a picture of the panels and a line of text for pages read without a kernel. Not
        under Voila, whose page is always live: there the picture would cost the kernel a second of drawing at
        every visit and add 300 kB to the page, for nothing anyone sees."""
        bundle, metadata = self.view._repr_mimebundle_(**kwargs)
        if os.environ.get("SERVER_SOFTWARE", "").startswith("voila/"):  # Voila sets it for its kernels
            return bundle, metadata
        view = self.view
        figure = self.static_panels()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        picture, picture_metadata = figure_bundle(buffer.getvalue(), smallest_font_px=smallest_font_px(figure), alt=(
            f"The distillation explorer at T = {view.T:g}, alpha = {view.alpha:g}, test image {int(view.example)}: "
            "the image; the teacher's and the student's soft targets; the loss split into its teacher and label "
            "terms; Train now's learning curves; the per-logit gradients with and without T squared; and the grid "
            "of trained students' validation accuracy over T and alpha. Run this notebook, or open it with Voila, "
            "to move its sliders."))
        return {**bundle, **picture}, {**metadata, **picture_metadata}

    def static_panels(self):
        """The panels at the page's settings, drawn by matplotlib from the same chart descriptions."""
        view, panels = self.view, self.panels
        shown = chart_data(self.data, panels, view.T, view.alpha, int(view.example))
        shown["curves"] = panels["curves"].data(view.training.get("curve"), view.training.get("label", "Train now"))
        names = ("picture", "soft", "loss", "curves", "gradients", "grid")
        return static_figure([(panels[name].spec(), shown[name]) for name in names])

    def _on_message(self, widget, content, buffers) -> None:
        if content.get("train"):
            self.train()

    @_report_errors
    def train(self) -> None:
        """"Train now": distil a student at the page's T and alpha, telling the page each epoch and the result."""
        data, view = self.data, self.view
        T, alpha = view.T, view.alpha
        started = {"running": True, "done": 0, "epochs": data.epochs, "warning": "",
                   "text": f"Distilling at T = {T:.3g}, α = {alpha:.2f} ..."}
        view.error, view.training = "", started
        start, interrupted = time.perf_counter(), False
        try:
            def on_epoch(done):
                view.training = {**started, "done": done}
            _, curve = train_with_curve(data.student_spec, data.transfer, data.validation, teacher=data.teacher, T=T,
                                        alpha=alpha, epochs=data.epochs, seed=data.seed, device=data.device,
                                        on_epoch=on_epoch)
        except TrainingInterrupted as error:  # Ctrl-C: show how far it got
            curve, interrupted = error.partial or [], True
        except Exception:
            view.training = {**started, "running": False, "text": "Training failed."}
            raise
        seconds = time.perf_counter() - start
        baseline = f"{data.baseline_curve[-1]:.3f}" if data.baseline_curve else "not measured"
        accuracy = f"validation accuracy {curve[-1]:.3f}" if curve else "no epoch finished"
        view.training = {
            "running": False, "done": len(curve), "epochs": data.epochs,
            "warning": f"Interrupted after {len(curve)} of {data.epochs} epochs: " if interrupted else "",
            "text": f"Distilled at T = {T:.3g}, α = {alpha:.2f} in {seconds:.1f} s: {accuracy} (baseline {baseline}; "
                    "one student each).",
            "curve": [round(value, 4) for value in curve], "label": f"distilled, T = {T:.3g}, α = {alpha:.2f}"}
        self.last_training = {"T": T, "alpha": alpha, "curve": curve, "seconds": seconds, "interrupted": interrupted}


def _describe(spec: dict) -> str:
    """'2x100' for an MLP spec: how the explorer's text names a student."""
    sizes = spec.get("hidden") or spec.get("channels")
    return "x".join(str(size) for size in sizes) if len(set(sizes)) > 1 else f"{len(sizes)}x{sizes[0]}"
