"""python -m kdlab: train a teacher, run the distillation experiment, download a dataset.

    python -m kdlab distill                 # the default experiment on the embedded digits
    python -m kdlab teacher --dataset mnist --device cuda
    python -m kdlab download mnist          # on a machine with internet
    python -m kdlab distill --dataset pydoc-text            # a character language model, distilled
    python -m kdlab distill --method dkd    # decoupled KD against KD (notebook 11)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading
from pathlib import Path

from kdlab import distributed, experiment, language, language_sources
from kdlab.checkpoints import (
    check_writable_folder,
    collect_unsaved,
    is_cache_file,
    is_checkpoint,
    report_unsaved,
    write_text_atomically,
)
from kdlab.data import DATASETS, DatasetUnavailable, canonical_name, download, load_dataset
from kdlab.device import pick_device
from kdlab.experiment import DKD_STUDENTS, compare_dkd_with_kd, compare_students, load_or_train_teacher
from kdlab.interrupt import TrainingInterrupted
from kdlab.losses import check_alpha, check_temperature
from kdlab.models import STUDENT_SIZES, student_spec
from kdlab.text import DEFAULT_CORPUS, load_corpus
from kdlab.train import METHODS

__all__ = ["main"]


def main(argv=None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        device = pick_device(arguments.device) if hasattr(arguments, "device") else None
    except ValueError as error:
        parser.error(str(error))
    try:
        check_outputs(arguments)
    except ValueError as error:
        parser.error(str(error))
    with stop_signals() as received, collect_unsaved() as unsaved:
        code = run(arguments, device, received)
        if unsaved and code == 0:
            print(f"error: results were printed but not all saved: {'; '.join(unsaved)}", file=sys.stderr)
            return 1
        return code


def run(arguments, device, received: list) -> int:
    """The command's exit status: 1 for an error, 128 + the signal's number (130 for Ctrl-C, 143 for
    SIGTERM) for an interruption, whose message says what had finished."""
    try:
        return arguments.run(arguments, device)
    except (DatasetUnavailable, ValueError) as error:  # CheckpointError and CorpusError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:  # TrainingInterrupted is one
        number = received[0] if received else signal.SIGINT
        how = "Interrupted" if number == signal.SIGINT else f"Stopped by {signal.Signals(number).name}"
        if isinstance(stop, TrainingInterrupted):
            print(f"{how}: {stop.message}.", file=sys.stderr)
        else:
            print(f"{how} before anything finished; nothing was written.", file=sys.stderr)
        return 128 + number


@contextlib.contextmanager
def stop_signals():
    """SIGINT (Ctrl-C) and SIGTERM (`timeout`, Slurm, `docker stop`) while the block runs: the first raises
    KeyboardInterrupt, which training loops turn into TrainingInterrupted, and its number goes into the list
    this yields; later ones are ignored, so that the shutdown (the table, the --json) ends without a
    traceback. A signal this process was started ignoring stays ignored; the old handlers come back after."""
    received: list[int] = []

    def stop(number, frame):
        if not received:
            received.append(number)
            raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():  # only there can Python handle signals
        for number in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(number) not in (signal.SIG_IGN, None):
                previous[number] = signal.signal(number, stop)
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def check_outputs(arguments) -> None:
    """Refuse, before any work, outputs that could only fail after it or destroy what is not theirs:
    an empty --data-root, or one that is a file or unwritable, and a --json that _check_json_target refuses.
    Commands that read no data (website, student-notebooks) have no --data-root to check."""
    if not hasattr(arguments, "data_root"):
        return
    if not arguments.data_root.strip():
        raise ValueError("--data-root needs a folder name, got an empty one (. is the current folder)")
    data_root = Path(arguments.data_root)
    if data_root.exists() and not data_root.is_dir():
        raise ValueError(f"--data-root {data_root} is a file; give a folder for datasets and checkpoints")
    check_writable_folder(data_root, "--data-root")
    if getattr(arguments, "json", None) is not None:
        _check_json_target(arguments.json, data_root)


def _check_json_target(name: str, data_root: Path) -> None:
    """--json gets a new regular file or replaces one that is not kdlab's own: never a folder, a device,
    a FIFO or a socket, a symbolic link (the atomic rename would replace the link, not the file it
    points to), a checkpoint, or a cache file in the data root."""
    if not name.strip():
        raise ValueError("--json needs a file name, got an empty one")
    target = Path(name)
    if target.is_symlink():
        raise ValueError(f"--json {target} is a symbolic link; results are renamed into place, which would replace "
                         f"the link, not the file it points to. Give that file's own path ({target.resolve()})")
    if target.is_dir():
        raise ValueError(f"--json {target} is a folder; give a file name such as {target / 'results.json'}")
    if target.exists() and not target.is_file():
        raise ValueError(f"--json {target} is not a regular file (a device, a FIFO or a socket); "
                         "results are written only to regular files")
    if is_checkpoint(target) or is_cache_file(target, data_root):
        raise ValueError(f"--json {target} is a file kdlab manages (a checkpoint, or a cache in {data_root}); "
                         "writing JSON over it would destroy it. Choose another file name")
    check_writable_folder(target.parent, "--json")


def run_teacher(arguments, device) -> int:
    if arguments.dataset == DEFAULT_CORPUS:
        print(f"error: `teacher` trains image teachers; `distill --dataset {DEFAULT_CORPUS}` trains and caches "
              "the language teacher itself", file=sys.stderr)
        return 2
    train, test = load_dataset(arguments.dataset, arguments.data_root, offline=arguments.offline)
    try:
        split = experiment.split_dataset(train, test, validation=arguments.validation)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    train = split.pool
    try:
        teacher, metadata = load_or_train_teacher(split, root=arguments.data_root, epochs=arguments.epochs,
                                                  seed=arguments.seed, device=device,
                                                  progress=arguments.progress, retrain=arguments.retrain)
    except TrainingInterrupted as stop:
        write_json(arguments.json, {"dataset": train.name, "interrupted": stop.message,
                                    "teacher": {"epochs_done": stop.history.epochs, "epochs": arguments.epochs}})
        raise
    print(f"teacher on {train.name} ({len(split.pool)} training images; {len(split.validation)} held out): "
          f"validation accuracy {metadata['validation_accuracy']:.4f}, test accuracy {metadata['accuracy']:.4f} "
          f"({metadata['epochs']} epochs, seed {metadata['seed']})")
    write_json(arguments.json, {"dataset": train.name, "teacher": metadata})
    return 0


# Options that belong to one of distill's two experiments: flag -> attribute. They default to None so
# that one given to the other experiment is an error rather than silently ignored, and so that the
# experiment's own defaults (experiment.SETTINGS, experiment.LANGUAGE_SETTING) fill what was not given.
IMAGE_OPTIONS = {"--epochs": "epochs", "--teacher-epochs": "teacher_epochs", "--student": "student",
                 "--transfer-size": "transfer_size", "--validation": "validation", "--score-on": "score_on"}
TEXT_OPTIONS = {"--steps": "steps", "--teacher-steps": "teacher_steps", "--divergence": "divergence"}
DKD_OPTIONS = {"--nckd-weight": "nckd_weight", "--tckd-weight": "tckd_weight"}  # --method dkd's own


def run_distill(arguments, device) -> int:
    text_run = arguments.dataset == DEFAULT_CORPUS or arguments.text
    if arguments.text and arguments.dataset not in ("digits", DEFAULT_CORPUS):
        print(f"error: --text FILE trains a language model; it cannot be combined with --dataset {arguments.dataset}",
              file=sys.stderr)
        return 2
    if text_run and arguments.method != "kd":
        print(f"error: --method {arguments.method} distills image classifiers; the language model is distilled "
              "with kd_loss only (leave out --method, or choose an image --dataset)", file=sys.stderr)
        return 2
    weights = [flag for flag, name in DKD_OPTIONS.items() if getattr(arguments, name) is not None]
    if weights and arguments.method != "dkd":
        print(f"error: {', '.join(weights)} {'applies' if len(weights) == 1 else 'apply'} only to --method dkd "
              "(DKD's weights on its two parts)", file=sys.stderr)
        return 2
    own, other = (TEXT_OPTIONS, IMAGE_OPTIONS) if text_run else (IMAGE_OPTIONS, TEXT_OPTIONS)
    misplaced = [flag for flag, name in other.items() if getattr(arguments, name) is not None]
    if misplaced:
        kind = "image datasets" if text_run else f"--dataset {DEFAULT_CORPUS} or --text"
        print(f"error: {', '.join(misplaced)} only apply to {kind}", file=sys.stderr)
        return 2
    given = {name: getattr(arguments, name) for name in (*own.values(), "T", "alpha") if name != "score_on"}
    if text_run:
        return run_language_distill(arguments, device, **given)
    return run_image_distill(arguments, device, **given, nckd_weight=arguments.nckd_weight)


def run_image_distill(arguments, device, **given) -> int:
    train, test = load_dataset(arguments.dataset, arguments.data_root, offline=arguments.offline)
    setting = experiment.setting_for(train.name, **given)
    score_on = arguments.score_on or "test"
    try:
        split = experiment.split_dataset(train, test, validation=setting.validation)
        if setting.transfer_size > len(split.pool):
            raise ValueError(f"--transfer-size {setting.transfer_size} is more than the {len(split.pool)} training "
                             f"examples left after {len(split.validation)} are held out for validation; use at most "
                             f"{len(split.pool)}, or 0 for all of them")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    scored_on = split.validation if score_on == "validation" else split.test
    try:
        teacher, teacher_metadata = load_or_train_teacher(split, root=arguments.data_root,
                                                          epochs=setting.teacher_epochs, device=device,
                                                          progress=arguments.progress)
    except TrainingInterrupted as stop:
        write_json(arguments.json, {"dataset": train.name, "interrupted": stop.message, "runs": []})
        raise
    spec = student_spec(train.input_shape, setting.student, train.num_classes)
    labelled = (f"{setting.transfer_size} labelled examples drawn per seed" if setting.transfer_size
                else f"all {len(split.pool)} pool examples")
    dkd = arguments.method == "dkd"
    tckd_weight = 1.0 if arguments.tckd_weight is None else arguments.tckd_weight
    loss = (f"KD and DKD (tckd_weight={tckd_weight}, nckd_weight={setting.nckd_weight}) at " if dkd else "")
    print(f"{train.name}: teacher trained on {len(split.pool)} of {len(train)} training images, validation accuracy "
          f"{teacher_metadata['validation_accuracy']:.4f}, test accuracy {teacher_metadata['accuracy']:.4f}; "
          f"{setting.student} students on {labelled}, {loss}T={setting.T}, alpha={setting.alpha}, {setting.epochs} "
          f"epochs, {arguments.seeds} seeds; scored on the {len(scored_on)} {score_on} images")
    settings = {name: getattr(setting, name) for name in ("epochs", "teacher_epochs", "student", "transfer_size",
                                                          "T", "alpha", "validation")}
    settings |= {"seeds": arguments.seeds, "scored_on": score_on, "pool": len(split.pool), "method": arguments.method}
    if dkd:
        settings |= {"tckd_weight": tckd_weight, "nckd_weight": setting.nckd_weight}
    header = {"dataset": train.name, "device": str(device), "settings": settings, "teacher": teacher_metadata}
    common = {"transfer_size": setting.transfer_size or None, "seeds": range(arguments.seeds), "T": setting.T,
              "alpha": setting.alpha, "epochs": setting.epochs, "device": device, "progress": arguments.progress,
              "scored_on": f"{score_on} images"}
    table, as_json = (dkd_results_table, dkd_results_json) if dkd else (results_table, image_results_json)
    try:
        if dkd:
            results = compare_dkd_with_kd(teacher, split.pool, scored_on, spec, nckd_weight=setting.nckd_weight,
                                          tckd_weight=tckd_weight, **common)
        else:
            results = compare_students(teacher, split.pool, scored_on, spec, **common)
    except TrainingInterrupted as stop:
        if stop.partial:
            print(table(stop.partial))
        write_json(arguments.json, {**header, "interrupted": stop.message,
                                    **(as_json(stop.partial) if stop.partial else {"runs": []})})
        raise
    print(table(results))
    write_json(arguments.json, {**header, **as_json(results)})
    return 0


def image_results_json(results: dict) -> dict:
    gain = results["gain"]
    return {"baseline": results["baseline"], "distilled": results["distilled"],
            "compared": "distilled - baseline", "gain": _gain_json(gain),
            "verdict": results["verdict"],
            "baseline_loss": results["baseline_loss"], "distilled_loss": results["distilled_loss"],
            "runs": [{key: run[key] for key in ("seed", "transfer_size", "baseline", "distilled", "baseline_loss",
                                                "distilled_loss", "baseline_agreement", "distilled_agreement")}
                     for run in results["runs"]],
            "teacher_parameters": results["teacher_parameters"],
            "student_parameters": results["student_parameters"]}


def dkd_results_json(results: dict) -> dict:
    """compare_dkd_with_kd's results: "compared" names the headline's pair ("dkd - kd"), whose "gain" and "verdict"
    these are; "kd_gain" and "dkd_gain" are each against the baseline."""
    per_student = ("", "_loss", "_agreement")
    return {**{name: results[name] for name in DKD_STUDENTS},
            "compared": results["compared"], "gain": _gain_json(results["gain"]), "verdict": results["verdict"],
            "kd_gain": _gain_json(results["kd_gain"]), "dkd_gain": _gain_json(results["dkd_gain"]),
            **{f"{name}_loss": results[f"{name}_loss"] for name in DKD_STUDENTS},
            "runs": [{"seed": run["seed"], "transfer_size": run["transfer_size"],
                      **{f"{name}{part}": run[f"{name}{part}"] for name in DKD_STUDENTS for part in per_student}}
                     for run in results["runs"]],
            "tckd_weight": results["tckd_weight"], "nckd_weight": results["nckd_weight"],
            "teacher_parameters": results["teacher_parameters"], "student_parameters": results["student_parameters"]}


def _gain_json(gain) -> dict | None:
    """The gain's numbers and what its interval covers ("seeds", or "seeds and test images")."""
    keys = ("mean", "ci_low", "ci_high", "sd", "n", "covers", "examples", "se_seeds", "se_examples")
    return {key: gain[key] for key in keys if key in gain} if gain else None


def run_language_distill(arguments, device, *, divergence=None, **given) -> int:
    if divergence == "reverse" and (given["T"] is not None or given["alpha"] is not None):
        print("error: --divergence reverse compares forward and reverse KL at T = 1, alpha = 1 (notebook 12); "
              "leave out --temperature and --alpha", file=sys.stderr)
        return 2
    setting = experiment.language_setting(**given)
    corpus = load_corpus(arguments.text)
    teacher_spec, student_spec = language.language_specs(corpus)
    teacher, metadata = experiment.load_or_train_language_teacher(
        corpus, root=arguments.data_root, spec=teacher_spec, steps=setting.teacher_steps, device=device,
        progress=arguments.progress)
    print(f"{corpus.name}: {len(corpus.train):,} training and {len(corpus.validation):,} validation characters, "
          f"{corpus.vocab_size} symbols; {arguments.seeds} seeds" + (
              "" if divergence == "reverse" else f", students trained {setting.steps} steps, T={setting.T}, "
                                                 f"alpha={setting.alpha}"))
    header = {"dataset": corpus.name, "device": str(device),
              "settings": {**dataclasses.asdict(setting), "seeds": arguments.seeds, "teacher_spec": teacher_spec,
                           "student_spec": student_spec}}
    if divergence == "reverse":
        return run_divergences(arguments, device, teacher, corpus, student_spec, header, given["steps"])
    try:
        results = experiment.compare_language_students(
            teacher, corpus, student_spec, seeds=range(arguments.seeds), steps=setting.steps,
            T=setting.T, alpha=setting.alpha, device=device, progress=arguments.progress)
    except TrainingInterrupted as stop:
        write_json(arguments.json, {**header, "interrupted": stop.message,
                                    **(language_results_json(stop.partial) if stop.partial else {"runs": []})})
        raise
    write_json(arguments.json, {**header, **language_results_json(results, echo=True)})
    return 0


def run_divergences(arguments, device, teacher, corpus, student_spec, header, steps) -> int:
    """Notebook 12's headline: students distilled by forward and by reverse KL, paired over seeds."""
    steps = steps or language_sources.STEPS
    header = {**header, "settings": {**header["settings"], "divergence": "reverse", "T": 1.0, "alpha": 1.0,
                                     "steps": steps, "warmup_steps": language_sources.WARMUP_STEPS}}
    print(f"forward against reverse KL: {language_sources.WARMUP_STEPS} shared steps on labels, then {steps} "
          "distilling steps each, T = 1, alpha = 1")
    try:
        results = language_sources.compare_divergences(teacher, corpus, student_spec, divergence="reverse",
                                                       seeds=range(arguments.seeds), steps=steps, device=device,
                                                       progress=arguments.progress)
    except TrainingInterrupted as stop:
        write_json(arguments.json, {**header, "interrupted": stop.message,
                                    **(divergence_results_json(stop.partial) if stop.partial else {"runs": []})})
        raise
    write_json(arguments.json, {**header, **divergence_results_json(results, echo=True)})
    return 0


def divergence_results_json(results: dict, *, echo: bool = False) -> dict:
    """Validation losses of the forward- and reverse-KL students; the gain is forward - reverse."""
    scores = {"teacher": {"validation_loss": results["teacher"], "sd": 0.0}}
    scores |= {name: {"validation_loss": results[name]["mean"], "sd": results[name]["sd"]}
               for name in ("forward", "reverse")}
    gain = results["gain"]
    if echo:
        for name, score in scores.items():
            print(f"{name:>9}: {score['validation_loss']:.4f} ± {score['sd']:.4f} nats/char")
        print(f"forward - reverse, paired: {gain.describe(unit_scale=1, unit='nats/char', decimals=3)}" if gain
              else ONE_SEED)
    return {**scores, "compared": "forward - reverse", "gain": _gain_json(gain), "verdict": results["verdict"],
            "runs": [{key: run[key] for key in ("seed", "forward", "reverse")} for run in results["runs"]]}


def language_results_json(results: dict, *, echo: bool = False) -> dict:
    """Validation losses (nats and bits per character) of teacher and students; printed too with `echo`."""
    scores = {"teacher": {"validation_loss": results["teacher"], "sd": 0.0}}
    for name in ("baseline", "distilled"):
        scores[name] = {"validation_loss": results[name]["mean"], "sd": results[name]["sd"]}
    for name, score in scores.items():
        score["bits_per_character"] = language.bits_per_character(score["validation_loss"])
        if echo:
            print(f"{name:>9}: {score['validation_loss']:.4f} ± {score['sd']:.4f} nats/char "
                  f"({score['bits_per_character']:.3f} bits/char)")
    gain = results["gain"]
    if echo:
        print(f"baseline - distilled, paired: {gain.describe(unit_scale=1, unit='nats/char', decimals=3)}" if gain
              else ONE_SEED)
        print(f"parameters: teacher {results['teacher_parameters']:,}, student {results['student_parameters']:,}")
    return {**scores, "gain": _gain_json(gain), "verdict": results["verdict"],
            "runs": [{key: run[key] for key in ("seed", "baseline", "distilled")} for run in results["runs"]],
            "teacher_parameters": results["teacher_parameters"], "student_parameters": results["student_parameters"]}


def run_download(arguments, device) -> int:
    download(arguments.name, arguments.data_root)
    print(f"{arguments.name} is in {arguments.data_root}")
    return 0


def run_explorer_html(arguments, device) -> int:
    from kdlab import explorer_html  # the widget stack is loaded for this command only

    return explorer_html.run(arguments, device)


def run_website(arguments, device) -> int:
    from kdlab import website  # nbconvert is loaded for this command only

    written = website.build(arguments.out_dir, arguments.notebooks)
    print(f"wrote the course's {len(written)} files into {arguments.out_dir}; open {written[0]}")
    return 0


def run_student_notebooks(arguments, device) -> int:
    from kdlab import student_notebooks  # nbconvert is loaded for this command only

    written = student_notebooks.write_student_notebooks(arguments.out_dir,
                                                        arguments.notebooks or student_notebooks.NOTEBOOKS)
    print(f"wrote the learner's copies of {len(written)} notebooks into {arguments.out_dir}: reference solutions "
          "removed, exercise outputs cleared")
    return 0


def run_slides(arguments, device) -> int:
    from kdlab import slides  # nbconvert is loaded for this command only

    decks = slides.write_decks(arguments.out_dir, arguments.notebooks or slides.NOTEBOOKS)
    print(f"wrote {len(decks)} slide deck{'s' * (len(decks) > 1)} into {arguments.out_dir}; open {decks[0]} in a "
          "browser (S: speaker notes)")
    return 0


def results_table(results: dict) -> str:
    lines = [f"{'seed':>6} {'baseline':>9} {'distilled':>10} {'gain':>8} {'agree(base)':>12} {'agree(dist)':>12}"]
    for run in results["runs"]:
        lines.append(f"{run['seed']:>6} {run['baseline']:>9.4f} {run['distilled']:>10.4f} "
                     f"{100 * (run['distilled'] - run['baseline']):>+8.2f} "
                     f"{run['baseline_agreement']:>12.4f} {run['distilled_agreement']:>12.4f}")
    for name in ("baseline", "distilled"):
        summary = results[name]
        interval = f", 95 % CI {summary['ci_low']:.4f} to {summary['ci_high']:.4f}" if "ci_low" in summary else ""
        lines.append(f"{name:>9}: {summary['mean']:.4f} ± {summary['sd']:.4f} (mean ± sd{interval})")
    gain = results["gain"]
    lines.append(f"distilled - baseline, paired: {gain.describe()}" if gain else ONE_SEED)
    lines.append(f"parameters: teacher {results['teacher_parameters']:,}, student {results['student_parameters']:,}")
    return "\n".join(lines)


def dkd_results_table(results: dict) -> str:
    lines = [f"{'seed':>6} {'baseline':>9} {'kd':>8} {'dkd':>8} {'dkd-kd':>8}"]
    for run in results["runs"]:
        lines.append(f"{run['seed']:>6} {run['baseline']:>9.4f} {run['kd']:>8.4f} {run['dkd']:>8.4f} "
                     f"{100 * (run['dkd'] - run['kd']):>+8.2f}")
    for name in DKD_STUDENTS:
        summary = results[name]
        interval = f", 95 % CI {summary['ci_low']:.4f} to {summary['ci_high']:.4f}" if "ci_low" in summary else ""
        lines.append(f"{name:>9}: {summary['mean']:.4f} ± {summary['sd']:.4f} (mean ± sd{interval})")
    for label, key in (("dkd - kd", "gain"), ("kd - baseline", "kd_gain"), ("dkd - baseline", "dkd_gain")):
        lines.append(f"{label}, paired: {results[key].describe()}" if results[key] else f"{label}: {ONE_SEED}")
    lines.append(f"parameters: teacher {results['teacher_parameters']:,}, student {results['student_parameters']:,}")
    return "\n".join(lines)


def write_json(path, payload) -> None:
    """Write `payload` to --json `path`; a failure (a full disk) is one line, and main's exit status says it."""
    if path and distributed.is_main_process():
        try:
            write_text_atomically(path, json.dumps(payload, indent=2))
        except OSError as error:
            report_unsaved(path, error, "the results", kept_in_memory=False)
            return
        print(f"wrote {path}")


ONE_SEED = "one seed: no interval, so no verdict; run --seeds 5 or more"
MAX_SEED = 2**31 - 1  # students of seed s use s + k; torch takes seeds below 2**64


def _option(kind, check):
    """An argparse type: the text as a `kind` number, then `check(value)`, the library's own check where
    there is one; its ValueError, in its own words, becomes the usage error (exit 2)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole' if kind is int else 'real'} number, "
                                             f"got {text!r}") from None
        try:
            check(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return value
    return parse


def _at_least(minimum: int):
    def check(value: int) -> None:
        if value < minimum:
            raise ValueError(f"must be a whole number of at least {minimum}, got {value}")
    return check


def _check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"the seed must be a whole number from 0 to {MAX_SEED}, got {seed}")


positive_int = _option(int, _at_least(1))
non_negative_int = _option(int, _at_least(0))
seed_number = _option(int, _check_seed)
temperature = _option(float, check_temperature)
unit_interval = _option(float, check_alpha)


def _check_weight(weight: float) -> None:
    if not 0 <= weight < float("inf"):
        raise ValueError(f"must be a finite number >= 0, got {weight}")


loss_weight = _option(float, _check_weight)


def dataset_name(text: str) -> str:
    if text == DEFAULT_CORPUS:
        return text
    try:
        return canonical_name(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; choose one of "
                                         f"{', '.join((*DATASETS, DEFAULT_CORPUS))}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kdlab", description="Knowledge distillation, measured.")
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="{teacher,distill,download,explorer-html,slides,website,student-notebooks}")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dataset", type=dataset_name, default="digits",
                        help=f"one of {', '.join(DATASETS)} (default: digits, embedded); "
                        f"distill also takes {DEFAULT_CORPUS}, Python's own help text, for a character language model")
    common.add_argument("--data-root", default="data", help="where datasets and checkpoints live (default: data)")
    common.add_argument("--offline", action="store_true", help="never download; fail clearly if data is missing")
    common.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    common.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    common.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")

    teacher = commands.add_parser("teacher", parents=[common], help="train and save a teacher")
    teacher.add_argument("--epochs", type=positive_int, help="default: the dataset's (digits: "
                         f"{experiment.TEACHER_EPOCHS})")
    teacher.add_argument("--seed", type=seed_number, default=0, help=f"0 to {MAX_SEED}")
    teacher.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    teacher.add_argument("--validation", type=positive_int, metavar="N",
                         help="training examples held out, as `distill --validation N` holds them out (digits: "
                              f"{experiment.SETTINGS['digits'].validation})")
    teacher.set_defaults(run=run_teacher)

    students = commands.add_parser(
        "distill", parents=[common], help="teacher, baseline and distilled students over several seeds",
        description="Train (or load) the teacher, then for each seed a baseline student on hard labels and a "
                    "distilled student from the same initial weights, on a small labelled transfer set.")
    students.add_argument("--seeds", type=positive_int, default=5, help="number of seeds (default: 5)")
    students.add_argument("--temperature", "-T", dest="T", type=temperature,
                          help=f"default: {experiment.TEMPERATURE} (images), {language.TEMPERATURE} (text)")
    students.add_argument("--alpha", type=unit_interval, help=f"weight of the teacher term; default: "
                          f"{experiment.ALPHA} (images), {language.ALPHA} (text)")
    students.add_argument("--method", choices=METHODS, default="kd",
                          help="kd (default): baseline against a student distilled with kd_loss; dkd: a student "
                               "distilled with decoupled_kd_loss against the kd one (and both against the baseline), "
                               "at the same T and alpha (images only; notebook 11)")
    students.add_argument("--nckd-weight", type=loss_weight, metavar="BETA",
                          help="--method dkd: the weight on NCKD, DKD's beta (default: the dataset's, chosen on "
                               f"validation by notebook 11; digits: {experiment.NCKD_WEIGHT})")
    students.add_argument("--tckd-weight", type=loss_weight, metavar="WEIGHT",
                          help="--method dkd: the weight on TCKD, DKD's alpha (default: 1)")
    images = students.add_argument_group("image datasets (defaults per dataset: README, 'The default experiment')")
    images.add_argument("--epochs", type=positive_int, help=f"student epochs (digits: {experiment.STUDENT_EPOCHS})")
    images.add_argument("--teacher-epochs", type=positive_int, help=f"digits: {experiment.TEACHER_EPOCHS}")
    images.add_argument("--student", choices=sorted(STUDENT_SIZES["mlp"]), help=f"digits: {experiment.STUDENT_SIZE}")
    images.add_argument("--transfer-size", type=non_negative_int,
                        help="labelled examples each seed draws for its students; 0 = the whole training set "
                             f"(digits: {experiment.TRANSFER_SIZE})")
    images.add_argument("--validation", type=positive_int, metavar="N",
                        help="training examples held out for choosing, which no teacher or student trains on "
                             f"(digits: {experiment.SETTINGS['digits'].validation})")
    images.add_argument("--score-on", choices=("test", "validation"),
                        help="score the students on the test set (default: the result to report) or on the "
                             "held-out validation examples (the way to choose settings without looking at the test "
                             "set)")
    text = students.add_argument_group(f"language models (--dataset {DEFAULT_CORPUS} or --text FILE)")
    text.add_argument("--text", metavar="FILE", help="a UTF-8 text file to use instead of Python's help text")
    text.add_argument("--steps", type=positive_int, help=f"student training steps (default: {language.STUDENT_STEPS})")
    text.add_argument("--teacher-steps", type=positive_int, help=f"default: {language.TEACHER_STEPS}")
    text.add_argument("--divergence", choices=("forward", "reverse"),
                      help="forward (default): labels against kd_loss; reverse: forward against reverse KL, "
                           "paired (notebook 12)")
    students.set_defaults(run=run_distill)

    fetch = commands.add_parser("download", help="download a torchvision dataset into --data-root")
    fetch.add_argument("name", choices=[name for name in DATASETS if name != "digits"])
    fetch.add_argument("--data-root", default="data")
    fetch.set_defaults(run=run_download)

    site = commands.add_parser("website", help="build the course as a static website (offline, from the "
                               "notebooks' saved outputs)")
    site.add_argument("out_dir", metavar="OUT_DIR", help="a new or empty folder, or one this command built before")
    site.add_argument("--notebooks", metavar="DIR", help="the folder of the numbered notebooks (default: the "
                      "repository's notebooks/)")
    site.set_defaults(run=run_website)

    page = commands.add_parser("explorer-html", help="write the explorer as one self-contained HTML file")
    page.add_argument("output", metavar="OUT.html", help="the file to write")
    page.add_argument("--dataset", type=dataset_name, default="digits", help="default: digits")
    page.add_argument("--data-root", default="data", help="where the teacher and the grid are cached (default: data)")
    page.add_argument("--offline", action="store_true", help="never download; fail clearly if data is missing")
    page.add_argument("--device", default="auto", help="where a missing teacher or grid is trained")
    page.add_argument("--examples", type=positive_int, default=500, metavar="N",
                      help="the first N test images are shown (default: 500)")
    page.set_defaults(run=run_explorer_html)

    learners = commands.add_parser("student-notebooks", help="write the learner's copies of the notebooks: "
                                   "reference solutions removed, exercise outputs cleared")
    learners.add_argument("out_dir", metavar="OUT_DIR", help="a new or empty folder, or one this command wrote before")
    learners.add_argument("--notebooks", metavar="DIR", help="the folder of the numbered notebooks (default: the "
                          "repository's notebooks/)")
    learners.set_defaults(run=run_student_notebooks)

    decks = commands.add_parser("slides", help="write a reveal.js deck of each notebook, from its saved outputs, "
                                "that opens offline (live: voila --template=reveal notebooks/NN_name.ipynb)")
    decks.add_argument("out_dir", metavar="OUT_DIR", help="a new or empty folder, or one this command wrote before")
    decks.add_argument("--notebooks", metavar="DIR", help="the folder of the numbered notebooks (default: the "
                       "repository's notebooks/)")
    decks.set_defaults(run=run_slides)
    return parser


if __name__ == "__main__":
    status = main()
    if status > 128:  # stopped by a signal: one more while Python shuts down must not print a traceback
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
    sys.exit(status)
