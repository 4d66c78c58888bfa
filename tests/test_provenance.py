"""The commit that run files and the report name, and the mark for code that differs from it."""

import subprocess

from mechgrok import provenance


def _repo(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    code = tmp_path / "mechgrok"
    code.mkdir()
    (code / "report.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("r\n")
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "c"]):
        subprocess.run(git + cmd, check=True, capture_output=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    return code, head


def test_git_state_names_the_commit_and_marks_changes_under_the_folder_only(tmp_path):
    code, head = _repo(tmp_path)
    assert provenance.git_state(code) == (head, False)
    assert provenance.describe(code) == head[:len(provenance.git_state(code, short=True)[0])]
    (tmp_path / "README.md").write_text("changed outside mechgrok/\n")
    assert provenance.git_state(code) == (head, False)
    (code / "new.py").write_text("")  # untracked counts
    assert provenance.git_state(code) == (head, True)
    (code / "new.py").unlink()
    (code / "report.py").write_text("x = 2\n")
    short = provenance.git_state(code, short=True)[0]
    assert head.startswith(short) and len(short) < len(head)
    assert provenance.describe(code) == short + " + uncommitted changes to mechgrok/"


def test_git_state_outside_a_checkout_is_unknown(tmp_path):
    assert provenance.git_state(tmp_path / "missing") == ("unknown", False)
    (tmp_path / "plain").mkdir()
    assert provenance.git_state(tmp_path / "plain") == ("unknown", False)  # tmp_path is no git checkout
    assert provenance.describe(tmp_path / "plain") == "unknown"
