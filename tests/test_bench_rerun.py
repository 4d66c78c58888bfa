"""benchmarks/bench_rerun.py, the full-size rerun check, run whole on a tiny run: it trains the run
again, finds the two files identical, and names what differs once one of them is altered."""

import json
import subprocess
import sys

import h5py
import numpy as np

from conftest import ROOT, tiny
from mechgrok.loop import train


def _bench(*args):
    return subprocess.run([sys.executable, "benchmarks/bench_rerun.py", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_rerun_is_identical_and_an_altered_file_is_caught(tmp_path):
    original = tmp_path / "dream.h5"
    train(tiny("dream"), original, threads=1)
    out, rerun_dir = tmp_path / "rerun.json", tmp_path / "rerun"

    proc = _bench(original, "--rerun-dir", rerun_dir, "--workers", 1, "--out", out)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(out.read_text())["runs"]
    assert row["identical"] and row["differences"] == []
    assert row["checkpoints"] == 7 and row["datasets_compared"] > 300 and row["last_step"] == 300
    rerun = row["rerun"]
    assert rerun.startswith(str(rerun_dir)) and rerun.endswith("/dream/seed0.h5")
    with h5py.File(rerun, "r") as f:  # trained by the sweep's worker, on the original's thread count
        assert f.attrs["status"] == "complete" and f.attrs["threads"] == 1

    # one float's last bit in one checkpoint, and one attribute: both named; wall-clock times are not
    with h5py.File(rerun, "r+") as f:
        w = f["checkpoints/0000200_end/unembed.weight"]
        x = w[...]
        x.view(np.uint32)[3, 5] ^= 1
        w[...] = x
        f.attrs["memorised_step"] = 12345
        f.attrs["wall_time_s"] = 1.0
        f["metrics/wall_time_s"][...] = 0.0
    proc = _bench(original, "--rerun-dir", rerun_dir, "--workers", 1, "--out", out)
    assert proc.returncode == 1
    (row,) = json.loads(out.read_text())["runs"]
    assert not row["identical"]
    assert len(row["differences"]) == 2
    assert row["differences"][0].startswith("checkpoints/0000200_end/unembed.weight: values differ")
    assert row["differences"][1].startswith("attribute /@memorised_step: ")

    # a missing run file: one line on stderr, exit 2, nothing written
    (tmp_path / "gone").mkdir()
    proc = _bench(tmp_path / "gone" / "seed0.h5", "--rerun-dir", tmp_path / "gone", "--out", tmp_path / "gone.json")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such run file" in proc.stderr
    assert not (tmp_path / "gone.json").exists() and list((tmp_path / "gone").iterdir()) == []
