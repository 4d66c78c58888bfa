"""benchmarks/bench_rounding.py, run whole on small real runs carried in a results table: a baseline
trained again with other evaluation and replay intervals is the same computation (same curve, same
grok step on the first run's grid); an altered curve is read as a rerun that grokked elsewhere."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, alter_test_acc, groks
from mechgrok.errors import MechgrokError
from mechgrok.loop import train
from mechgrok.results import collect, write_csv, write_curves

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_rounding import check_same_training  # noqa: E402


def _bench(*args):
    return subprocess.run([sys.executable, "benchmarks/bench_rounding.py", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_a_rerun_of_the_same_arithmetic_matches_and_an_altered_curve_is_read_as_another_grok(tmp_path):
    cfgs = {"first": groks("baseline", eval_every=100, dream_every=100),
            "rerun": groks("baseline", eval_every=50, dream_every=50),
            "dream": groks("dream", eval_every=100, dream_every=100)}
    paths = []
    for name, cfg in cfgs.items():
        paths.append(tmp_path / "runs" / name / f"seed{cfg.seed}.h5")
        paths[-1].parent.mkdir(parents=True)
        train(cfg, paths[-1], threads=1)
    rows = collect(paths)[0]
    table = tmp_path / "results" / "runs.csv"
    write_csv(rows, table)
    write_curves(rows, table.with_name("curves.csv"))
    first, rerun = cfgs["first"].reading(), cfgs["rerun"].reading()  # the table's variant names
    out, seed = tmp_path / "rounding.json", cfgs["first"].seed

    proc = _bench("--variant", first, "--rerun", rerun, "--seeds", seed, "--context-arms", "dream",
                  "--table", table, "--out", out)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    (pair,) = result["pairs"]
    grok = pair["grok_step_recorded"][0]
    assert grok is not None and grok % 100 == 0, "the fixture must grok on the first run's grid"
    assert pair["curves"] == "same at 4 digits" and pair["first_differing_step"] is None
    assert pair["grok_step_on_first_grid"] == [grok, grok] and pair["fold"] == 1
    assert pair["steps_compared"] >= grok // 100 + 1  # 0, 100, ..., grok at least
    assert result["summary_by_curves"]["same at 4 digits"]["equal_on_grid"] == 1
    ctx = result["context"]["dream"]
    assert ctx["n"] + ctx["not_both_grokked"] == 1 and ctx["seeds"] == [seed][:ctx["n"]]

    # the rerun's curve altered at steps 50 and 100 to cross the threshold there: the curves differ
    # from step 100, and the rerun's grok step on the first grid is 100 (50 is not on it)
    alter_test_acc(table.with_name("curves.csv"), cfgs["rerun"].config_hash(), (50, 100), lambda _: 0.99)
    proc = _bench("--variant", first, "--rerun", rerun, "--seeds", seed, "--table", table, "--out", out)
    assert proc.returncode == 0, proc.stderr
    (pair,) = json.loads(out.read_text())["pairs"]
    assert pair["curves"] == "differ" and pair["first_differing_step"] == 100
    assert pair["grok_step_on_first_grid"] == [grok, 100] and pair["fold"] == pytest.approx(grok / 100)

    # a seed the table does not hold: one line on stderr, exit 2
    proc = _bench("--variant", first, "--rerun", rerun, "--seeds", seed + 1, "--table", table, "--out", out)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no seed" in proc.stderr


def test_only_settings_that_change_no_training_may_differ():
    check_same_training(groks("baseline", eval_every=100, dream_every=100), groks("baseline", eval_every=50, dream_every=20))
    with pytest.raises(MechgrokError, match="dream_every"):  # a replaying arm's replay interval changes its training
        check_same_training(groks("dream", dream_every=100), groks("dream", dream_every=50))
    with pytest.raises(MechgrokError, match="lr"):
        check_same_training(groks("baseline"), groks("baseline", lr=1e-3))
    with pytest.raises(MechgrokError, match="not nested"):
        check_same_training(groks("baseline", eval_every=100), groks("baseline", eval_every=30))
