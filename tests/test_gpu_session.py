"""benchmarks/gpu_session.sh, the script a lent GPU runs in one call, run whole on the CPU with a tiny
wave: it trains, analyses each finished run, refuses a bad line in one logged line, judges a second wave
by this call's own training rate, and packs."""

import json
import os
import subprocess
import sys

from conftest import ROOT, TINY
from mechgrok import runstore, transport
from mechgrok.loop import train
from mechgrok.results import current_analyses
from mechgrok.sweep import plan

FLAGS = "--p 13 --train-end 6 --steps 200 --eval-every 50 --checkpoint-every 100 --dream-every 100 --dream-k 20"


def test_a_session_trains_analyses_and_packs_a_wave_and_logs_a_line_it_cannot_start(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    jobs = plan(["hard"], ["baseline", "dream"], [0], runs, **{**TINY, "steps": 200})
    done = jobs[0]  # finished by an "earlier call", whose trainer was killed after it let go: a stale lock file
    train(done.cfg, done.path)
    (done.path.parent / (done.path.name + runstore.LOCK_SUFFIX)).write_text("")
    wave = f"--regimes hard {FLAGS} --arms baseline dream --seeds 0 --workers 2\n--regimes nope --seeds 0"
    # a second wave whose worst case cannot fit: the rate it is judged by counts this call's steps only
    wave2 = dict(WAVE2=f"--regimes hard {FLAGS} --arms baseline", WAVE2_SEEDS="1", WAVE2_RUN_STEPS=str(10**9),
                 WAVE2_RUNS_PER_SEED="1")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DEVICE": "cpu", "PY": sys.executable, "WAVE1": wave, **wave2}
    proc = subprocess.run(["bash", "benchmarks/gpu_session.sh", runs, out, "240", "400"], capture_output=True,
                          text=True, timeout=400, cwd=ROOT, env=env)
    log = (out / "session.log").read_text()
    assert proc.returncode == 0, log + proc.stderr
    assert "not started w1_2: --regimes nope --seeds 0:" in log and "unknown regime 'nope'" in log
    assert "wave 1: 200 run-steps in " in log and "wave 2 not started: its worst case does not fit" in log
    launched = json.loads((out / "launched.json").read_text())
    assert sorted(r["path"] for r in launched) == sorted(str(j.path) for j in jobs)
    assert all(r["status"] == "complete" and r["last_step"] == 200 for r in launched)
    for job in jobs:  # every finished run analysed, the one with the stale lock file too
        assert {"fourier", "norms"} <= set(current_analyses(job.path)), job.path
    tars = sorted(out.glob("runs-*.tar.gz"))
    assert transport.unpack(tars, tmp_path / "back")["unpacked"] == 2
