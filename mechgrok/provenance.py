"""Which code produced a file: the git commit of the ``mechgrok/`` folder, and whether the
folder differs from it.

One function serves the run files (``mechgrok.loop.run_metadata``: attributes ``git_commit``
and ``git_uncommitted_changes``) and the report's header (``mechgrok.report``), so the two
cannot disagree about what "the commit" means.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

HERE = Path(__file__).parent


def git_state(here: Path = HERE, short: bool = False) -> tuple[str, bool]:
    """``(commit, uncommitted)`` for the git checkout holding the folder ``here``.

    ``commit`` is ``git rev-parse HEAD`` (abbreviated with ``short``), or ``"unknown"`` when
    ``here`` is not in a git checkout or git cannot run (an installed wheel, a missing folder).
    ``uncommitted`` is True when ``git status --porcelain`` lists any change under ``here``
    (modified, staged or untracked files); always False when the commit is unknown.
    """
    rev = ["git", "rev-parse", "--short", "HEAD"] if short else ["git", "rev-parse", "HEAD"]
    try:
        r = subprocess.run(rev, cwd=here, capture_output=True, text=True, timeout=5)
        if r.returncode != 0 or not r.stdout.strip():
            return "unknown", False
        s = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here, capture_output=True,
                           text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return r.stdout.strip(), bool(s.returncode == 0 and s.stdout.strip())


def describe(here: Path = HERE) -> str:
    """The short commit, with " + uncommitted changes to mechgrok/" when the folder differs from it."""
    commit, uncommitted = git_state(here, short=True)
    return commit + (" + uncommitted changes to mechgrok/" if uncommitted else "")
