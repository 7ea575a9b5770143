"""The course as a website (`python -m kdlab website OUT_DIR`): built from the notebooks' saved outputs, then opened
in headless Chromium as a learner without internet would: every request that is not for a file of the site is
refused, and any refused or failed request, console error or page error fails the test.

The browser tests need Debian's Chromium (`apt-get install -y chromium`) and Playwright's Python package; without
them they are skipped and say why. The build checks run everywhere.
"""

import html
import json
import re
import shutil

import nbformat
import pytest
from lab_server import CHROMIUM

from kdlab import website
from kdlab.__main__ import main

NOTEBOOKS = website.course_notebooks()
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The whole course, built once for this module into a folder that does not exist yet."""
    out = tmp_path_factory.mktemp("website") / "course"
    written = website.build(out)
    assert written[0] == out / "index.html"
    return out


def _exercise_notebooks(folder):
    """A small course: a real notebook, and an exercise whose reference solution is tagged and hidden."""
    folder.mkdir()
    shutil.copy(website.NOTEBOOKS / "02_the_distillation_loss.ipynb", folder / "00_loss.ipynb")
    exercise = nbformat.v4.new_notebook(metadata={"language_info": {"name": "python"}}, cells=[
        nbformat.v4.new_markdown_cell("# 01 · An exercise\n\nWhat is $T^2$ at $T = 4$? Compute it below."),
        nbformat.v4.new_code_cell("setup = 'hidden but not a solution'", metadata={"jupyter": {"source_hidden": True}}),
        nbformat.v4.new_code_cell("answer = ...", outputs=[nbformat.v4.new_output("stream", text="not yet\n")]),
        nbformat.v4.new_code_cell("answer = 4 ** 2", outputs=[nbformat.v4.new_output("stream", text="16: right\n")],
                                  metadata={"tags": ["solution"], "jupyter": {"source_hidden": True}}),
    ])
    nbformat.write(exercise, folder / "01_exercise.ipynb")
    return folder


def _tags(page: str, name: str) -> list[dict]:
    """The attributes of each <NAME> tag of the page, in order."""
    tags = re.findall(rf"<{name}\s([^>]*)>", page)
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', attributes)) for attributes in tags]


def _links(page: str, kind: str) -> list[str]:
    """The targets of the page's <a class=KIND> links, in order."""
    return [anchor["href"] for anchor in _tags(page, "a") if kind in anchor.get("class", "").split()]


def _explorer_caption() -> str:
    """The text the explorer's saved output carries beside its picture: the picture's alt text on the page."""
    cells = nbformat.read(website.NOTEBOOKS / "00_explorer.ipynb", as_version=4).cells
    return next(output.data["text/plain"] for cell in cells if cell.cell_type == "code" for output in cell.outputs
                if WIDGET_VIEW in output.get("data", {}) and "image/png" in output.data)


def test_the_index_lists_every_notebook_in_course_order(site):
    index = (site / "index.html").read_text()
    pages = [f"{notebook.stem}.html" for notebook in NOTEBOOKS]
    assert pages[0] == "00_explorer.html" and pages[-1].startswith(f"{len(pages) - 1:02d}_") and len(pages) >= 13
    assert re.findall(r'<li><a href="([^"]+)"', index) == pages
    for position, page in enumerate(pages):
        text = (site / page).read_text()
        previous, following = pages[position - 1:position], pages[position + 1:position + 2]
        assert _links(text, "kd-previous") == previous * 2  # above the page and below it
        assert _links(text, "kd-next") == following * 2
        assert _links(text, "kd-home") == ["index.html"] * 2


def test_pages_come_from_the_saved_outputs_and_fetch_nothing(site):
    for notebook in NOTEBOOKS:
        cells = nbformat.read(notebook, as_version=4).cells
        text = (site / f"{notebook.stem}.html").read_text()
        counts = [cell.execution_count for cell in cells if cell.cell_type == "code" and cell.execution_count]
        assert f"In\xa0[{counts[-1]}]:" in text, notebook.name  # not re-executed: the saved prompts are there
        assets = ["assets/jupyterlab.css", "assets/katex/katex.min.css", "assets/site.css"]
        assert re.findall(r'<link[^>]*href="([^"]+)"', text) == assets, notebook.name
        assert re.findall(r'<script[^>]*src="([^"]+)"', text) == [
            "assets/katex/katex.min.js", "assets/katex/auto-render.min.js", "assets/render-math.js"], notebook.name
        assert "widget-state+json" not in text and "widget-view+json" not in text, notebook.name


def test_every_widget_is_frozen_with_its_figure_and_the_command_that_makes_it_live(site):
    for notebook in NOTEBOOKS:
        content = nbformat.read(notebook, as_version=4)
        state = content.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
        captured = sum("image/png" in output.get("data", {}) for model in state.get("state", {}).values()
                       if model["model_name"] == "OutputModel" for output in model["state"].get("outputs", []))
        outputs = [output for cell in content.cells if cell.cell_type == "code" for output in cell.outputs]
        views = sum(WIDGET_VIEW in output.get("data", {}) for output in outputs)
        images = sum("image/png" in output.get("data", {}) for output in outputs)
        text = (site / f"{notebook.stem}.html").read_text()
        notes = re.findall(r'<p class="kd-live">(.*?)</p>', text, re.DOTALL)
        assert len(notes) == views, notebook.name
        assert all(f"<code>voila notebooks/{notebook.name}</code>" in note for note in notes), notebook.name
        assert text.count('src="data:image/png;base64,') == images + captured, notebook.name
    explorer = (site / "00_explorer.html").read_text()
    assert [image["src"][:22] for image in _tags(explorer, "img")
            if html.unescape(image.get("alt", "")) == _explorer_caption()] == ["data:image/png;base64,"]


def test_solution_cells_fold_in_every_page(site):
    for notebook in NOTEBOOKS:
        cells = nbformat.read(notebook, as_version=4).cells
        tagged = sum("solution" in cell.metadata.get("tags", []) for cell in cells)
        assert (site / f"{notebook.stem}.html").read_text().count('<details class="kd-solution">') == tagged


def test_a_bad_out_dir_is_refused_and_nothing_of_the_users_is_touched(tmp_path):
    notebooks = _exercise_notebooks(tmp_path / "notebooks")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(ValueError, match="is a file"):
        website.build(a_file, notebooks)
    with pytest.raises(ValueError, match="needs a folder name"):
        website.build(" ", notebooks)
    with pytest.raises(ValueError, match="not empty .*notes.txt.*not built by"):
        website.build(tmp_path, notebooks)
    assert a_file.read_text() == "mine" and not (tmp_path / "index.html").exists()
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / website.MANIFEST).write_text(json.dumps({"files": ["../notes.txt"]}))
    with pytest.raises(ValueError, match="is not the list of files"):
        website.build(forged, notebooks)  # which would delete notes.txt as a stale page
    assert a_file.read_text() == "mine"
    with pytest.raises(ValueError, match="no course notebooks"):
        website.build(tmp_path / "site", tmp_path / "nowhere")
    assert not (tmp_path / "site").exists()


def test_a_rebuild_replaces_only_its_own_files(tmp_path):
    notebooks = _exercise_notebooks(tmp_path / "notebooks")
    out = tmp_path / "site"
    out.mkdir()  # an empty folder is fine
    website.build(out, notebooks)
    (out / "CNAME").write_text("course.example.org")  # what a user adds to publish the site
    (out / "index.html").write_text("stale")
    website.build(out, notebooks)
    assert (out / "CNAME").read_text() == "course.example.org"
    assert "01 · An exercise" in (out / "index.html").read_text()

    (notebooks / "01_exercise.ipynb").rename(notebooks / "02_exercise.ipynb")
    (out / "02_exercise.html").write_text("the user's own page")
    with pytest.raises(ValueError, match="holds 02_exercise.html, which an earlier build did not write"):
        website.build(out, notebooks)
    assert (out / "02_exercise.html").read_text() == "the user's own page"
    (out / "02_exercise.html").unlink()
    website.build(out, notebooks)
    assert not (out / "01_exercise.html").exists()  # the earlier build's page, for a notebook that is gone
    assert "01_exercise.html" not in json.loads((out / website.MANIFEST).read_text())["files"]


def test_the_command_line_builds_and_refuses(tmp_path, capsys):
    notebooks = _exercise_notebooks(tmp_path / "notebooks")
    assert main(["website", str(tmp_path / "site"), "--notebooks", str(notebooks)]) == 0
    assert (tmp_path / "site" / "01_exercise.html").is_file()
    assert "open" in capsys.readouterr().out
    assert main(["website", str(notebooks / "00_loss.ipynb")]) == 1
    assert "00_loss.ipynb is a file" in capsys.readouterr().err


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="the playwright package is not installed (pip install playwright)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def open_offline(browser):
    """open_offline(path) -> the page, loaded with every request but file:// refused; on leaving, the test fails
    if a request was refused or failed, or the console or the page reported an error."""
    problems, pages = [], []

    def keep_to_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            problems.append(f"refused {route.request.url}")
            route.abort()

    def open_page(path):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", keep_to_files)
        page.on("requestfailed", lambda request: problems.append(f"failed {request.url}: {request.failure}"))
        page.on("console", lambda message: problems.append(f"console: {message.text}")
                if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(path.as_uri(), wait_until="load")
        pages.append(page)
        return page
    yield open_page
    for page in pages:
        page.close()
    assert problems == []


# TeX that KaTeX left unrendered: delimiters in the text of Markdown, outside code and KaTeX's own output.
RAW_TEX = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest('.katex, code, pre, script, style')) continue;
    if (/\\$|\\\\\\(|\\\\\\[/.test(node.textContent)) raw.push(node.textContent.trim().slice(0, 80));
  }
  return raw;
}"""


def _equations_rendered(page) -> int:
    assert page.locator(".katex-error").count() == 0
    assert page.evaluate(RAW_TEX) == []
    return page.locator(".katex").count()


@pytest.mark.browser
def test_the_index_opens_offline_in_course_order_with_its_equations(site, open_offline):
    page = open_offline(site / "index.html")
    titles = page.locator(".kd-course li > a").all_inner_texts()
    assert [title[:2] for title in titles] == [f"{number:02d}" for number in range(len(NOTEBOOKS))]
    assert page.locator(".katex-display").count() == 1  # the loss, displayed
    assert _equations_rendered(page) >= 4  # and T, alpha in the titles and summaries
    page.locator(".kd-course li > a").nth(3).click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/03_gradients_and_the_T2_factor.html")


@pytest.mark.browser
def test_a_notebook_page_opens_offline_with_its_equations_and_figures(site, open_offline):
    page = open_offline(site / "03_gradients_and_the_T2_factor.html")
    assert _equations_rendered(page) > 50
    assert page.locator(".kd-live").count() == 1
    figures = page.locator("img")
    assert figures.count() >= 2
    assert all(width > 0 for width in figures.evaluate_all("images => images.map(image => image.naturalWidth)"))
    page.locator(".kd-next").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/04_training_the_teacher.html")


@pytest.mark.browser
def test_the_explorer_page_shows_its_picture_and_how_to_run_it_live(site, open_offline):
    page = open_offline(site / "00_explorer.html")
    picture = page.get_by_alt_text(_explorer_caption(), exact=True)
    assert picture.evaluate("image => image.naturalWidth") > 500
    assert page.get_by_text("voila notebooks/00_explorer.ipynb").first.is_visible()
    _equations_rendered(page)


@pytest.mark.browser
def test_a_solution_stays_folded_until_opened(tmp_path, open_offline):
    out = tmp_path / "site"
    website.build(out, _exercise_notebooks(tmp_path / "notebooks"))
    page = open_offline(out / "01_exercise.html")
    solution = page.locator("details.kd-solution")
    assert solution.count() == 1
    assert not page.get_by_text("answer = 4 ** 2").is_visible()
    assert not page.get_by_text("16: right").is_visible()
    assert not page.get_by_text("hidden but not a solution").is_visible()
    assert page.get_by_text("not yet").is_visible()
    solution.locator("summary").click()
    assert page.get_by_text("answer = 4 ** 2").is_visible() and page.get_by_text("16: right").is_visible()
    page.locator("details.kd-hidden summary").click()
    assert page.get_by_text("hidden but not a solution").is_visible()
    assert _equations_rendered(page) == 2
