"""The default experiment on real handwriting: the shared offline MNIST fixture (10,000 real images).

The lesson must hold beyond the 8x8 digits: the teacher must be worth learning from, and the
paired gain must survive its interval. About 2 minutes on 2 CPU cores.
"""

import json
import shutil
from pathlib import Path

import pytest

from kdlab.__main__ import main

FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-10k"


@pytest.fixture
def mnist_root(tmp_path):
    if not (FIXTURE / "MNIST" / "raw").is_dir():
        pytest.skip(f"the offline MNIST fixture is not at {FIXTURE} (it sits beside the repository in CI)")
    root = tmp_path / "mnist"
    shutil.copytree(FIXTURE, root)  # the fixture is read-only; checkpoints are written beside the data
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return root


def test_the_default_experiment_helps_on_real_mnist_with_a_teacher_above_99_percent(mnist_root):
    output = mnist_root / "results.json"
    assert main(["distill", "--dataset", "mnist", "--data-root", str(mnist_root), "--offline", "--no-progress",
                 "--json", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["teacher"]["accuracy"] >= 0.99
    assert results["verdict"] == "helps" and results["gain"]["ci_low"] > 0
    assert len(results["runs"]) == 5 and len({run["seed"] for run in results["runs"]}) == 5
