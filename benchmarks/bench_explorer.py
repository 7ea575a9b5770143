"""How responsive the explorer is: one slider move, and one "Train now" (a benchmark, not a test).

    python benchmarks/bench_explorer.py [--data-root data] [--moves 100] [--trainings 3]

Prints medians against the targets for 2 CPU cores: a slider move's panel data <= 30 ms, Train now
<= 3 s. A move changes one control, as a drag does: the T slider, the alpha slider and the
example picker are timed separately through the widgets (data plus moving the artists; an
example move also redraws the picture and rescales the gradient panel), and a T move again with
the four panels rendered to pixels, which the browser asks for after each move.
"""

import argparse
import statistics
import time

import numpy as np
import torch

from kdlab.widgets import ALPHA_RANGE, T_RANGE, Explorer, all_panels, load_explorer_data

UPDATE_TARGET_S = 0.030
TRAIN_TARGET_S = 3.0
PANELS = ("soft_targets", "loss", "gradients", "grid")


def median_seconds(action, arguments) -> float:
    times = []
    for argument in arguments:
        start = time.perf_counter()
        action(*argument)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--moves", type=int, default=100)
    parser.add_argument("--trainings", type=int, default=3)
    options = parser.parse_args()

    data = load_explorer_data("digits", options.data_root, device="cpu")
    explorer = Explorer(data)
    generator = np.random.default_rng(0)
    moves = [(float(T), float(alpha), int(example)) for T, alpha, example in zip(
        np.exp(generator.uniform(*np.log(T_RANGE), options.moves)), generator.uniform(*ALPHA_RANGE, options.moves),
        generator.integers(0, len(data.test), options.moves))]

    def move(control):
        def set_value(T, alpha, example):  # one control per move, as one drag of one slider
            control.value = {"temperature": T, "alpha": alpha, "example": example}[control_name[control]]
        return set_value

    control_name = {explorer.temperature: "temperature", explorer.alpha: "alpha", explorer.example: "example"}

    def move_T_and_render(T, alpha, example):
        explorer.temperature.value = T
        for name in PANELS:
            explorer.figures[name].canvas.draw()

    panel_data = median_seconds(lambda T, alpha, example: all_panels(data, T, alpha, example), moves)
    per_control = {name: median_seconds(move(control), moves) for control, name in control_name.items()}
    rendered = median_seconds(move_T_and_render, moves[: max(1, options.moves // 5)])
    trainings = []
    for _ in range(options.trainings):
        explorer.train_button.click()
        trainings.append(explorer.last_training["seconds"])
    train_now = statistics.median(trainings)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {options.moves} slider moves, "
          f"{options.trainings} trainings of {data.epochs} epochs on {len(data.transfer)} examples")
    print(f"one move, all panels' data:        median {panel_data * 1e3:6.2f} ms  "
          f"({panel_data / UPDATE_TARGET_S:.2f} x the {UPDATE_TARGET_S * 1e3:.0f} ms target)")
    for name, label in (("temperature", "T slider move:"), ("alpha", "α slider move:"),
                        ("example", "example picker move:")):
        print(f"{label:34s} median {per_control[name] * 1e3:6.2f} ms  (data + artists moved)")
    print(f"T move, four panels rendered:      median {rendered * 1e3:6.2f} ms  (what the browser waits for)")
    print(f"Train now:                         median {train_now:6.2f} s   "
          f"({train_now / TRAIN_TARGET_S:.2f} x the {TRAIN_TARGET_S:.0f} s target); "
          f"accuracy {explorer.last_training['curve'][-1]:.3f}")


if __name__ == "__main__":
    main()
