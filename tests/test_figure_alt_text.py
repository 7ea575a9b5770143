"""Every figure in a committed notebook can be read by everyone in the room.

Reads the committed JSON; nothing is executed. A figure is any output holding an image: a cell's
own outputs, and those an Output widget (`interact`) captured, found in the notebook's widget state
and traced to the cell that shows the widget. Each must carry non-empty alt text where every reader
looks for it (what `kdlab.viz.show` writes):

- as `alt` in the output's metadata for its image type, as IPython.display.Image writes it and
  nbconvert's classic template reads it;
- as the `alt` of the <img> in its text/html, which JupyterLab and nbconvert's lab template (both
  ignore the metadata), Jupyter Book and mkdocs-jupyter show in place of the bare image.

And each must fit a projector: at most MAX_WIDTH pixels wide, so JupyterLab does not shrink its
projector-sized text to fit the page.
"""

import base64
import json
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# 14 inches at matplotlib's 100 dpi: in JupyterLab's output area on a 1280-pixel projector (about 1,100
# pixels) a figure this wide keeps its 14-point tick labels above 11 points.
MAX_WIDTH = 1400


class _ImageAlts(HTMLParser):
    """The alt attribute of each <img> in a piece of HTML (None where it has none)."""

    def __init__(self):
        super().__init__()
        self.alts = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.alts.append(dict(attrs).get("alt"))


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def _cells_of_widgets(cells, state: dict) -> dict[str, int]:
    """Model id -> index of the cell whose output shows it, through every widget's children."""
    shown = {}
    for index, cell in enumerate(cells):
        stack = [output["data"][WIDGET_VIEW]["model_id"] for output in cell.get("outputs", [])
                 if WIDGET_VIEW in output.get("data", {})]
        while stack:
            model_id = stack.pop()
            if model_id in shown:
                continue
            shown[model_id] = index
            children = state.get(model_id, {}).get("state", {}).get("children", [])
            stack += [child.removeprefix("IPY_MODEL_") for child in children if isinstance(child, str)]
    return shown


def _figures(notebook: dict):
    """(where, output) for every output holding an image, `where` naming its cell."""
    cells = notebook["cells"]
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if any(mime.startswith("image/") for mime in output.get("data", {})):
                yield f"cell {index} (id {cell.get('id')})", output
    state = notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    shown = _cells_of_widgets(cells, state)
    for model_id, model in state.items():
        for output in model.get("state", {}).get("outputs", []) if model.get("model_name") == "OutputModel" else []:
            if any(mime.startswith("image/") for mime in output.get("data", {})):
                cell = shown.get(model_id)
                where = f"cell {cell} (id {cells[cell].get('id')})" if cell is not None else "no cell"
                yield f"{where}, in Output widget {model_id}", output


def _missing_alt(output: dict) -> str | None:
    """What alt text this figure lacks, or None when every reader gets it."""
    data, metadata = output.get("data", {}), output.get("metadata", {})
    for mime in (mime for mime in data if mime.startswith("image/")):
        alt = metadata.get(mime, {}).get("alt") if isinstance(metadata.get(mime), dict) else None
        if not isinstance(alt, str) or not alt.strip():
            return f"no alt text in its metadata for {mime} (show it with kdlab.viz.show(figure, alt=...))"
    parser = _ImageAlts()
    parser.feed(_text(data.get("text/html", "")))
    if not parser.alts:
        return "no <img> in its text/html, so JupyterLab and static sites show the bare image without alt text"
    if not all(alt and alt.strip() for alt in parser.alts):
        return "an <img> in its text/html has empty or no alt text"
    return None


def _png_width(output: dict) -> int | None:
    png = output.get("data", {}).get("image/png")
    return None if png is None else struct.unpack(">I", base64.b64decode(_text(png))[16:20])[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_figure_has_alt_text(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    problems = [f"  {where}: {problem}" for where, output in _figures(notebook)
                if (problem := _missing_alt(output)) is not None]
    assert not problems, f"{path.name}: figures without alt text for every reader:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_figure_fits_a_projector(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    wide = [f"  {where}: {width} pixels" for where, output in _figures(notebook)
            if (width := _png_width(output) or 0) > MAX_WIDTH]
    assert not wide, (f"{path.name}: figures wider than {MAX_WIDTH} pixels, whose text JupyterLab shrinks to fit "
                      "(narrow the figsize or stack the panels):\n" + "\n".join(wide))


def test_the_checks_catch_a_figure_without_alt_text():
    from kdlab.viz import figure_bundle

    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 1600, 400)
    data, metadata = figure_bundle(png, "Two curves that cross at T = 4.")
    good = {"output_type": "display_data", "data": data, "metadata": metadata}
    bare = {"output_type": "display_data", "data": {"image/png": data["image/png"], "text/plain": "<Figure>"},
            "metadata": {}}
    no_html = {**good, "data": {"image/png": data["image/png"]}}
    empty_img = {**good, "data": {**data, "text/html": data["text/html"].replace('alt="', 'title="')}}
    assert _missing_alt(good) is None
    assert "metadata" in _missing_alt(bare)
    assert "no <img>" in _missing_alt(no_html)
    assert "empty or no alt" in _missing_alt(empty_img)
    assert _png_width(good) == 1600
    output_widget = {"model_name": "OutputModel", "state": {"outputs": [bare]}}
    box = {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_out"]}}
    notebook = {"cells": [{"id": "a", "outputs": [good]},
                          {"id": "b", "outputs": [{"data": {WIDGET_VIEW: {"model_id": "box"}}}]}],
                "metadata": {"widgets": {WIDGET_STATE: {"state": {"box": box, "out": output_widget}}}}}
    assert [where for where, _ in _figures(notebook)] == ["cell 0 (id a)", "cell 1 (id b), in Output widget out"]
