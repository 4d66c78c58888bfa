"""Errors that the command-line tools report as one line and exit code 2, and the checks that
raise them before a command writes or imports torch: of output locations and of device names."""

import re
from pathlib import Path


class MechgrokError(Exception):
    """Bad input: reported to the user as one line, never as a traceback. The message is one
    line whatever it quotes (a library's multi-line message is joined with spaces)."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


def _no_file_above(path: Path) -> None:
    for parent in path.parents:  # the nearest one that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise MechgrokError(f"{path}: {parent} is not a folder")
            return


def out_dir(path) -> Path:
    """``path`` as a folder that output may go into (it need not exist yet); MechgrokError if
    something other than a folder is there or above it. Commands check this before they write."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MechgrokError(f"{path}: exists and is not a folder")
    _no_file_above(path)
    return path


def out_file(path) -> Path:
    """``path`` as a file that output may be written to; MechgrokError if a folder is there, or
    a file where a folder above it would be."""
    path = Path(path)
    if path.is_dir():
        raise MechgrokError(f"{path}: is a folder, not a file to write")
    _no_file_above(path)
    return path


def check_device(device: str) -> str:
    """``device`` if it names one mechgrok trains on (``cpu``, ``cuda`` or ``cuda:N``); MechgrokError
    otherwise. Checked on the text, before torch is imported; whether CUDA is there is checked
    when training starts (``loop.torch_device``)."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise MechgrokError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
    return device


class ConfigError(MechgrokError):
    """A configuration that cannot describe a valid run."""


class RunFileError(MechgrokError):
    """A run file that is missing, unreadable, foreign, or holds a different run."""


class RunLockedError(RunFileError):
    """A run file that another process is training right now."""
