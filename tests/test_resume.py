"""A run killed with SIGKILL and resumed ends exactly like one never interrupted."""

import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import ROOT, TINY_FLAGS, run_cli, tiny
from mechgrok import provenance, runstore
from mechgrok.loop import train
from test_loop import _contents, _same


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    flags = [f for f in TINY_FLAGS if f != "--quiet"]
    flags[flags.index("--steps") + 1] = 600
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-m", "mechgrok.train", *map(str, flags), "--arm", "dream",
                             "--seed", "0", "--run-file", str(path)], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    for line in proc.stderr:  # progress prints a line at every evaluation when not on a terminal
        if "step 350/600" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL

    # what was completed before the kill is readable
    attrs = runstore.read_attrs(path)
    assert attrs["status"] == "running" and attrs["last_step"] >= 300
    names = {c["name"] for c in runstore.list_checkpoints(path)}
    assert {"0000000_end", "0000100_before", "0000300_end"} <= names
    assert runstore.read_checkpoint(path, "0000300_end")["embed.weight"].shape == (14, 128)

    resumed = run_cli(*TINY_FLAGS, "--steps", 600, "--arm", "dream", "--seed", 0, "--run-file", path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path / "reference.h5"
    train(tiny("dream", steps=600), reference)
    assert _same(_contents(path), _contents(reference))
    a, b = runstore.read_attrs(path), runstore.read_attrs(reference)
    for key in ("status", "last_step", "grok_step", "time_to_grok", "memorised_step",
                *(f"passes_{c}" for c in runstore.PASS_COUNTERS)):
        assert a[key] == b[key], key
    assert "resumed_utc" in a
    commit, uncommitted = provenance.git_state()
    assert (a["git_commit"], bool(a["git_uncommitted_changes"])) == (commit, uncommitted)
    assert (a["resumed_git_commit"], bool(a["resumed_git_uncommitted_changes"])) == (commit, uncommitted)
    assert "resumed_git_commit" not in b
    with h5py.File(path, "r") as f:
        # a run that ends at its budget without grokking keeps exactly its final state (for extension)
        assert [int(g.attrs["step"]) for g in f["resume"].values()] == [600]
        assert np.all(np.diff(f["metrics/step"][...]) > 0)


def test_lock_released_between_open_and_flock_is_taken_afresh(tmp_path, monkeypatch):
    """A holder removes <run>.lock and lets go just after we opened it: the lock we then get is on a
    file no longer at the path, so run_lock starts over; while we hold it, no one else can take it."""
    run = tmp_path / "r.h5"
    lock_path = tmp_path / ("r.h5" + runstore.LOCK_SUFFIX)
    real_flock = runstore.fcntl.flock
    calls = []

    def flock_after_holder_left(fh, op):
        if not calls:  # the other holder's exit: unlink, then unlock (its file is the one we opened)
            lock_path.unlink()
        calls.append(op)
        return real_flock(fh, op)

    lock_path.write_text("")
    monkeypatch.setattr(runstore.fcntl, "flock", flock_after_holder_left)
    with runstore.run_lock(run):
        assert len(calls) == 2 and lock_path.exists()
        monkeypatch.setattr(runstore.fcntl, "flock", real_flock)
        with pytest.raises(runstore.RunLockedError):
            with runstore.run_lock(run):
                pass
    assert not lock_path.exists()


def test_lock_held_tells_a_live_holder_from_a_lock_file_left_by_a_killed_one(tmp_path):
    """gpu_session.sh analyses a finished run once no one holds its lock; a lock file left behind by a
    SIGKILLed trainer must not count as held (it would be skipped forever), and asking takes nothing."""
    run = tmp_path / "r.h5"
    lock_path = tmp_path / ("r.h5" + runstore.LOCK_SUFFIX)
    assert not runstore.lock_held(run) and not lock_path.exists()
    with runstore.run_lock(run):
        assert runstore.lock_held(run)
    assert not runstore.lock_held(run)
    lock_path.write_text("")  # what a killed holder leaves: the file, no lock
    assert not runstore.lock_held(run)
    with runstore.run_lock(run):  # asking left no lock behind
        assert runstore.lock_held(run)
    assert not lock_path.exists()


def test_a_writer_waits_out_a_reader_holding_the_file_and_gives_up_with_one_line(tmp_path, monkeypatch):
    """HDF5 locks an open file (readers share, a writer excludes). Training opens its run file once per
    batch of writes; a progress reader in another process holding it that instant made training fail
    (a sweep's workers died this way in CI). The writer now waits for the reader, within a bound."""
    run = tmp_path / "r.h5"
    runstore.create(run, tiny(), {}, np.arange(3), np.arange(3, 6))
    hold = ("import sys, time, h5py\nf = h5py.File(sys.argv[1], 'r')\nprint('open', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\nf.close()")

    def reader(seconds):
        proc = subprocess.Popen([sys.executable, "-c", hold, str(run), str(seconds)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "open"
        return proc

    proc = reader(1.0)
    with runstore.RunWriter(run) as w:  # waits about a second, then writes
        w.append_metrics({name: 0 for name in runstore.METRIC_COLUMNS})
    proc.wait(timeout=30)
    with h5py.File(run, "r") as f:
        assert f["metrics/step"].shape == (1,)

    monkeypatch.setattr(runstore, "LOCK_WAIT_S", 0.3)
    proc = reader(5.0)
    try:
        with pytest.raises(runstore.RunFileError, match="held open by another process for over 0.3 s"):
            runstore.RunWriter(run).__enter__()
    finally:
        proc.kill()
        proc.wait()


def test_rows_written_together_make_the_same_table_as_rows_written_one_by_one(tmp_path):
    from mechgrok.data import split_indices

    cfg = tiny("dream")
    rows = [{name: (i * 3 if np.dtype(dt).kind == "i" else i / 7) for name, dt in runstore.METRIC_COLUMNS.items()}
            for i in range(5)]
    for name, write in (("one.h5", lambda w: [w.append_metrics(r) for r in rows]),
                        ("all.h5", lambda w: (w.extend_metrics(rows[:2]), w.extend_metrics(rows[2:])))):
        runstore.create(tmp_path / name, cfg, {}, *split_indices(cfg))
        with runstore.RunWriter(tmp_path / name) as w:
            write(w)
    with h5py.File(tmp_path / "one.h5", "r") as a, h5py.File(tmp_path / "all.h5", "r") as b:
        for name, dt in runstore.METRIC_COLUMNS.items():
            assert a["metrics"][name].dtype == b["metrics"][name].dtype == dt
            assert np.array_equal(a["metrics"][name][...], b["metrics"][name][...]) and len(b["metrics"][name]) == 5
    # a row with a column missing or extra is refused before anything is written
    with runstore.RunWriter(tmp_path / "all.h5") as w:
        with pytest.raises(ValueError, match="has columns"):
            w.extend_metrics([rows[0], {**rows[0], "extra": 1}])
    with h5py.File(tmp_path / "all.h5", "r") as b:
        assert len(b["metrics"]["step"]) == 5
