"""What reusing large freed blocks (kdlab.device.reuse_large_blocks) saves on the CPU (a benchmark, not a test).

    python benchmarks/bench_allocator.py [--repeats 3]

Runs the same work in fresh processes, alternately with glibc's default (freed blocks over 32 MB go back to
the system at once) and with kdlab's setting, and prints the median seconds, the seconds spent in the kernel
and the page faults of each, and their ratio. The work is the MNIST ConvNet teacher's, on random 28x28
images (no dataset needed): scoring 2,000 images ten times, and one epoch of training on 2,000 images scored
on 1,000 after it, as `python -m kdlab teacher --dataset mnist` does every epoch. The numbers computed are the
same both ways; the script checks that too.
"""

import argparse
import json
import statistics
import subprocess
import sys

WORK = r"""
import json, resource, sys, time
import torch
import kdlab.device
from kdlab.data import TensorData
from kdlab.device import predict_logits
from kdlab.models import build_model, teacher_spec
from kdlab.train import fit

if sys.argv[1] == "default":
    kdlab.device.reuse_large_blocks = lambda: False  # glibc's own behaviour: the setting is never made
generator = torch.Generator().manual_seed(0)
images = torch.randn(3000, 1, 28, 28, generator=generator)
labels = torch.randint(10, (3000,), generator=generator)
classes = tuple(str(digit) for digit in range(10))
train = TensorData(images[:2000], labels[:2000], classes, "random")
scored = TensorData(images[2000:], labels[2000:], classes, "random")
teacher = build_model(teacher_spec((1, 28, 28)), seed=0)
start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
for _ in range(10):
    logits = predict_logits(teacher, train.inputs)
fit(teacher, train, scored, epochs=1, progress=False)
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - start, "kernel_seconds": after.ru_stime - before.ru_stime,
                  "page_faults": after.ru_minflt - before.ru_minflt,
                  "checksum": float(logits.double().sum() + predict_logits(teacher, scored.inputs).double().sum())}))
"""


def run(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", WORK, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per setting (default 3)")
    options = parser.parse_args(argv)
    if options.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not sys.platform.startswith("linux"):
        print("glibc's allocator is tuned on Linux only; nothing to compare here")
        return 0
    runs = {"default": [], "reused": []}
    for _ in range(options.repeats):
        for mode in runs:  # alternated, so a busy spell on the machine costs both alike
            runs[mode].append(run(mode))
    checksums = {run["checksum"] for results in runs.values() for run in results}
    if len(checksums) != 1:
        print(f"the two settings computed different numbers: {sorted(checksums)}", file=sys.stderr)
        return 1
    medians = {mode: {key: statistics.median(run[key] for run in results)
                      for key in ("seconds", "kernel_seconds", "page_faults")} for mode, results in runs.items()}
    for mode, median in medians.items():
        print(f"{mode:>8}: {median['seconds']:6.2f} s, {median['kernel_seconds']:5.2f} s in the kernel, "
              f"{median['page_faults']:>9,.0f} page faults (median of {options.repeats})")
    print(f"default / reused: {medians['default']['seconds'] / medians['reused']['seconds']:.2f}x the time; "
          f"the same numbers both ways")
    return 0


if __name__ == "__main__":
    sys.exit(main())
