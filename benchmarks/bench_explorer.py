"""How responsive the explorer is: one slider move, one "Train now", and a key press in a real browser
(a benchmark, not a test).

    python benchmarks/bench_explorer.py [--data-root data] [--moves 100] [--trainings 3]
    python benchmarks/bench_explorer.py --browser [--presses 12]

Without --browser: medians against the targets for 2 CPU cores: a slider move's panel data <= 30 ms,
Train now <= 3 s. A move changes one control, as a drag does: the T slider, the alpha slider and
the example picker are timed separately through the widgets (the kernel's whole work per move).

With --browser: Voilà serves notebook 00 and headless Chromium presses the arrow keys on each
slider. A page script notes every draw on a panel's canvas and the animation frame after it
(when the pixels are on screen); per press it reports the first panel repainted and the last
(settled), in ms after the key press, against 50 ms and 100 ms.
"""

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from kdlab.explorer_data import load_explorer_data
from kdlab.panels import ALPHA_RANGE, T_RANGE, all_panels
from kdlab.widgets import Explorer

UPDATE_TARGET_S = 0.030
TRAIN_TARGET_S = 3.0
FIRST_REPAINT_TARGET_MS, SETTLED_TARGET_MS = 50, 100
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "00_explorer.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PANELS = ".kdlab-soft-targets, .kdlab-loss, .kdlab-gradients, .kdlab-grid"
# Wraps the canvas drawing calls: each panel canvas drawn in a frame records the next frame's time.
PAINT_PROBE = """
window.__paints = [];
window.__pressed = 0;
document.addEventListener('keydown', (event) => { window.__pressed = event.timeStamp; }, true);
const proto = CanvasRenderingContext2D.prototype;
for (const name of ['fillRect', 'drawImage', 'putImageData', 'fillText', 'stroke']) {
  const original = proto[name];
  proto[name] = function (...args) {
    const canvas = this.canvas, panel = canvas.closest && canvas.closest('%s');
    if (panel && !canvas.__paintPending) {
      canvas.__paintPending = true;
      requestAnimationFrame((frame) => {
        canvas.__paintPending = false;
        window.__paints.push({panel: panel.className, t: performance.now()});
      });
    }
    return original.apply(this, args);
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
    sliders = {"temperature": explorer.temperature, "alpha": explorer.alpha, "example": explorer.example}

    def move(name):
        def set_value(T, alpha, example):  # one control per move, as one drag of one slider
            sliders[name].value = {"temperature": T, "alpha": alpha, "example": example}[name]
        return set_value

    panel_data = median_seconds(lambda T, alpha, example: all_panels(data, T, alpha, example), moves)
    per_control = {name: median_seconds(move(name), moves) for name in sliders}
    trainings = []
    for _ in range(options.trainings):
        explorer.train_button.click()
        trainings.append(explorer.last_training["seconds"])
    train_now = statistics.median(trainings)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {options.moves} slider moves, "
          f"{options.trainings} trainings of {data.epochs} epochs on {len(data.transfer)} examples")
    print(f"one move, all panels' data:        median {panel_data * 1e3:6.2f} ms  "
          f"({panel_data / UPDATE_TARGET_S:.2f} x the {UPDATE_TARGET_S * 1e3:.0f} ms target)")
    for name, label in (("temperature", "T slider move:"), ("alpha", "α slider move:"),
                        ("example", "example picker move:")):
        print(f"{label:34s} median {per_control[name] * 1e3:6.2f} ms  (the kernel's whole work)")
    print(f"Train now:                         median {train_now:6.2f} s   "
          f"({train_now / TRAIN_TARGET_S:.2f} x the {TRAIN_TARGET_S:.0f} s target); "
          f"accuracy {explorer.last_training['curve'][-1]:.3f}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _press_and_time(page, selector: str, key: str, quiet_ms: int = 500) -> tuple[float, float] | None:
    """(first repaint, settled) in ms after one key press on `selector`; None if no panel repainted."""
    page.evaluate("window.__paints = []")
    page.press(selector, key)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        page.wait_for_timeout(quiet_ms)
        paints, pressed, now = page.evaluate("[window.__paints, window.__pressed, performance.now()]")
        if paints and now - paints[-1]["t"] >= quiet_ms:
            times = [paint["t"] - pressed for paint in paints]
            return min(times), max(times)
    return None


def browser(options) -> None:
    from playwright.sync_api import sync_playwright

    load_explorer_data("digits", options.data_root, progress=False)  # cached before the page needs it
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "voila", str(NOTEBOOK), f"--port={port}", "--no-browser",
                               "--Voila.ip=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = chromium.new_page(viewport={"width": 1440, "height": 900})
            page.add_init_script(PAINT_PROBE)
            for _ in range(60):  # voila takes a few seconds to listen
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=180_000)
                    break
                except Exception:
                    time.sleep(1)
            page.locator(".kdlab-readout").wait_for(timeout=180_000)
            page.wait_for_timeout(2000)
            results = {}
            half = options.presses // 2
            for name, css, first in (("T", "kdlab-temperature", "ArrowRight"), ("α", "kdlab-alpha", "ArrowLeft"),
                                     ("example", "kdlab-example", "ArrowRight")):  # away from the slider's end
                handle = f".{css} input[type=range], .{css} .noUi-handle"
                back = {"ArrowRight": "ArrowLeft", "ArrowLeft": "ArrowRight"}[first]
                keys = [first] * half + [back] * (options.presses - half)
                timings = [timing for key in keys if (timing := _press_and_time(page, handle, key))]
                results[name] = timings
            chromium.close()
    finally:
        server.terminate()
        server.wait()
    print(f"Chromium, Voilà, {options.presses} arrow-key presses per slider, "
          f"torch threads {torch.get_num_threads()}, ms after the key press:")
    every = [timing for timings in results.values() for timing in timings]
    for name, timings in (*results.items(), ("all", every)):
        if not timings:
            print(f"{name:8s} no panel repainted")
            continue
        first, settled = zip(*timings)
        print(f"{name:8s} first repaint median {statistics.median(first):6.1f} ms ({min(first):.0f}-{max(first):.0f}), "
              f"settled median {statistics.median(settled):6.1f} ms ({min(settled):.0f}-{max(settled):.0f}) "
              f"over {len(timings)} presses; targets {FIRST_REPAINT_TARGET_MS} / {SETTLED_TARGET_MS} ms")


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
