"""The explorer: drag T and alpha and watch soft targets, the loss, its gradients and trained students change.

Thin wiring only. kdlab.panels computes what each panel shows and describes its chart;
kdlab.canvas draws the charts in the browser; kdlab.explorer_data loads what they show. A move
of a slider costs a few milliseconds in the kernel and one repaint in the browser.
A view can be shared as a link: Voilà hands the page's query string to the kernel
(`?T=8&alpha=0.5&example=12&hide=grid,train`), and `Explorer.from_query` opens with it.
A link is anyone's text: what the page echoes of it is escaped, shortened and listed a few names at a time.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import os
import re
import time
import urllib.parse

import ipywidgets as widgets

from kdlab import experiment
from kdlab.canvas import NUMBER_PATTERN, Chart, Slider, parse_number, round_half_up
from kdlab.explorer_data import ExplorerData, train_with_curve
from kdlab.interrupt import TrainingInterrupted
from kdlab.panels import (
    ALPHA_RANGE,
    T_RANGE,
    CurvesPanel,
    GradientPanel,
    GridPanel,
    LossPanel,
    PicturePanel,
    SoftTargetsPanel,
    all_panels,
    example_picture,
    gradient_limit,
    static_figure,
)

__all__ = ["Explorer", "parse_view", "view_query"]

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
    ignored, with one note per value changed or ignored, for the page to show (as text: see _note)."""
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


def view_query(T: float, alpha: float, example: int, hide=()) -> str:
    """The query string of a link that opens the explorer at these settings."""
    fields = {"T": f"{T:.3g}", "alpha": f"{alpha:.2f}", "example": str(example)}
    if hide:
        fields["hide"] = ",".join(hide)
    return urllib.parse.urlencode(fields, safe=",")


def _report_errors(handler):
    """Show an unexpected error in the explorer's status line instead of losing it in a log: the page stays usable."""
    @functools.wraps(handler)
    def wrapper(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except Exception as error:  # shown to the user, not swallowed
            self.status.value = _alert(f"Could not update: {_shorten(str(error), 200)}")
    return wrapper


def _small(markup: str) -> str:
    return f"<div style='font-size:12px; line-height:1.35'>{markup}</div>"


def _note(text: str) -> str:
    """A line of plain text for the status line, escaped: it may repeat a link's or an error's text."""
    return f"<div style='color:#a60; font-size:12px; line-height:1.35'>{html.escape(text, quote=False)}</div>"


def _alert(text: str) -> str:
    """A line of plain text in red for the status line, escaped as _note."""
    return f"<b style='color:#b00'>{html.escape(text, quote=False)}</b>"


class Explorer:
    """Sliders for T, alpha and the example; panels that follow them; a "Train now" button.

    Display it (last expression of a cell, or `display(explorer)`). Setting a slider's `.value`
    in Python updates the panels synchronously, which is how the tests drive it.
    """

    def __init__(self, data: ExplorerData, *, T: float = experiment.TEMPERATURE,
                 alpha: float = experiment.ALPHA, example: int = 0, hide=(), notes=()):
        self.data, self.hide = data, tuple(hide)
        self._link_notes = "".join(_note(text) for text in notes)
        self._notice = None  # (slider, value it was clamped to, text) until that slider moves
        self.status = widgets.HTML().add_class("kdlab-status")
        self.link = widgets.HTML().add_class("kdlab-link")
        self.temperature = self._slider("T", "kdlab-temperature", value=T, low=T_RANGE[0], high=T_RANGE[1],
                                        log=True, stops=T_STOPS, precision=3)
        self.alpha = self._slider("α", "kdlab-alpha", value=alpha, low=ALPHA_RANGE[0], high=ALPHA_RANGE[1],
                                  stops=ALPHA_STOPS, precision=2)
        self.example = self._slider("test image", "kdlab-example", value=example, low=0, high=len(data.test) - 1,
                                    stops=list(range(len(data.test))), precision=0, whole=True)
        self.train_button = widgets.Button(description="Train now", button_style="primary", icon="play",
                                           tooltip="Distil a student at the chosen T and α").add_class("kdlab-train")
        self.progress = widgets.IntProgress(value=0, min=0, max=data.epochs, description="epochs",
                                            layout=widgets.Layout(width="250px"))
        self.train_status = widgets.HTML(_small(
            f"Distils a {_describe(data.student_spec)} student on {len(data.transfer)} labelled examples for "
            f"{data.epochs} epochs at the chosen T and α; scores it on {len(data.validation)} validation images."
        )).add_class("kdlab-train-status")

        classes = data.test.classes
        self.panels = {"picture": PicturePanel(), "soft": SoftTargetsPanel(classes), "loss": LossPanel(),
                       "gradients": GradientPanel(classes), "grid": GridPanel(data.grid),
                       "curves": CurvesPanel(data.baseline_curve, data.teacher_accuracy, data.epochs)}
        css = {"picture": "kdlab-example-image", "soft": "kdlab-soft-targets", "loss": "kdlab-loss",
               "gradients": "kdlab-gradients", "grid": "kdlab-grid", "curves": "kdlab-curves"}
        charts = {name: panel.build(Chart().add_class(css[name])) for name, panel in self.panels.items()}
        self.panels["curves"].show()
        self.last_training = None  # T, alpha, curve, seconds and interrupted of the latest "Train now"
        self._last_good = {slider: slider.value for slider in (self.temperature, self.alpha, self.example)}

        for slider in (self.temperature, self.alpha):
            slider.observe(self._on_parameter, names="value")
        self.example.observe(self._on_example, names="value")
        self.train_button.on_click(self._on_train)
        self._on_example()

        controls = widgets.VBox([self.temperature, self.alpha, self.example, charts["picture"], self.status,
                                 self.link], layout=widgets.Layout(width="260px"))
        train = widgets.VBox([self.train_button, self.progress, self.train_status, charts["curves"]],
                             layout=widgets.Layout(width="260px"))
        self.parts = {"picture": charts["picture"], "soft": charts["soft"], "loss": charts["loss"],
                      "gradients": charts["gradients"], "grid": charts["grid"], "train": train}
        for name in self.hide:
            self.parts[name].layout.display = "none"
        wrap = widgets.Layout(flex_flow="row wrap", align_items="flex-start")
        self.widget = widgets.HBox([
            widgets.VBox([controls, train]),
            widgets.VBox([charts["soft"], charts["gradients"]]),
            widgets.VBox([charts["loss"], charts["grid"]]),
        ], layout=wrap).add_class("kdlab-explorer")

    @classmethod
    def from_query(cls, data: ExplorerData, query: str | None = None, **defaults) -> Explorer:
        """An explorer at the settings a link asks for: `query`, or the page's own under Voilà
        (its QUERY_STRING); bad values are clamped or ignored, and the page says which."""
        query = os.environ.get("QUERY_STRING", "") if query is None else query
        settings, notes = parse_view(query, len(data.test))
        return cls(data, **{**defaults, **settings}, notes=notes)

    def _slider(self, description: str, css_class: str, **options) -> Slider:
        slider = Slider(description=description, **options).add_class(css_class)
        slider.on_clamp(functools.partial(self._on_clamp, slider))
        slider.on_refuse(functools.partial(self._on_refuse, slider))
        return slider

    def _repr_mimebundle_(self, **kwargs):
        """The live widget, with a picture of the panels and a line of text for pages read without a kernel."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.static_png()).decode()
        bundle["text/plain"] = ("The distillation explorer: run this notebook (or open it with Voilà) to move its "
                                "sliders; the picture shows it at its current settings.")
        return bundle

    def static_png(self) -> bytes:
        """The panels as they are now, drawn by matplotlib from the same chart descriptions."""
        names = ("picture", "soft", "loss", "curves", "gradients", "grid")
        figure = static_figure([(self.panels[name].chart.spec, self.panels[name].chart.data) for name in names])
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    # -- observers
    @_report_errors
    def _on_example(self, change=None) -> None:
        if self._refuse_nan(self.example, "the test image"):
            return
        data, example = self.data, int(self.example.value)
        label = int(data.test.labels[example])
        self.panels["gradients"].limit = gradient_limit(data.teacher_logits[example], data.student_logits[example],
                                                        label)
        classes = data.test.classes
        teacher_guess, student_guess = (int(logits[example].argmax())
                                        for logits in (data.teacher_logits, data.student_logits))
        self.panels["picture"].show(example_picture(data.test.inputs[example]),
                                    f"#{example}: a {classes[label]}\nteacher says {classes[teacher_guess]}, "
                                    f"student {classes[student_guess]}")
        self.update()

    @_report_errors
    def _on_parameter(self, change) -> None:
        name = "T" if change["owner"] is self.temperature else "α"
        if not self._refuse_nan(change["owner"], name):
            self.update()

    def _refuse_nan(self, slider: Slider, name: str) -> bool:
        """NaN set from Python: put the last good value back and say so."""
        if math.isfinite(slider.value):
            self._last_good[slider] = slider.value
            return False
        slider.value = self._last_good[slider]
        self.status.value = _alert(f"{name} must be a number; kept {slider.value:.3g}.")
        return True

    def _on_clamp(self, slider: Slider, asked: float, given: float) -> None:
        self._notify(slider, given, f"{slider.description} = {asked:g} is outside {slider.low:g} to "
                                    f"{slider.high:g}: clamped to {given:g}.")

    def _on_refuse(self, slider: Slider, text: str) -> None:
        """Text typed into a readout that is no number: the page kept the value; say why."""
        self._notify(slider, slider.value, f"{slider.description}: {_quoted(text)} {_why_refused(text)}; "
                                           f"kept {slider.value:g}.")

    def _notify(self, slider: Slider, value: float, text: str) -> None:
        """Show `text` in the status line until `slider` leaves `value`."""
        self._notice = (slider, value, text)
        self.status.value = _note(text)

    def update(self) -> None:
        """Show every panel for the sliders' values, and the link to this view."""
        T, alpha, example = self.temperature.value, self.alpha.value, int(self.example.value)
        panels = all_panels(self.data, T, alpha, example)
        self.panels["soft"].show(panels["soft_targets"], T, int(self.data.test.labels[example]))
        self.panels["loss"].show(panels["loss"], T, alpha)
        self.panels["gradients"].show(panels["gradients"], T, alpha)
        self.panels["grid"].show(panels["grid"])
        query = view_query(T, alpha, example, self.hide)
        self.link.value = _small(f"Link to this view: <a href='?{query}' target='_blank'>?{query}</a>"
                                 if "SCRIPT_NAME" in os.environ else  # Voilà's page; elsewhere, say where it goes
                                 f"Link to this view, after the Voilà page's address: <code>?{query}</code>")
        if self._notice and self._notice[0].value != self._notice[1]:
            self._notice = None
        self.status.value = self._link_notes + (_note(self._notice[2]) if self._notice else "") or "&nbsp;"

    @_report_errors
    def _on_train(self, button=None) -> None:
        data, T, alpha = self.data, self.temperature.value, self.alpha.value
        self.train_button.disabled = True
        self.progress.value = 0
        self.train_status.value = _small(f"Distilling at T = {T:.3g}, α = {alpha:.2f} ...")
        start, interrupted = time.perf_counter(), False
        try:
            def on_epoch(done):
                self.progress.value = done
            _, curve = train_with_curve(data.student_spec, data.transfer, data.validation, teacher=data.teacher, T=T,
                                        alpha=alpha, epochs=data.epochs, seed=data.seed, device=data.device,
                                        on_epoch=on_epoch)
        except TrainingInterrupted as error:  # Ctrl-C: show how far it got
            curve, interrupted = error.partial or [], True
        finally:
            self.train_button.disabled = False
        seconds = time.perf_counter() - start
        self.panels["curves"].show(curve, f"distilled, T = {T:.3g}, α = {alpha:.2f}")
        baseline = f"{data.baseline_curve[-1]:.3f}" if data.baseline_curve else "not measured"
        accuracy = f"validation accuracy <b>{curve[-1]:.3f}</b>" if curve else "no epoch finished"
        cut_short = (f"<b style='color:#a60'>Interrupted after {len(curve)} of {data.epochs} epochs</b>: "
                     if interrupted else "")
        self.train_status.value = _small(f"{cut_short}Distilled at T = {T:.3g}, α = {alpha:.2f} in {seconds:.1f} s: "
                                         f"{accuracy} (baseline {baseline}; one student each).")
        self.last_training = {"T": T, "alpha": alpha, "curve": curve, "seconds": seconds, "interrupted": interrupted}


def _describe(spec: dict) -> str:
    """'2x100' for an MLP spec: how the explorer's text names a student."""
    sizes = spec.get("hidden") or spec.get("channels")
    return "x".join(str(size) for size in sizes) if len(set(sizes)) > 1 else f"{len(sizes)}x{sizes[0]}"
