"""Does each notebook's lesson hold on real handwriting? Runs notebooks 05, 06, 07, 09, 10 and 11 on real MNIST.

    python benchmarks/mnist_lessons.py --data-root COPY          # COPY: a writable copy of ../shared/datasets/mnist-10k
    python benchmarks/mnist_lessons.py --data-root COPY --notebooks 07 09
    python benchmarks/mnist_lessons.py --table                   # README's table from the recorded results, no run

Each notebook runs top to bottom, as committed, with its `parameters` cell switched to MNIST: the settings of
kdlab.experiment.SETTINGS["mnist"] (T, alpha, 1,000 labels, 60 epochs) and the few MNIST values the cell's own
comment gives; the same seeds, splits and intervals as on the digits. Its last code cell reports its lesson
(kdlab.lessons.report); the record, the seconds it took and any assert that failed on the way are written to
benchmarks/results/mnist_lessons.json, which the digits notebooks print beside their own lesson. A failed assert
is a claim that did not hold on MNIST: it is recorded, and the notebook runs on. Prints README's table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

import nbformat
from notebook_runs import errors, execute, notebook_path

from kdlab.experiment import SETTINGS
from kdlab.lessons import MIME_TYPE, MNIST_RESULTS, verdict

MNIST = SETTINGS["mnist"]
SHARED = {"dataset": "mnist", "T": MNIST.T, "alpha": MNIST.alpha}
OVERRIDES = {  # per notebook, beyond data_root and SHARED: what its parameters cell says MNIST needs
    "05": {"transfer_size": MNIST.transfer_size, "small_transfer_size": MNIST.transfer_size // 2,
           "epochs": MNIST.epochs, "teacher_epochs": MNIST.teacher_epochs, "longest_budget": 4 * MNIST.epochs,
           "tiny_budgets": (MNIST.epochs, 2 * MNIST.epochs, 4 * MNIST.epochs)},
    "06": {"transfer_size": MNIST.transfer_size, "epochs": MNIST.epochs,
           "transfer_sets": (0, 1, 2, 3, 4)},  # five, as benchmarks/choose_T_alpha.py: a 28x28 grid is 5x slower
    "07": {"teacher_epochs": MNIST.teacher_epochs, "budgets": (10, 20, 30)},  # the whole pool but its 3s
    "09": {"offline": True, "transfer_size": MNIST.transfer_size, "epochs": MNIST.epochs, "pool_epochs": 20},
    "10": {},
    "11": {"transfer_size": MNIST.transfer_size, "epochs": MNIST.epochs},  # its beta grid, then DKD against KD
}


def run(number: str, data_root: Path, timeout: int) -> dict:
    """Execute notebook `number` on MNIST in a scratch copy; return its lesson record, failed asserts and time."""
    values = {"data_root": str(data_root), **SHARED, **OVERRIDES[number]}
    notebook, seconds = execute(number, values, timeout)
    records = [output["data"][MIME_TYPE] for cell in notebook.cells for output in cell.get("outputs", [])
               if MIME_TYPE in output.get("data", {})]
    return {"record": records[-1] if records else None, "failed": errors(notebook), "seconds": round(seconds),
            "parameters": {name: value for name, value in values.items() if name != "data_root"}}


def digits_record(number: str) -> dict | None:
    """The record the committed (digits) notebook printed."""
    notebook = nbformat.read(notebook_path(number), as_version=4)
    found = [output["data"][MIME_TYPE] for cell in notebook.cells for output in cell.get("outputs", [])
             if MIME_TYPE in output.get("data", {})]
    return found[-1] if found else None


def table(lessons: dict) -> str:
    rows = ["| lesson | digits | real MNIST | holds? |", "|---|---|---|---|"]
    for number, outcome in lessons.items():
        on_digits, on_mnist = digits_record(number), outcome["record"]
        held = verdict(on_mnist["holds"]) if on_mnist else "not measured (the notebook stopped before its report)"
        if on_mnist and outcome["failed"]:
            held += f"; {len(outcome['failed'])} of the notebook's asserts failed"
        rows.append(f"| {number}: {(on_digits or on_mnist or {}).get('claim', '?')} | "
                    f"{on_digits['measured'] if on_digits else '?'} | {on_mnist['measured'] if on_mnist else '-'} | "
                    f"{held} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path,
                        help="a writable folder holding MNIST/raw (a copy of ../shared/datasets/mnist-10k)")
    parser.add_argument("--notebooks", nargs="+", default=list(OVERRIDES), choices=list(OVERRIDES))
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--results", type=Path, default=MNIST_RESULTS)
    parser.add_argument("--table", action="store_true", help="only print README's table from --results")
    arguments = parser.parse_args()
    if arguments.table:
        print(table(json.loads(arguments.results.read_text())["lessons"]))
        return
    if arguments.data_root is None or not (arguments.data_root / "MNIST" / "raw").is_dir():
        parser.error(f"--data-root {arguments.data_root} has no MNIST/raw folder: give a writable copy of "
                     "../shared/datasets/mnist-10k")
    try:
        saved = json.loads(arguments.results.read_text())["lessons"]
    except (OSError, ValueError, KeyError):
        saved = {}
    for number in arguments.notebooks:
        print(f"notebook {number} on MNIST ...", flush=True)
        saved[number] = run(number, arguments.data_root.resolve(), arguments.timeout)
        print(json.dumps(saved[number], indent=1), flush=True)
        arguments.results.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=arguments.results.parent, delete=False) as partial:
            json.dump({"measured_on": datetime.date.today().isoformat(), "python": sys.version.split()[0],
                       "command": "python benchmarks/mnist_lessons.py --data-root COPY",
                       "lessons": dict(sorted(saved.items()))}, partial, indent=1)
        Path(partial.name).replace(arguments.results)  # a run cut short keeps the notebooks already measured
    print(table(dict(sorted(saved.items()))))


if __name__ == "__main__":
    main()
