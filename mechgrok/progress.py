"""A one-line progress display for training (stderr; no dependencies)."""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
    """Call as ``progress(step, total, row)``. On a terminal it redraws one line;
    otherwise it prints a line at every evaluation. The ETA assumes the whole
    budget: runs that grok stop earlier."""

    def __init__(self, label: str, stream=None, min_interval: float = 0.5):
        self.label, self.stream = label, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.min_interval = min_interval
        self.t_start = self.t_last = None
        self.first_step = None
        self.acc = "train -     test -    "

    def __call__(self, step: int, total: int, row: dict | None) -> None:
        now = time.perf_counter()
        if self.t_start is None:
            self.t_start, self.first_step = now, step - 1
        if row is not None:
            self.acc = f"train {row['train_acc']:.3f} test {row['test_acc']:.3f}"
        done = step >= total
        if row is None and not done:
            if not self.tty or (self.t_last is not None and now - self.t_last < self.min_interval):
                return
        self.t_last = now
        rate = (step - self.first_step) / max(now - self.t_start, 1e-9)
        eta = (total - step) / rate if rate > 0 else float("inf")
        line = (f"{self.label} | step {step}/{total} | {self.acc} | {rate:.1f} steps/s | "
                f"ETA {_duration(eta) if eta != float('inf') else '?'}")
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.t_last is not None:
            self.stream.write("\n")
            self.stream.flush()
