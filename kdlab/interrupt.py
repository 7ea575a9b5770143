"""Ctrl-C during training: stop at once, keep the weights in memory, and let nothing downstream run.

Every training loop catches KeyboardInterrupt, records how far it got and raises
TrainingInterrupted. It is a KeyboardInterrupt, so code that does not know about it stops as a
Ctrl-C would (a notebook's Run All stops too), while code that does (the CLI, the explorer's
"Train now") can report exactly what finished. The CLI turns SIGTERM into the same KeyboardInterrupt
(kdlab.__main__.stop_signals), so `timeout`, Slurm and `docker stop` stop it the same way.
"""

from __future__ import annotations

__all__ = ["TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C. The model keeps the weights it had reached.

    `message` says what stopped and after how many epochs or steps (`done` of them, `unit` saying
    which); `history` is the stopped loop's history; `partial` is whatever an experiment had finished
    before it (e.g. the seeds whose students both completed), so a caller can report it without
    pretending it is whole.
    """

    def __init__(self, message: str, *, history=None, partial=None, done: int = 0, unit: str = "epochs"):
        super().__init__(message)
        self.message = message
        self.history = history
        self.partial = partial
        self.done, self.unit = done, unit  # how far the stopped loop got: `done` of its epochs or steps

    def __str__(self) -> str:
        return self.message
