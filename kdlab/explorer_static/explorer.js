// The distillation explorer in the page: it computes and draws every panel from logits it was sent once.
//
// Why in the page: a move of T, α or the example changes only closed-form functions of numbers the page already
// holds (each shown image's teacher and student logits, its label, the trained grid), so the page recomputes them
// and repaints in the same task as the key press, with no round trip to a kernel. The maths is kdlab.losses'
// (tests/test_explorer_javascript.py runs both on the same inputs); the kernel only loads the data and runs "Train now".
//
// One module, three hosts: the anywidget of Voilà and JupyterLab (`render`, kdlab.canvas.ExplorerView), the single
// HTML file `python -m kdlab explorer-html` writes (`mountStandalone`), and Node, where the tests import the pure
// functions. Text from a link or a readout reaches the page as text only: textContent and fillText, never markup.

// ----------------------------------------------------------------------------- numbers, as the kernel reads them

// Plain decimal numbers only, kdlab.canvas.NUMBER_PATTERN's twin: Number() alone would take "0x10" and "Infinity".
const NUMBER = /^[ \t\u00a0]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\u00a0]*$/;

export function parseNumber(text) {
  if (!NUMBER.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

export const roundHalfUp = (value) => Math.floor(value + 0.5);

const stripZeros = (text) => (text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text);

// Python's f"{value:.{digits}g}", so that the page writes every number as the kernel's text does; but a value
// exactly halfway between two printed ones (0.125 to 2 digits) is rounded up here, to even in Python.
export function formatG(value, digits = 6) {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  const [mantissa, power] = value.toExponential(digits - 1).split("e");
  const exponent = Number(power);
  if (exponent < -4 || exponent >= digits) {
    return `${stripZeros(mantissa)}e${exponent < 0 ? "-" : "+"}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  return stripZeros(value.toFixed(digits - 1 - exponent));
}

// ----------------------------------------------------------------------------- the maths of kdlab.losses

function logSoftmax(logits, T) {
  let largest = -Infinity;
  for (const z of logits) largest = Math.max(largest, z / T);
  let sum = 0;
  for (const z of logits) sum += Math.exp(z / T - largest);
  const logSum = largest + Math.log(sum);
  return logits.map((z) => z / T - logSum);
}

// softmax(logits / T): kdlab.losses.soft_targets.
export function softTargets(logits, T) {
  return logSoftmax(logits, T).map(Math.exp);
}

// One example's loss, kd_loss(return_parts=True): soft = α·T²·KL(p_teacher^T ‖ p_student^T), hard = (1−α)·CE.
// A KL is never negative; rounding can make it −1e−16, so each part is clamped at 0 (kdlab.panels.loss_panel).
export function lossParts(student, teacher, label, T, alpha) {
  const logTeacher = logSoftmax(teacher, T), logStudent = logSoftmax(student, T);
  let kl = 0;
  logTeacher.forEach((t, i) => { kl += Math.exp(t) * (t - logStudent[i]); });
  const ce = -logSoftmax(student, 1)[label];
  const soft = alpha * T * T * kl, hard = (1 - alpha) * ce;
  return { total: Math.max(0, soft + hard), soft: Math.max(0, soft), hard: Math.max(0, hard), kl: Math.max(0, kl),
           ce: Math.max(0, ce) };
}

// Each term's gradient on each student logit (kdlab.panels.gradient_panel): the soft term's is α·T²·(1/T)(q − p)
// (soft_term_gradient), shown also without T², and the hard term's (1−α)(softmax(z_s) − onehot(label)).
export function gradients(student, teacher, label, T, alpha) {
  const q = softTargets(student, T), p = softTargets(teacher, T), s = softTargets(student, 1);
  const withoutT2 = q.map((qi, i) => (alpha * (qi - p[i])) / T);
  return { soft: withoutT2.map((g) => g * T * T), soft_without_T2: withoutT2,
           hard: s.map((si, i) => (1 - alpha) * (si - (i === label ? 1 : 0))) };
}

// The grid cell nearest to (T, α), T on a log scale: kdlab.sweep.Grid.cell.
export function gridCell(grid, T, alpha) {
  const nearest = (values, distance) => values.reduce((best, v, i) => (distance(v) < distance(values[best]) ? i : best), 0);
  return [nearest(grid.temperatures, (t) => Math.abs(Math.log(T) - Math.log(t))),
          nearest(grid.alphas, (a) => Math.abs(alpha - a))];
}

const argmax = (values) => values.reduce((best, v, i) => (v > values[best] ? i : best), 0);
const largestMagnitude = (values) => Math.max(...values.map(Math.abs));

// ----------------------------------------------------------------------------- links (kdlab.widgets.parse_view)

const ECHO_CHARACTERS = 40, ECHO_NAMES = 5;  // of one text from a link, and of unknown names, echoed on the page
const VOILA_PARAMETERS = ["voila-template", "voila-theme", "template", "theme"];
const HIDDEN_CHARACTER = /[\p{C}\p{Z}]/u;  // what Python's repr() writes as an escape (all but the space)

function shorten(text, characters) {
  const points = Array.from(text);
  return points.length <= characters ? text : points.slice(0, characters - 1).join("") + "…";
}

// Someone's text as the page repeats it: shortened and quoted as Python's repr() quotes it.
export function quoted(text) {
  const short = shorten(text, ECHO_CHARACTERS);
  const quote = short.includes("'") && !short.includes('"') ? '"' : "'";
  const escapes = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", [quote]: "\\" + quote };
  let out = "";
  for (const character of short) {
    const code = character.codePointAt(0);
    if (character in escapes) out += escapes[character];
    else if (character !== " " && HIDDEN_CHARACTER.test(character)) {
      out += code < 0x100 ? "\\x" + code.toString(16).padStart(2, "0")
        : code < 0x10000 ? "\\u" + code.toString(16).padStart(4, "0") : "\\U" + code.toString(16).padStart(8, "0");
    } else out += character;
  }
  return quote + out + quote;
}

export function whyRefused(text) {
  return NUMBER.test(text) ? "is too large" : "is not a number (write it as 8, 0.5 or 1e-3)";
}

function echoNames(names) {
  const listed = names.slice(0, ECHO_NAMES).map(quoted).join(", ");
  return listed + (names.length > ECHO_NAMES ? ` and ${names.length - ECHO_NAMES} more` : "");
}

// {settings, notes}: what a link's query string asks for, each value clamped to its control's range or ignored,
// with one note per value changed or ignored; kdlab.widgets.parse_view's twin, for the page without a kernel.
export function parseView(query, controls, hideable) {
  const fields = new Map();
  for (const [key, value] of new URLSearchParams(query)) {
    if (!fields.has(key)) fields.set(key, []);
    fields.get(key).push(value);
  }
  const settings = {}, notes = [];
  for (const key of ["T", "alpha", "example"]) {
    if (!fields.has(key)) continue;
    const values = fields.get(key), { low, high } = controls[key];
    fields.delete(key);
    const text = values[values.length - 1], value = parseNumber(text);
    if (value === null) {
      notes.push(`${key}=${quoted(text)} in the link ${whyRefused(text)}: ignored`);
      continue;
    }
    const clamped = Math.min(Math.max(value, low), high);
    const given = key === "example" ? roundHalfUp(clamped) : clamped, shown = shorten(text, ECHO_CHARACTERS);
    if (clamped !== value) {
      notes.push(`${key}=${shown} in the link is outside ${formatG(low)} to ${formatG(high)}: ${formatG(given)} is shown`);
    } else if (given !== value) {
      notes.push(`${key}=${shown} in the link is not a whole number: ${formatG(given)} is shown`);
    }
    settings[key] = given;
  }
  const asked = (fields.get("hide") || []).flatMap((part) => part.split(",")).filter((name) => name);
  fields.delete("hide");
  settings.hide = asked.filter((name) => hideable.includes(name));
  const unknownPanels = asked.filter((name) => !hideable.includes(name));
  if (unknownPanels.length) {
    notes.push(`hide=${echoNames(unknownPanels)} in the link names no panel (known: ${hideable.join(", ")}): ignored`);
  }
  const unknownKeys = [...fields.keys()].filter((key) => !VOILA_PARAMETERS.includes(key));
  if (unknownKeys.length) notes.push(`${echoNames(unknownKeys)} in the link: not a setting of the explorer, ignored`);
  return { settings, notes };
}

// The query string of a link that opens the explorer at these settings.
export function viewQuery({ T, alpha, example }, hide) {
  const query = `T=${encodeURIComponent(formatG(T, 3))}&alpha=${encodeURIComponent(alpha.toFixed(2))}&example=${example}`;
  return hide.length ? `${query}&hide=${hide.map(encodeURIComponent).join(",")}` : query;
}

// ----------------------------------------------------------------------------- what each panel shows

function picture(pictures, example) {  // (H, W) or (H, W, 3) values in [0, 1], from the bytes sent once
  const [height, width, channels = 1] = pictures.shape, size = height * width * channels;
  const bytes = pictures.bytes.subarray(example * size, (example + 1) * size);
  return Array.from({ length: height }, (_, i) => Array.from({ length: width }, (_, j) => {
    const at = (i * width + j) * channels;
    return channels === 1 ? bytes[at] / 255 : Array.from(bytes.subarray(at, at + channels), (b) => b / 255);
  }));
}

// What every panel but the curves shows at (T, α, example): the data kdlab.panels' panel objects describe.
export function panelData(page, { T, alpha, example }) {
  const { classes, examples, grid } = page;
  const teacher = examples.teacher_logits[example], student = examples.student_logits[example];
  const label = examples.labels[example], name = classes[label], t = formatG(T, 3), a = alpha.toFixed(2);
  const soft = { teacher: softTargets(teacher, T), student: softTargets(student, T) };
  const loss = lossParts(student, teacher, label, T, alpha), heights = [loss.soft, loss.hard, loss.total];
  const slopes = gradients(student, teacher, label, T, alpha), limit = examples.gradient_limits[example];
  const [row, column] = gridCell(grid, T, alpha), interval = grid.intervals[row][column];
  const spread = interval ? `95 % CI over ${grid.covered}: ${interval[0].toFixed(3)}–${interval[1].toFixed(3)}`
    : "one student: no interval";
  return {
    picture: { pixels: picture(examples.pictures, example),
               title: `#${example}: a ${name}\nteacher says ${classes[argmax(teacher)]}, student ${classes[argmax(student)]}` },
    soft: { values: [soft.teacher, soft.student], title: `(a) Soft targets at T = ${t}`,
            caption: `T = ${t}: p(${name}) teacher ${soft.teacher[label].toFixed(3)}, ` +
                     `student ${soft.student[label].toFixed(3)}` },
    loss: { values: [heights], labels: heights.map((h) => formatG(h, 3)), ylim: [0, Math.max(...heights) * 1.25 || 1],
            title: `(b) The loss at T = ${t}, α = ${a}` },
    gradients: { values: [slopes.soft, slopes.soft_without_T2, slopes.hard], ylim: [-limit, limit],
                 title: `(c) Gradients at T = ${t}, α = ${a}\nlargest |soft| ${formatG(largestMagnitude(slopes.soft), 2)}, ` +
                        `without T² ${formatG(largestMagnitude(slopes.soft_without_T2), 2)}` },
    grid: { highlight: [row, column],  // the sliders' T and α need not be a cell's: the title says which cell
            title: `(d) Nearest grid cell: T = ${formatG(grid.temperatures[row])}, α = ${formatG(grid.alphas[column])}\n` +
                   `${grid.measure} ${grid.accuracy[row][column].toFixed(3)}\n${spread}` },
  };
}

// The page data as sent (JSON), made ready to compute from: the pictures' bytes decoded once.
export function preparePage(page) {
  const pictures = page.examples.pictures;
  const bytes = Uint8Array.from(atob(pictures.base64), (c) => c.charCodeAt(0));
  return { ...page, examples: { ...page.examples, pictures: { shape: pictures.shape, bytes } } };
}

// ----------------------------------------------------------------------------- drawing on a canvas

// Sizes in CSS pixels, drawn 1:1 (drawChart): nothing under 11 px, which a projector needs (issue 23).
const FONT = "12px sans-serif", SMALL_FONT = "11px sans-serif", TITLE_FONT = "bold 13px sans-serif";

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
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  let y = 3;
  String(data.title || "").split("\n").forEach((line, i) => {  // a bold headline, then plain lines of numbers
    ctx.font = i ? FONT : TITLE_FONT;
    ctx.fillText(line, spec.width / 2, y, spec.width - 4);
    y += i ? 15 : 16;
  });
  if (legend.length) {  // a row above the plot: it never covers data
    ctx.font = FONT;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    const items = legend.map((item) => ({ ...item, w: 26 + ctx.measureText(item.label).width }));
    const total = items.reduce((sum, item) => sum + item.w, 0) - 10;
    let x = Math.max(4, (spec.width - total) / 2);
    y += 8;
    for (const item of items) {
      if (x + item.w - 10 > spec.width) { x = 4; y += 15; }
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
  const note = spec.note ? spec.note.split("\n") : [];  // under the axis label, a line each
  // spec.right leaves room for a colour bar
  const box = frame(ctx, { ...spec, left: 42, bottom: 36 + 13 * note.length }, data, []);
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
      ctx.font = SMALL_FONT;
      ctx.fillText(spec.text[r][c], x + cw / 2, y + ch / 2, cw - 2);
    }
  }
  ctx.fillStyle = "#000";
  ctx.font = FONT;
  ctx.textAlign = "right";
  spec.rows.forEach((name, r) => ctx.fillText(name, box.x - 4, box.y + (r + 0.5) * ch));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  spec.columns.forEach((name, c) => ctx.fillText(name, box.x + (c + 0.5) * cw, box.y + box.h + 3));
  ctx.fillText(spec.xlabel, box.x + box.w / 2, box.y + box.h + 18);
  ctx.font = SMALL_FONT;
  note.forEach((line, i) => ctx.fillText(line, spec.width / 2, box.y + box.h + 34 + 13 * i, spec.width - 4));
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
  ctx.font = SMALL_FONT;
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
  for (const t of niceTicks(spec.xlim[0], spec.xlim[1], 4)) {
    const text = tickText(t), half = ctx.measureText(text).width / 2;
    ctx.fillText(text, Math.min(Math.max(X(t), half), spec.width - half), box.y + box.h + 3);
  }
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

export const DRAW = { bars, heatmap, lines, image };

function drawChart(canvas, spec, data) {
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== spec.width * ratio || canvas.height !== spec.height * ratio) {
    canvas.width = spec.width * ratio;
    canvas.height = spec.height * ratio;
    canvas.style.width = spec.width + "px";  // the stylesheet shrinks it, keeping its shape, on a narrow screen
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  DRAW[spec.kind](ctx, spec, data);
}

// ----------------------------------------------------------------------------- the explorer's page

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A slider over [low, high] (a log scale if `log`) whose arrow keys step between `stops` (PageUp/PageDown: five
// stops, Home/End: the ends), with a readout that takes a typed number on Enter: clamped into range, or refused.
function slider(control, css, { moved, typed }) {
  const box = element("div", `kdlab-slider ${css}`), label = element("label", "", control.description);
  const range = element("input"), readout = element("div", "widget-readout");
  range.type = "range"; range.min = 0; range.max = 1; range.step = "any";
  range.setAttribute("aria-label", control.description);
  readout.contentEditable = "true";
  readout.spellcheck = false;
  readout.setAttribute("role", "textbox");
  readout.setAttribute("aria-label", `${control.description}, typed`);
  box.append(label, range, readout);

  const { low, high, log, stops } = control;
  const position = (v) => (log ? Math.log(v / low) / Math.log(high / low) : (v - low) / (high - low));
  const valueAt = (p) => (log ? low * Math.pow(high / low, p) : low + p * (high - low));
  const rounded = (v) => (control.whole ? roundHalfUp(v)
                          : log ? Number(v.toPrecision(control.precision)) : Number(v.toFixed(control.precision)));
  let value;
  const show = (v) => {
    value = v;
    range.value = position(v);
    if (document.activeElement !== readout) readout.textContent = String(rounded(v));
  };

  range.addEventListener("input", () => {
    const v = rounded(valueAt(Number(range.value)));
    readout.textContent = String(v);
    moved(v, false);
  });
  const STEPS = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, PageUp: 5, PageDown: -5 };
  range.addEventListener("keydown", (event) => {
    const tolerance = 1e-9 * Math.max(1, Math.abs(value));
    let next;
    if (event.key === "Home") next = stops[0];
    else if (event.key === "End") next = stops[stops.length - 1];
    else if (event.key in STEPS) {
      const n = STEPS[event.key];
      const above = stops.findIndex((s) => s > value + tolerance);
      const below = stops.findLastIndex((s) => s < value - tolerance);
      next = n > 0 ? stops[above < 0 ? stops.length - 1 : Math.min(stops.length - 1, above + n - 1)]
                   : stops[below < 0 ? 0 : Math.max(0, below + n + 1)];
    } else return;
    event.preventDefault();
    moved(next, true);
  });
  const commit = () => {
    const text = readout.textContent, number = parseNumber(text);
    if (number === null) {
      readout.textContent = String(rounded(value));
      typed(`${control.description}: ${quoted(text)} ${whyRefused(text)}; kept ${formatG(value)}.`, value);
      return;
    }
    const clamped = Math.min(Math.max(number, low), high), v = control.whole ? roundHalfUp(clamped) : clamped;
    readout.textContent = String(rounded(v));
    moved(v, true);
    if (clamped !== number) {
      typed(`${control.description} = ${formatG(number)} is outside ${formatG(low)} to ${formatG(high)}: ` +
            `clamped to ${formatG(clamped)}.`, v);
    }
  };
  readout.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); commit(); readout.blur(); }
    else if (event.key === "Escape") readout.blur();
  });
  readout.addEventListener("blur", () => show(value));
  return { box, show };
}

const PANELS = { picture: "kdlab-example-image", soft: "kdlab-soft-targets", loss: "kdlab-loss",
                 gradients: "kdlab-gradients", grid: "kdlab-grid", curves: "kdlab-curves" };

// Build the explorer in `el` and return what a host calls to move it: update({T, alpha, example}), notice({control,
// value, text}), error(text), notes([text]), training({...}). The host gives the starting `state`, `hide`, `notes`,
// how to show the link (`link`: "anchor", "text" or "address"), `changed(state)`, called after the page moved,
// and `train()`, or null where no kernel can train.
export function mount(el, sent, host) {
  const page = preparePage(sent), state = { ...host.state }, hide = host.hide || [];
  let linkNotes = host.notes || [], notice = null, failure = null, statusShown = null;
  let frameQueued = false, unsent = false;  // a frame is asked for; the page moved since the host was told
  const drawn = {};

  const root = element("div", "kdlab-explorer");
  const sliders = Object.fromEntries(Object.entries({ T: "kdlab-temperature", alpha: "kdlab-alpha",
                                                      example: "kdlab-example" }).map(([name, css]) => [
    name, slider(page.controls[name], css, {
      moved: (value, now) => move(name, value, now),
      typed: (text, value) => { notice = { control: name, value, text }; showStatus(); },
    })]));
  const charts = {}, parts = {};
  for (const [name, css] of Object.entries(PANELS)) {
    parts[name] = element("div", `kdlab-panel ${css}`);
    charts[name] = element("canvas");
    parts[name].append(charts[name]);
  }
  const caption = element("div", "kdlab-readout");
  parts.soft.append(caption);
  const status = element("div", "kdlab-status"), link = element("div", "kdlab-link");

  const button = element("button", "kdlab-train", "▶ Train now");
  button.title = "Distil a student at the chosen T and α";
  const progress = element("progress", "kdlab-progress"), trainStatus = element("div", "kdlab-train-status");
  const progressLabel = element("label", "kdlab-progress-label", "epochs ");
  progress.max = page.train.epochs;
  progress.value = 0;
  progressLabel.append(progress);
  trainStatus.textContent = page.train.description;
  if (host.train) button.addEventListener("click", () => host.train());
  else button.disabled = true;
  parts.train = element("div", "kdlab-train-part");
  const trainRow = element("div", "kdlab-train-row");
  trainRow.append(button, progressLabel);
  parts.train.append(trainRow, trainStatus, parts.curves);

  const column = (...children) => { const c = element("div", "kdlab-column"); c.append(...children); return c; };
  root.append(
    column(column(sliders.T.box, sliders.alpha.box, sliders.example.box, parts.picture, status, link), parts.train),
    column(parts.soft, parts.gradients), column(parts.loss, parts.grid));
  for (const name of hide) if (parts[name]) parts[name].hidden = true;
  el.append(root);

  let curves = page.charts.curves;
  const draw = (name, data) => {
    const key = JSON.stringify(data);
    if (drawn[name] === key || parts[name].hidden) return;
    drawChart(charts[name], page.specs[name], data);
    drawn[name] = key;
  };

  function showStatus() {
    const lines = [...linkNotes.map((text) => ["kdlab-note", text]), ...(notice ? [["kdlab-note", notice.text]] : []),
                   ...(failure ? [["kdlab-alert", failure]] : [])];
    const key = JSON.stringify(lines);
    if (key === statusShown) return;
    statusShown = key;
    status.replaceChildren(...lines.map(([css, text]) => element("div", css, text)));
    status.hidden = !lines.length;  // no empty line: the explorer fits a zoomed projector with little to spare
  }

  function showLink() {
    const query = "?" + viewQuery(state, hide);
    if (link.dataset.query === query) return;
    link.dataset.query = query;
    if (host.link === "text") {  // JupyterLab: the page has no address of its own to add it to
      link.replaceChildren("This view, after a Voilà page's address: ", element("code", "", query));
      return;
    }
    const anchor = element("a", "", query);
    anchor.href = query;
    if (host.link === "anchor") anchor.target = "_blank";
    link.replaceChildren("Link to this view: ", anchor);
  }

  function redraw() {
    frameQueued = false;
    try {
      const data = panelData(page, state);
      for (const name of ["soft", "loss", "gradients", "grid", "picture"]) draw(name, data[name]);
      caption.textContent = data.soft.caption;
    } catch (error) {  // shown to the reader, not lost in the console: the page stays usable
      failure = `Could not update: ${shorten(String(error && error.message || error), 200)}`;
    }
    draw("curves", curves);
    showLink();
    showStatus();
    if (unsent) {  // after drawing, so that telling the host (the kernel, the address) never delays the panels
      unsent = false;
      host.changed({ ...state });
    }
  }

  function later() { if (!frameQueued) { frameQueued = true; requestAnimationFrame(redraw); } }

  function move(name, value, now) {  // a move made in the page: drawn at once, or once per frame while dragged
    if (state[name] !== value) {
      state[name] = value;
      if (notice && notice.control === name && notice.value !== value) notice = null;
      failure = null;
    }
    sliders[name].show(value);
    unsent = true;
    if (now) redraw();
    else later();
  }

  for (const name of Object.keys(sliders)) sliders[name].show(state[name]);
  redraw();
  return {
    update(values) {  // moved by the host (the kernel, from Python): drawn in the next frame
      for (const [name, value] of Object.entries(values)) {
        if (state[name] === value) continue;
        state[name] = value;
        sliders[name].show(value);
        if (notice && notice.control === name && notice.value !== value) notice = null;
        later();
      }
    },
    notice(given) { if (given && given.text) { notice = given; showStatus(); } },
    error(text) { failure = text || null; showStatus(); },
    notes(texts) { linkNotes = texts; showStatus(); },
    training(run) {
      if (!run || run.epochs === undefined) return;
      button.disabled = Boolean(run.running);
      progress.max = run.epochs;
      progress.value = run.done;
      trainStatus.replaceChildren(...(run.warning ? [element("b", "kdlab-warning", run.warning)] : []), run.text);
      if (run.curve) {
        const lines = [...page.charts.curves.lines];
        lines[1] = { ...lines[1], x: run.curve.map((_, i) => i + 1), y: run.curve, label: run.label };
        curves = { ...page.charts.curves, lines };
        later();
      }
    },
  };
}

// The single-file page: the link's settings from its address, the address kept at the view's link (so that it
// can be copied or bookmarked), and "Train now" shown as unavailable.
export function mountStandalone(el, page) {
  const { settings, notes } = parseView(location.search, page.controls, page.hideable);
  const state = { T: settings.T ?? page.defaults.T, alpha: settings.alpha ?? page.defaults.alpha,
                  example: settings.example ?? page.defaults.example };
  let pending = null;
  return mount(el, page, {
    state, notes, hide: settings.hide, link: "address", train: null,
    changed(moved) {  // the address follows at most ten times a second: browsers throttle faster rewrites
      const first = pending === null;
      pending = moved;
      if (first) {
        setTimeout(() => { history.replaceState(null, "", "?" + viewQuery(pending, settings.hide)); pending = null; }, 100);
      }
    },
  });
}

// ----------------------------------------------------------------------------- the anywidget (Voilà, JupyterLab)

const STATE = ["T", "alpha", "example"];

// JupyterLab's Run All makes the last cell active and scrolls it into view as the run starts, before this output
// exists, and leaves the view there: the explorer, drawn seconds later, would be off screen or cut off. So when the
// notebook's active cell is the explorer's or one after it (the run that drew it went on from here), its first
// layout scrolls the notebook the least that shows it whole (its top, if it is taller than the notebook's view).
// Later outputs come below it and leave the view where it is. A notebook opened with saved output (the active cell
// above), Voilà and the single file never move.
export function revealAfterRun(el, frames = 60) {
  const again = () => { if (frames > 0) requestAnimationFrame(() => revealAfterRun(el, frames - 1)); };
  if (!el.isConnected) return again();  // not in the page yet
  const cell = el.closest(".jp-Cell");
  let next = cell;
  while (next && !next.classList.contains("jp-mod-active")) next = next.nextElementSibling;
  if (!next) return;
  let scroller = cell.parentElement;
  while (scroller && !/(auto|scroll)/.test(getComputedStyle(scroller).overflowY)) scroller = scroller.parentElement;
  const box = el.getBoundingClientRect();
  if (!scroller || box.height === 0) return again();
  const area = scroller.getBoundingClientRect();
  const above = box.top - area.top, below = box.bottom - area.bottom;
  if (above < 0 || box.height > area.height) scroller.scrollTop += above;
  else if (below > 0) scroller.scrollTop += below;
}

function render({ model, el }) {
  const values = () => Object.fromEntries(STATE.map((name) => [name, model.get(name)]));
  const view = mount(el, model.get("payload"), {
    state: values(), hide: model.get("hide"), notes: model.get("notes"), link: model.get("link"),
    changed(state) { model.set(state); model.save_changes(); },
    train: () => model.send({ train: true }),
  });
  view.training(model.get("training"));
  view.notice(model.get("notice"));
  requestAnimationFrame(() => revealAfterRun(el));
  const listeners = {
    "change:T": () => view.update(values()), "change:alpha": () => view.update(values()),
    "change:example": () => view.update(values()), "change:notes": () => view.notes(model.get("notes")),
    "change:notice": () => view.notice(model.get("notice")), "change:error": () => view.error(model.get("error")),
    "change:training": () => view.training(model.get("training")),
  };
  for (const [event, listener] of Object.entries(listeners)) model.on(event, listener);
  return () => { for (const [event, listener] of Object.entries(listeners)) model.off(event, listener); };
}

export default { render };
