"""How responsive the explorer is: one slider move, one "Train now", and a key press in a real browser
(a benchmark, not a test).

    python benchmarks/bench_explorer.py [--data-root data] [--moves 100] [--trainings 3]
    python benchmarks/bench_explorer.py --browser [--presses 12]

Without --browser: medians against the targets for 2 CPU cores: the kernel's own work per slider move
(the page computes the panels itself; `all_panels`, their twin in the kernel, is timed beside it) and
Train now <= 3 s.

With --browser: headless Chromium presses the arrow keys on each slider, T, alpha and the example, of the
explorer served by Voilà and of the single-file page (`python -m kdlab explorer-html`) opened from file://.
A page script notes each key press's event time and when the last drawing call on a panel's canvas ended;
per page it reports the median of that key press -> last panel drawn, against one frame (16 ms).
"""

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from kdlab.explorer_data import load_explorer_data
from kdlab.explorer_html import explorer_html
from kdlab.panels import ALPHA_RANGE, T_RANGE, all_panels
from kdlab.widgets import Explorer

UPDATE_TARGET_S = 0.030
TRAIN_TARGET_S = 3.0
FRAME_TARGET_MS = 16
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "00_explorer.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PANELS = ".kdlab-example-image, .kdlab-soft-targets, .kdlab-loss, .kdlab-gradients, .kdlab-grid, .kdlab-curves"
# Wraps the canvas drawing calls: each one on a panel's canvas records when it ended.
DRAW_PROBE = """
window.__drawn = 0;
window.__pressed = 0;
document.addEventListener('keydown', (event) => { window.__pressed = event.timeStamp; }, true);
const proto = CanvasRenderingContext2D.prototype;
for (const name of ['fillRect', 'strokeRect', 'drawImage', 'fillText', 'stroke']) {
  const original = proto[name];
  proto[name] = function (...args) {
    const result = original.apply(this, args);
    const canvas = this.canvas;
    if (canvas.__panel === undefined) canvas.__panel = Boolean(canvas.closest && canvas.closest('%s'));
    if (canvas.__panel) window.__drawn = performance.now();
    return result;
  };
}
""" % PANELS


def median_seconds(action, arguments) -> float:
    times = []
    for argument in arguments:
        start = time.perf_counter()
        action(*argument)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kernel_side(options) -> None:
    data = load_explorer_data("digits", options.data_root, device="cpu")
    explorer = Explorer(data)
    generator = np.random.default_rng(0)
    moves = [(float(T), float(alpha), int(example)) for T, alpha, example in zip(
        np.exp(generator.uniform(*np.log(T_RANGE), options.moves)), generator.uniform(*ALPHA_RANGE, options.moves),
        generator.integers(0, len(data.test), options.moves))]

    def move(name):
        def set_value(T, alpha, example):  # one control per move, as one drag of one slider
            setattr(explorer.view, name, {"T": T, "alpha": alpha, "example": example}[name])
        return set_value

    panel_data = median_seconds(lambda T, alpha, example: all_panels(data, T, alpha, example), moves)
    per_control = {name: median_seconds(move(name), moves) for name in ("T", "alpha", "example")}
    trainings = []
    for _ in range(options.trainings):
        explorer.train()
        trainings.append(explorer.last_training["seconds"])
    train_now = statistics.median(trainings)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {options.moves} slider moves, "
          f"{options.trainings} trainings of {data.epochs} epochs on {len(data.transfer)} examples")
    print(f"all panels' data in the kernel:    median {panel_data * 1e3:6.2f} ms  (the page computes its own; "
          f"{panel_data / UPDATE_TARGET_S:.2f} x the {UPDATE_TARGET_S * 1e3:.0f} ms target)")
    for name, label in (("T", "T slider move:"), ("alpha", "α slider move:"), ("example", "example picker move:")):
        print(f"{label:34s} median {per_control[name] * 1e3:6.2f} ms  (the kernel's whole work)")
    print(f"Train now:                         median {train_now:6.2f} s   "
          f"({train_now / TRAIN_TARGET_S:.2f} x the {TRAIN_TARGET_S:.0f} s target); "
          f"accuracy {explorer.last_training['curve'][-1]:.3f}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _press_and_time(page, selector: str, key: str, wait_ms: int = 150) -> float | None:
    """Milliseconds from one key press on `selector` to the end of the last drawing on a panel; None if none."""
    page.evaluate("window.__drawn = 0")
    page.press(selector, key)
    page.wait_for_timeout(wait_ms)  # longer than a frame and a kernel's echo: any later drawing would be seen
    drawn, pressed = page.evaluate("[window.__drawn, window.__pressed]")
    return drawn - pressed if drawn > pressed else None


def _time_presses(page, presses: int) -> dict:
    """{slider: [ms per press]}: `presses` arrow keys on each slider, half one way and half back."""
    results, half = {}, presses // 2
    for name, css, first in (("T", "kdlab-temperature", "ArrowRight"), ("α", "kdlab-alpha", "ArrowLeft"),
                             ("example", "kdlab-example", "ArrowRight")):  # away from the slider's end
        back = {"ArrowRight": "ArrowLeft", "ArrowLeft": "ArrowRight"}[first]
        keys = [first] * half + [back] * (presses - half)
        results[name] = [ms for key in keys if (ms := _press_and_time(page, f".{css} input[type=range]", key))]
    return results


def _report(where: str, results: dict, presses: int) -> None:
    every = [ms for timings in results.values() for ms in timings]
    print(f"{where}: key press -> last panel drawn, {presses} arrow-key presses per slider:")
    for name, timings in (*results.items(), ("all", every)):
        if not timings:
            print(f"  {name:8s} no panel drawn")
            continue
        print(f"  {name:8s} median {statistics.median(timings):5.1f} ms ({min(timings):.1f}-{max(timings):.1f}) "
              f"over {len(timings)} presses; target {FRAME_TARGET_MS} ms (one frame)")


def browser(options) -> None:
    from playwright.sync_api import sync_playwright

    data = load_explorer_data("digits", options.data_root, progress=False)  # cached before Voilà needs it
    page_file = Path(tempfile.mkdtemp()) / "explorer.html"
    page_file.write_text(explorer_html(data), encoding="utf-8")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "voila", str(NOTEBOOK), f"--port={port}", "--no-browser",
                               "--Voila.ip=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            timings = {}
            for where, url in (("Voilà", f"http://127.0.0.1:{port}/"), ("single file", page_file.as_uri())):
                page = chromium.new_page(viewport={"width": 1440, "height": 900})
                page.add_init_script(DRAW_PROBE)
                for _ in range(60):  # voila takes a few seconds to listen
                    try:
                        page.goto(url, timeout=180_000)
                        break
                    except Exception:
                        time.sleep(1)
                page.locator(".kdlab-readout").wait_for(timeout=180_000)
                page.wait_for_timeout(2000)
                timings[where] = _time_presses(page, options.presses)
                page.close()
            chromium.close()
    finally:
        server.terminate()
        server.wait()
    print(f"Chromium (headless, --disable-gpu), torch threads {torch.get_num_threads()}")
    for where, results in timings.items():
        _report(where, results, options.presses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--moves", type=int, default=100)
    parser.add_argument("--trainings", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="time key presses in headless Chromium")
    parser.add_argument("--presses", type=int, default=12, help="key presses per slider with --browser")
    options = parser.parse_args()
    browser(options) if options.browser else kernel_side(options)


if __name__ == "__main__":
    main()
