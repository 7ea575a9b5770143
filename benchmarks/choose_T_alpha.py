"""Which T and alpha a dataset's default experiment uses: the best cell of a grid scored on validation images.

    python benchmarks/choose_T_alpha.py --dataset mnist --data-root COPY --offline     # about 5 minutes on 1 core
    python benchmarks/choose_T_alpha.py                                                  # the digits (notebook 06)

The teacher trains on the pool only; each seed draws its own transfer set from the pool and distils one
student per cell; every student is scored on the held-out validation images, which no teacher or student
trained on. The cell with the highest mean is the choice recorded in kdlab.experiment.SETTINGS; the test
set is never looked at. Notebook 06 shows the same run for the digits.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from kdlab import experiment
from kdlab.models import student_spec
from kdlab.sweep import best_cell, sweep_transfer_sets

TEMPERATURES = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
ALPHAS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--seeds", type=int, default=5, help="transfer sets, one student per cell each")
    arguments = parser.parse_args()
    start = time.perf_counter()
    split, teacher, metadata = experiment.load_data_and_teacher(arguments.dataset, arguments.data_root,
                                                                offline=arguments.offline, progress=False)
    setting = experiment.setting_for(metadata["dataset"])
    spec = student_spec(split.pool.input_shape, setting.student, split.pool.num_classes)
    grid = sweep_transfer_sets(teacher, split.pool, split.validation, spec, TEMPERATURES, ALPHAS,
                               transfer_size=setting.transfer_size, seeds=range(arguments.seeds), epochs=setting.epochs,
                               progress=False)
    print(f"{metadata['dataset']}: teacher on {len(split.pool)} pool images (validation accuracy "
          f"{metadata['validation_accuracy']:.4f}); {setting.student} students on {setting.transfer_size} labels, "
          f"{setting.epochs} epochs, {arguments.seeds} transfer sets; mean validation accuracy "
          f"({len(split.validation)} images), rows T, columns alpha:")
    print(" " * 6 + "".join(f"{alpha:>8g}" for alpha in ALPHAS))
    for T, row in zip(TEMPERATURES, grid.accuracy):
        print(f"{T:>6g}" + "".join(f"{value:>8.4f}" for value in np.atleast_1d(row)))
    T, alpha = best_cell(grid)
    print(f"best cell: T={T:g}, alpha={alpha:g} (kdlab.experiment.SETTINGS has T={setting.T:g}, "
          f"alpha={setting.alpha:g}); {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
