"""benchmarks/gpu_check.sh on the CPU with a tiny budget, so that it cannot fail on a GPU machine for a
silly reason: every step runs, the one JSON summary carries what the issue asks for, the fixture is
never written to. The real budget is meant for a device (about 6-8 minutes on one GPU).

The script trains on a slice of the real-MNIST fixture (1,200 training and 100 test images, cut
into a read-only folder of the same layout) to stay within a few tens of seconds on 2 cores. MNIST holds
1,000 training images out for validation, so the training slice cannot shrink much; the test images are
scored many times over (100 rather than 300 saves about half a second in each step that trains). Most of
the time is the dozen Python processes' imports of torch (2-4 s of CPU each), not training.
"""

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
FIXTURE = REPO.parent / "shared" / "datasets" / "mnist-10k"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 1200),
         "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 100)}


def _slice_idx(source: Path, target: Path, count: int, header: int) -> None:
    data = source.read_bytes()
    fields = list(struct.unpack(f">{header // 4}I", data[:header]))
    item = 1
    for size in fields[2:]:
        item *= size
    fields[1] = count
    target.write_bytes(struct.pack(f">{header // 4}I", *fields) + data[header:header + count * item])


@pytest.fixture
def small_fixture(tmp_path):
    raw = FIXTURE / "MNIST" / "raw"
    if not all((raw / name).is_file() for images, labels, _ in FILES.values() for name in (images, labels)):
        pytest.skip(f"the offline MNIST fixture is not at {FIXTURE} (it sits beside the repository in CI)")
    root = tmp_path / "fixture"
    (root / "MNIST" / "raw").mkdir(parents=True)
    for images, labels, count in FILES.values():
        _slice_idx(raw / images, root / "MNIST" / "raw" / images, count, header=16)
        _slice_idx(raw / labels, root / "MNIST" / "raw" / labels, count, header=8)
    for path in [*root.rglob("*"), root]:  # read-only, as shared/ is: a write into it would fail the run
        path.chmod(path.stat().st_mode & ~0o222)
    yield root
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def _run(*arguments, timeout=240):
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("OUT", None)
    return subprocess.run(["bash", str(SCRIPT), *map(str, arguments)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=environment)


@pytest.mark.skipif(shutil.which("timeout") is None, reason="the script needs coreutils' timeout")
def test_the_tiny_cpu_run_completes_every_step_and_prints_one_summary(small_fixture, tmp_path):
    before = sorted((path.name, path.stat().st_size, path.stat().st_mtime) for path in small_fixture.rglob("*"))
    out = tmp_path / "out"
    done = _run(out, "--device", "cpu", "--tiny", "--fixture", small_fixture)
    assert done.returncode == 0, done.stderr[-4000:] + "".join(
        f"\n--- {log.name}\n{log.read_text()[-1500:]}" for log in out.glob("*.log"))

    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["all_ok"] and summary["tiny_budget"] and summary["device"] == "cpu"
    assert set(summary["steps"]) == {"teacher", "bench-digits", "distill-device", "distill-cpu", "torchrun",
                                     "collective", "bench-mnist", "compile"}
    assert summary["environment"]["torch"] and summary["teacher"]["epochs"] == 1
    for bench in ("bench_digits", "bench_mnist"):
        assert summary[bench]["sweep_speedup"] > 0 and summary[bench]["distill_speedup"] > 0
        assert isinstance(summary[bench]["sweep_goal_15x_met"], bool)
    assert summary["bench_mnist"]["dataset"] == "mnist" and summary["bench_mnist"]["transfer_size"] == 100
    assert set(summary["distill"]) == {"cpu", "cpu (float32)"}
    for result in summary["distill"].values():
        assert result["verdict"] in ("helps", "hurts", "inconclusive") and 0 <= result["teacher_accuracy"] <= 1
    assert isinstance(summary["device_vs_cpu"]["same_verdict"], bool)
    assert summary["torchrun"]["epochs"] == 1
    assert {"eager_seconds", "compiled_seconds", "compiled_accuracy"} <= set(summary["compile"])
    assert summary["collective"] == {"backend": "gloo", "world_size": 1, "all_reduce": [1.0] * 4}
    assert before == sorted((path.name, path.stat().st_size, path.stat().st_mtime)
                            for path in small_fixture.rglob("*")), "the fixture was written to"


def test_a_missing_fixture_or_a_bad_option_stops_at_once_with_a_reason(tmp_path):
    missing = _run(tmp_path / "out", "--device", "cpu", "--fixture", tmp_path / "nowhere", timeout=30)
    assert missing.returncode == 2 and "no MNIST fixture" in missing.stderr
    assert _run("--device", "tpu", timeout=30).returncode == 2
    assert _run("--budget", "soon", timeout=30).returncode == 2
