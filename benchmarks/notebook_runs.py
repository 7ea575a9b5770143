"""Run a committed notebook as a reader would, with some `parameters` changed, without touching the file.

Shared by benchmarks/mnist_lessons.py (the lessons on real MNIST) and benchmarks/bench_notebooks.py (how long
each notebook takes): both execute a copy, top to bottom, from notebooks/ so that its `../data` resolves.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_path(number: str) -> Path:
    return next(NOTEBOOKS.glob(f"{number}_*.ipynb"))


def parameters_cell(notebook) -> int:
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.metadata.get("tags", []):
            return index
    raise ValueError("the notebook has no cell tagged 'parameters'")


def execute(number: str, values: dict, timeout: int, *, allow_errors: bool = True):
    """Execute a copy of notebook `number` with `values` assigned after its parameters cell's own;
    return (the executed notebook, wall-clock seconds)."""
    notebook = nbformat.read(notebook_path(number), as_version=4)
    if values:
        notebook.cells[parameters_cell(notebook)].source += "\n# set by a benchmark:\n" + "\n".join(
            f"{name} = {value!r}" for name, value in values.items())
    started = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, allow_errors=allow_errors, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook, time.perf_counter() - started


def errors(notebook) -> list[str]:
    """Each error output as 'cell N: Name: message'."""
    return [f"cell {index}: {output['ename']}: {output['evalue']}".strip().rstrip(":")
            for index, cell in enumerate(notebook.cells) for output in cell.get("outputs", [])
            if output.get("output_type") == "error"]
