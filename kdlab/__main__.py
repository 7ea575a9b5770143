"""python -m kdlab: train a teacher, run the distillation experiment, download a dataset.

    python -m kdlab distill                 # the default experiment on the embedded digits
    python -m kdlab teacher --dataset mnist --device cuda
    python -m kdlab download mnist          # on a machine with internet
    python -m kdlab distill --dataset pydoc-text            # a character language model, distilled
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from kdlab import distributed, experiment, language
from kdlab.data import DATASETS, DatasetUnavailable, canonical_name, download, load_dataset
from kdlab.experiment import compare_students, load_or_train_teacher
from kdlab.models import STUDENT_SIZES, student_spec
from kdlab.text import DEFAULT_CORPUS, load_corpus
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
    except (DatasetUnavailable, ValueError) as error:  # CheckpointError and CorpusError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return 130


def run_teacher(arguments, device) -> int:
    if arguments.dataset == DEFAULT_CORPUS:
        print(f"error: `teacher` trains image teachers; `distill --dataset {DEFAULT_CORPUS}` trains and caches "
              "the language teacher itself", file=sys.stderr)
        return 2
    train, test = load_dataset(arguments.dataset, arguments.data_root, offline=arguments.offline)
    teacher, metadata = load_or_train_teacher(train, test, root=arguments.data_root, epochs=arguments.epochs,
                                              seed=arguments.seed, device=device,
                                              progress=arguments.progress, retrain=arguments.retrain)
    print(f"teacher on {train.name}: test accuracy {metadata['accuracy']:.4f} "
          f"({metadata['epochs']} epochs, seed {metadata['seed']})")
    write_json(arguments.json, {"dataset": train.name, "teacher": metadata})
    return 0


# Options that belong to one of distill's two experiments: (attribute, default). They default to
# None so that one given to the other experiment is an error rather than silently ignored.
IMAGE_OPTIONS = {"--epochs": ("epochs", experiment.STUDENT_EPOCHS),
                 "--teacher-epochs": ("teacher_epochs", experiment.TEACHER_EPOCHS),
                 "--student": ("student", experiment.STUDENT_SIZE),
                 "--transfer-size": ("transfer_size", experiment.TRANSFER_SIZE)}
TEXT_OPTIONS = {"--steps": ("steps", language.STUDENT_STEPS),
                "--teacher-steps": ("teacher_steps", language.TEACHER_STEPS)}


def run_distill(arguments, device) -> int:
    text_run = arguments.dataset == DEFAULT_CORPUS or arguments.text
    if arguments.text and arguments.dataset not in ("digits", DEFAULT_CORPUS):
        print(f"error: --text FILE trains a language model; it cannot be combined with --dataset {arguments.dataset}",
              file=sys.stderr)
        return 2
    own, other = (TEXT_OPTIONS, IMAGE_OPTIONS) if text_run else (IMAGE_OPTIONS, TEXT_OPTIONS)
    misplaced = [flag for flag, (name, _) in other.items() if getattr(arguments, name) is not None]
    if misplaced:
        kind = "image datasets" if text_run else f"--dataset {DEFAULT_CORPUS} or --text"
        print(f"error: {', '.join(misplaced)} only apply to {kind}", file=sys.stderr)
        return 2
    for name, default in own.values():
        if getattr(arguments, name) is None:
            setattr(arguments, name, default)
    defaults = language if text_run else experiment  # T and alpha suit each experiment
    arguments.temperature = defaults.TEMPERATURE if arguments.temperature is None else arguments.temperature
    arguments.alpha = defaults.ALPHA if arguments.alpha is None else arguments.alpha
    if text_run:
        return run_language_distill(arguments, device)
    train, test = load_dataset(arguments.dataset, arguments.data_root, offline=arguments.offline)
    if arguments.transfer_size > len(train):
        print(f"error: --transfer-size {arguments.transfer_size} is more than the {len(train)} training examples "
              f"of {train.name}; use at most {len(train)}, or 0 for all of them", file=sys.stderr)
        return 2
    transfer = train.subset(arguments.transfer_size) if arguments.transfer_size else train
    teacher, teacher_metadata = load_or_train_teacher(train, test, root=arguments.data_root,
                                                      epochs=arguments.teacher_epochs, device=device,
                                                      progress=arguments.progress)
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


def run_language_distill(arguments, device) -> int:
    corpus = load_corpus(arguments.text)
    teacher_spec, student_spec = language.language_specs(corpus)
    teacher, metadata = language.load_or_train_language_teacher(
        corpus, root=arguments.data_root, spec=teacher_spec, steps=arguments.teacher_steps, device=device,
        progress=arguments.progress)
    print(f"{corpus.name}: {len(corpus.train):,} training and {len(corpus.validation):,} validation characters, "
          f"{corpus.vocab_size} symbols; students trained {arguments.steps} steps, T={arguments.temperature}, "
          f"alpha={arguments.alpha}, {arguments.seeds} seeds")
    results = language.compare_language_students(
        teacher, corpus, student_spec, seeds=range(arguments.seeds), steps=arguments.steps,
        T=arguments.temperature, alpha=arguments.alpha, device=device, progress=arguments.progress)
    scores = {"teacher": {"validation_loss": results["teacher"], "sd": 0.0}}
    for name in ("baseline", "distilled"):
        scores[name] = {"validation_loss": results[name]["mean"], "sd": results[name]["sd"]}
    for name, score in scores.items():
        score["bits_per_character"] = language.bits_per_character(score["validation_loss"])
        print(f"{name:>9}: {score['validation_loss']:.4f} ± {score['sd']:.4f} nats/char "
              f"({score['bits_per_character']:.3f} bits/char)")
    print(f"parameters: teacher {results['teacher_parameters']:,}, student {results['student_parameters']:,}")
    write_json(arguments.json, {
        "dataset": corpus.name, "device": str(device),
        "settings": {"T": arguments.temperature, "alpha": arguments.alpha, "steps": arguments.steps,
                     "teacher_steps": arguments.teacher_steps, "seeds": arguments.seeds,
                     "teacher_spec": teacher_spec, "student_spec": student_spec},
        **scores,
        "runs": [{key: run[key] for key in ("seed", "baseline", "distilled")} for run in results["runs"]],
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
    if path and distributed.world()[0] == 0:
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


def dataset_name(text: str) -> str:
    if text == DEFAULT_CORPUS:
        return text
    try:
        return canonical_name(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; choose one of "
                                         f"{', '.join((*DATASETS, DEFAULT_CORPUS))}") from None


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a{'' if kind is int else ' real'} number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kdlab", description="Knowledge distillation, measured.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{teacher,distill,download}")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dataset", type=dataset_name, default="digits", help=f"one of {', '.join(DATASETS)} (default: digits, embedded); "
                        f"distill also takes {DEFAULT_CORPUS}, Python's own help text, for a character language model")
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
    students.add_argument("--seeds", type=positive_int, default=5, help="number of seeds (default: 5)")
    students.add_argument("--temperature", "-T", type=temperature,
                          help=f"default: {experiment.TEMPERATURE} (images), {language.TEMPERATURE} (text)")
    students.add_argument("--alpha", type=unit_interval, help=f"weight of the teacher term; default: "
                          f"{experiment.ALPHA} (images), {language.ALPHA} (text)")
    images = students.add_argument_group("image datasets")
    images.add_argument("--epochs", type=positive_int, help=f"student epochs (default: {experiment.STUDENT_EPOCHS})")
    images.add_argument("--teacher-epochs", type=positive_int, help=f"default: {experiment.TEACHER_EPOCHS}")
    images.add_argument("--student", choices=sorted(STUDENT_SIZES["mlp"]), help=f"default: {experiment.STUDENT_SIZE}")
    images.add_argument("--transfer-size", type=non_negative_int,
                        help="labelled examples the students learn from; 0 = the whole training set "
                             f"(default: {experiment.TRANSFER_SIZE})")
    text = students.add_argument_group(f"language models (--dataset {DEFAULT_CORPUS} or --text FILE)")
    text.add_argument("--text", metavar="FILE", help="a UTF-8 text file to use instead of Python's help text")
    text.add_argument("--steps", type=positive_int, help=f"student training steps (default: {language.STUDENT_STEPS})")
    text.add_argument("--teacher-steps", type=positive_int, help=f"default: {language.TEACHER_STEPS}")
    students.set_defaults(run=run_distill)

    fetch = commands.add_parser("download", help="download a torchvision dataset into --data-root")
    fetch.add_argument("name", choices=[name for name in DATASETS if name != "digits"])
    fetch.add_argument("--data-root", default="data")
    fetch.set_defaults(run=run_download)
    return parser


if __name__ == "__main__":
    sys.exit(main())
