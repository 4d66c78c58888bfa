"""The report (REPORT.md, report.html, Findings, the tables it reads and writes) and the figures, on synthetic
run files whose answer is known; the claims' rules themselves are tested in test_audit.py."""

import json
import math
import os
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

from conftest import ROOT
from synth import synth_grid, synth_run
from mechgrok import audit, figures, report, runstore, stats
from mechgrok.results import (COLUMNS, carry, collect, compute_bounds_text, curve_of, finished, has_file, read_csv,
                             read_curves, seed_ranges, write_csv)


def _png_size(path) -> tuple[int, int]:
    """Width and height in pixels, from the PNG header."""
    head = path.read_bytes()[:24]
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_report_and_figures_from_run_files(tmp_path):
    runs = synth_grid(tmp_path / "runs", {"baseline": 8000, "dream": 2000, "control": 8000}, range(4))
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "mechgrok.report", str(runs), "--out", str(out)], capture_output=True,
                       text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert r.returncode == 0, r.stderr
    text = (out / "REPORT.md").read_text()
    for cid in audit.CLAIMS:
        assert f"| {cid} |" in text
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html
    # each figure is followed by its caption, in italics
    assert "![km_hard](figures/km_hard.png)\n\n*Kaplan-Meier estimate of the fraction of runs not yet grokked" in text
    assert "<p><i>Kaplan-Meier estimate of the fraction of runs not yet grokked, <code>hard</code>;" in html
    assert len(read_csv(out / "runs.csv")) == 12
    # a figure's plotted numbers equal the statistics table
    rows, _ = collect([runs])
    _, medians = figures.kaplan_meier(rows, "hard", tmp_path / "figs")
    table = {ln["arm"]: ln for ln in stats.table(rows)}
    for arm, m in medians.items():
        assert m == table[arm]["median"]
    _, plotted = figures.speedup(rows, tmp_path / "figs")
    assert plotted[("hard", "dream")]["ratio"] == pytest.approx(table["dream"]["speedup"])
    assert (tmp_path / "figs" / "km_hard.pdf").stat().st_size > 1000
    # the learning-curve caption promises replay ticks only where an arm drawn replays
    caps, caps_base = {}, {}
    figures.make_all(rows, tmp_path / "all", captions=caps)
    figures.make_all([r for r in rows if r["arm"] == "baseline"], tmp_path / "base", captions=caps_base)
    assert "accuracy; ticks mark replay events; dotted line" in caps["curves_hard"]
    assert "accuracy; no ticks: no arm drawn here replays; dotted line" in caps_base["curves_hard"]
    # a long reading name widens the speed-up figure instead of squeezing its plotting area to a sliver
    # (matplotlib warns when tight_layout cannot make room for the row labels)
    long = "hard@split=random,train_fraction=0.3,lr=0.001,weight_decay=1.0,steps=20000"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # tight_layout's "not applied" is a UserWarning
        figures.speedup([{**r, "variant": long} for r in rows], tmp_path / "long")
    width = {d: _png_size(tmp_path / d / "speedup.png")[0] for d in ("figs", "long")}
    assert width["long"] > width["figs"] + 300 * 2  # 300 dpi: the longer labels add over 2 inches


def test_an_unbounded_speedup_interval_is_drawn_open_not_hidden(tmp_path):
    """Where some bootstrap resamples have no median within the budget, the interval runs to 0 or
    infinity. It used to be left out, leaving a bare point that looked precise; it is drawn to the
    axis edge instead, and a bounded interval is drawn between its ends."""
    def row(variant, arm, seed, grok):
        return {"variant": variant, "arm": arm, "seed": seed, "finished": True, "budget": 15000,
                "grokked": grok is not None, "time_to_grok": grok or 15000, "peak_test_acc": 0.5}
    # half the runs of each arm never grok: a resample's median is often beyond the budget
    rows = [row("medium", arm, s, g) for arm, times in (("baseline", (4200, 4000, 12600, None, None)),
                                                       ("dream", (4200, 11800, 12400, 4000, None)))
            for s, g in enumerate(times)]
    rows += [row("calib", arm, s, t + 200 * s) for arm, t in (("baseline", 6000), ("dream", 5000)) for s in range(8)]
    table = {(ln["variant"], ln["arm"]): ln for ln in stats.table(rows)}
    _, plotted = figures.speedup(rows, tmp_path)
    med = plotted[("medium", "dream")]
    assert (med["lo"], med["hi"]) == (table[("medium", "dream")]["speedup_lo"], table[("medium", "dream")]["speedup_hi"])
    assert med["lo"] == 0 and math.isinf(med["hi"]) and med["open"] == "both"
    assert med["drawn"] is not None and med["drawn"][0] < 0.25 and med["drawn"][1] > 16  # to both axis edges
    cal = plotted[("calib", "dream")]
    assert cal["open"] == "" and cal["drawn"] == (cal["lo"], cal["hi"]) and 0 < cal["lo"] < cal["ratio"] < cal["hi"]


def _drawn_figure(monkeypatch, draw, *args):
    """The figure that ``draw(*args)`` saves (also written to disk as usual), drawn, so its legend has a place."""
    saved = []
    real_save = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, out, name: saved.append(fig) or real_save(fig, out, name))
    draw(*args)
    saved[0].canvas.draw()
    return saved[0]


def _vertices_under_legend(ax) -> list[str]:
    """Labels of the lines in ``ax`` (figure drawn) with a vertex inside the box of its legend."""
    box = ax.get_legend().get_window_extent()
    under = []
    for line in ax.get_lines():
        pts = ax.transData.transform(line.get_xydata())
        if ((pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)).any():
            under.append(line.get_label())
    return under


def test_the_kaplan_meier_legend_keeps_clear_of_the_curves(tmp_path, monkeypatch):
    """Every run groks between steps 3000 and 10000 of a 20000-step budget, so the curves cross the
    lower left corner, where the legend used to sit over them; the legend goes where no curve is."""
    def row(arm, seed, grok):
        return {"variant": "cal", "arm": arm, "seed": seed, "finished": True, "budget": 20000, "grokked": True,
                "time_to_grok": grok, "peak_test_acc": 1.0}
    rows = [row(arm, s, 3000 + 200 * s + off) for arm, off in (("baseline", 0), ("dream", 400), ("control", 200))
            for s in range(35)]
    ax = _drawn_figure(monkeypatch, figures.kaplan_meier, rows, "cal", tmp_path).axes[0]
    assert not _vertices_under_legend(ax)


def test_the_fourier_line_style_key_keeps_clear_of_the_curves(tmp_path, monkeypatch):
    """With 90 runs whose restricted, logit and excluded losses fill the loss panel from top to bottom
    and left to right, no place inside it is free: the line-style key goes beside the panel, where it
    hides no curve (it sat over the calibration reading's late runs)."""
    rows_items = []
    steps = np.arange(0, 16000 + 1, 200)
    for i in range(90):
        drop = 200 * i  # the step where this run's restricted losses fall from 5 to 1e-3 nats
        fall = 1 / (1 + np.exp(-(steps - drop) / 300))
        arrays = {"step": steps, "top_share": 0.1 + 0.8 * fall, "restricted_loss": 5.0 * 1e-3 ** fall / 5 ** fall,
                  "excluded_loss": 1.0 + 15 * fall, "logit_restricted_loss": 4.0 * 1e-3 ** fall / 4 ** fall}
        rows_items.append(({"arm": ("baseline", "dream", "control")[i % 3], "seed": i, "variant": "cal"}, arrays, None))
    ax = _drawn_figure(monkeypatch, figures.fourier_metrics, rows_items, "cal", tmp_path).axes[1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["restricted", "excluded", "restricted, logit keys"]
    assert not _vertices_under_legend(ax)


def test_runs_whose_files_are_gone_are_carried_from_the_earlier_table(tmp_path, capsys):
    """A fresh machine without the run files regenerates the same table-based verdicts from the committed
    results table; a run file that is here replaces its table row; the learning curves of runs without
    files come from the curves table beside it, and without one are not drawn (a stale figure is removed)."""
    runs = synth_grid(tmp_path / "runs", {"baseline": 8000, "dream": 2000, "control": 8000}, range(6))
    synth_run(runs / "rnd.h5", "dream", 0, 4000, split="random")  # a second reading, kept as a file
    out, figs = tmp_path / "out", tmp_path / "figs"
    _, first = report.build([runs], out, figures_dir=figs)
    first_dream1 = [r["time_to_grok"] for r in read_csv(out / "runs.csv") if r["arm"] == "dream" and r["seed"] == 1
                    and r["variant"] == "hard"][0]
    first = {v.id: v for v in first}
    assert (figs / "curves_hard.png").exists()
    # the curves table beside runs.csv holds each run's learning curve, to 4 digits
    curves_text, saved = (out / "curves.csv").read_text(), read_curves(out / "curves.csv")
    assert len(saved) == 19
    for row in collect([runs])[0]:
        c = curve_of(row["path"])
        assert (saved[row["config_hash"]]["step"] == c["step"]).all()
        assert (saved[row["config_hash"]]["replay_steps"] == c["replay_steps"]).all()
        np.testing.assert_allclose(saved[row["config_hash"]]["test_acc"], c["test_acc"], rtol=1e-3)
    _, drawn_from_files = figures.learning_curves(collect([runs])[0], "hard", tmp_path / "f1")
    for f in runs.glob("*.h5"):
        if f.name != "rnd.h5":
            f.unlink()
    (tmp_path / "runs.csv").write_text((out / "runs.csv").read_text())
    _, again = report.build([runs], out, figures_dir=figs, table=tmp_path / "runs.csv")
    again = {v.id: v for v in again}
    for cid in ("C3", "C5", "C9", "C10", "C11", "C12"):
        assert (again[cid].verdict, again[cid].effect, again[cid].n) == \
            (first[cid].verdict, first[cid].effect, first[cid].n), cid
    assert first["C5"].verdict != "no runs" and again["C5"].n == 6  # replay-event effects kept in the table
    assert again["C6"].notes == ["needs: 12 runs trained again (their files are not on this machine; rows "
                                 "carried from the results table)"]
    text = (out / "REPORT.md").read_text()
    # the power section says that what C6 lacks is measurements, not seeds
    assert ("- **C6** (`stated`, inconclusive at n = 0): what it lacks is not seeds but measurements of the runs "
            "it has; needs: 12 runs trained again") in text
    assert "18 of these rows come from the results table" in text
    assert "0 of the carried runs in use have series there, and 1 finished runs have their files here" in text
    assert len(read_csv(out / "runs.csv")) == 19  # the carried rows stay in the new table
    assert not (figs / "curves_hard.png").exists() and (figs / "km_hard.png").exists()
    assert (figs / "curves_hard_split-random.png").exists()
    # with the curves table beside the results table, the carried runs keep their learning curves
    (tmp_path / "curves.csv").write_text(curves_text)
    report.build([runs], out, figures_dir=figs, table=tmp_path / "runs.csv")
    assert (figs / "curves_hard.png").exists() and len(read_curves(out / "curves.csv")) == 19
    carried, _ = carry(collect([runs])[0], read_csv(tmp_path / "runs.csv"), read_curves(tmp_path / "curves.csv"))
    _, drawn_carried = figures.learning_curves(carried, "hard", tmp_path / "f2")
    assert drawn_carried.keys() == drawn_from_files.keys()
    for key, (grid, med) in drawn_from_files.items():
        assert (drawn_carried[key][0] == grid).all()
        np.testing.assert_allclose(drawn_carried[key][1], med, rtol=1e-3)
    # the statistics command line carries them the same way
    assert stats.main([str(runs), "--table", str(tmp_path / "runs.csv")]) == 0
    assert "18 finished rows whose files are not here" in capsys.readouterr().out
    # ... and so does the figures command line (curves from the curves table beside it)
    assert figures.main([str(runs), "--table", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "f3")]) == 0
    assert (tmp_path / "f3" / "curves_hard.png").exists() and (tmp_path / "f3" / "km_hard.png").exists()
    # a table written before event effects were measured: C5 has no runs to judge, and says what it needs
    old = read_csv(tmp_path / "runs.csv")
    for r in old:
        r["event_drop"] = r["event_test_change"] = math.nan
    write_csv(old, tmp_path / "old" / "runs.csv")
    no_fx = {v.id: v for v in report.build([runs], tmp_path / "old", figures=False,
                                           table=tmp_path / "old" / "runs.csv")[1]}["C5"]
    assert no_fx.verdict == "inconclusive at n = 0"
    assert ("for comparison, the drop at control (random replay) events: not measured (none of the 6 control runs "
            "has event effects in its row)") in no_fx.notes
    assert no_fx.notes[-1] == ("needs: 12 runs trained again (their files are not on this machine; rows carried "
                               "from the results table)")
    # without the table, only the file that is here counts
    _, alone = report.build([runs], tmp_path / "alone", figures=False)
    assert {v.id: v for v in alone}["C3"].verdict == "no runs"
    # a run file that is here replaces the table row of the same run (same config hash)
    synth_run(runs / "d0.h5", "dream", 0, 6000)
    rows, n = carry(collect([runs])[0], read_csv(tmp_path / "runs.csv"))
    dream0 = [r for r in rows if r["arm"] == "dream" and r["seed"] == 0 and r["variant"] == "hard"]
    assert n == 17 and len(dream0) == 1 and dream0[0]["time_to_grok"] == 6000
    # each figure's caption names the runs it draws, and which runs a learning-curve figure leaves out
    caps: dict = {}
    figures.make_all(rows, tmp_path / "f4", captions=caps)
    assert caps["curves_hard"].endswith("Drawn from 1 of its 18 finished runs: dream seed 0 (30000 steps); the other "
                                        "17 are rows carried from the results table without a learning curve.")
    assert caps["km_hard"].endswith("18 runs: baseline seeds 0-5 (30000 steps); dream seeds 0-5 (30000 steps); "
                                    "control seeds 0-5 (30000 steps).")
    assert caps["curves_hard_split-random"].endswith("Drawn from 1 of its 1 finished runs: dream seed 0 (30000 steps).")
    # ... once it has finished: while a run is trained again, its table row stays
    synth_run(runs / "d1.h5", "dream", 1, 6000)
    with h5py.File(runs / "d1.h5", "r+") as f:
        f.attrs["status"] = "running"
    rows, n = carry(collect([runs])[0], read_csv(tmp_path / "runs.csv"))
    dream1 = [r for r in finished(rows) if r["arm"] == "dream" and r["seed"] == 1 and r["variant"] == "hard"]
    assert n == 17 and len(dream1) == 1 and dream1[0]["time_to_grok"] == first_dream1 and not has_file(dream1[0])


def test_report_table_bad_input(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "runs.csv").write_text(",".join(COLUMNS) + "\n")
    (tmp_path / "t" / "curves.csv").write_text("config_hash,step\nabc,1 2\n")  # a curves table cut short
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "runs.csv").write_text(",".join(COLUMNS) + "\n")
    (tmp_path / "u" / "analyses.csv").write_text("config_hash,analysis,part,key,dtype,shape,values\n"
                                                 "abc,norms,array,total,f,2x2,1 2 3\n")  # a shape the values miss
    for extra, says in ((["--table", str(tmp_path / "bad.csv")], "not a readable results table"),
                        (["--table", str(tmp_path / "missing.csv")], "no such results table"),
                        (["--table", str(tmp_path / "t" / "runs.csv")], "not a readable curves table"),
                        (["--table", str(tmp_path / "u" / "runs.csv")], "not a readable analyses table")):
        r = subprocess.run([sys.executable, "-m", "mechgrok.report", str(tmp_path), "--out", str(tmp_path / "o"),
                            "--no-figures", *extra], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert says in r.stderr and not (tmp_path / "o" / "REPORT.md").exists()


def test_bad_input(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mechgrok.report", str(tmp_path / "none")], capture_output=True,
                       text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_one_seed_run_with_two_budgets_counts_once(tmp_path):
    """The same seed cut at 3000 steps and run to 30000 is one observation: the longer one."""
    synth_run(tmp_path / "short.h5", "dream", 0, None, budget=3000)
    synth_run(tmp_path / "long.h5", "dream", 0, 12000)
    synth_run(tmp_path / "other.h5", "dream", 1, None, budget=3000)
    from mechgrok.results import finished

    rows, _ = collect([tmp_path])
    assert len(rows) == 3 and {r["variant"] for r in rows} == {"hard"}  # the budget is not part of the reading
    kept = finished(rows)
    assert [(r["seed"], r["budget"], r["grokked"]) for r in kept] == [(0, 30000, True), (1, 3000, False)]


def test_calibration_runs_enter_no_verdict(tmp_path):
    """A run that changes a stated setting (here weight decay and coverage) is listed as a calibration,
    not audited as a reading: the grokking baseline must not make C3's baseline look grokked."""
    for s in range(5):
        synth_run(tmp_path / f"d{s}.h5", "dream", s, None, budget=3000)
        synth_run(tmp_path / f"b{s}.h5", "baseline", s, None, budget=3000)
    cal_settings = dict(budget=20000, split="random", train_fraction=0.3, weight_decay=1.0)
    synth_run(tmp_path / "cal.h5", "baseline", 42, 4000, **cal_settings)
    synth_run(tmp_path / "cal-d.h5", "dream", 42, 3000, **cal_settings)
    synth_run(tmp_path / "rand.h5", "baseline", 42, None, budget=3000, split="random")
    rows, _ = collect([tmp_path])
    assert audit.readings(rows) == ["", "split=random"]
    # a grokked run trains on for stop_after_grok steps after grokking
    assert [r["steps_trained"] for r in rows if r["path"].endswith("cal.h5")] == [4000 + 2000]
    out, verdicts = report.build([tmp_path], tmp_path / "rep", figures=False)
    text = out.read_text()
    cal = text.split("## Calibration runs", 1)[1].split("##", 1)[0]
    assert "weight_decay 0.15 -> 1.0" in cal and "train_fraction None -> 0.3" in cal and "| 4000 |" in cal
    # described, not tested: the pair of one seed, and why C8's timing ablation cannot run there
    assert "dream vs baseline, same seeds" in cal and "seed 42: dream 3000 vs baseline 4000 (1.33x)" in cal
    assert "at step 200, before the first replay event (step 400): dream-early" in cal
    assert "dream-plateau (replay from then on) would replay at every event the dream arm does" in cal
    c8 = " ".join({v.id: v for v in verdicts}["C8"].notes)
    assert "not run: no run of any arm in this reading grokked (0/10, longest 3000 steps)" in c8
    by_reading = text.split("## Does a verdict depend", 1)[1].split("\n## ", 1)[0]
    assert "| id | `stated` | `split=random` |" in by_reading and "weight_decay" not in by_reading
    details = by_reading.split("### Details under `split=random`", 1)[1]
    assert "- **C12** (" in details and "- **C3**" not in details  # claims with no runs there are left out
    assert "every test operand's embedding is trained, so none is novel" in details  # no unseen first operand there
    assert {v.id: v for v in verdicts}["C3"].verdict == "contradicted"
    block = report.findings(verdicts, rows, tmp_path)
    assert block.endswith("Calibration runs (they change stated settings and enter no verdict; REPORT.md, 'Calibration "
                          "runs'):\n- `hard@split=random,train_fraction=0.3,weight_decay=1.0`: baseline grokked 1/1 "
                          "(steps 4000); dream grokked 1/1 (steps 3000); the claims' rules on it (not verdicts): C3 "
                          "inconclusive at n = 1, C4 inconclusive at n = 1, C5 inconclusive at n = 1, C6 inconclusive at "
                          "n = 0, C10 inconclusive at n = 1, C12 contradicted, C13 inconclusive at n = 1.")
    # every claim's rule on the calibration's own runs, shown beside it, claims without runs left out
    rules = text.split("### The claims' rules on `hard@split=random,train_fraction=0.3,weight_decay=1.0` "
                       "(descriptive, no verdict)", 1)[1].split("\n## ", 1)[0]
    assert "| the rule gives |" in rules and "| 1 (42) | 1/1 grokked by 3000; speed-up 1.33; " in rules
    assert "| C1 |" not in rules and "| C9 |" not in rules and "- **C6** (inconclusive at n = 0): needs: " in rules
    assert "**inconclusive" not in rules  # not set in bold like a verdict
    # from MIN_SEEDS pairs on, the comparison's statistics are given too, still without a verdict
    assert "over these" not in cal
    for s in (0, 1):
        synth_run(tmp_path / f"cal{s}.h5", "baseline", s, 4000 + 400 * s, **cal_settings)
        synth_run(tmp_path / f"cal-d{s}.h5", "dream", s, 4200 - 1000 * s, **cal_settings)
    out, again = report.build([tmp_path], tmp_path / "rep", figures=False)
    cal = out.read_text().split("## Calibration runs", 1)[1].split("##", 1)[0]
    assert "dream vs baseline over these 3 seeds (the verdict rules' statistics, descriptive here): speed-up " in cal
    assert "(ratio of Kaplan-Meier medians; the paper's hard-regime steps give 3.90x (baseline 7800, dream 2000)), " \
           "log-rank p " in cal
    assert "dream faster in 2, slower in 1 of 3 seeds (two-sided sign test on the 3 that differ, paired by seed: " \
           "p 1)." in cal
    # each seed's own ratio (4000/3000, 4000/4200, 4400/3200), averaged on the log scale
    g = (4000 / 3000 * 4000 / 4200 * 4400 / 3200) ** (1 / 3)
    assert f"; per-seed ratio baseline / dream, geometric mean over seeds: {audit.fmt(g)} [" in cal
    assert "vs control" not in cal  # no control run in this variant yet
    assert [v.verdict for v in again] == [v.verdict for v in verdicts]
    block = report.findings(again, collect([tmp_path])[0], tmp_path).split("Calibration runs", 1)[1]
    assert "baseline grokked 3/3 (steps 4000, 4000, 4400); dream grokked 3/3 (steps 3000, 3200, 4200); dream vs " \
           "baseline, same seeds: speed-up " in block
    assert "dream faster in 2, slower in 1 of 3 seeds (two-sided sign test on the 3 that differ, paired by seed: p 1); the claims' rules on it (not verdicts): C3 " in block
    # with a control arm, it is described against the baseline and the dream arm against it (C9's question)
    for s, grok in ((0, 4400), (1, None), (42, 4000)):
        synth_run(tmp_path / f"cal-c{s}.h5", "control", s, grok, **cal_settings)
    for s in (0, 1):  # trained on a lent GPU, their pairs on the CPU
        with runstore.RunWriter(tmp_path / f"cal-c{s}.h5") as w:
            w.set_attrs(device="cuda")
    out, third = report.build([tmp_path], tmp_path / "rep", figures=False)
    cal = out.read_text().split("## Calibration runs", 1)[1].split("##", 1)[0]
    assert "- `hard@split=random,train_fraction=0.3,weight_decay=1.0`: dream vs control, same seeds (time to grok at " \
           "the pair's common horizon; in brackets control / dream, above 1 where dream grokked first): seed 0: dream " \
           "4200 vs control 4400 (1.05x); seed 1: dream 3200 vs control not grokked by 20000 (6.25x); seed 42: dream " \
           "3000 vs control 4000 (1.33x)." in cal
    assert "seed 1: control not grokked by 20000 vs baseline 4400 (0.22x)" in cal
    # one row per arm (each run's own values are in runs.csv): seed 1's control run never grokked
    # replay updates: 2 per event every 400 steps until the run stopped (2000 steps after grokking, or its budget)
    assert "| control | 3 (0, 1, 42) | cuda: 2, synthetic: 1 | 2/3 | 4000 (4000-4400) | 0.02 | 1.000 | 200: 3 | " \
           "32 (30-100) |" in cal
    assert "| dream | 3 (0, 1, 42) | synthetic: 3 | 3/3 | 3200 (3000-4200) | 0.99 | 1.000 | 200: 3 | 26 (24-30) |" in cal
    assert "| baseline | 3 (0, 1, 42) | synthetic: 3 | 3/3 | 4000 (4000-4400) | 0.99 | 1.000 | 200: 3 | 0 |" in cal
    assert cal.count("| `hard@split=random,train_fraction=0.3,weight_decay=1.0` |") == 3
    assert "(0.22x); seed 42: control 4000 vs baseline 4000 (1.00x). Pairs trained on two devices (seeds 0, 1: " \
           "control on cuda, baseline on synthetic): both runs of a seed start from the same weights" in cal
    assert "(1.33x). Pairs trained on two devices (seeds 0, 1: dream on synthetic, control on cuda)" in cal
    assert cal.count("Pairs trained on two devices") == 2  # not for dream vs baseline, all on one device
    assert "the paper's hard-regime steps give 1.05x (baseline 7800, control 7400)), log-rank p " in cal
    assert "the paper's hard-regime steps give 3.70x (control 7400, dream 2000)), log-rank p " in cal
    assert "dream faster in 3, slower in 0 of 3 seeds (two-sided sign test on the 3 that differ, paired by seed: " \
           "p 0.25)." in cal
    assert "control faster in 0, slower in 2 of 3 seeds (two-sided sign test on the 2 that differ, paired by seed: " \
           "p 0.5)." in cal
    # seed 1's control run never grokked: its ratio is unknown, and no seed is dropped to get one
    assert "; per-seed ratio n/a (1 seed with a run that never grokked); control faster in 0, slower in 2" in cal
    assert cal.count("per-seed ratio n/a (1 seed with a run that never grokked)") == 2  # dream vs control too
    assert [v.verdict for v in third] == [v.verdict for v in verdicts]
    block = report.findings(third, collect([tmp_path])[0], tmp_path).split("Calibration runs", 1)[1]
    assert "control grokked 2/3 (steps 4000, 4400)" in block and "; dream vs control, same seeds: speed-up " in block
    rules = out.read_text().split("### The claims' rules on", 1)[1].split("\n## ", 1)[0]
    assert "| C9 | " in rules and "| 3 (0, 1, 42) |" in rules  # with a control arm, C9's rule has runs too


def test_c8_timing_arms_run_only_as_a_calibration_are_pointed_to_not_audited(tmp_path):
    """C8's timing arms trained where a stated setting is changed (here the replay interval) give no
    C8 verdict: the verdict stays 'no runs', and its notes name the calibration that holds them; the
    calibration's own rule (descriptive) compares them, and its table has a row per timing arm (the
    replay-update column is asserted in test_calibration_runs_enter_no_verdict: synthetic timing arms
    do not replay)."""
    cal = dict(budget=20000, split="random", train_fraction=0.3, dream_every=50, eval_every=50)
    for s, (b, e, p) in enumerate(((4000, 4400, 3600), (5000, 5200, 4000), (3000, 3000, 3400))):
        for arm, grok in (("baseline", b), ("dream-early", e), ("dream-plateau", p)):
            synth_run(tmp_path / f"{arm}{s}.h5", arm, s, grok, **cal)
    rows, _ = collect([tmp_path])
    variant = "hard@split=random,train_fraction=0.3,eval_every=50,dream_every=50"
    assert audit.readings(rows) == [] and {r["variant"] for r in rows} == {variant}
    c8 = {v.id: v for v in audit.Audit(rows).all()}["C8"]
    assert c8.verdict == "no runs" and c8.notes[-1] == (
        f"run where stated settings are changed, a calibration that enters no verdict: `{variant}` (dream-early "
        "seeds 0-2, dream-plateau seeds 0-2); the claim's rule on it is in REPORT.md, 'Calibration runs'")
    rule = {v.id: v for v in audit.calibration_rules(rows, variant)}["C8"]
    assert rule.n == 3 and rule.verdict != "no runs"
    text = report._calibration_section(rows)
    assert "eval_every 200 -> 50" in text and "dream_every 400 -> 50" in text
    assert "| dream-early | 3 (0-2) | synthetic: 3 | 3/3 | 4400 (3000-5200) |" in text


def test_calibration_table_counts_each_seed_once_and_the_runs_still_training(tmp_path, monkeypatch):
    """The calibration table has one row per arm: a seed run with two budgets is one run (the longer),
    a run still training is counted but not summarised, and consecutive seeds are written as a range."""
    cal_settings = dict(split="random", train_fraction=0.3, weight_decay=1.0)
    synth_run(tmp_path / "short.h5", "baseline", 0, None, budget=3000, **cal_settings)
    synth_run(tmp_path / "long.h5", "baseline", 0, 5000, budget=20000, **cal_settings)
    for s, grok in ((1, 4000), (2, None), (3, 6000), (7, 3000)):
        synth_run(tmp_path / f"b{s}.h5", "baseline", s, grok, budget=20000, **cal_settings)
    synth_run(tmp_path / "b9.h5", "baseline", 9, None, budget=20000, **cal_settings)
    with runstore.RunWriter(tmp_path / "b9.h5") as w:
        w.set_attrs(status="running")
    rows, _ = collect([tmp_path])
    text = report._calibration_section(rows)
    assert "- `hard@split=random,train_fraction=0.3,weight_decay=1.0` changes train_fraction None -> 0.3, " \
           "weight_decay 0.15 -> 1.0" in text
    # seeds 0-3 and 7 finished (seed 0 at its 20000-step budget, grokked at 5000; seed 2 never), seed 9 training;
    # the median of 3000, 4000, 5000, 6000 is the lower middle one, as the Kaplan-Meier median of those runs
    assert "| baseline | 6 (0-3, 7, 9) | synthetic: 6 | 4/5 (1 still training) | 4000 (3000-6000) | 0.02 | 1.000 | " \
           "200: 5 |" in text
    assert seed_ranges([42, 8, 0, 1, 2, 3, 7]) == "0-3, 7, 8, 42"
    # the README's Findings block lists an arm's grok steps up to FINDINGS_STEPS, then their median and range
    verdicts = audit.Audit(rows).all()
    assert "baseline grokked 4/5 (steps 3000, 4000, 5000, 6000)" in report.findings(verdicts, rows, tmp_path)
    monkeypatch.setattr(report, "FINDINGS_STEPS", 3)
    assert "baseline grokked 4/5 (median 4000, range 3000-6000)" in report.findings(verdicts, rows, tmp_path)


def test_findings_name_the_claims_whose_verdict_depends_on_the_reading(tmp_path):
    """Easy regime, stated split: no run of any arm groks by 600 (C1 contradicted); random split:
    every run groks at 200 (C1 supported). The Findings block names C1, and only C1."""
    for s in range(3):
        for arm in ("baseline", "dream", "control"):
            synth_run(tmp_path / f"{arm}{s}.h5", arm, s, None, budget=600, regime="easy")
            synth_run(tmp_path / f"r{arm}{s}.h5", arm, s, 200, budget=600, regime="easy", split="random")
    rows, _ = collect([tmp_path])
    audits = {r: audit.Audit(rows, r).all() for r in audit.readings(rows)}
    assert [a[0].verdict for a in audits.values()] == ["contradicted", "supported"]
    assert "same outcome (time-to-grok, or censoring step) in 3 of 3 seeds" in " ".join(audits[""][0].notes)
    assert "before the first replay event" not in " ".join(audits[""][0].notes)  # none grokked
    assert "3 of these seeds grokked in both arms before the first replay event" in \
        " ".join(audits["split=random"][0].notes)  # all grokked at 200: the support is by construction
    block = report.findings(audits[""], rows, tmp_path, audits)
    # the Findings line leaves out n/a parts, and says how many runs grokked where no speed-up exists
    assert "- **C1** contradicted: 0/9 runs grokked by 400; speed-up n/a (grokked: dream 0/3, baseline 0/3) (" in block
    v = audit.Verdict("C5", "t", "0", 3, "drop 0.2; speed-up n/a; rise 0.1", "[0.1, 0.3]; n/a; n/a", 0.5, "x")
    assert report._effect_text(v) == "drop 0.2 [0.1, 0.3]; rise 0.1"
    line = block.split("one reading supports and another contradicts: ", 1)[1]
    assert line.strip() == "C1 (`stated`: contradicted; `split=random`: supported)."
    assert "leaves inconclusive" not in block


def test_findings_name_the_claims_one_reading_decides_and_another_leaves_open(tmp_path):
    """Stated split: no run groks by 600 (C1 contradicted); random split: two seeds, too few for a
    verdict. The Findings block names C1 among the claims whose verdict depends on the reading."""
    for s in range(3):
        for arm in ("baseline", "dream", "control"):
            synth_run(tmp_path / f"{arm}{s}.h5", arm, s, None, budget=600, regime="easy")
            if s < 2:
                synth_run(tmp_path / f"r{arm}{s}.h5", arm, s, 200, budget=600, regime="easy", split="random")
    rows, _ = collect([tmp_path])
    audits = {r: audit.Audit(rows, r).all() for r in audit.readings(rows)}
    assert [a[0].verdict for a in audits.values()] == ["contradicted", "inconclusive at n = 2"]
    block = report.findings(audits[""], rows, tmp_path, audits)
    assert "one reading supports and another contradicts" not in block
    line = block.split("one reading decides and another leaves inconclusive: ", 1)[1].splitlines()[0]
    assert line == "C1 (`stated`: contradicted; `split=random`: inconclusive at n = 2)."


def test_the_report_and_findings_name_the_versions_that_made_them(tmp_path):
    """pyproject.toml gives lower bounds only, so the report names the installed version of every package
    its numbers and figures come from (matplotlib draws the figures: another version may differ in pixels)."""
    from importlib import metadata

    synth_run(tmp_path / "b0.h5", "baseline", 0, None)
    rows, _ = collect([tmp_path])
    head = report.findings(audit.Audit(rows, "").all(), rows, tmp_path).splitlines()[0]
    report.build([tmp_path], tmp_path / "out", figures=False)
    header = (tmp_path / "out" / "REPORT.md").read_text().splitlines()[2]
    for package in ("torch", "transformer-lens", "numpy", "scipy", "scikit-learn", "h5py", "matplotlib"):
        assert f"{package} {metadata.version(package)}" in head, (package, head)
        assert f"{package} {metadata.version(package)}" in header, (package, header)


def test_compute_is_bounded_by_each_seeds_longest_run_and_every_run(tmp_path):
    """A seed run at two budgets: the longer run, if extended from the shorter, carries the shorter
    run's time (the longest alone is the total); if trained separately, both count. The run file does
    not say which, so the report gives both totals as bounds."""
    synth_run(tmp_path / "short.h5", "baseline", 0, None, budget=6000)  # wall time 600 s
    synth_run(tmp_path / "long.h5", "baseline", 0, None, budget=12000)  # 1200 s
    rows, _ = collect([tmp_path])
    audits = {r: audit.Audit(rows, r).all() for r in audit.readings(rows)}
    head = report.findings(audits[""], rows, tmp_path, audits).splitlines()[0]
    assert ("training: 0.3 process-hours on synthetic (each seed's longest run) to 0.5 process-hours on "
            "synthetic (every finished budget)) by") in head, head
    report.build([tmp_path], tmp_path / "out", figures=False)
    text = (tmp_path / "out" / "REPORT.md").read_text()
    assert ("Compute in the finished runs: 0.3 process-hours on synthetic (each seed's longest run) to 0.5 "
            "process-hours on synthetic (every finished budget). The true total lies between") in text
    # one budget per seed: one number
    (tmp_path / "short.h5").unlink()
    rows, _ = collect([tmp_path])
    assert compute_bounds_text(rows) == "0.3 process-hours on synthetic"


def test_compute_is_counted_per_device_and_a_batched_run_pays_its_share(tmp_path):
    from mechgrok.results import compute_text

    rows = [{"device": "cpu", "wall_time_s": 3600.0, "batch_runs": 1},
            {"device": "cpu", "wall_time_s": 1800.0, "batch_runs": 1}] + \
        [{"device": "cuda", "wall_time_s": 720.0, "batch_runs": 10}] * 10
    assert compute_text(rows) == ("1.5 process-hours on cpu, 0.2 process-hours on cuda "
                                  "(a batched run is charged 1/R of its batch)")
    assert compute_text(rows[:2]) == "1.5 process-hours on cpu"
    # the GPU rate behind the power section's GPU cost comes from the benchmark file, or is absent
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"device_name": "GPU X", "arm": "dream", "rows": [
        {"runs": 1, "mode": "single", "run_steps_per_s": 100.0}, {"runs": 32, "mode": "vmap", "run_steps_per_s": 800.0}]}))
    rate, what = report._gpu_rate(bench)
    assert rate == 800.0 and "32 runs per batch (vmap) on GPU X" in what
    assert report._gpu_rate(tmp_path / "missing.json") is None


def test_cpu_cost_per_step_comes_from_runs_that_flushed_subnormals_where_there_are_any(tmp_path):
    def row(seconds, flushed, variant="easy", device="cpu"):
        return {"variant": variant, "device": device, "steps_trained": 1000, "wall_time_s": seconds,
                "batch_runs": 1, "denormals_flushed": flushed}

    kept = row(900.0, False)
    assert report._cpu_seconds_per_step([kept, row(300.0, True), row(1.0, True, device="cuda")], "easy") == (0.3, True)
    assert report._cpu_seconds_per_step([kept, row(100.0, True, "hard")], "easy") == (0.9, False)
    assert report._cpu_seconds_per_step([kept], "hard") is None
    assert report._cost("2 runs", 2, 1000, (0.3, True), None) == \
        "2 runs x 1000 steps x 300 ms / 2 workers = 0.1 h on this CPU"
    assert report._cost("2 runs", 2, 1000, (0.9, False), None) == \
        "2 runs x 1000 steps x 900 ms / 2 workers = 0.2 h on this CPU (an upper bound: measured on runs that kept " \
        "subnormal floats)"
    # the column comes from the run file's attribute; a table written before it existed reads "kept"
    path = synth_run(tmp_path / "run.h5", "baseline", 0, 2000)
    assert collect([path])[0][0]["denormals_flushed"] is False  # no attribute: trained before the flag
    with runstore.RunWriter(path) as w:
        w.set_attrs(denormals_flushed=True)
    write_csv(collect([path])[0], tmp_path / "new.csv")
    assert read_csv(tmp_path / "new.csv")[0]["denormals_flushed"] is True
    lines = (tmp_path / "new.csv").read_text().splitlines()
    drop = {lines[0].split(",").index(column) for column in ("denormals_flushed", "threads")}
    (tmp_path / "old.csv").write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i not in drop)
                                                 for line in lines) + "\n")
    old = read_csv(tmp_path / "old.csv")[0]
    assert old["denormals_flushed"] is False and old["threads"] == 0  # 0: unknown


def test_each_inconclusive_claim_says_what_more_seeds_can_do(tmp_path):
    """Seed 42 at the full budget and seeds 0-2 screened at 3000: no run of any arm groks. C4 (one
    full-budget dream run below 95%) needs 5 such runs for the sign test; C9 (no grokking in either
    arm) cannot be decided by more seeds at this budget, and the report says so."""
    for arm in ("baseline", "dream", "control"):
        synth_run(tmp_path / f"{arm}42.h5", arm, 42, None)
        for s in range(3):
            synth_run(tmp_path / f"{arm}{s}.h5", arm, s, None, budget=3000)
    rows, _ = collect([tmp_path])
    audits = {"": audit.Audit(rows).all()}
    assert {v.id: v.verdict for v in audits[""]}["C4"] == "inconclusive at n = 1"
    text = report._power_section(rows, audits)
    lines = {line.split("**")[1]: line for line in text.splitlines() if line.startswith("- **")}
    assert "(0/1); if the next ones do not either, 5 runs reject the claimed ~98% level" in lines["C4"]
    assert "4 more dream runs" in lines["C4"]
    # C9 claims no effect (control vs baseline): what it needs is equivalence, which no median can give
    assert lines["C9"].endswith("equivalence within 0.67-1.50 (table above): no pilot run grokked: neither arm has a "
                                "Kaplan-Meier median, so the speed-up has no interval and more seeds at this budget "
                                "cannot show equivalence (1 of 4 pilot runs ran all 30000 steps; the others stopped "
                                "at 3000).")
    assert set(lines) == {v.id for v in audits[""] if v.verdict.startswith("inconclusive")}


def test_c1_says_when_no_number_of_seeds_can_decide_it(tmp_path):
    """Easy regime, random split, 600 steps, 13 seeds with the same outcome in every arm: 6 grok at
    200, 2 at 400, 5 never. Part (a) can no longer be supported (runs missed step 400), and the
    equivalence of part (b) is out of reach: the survival curve passes one half next to an
    evaluation step (7/13 = 0.538 at step 200), so resampled medians fall on 200 or 400."""
    outcomes = [200] * 6 + [400] * 2 + [None] * 5
    for s, t in enumerate(outcomes):
        for arm in ("baseline", "dream", "control"):
            synth_run(tmp_path / f"{arm}{s}.h5", arm, s, t, budget=600, regime="easy", split="random")
    rows, _ = collect([tmp_path])
    audits = {"split=random": audit.Audit(rows, "split=random").all()}
    assert {v.id: v.verdict for v in audits["split=random"]}["C1"] == "inconclusive at n = 13"
    text = report._power_section(rows, audits)
    line = next(x for x in text.splitlines() if x.startswith("- **C1**"))
    assert ("(a) the pooled sign test is supported only when every run groks by step 400, and 15 of 39 did not, so "
            "no number of seeds can make C1 supported; more seeds contradict it only if fewer than half of the runs "
            "grok by then (24/39 do now)") in line
    assert "(b) `easy@split=random`, equivalence within 0.67-1.50 (table above): power 0.0" in line and "even at n = 200 per arm" in line
    assert "0.538 at step 200" in line and "falls on step 200 or 400" in line and "evaluation interval" in line
    row = next(x for x in text.splitlines() if x.startswith("| easy@split=random |"))
    assert "| equivalence within 0.67-1.50 | 13 | - |" in row


def test_seed42_analysed_at_a_shorter_budget_is_shown_beside_its_full_budget_run(tmp_path):
    """Seed 42's full-budget run without analyses (carried from the table) and the same seed trained
    again to 12000 steps and analysed: the seed-42 section keeps the full-budget run's numbers and
    points to the analysed one, which the mechanistic table shows with its budget."""
    synth_run(tmp_path / "b42.h5", "baseline", 42, None)
    synth_run(tmp_path / "b42_12000.h5", "baseline", 42, None, budget=12000)
    rows, _ = collect([tmp_path])
    assert "analysed runs" not in report._seed42_section(rows)
    short = next(r for r in rows if r["budget"] == 12000)
    short["final_top_share"] = 0.625  # as the results table keeps an analysis summary
    section = report._seed42_section(rows)
    assert "| baseline | 7800 | not grokked by 30000 |" in section
    assert "Seed 42's analysed runs are in the mechanistic table below: baseline (12000 steps)." in section
    table = report._mechanistic_section(rows).splitlines()
    assert [ln for ln in table if ln.startswith("| hard")] == \
        ["| hard | baseline | 42 | 12000 | - | - | 0.625 | - | - | - | - | - | - | - | - |"]


def test_mechanistic_table_summarises_an_arm_with_many_seeds_in_one_row(tmp_path):
    """Up to MECH_ROWS_PER_ARM analysed seeds an arm has one row per run; beyond, one row of medians,
    saying over how many runs each is taken: an emergence step over the runs where it happened."""
    n = report.MECH_ROWS_PER_ARM + 2
    for s in range(n):
        synth_run(tmp_path / f"d{s}.h5", "dream", s, None, budget=600)
    for s in range(3):
        synth_run(tmp_path / f"b{s}.h5", "baseline", s, None, budget=600)
    rows, _ = collect([tmp_path])
    for r in rows:
        r["final_top_share"] = 0.5 + r["seed"] / 100
    dream = sorted((r for r in rows if r["arm"] == "dream"), key=lambda r: r["seed"])
    for r in dream:  # emerged at 200 * (seed + 1) in seeds 0-6, never in 7; seeds 8, 9 analysed before it existed
        r["emergence_step"] = [200.0 * (r["seed"] + 1), -1.0, math.nan][(r["seed"] >= 7) + (r["seed"] >= 8)]
        r["emergence_event_distance"] = 10.0 * r["seed"] if r["seed"] < 7 else -1.0
    base0 = next(r for r in rows if r["arm"] == "baseline" and r["seed"] == 0)
    base0.update(emergence_step=400.0, emergence_event_distance=-1.0)  # no replay event to be near (-1)
    table = report._mechanistic_section(rows).splitlines()
    assert [ln for ln in table if ln.startswith("| hard | baseline")] == \
        [f"| hard | baseline | {s} | 600 | {'400' if s == 0 else '-'} | - | {audit.fmt(0.5 + s / 100)} | - | - | - | - | "
         "- | - | - | - |" for s in range(3)]
    # emergence: median of 200..1400 over the 7 runs where it happened, of the 8 that have it; its distance
    # to an event over the same 7; the top-5 share's median over all 10 runs
    assert [ln for ln in table if ln.startswith("| hard | dream")] == \
        [f"| hard | dream | {n} runs (0-{n - 1}) | 600 | 800 (8/{n}, never in 1) | 30 | 0.545 | - | - | - | - | - | - | "
         "- | - |"]
    assert f"An arm with more than {report.MECH_ROWS_PER_ARM} analysed seeds is one row" in "\n".join(table)


def test_curve_legend_says_where_shorter_runs_leave_the_median():
    grid = [0, 1000, 2000, 3000, 15000]
    assert figures._runs_label("dream", grid, [3, 3, 3, 3, 3]) == "dream (n=3)"
    assert figures._runs_label("dream", grid, [3, 3, 3, 1, 1]) == "dream (n=3 to step 2000, 1 at the end)"


def _analysed_items(seeds, arms=("baseline", "dream", "control"), p=97):
    """(row, arrays, attrs) for every analysis figure, with planted series: one run per arm and seed."""
    steps = np.arange(0, 5001, 500)
    t = np.linspace(-0.25, 1.25, 7)
    items = {"fourier": [], "norms": [], "landscape": [], "probes": []}
    for arm in arms:
        for s in seeds:
            row = {"variant": "hard", "arm": arm, "seed": s, "budget": 5000, "grokked": False, "time_to_grok": 5000}
            decay = np.exp(-steps / (2000 + 50 * s))
            items["fourier"].append((row, {"step": steps, "top_share": 1 - decay, "restricted_loss": 4 * decay + 1e-3,
                                           "excluded_loss": 1 + decay, "logit_restricted_loss": 3 * decay + 1e-3},
                                     {"p": p}))
            items["norms"].append((row, {"step": steps, "total": 30 + 10 * decay, "dist_init": 40 * (1 - decay)},
                                   {"p": p}))
            kinds = ["mem-alg" if s % 2 else "mem-final", "event"]
            items["landscape"].append((row, {"kind": np.array(kinds), "t": t, "train_loss": np.vstack([1 + t * t] * 2),
                                             "test_loss": np.vstack([4 - t] * 2)}, {"p": p}))
            items["probes"].append((row, {"step": steps, "acc_sum": np.stack([1 - decay, 1 - decay / 2], axis=1)},
                                    {"p": p}))
    return items


def test_spectrum_heatmaps_are_drawn_for_a_few_seeds_shared_by_the_arms(tmp_path):
    """A spectrum heatmap per run would be one per seed and arm (dozens per reading): by default the same
    SPECTRA_PER_ARM seeds in every arm, seed 42 first; an arm short of shared seeds adds its own lowest."""
    items = _analysed_items([3, 0, 42, 1, 2], arms=("baseline", "dream"))["fourier"]
    items = [it for it in items if (it[0]["arm"], it[0]["seed"]) != ("dream", 0)]  # dream seed 0 not analysed
    items += _analysed_items([7], arms=("control",))["fourier"]  # control shares no seed
    drawn = lambda chosen: sorted((r["arm"], r["seed"]) for r, _, _ in chosen)  # noqa: E731
    assert figures.SPECTRA_PER_ARM == 3
    assert drawn(figures.spectrum_items(items)) == [("baseline", 0), ("baseline", 1), ("baseline", 42),
                                                    ("control", 7), ("dream", 1), ("dream", 2), ("dream", 42)]
    assert len(figures.spectrum_items(items, None)) == len(items)
    # without control, seeds 42, 1 and 2 are analysed in both arms: both draw those
    both = [it for it in items if it[0]["arm"] != "control"]
    assert drawn(figures.spectrum_items(both)) == [("baseline", 1), ("baseline", 2), ("baseline", 42),
                                                   ("dream", 1), ("dream", 2), ("dream", 42)]
    # a variant is chosen on its own
    other = [({**r, "variant": "easy"}, a, at) for r, a, at in _analysed_items([5], arms=("baseline",))["fourier"]]
    assert drawn(figures.spectrum_items(both + other)) == sorted(drawn(figures.spectrum_items(both)) + [("baseline", 5)])
    # the CLI: 0 draws every run; a negative count is one line and exit 2
    r = subprocess.run([sys.executable, "-m", "mechgrok.figures", str(tmp_path), "--spectra-per-arm", "-1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--spectra-per-arm" in r.stderr


def test_analysis_figures_stay_readable_with_many_seeds(tmp_path):
    """A reading with 31 seeds per arm draws 93 lines per panel: the legend names the arms (with their run
    counts) and the line styles, not each run, so the figure keeps its journal size and tight_layout
    applies (it warns, and the legend grows past the plot, when every run has an entry)."""
    def sizes(items, out, variant="hard"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # tight_layout's "not applied" is a UserWarning
            paths = [figures.fourier_metrics(items["fourier"], variant, out)[0],
                     figures.norm_trajectories(items["norms"], variant, out)[0],
                     figures.interpolation(items["landscape"], variant, out)[0],
                     figures.probe_curves(items["probes"], variant, out)[0],
                     figures.logit_ratio(items["fourier"], variant, out)[0][0]]
        return {p.stem.split("_")[0]: _png_size(p) for p in paths}

    few, many = sizes(_analysed_items(range(3)), tmp_path / "few"), sizes(_analysed_items(range(31)), tmp_path / "many")
    for name, (_, h) in many.items():
        assert h <= 2.4 * 300 * 1.1, name  # 2.4 in at 300 dpi, plus what bbox_inches="tight" trims or adds
        assert abs(h - few[name][1]) <= 30, name  # as tall as with 3 seeds: no legend spilling below the plot
    # a long reading name goes on its own title line instead of widening a figure past its journal width
    long = sizes(_analysed_items(range(3)), tmp_path / "long", "hard@split=random,train_fraction=0.3,lr=0.001,weight_decay=1.0")
    for name, (w, _) in long.items():
        assert w <= few[name][0] + 30, name
    assert figures._title("hard", "weight norms") == "hard: weight norms"
    assert figures._title("hard@split=random,train_fraction=0.3,lr=0.001,weight_decay=1.0", "weight norms") == \
        "hard@split=random,train_fraction=0.3,lr=0.001,\nweight_decay=1.0: weight norms"
    # the legend itself: one entry per arm with its run count, then the line styles
    plt = figures._plt()
    fig, ax = plt.subplots()
    rows = [r for r, _, _ in _analysed_items(range(31))["landscape"]]
    figures._arm_legend(ax, rows, [("-", "train"), ("--", "test")], note=lambda arm: "15 never grokked: to final")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    assert labels == ["baseline (31 runs; 15 never grokked: to final)", "dream (31 runs; 15 never grokked: to final)",
                      "control (31 runs; 15 never grokked: to final)", "train", "test"]


def test_the_solutions_runs_reached_are_compared_same_seed_across_arms_and_across_seeds(tmp_path):
    """Runs that grokked, with planted final W_E spectra: the two arms of a seed share some key
    frequencies, two seeds of one arm none; a run that never grokked is left out."""
    p = 97
    keys = {("baseline", 0): (3, 7), ("dream", 0): (3, 8), ("baseline", 1): (11, 20), ("dream", 1): (11, 20),
            ("baseline", 2): (30, 31)}
    for (arm, seed) in keys:
        synth_run(tmp_path / f"{arm}{seed}.h5", arm, seed, 2000)
    synth_run(tmp_path / "dream2.h5", "dream", 2, None, budget=3000)
    rows, _ = collect([tmp_path])
    for r in rows:
        norms = np.zeros(48)
        norms[[k - 1 for k in keys.get((r["arm"], r["seed"]), (40, 41))]] = 1.0
        r.update(carried=True, analyses={"fourier": ({"step": np.array([0, 2000]), "we_norms": np.stack([norms, norms])},
                                                     {"p": p})})
    lines = "\n".join(report._solution_overlap(rows)).splitlines()
    table = [ln for ln in lines if ln.startswith("| hard")]
    # same seed: seed 0 shares {3} of {3, 7, 8}, seed 1 the whole set; seed 2's dream never grokked
    assert table == ["| hard | dream vs baseline, same seed | 2 | 2 | 0.667 (0.5-0.833) | 1/2 | 0/2 |",
                     "| hard | baseline, two seeds | 3 | 2 | 0 (0-0) | 0/3 | 3/3 |",
                     "| hard | dream, two seeds | 1 | 2 | 0 (0-0) | 0/1 | 1/1 |"]
    assert "descriptive, no verdict" in lines[1]
    assert report._solution_overlap([r for r in rows if not r["grokked"]]) == []
