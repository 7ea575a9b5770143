"""The explorer in the browser: one anywidget whose JavaScript computes and draws every panel.

Why in the page: ipympl rendered each figure to a PNG in the kernel, about 80 ms a panel on two cores; later
the kernel computed each move and shipped the numbers, one round trip per key press. Now the kernel sends
once what a move depends on (each shown image's teacher and student logits, its label and picture, the
trained grid, each chart's description: kdlab.widgets.page_payload), and the page computes a move of T,
alpha or the example and repaints it in the same task as the key press (explorer_static/explorer.js, whose
maths is tested equal to kdlab.losses). Only the three values travel back, for "Train now" and for Python
to read. The same JavaScript runs the single-file page (kdlab.explorer_html).

The page reads typed numbers by the grammar links are read by (`NUMBER_PATTERN`, `parse_number`), and a
whole-number control rounds half up (`round_half_up`) in the page as in the kernel.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import anywidget
import traitlets

__all__ = ["ExplorerView", "NUMBER_PATTERN", "STATIC", "parse_number", "round_half_up"]

STATIC = Path(__file__).parent / "explorer_static"  # the page's JavaScript and CSS

# Plain decimal numbers only: optional sign, digits, optional fraction, optional exponent, spaces around. Python's
# float() alone would also take "1_0", fullwidth digits, "nan" and "inf"; JavaScript's Number() "0x10" and "Infinity".
# The page's twin is NUMBER in explorer_static/explorer.js (tests/test_explorer_javascript.py holds them equal).
NUMBER_PATTERN = r"[ \t\u00a0]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\u00a0]*"


def parse_number(text: str) -> float | None:
    """The finite number `text` writes by NUMBER_PATTERN, else None: what a link and the readout accept."""
    if re.fullmatch(NUMBER_PATTERN, text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def round_half_up(value: float) -> float:
    """The one rounding rule of a whole-number slider, the page's `Math.floor(v + 0.5)`: Python's round()
    takes 2.5 to 2 where the page would show 3."""
    return float(math.floor(value + 0.5))


class ExplorerView(anywidget.AnyWidget):
    """The explorer's page: sliders for T, alpha and the example, every panel, the link and "Train now".

    `T`, `alpha` and `example` follow the page, and move it when set here: clamped into `payload["controls"]`'s
    ranges as the page clamps a typed value, with a `notice` that the page shows until that control moves; NaN
    is refused, keeping the last value, with a notice too. The page sends {"train": True} for "Train now", and
    `training` tells it how far that got and what it found.
    """

    _esm = STATIC / "explorer.js"
    _css = STATIC / "explorer.css"
    payload = traitlets.Dict().tag(sync=True)  # sent once: what every move is computed from
    T = traitlets.Float().tag(sync=True)
    alpha = traitlets.Float().tag(sync=True)
    example = traitlets.Float().tag(sync=True)
    hide = traitlets.List(traitlets.Unicode()).tag(sync=True)  # parts not shown: kdlab.widgets.HIDEABLE
    notes = traitlets.List(traitlets.Unicode()).tag(sync=True)  # plain text about the link that opened the page
    notice = traitlets.Dict().tag(sync=True)  # {"control", "value", "text"}, or {}
    error = traitlets.Unicode().tag(sync=True)  # what failed in the kernel, in plain text
    training = traitlets.Dict().tag(sync=True)  # "Train now": running, done, epochs, text, warning, curve, label
    link = traitlets.Unicode("text").tag(sync=True)  # "anchor" where the page has an address (Voila), else "text"

    @traitlets.validate("T", "alpha", "example")
    def _clamp(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        control = self.payload["controls"][name]
        if math.isnan(value):
            kept = getattr(self, name)
            self.notice = {"control": name, "value": kept,
                           "text": f"{control['description']} must be a number; kept {kept:.3g}."}
            return kept
        clamped = min(max(value, control["low"]), control["high"])
        given = round_half_up(clamped) if control["whole"] else clamped
        if clamped != value:
            self.notice = {"control": name, "value": given,
                           "text": f"{control['description']} = {value:g} is outside {control['low']:g} to "
                                   f"{control['high']:g}: clamped to {clamped:g}."}
        return given

    @traitlets.observe("T", "alpha", "example")
    def _drop_stale_notice(self, change) -> None:
        """A notice holds until its control leaves the value it was about, as in the page."""
        if self.notice.get("control") == change["name"] and change["new"] != self.notice["value"]:
            self.notice = {}
