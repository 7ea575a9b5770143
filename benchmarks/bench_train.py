"""How much faster kdlab trains, measured on the default experiment (a benchmark, not a test).

    python benchmarks/bench_train.py [--json FILE] [--epochs N] [--seeds N] [--threads N] [--device D]
                                     [--dataset NAME --data-root DIR --offline] [--compile]

1. Distillation: kdlab's `distill` against a loop written the way the PyTorch knowledge-
   distillation tutorial writes it (a DataLoader over a TensorDataset, the teacher's forward pass
   at every step, loss.item() at every step). Same data, models, seeds, epochs and loss; the two
   draw batches in different orders, so their accuracies agree only up to seed noise.
2. The 5x5 T x alpha grid: kdlab.sweep's one batched pass against the same 25 students trained
   one at a time with `distill` (same initial weights and batches: the accuracies must match), and the
   batched pass's GFLOP/s beside a plain matmul's on the same thread: how far it is from the machine's limit.
Times cover training only; every student is scored afterwards with the same `evaluate`.
The students, transfer set, T and alpha are the dataset's default experiment
(`kdlab.experiment.setting_for`); each option overrides one of them. `--compile` adds kdlab's
`distill(compile=True)` (torch.compile; its first epoch pays for the compilation).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from kdlab import experiment
from kdlab.comparison import mean_sd
from kdlab.device import one_cpu_thread, pick_device
from kdlab.models import build_model, student_spec
from kdlab.sweep import GRID_ALPHAS, GRID_TEMPERATURES, distill_students
from kdlab.train import distill, evaluate


def tutorial_distill(student, teacher, train, *, T, alpha, epochs, lr, batch_size, seed, device):
    """The PyTorch KD tutorial's training loop, with its two weights written as kdlab's alpha."""
    loader = DataLoader(TensorDataset(train.inputs, train.labels), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    teacher.to(device).eval()
    student.to(device).train()
    for _ in range(epochs):
        running_loss = 0.0
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            with torch.no_grad():
                teacher_logits = teacher(inputs)
            student_logits = student(inputs)
            soft_targets = F.softmax(teacher_logits / T, dim=-1)
            soft_prob = F.log_softmax(student_logits / T, dim=-1)
            soft_targets_loss = torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size(0) * T**2
            label_loss = F.cross_entropy(student_logits, labels)
            loss = alpha * soft_targets_loss + (1 - alpha) * label_loss
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
    student.eval()


def sweep_flops(spec: dict, students: int, examples_seen: int) -> int | None:
    """Floating-point operations in the batched pass's matrix products, counted analytically (None for a family
    other than the MLP). Per student and example, a layer of n_in x n_out weights costs 2 n_in n_out forward,
    as much again for its weight gradient and again for its input's gradient, which the first layer skips.
    Biases, ReLUs and softmaxes (O(n_out) per example) and Adam (O(weights) per batch) are left out: the count
    is the work any implementation must do, so FLOPs per second say how close the pass runs to the limit."""
    if spec["family"] != "mlp":
        return None
    widths = [math.prod(spec["input_shape"]), *spec["hidden"], spec["num_classes"]]
    weights = [n_in * n_out for n_in, n_out in zip(widths, widths[1:])]
    return 2 * (3 * sum(weights) - weights[0]) * students * examples_seen


def matmul_gflops(device: torch.device) -> float:
    """GFLOP/s of a plain square matmul on one CPU thread (as kdlab trains) or on the GPU, in the precision the
    sweep computes in there; the best of five, as the machine's limit, which others' work only lowers."""
    size, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    left, right = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    repeats = 10

    def products(device):
        for _ in range(repeats):
            left @ right
    with one_cpu_thread(device):
        products(device)  # warm-up
        seconds = min(timed(products, device=device)[0] for _ in range(5))
    return 2 * size**3 * repeats / seconds / 1e9


def timed(function, *args, **kwargs):
    """(seconds, result) of a call that takes `device=`, counting the GPU work it queued."""
    def finish_queued_work():
        if torch.device(kwargs["device"]).type == "cuda":
            torch.cuda.synchronize()
    finish_queued_work()
    start = time.perf_counter()
    result = function(*args, **kwargs)
    finish_queued_work()
    return time.perf_counter() - start, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument("--dataset", default="digits", help="digits (embedded), mnist, ... (default: digits)")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--offline", action="store_true", help="never download; fail at once if data is missing")
    parser.add_argument("--epochs", type=int, help="student epochs (default: the dataset's; digits: "
                        f"{experiment.STUDENT_EPOCHS})")
    parser.add_argument("--teacher-epochs", type=int, help="default: the dataset's")
    parser.add_argument("--transfer-size", type=int, help="labelled examples per student (default: the dataset's)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for the distillation comparison")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="also time distill(compile=True)")
    arguments = parser.parse_args(argv)
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    device = pick_device(arguments.device)
    (train, _, test), teacher, _ = experiment.load_data_and_teacher(  # train: the pool, as every transfer set's
        arguments.dataset, root=arguments.data_root, offline=arguments.offline,
        teacher_epochs=arguments.teacher_epochs, device=device, progress=False)
    setting = experiment.setting_for(train.name)
    epochs = arguments.epochs or setting.epochs
    transfer = train.subset(arguments.transfer_size or setting.transfer_size or None)
    spec = student_spec(train.input_shape, setting.student, train.num_classes)
    options = {"epochs": epochs, "lr": 1e-3, "batch_size": 64, "device": device}
    T, alpha = setting.T, setting.alpha
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"CPU, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores")
    print(f"{train.name}: {setting.student} student on {len(transfer)} examples, {epochs} epochs, "
          f"T={T}, alpha={alpha}, on {where}")
    if device.type == "cuda":
        print("note: on CUDA kdlab runs its forward passes under bf16 autocast; the tutorial loop runs float32, "
              "as the tutorial is written")

    trainers = ["tutorial", "kdlab"] + (["kdlab_compiled"] if arguments.compile else [])
    seconds = {name: 0.0 for name in trainers}
    accuracy = {name: [] for name in trainers}
    compile_error = None
    # untimed warm-up: one-time costs (CUDA context, cuBLAS handles, lazy kernel loading) fall on whichever
    # trainer runs first, which would flatter the other one
    for trainer in (tutorial_distill, distill):
        extra = {"progress": False} if trainer is distill else {}
        trainer(build_model(spec, seed=0), teacher, transfer, T=T, alpha=alpha, seed=0, **{**options, "epochs": 1},
                **extra)
    for seed in range(arguments.seeds):
        for name in trainers:
            if name == "kdlab_compiled" and compile_error:
                continue
            student = build_model(spec, seed=seed)
            trainer = tutorial_distill if name == "tutorial" else distill
            extra = {} if name == "tutorial" else {"progress": False, "compile": name == "kdlab_compiled"}
            try:
                seconds[name] += timed(trainer, student, teacher, transfer, T=T, alpha=alpha, seed=seed, **options,
                                       **extra)[0]
            except Exception as error:  # a missing compiler toolchain must not cost the other figures
                if name != "kdlab_compiled":
                    raise
                compile_error = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
                print(f"distill(compile=True) failed, the other timings go on: {compile_error}")
                continue
            accuracy[name].append(evaluate(student, test, device=device)["accuracy"])
    if compile_error:
        trainers.remove("kdlab_compiled")
        del accuracy["kdlab_compiled"]
    accuracy = {name: mean_sd(values) for name, values in accuracy.items()}
    difference = accuracy["kdlab"]["mean"] - accuracy["tutorial"]["mean"]
    within_noise = abs(difference) <= 2 * max(accuracy["kdlab"]["sd"], accuracy["tutorial"]["sd"])

    cells = [(t, a) for t in GRID_TEMPERATURES for a in GRID_ALPHAS]
    one_at_a_time = [build_model(spec, seed=k) for k in range(len(cells))]
    sequential_seconds = sum(
        timed(distill, student, teacher, transfer, T=cell_T, alpha=cell_alpha, seed=0, progress=False, **options)[0]
        for student, (cell_T, cell_alpha) in zip(one_at_a_time, cells))
    batched_seconds, batched = timed(
        distill_students, spec, teacher, transfer, seeds=range(len(cells)), temperatures=[c[0] for c in cells],
        alphas=[c[1] for c in cells], seed=0, progress=False, **options)
    flops = sweep_flops(spec, len(cells), epochs * len(transfer))
    sweep_gflops = None if flops is None else flops / batched_seconds / 1e9
    limit_gflops = matmul_gflops(device)
    grid_difference = max(abs(evaluate(a, test, device=device)["accuracy"]
                              - evaluate(b, test, device=device)["accuracy"])
                          for a, b in zip(batched, one_at_a_time))

    results = {
        "dataset": train.name, "device": where, "epochs": epochs, "seeds": arguments.seeds,
        "transfer_size": len(transfer), "student": setting.student, "T": T, "alpha": alpha,
        "distill_seconds": seconds["kdlab"], "tutorial_seconds": seconds["tutorial"],
        "distill_speedup": seconds["tutorial"] / seconds["kdlab"],
        "distill_accuracy": accuracy["kdlab"], "tutorial_accuracy": accuracy["tutorial"],
        "accuracies_within_seed_noise": within_noise,
        "sweep_seconds": batched_seconds, "one_at_a_time_seconds": sequential_seconds,
        "sweep_speedup": sequential_seconds / batched_seconds, "sweep_max_accuracy_difference": grid_difference,
        "sweep_gflops": sweep_gflops, "matmul_gflops": limit_gflops,
    }
    if compile_error:
        results["compile_error"] = compile_error
    elif arguments.compile:
        results |= {"compiled_seconds": seconds["kdlab_compiled"],
                    "compiled_speedup": seconds["tutorial"] / seconds["kdlab_compiled"],
                    "compiled_accuracy": accuracy["kdlab_compiled"]}
    print(f"{'':34} {'seconds':>8} {'speed-up':>9}   test accuracy")
    print(f"{'tutorial-style distillation loop':34} {seconds['tutorial']:8.2f} {'1.0x':>9}   "
          f"{accuracy['tutorial']['mean']:.4f} ± {accuracy['tutorial']['sd']:.4f} ({arguments.seeds} seeds)")
    print(f"{'kdlab distill':34} {seconds['kdlab']:8.2f} {results['distill_speedup']:8.1f}x   "
          f"{accuracy['kdlab']['mean']:.4f} ± {accuracy['kdlab']['sd']:.4f} "
          f"({'within' if within_noise else 'NOT within'} seed noise: {difference:+.4f})")
    if arguments.compile and not compile_error:
        print(f"{'kdlab distill, compile=True':34} {seconds['kdlab_compiled']:8.2f} "
              f"{results['compiled_speedup']:8.1f}x   {accuracy['kdlab_compiled']['mean']:.4f} ± "
              f"{accuracy['kdlab_compiled']['sd']:.4f} (compilation included)")
    print(f"{'25 students one at a time':34} {sequential_seconds:8.2f} {'1.0x':>9}")
    print(f"{'25 students in one batched sweep':34} {batched_seconds:8.2f} {results['sweep_speedup']:8.1f}x   "
          f"largest accuracy difference per student: {grid_difference:.4f}")
    limit = f"a plain matmul on the same {'GPU' if device.type == 'cuda' else 'thread'}: {limit_gflops:.1f} GFLOP/s"
    if sweep_gflops is None:
        print(f"batched pass: no FLOP count for {spec['family']} students; {limit}")
    else:
        print(f"batched pass: {sweep_gflops:.1f} GFLOP/s ({flops / 1e9:.1f} GFLOP of matrix products); {limit} "
              f"(the pass at {sweep_gflops / limit_gflops:.0%} of it)")
    if arguments.json:
        Path(arguments.json).parent.mkdir(parents=True, exist_ok=True)
        Path(arguments.json).write_text(json.dumps(results, indent=2))
        print(f"wrote {arguments.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
