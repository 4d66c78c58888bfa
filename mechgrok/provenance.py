"""Which code produced a file: the git commit of the ``mechgrok/`` folder, and whether the
folder differs from it; and, for the report, the installed versions of the packages its numbers
and figures come from (``versions_text``).

One function serves the run files (``mechgrok.loop.run_metadata``: attributes ``git_commit``
and ``git_uncommitted_changes``) and the report's header (``mechgrok.report``), so the two
cannot disagree about what "the commit" means.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

from . import __version__

HERE = Path(__file__).parent

# The installed packages the committed results depend on: training (torch, transformer-lens), run files
# (h5py), statistics (numpy, scipy), probes (scikit-learn) and figures (matplotlib). pyproject.toml gives
# lower bounds only, so the report names the versions that produced it: another matplotlib may draw
# different pixels from the same values.
RESULT_PACKAGES = ("torch", "transformer-lens", "numpy", "scipy", "scikit-learn", "h5py", "matplotlib")


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


def versions_text() -> str:
    """'mechgrok V, torch V, ...': the installed versions of mechgrok and of ``RESULT_PACKAGES``."""
    return ", ".join([f"mechgrok {__version__}"] + [f"{p} {metadata.version(p)}" for p in RESULT_PACKAGES])
