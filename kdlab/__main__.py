"""python -m kdlab: train a teacher, run the distillation experiment, download a dataset.

    python -m kdlab distill                 # the default experiment on the embedded digits
    python -m kdlab teacher --dataset mnist --device cuda
    python -m kdlab download mnist          # on a machine with internet
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from kdlab.checkpoints import CheckpointError
from kdlab.data import DATASETS, DatasetUnavailable, download, load_dataset
from kdlab import experiment
from kdlab.experiment import compare_students, load_data_and_teacher, load_or_train_teacher
from kdlab.models import STUDENT_SIZES, student_spec
from kdlab.train import pick_device


def main(argv=None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        device = pick_device(arguments.device) if hasattr(arguments, "device") else None
    except ValueError as error:
        parser.error(str(error))
    try:
        return arguments.run(arguments, device)
    except (DatasetUnavailable, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 130


def run_teacher(arguments, device) -> int:
    train, test = load_dataset(arguments.dataset, arguments.data_root, offline=arguments.offline)
    teacher, metadata = load_or_train_teacher(train, test, root=arguments.data_root, epochs=arguments.epochs,
                                              seed=arguments.seed, device=device,
                                              progress=arguments.progress, retrain=arguments.retrain)
    print(f"teacher on {train.name}: test accuracy {metadata['accuracy']:.4f} "
          f"({metadata['epochs']} epochs, seed {metadata['seed']})")
    write_json(arguments.json, {"dataset": train.name, "teacher": metadata})
    return 0


def run_distill(arguments, device) -> int:
    train, test, teacher, teacher_metadata = load_data_and_teacher(
        arguments.dataset, arguments.data_root, offline=arguments.offline,
        teacher_epochs=arguments.teacher_epochs, device=device, progress=arguments.progress)
    transfer = train.subset(arguments.transfer_size) if arguments.transfer_size else train
    spec = student_spec(train.input_shape, arguments.student, train.num_classes)
    print(f"{train.name}: teacher test accuracy {teacher_metadata['accuracy']:.4f}; "
          f"{arguments.student} students on {len(transfer)} labelled examples, T={arguments.temperature}, "
          f"alpha={arguments.alpha}, {arguments.epochs} epochs, {arguments.seeds} seeds")
    results = compare_students(teacher, transfer, test, spec, seeds=range(arguments.seeds),
                               T=arguments.temperature, alpha=arguments.alpha, epochs=arguments.epochs,
                               device=device, progress=arguments.progress)
    print(results_table(results))
    write_json(arguments.json, {
        "dataset": train.name, "device": str(device),
        "settings": {"T": arguments.temperature, "alpha": arguments.alpha, "epochs": arguments.epochs,
                     "student": arguments.student, "transfer_size": len(transfer), "seeds": arguments.seeds},
        "teacher": teacher_metadata,
        "baseline": results["baseline"], "distilled": results["distilled"],
        "runs": [{key: run[key] for key in ("seed", "baseline", "distilled", "baseline_agreement",
                                            "distilled_agreement")} for run in results["runs"]],
        "teacher_parameters": results["teacher_parameters"],
        "student_parameters": results["student_parameters"]})
    return 0


def run_download(arguments, device) -> int:
    download(arguments.name, arguments.data_root)
    print(f"{arguments.name} is in {arguments.data_root}")
    return 0


def results_table(results: dict) -> str:
    lines = [f"{'seed':>6} {'baseline':>9} {'distilled':>10} {'agree(base)':>12} {'agree(dist)':>12}"]
    for run in results["runs"]:
        lines.append(f"{run['seed']:>6} {run['baseline']:>9.4f} {run['distilled']:>10.4f} "
                     f"{run['baseline_agreement']:>12.4f} {run['distilled_agreement']:>12.4f}")
    for name in ("baseline", "distilled"):
        lines.append(f"{name:>9}: {results[name]['mean']:.4f} ± {results[name]['sd']:.4f} (mean ± sd)")
    gain = results["distilled"]["mean"] - results["baseline"]["mean"]
    lines.append(f"distillation {'helped' if gain > 0 else 'did not help'} here: "
                 f"{100 * gain:+.2f} accuracy points on average")
    lines.append(f"parameters: teacher {results['teacher_parameters']:,}, student {results['student_parameters']:,}")
    return "\n".join(lines)


def write_json(path, payload) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2))
        print(f"wrote {path}")


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 0, got {text!r}")
    return value


def temperature(text: str) -> float:
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"the temperature must be a finite number above 0, got {text!r}")
    return value


def unit_interval(text: str) -> float:
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"alpha must lie in [0, 1], got {text!r}")
    return value


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a{'' if kind is int else ' real'} number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kdlab", description="Knowledge distillation, measured.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{teacher,distill,download}")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)} (default: digits, embedded)")
    common.add_argument("--data-root", default="data", help="where datasets and checkpoints live (default: data)")
    common.add_argument("--offline", action="store_true", help="never download; fail clearly if data is missing")
    common.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    common.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    common.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")

    teacher = commands.add_parser("teacher", parents=[common], help="train and save a teacher")
    teacher.add_argument("--epochs", type=positive_int, default=experiment.TEACHER_EPOCHS)
    teacher.add_argument("--seed", type=non_negative_int, default=0)
    teacher.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    teacher.set_defaults(run=run_teacher)

    students = commands.add_parser(
        "distill", parents=[common], help="teacher, baseline and distilled students over several seeds",
        description="Train (or load) the teacher, then for each seed a baseline student on hard labels and a "
                    "distilled student from the same initial weights, on a small labelled transfer set.")
    students.add_argument("--epochs", type=positive_int, default=experiment.STUDENT_EPOCHS, help="student epochs")
    students.add_argument("--teacher-epochs", type=positive_int, default=experiment.TEACHER_EPOCHS)
    students.add_argument("--seeds", type=positive_int, default=5, help="number of seeds (default: 5)")
    students.add_argument("--temperature", "-T", type=temperature, default=experiment.TEMPERATURE)
    students.add_argument("--alpha", type=unit_interval, default=experiment.ALPHA, help="weight of the teacher term")
    students.add_argument("--student", choices=sorted(STUDENT_SIZES["mlp"]), default=experiment.STUDENT_SIZE)
    students.add_argument("--transfer-size", type=non_negative_int, default=experiment.TRANSFER_SIZE,
                          help="labelled examples the students learn from; 0 = the whole training set")
    students.set_defaults(run=run_distill)

    fetch = commands.add_parser("download", help="download a torchvision dataset into --data-root")
    fetch.add_argument("name", choices=[name for name in DATASETS if name != "digits"])
    fetch.add_argument("--data-root", default="data")
    fetch.set_defaults(run=run_download)
    return parser


if __name__ == "__main__":
    sys.exit(main())
