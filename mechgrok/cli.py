"""What every command line shares (the package's and those in benchmarks/): bad input is one line
on stderr and exit code 2, never a traceback. Nothing here imports torch or TransformerLens, so
``--help`` and bad input answer at once."""

from __future__ import annotations

import argparse
import sys

from .errors import MechgrokError, check_device


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit code 2)."""

    def error(self, message: str):
        self.exit(error_line(self.prog, message))


def _int_at_least(text: str, low: int, words: str) -> int:
    value = int(text)
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {words}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _int_at_least(text, 1, "positive")


def nonnegative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    return _int_at_least(text, 0, "0 or more")


def device_arg(text: str) -> str:
    """An argparse type: a device mechgrok trains on (``errors.check_device``)."""
    try:
        return check_device(text)
    except MechgrokError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def error_line(prog: str, problem: MechgrokError | str) -> int:
    """Report bad input (an error, or its message) as one line on stderr; the exit code for it (2)."""
    print(f"{prog}: error: {problem}", file=sys.stderr)
    return 2


def run_one_line(prog: str, main) -> int:
    """Run a script's ``main()``: bad input it raises (MechgrokError) becomes one line on stderr
    and exit code 2; otherwise its return value (None is 0)."""
    try:
        return main() or 0
    except MechgrokError as exc:
        return error_line(prog, exc)
