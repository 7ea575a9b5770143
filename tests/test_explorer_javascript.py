"""The explorer's page code (kdlab/explorer_static/explorer.js), run in Node 20 beside the Python it twins: its maths
equals kdlab.losses, each panel shows what the kernel would draw, and links and typed numbers are read alike.
Without Node the tests are skipped and say so."""

import dataclasses
import json
import math
import shutil
import subprocess
import urllib.parse

import numpy as np
import pytest
import torch

from kdlab import widgets
from kdlab.canvas import STATIC, parse_number
from kdlab.explorer_data import ExplorerData
from kdlab.losses import kd_loss, soft_targets, soft_term_gradient
from kdlab.models import build_model, mlp_spec
from kdlab.panels import GridPanel, chart_data, explorer_panels, grid_panel
from kdlab.sweep import Grid
from kdlab.widgets import page_payload, parse_view

NODE = shutil.which("node")
TEMPERATURES = (0.05, 0.1, 0.5, 1.0, 2.5, 12.0, 50.0, 100.0)  # kdlab.losses' whole range, MIN_ to MAX_TEMPERATURE
ALPHAS = (0.0, 0.3, 0.9, 1.0)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """node(body, inputs): run JavaScript `body`, with `page` the page's module and `inputs` the JSON given, in
    Node; the JSON it prints with `print(value)`."""
    if NODE is None:
        pytest.skip("no Node.js to run the page's code (apt-get install -y nodejs)")
    folder = tmp_path_factory.mktemp("page")
    shutil.copy(STATIC / "explorer.js", folder / "explorer.mjs")  # .mjs: Node loads it as the ES module it is
    script = folder / "run.mjs"

    def run(body: str, inputs=None):
        script.write_text('import * as page from "./explorer.mjs";\nimport { readFileSync } from "fs";\n'
                          'const inputs = JSON.parse(readFileSync(0, "utf8"));\n'
                          'const print = (value) => console.log(JSON.stringify(value));\n' + body)
        result = subprocess.run([NODE, str(script)], input=json.dumps(inputs), capture_output=True, text=True,
                                cwd=folder)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    return run


def _logits(seed: int, scale: float, classes: int = 10) -> torch.Tensor:
    """(2, C) float32 logits, teacher and student, as the kernel holds them."""
    return torch.randn(2, classes, generator=torch.Generator().manual_seed(seed)) * scale


CASES = [(seed, scale) for seed, scale in enumerate((0.3, 1.0, 4.0, 12.0, 30.0))]


@pytest.fixture(scope="module")
def maths_in_the_page(node):
    """For each case, T and alpha: the page's soft targets, loss parts and gradients."""
    inputs = [{"teacher": _logits(seed, scale)[0].tolist(), "student": _logits(seed, scale)[1].tolist(),
               "label": seed % 10} for seed, scale in CASES]
    return node("""
print(inputs.map(({ teacher, student, label }) => TEMPERATURES.map((T) => ALPHAS.map((alpha) => ({
  teacher: page.softTargets(teacher, T), student: page.softTargets(student, T),
  loss: page.lossParts(student, teacher, label, T, alpha), gradients: page.gradients(student, teacher, label, T, alpha),
})))));
""".replace("TEMPERATURES", json.dumps(TEMPERATURES)).replace("ALPHAS", json.dumps(ALPHAS)), inputs)


def _kdlab(teacher, student, label, T, alpha) -> dict:
    """kdlab.losses on these logits, in their own dtype: the soft targets, the loss parts and each term's gradient."""
    student = student.clone().requires_grad_()
    parts = kd_loss(student[None], teacher[None], torch.tensor([label]), T=T, alpha=alpha, return_parts=True)
    (hard,) = torch.autograd.grad(parts.hard, student)
    soft = alpha * T**2 * soft_term_gradient(student.detach()[None], teacher[None], T)[0]
    return {"teacher": soft_targets(teacher, T), "student": soft_targets(student.detach(), T),
            "loss": {name: max(0.0, float(value.detach())) for name, value in parts._asdict().items()},
            "gradients": {"soft": soft, "soft_without_T2": soft / T**2, "hard": hard}}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_pages_maths_equals_kdlab_losses_in_float64(maths_in_the_page, case):
    """On the same logits, at T from 0.05 to 100 and alpha from 0 to 1: equal up to float64 rounding."""
    logits = _logits(*CASES[case]).double()
    for T, in_rows in zip(TEMPERATURES, maths_in_the_page[case]):
        for alpha, page in zip(ALPHAS, in_rows):
            python = _kdlab(logits[0], logits[1], case % 10, T, alpha)
            where = f"T={T}, alpha={alpha}"
            for name in ("teacher", "student"):
                np.testing.assert_allclose(page[name], python[name].numpy(), rtol=1e-9, atol=1e-300, err_msg=where)
            for name, value in python["loss"].items():
                assert page["loss"][name] == pytest.approx(value, rel=1e-9, abs=1e-12 * T**2), (where, name)
            for name, value in python["gradients"].items():
                np.testing.assert_allclose(page["gradients"][name], value.numpy(), rtol=1e-9, atol=1e-15,
                                           err_msg=f"{where}, {name}")


@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_pages_maths_equals_kdlab_losses_on_the_kernels_float32_to_float32_precision(maths_in_the_page, case):
    """What the kernel computes from its float32 logits: the page agrees to float32's own precision, the soft term
    within float32's own error there, a few 1e-7 * T^2 nats (kdlab.losses)."""
    logits = _logits(*CASES[case])
    assert logits.dtype == torch.float32
    for T, in_rows in zip(TEMPERATURES, maths_in_the_page[case]):
        for alpha, page in zip(ALPHAS, in_rows):
            python = _kdlab(logits[0], logits[1], case % 10, T, alpha)
            where = f"T={T}, alpha={alpha}"
            for name in ("teacher", "student"):
                np.testing.assert_allclose(page[name], python[name].numpy(), rtol=1e-5, atol=1e-7, err_msg=where)
            for name, value in python["loss"].items():
                assert page["loss"][name] == pytest.approx(value, rel=1e-5, abs=5e-7 * max(1.0, T**2)), (where, name)
            for name, value in python["gradients"].items():
                np.testing.assert_allclose(page["gradients"][name], value.numpy(), rtol=1e-5, atol=1e-6 * max(1, T),
                                           err_msg=f"{where}, {name}")


# ----------------------------------------------------------------------------- each panel, as the kernel draws it

@pytest.fixture(scope="module")
def data(digits):
    """Untrained models on 30 test digits and a grid of 3 runs: every panel, nothing to wait for."""
    train, test = digits
    test = test.subset(30)
    teacher = build_model(mlp_spec(train.input_shape, hidden=(32,)), seed=1)
    student_spec = mlp_spec(train.input_shape, hidden=(16,))
    student = build_model(student_spec, seed=2)
    runs = np.random.default_rng(0).uniform(0.8, 0.95, (3, 5, 3))
    grid = Grid((1.0, 2.0, 4.0, 8.0, 16.0), (0.0, 0.5, 1.0), runs.mean(axis=0), "digits", {"seeds": [0, 1, 2]}, runs)
    return ExplorerData(test=test, validation=test, teacher_logits=teacher(test.inputs).detach() * 5,
                        student_logits=student(test.inputs).detach(), grid=grid, teacher=teacher, transfer=test,
                        student_spec=student_spec,
                        baseline_curve=[0.5, 0.7, 0.8], epochs=3, device=torch.device("cpu"), teacher_accuracy=0.9)


SETTINGS = [(12.0, 1.0, 0), (8.0, 0.3, 3), (0.5, 0.0, 29), (50.0, 0.75, 7), (1.3, 0.55, 12), (2.5, 0.05, 18)]


def test_each_panel_shows_what_the_kernel_would_draw(node, data):
    page = node("const prepared = page.preparePage(inputs.payload);\n"
                "print(inputs.settings.map(([T, alpha, example]) => page.panelData(prepared, { T, alpha, example })));",
                {"payload": page_payload(data), "settings": SETTINGS})
    panels = explorer_panels(data)
    exact = dataclasses.replace(data, teacher_logits=data.teacher_logits.double(),  # the page's numbers, computed
                                student_logits=data.student_logits.double())  # as the page computes: in float64
    for (T, alpha, example), shown in zip(SETTINGS, page):
        kernel = chart_data(exact, panels, T, alpha, example)
        for name, expected in kernel.items():
            got = shown[name]
            assert set(got) == set(expected), name
            for key, value in expected.items():
                if isinstance(value, str) or key == "highlight":
                    assert got[key] == value, (T, alpha, example, name, key)
                else:  # the kernel rounds what it ships: 3 to 6 decimals
                    np.testing.assert_allclose(np.asarray(got[key], float), np.asarray(value, float), rtol=1e-6,
                                               atol=2e-3 if name == "picture" else 6e-5,
                                               err_msg=f"{T}, {alpha}, {example}: {name} {key}")


# ----------------------------------------------------------------------------- links, readouts, printed numbers

PARSER_INPUTS = ["8", "0.5", ".5", "5.", "-3", "+2", "1e3", "1E-3", "1e309", "-1e309", "1e-400", " 8 ", "\t8",
                 "\u00a08\u00a0", "", " ", "1_0", "１０", "٣", "0x10", "0b1", "0o7", "NaN", "nan", "Infinity",
                 "-Infinity", "inf", "1e", "e3", ".", "+", "--1", "1.2.3", "1,5", "8\n", "\n8", "1 0", "0.1e+2",
                 "00012", "1" * 400, "<img src=x onerror=alert(1)>"]


def test_the_page_and_the_kernel_read_numbers_by_one_grammar(node):
    in_the_page = node("print(inputs.map((text) => page.parseNumber(text)));", PARSER_INPUTS)
    in_the_kernel = [parse_number(text) for text in PARSER_INPUTS]
    assert in_the_page == in_the_kernel
    assert in_the_kernel[:4] == [8.0, 0.5, 0.5, 5.0] and in_the_kernel.count(None) > 20  # not all refused


NUMBERS = [0.0, -0.0, 1.0, 12.0, 0.5, 6.3, 1e-5, 1.2345e-5, 0.00012, 123456.0, 1234567.0, 99.95, 9.995, -3.0,
           0.07071, 2.0 / 3, 1e21, 5e-324, 1e6, 49.99]  # not 0.125: see formatG on exact ties


@pytest.mark.parametrize("digits", [2, 3, 6])
def test_the_page_writes_numbers_as_pythons_g_format(node, digits):
    in_the_page = node(f"print(inputs.map((value) => page.formatG(value, {digits})));", NUMBERS)
    assert in_the_page == [f"{value:.{digits}g}" for value in NUMBERS]


TEXTS = ["garbage", "NaN", "0x10", "1e309", "it's", 'say "hi"', "both ' and \"", "back\\slash", "tab\there",
         "new\nline", "\x00\x7f", "zero\u200bwidth", "é ü 数字", "emoji 😀", "\u2028", "k" * 60,
         "<img src=x onerror=alert(1)>"]


def test_text_from_a_link_or_a_readout_is_echoed_as_the_kernel_echoes_it(node):
    page = node("print(inputs.map((text) => [page.quoted(text), page.whyRefused(text)]));", TEXTS)
    assert page == [[widgets._quoted(text), widgets._why_refused(text)] for text in TEXTS]


QUERIES = ["", "T=8&alpha=0.5&example=12&hide=grid,train", "T=hot&alpha=3&example=-2&hide=grid,nothing&colour=red",
           "T=1e309&alpha=-1e309", "example=3.5", "example=2.5&example=999.5", "T=%E2%80%8B8", "T=+8",
           "T=1%2B1", "hide=&hide=,,loss,", "voila-template=lab&theme=dark&x", "a=1&a=2&b&c=",
           urllib.parse.urlencode({"example": "<img src=x onerror=alert(1)>", "<b>": "1"}),
           "k" * 100 + "=1&T=" + "9" * 100, "&".join(f"key{index}=1" for index in range(12)), "T=%zz&%ff=1",
           "alpha=0.123456789&T=0.05", "T=50.0000001&alpha=1.0000"]


def test_the_single_file_page_reads_a_link_as_the_kernel_reads_it(node):
    controls, hideable = widgets.controls(30), list(widgets.HIDEABLE)
    page = node("print(inputs.queries.map((query) => page.parseView(query, inputs.controls, inputs.hideable)));",
                {"queries": QUERIES, "controls": controls, "hideable": hideable})
    for query, shown in zip(QUERIES, page):
        settings, notes = parse_view(query, 30)
        assert shown["notes"] == notes, query
        assert shown["settings"] == {**settings, "hide": list(settings["hide"])}, query


def test_the_pages_links_open_the_same_view_in_the_kernel(node):
    views = [{"T": 6.3, "alpha": 0.85, "example": 0, "hide": []}, {"T": 0.5, "alpha": 1.0, "example": 29,
                                                                    "hide": ["grid", "train"]},
             {"T": 12.0, "alpha": 0.0, "example": 3, "hide": ["picture"]}]
    queries = node("print(inputs.map((view) => page.viewQuery(view, view.hide)));", views)
    assert queries[0] == "T=6.3&alpha=0.85&example=0"
    for query, view in zip(queries, views):
        settings, notes = parse_view(query, 30)
        assert notes == [] and settings == {**view, "hide": tuple(view["hide"])}


def test_the_grid_panel_outlines_the_cell_the_kernel_would(node, data):
    grid = data.grid
    points = [(T, alpha) for T in (0.5, 1.4, 1.5, 2.9, 3.0, 5.6, 50.0) for alpha in (0.0, 0.24, 0.26, 0.74, 0.76, 1.0)]
    cells = node("print(inputs.points.map(([T, alpha]) => page.gridCell(inputs.grid, T, alpha)));",
                 {"grid": GridPanel(grid).page(), "points": points})
    assert cells == [list(grid.cell(T, alpha)) for T, alpha in points]


def test_the_page_draws_the_colour_bar_beside_the_cells(node, data):
    """The heatmap's drawing code on a canvas that records what it is asked to draw."""
    panel = GridPanel(data.grid)
    spec, shown = panel.spec(), panel.data(grid_panel(data.grid, 4.0, 0.5))
    calls = node("""
const calls = [], state = {};
const ctx = new Proxy(state, {
  get: (target, name) => name in target ? target[name]
    : (...args) => calls.push({ name, args, fillStyle: target.fillStyle, font: target.font }),
  set: (target, name, value) => { target[name] = value; return true; },
});
page.DRAW.heatmap(ctx, inputs.spec, inputs.data);
print(calls);
""", {"spec": spec, "data": shown})
    bar = spec["colorbar"]
    rectangles = [call for call in calls if call["name"] == "fillRect"]  # the background, the cells, the bar
    count = math.prod(np.shape(spec["colours"]))
    cells, bands = rectangles[1:1 + count], rectangles[1 + count:]
    assert [cell["fillStyle"] for cell in cells] == [colour for row in spec["colours"] for colour in row]
    assert [band["fillStyle"] for band in bands] == bar["colours"]  # every band, low to high
    cells_right = max(cell["args"][0] + cell["args"][2] for cell in cells)
    assert all(cells_right < band["args"][0] and band["args"][0] + band["args"][2] <= spec["width"]
               for band in bands)  # beside the cells, inside the canvas
    written = [call["args"][0] for call in calls if call["name"] == "fillText"]
    assert bar["label"] in written and all(text in written for text in bar["tick_labels"])
    assert shown["title"].split("\n")[0] in written
