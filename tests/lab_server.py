"""What the browser tests share: Debian's Chromium and its flags, a free port, waiting for a JupyterLab server, and
the kernels it started."""

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

SERVER_TIMEOUT_S = 60  # until jupyter lab answers
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright's own browser download does not work here
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_server(url: str, process: subprocess.Popen, log: Path, timeout: float = SERVER_TIMEOUT_S) -> None:
    """Until the server answers its REST API (listening is not enough: the extensions load after)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer {url} within {timeout} s:\n{log.read_text()[-3000:]}")


def children(pid: int) -> list[int]:
    """The processes pid started (Linux /proc), for instance the kernels of a Jupyter server."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
