"""Errors that the command-line tools report as one line and exit code 2."""


class MechgrokError(Exception):
    """Bad input: reported to the user as one line, never as a traceback. The message is one
    line whatever it quotes (a library's multi-line message is joined with spaces)."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


class ConfigError(MechgrokError):
    """A configuration that cannot describe a valid run."""


class RunFileError(MechgrokError):
    """A run file that is missing, unreadable, foreign, or holds a different run."""


class RunLockedError(RunFileError):
    """A run file that another process is training right now."""
