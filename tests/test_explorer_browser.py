"""The explorer as users see it, driven in headless Chromium through Playwright: served by Voila, and as the single
HTML file `python -m kdlab explorer-html` writes, opened from file://. Both pages carry the same controls and panels,
so each test below runs on both (`open_explorer`'s two parameters); "Train now" differs, and is tested on each.

Every page is opened as in a classroom without internet: a request to any other machine is refused and recorded.
Needs Debian's Chromium (`apt-get install -y chromium`); without it the test is skipped and says so.
"""

import re
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from lab_server import CHROMIUM, CHROMIUM_ARGS, free_port

from kdlab.experiment import TEMPERATURE
from kdlab.explorer_html import TRAIN_ELSEWHERE

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "00_explorer.ipynb"
PAGE_TIMEOUT_MS = 180_000  # Voila renders after the kernel has run the notebook: slow on a loaded machine
THIS_MACHINE = ("127.0.0.1", "localhost")

pytestmark = pytest.mark.browser


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"voila exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"voila did not listen on port {port} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def explorer_url(tmp_path_factory, explorer_in_a_browser):
    """Voila serving the explorer on a free localhost port; stopped at the end, pass or fail."""

    port = free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "voila", str(NOTEBOOK), f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1"],
            cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def outside_requests():
    """The addresses on other machines that the test's pages asked for (each refused)."""
    return []


@pytest.fixture
def dialogs():
    """The messages of the alert/confirm/prompt dialogs the test's pages opened (each dismissed)."""
    return []


@pytest.fixture(scope="module")
def explorer_file(tmp_path_factory, explorer_in_a_browser):
    """The single-file explorer, written from the same cached teacher, grid and baseline as Voila's page."""
    from kdlab.explorer_data import load_explorer_data
    from kdlab.explorer_html import explorer_html

    path = tmp_path_factory.mktemp("html") / "explorer.html"
    path.write_text(explorer_html(load_explorer_data("digits", REPO / "data", progress=False)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser(explorer_in_a_browser):
    """One headless Chromium for the module's tests: a launch costs about a second of CPU, as much as some tests.
    Its requests to other machines go to a proxy that is not there (port 9, discard), so they fail as they would
    in a classroom without internet; this machine's addresses and files are reached directly."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=[*CHROMIUM_ARGS, "--proxy-server=http://127.0.0.1:9"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def voila_context(browser):
    """The context every Voila page of the module opens in, like one student's browser: its HTTP cache keeps
    Voila's scripts after the first page, which saves about 2 CPU-seconds of Chromium a page against a fresh
    context each time (measured on this machine, 2026-12-05). Each page still gets a kernel of its own."""
    context = browser.new_context()
    yield context
    context.close()


@pytest.fixture(params=["voila", "file"])
def open_explorer(request, browser, tmp_path, outside_requests, dialogs):
    """open_explorer(query, viewport) -> a Playwright page showing the explorer, once it has drawn: served by Voila,
    or the single file opened from file:// (`open_explorer.host` says which)."""
    from playwright.sync_api import expect

    if request.param == "voila":
        url, log = request.getfixturevalue("explorer_url")
        context = request.getfixturevalue("voila_context")
    else:
        url, log = request.getfixturevalue("explorer_file").as_uri(), None

    def is_outside(address):
        return not ((urllib.parse.urlsplit(address).hostname in THIS_MACHINE if request.param == "voila"
                     else address.startswith("file:")) or address.startswith(("data:", "blob:")))

    def record_if_outside(asked):
        if is_outside(asked.url):
            outside_requests.append(asked.url)

    def refuse_outside(route):
        if is_outside(route.request.url):
            outside_requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    pages = []

    def open_page(query: str = "", viewport=(1600, 1800), expected_T: str = f"{TEMPERATURE:.3g}"):
        if request.param == "voila":  # watched, not routed: routing switches the HTTP cache off
            page = context.new_page()
            page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
            # Voila's template links Font Awesome from a CDN; voila.json's Content-Security-Policy stops that
            # inside the browser ("csp"), so it never leaves. Anything else outside went out (the proxy refuses it)
            page.on("requestfinished", record_if_outside)
            page.on("requestfailed", lambda failed: failed.failure == "csp" or record_if_outside(failed))
        else:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.route("**/*", refuse_outside)
        pages.append(page)
        page.on("dialog", dismiss)
        page.goto(url + query, timeout=PAGE_TIMEOUT_MS)
        try:
            page.locator(".kdlab-temperature .widget-readout").wait_for(timeout=PAGE_TIMEOUT_MS)
            expect(page.locator(".kdlab-readout")).to_contain_text(f"T = {expected_T}:", timeout=60_000)
        except Exception:
            page.screenshot(path=tmp_path / "explorer-not-ready.png", full_page=True)
            raise AssertionError(f"the explorer did not render; voila log:\n{log and log.read_text()[-3000:]}")
        return page
    open_page.host = request.param
    try:
        yield open_page
    finally:
        for page in pages:
            page.close()  # and, for the file's, its context


def test_typing_a_temperature_redraws_the_soft_targets_and_train_now_trains(open_explorer, outside_requests,
                                                                           tmp_path):
    from playwright.sync_api import expect

    page = open_explorer()
    readout = page.locator(".kdlab-temperature .widget-readout")
    panel = page.locator(".kdlab-soft-targets canvas").first
    panel_text = page.locator(".kdlab-readout")
    assert "Could not update" not in page.locator(".kdlab-status").inner_text()
    before = _settled_screenshot(panel)

    readout.click()
    readout.fill("20")
    readout.press("Enter")

    expect(panel_text).to_contain_text("T = 20:", timeout=60_000)
    after = _wait_for_change(panel, before)
    assert after != before, "the soft-target panel did not change after typing T = 20"
    assert outside_requests == [], "the page asked another machine for something: without internet it would fail"

    # A bad value typed into the readout is clamped, and the page says so.
    readout.click()
    readout.fill("-3")
    readout.press("Enter")
    expect(page.locator(".kdlab-status")).to_contain_text("clamped", timeout=60_000)
    expect(readout).to_have_text(re.compile(r"^0\.50*$"))

    if open_explorer.host == "file":  # no kernel: Train now is shown as unavailable, saying where to find it
        expect(page.locator(".kdlab-train")).to_be_disabled()
        expect(page.locator(".kdlab-train-status")).to_have_text(TRAIN_ELSEWHERE)
        return
    # Train now distills a student at the chosen T and reports its accuracy on the page.
    page.locator(".kdlab-train").click()
    expect(page.locator(".kdlab-train-status")).to_contain_text("Distilled at T = 0.5", timeout=120_000)
    page.screenshot(path=tmp_path / "explorer.png", full_page=True)
    assert (tmp_path / "explorer.png").stat().st_size > 0


def test_the_arrow_keys_take_visible_steps(open_explorer):
    from playwright.sync_api import expect

    page = open_explorer("?T=4&alpha=0.9", expected_T="4")  # stops of its own, whatever the defaults are
    handle = page.locator(".kdlab-temperature input[type=range]")
    handle.press("ArrowRight")
    handle.press("ArrowRight")
    expect(page.locator(".kdlab-temperature .widget-readout")).to_have_text("6.3")
    expect(page.locator(".kdlab-readout")).to_contain_text("T = 6.3:", timeout=30_000)
    page.locator(".kdlab-alpha input[type=range]").press("ArrowLeft")
    expect(page.locator(".kdlab-alpha .widget-readout")).to_have_text("0.85")
    expect(page.locator(".kdlab-link")).to_contain_text("T=6.3&alpha=0.85&example=0", timeout=30_000)


def test_a_permalink_opens_with_its_settings_and_hides_what_it_names(open_explorer):
    from playwright.sync_api import expect

    page = open_explorer("?T=8&alpha=0.5&example=12&hide=grid,train,nothing", expected_T="8")
    for css, text in (("kdlab-temperature", "8"), ("kdlab-alpha", "0.5"), ("kdlab-example", "12")):
        expect(page.locator(f".{css} .widget-readout")).to_have_text(text)
    expect(page.locator(".kdlab-grid")).to_be_hidden()
    expect(page.locator(".kdlab-train")).to_be_hidden()
    expect(page.locator(".kdlab-gradients canvas")).to_be_visible()
    expect(page.locator(".kdlab-status")).to_contain_text("hide='nothing' in the link names no panel")
    expect(page.locator(".kdlab-link")).to_contain_text("?T=8&alpha=0.50&example=12&hide=grid,train")


# Each would run script if the page took it for markup: an alert, or a global the test looks for.
HOSTILE_LINK = {"example": "<img src=x onerror=alert(1)>", "T": "<img src=x onerror=__kdlab_pwned=1>",
                "hide": "<img src=x onerror=alert(2)>", "<img src=x onerror=__kdlab_pwned=2>": "1"}


def test_a_hostile_link_shows_its_text_and_runs_nothing(open_explorer, dialogs):
    from playwright.sync_api import expect

    page = open_explorer("?" + urllib.parse.urlencode(HOSTILE_LINK))
    status = page.locator(".kdlab-status")
    for text in ("example='<img src=x onerror=alert(1)>' in the link is not a number",
                 "T='<img src=x onerror=__kdlab_pwned=1>' in the link is not a number",
                 "hide='<img src=x onerror=alert(2)>' in the link names no panel",
                 "'<img src=x onerror=__kdlab_pwned=2>' in the link: not a setting"):
        expect(status).to_contain_text(text)
    expect(status.locator("img")).to_have_count(0)
    page.wait_for_timeout(1000)  # time for an injected image's error handler to have run
    assert page.evaluate("typeof window.__kdlab_pwned") == "undefined"
    assert dialogs == []


def test_readouts_say_why_they_refuse_text_and_round_the_example_as_the_kernel_does(open_explorer):
    from playwright.sync_api import expect

    page = open_explorer()
    status, temperature = page.locator(".kdlab-status"), page.locator(".kdlab-temperature .widget-readout")
    for text, reason in (("garbage", "is not a number"), ("NaN", "is not a number"), ("0x10", "is not a number"),
                         ("1e309", "is too large")):
        temperature.click()
        temperature.fill(text)
        temperature.press("Enter")
        expect(status).to_contain_text(f"T: '{text}' {reason}", timeout=30_000)
        expect(temperature).to_have_text(f"{TEMPERATURE:.3g}")
    example = page.locator(".kdlab-example .widget-readout")
    example.click()
    example.fill("3.7")
    example.press("Enter")
    expect(example).to_have_text("4")
    expect(page.locator(".kdlab-link")).to_contain_text("example=4", timeout=30_000)  # the kernel draws #4 too


def test_the_explorer_fits_a_1280x720_projector(open_explorer):
    page = open_explorer(viewport=(1280, 720))
    explorer = page.locator(".kdlab-explorer")
    explorer.scroll_into_view_if_needed()
    page.evaluate("document.querySelector('.kdlab-explorer').scrollIntoView()")
    box = explorer.bounding_box()
    assert box["width"] <= 1280 and box["height"] <= 720, box
    for css in ("kdlab-temperature", "kdlab-alpha", "kdlab-example", "kdlab-soft-targets", "kdlab-loss",
                "kdlab-gradients", "kdlab-grid", "kdlab-train", "kdlab-curves"):
        part = page.locator(f".{css}").first.bounding_box()  # give or take the scroll's sub-pixel rounding
        assert part["x"] >= -1 and part["y"] >= -1, (css, part)
        assert part["x"] + part["width"] <= 1281 and part["y"] + part["height"] <= 721, (css, part)


CONTROLS_AND_PANELS = ("kdlab-temperature", "kdlab-alpha", "kdlab-example", "kdlab-example-image", "kdlab-soft-targets",
                       "kdlab-loss", "kdlab-gradients", "kdlab-grid", "kdlab-train", "kdlab-curves")


@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)])
def test_the_single_file_opens_offline_and_a_key_press_redraws_and_relinks(browser, explorer_file, viewport):
    """From file:// with every other request refused: nothing fails, nothing is logged as an error, a press of
    the T slider's arrow key redraws the soft targets and rewrites the link and the address, a drag of α moves
    the link too, and the page fits a laptop's screen and a phone's without scrolling sideways."""
    from playwright.sync_api import expect

    assert explorer_file.stat().st_size <= 2_000_000
    problems = []

    def only_the_file(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            problems.append(f"asked for {route.request.url}")
            route.abort()

    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page.route("**/*", only_the_file)
        page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        page.goto(explorer_file.as_uri() + "?T=4&alpha=0.9&example=3")
        caption, link = page.locator(".kdlab-readout"), page.locator(".kdlab-link")
        expect(caption).to_contain_text("T = 4:")
        soft = page.locator(".kdlab-soft-targets canvas")
        before = soft.screenshot()

        page.locator(".kdlab-temperature input[type=range]").press("ArrowRight")
        expect(caption).to_contain_text("T = 5:")
        assert soft.screenshot() != before, "the soft-target panel did not change after a key press on T"
        expect(link).to_contain_text("?T=5&alpha=0.90&example=3")
        page.wait_for_function("location.search === '?T=5&alpha=0.90&example=3'", timeout=5_000)
        page.locator(".kdlab-alpha input[type=range]").fill("0.25")  # a drag's input event: drawn next frame
        expect(link).to_contain_text("?T=5&alpha=0.25&example=3")
        expect(page.locator(".kdlab-alpha .widget-readout")).to_have_text("0.25")

        assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0], "it scrolls sideways"
        for css in CONTROLS_AND_PANELS:
            box = page.locator(f".{css}").first.bounding_box()
            assert box and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= viewport[0], (css, box)
    finally:
        page.close()
    assert problems == []


def _settled_screenshot(element, timeout: float = 60) -> bytes:
    """The element's pixels once two screenshots a second apart agree: the canvas has finished drawing."""
    deadline = time.monotonic() + timeout
    previous = element.screenshot()
    while time.monotonic() < deadline:
        time.sleep(1)
        current = element.screenshot()
        if current == previous:
            return current
        previous = current
    return previous


def _wait_for_change(element, before: bytes, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = element.screenshot()
        if current != before:
            return _settled_screenshot(element)
        time.sleep(0.5)
    return before
