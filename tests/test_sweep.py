"""Sweeps on a tiny config with 2 workers: completion, idempotence, interruption, bad input."""

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, TINY
from mechgrok import runstore
from mechgrok.errors import MechgrokError
from mechgrok.sweep import _Tracker, done_elsewhere, parse_seeds, plan, run_local
from test_loop import _contents, _same

SWEEP_FLAGS = ["--p", "13", "--train-end", "6", "--steps", "400", "--eval-every", "50", "--checkpoint-every",
               "100", "--dream-every", "100", "--dream-k", "20"]
GRID = dict(regimes=["hard"], arms=["baseline", "dream"], seeds=[0, 1])
SETTINGS = {**TINY, "steps": 400}


def _sweep_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mechgrok.sweep", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("42,0-2,1") == [42, 0, 1, 2]
    for bad in ("", "a-b", "3-1", "1,,2", "-1"):
        with pytest.raises(MechgrokError):
            parse_seeds(bad)


def test_plan_orders_by_seed_then_arm(tmp_path):
    jobs = plan(GRID["regimes"], GRID["arms"], GRID["seeds"], tmp_path, **SETTINGS)
    assert [(j.cfg.seed, j.cfg.arm) for j in jobs] == [(0, "baseline"), (0, "dream"), (1, "baseline"), (1, "dream")]
    assert all(j.path.is_relative_to(tmp_path) and j.path.name == f"seed{j.cfg.seed}.h5" for j in jobs)


def test_runs_finished_in_a_results_table_are_not_trained_again(tmp_path):
    """A fresh machine without the run files: the committed table says which runs are done."""
    from synth import synth_run

    from mechgrok.results import collect, write_csv

    jobs = plan(GRID["regimes"], GRID["arms"], GRID["seeds"], tmp_path / "runs", **SETTINGS)
    elsewhere = tmp_path / "elsewhere.h5"
    synth_run(elsewhere, "dream", 1, None, budget=400, **{k: v for k, v in SETTINGS.items() if k != "steps"})
    write_csv(collect([elsewhere])[0], tmp_path / "runs.csv")
    elsewhere.unlink()
    todo, done = done_elsewhere(jobs, tmp_path / "runs.csv")
    assert [(j.cfg.arm, j.cfg.seed) for j in done] == [("dream", 1)] and len(todo) == 3
    r = _sweep_cli("--arms", "baseline", "dream", "--seeds", "0-1", "--out", tmp_path / "runs", "--dry-run",
                   "--done", tmp_path / "runs.csv", *SWEEP_FLAGS)
    assert r.returncode == 0, r.stderr
    assert [ln.split()[0] for ln in r.stdout.splitlines()[1:]] == ["table", "new", "new", "new"]
    bad = _sweep_cli("--seeds", "0", "--out", tmp_path / "runs", "--done", tmp_path / "none.csv", *SWEEP_FLAGS)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_sweep_completes_then_does_nothing_and_an_interrupted_sweep_ends_identical(tmp_path):
    one_seed = {**GRID, "seeds": [0]}  # one seed, two arms: the two workers each train one run
    jobs = plan(one_seed["regimes"], one_seed["arms"], one_seed["seeds"], tmp_path / "a", **SETTINGS)
    first = run_local(jobs, workers=2)
    assert first["done"] == 2 and first["failed"] == [] and first["skipped"] == 0
    for job in jobs:
        assert runstore.read_attrs(job.path)["status"] == "complete"
    mtimes = [os.stat(j.path).st_mtime_ns for j in jobs]
    again = run_local(jobs, workers=2)
    assert again["skipped"] == 2 and again["failed"] == []
    assert [os.stat(j.path).st_mtime_ns for j in jobs] == mtimes  # nothing touched

    # the same two runs swept into another folder, killed (SIGKILL, workers die with it) mid-way, restarted
    out = tmp_path / "b"
    cmd = [sys.executable, "-m", "mechgrok.sweep", "--arms", "baseline", "dream", "--seeds", "0", "--workers", "2",
           "--out", str(out), *SWEEP_FLAGS]
    log = open(tmp_path / "killed.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log)
    killed_mid_run = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        steps = []
        for job in plan(one_seed["regimes"], one_seed["arms"], one_seed["seeds"], out, **SETTINGS):
            try:
                steps.append(runstore.read_attrs(job.path)["last_step"])
            except Exception:
                pass
        if any(100 <= s < 400 for s in steps):
            proc.send_signal(signal.SIGKILL)
            killed_mid_run = True
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    log.close()
    assert killed_mid_run, f"the sweep ended before it could be interrupted: {(tmp_path / 'killed.log').read_text()}"
    time.sleep(1.0)  # let the workers' parent-death SIGKILL land
    restarted = _sweep_cli("--arms", "baseline", "dream", "--seeds", "0", "--workers", "2", "--out", out, *SWEEP_FLAGS)
    assert restarted.returncode == 0, restarted.stderr
    assert re.search(r"\b[12] to resume", restarted.stderr), restarted.stderr
    again = plan(one_seed["regimes"], one_seed["arms"], one_seed["seeds"], out, **SETTINGS)
    assert len(again) == 2
    for job_a, job_b in zip(jobs, again):
        assert _same(_contents(job_a.path), _contents(job_b.path)), job_b.label


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args in (["--arms", "dreamy"], ["--seeds", "1-x"], ["--regimes", "harder"], ["--workers", "0"],
                 ["--split", "random", "--train-fraction", "1.5"]):
        r = _sweep_cli(*args, "--out", tmp_path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, args
    # a folder holding another run's file at one of the sweep's paths: refused before any work
    job = plan(["hard"], ["baseline"], [0], tmp_path, **SETTINGS)[0]
    job.path.parent.mkdir(parents=True)
    job.path.write_bytes(b"not hdf5")
    r = _sweep_cli("--arms", "baseline", "dream", "--seeds", "0", "--out", tmp_path, *SWEEP_FLAGS)
    assert r.returncode == 2 and "not a readable HDF5 run file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert job.path.read_bytes() == b"not hdf5"
    assert not (job.path.parent.parent / "dream").exists()  # no work started


def test_ray_backend_writes_the_same_files_as_the_local_backend(tmp_path):
    from mechgrok.sweep import run_ray

    grid, short = dict(regimes=["hard"], arms=["baseline", "dream"], seeds=[0]), {**SETTINGS, "steps": 200}
    local = plan(**grid, out=tmp_path / "local", **short)
    assert run_local(local, workers=2)["done"] == 2
    remote = plan(**grid, out=tmp_path / "ray", **short)
    result = run_ray(remote, address=None, num_cpus=2)  # a real local Ray instance
    assert result["done"] == 2 and result["failed"] == []
    for a, b in zip(local, remote):
        assert _same(_contents(a.path), _contents(b.path)), b.label
    again = run_ray(remote, address=None, num_cpus=2)
    assert again["skipped"] == 2


def test_unreachable_ray_address_is_one_line(tmp_path):
    r = _sweep_cli("--backend", "ray", "--address", "127.0.0.1:1", "--seeds", "0", "--out", tmp_path, *SWEEP_FLAGS)
    assert r.returncode == 2 and "cannot reach the Ray cluster at 127.0.0.1:1" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _sweep_cli("--backend", "spark", "--out", tmp_path)
    assert r.returncode == 2 and "unknown backend" in r.stderr


def test_a_longer_budget_continues_a_shorter_run_and_matches_a_direct_run(tmp_path):
    grid, settings = dict(regimes=["hard"], arms=["dream"], seeds=[0]), {**SETTINGS, "steps": 200}
    short = plan(**grid, out=tmp_path / "a", **{**settings, "steps": 100})
    assert run_local(short, workers=1)["done"] == 1
    long = plan(**grid, out=tmp_path / "a", **settings)
    from mechgrok.sweep import check

    assert check(long)["extend"] == long
    # progress counts from the shorter run's last step: the worker's copy of it is not trained steps
    tracker = _Tracker(long, io.StringIO(), check(long)["extend"])
    long[0].path.parent.mkdir(parents=True)
    shutil.copy(short[0].path, long[0].path)
    assert tracker.line(0, 1, 0, 0).endswith("| ? steps/s (none checkpointed yet) | ETA <= ? (full budgets)")
    long[0].path.unlink()
    assert run_local(long, workers=1)["done"] == 1
    assert re.search(r"\| \d+\.\d steps/s \| ETA <= 0m00s \(full budgets\)$", tracker.line(1, 0, 0, 0))
    direct = plan(**grid, out=tmp_path / "b", **settings)
    run_local(direct, workers=1)

    def body(path):
        return {k: v for k, v in _contents(path).items() if not k.startswith("resume/")}

    assert _same(body(long[0].path), body(direct[0].path))
    assert runstore.read_config(long[0].path) == runstore.read_config(direct[0].path)
    assert runstore.read_config(short[0].path).steps == 100  # the short run is left as it was
    finals = [c["step"] for c in runstore.list_checkpoints(long[0].path) if "final" in c["reasons"]]
    assert finals == [200]


def test_units_group_seeds_of_one_config_into_batches(tmp_path):
    from mechgrok.sweep import units

    jobs = plan(["hard"], ["baseline", "dream-early"], [0, 1, 2], tmp_path, **SETTINGS)
    assert units(jobs) == [[j] for j in jobs]
    got = [[(j.cfg.arm, j.cfg.seed) for j in u] for u in units(jobs, batch_runs=2)]
    assert got == [[("baseline", 0), ("baseline", 1)], [("dream-early", 0)], [("dream-early", 1)],
                   [("baseline", 2)], [("dream-early", 2)]]


def test_sweep_with_batched_workers(tmp_path):
    flags = [*SWEEP_FLAGS[:5], "100", *SWEEP_FLAGS[6:]]  # --steps 100
    r = _sweep_cli("--arms", "baseline", "dream-early", "--seeds", "0-1", "--workers", "2", "--batch-runs", "2",
                   "--out", tmp_path, *flags)
    assert r.returncode == 0, r.stderr
    assert "up to 2 runs per worker" in r.stderr
    jobs = plan(["hard"], ["baseline", "dream-early"], [0, 1], tmp_path, **{**SETTINGS, "steps": 100})
    for job in jobs:
        attrs = runstore.read_attrs(job.path)
        assert attrs["status"] == "complete" and attrs["last_step"] == 100
        assert attrs.get("batch_runs") == (2 if job.cfg.arm == "baseline" else None), job.label
        assert not os.path.exists(str(job.path) + ".log")
    bad = _sweep_cli("--batch-runs", "0", "--out", tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
