"""Each lesson notebook's headline as one record: what it claims, what it measured, and whether the claim held.

Notebooks 05, 06, 07, 09 and 10 end with `report(...)`. `python benchmarks/mnist_lessons.py` runs those notebooks
on the real-MNIST fixture and collects their records into benchmarks/results/mnist_lessons.json (committed); on the
digits, `report` prints that MNIST record under the notebook's own, so the summary can say, with numbers printed by
the notebook, whether its lesson held on real handwriting.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["MIME_TYPE", "MNIST_RESULTS", "mnist_record", "report", "verdict"]

MIME_TYPE = "application/vnd.kdlab.lesson+json"  # how benchmarks/mnist_lessons.py finds the record in an output
MNIST_RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "mnist_lessons.json"


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
    """Display the lesson's record for `dataset` (one line, and machine-readable for the MNIST runner); on any
    other dataset, also the record measured on real MNIST, or how to measure it."""
    if not isinstance(holds, bool):
        raise TypeError(f"holds must be True or False, got {holds!r}")
    record = {"notebook": notebook, "dataset": dataset, "claim": claim, "measured": measured, "holds": holds}
    lines = [f"{claim}, on {dataset}: {measured}; the lesson {verdict(holds)}"]
    if dataset != "mnist":
        on_mnist = mnist_record(notebook, results)
        lines.append(f"on real MNIST: {on_mnist['measured']}; the lesson {verdict(on_mnist['holds'])}" if on_mnist else
                     "on real MNIST: not measured here (python benchmarks/mnist_lessons.py --data-root COPY)")
    if _in_a_kernel():
        from IPython.display import display
        display({MIME_TYPE: record, "text/plain": "\n".join(lines)}, raw=True)
    else:
        print("\n".join(lines))
    return record


def _in_a_kernel() -> bool:
    try:
        from IPython.core.interactiveshell import InteractiveShell
    except ImportError:
        return False
    return InteractiveShell.initialized()
