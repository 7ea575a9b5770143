"""Which teacher is worth learning from: the 2x1200 dropout MLP or the ConvNet, both with jitter.

    python benchmarks/compare_teachers.py --dataset mnist --data-root DIR [--epochs 20] [--validation N]

Each candidate trains on the pool of kdlab.experiment.split_dataset (the training set less `--validation`
held-out examples, by default the dataset's Setting.validation: the split every experiment uses) and prints its
validation accuracy after every epoch, with the time taken: the teacher's family and budget are
chosen on these curves, never on the test set (see kdlab.experiment.SETTINGS).
"""

from __future__ import annotations

import argparse
import time

from kdlab.data import load_dataset
from kdlab.experiment import split_dataset  # the same held-out split as `python -m kdlab distill`
from kdlab.models import build_model, convnet_spec, mlp_spec
from kdlab.train import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--validation", type=int, help="held-out examples (default: the dataset's, mnist: 1000)")
    parser.add_argument("--jitter", type=int, default=2)
    parser.add_argument("--only", choices=("mlp", "convnet"), help="train one candidate only")
    arguments = parser.parse_args()
    train, validation, _ = split_dataset(*load_dataset(arguments.dataset, arguments.data_root, offline=True),
                                         validation=arguments.validation)
    candidates = {"mlp": mlp_spec(train.input_shape, hidden=(1200, 1200), dropout=0.5),
                  "convnet": convnet_spec(train.input_shape)}
    for name, spec in candidates.items():
        if arguments.only and name != arguments.only:
            continue
        teacher = build_model(spec, seed=0)
        start = time.perf_counter()
        history = fit(teacher, train, validation, epochs=arguments.epochs, seed=0, progress=False,
                      jitter_pixels=arguments.jitter)
        seconds = time.perf_counter() - start
        curve = " ".join(f"{accuracy:.4f}" for accuracy in history.test_accuracy)
        best = max(range(history.epochs), key=lambda epoch: history.test_accuracy[epoch])
        print(f"{name:>8}: {seconds:5.0f} s, validation accuracy by epoch: {curve}")
        print(f"{'':>8}  best {history.test_accuracy[best]:.4f} after {best + 1} epochs; "
              f"last {history.test_accuracy[-1]:.4f}", flush=True)


if __name__ == "__main__":
    main()
