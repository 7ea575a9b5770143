"""Two small browser widgets (anywidget) for the explorer: a chart drawn on a <canvas>, and a slider.

Why not matplotlib in the browser: ipympl renders each figure to a PNG in the kernel and ships
it, about 80 ms a panel on two cores, so a move of T repainted four panels in ~350 ms. Here the
kernel sends only the numbers (kdlab.panels builds them) and the browser draws them in a few
milliseconds, at most once per animation frame: a burst of updates during a drag is coalesced
into one repaint of the latest values, and each chart's title is drawn from the same message as
its bars, so the two never disagree.

The slider keeps T on a log scale, steps between `stops` with the arrow keys (PageUp/PageDown:
five stops, Home/End: the ends), sends at most one value per frame while dragged, and takes a
typed value in its readout (Enter): out of range it is clamped, and the kernel is told; text that is not
a number is refused, and the kernel is told that too, so the page can say why.
The readout reads numbers by the grammar links are read by (`NUMBER_PATTERN`, `parse_number`), and a
whole-number slider rounds half up (`round_half_up`) in the page as in the kernel.
"""

from __future__ import annotations

import json
import math
import re

import anywidget
import traitlets

__all__ = ["Chart", "NUMBER_PATTERN", "PARSE_NUMBER_JS", "Slider", "parse_number", "round_half_up"]

# Plain decimal numbers only: optional sign, digits, optional fraction, optional exponent, spaces around. Python's
# float() alone would also take "1_0", fullwidth digits, "nan" and "inf"; JavaScript's Number() "0x10" and "Infinity".
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


# The readout's parser, the page's twin of parse_number (tests run it in Node beside the Python).
PARSE_NUMBER_JS = f"""
const NUMBER = new RegExp({json.dumps(f"^(?:{NUMBER_PATTERN})$")});
function parseNumber(text) {{
  if (!NUMBER.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}}
"""

_CHART_ESM = r"""
const FONT = "12px sans-serif";

function niceTicks(low, high, count) {
  const span = high - low;
  if (!(span > 0)) return [low];
  const raw = span / count, magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(low / step - 1e-9) * step; t <= high + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}
const tickText = (v) => String(Number(v.toPrecision(3)));

function frame(ctx, spec, data, legend) {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, spec.width, spec.height);
  ctx.fillStyle = "#000";
  ctx.font = "bold 13px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  let y = 3;
  for (const line of String(data.title || "").split("\n")) {
    ctx.fillText(line, spec.width / 2, y, spec.width - 4);
    y += 16;
  }
  if (legend.length) {  // a row above the plot: it never covers data
    ctx.font = FONT;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    const items = legend.map((item) => ({ ...item, w: 28 + ctx.measureText(item.label).width }));
    const total = items.reduce((sum, item) => sum + item.w, 0);
    let x = Math.max(4, (spec.width - total) / 2);
    y += 8;
    for (const item of items) {
      if (x + item.w > spec.width) { x = 4; y += 15; }
      ctx.fillStyle = item.colour;
      ctx.fillRect(x, y - 5, 12, 10);
      ctx.fillStyle = "#000";
      ctx.fillText(item.label, x + 16, y);
      x += item.w;
    }
    y += 8;
  }
  const left = spec.left ?? 52, bottom = spec.bottom ?? 36, top = y + 6;
  return { x: left, y: top, w: spec.width - left - (spec.right ?? 8), h: spec.height - top - bottom };
}

function yAxis(ctx, spec, box, ylim) {
  const Y = (v) => box.y + box.h * (1 - (v - ylim[0]) / (ylim[1] - ylim[0]));
  ctx.font = FONT;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.lineWidth = 1;
  for (const t of niceTicks(ylim[0], ylim[1], 4)) {
    ctx.strokeStyle = "#e6e6e6";
    ctx.beginPath(); ctx.moveTo(box.x, Y(t)); ctx.lineTo(box.x + box.w, Y(t)); ctx.stroke();
    ctx.fillStyle = "#000";
    ctx.fillText(tickText(t), box.x - 4, Y(t));
  }
  ctx.strokeStyle = "#000";
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  axisLabels(ctx, spec, box);
  return Y;
}

function axisLabels(ctx, spec, box) {
  ctx.fillStyle = "#000";
  ctx.font = FONT;
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText(spec.xlabel || "", box.x + box.w / 2, spec.height - 2);
  ctx.save();
  ctx.translate(2, box.y + box.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "top";
  ctx.fillText(spec.ylabel || "", 0, 0);
  ctx.restore();
}

function bars(ctx, spec, data) {
  const legend = spec.series.length > 1 ? spec.series : [];
  const box = frame(ctx, spec, data, legend), ylim = data.ylim || spec.ylim;
  const Y = yAxis(ctx, spec, box, ylim);
  const n = spec.categories.length, k = spec.series.length, slot = box.w / n, width = (slot * 0.8) / k;
  const base = Y(Math.min(Math.max(0, ylim[0]), ylim[1]));
  ctx.save();
  ctx.beginPath(); ctx.rect(box.x, box.y, box.w, box.h); ctx.clip();
  data.values.forEach((values, s) => {
    values.forEach((v, i) => {
      ctx.fillStyle = spec.colours ? spec.colours[i] : spec.series[s].colour;
      const x = box.x + slot * i + slot * 0.1 + width * s, top = Y(v);
      ctx.fillRect(x, Math.min(top, base), width, Math.abs(base - top));
    });
  });
  if (spec.zero_line) {
    ctx.strokeStyle = "#000";
    ctx.beginPath(); ctx.moveTo(box.x, base); ctx.lineTo(box.x + box.w, base); ctx.stroke();
  }
  ctx.restore();
  ctx.fillStyle = "#000";
  ctx.font = FONT;
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  (data.labels || []).forEach((text, i) => {
    ctx.fillText(text, box.x + slot * (i + 0.5), Math.max(box.y + 13, Y(data.values[0][i]) - 2));
  });
  ctx.textBaseline = "top";
  spec.categories.forEach((name, i) => ctx.fillText(name, box.x + slot * (i + 0.5), box.y + box.h + 3));
}

function heatmap(ctx, spec, data) {
  const box = frame(ctx, { ...spec, left: 48, bottom: 50 }, data, []);  // spec.right leaves room for a colour bar
  const rows = spec.rows.length, columns = spec.columns.length, cw = box.w / columns, ch = box.h / rows;
  ctx.font = FONT;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const x = box.x + c * cw, y = box.y + r * ch;
      ctx.fillStyle = spec.colours[r][c];
      ctx.fillRect(x, y, cw, ch);
      if (spec.marks && spec.marks[r][c]) {
        ctx.save();
        ctx.beginPath(); ctx.rect(x, y, cw, ch); ctx.clip();
        ctx.strokeStyle = "rgba(255,255,255,0.45)";
        ctx.lineWidth = 2;
        for (let d = -ch; d < cw; d += 8) {
          ctx.beginPath(); ctx.moveTo(x + d, y + ch); ctx.lineTo(x + d + ch, y); ctx.stroke();
        }
        ctx.restore();
      }
      ctx.fillStyle = spec.text_colours[r][c];
      ctx.fillText(spec.text[r][c], x + cw / 2, y + ch / 2);
    }
  }
  ctx.fillStyle = "#000";
  ctx.textAlign = "right";
  spec.rows.forEach((name, r) => ctx.fillText(name, box.x - 4, box.y + (r + 0.5) * ch));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  spec.columns.forEach((name, c) => ctx.fillText(name, box.x + (c + 0.5) * cw, box.y + box.h + 3));
  ctx.fillText(spec.xlabel, box.x + box.w / 2, box.y + box.h + 18);
  ctx.font = "10px sans-serif";
  ctx.fillText(spec.note || "", spec.width / 2, box.y + box.h + 34, spec.width - 4);
  ctx.save();
  ctx.translate(2, box.y + box.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.font = FONT;
  ctx.fillText(spec.ylabel, 0, 0);
  ctx.restore();
  if (data.highlight) {
    ctx.strokeStyle = "#e00";
    ctx.lineWidth = 3;
    ctx.strokeRect(box.x + data.highlight[1] * cw + 1.5, box.y + data.highlight[0] * ch + 1.5, cw - 3, ch - 3);
  }
  if (spec.colorbar) colorbar(ctx, spec, spec.colorbar, box);
}

function colorbar(ctx, spec, bar, box) {  // beside the cells: its bands low to high, ticks and label
  const x = box.x + box.w + 8, width = 12, band = box.h / bar.colours.length;
  const Y = (v) => box.y + box.h * (1 - (v - bar.low) / (bar.high - bar.low || 1));
  bar.colours.forEach((colour, i) => {
    ctx.fillStyle = colour;
    ctx.fillRect(x, box.y + box.h - (i + 1) * band, width, band + 0.5);
  });
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 1;
  ctx.strokeRect(x, box.y, width, box.h);
  ctx.fillStyle = "#000";
  ctx.font = "10px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  bar.ticks.forEach((t, i) => {
    ctx.beginPath(); ctx.moveTo(x + width, Y(t)); ctx.lineTo(x + width + 3, Y(t)); ctx.stroke();
    ctx.fillText(bar.tick_labels[i], x + width + 5, Y(t));
  });
  ctx.save();
  ctx.translate(spec.width - 2, box.y + box.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.font = FONT;
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText(bar.label, 0, 0, box.h + 40);
  ctx.restore();
}

function lines(ctx, spec, data) {
  const box = frame(ctx, spec, data, data.lines);
  const Y = yAxis(ctx, spec, box, spec.ylim);
  const X = (v) => box.x + (box.w * (v - spec.xlim[0])) / (spec.xlim[1] - spec.xlim[0]);
  ctx.textBaseline = "top";
  ctx.textAlign = "center";
  for (const t of niceTicks(spec.xlim[0], spec.xlim[1], 4)) ctx.fillText(tickText(t), X(t), box.y + box.h + 3);
  ctx.save();
  ctx.beginPath(); ctx.rect(box.x, box.y, box.w, box.h); ctx.clip();
  ctx.lineWidth = 2;
  for (const line of data.lines) {
    ctx.strokeStyle = line.colour;
    ctx.setLineDash(line.dash ? [6, 4] : []);
    ctx.beginPath();
    line.x.forEach((x, i) => (i ? ctx.lineTo(X(x), Y(line.y[i])) : ctx.moveTo(X(x), Y(line.y[i]))));
    ctx.stroke();
  }
  ctx.restore();
}

function image(ctx, spec, data) {
  const top = frame(ctx, spec, data, []).y - 4, pixels = data.pixels;
  const h = pixels.length, w = pixels[0].length, picture = new ImageData(w, h);
  pixels.forEach((row, i) => row.forEach((value, j) => {
    const rgb = Array.isArray(value) ? value.map((v) => 255 * v) : [0, 0, 0].map(() => 255 * (1 - value));
    picture.data.set([...rgb, 255], 4 * (i * w + j));
  }));
  const off = document.createElement("canvas");
  off.width = w; off.height = h;
  off.getContext("2d").putImageData(picture, 0, 0);
  const size = Math.min(spec.height - top - 2, spec.width);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, (spec.width - size) / 2, top, size, size);
}

const DRAW = { bars, heatmap, lines, image };

function render({ model, el }) {
  const canvas = document.createElement("canvas"), caption = document.createElement("div");
  el.append(canvas, caption);
  let queued = false;
  const draw = () => {
    queued = false;
    const spec = model.get("spec"), data = model.get("data");
    if (!spec.kind || !data || !Object.keys(data).length) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== spec.width * ratio || canvas.height !== spec.height * ratio) {
      canvas.width = spec.width * ratio;
      canvas.height = spec.height * ratio;
      canvas.style.width = spec.width + "px";
      canvas.style.height = spec.height + "px";
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    DRAW[spec.kind](ctx, spec, data);
    caption.className = spec.caption_class || "";
    caption.textContent = data.caption || "";
  };
  const schedule = () => { if (!queued) { queued = true; requestAnimationFrame(draw); } };
  model.on("change:data", schedule);
  model.on("change:spec", schedule);
  draw();
  return () => { model.off("change:data", schedule); model.off("change:spec", schedule); };
}
export default { render };
"""

_SLIDER_ESM = PARSE_NUMBER_JS + r"""
const roundHalfUp = (v) => Math.floor(v + 0.5);

function render({ model, el }) {
  const label = document.createElement("label"), range = document.createElement("input");
  const readout = document.createElement("div");
  label.textContent = model.get("description");
  range.type = "range"; range.min = 0; range.max = 1; range.step = "any";
  range.setAttribute("aria-label", model.get("description"));
  readout.className = "widget-readout";
  readout.contentEditable = "true";
  readout.spellcheck = false;
  el.classList.add("kdlab-slider");
  el.append(label, range, readout);

  const low = () => model.get("low"), high = () => model.get("high"), log = () => model.get("log");
  const position = (v) => (log() ? Math.log(v / low()) / Math.log(high() / low()) : (v - low()) / (high() - low()));
  const valueAt = (p) => (log() ? low() * Math.pow(high() / low(), p) : low() + p * (high() - low()));
  const rounded = (v) => (model.get("whole") ? roundHalfUp(v)
                          : log() ? Number(v.toPrecision(model.get("precision")))
                          : Number(v.toFixed(model.get("precision"))));
  const show = () => {
    const v = model.get("value");
    range.value = position(v);
    if (document.activeElement !== readout) readout.textContent = String(rounded(v));
  };
  const send = (v) => { model.set("value", v); model.save_changes(); };

  let dragged = null;  // the latest position while dragging, sent once per frame
  range.addEventListener("input", () => {
    const v = rounded(valueAt(Number(range.value)));
    readout.textContent = String(v);
    if (dragged === null) requestAnimationFrame(() => { send(dragged); dragged = null; });
    dragged = v;
  });
  const STEPS = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, PageUp: 5, PageDown: -5 };
  range.addEventListener("keydown", (event) => {
    const stops = model.get("stops"), v = model.get("value"), tolerance = 1e-9 * Math.max(1, Math.abs(v));
    let next;
    if (event.key === "Home") next = stops[0];
    else if (event.key === "End") next = stops[stops.length - 1];
    else if (event.key in STEPS) {
      const n = STEPS[event.key];
      const above = stops.findIndex((s) => s > v + tolerance);
      const below = stops.findLastIndex((s) => s < v - tolerance);
      next = n > 0 ? stops[above < 0 ? stops.length - 1 : Math.min(stops.length - 1, above + n - 1)]
                   : stops[below < 0 ? 0 : Math.max(0, below + n + 1)];
    } else return;
    event.preventDefault();
    send(next);
  });
  const commit = () => {
    const text = readout.textContent, typed = parseNumber(text);
    if (typed === null) {
      readout.textContent = String(rounded(model.get("value")));
      model.send({ refused: text });
      return;
    }
    const clamped = Math.min(Math.max(typed, low()), high());
    const value = model.get("whole") ? roundHalfUp(clamped) : clamped;
    send(value);
    if (clamped !== typed) model.send({ clamped: typed, to: clamped });
    readout.textContent = String(rounded(value));
  };
  readout.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); commit(); readout.blur(); }
    else if (event.key === "Escape") readout.blur();
  });
  readout.addEventListener("blur", show);
  model.on("change:value", show);
  show();
  return () => model.off("change:value", show);
}
export default { render };
"""

_CSS = """
.kdlab-slider { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
.kdlab-slider label { width: 5.5em; text-align: right; flex: none; }
.kdlab-slider input[type=range] { flex: 1; min-width: 5em; }
.kdlab-slider .widget-readout { min-width: 3.2em; padding: 0 4px; border: 1px solid #bbb; border-radius: 3px;
  text-align: right; cursor: text; outline: none; }
.kdlab-slider .widget-readout:focus { border-color: #1f77b4; }
.kdlab-readout { font-size: 13px; margin: 0 6px; }
"""


class Chart(anywidget.AnyWidget):
    """A chart drawn in the browser from `spec` (axes, labels, colours; set once) and `data` (per move)."""

    _esm = _CHART_ESM
    _css = _CSS
    spec = traitlets.Dict().tag(sync=True)
    data = traitlets.Dict().tag(sync=True)


class Slider(anywidget.AnyWidget):
    """A slider over [low, high], on a log scale if `log`, whose arrow keys step between `stops`.

    Values set from Python are clamped to the range too (and rounded half up if `whole`);
    `on_clamp(callback)` hears of every clamped value, typed in the browser or set here, as
    callback(asked, given); `on_refuse(callback)` of every text the readout refused, as callback(text).
    """

    _esm = _SLIDER_ESM
    _css = _CSS
    value = traitlets.Float().tag(sync=True)
    low = traitlets.Float(0.0).tag(sync=True)
    high = traitlets.Float(1.0).tag(sync=True)
    log = traitlets.Bool(False).tag(sync=True)
    stops = traitlets.List(traitlets.Float()).tag(sync=True)
    precision = traitlets.Int(3).tag(sync=True)  # significant digits on a log scale, else decimals
    whole = traitlets.Bool(False).tag(sync=True)  # whole numbers only
    description = traitlets.Unicode().tag(sync=True)

    def __init__(self, **kwargs):
        self._clamp_callbacks, self._refuse_callbacks = [], []
        super().__init__(**kwargs)
        self.on_msg(self._on_browser_message)

    def on_clamp(self, callback) -> None:
        self._clamp_callbacks.append(callback)

    def on_refuse(self, callback) -> None:
        self._refuse_callbacks.append(callback)

    @traitlets.validate("value")
    def _clamp(self, proposal):
        value = proposal["value"]
        if math.isnan(value):  # no range holds NaN: the explorer refuses it and keeps its last value
            return value
        clamped = min(max(value, self.low), self.high)
        if clamped != value:
            for callback in self._clamp_callbacks:
                callback(value, clamped)
        return round_half_up(clamped) if self.whole else clamped

    def _on_browser_message(self, widget, content, buffers) -> None:
        if "refused" in content:
            for callback in self._refuse_callbacks:
                callback(str(content["refused"]))
        else:
            for callback in self._clamp_callbacks:
                callback(content["clamped"], content["to"])
