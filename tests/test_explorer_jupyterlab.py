"""The explorer as a lecturer sees it in JupyterLab (issues 12 and 23), from one server and one Run All:

- on a 1280x720 projector with the file browser collapsed, Run All leaves every slider and panel on screen, without
  the lecturer scrolling, and no text in the explorer is under MIN_TEXT_PX (canvas text measured as drawn: its font
  size times the canvas's scale on screen, and times the squeeze of a line drawn narrower than it would be);
- at 1440x900 with the file browser open, and at 1024x576 (the projector at 125 % zoom), the whole explorer fits the
  notebook's view once its top is scrolled to the top.

JupyterLab serves a copy of the notebook from a temporary folder, so its autosave can never touch the committed
notebook. Needs Debian's Chromium (`apt-get install -y chromium`) and JupyterLab; without them the test is skipped
and says so.
"""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab_server import CHROMIUM, CHROMIUM_ARGS, children, free_port, wait_for_server

from kdlab.experiment import TEMPERATURE

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "00_explorer.ipynb"
DATA = REPO / "data"
PROJECTOR = {"width": 1280, "height": 720}
LAPTOP = {"width": 1440, "height": 900}
ZOOMED = {"width": 1024, "height": 576}  # the projector at 125 % zoom, in CSS pixels
MIN_TEXT_PX = 11
BROWSER_BUDGET_S = 180  # everything in the browser, from opening JupyterLab to the last box: slow on a loaded machine
# What must be on screen together: the sliders and every panel's canvas.
SLIDERS = ("kdlab-temperature", "kdlab-alpha", "kdlab-example")
PANELS = ("kdlab-example-image", "kdlab-soft-targets", "kdlab-loss", "kdlab-gradients", "kdlab-grid", "kdlab-curves")

pytestmark = pytest.mark.browser

# Records each line of text the page draws on a canvas, for _text_sizes: installed before JupyterLab loads.
RECORD_CANVAS_TEXT = """(() => {
  const drawn = [], fillText = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, x, y, maxWidth) {
    const width = this.measureText(String(text)).width, t = this.getTransform();
    drawn.push({ canvas: this.canvas, text: String(text), px: Number(/([\\d.]+)px/.exec(this.font)[1]),
                 squeeze: maxWidth !== undefined && width > maxWidth ? maxWidth / width : 1,
                 scale: Math.sqrt(Math.abs(t.a * t.d - t.b * t.c)) });
    return fillText.apply(this, arguments);
  };
  window.kdlabCanvasText = drawn;
})();"""


def _notebook_copy(folder: Path) -> Path:
    """Notebook 00 as committed, its data_root pointed at the repository's data/ and its outputs cleared.

    Cleared as a lecturer's Run All on a fresh checkout would find it after "Clear All Outputs": no saved output
    or saved widget state can then stand in for the live explorer, so whatever the test finds was drawn by the
    kernel in this run.
    """
    notebook = json.loads(NOTEBOOK.read_text())
    pointed = False
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        lines = cell["source"] if isinstance(cell["source"], list) else cell["source"].splitlines(keepends=True)
        for index, line in enumerate(lines):
            if line.startswith("data_root = "):
                lines[index] = f"data_root = {str(DATA)!r}\n"
                pointed = True
        cell["source"] = lines
    assert pointed, "notebook 00 has no `data_root = ...` line to point at the repository's data/ folder"
    notebook["metadata"].pop("widgets", None)
    copy = folder / NOTEBOOK.name
    copy.write_text(json.dumps(notebook, indent=1))
    return copy


@pytest.fixture(scope="module")
def lab_notebook_url(tmp_path_factory, explorer_in_a_browser):
    """JupyterLab serving a copy of notebook 00 from a temporary folder; stopped at the end, pass or fail."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install jupyterlab)")

    committed = NOTEBOOK.read_bytes()
    root = tmp_path_factory.mktemp("lab")
    served, home = root / "served", root / "home"
    served.mkdir()
    _notebook_copy(served)
    # Fresh settings, workspace, config and runtime folders: JupyterLab's default layout (file browser open), no
    # news or update toast, no request beyond localhost; none of the user's own Jupyter state is read or written.
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), secrets.token_hex(16)
    log = root / "jupyterlab.log"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_CONFIG_DIR": str(home / "config")}
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--ServerApp.password=",
             f"--ServerApp.root_dir={served}", f"--LabApp.user_settings_dir={home / 'settings'}",
             f"--LabApp.workspaces_dir={home / 'workspaces'}",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
             "--allow-root"],  # CI containers run as root; a no-op otherwise
            cwd=served, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/api/status?token={token}", process, log)
        yield f"{base}/lab/tree/{NOTEBOOK.name}?token={token}", log
    finally:
        kernels = children(process.pid)  # each kernel runs in a session of its own: not reached through the server
        process.terminate()  # jupyter lab shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pid in kernels:  # any the server did not shut down
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert NOTEBOOK.read_bytes() == committed, "the committed notebook 00 changed while JupyterLab served its copy"


def _inside(box: dict, area: dict, slack: float = 1.0) -> bool:
    """Whether box lies within area, give or take sub-pixel rounding of the layout."""
    return (box["x"] >= area["x"] - slack and box["y"] >= area["y"] - slack
            and box["x"] + box["width"] <= area["x"] + area["width"] + slack
            and box["y"] + box["height"] <= area["y"] + area["height"] + slack)


def _text_sizes(explorer) -> list[dict]:
    """Every line of text in the explorer with the size it has on screen, smallest first: the DOM's text at its
    computed font size, and the canvases' at the size drawn (RECORD_CANVAS_TEXT) times the canvas's scale on screen."""
    return explorer.evaluate("""root => {
        const sizes = [];
        for (const line of window.kdlabCanvasText || []) {
            if (!root.contains(line.canvas) || !line.text.trim()) continue;
            const shown = line.canvas.getBoundingClientRect().width / line.canvas.width;
            sizes.push({ where: line.canvas.parentElement.className, text: line.text,
                         px: line.px * line.scale * line.squeeze * shown });
        }
        const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const parent = walker.currentNode.parentElement;
            if (!walker.currentNode.textContent.trim() || !parent.getClientRects().length) continue;
            sizes.push({ where: parent.className || parent.tagName, text: walker.currentNode.textContent,
                         px: parseFloat(getComputedStyle(parent).fontSize) });
        }
        return sizes.sort((a, b) => a.px - b.px);
    }""")


def test_after_run_all_the_explorer_fills_a_projectors_screen_and_fits_each_viewport(lab_notebook_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, log = lab_notebook_url
    deadline = time.monotonic() + BROWSER_BUDGET_S

    def left() -> float:
        """Milliseconds left of the browser's budget, for each wait in turn."""
        return max(1_000.0, (deadline - time.monotonic()) * 1_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PROJECTOR)
            page.add_init_script(RECORD_CANVAS_TEXT)
            # Nothing beyond localhost: JupyterLab needs nothing else, and a request out would hang here.
            page.route(lambda address: not address.startswith("http://127.0.0.1:"), lambda route: route.abort())
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
            file_browser = page.locator("#filebrowser")
            explorer = notebook.locator(".kdlab-explorer")

            def show_file_browser(shown: bool) -> None:
                if file_browser.is_visible() != shown:
                    page.locator(".jp-SideBar [data-id='filebrowser']").click(timeout=left())
                expect(file_browser).to_be_visible(timeout=left()) if shown else expect(file_browser).to_be_hidden(
                    timeout=left())

            try:
                page.goto(url, timeout=left())
                notebook.locator(".jp-Cell").first.wait_for(timeout=left())
                show_file_browser(False)  # a projector's lecturer collapses it (JupyterLab opens with it shown)
                # The kernel is ready once the status bar names it and says Idle. (The toolbar's indicator alone
                # will not do: it reads "idle" before any kernel exists, and a Run All then runs nothing.)
                expect(page.locator(".jp-StatusBar-Widget")).to_contain_text(re.compile(r"Python 3[^|]*\| Idle"),
                                                                             timeout=left())
                indicator = notebook.locator(".jp-Notebook-ExecutionIndicator")
                expect(indicator).to_have_attribute("data-status", "idle", timeout=left())

                # Run > Run All Cells, as the notebook's first cell tells the reader to.
                page.locator(".lm-MenuBar-item", has_text="Run").first.click(timeout=left())
                page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click(timeout=left())

                last_cell = notebook.locator(".jp-CodeCell").last
                expect(last_cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=left())
                expect(indicator).to_have_attribute("data-status", "idle", timeout=left())
                explorer.wait_for(state="attached", timeout=left())
                expect(notebook.locator(".kdlab-readout")).to_contain_text(f"T = {TEMPERATURE:.3g}:", timeout=left())
                # Each canvas is sized on its first draw: until then it is 0 wide and its box would prove nothing.
                page.wait_for_function(
                    """classes => classes.every(css => {
                        const canvas = document.querySelector(`.jp-NotebookPanel:not(.lm-mod-hidden) .${css} canvas`);
                        return canvas && canvas.getBoundingClientRect().width > 0;
                    })""", arg=list(PANELS), timeout=left())
                page.wait_for_timeout(500)  # the explorer's own scroll into view, and any relayout, settle
            except Exception as error:
                page.screenshot(path=tmp_path / "jupyterlab-not-ready.png")
                raise AssertionError(f"the explorer did not render in JupyterLab ({error}); see "
                                     f"{tmp_path / 'jupyterlab-not-ready.png'}; server log:\n"
                                     f"{log.read_text()[-3000:]}") from error
            assert "Could not update" not in notebook.locator(".kdlab-status").inner_text()

            def parts_outside(viewport: dict, name: str) -> dict:
                """Each slider and panel canvas not inside both the viewport and the notebook's visible area."""
                area = notebook.locator(".jp-WindowedPanel-outer").bounding_box()  # the notebook's scrolled area
                screen = {"x": 0, "y": 0, **viewport}
                boxes = {css: notebook.locator(f".{css}").first.bounding_box() for css in SLIDERS}
                boxes.update({f"{css} canvas": notebook.locator(f".{css} canvas").first.bounding_box()
                              for css in PANELS})
                page.screenshot(path=tmp_path / f"jupyterlab-{name}.png")
                print(f"\n{name}: viewport {screen}, notebook area {area}, explorer {explorer.bounding_box()}, "
                      f"screenshot {tmp_path / f'jupyterlab-{name}.png'}")
                return {css: box for css, box in boxes.items()
                        if box is None or box["width"] == 0 or not (_inside(box, screen) and _inside(box, area))}

            # 1280x720, as Run All left it: no scrolling by the test.
            outside = parts_outside(PROJECTOR, "1280x720-after-run-all")
            assert not outside, f"after Run All at 1280x720 these are not on screen: {outside}"
            sizes = _text_sizes(explorer)
            print(f"smallest text: {sizes[:3]}")
            assert sizes and sizes[0]["px"] >= MIN_TEXT_PX - 0.01, [size for size in sizes
                                                                    if size["px"] < MIN_TEXT_PX - 0.01]

            # 1440x900 with the file browser open, the explorer's top scrolled to the top of the notebook.
            page.set_viewport_size(LAPTOP)
            show_file_browser(True)
            explorer.evaluate("element => element.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)  # let the scroll and any relayout settle
            sidebar = file_browser.bounding_box()
            area = notebook.locator(".jp-WindowedPanel-outer").bounding_box()
            assert sidebar["x"] + sidebar["width"] <= area["x"] + 1, ("the file browser overlaps the notebook",
                                                                      sidebar, area)
            outside = parts_outside(LAPTOP, "1440x900-file-browser")
            assert not outside, f"at 1440x900 with the file browser open (at {sidebar}) these do not fit: {outside}"

            # 1024x576: the projector at 125 % zoom, the file browser collapsed again.
            page.set_viewport_size(ZOOMED)
            show_file_browser(False)
            explorer.evaluate("element => element.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            outside = parts_outside(ZOOMED, "1024x576")
            area, box = notebook.locator(".jp-WindowedPanel-outer").bounding_box(), explorer.bounding_box()
            assert box["height"] <= area["height"] and not outside, (
                f"at 1024x576 the explorer ({box}) is taller than the notebook's view ({area}), or these do not "
                f"fit: {outside}")
        finally:
            browser.close()
