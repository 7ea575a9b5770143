import io

import pytest

from kdlab import progress
from kdlab.interrupt import TrainingInterrupted
from kdlab.progress import TrainingLoop
from kdlab.train import History


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_in_a_log_a_line_goes_out_at_most_every_few_seconds_and_once_at_the_end(monkeypatch):
    log = io.StringIO()
    with TrainingLoop(50, "epochs", "fit", stream=log) as loop:
        for epoch in loop:
            loop.show(loss=1.0 / (epoch + 1))
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fit: 50/50 epochs, loss 0.020, ")  # a fast run: one summary
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)
    log = io.StringIO()
    with TrainingLoop(3, "steps", "train", stream=log) as loop:
        for _ in loop:
            pass
    assert [line.split(",")[0] for line in log.getvalue().splitlines()] == ["train: 1/3 steps", "train: 2/3 steps",
                                                                             "train: 3/3 steps"]


def test_on_a_terminal_one_bar_and_no_log_lines_and_nothing_without_progress():
    terminal = Terminal()
    with TrainingLoop(5, "epochs", "fit", stream=terminal) as loop:
        for _ in loop:
            pass
    assert "\rfit:" in terminal.getvalue() and "/5 [" in terminal.getvalue()  # tqdm's bar, redrawn in place
    assert "fit: 5/5 epochs" not in terminal.getvalue()  # and no log lines
    silent = io.StringIO()
    with TrainingLoop(5, "epochs", "fit", stream=silent, progress=False) as loop:
        for _ in loop:
            pass
    assert silent.getvalue() == ""


def test_ctrl_c_becomes_training_interrupted_with_the_count_of_finished_units():
    history = History()
    with pytest.raises(TrainingInterrupted, match="^training stopped after 2 of 10 epochs$") as stopped:
        with TrainingLoop(10, "epochs", "fit", history=history, progress=False) as loop:
            for epoch in loop:
                if epoch == 2:
                    raise KeyboardInterrupt
    assert stopped.value.history is history and history.interrupted and history.seconds >= 0


def test_other_errors_pass_through_and_the_time_is_recorded():
    history = History()
    with pytest.raises(ZeroDivisionError):
        with TrainingLoop(3, "epochs", "fit", history=history, progress=False) as loop:
            for _ in loop:
                1 / 0
    assert not history.interrupted and history.seconds >= 0
