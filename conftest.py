"""How the suite is scheduled across cores: the slowest files first, and one worker more than cores.

pytest-xdist (`-n auto --dist loadfile`) hands each worker whole files, in the order they were collected;
by default it first sorts them by their number of tests, so a one-test file that trains on real MNIST for
minutes starts last and one core waits for it alone. Here xdist keeps our order, and our order is the
files' measured seconds, slowest first (longest-processing-time first), from tests/file_seconds.json.
A file not measured yet goes in at the median. Refresh the measurements after a change that moves them:

    python -m pytest --nbval-lax -n auto --dist loadfile --record-seconds tests/file_seconds.json
"""

import datetime
import json
import os
import statistics
from collections import defaultdict
from pathlib import Path

SECONDS = Path(__file__).resolve().parent / "tests" / "file_seconds.json"


def pytest_addoption(parser):
    parser.addoption("--record-seconds", metavar="FILE",
                     help="write each test file's total seconds (setup, call, teardown) to FILE as JSON")


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than cores. The suite waits as well as computes (browsers render, servers and
    kernels start, child processes import torch), and with one worker per core a core idles through those
    waits: about 1.8 of 2 cores were busy. With a third worker on 2 cores, `.ci/run` from a clean clone took a
    median 526 s against 539 s (3 runs each, 2026-12-04; README, "Speed"); kdlab trains on one thread, so every
    number is the same. PYTEST_XDIST_AUTO_NUM_WORKERS still sets the count outright."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist reads it
    from xdist.plugin import pytest_xdist_auto_num_workers as one_per_core
    return one_per_core(config) + 1


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: keep the collection's order
        config.option.loadscopereorder = False


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    try:
        seconds = json.loads(SECONDS.read_text())["seconds"]
    except (OSError, ValueError, KeyError):
        return  # no measurements: pytest's own order
    unknown = statistics.median(seconds.values()) if seconds else 0.0
    first_seen = {}
    for item in items:
        first_seen.setdefault(_file_of(item.nodeid), len(first_seen))
    # A stable sort by file: the items of one file stay together and in order (a notebook's cells).
    items.sort(key=lambda item: (-seconds.get(_file_of(item.nodeid), unknown), first_seen[_file_of(item.nodeid)]))


_measured = defaultdict(float)  # file -> seconds, from every report this process sees


def pytest_runtest_logreport(report):
    _measured[_file_of(report.nodeid)] += report.duration


def pytest_sessionfinish(session):
    target = session.config.getoption("record_seconds")
    if not target or os.environ.get("PYTEST_XDIST_WORKER"):  # the controller sees every worker's reports
        return
    measured = {name: round(value, 1) for name, value in sorted(_measured.items())}
    Path(target).write_text(json.dumps({"measured_on": datetime.date.today().isoformat(),
                                        "command": "python -m pytest --nbval-lax -n auto --dist loadfile "
                                                   "--record-seconds tests/file_seconds.json",
                                        "seconds": measured}, indent=1) + "\n")
