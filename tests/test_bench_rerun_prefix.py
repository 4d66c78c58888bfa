"""benchmarks/bench_rerun_prefix.py, run whole on a tiny run carried in a results table: its first
steps trained again match the committed curve, and an altered curve is caught at its step."""

import json
import subprocess
import sys

from conftest import ROOT, alter_test_acc, tiny
from mechgrok.loop import train
from mechgrok.results import collect, write_csv, write_curves


def _bench(*args):
    return subprocess.run([sys.executable, "benchmarks/bench_rerun_prefix.py", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_prefix_rerun_matches_the_table_and_an_altered_curve_is_caught(tmp_path):
    run = tmp_path / "runs" / "baseline" / "seed3.h5"
    run.parent.mkdir(parents=True)
    train(tiny("baseline", seed=3), run, threads=1)
    rows = collect([run])[0]
    table = tmp_path / "results" / "runs.csv"
    write_csv(rows, table)
    write_curves(rows, table.with_name("curves.csv"))
    run.unlink()  # the rerun works from the table alone
    variant, out = rows[0]["variant"], tmp_path / "prefix.json"

    proc = _bench("--variant", variant, "--arm", "baseline", "--seeds", 3, "--steps", 150, "--table", table,
                  "--out", out)
    assert proc.returncode == 0, proc.stderr
    (r,) = json.loads(out.read_text())["runs"]
    assert r["same_at_4_digits"] and r["steps_compared"] == [0, 50, 100, 150] and r["recorded_threads"] == 1

    # one committed test accuracy changed in its last digit: found at that step, exit code 1
    alter_test_acc(table.with_name("curves.csv"), rows[0]["config_hash"], (100,), lambda v: v + 0.001)
    proc = _bench("--variant", variant, "--arm", "baseline", "--seeds", 3, "--steps", 150, "--table", table,
                  "--out", out)
    assert proc.returncode == 1, proc.stderr
    (r,) = json.loads(out.read_text())["runs"]
    assert not r["same_at_4_digits"] and r["first_differing_step"] == 100

    # a seed the table does not hold: one line on stderr, exit 2
    proc = _bench("--variant", variant, "--arm", "baseline", "--seeds", 4, "--table", table, "--out", out)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no finished" in proc.stderr
