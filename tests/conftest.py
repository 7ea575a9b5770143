"""What several test files share: the embedded digits, the CLI in a child process, a Ctrl-C on demand, and the
browser tests' common setup."""

import subprocess
import sys
from pathlib import Path

import pytest
from lab_server import CHROMIUM

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def digits():
    """(train, test): the embedded 8x8 digits, loaded once."""
    from kdlab.data import load_dataset
    return load_dataset("digits")


@pytest.fixture
def run_cli():
    """`run_cli(*arguments, cwd=None)`: `python -m kdlab ARGUMENTS` in a child process, as a user runs it."""
    def run(*arguments, cwd=None):
        return subprocess.run([sys.executable, "-m", "kdlab", *arguments], capture_output=True, text=True, cwd=cwd)
    return run


@pytest.fixture
def ctrl_c():
    """`ctrl_c(model, call)` makes `model` raise KeyboardInterrupt, what Ctrl-C raises, on its
    `call`-th forward pass (training and evaluation passes alike), and returns the model."""
    def arm(model, call: int):
        calls = []

        def interrupt(module, inputs, output):
            calls.append(1)
            if len(calls) == call:
                raise KeyboardInterrupt
        model.register_forward_hook(interrupt)
        return model
    return arm


@pytest.fixture(scope="session")
def explorer_in_a_browser():
    """Skip, saying why, without Chromium or Playwright; else build the explorer's cached teacher, grid and
    baseline in data/ (minutes on a fresh checkout) so that a browser test only waits for the page itself."""
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api",
                        reason="the playwright package is not installed (pip install playwright)")
    from kdlab.explorer_data import load_explorer_data
    load_explorer_data("digits", REPO / "data", progress=False)
    return CHROMIUM
