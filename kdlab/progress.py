"""The scaffolding every training loop shares: its progress display, its timer and its Ctrl-C.

On a terminal, one tqdm bar redrawn in place. In a log (a pipe, a file, CI) a bar would write every
redraw as a new frame, so a plain line goes out instead, at most every LOG_SECONDS, and one at the
end. Ctrl-C inside the loop becomes TrainingInterrupted, saying how many of the epochs or steps
finished; the model keeps the weights it had reached.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from kdlab.device import one_cpu_thread
from kdlab.interrupt import TrainingInterrupted

__all__ = ["LOG_SECONDS", "TrainingLoop"]

LOG_SECONDS = 5.0  # in a log, a progress line at most this often


class TrainingLoop:
    """`with TrainingLoop(epochs, "epochs", "fit", history=history) as loop: for epoch in loop: ...`

    Iterating yields 0 .. total-1; `loop.done` counts the iterations that finished; `loop.show(loss=...)`
    puts numbers beside the progress. On the CPU the loop runs on one thread (kdlab.device.one_cpu_thread).
    On leaving the block `history.seconds` holds the time taken, and after a Ctrl-C `history.interrupted`
    is True and TrainingInterrupted is raised.
    """

    def __init__(self, total: int, unit: str, label: str, *, history=None, progress: bool = True, stream=None,
                 device="cpu"):
        self.total, self.unit, self.label, self.history = total, unit, label, history
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.numbers: dict[str, str] = {}
        terminal = progress and getattr(self.stream, "isatty", lambda: False)()
        self.bar = tqdm(total=total, desc=label, unit=unit.rstrip("s"), leave=False, file=self.stream) \
            if terminal else None
        self.log = progress and not terminal
        self.threads = one_cpu_thread(device)  # the same numbers on any machine (kdlab.device)
        self.start = self.last_line = time.perf_counter()

    def __iter__(self):
        for index in range(self.total):
            yield index
            self.done = index + 1
            if self.bar is not None:
                self.bar.update(1)
            elif self.log and (self.done == self.total or time.perf_counter() - self.last_line >= LOG_SECONDS):
                self._line()

    def show(self, **numbers) -> None:
        self.numbers = {name: f"{value:.3f}" if isinstance(value, float) else str(value)
                        for name, value in numbers.items()}
        if self.bar is not None:
            self.bar.set_postfix(self.numbers, refresh=False)

    def __enter__(self) -> TrainingLoop:
        self.threads.__enter__()
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        seconds = time.perf_counter() - self.start
        self.threads.__exit__(None, None, None)
        if self.bar is not None:
            self.bar.close()
        if self.history is not None:
            self.history.seconds = seconds
        if kind is not None and issubclass(kind, KeyboardInterrupt) and not issubclass(kind, TrainingInterrupted):
            if self.history is not None:
                self.history.interrupted = True
            raise TrainingInterrupted(f"training stopped after {self.done} of {self.total} {self.unit}",
                                      history=self.history, done=self.done, unit=self.unit) from None
        return False

    def _line(self) -> None:
        self.last_line = time.perf_counter()
        numbers = "".join(f", {name} {value}" for name, value in self.numbers.items())
        print(f"{self.label}: {self.done}/{self.total} {self.unit}{numbers}, {self.last_line - self.start:.1f} s",
              file=self.stream, flush=True)
