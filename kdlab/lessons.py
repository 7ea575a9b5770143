"""Each lesson notebook's headline as one record: what it claims, what it measured, and whether the claim held.

Notebooks 05, 06, 07, 09 and 10 end with `report(...)`. `python benchmarks/mnist_lessons.py` runs those notebooks
on the real-MNIST fixture and collects their records into benchmarks/results/mnist_lessons.json (committed); on the
digits, `report` prints that MNIST record under the notebook's own, so the summary can say, with numbers printed by
the notebook, whether its lesson held on real handwriting.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

__all__ = ["MIME_TYPE", "MNIST_RESULTS", "mnist_record", "report", "verdict"]

MIME_TYPE = "application/vnd.kdlab.lesson+json"  # how benchmarks/mnist_lessons.py finds the record in an output
MNIST_RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "mnist_lessons.json"
WIDTH = 100  # no printed line is wider: a notebook cell in JupyterLab on a projector holds about this many characters
INDENT = "  "
GLUE = re.compile(r"(?<=\S) [%=\-\u2212] (?=\S)")  # the spaces of "T = 4", "95 % CI", "DKD - KD" stay unbroken


def verdict(holds: bool) -> str:
    return "holds" if holds else "does not hold"


def mnist_record(notebook: str, results: Path = MNIST_RESULTS) -> dict | None:
    """The record benchmarks/mnist_lessons.py measured for `notebook` on real MNIST; None if it has none."""
    try:
        return json.loads(results.read_text())["lessons"][notebook]["record"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def report(notebook: str, claim: str, measured: str, holds: bool, dataset: str, *,
           results: Path = MNIST_RESULTS) -> dict:
    """Display the lesson's record for `dataset` (machine-readable for the MNIST runner); on any other dataset,
    also the record measured on real MNIST, or how to measure it. The claim, what was measured and the verdict
    each start a line of their own, and no line is wider than WIDTH characters."""
    if not isinstance(holds, bool):
        raise TypeError(f"holds must be True or False, got {holds!r}")
    record = {"notebook": notebook, "dataset": dataset, "claim": claim, "measured": measured, "holds": holds}
    lines = [*_wrap(f"{claim}, on {dataset}:"), *_wrap(measured, INDENT), f"{INDENT}the lesson {verdict(holds)}"]
    if dataset != "mnist":
        on_mnist = mnist_record(notebook, results)
        if on_mnist:
            lines += ["on real MNIST:", *_wrap(on_mnist["measured"], INDENT),
                      f"{INDENT}the lesson {verdict(on_mnist['holds'])}"]
        else:
            lines += ["on real MNIST: not measured here",
                      f"{INDENT}(python benchmarks/mnist_lessons.py --data-root COPY)"]
    if _in_a_kernel():
        from IPython.display import display
        display({MIME_TYPE: record, "text/plain": "\n".join(lines)}, raw=True)
    else:
        print("\n".join(lines))
    return record


def _wrap(text: str, indent: str = "") -> list[str]:
    """`text` on lines of at most WIDTH characters, broken only at spaces: a number, a range (36-42), a negative
    sign or a short relation (T = 4, 95 % CI, DKD - KD) is never split."""
    glued = GLUE.sub(lambda match: match.group().replace(" ", "\0"), text)
    lines = textwrap.wrap(glued, WIDTH, initial_indent=indent, subsequent_indent=indent, break_long_words=False,
                          break_on_hyphens=False)
    return [line.replace("\0", " ") for line in lines] or [indent.rstrip()]


def _in_a_kernel() -> bool:
    try:
        from IPython.core.interactiveshell import InteractiveShell
    except ImportError:
        return False
    return InteractiveShell.initialized()
