"""Slides: the notebooks' slide metadata, `python -m kdlab slides OUT_DIR`, and both decks in headless Chromium.

Each static deck is opened from file:// as in a classroom without internet: a request for anything but a file
is refused, and a refused or failed request, or a page error, fails the test. The live deck (Voila's reveal
template) is served from this machine and driven like the explorer in test_explorer_browser.py. The browser
tests need Debian's Chromium (`apt-get install -y chromium`); without it they are skipped and say why.
"""

import contextlib
import html.parser
import json
import os
import runpy
import subprocess
import sys
import urllib.parse
from pathlib import Path

import nbformat
import pytest
from lab_server import CHROMIUM_ARGS, free_port
from test_explorer_browser import (
    PAGE_TIMEOUT_MS,
    THIS_MACHINE,
    _settled_screenshot,
    _wait_for_change,
    _wait_for_port,
)
from test_website import RAW_TEX

from kdlab import slides
from kdlab.__main__ import main
from kdlab.experiment import TEMPERATURE

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(slides.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Voila 0.5.13's reveal template links Font Awesome from a CDN whatever it is told; voila.json's CSP blocks it.
VOILA_FONT_AWESOME = "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free"


def _notebook(*cells, **metadata):
    return nbformat.v4.new_notebook(cells=list(cells), metadata=metadata)


def _cell(kind: str, source: str, slide_type: str | None = None, **fields):
    make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
    cell = make(source, **fields)
    if slide_type:
        cell.metadata["slideshow"] = {"slide_type": slide_type}
    return cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name[:2])
def test_every_notebook_opens_with_a_title_slide_and_shows_no_solution(path):
    notebook = nbformat.read(path, as_version=4)
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in notebook.cells]
    assert None not in kinds, f"cells without slide metadata: {[i for i, kind in enumerate(kinds) if not kind]}"
    assert kinds[0] == "slide" and notebook.cells[0].source.startswith("# ")
    for cell, kind in zip(notebook.cells, kinds):
        if (cell.cell_type == "code" and not cell.outputs) or "solution" in cell.metadata.get("tags", []):
            assert kind == "skip", cell.source[:80]
    assert slides.slide_count(notebook) >= 4


class _Slides(html.parser.HTMLParser):
    """Counts the innermost <section>s of a page: the slides reveal.js shows."""

    def __init__(self):
        super().__init__()
        self.open, self.count = [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            if self.open:
                self.open[-1] = False  # it holds a section, so it is a stack, not a slide
            self.open.append(True)

    def handle_endtag(self, tag):
        if tag == "section":
            self.count += self.open.pop()


def test_slide_count_is_the_number_of_slides_nbconvert_lays_out(tmp_path):
    notebook = _notebook(
        _cell("code", "setup()", "skip"),
        _cell("markdown", "# Title"),  # the first shown cell opens a slide, whatever it is marked
        _cell("markdown", "what the speaker says", "notes"),
        _cell("markdown", "## A section", "slide"),
        _cell("markdown", "its evidence", "fragment"),
        _cell("markdown", "a second look", "subslide"),
        _cell("markdown", "more", "-"),
        _cell("markdown", "## The end", "slide"))
    path = tmp_path / "01_deck.ipynb"
    nbformat.write(notebook, path)
    counter = _Slides()
    counter.feed(slides.deck_html(path))
    assert slides.slide_count(notebook) == counter.count == 4


def test_a_widget_shows_what_it_captured_and_how_to_run_it_live():
    plot = {"output_type": "display_data", "data": {"image/png": "iVBORplot"}, "metadata": {}}
    state = {"box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_out"]}},
             "slider": {"model_name": "FloatSliderModel", "state": {"value": 4.0}},
             "out": {"model_name": "OutputModel", "state": {"outputs": [plot]}}}
    interact = nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "box"}, "text/plain": "VBox"})
    explorer = nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "gone"},
                                                            "image/png": "iVBORexplorer", "text/plain": "Explorer"})
    printed = nbformat.v4.new_output("stream", name="stdout", text="T = 4\n")
    notebook = _notebook(_cell("code", "interact(...)", outputs=[printed, interact]),
                         _cell("code", "explorer", outputs=[explorer]),
                         widgets={"application/vnd.jupyter.widget-state+json": {"state": state}})

    deck = slides.static_notebook(notebook, "voila --template=reveal notebooks/01_x.ipynb")

    first, second = ([output.get("data", output.get("text")) for output in cell.outputs] for cell in deck.cells)
    note = {"text/html": '<p class="kdlab-live">Live, with its controls: '
                         '<code>voila --template=reveal notebooks/01_x.ipynb</code></p>'}
    assert first == ["T = 4\n", {"image/png": "iVBORplot"}, note]
    assert second == [{"image/png": "iVBORexplorer"}, note]
    assert "widgets" not in deck.metadata and "widgets" in notebook.metadata  # the notebook itself is untouched
    assert WIDGET_VIEW in notebook.cells[1].outputs[0].data


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    """Every notebook's deck, written once by the command a lecturer runs, into a folder that does not exist."""
    out = tmp_path_factory.mktemp("slides") / "decks"
    result = subprocess.run([sys.executable, "-m", "kdlab", "slides", str(out)], capture_output=True, text=True,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert f"wrote {len(NOTEBOOKS)} slide decks into {out}" in result.stdout
    return out


def test_a_file_or_a_foreign_file_in_the_way_is_refused_and_left_alone(tmp_path, capsys):
    target = tmp_path / "decks.txt"
    target.write_text("mine")
    assert main(["slides", str(target)]) == 1
    assert f"{target} is a file; give a folder for the decks" in capsys.readouterr().err
    assert target.read_text() == "mine"

    out = tmp_path / "talks"
    (out / "katex").mkdir(parents=True)
    (out / "katex" / "katex.min.js").write_text("my own KaTeX")
    (out / "02_the_distillation_loss.html").write_text("my own slides")
    assert main(["slides", str(out)]) == 1
    assert (f"{out} holds 02_the_distillation_loss.html, katex/katex.min.js, which kdlab slides did not write"
            in capsys.readouterr().err)
    assert sorted(path.relative_to(out).as_posix() for path in out.rglob("*")) == [
        "02_the_distillation_loss.html", "katex", "katex/katex.min.js"]
    assert (out / "katex" / "katex.min.js").read_text() == "my own KaTeX"


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write into: a read-only tmpfs for root (whom permissions do not stop), else mode 0500."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
    if mount.returncode:
        pytest.skip("mount -t tmpfs failed (no CAP_SYS_ADMIN in this container?)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_an_unwritable_folder_is_refused(read_only_folder, capsys):
    assert main(["slides", str(read_only_folder / "decks")]) == 1
    error = capsys.readouterr().err
    assert f"cannot write into {read_only_folder / 'decks'}" in error and "choose a folder you can write to" in error


def test_a_second_run_replaces_its_own_files_and_keeps_the_users(decks, tmp_path, capsys):
    source = tmp_path / "notebooks"
    source.mkdir()
    (source / "02_the_distillation_loss.ipynb").write_bytes((slides.NOTEBOOKS / "02_the_distillation_loss.ipynb")
                                                            .read_bytes())
    (decks / "02_the_distillation_loss.html").write_text("an old deck")
    (decks / "my-notes.txt").write_text("mine")
    assert main(["slides", str(decks), "--notebooks", str(source)]) == 0
    assert "wrote 1 slide deck into" in capsys.readouterr().out
    assert (decks / "02_the_distillation_loss.html").read_text().startswith("<!DOCTYPE html>")
    assert (decks / "my-notes.txt").read_text() == "mine"
    written = json.loads((decks / slides.MANIFEST).read_text())["written by kdlab slides"]
    assert {f"{path.stem}.html" for path in NOTEBOOKS} <= set(written) and "my-notes.txt" not in written


@pytest.fixture(scope="module")
def browser(explorer_in_a_browser):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(explorer_in_a_browser), headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Shows every slide in turn, as a lecturer does, and measures what it draws once kdlab-deck.js has fitted it.
EVERY_SLIDE = """() => {
  Reveal.configure({transition: 'none'});
  return Reveal.getSlides().map((slide) => {
    const where = Reveal.getIndices(slide);
    Reveal.slide(where.h, where.v, 1000);
    const drawn = [slide, ...slide.querySelectorAll('*')]
      .filter((element) => !element.closest('aside.notes, .katex-mathml'))  // notes and MathML are not drawn
      .map((element) => element.getBoundingClientRect()).filter((box) => box.width > 1 && box.height > 1);
    return {where: `${where.h}/${where.v}`, zoom: Number(slide.dataset.kdlabZoom),
            left: Math.min(...drawn.map((box) => box.left)), top: Math.min(...drawn.map((box) => box.top)),
            right: Math.max(...drawn.map((box) => box.right)), bottom: Math.max(...drawn.map((box) => box.bottom))};
  });
}"""


@pytest.mark.browser
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name[:2])
def test_a_static_deck_opens_offline_with_every_slide_on_a_projector(path, decks, browser):
    problems = []

    def keep_to_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            problems.append(f"refused {route.request.url}")
            route.abort()

    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.route("**/*", keep_to_files)
    page.on("requestfailed", lambda request: problems.append(f"failed {request.url}: {request.failure}"))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        page.goto((decks / f"{path.stem}.html").as_uri(), wait_until="load")
        page.wait_for_function("window.Reveal && Reveal.isReady()")
        page.evaluate("document.fonts.ready.then(() => true)")
        shown = page.evaluate(EVERY_SLIDE)
        minimum_zoom = page.evaluate("MIN_ZOOM")
        assert page.locator(".katex-error").count() == 0 and page.evaluate(RAW_TEX) == []
    finally:
        page.close()
    assert problems == []
    assert len(shown) == slides.slide_count(nbformat.read(path, as_version=4))
    for slide in shown:
        assert slide["zoom"] >= minimum_zoom, slide
        assert slide["left"] >= 0 and slide["top"] >= 0 and slide["right"] <= 1280 and slide["bottom"] <= 720, slide


@contextlib.contextmanager
def _voila(notebook: Path, log: Path, *options: str):
    """Voila serving `notebook` from the repository root (so with its voila.json) on a free localhost port."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "voila", str(notebook), *options, f"--port={port}",
                                    "--no-browser", "--Voila.ip=127.0.0.1"], cwd=REPO, stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.browser
def test_the_live_deck_runs_the_explorer_offline_and_a_key_on_T_repaints_its_panel(browser, tmp_path):
    from playwright.sync_api import expect

    outside, failed = [], []

    def keep_on_this_machine(route):
        address = route.request.url
        if urllib.parse.urlsplit(address).hostname in THIS_MACHINE or address.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(address)
            route.abort()

    log = tmp_path / "voila.log"
    with _voila(REPO / "notebooks" / "00_explorer.ipynb", log, "--template=reveal") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.route("**/*", keep_on_this_machine)
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
        page.goto(url, timeout=PAGE_TIMEOUT_MS)
        readout = page.locator(".kdlab-temperature .widget-readout")
        try:
            readout.wait_for(state="attached", timeout=PAGE_TIMEOUT_MS)
        except Exception:
            raise AssertionError(f"the explorer did not render; voila log:\n{log.read_text()[-3000:]}")
        page.keyboard.press("ArrowDown")  # from the title to the explorer's slide, as a lecturer moves on
        expect(readout).to_be_visible()
        _settled_screenshot(page.locator(".kdlab-explorer"))  # the slide has finished moving in
        explorer = page.locator(".kdlab-explorer").bounding_box()
        assert explorer["y"] >= 0 and explorer["y"] + explorer["height"] <= 720, explorer
        slide = page.evaluate("location.hash")
        panel = page.locator(".kdlab-soft-targets canvas").first
        before = _settled_screenshot(panel)

        page.locator(".kdlab-temperature input[type=range]").press("ArrowRight")

        assert _wait_for_change(panel, before) != before, "the soft-target panel did not repaint after a key on T"
        expect(page.locator(".kdlab-readout")).not_to_contain_text(f"T = {TEMPERATURE:.3g}:")
        assert page.evaluate("location.hash") == slide, "the key moved the deck instead of the slider"
        theme = "getComputedStyle(document.documentElement).getPropertyValue('--r-heading-text-transform')"
        assert page.evaluate(theme).strip() == "none", "kdlab's reveal.js theme did not load"
        page.close()
    assert outside == [], "the deck asked another machine for something: without internet it would fail"
    assert [address for address in failed if not address.startswith(VOILA_FONT_AWESOME)] == []


def test_the_committed_slide_metadata_is_what_scripts_slide_metadata_writes():
    """A cell added or rewritten without re-running the script (or an override whose cell changed) is caught
    here, before a deck's slide overflows the projector."""
    script = runpy.run_path(str(REPO / "scripts" / "slide_metadata.py"))
    for path in sorted(slides.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        overrides = script["OVERRIDES"].get(path.name[:2], {})
        assert [start for start in overrides
                if not any(cell.source.lstrip().startswith(start) for cell in notebook.cells)] == [], path.name
        committed = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in notebook.cells]
        assert committed == script["slide_types"](notebook, overrides), f"{path.name}: run scripts/slide_metadata.py"
