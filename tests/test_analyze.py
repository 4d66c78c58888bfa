"""The analyses on real tiny runs, their storage in the run file, the CLI, and the probes."""

import math
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import ROOT, tiny
from mechgrok import analyze, runstore
from mechgrok.fourier import step_or_never
from mechgrok.errors import RunLockedError
from mechgrok.loop import train
from probes.linear import probe_accuracy, probe_r2
from test_loop import _contents, _same


def _analyze_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "mechgrok.analyze", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture()
def dream_copy(arm_runs, tmp_path):
    path = tmp_path / "dream.h5"
    shutil.copy(arm_runs["dream"], path)
    return path


def test_every_analysis_stores_results_and_leaves_training_data_alone(dream_copy, arm_runs, tmp_path):
    before = _contents(dream_copy)
    n_ckpt = len(analyze.RunView(dream_copy).checkpoints())
    doc = (ROOT / "docs" / "run-file.md").read_text().split("One group per analysis")[1].split("## Beside")[0]
    for name in analyze.ANALYSES:
        summary = analyze.analyse(name, dream_copy)
        arrays, attrs = runstore.read_analysis(dream_copy, name)
        assert attrs["complete"] and not attrs["partial"]
        if name in ("fourier", "norms"):
            assert len(arrays["step"]) == n_ckpt and summary["checkpoints_analysed"] == n_ckpt
        # docs/run-file.md names every dataset and attribute the group holds, in that group's rows
        rows = "\n".join(line for line in doc.splitlines() if line.startswith(f"| `{name}` |"))
        for key in [*arrays, *attrs]:
            common = key in ("complete", "partial", "last_step", "checkpoints_analysed")
            documented = re.sub(r"^(r2_(cos|sin))[0-9]+$", r"\1<k>", key)  # one probe per key frequency k
            assert f"`{documented}`" in (doc if common else rows), (name, key)
    after = {k: v for k, v in _contents(dream_copy).items() if not k.startswith("analysis/")}
    assert _same(before, after)
    # re-running replaces, not duplicates
    analyze.analyse("norms", dream_copy)
    with h5py.File(dream_copy, "r") as f:
        assert sorted(f["analysis"]) == sorted(analyze.ANALYSES)
    # the report's mechanistic table shows the stored values, the (a+b) probe last
    from mechgrok import report
    from mechgrok.results import collect

    section = report._mechanistic_section(collect([dream_copy])[0])
    row = section.splitlines()[-1].split(" | ")
    probe = runstore.read_analysis(dream_copy, "probes")[1]["final"]
    assert row[-1] == f"{probe['acc_sum'][-1]:.3g} |"
    assert row[3] == str(runstore.read_config(dream_copy).steps)  # the run's budget
    fourier = runstore.read_analysis(dream_copy, "fourier")[1]
    assert row[6] == f"{fourier['final_top_share']:.3g}"
    # emergence and its distance to an event: steps, or "never" and "-" (not the stored -1)
    never = fourier["emergence_step"] < 0
    assert row[4:6] == (["never", "-"] if never else
                        [str(fourier["emergence_step"]), str(fourier["emergence_event_distance"])])
    assert ("emergence never," in analyze._summary_line("fourier", dream_copy, fourier)) == never
    # the same read from the logits, beside it
    assert row[7] == step_or_never(fourier["logit_emergence_step"])
    assert row[8] == f"{fourier['final_logit_restricted_loss']:.3g}"
    section_never = report._mechanistic_section([{**r, "emergence_step": -1.0, "emergence_event_distance": -1.0}
                                                 for r in collect([dream_copy])[0]])
    assert section_never.splitlines()[-1].split(" | ")[4:6] == ["never", "-"]
    # the summaries live on in the results table once the run file is gone
    from mechgrok.results import read_csv, write_csv

    write_csv(collect([dream_copy])[0], dream_copy.with_suffix(".csv"))
    assert report._mechanistic_section(read_csv(dream_copy.with_suffix(".csv"))) == section
    # ... and so do the per-checkpoint series (the analyses table)
    _analysis_series_outlive_the_run_files(dream_copy, arm_runs["baseline"], tmp_path / "carry")


def test_fourier_and_norms_values_are_consistent(dream_copy):
    view = analyze.RunView(dream_copy)
    out, summary = analyze.fourier(view)
    assert out["we_norms"].shape == (len(out["step"]), 6)
    assert np.all(out["n_key"] >= 1) and np.all((out["top_share"] > 0) & (out["top_share"] <= 1))
    # the full loss over all pairs at the final checkpoint matches the metrics (same weights)
    m = runstore.read_table(dream_copy, "metrics")
    ntr, nte = len(view.train_idx), len(view.test_idx)
    full = (m["train_loss"][-1] * ntr + m["test_loss"][-1] * nte) / (ntr + nte)
    assert out["full_loss"][-1] == pytest.approx(full, rel=1e-4)
    assert out["full_train_loss"][-1] == pytest.approx(m["train_loss"][-1], rel=1e-4)
    # the logits' (a+b) spectrum: its key set, restricted loss and the summary agree with a direct computation
    from mechgrok import fourier as F

    view.load(runstore.list_checkpoints(dream_copy)[-1]["name"])
    logits, _ = view.forward([])
    lg = F.logit_spectrum(logits, 13)
    np.testing.assert_allclose(out["logit_norms"][-1], lg)
    keys = F.top_frequencies(lg)
    assert sorted(np.nonzero(out["logit_key_mask"][-1])[0] + 1) == sorted(keys) == sorted(
        summary["final_logit_key_frequencies"]) and len(keys) == 5
    assert out["logit_restricted_loss"][-1] == pytest.approx(
        F.restricted_and_excluded_loss(logits, 13, keys, view.train_idx)["restricted_loss"])
    assert summary["logit_emergence_step"] == F.emergence(out["step"], None, out["logit_restricted_loss"])
    nm, _ = analyze.norms(view)
    assert nm["dist_init"][0] == 0.0 and nm["dist_init"][-1] > 0
    np.testing.assert_allclose(nm["total"] ** 2, sum(nm[c] ** 2 for c in ("embed", "attention", "mlp", "unembed",
                                                                          "other")), rtol=1e-9)
    # displacement across the dream events is measured, and compared with an ordinary window
    assert len(nm["event_step"]) == 3 and np.all(nm["event_displacement"] > 0) and np.all(nm["window_steps"] == 100)


def test_landscape_pairs_and_named_pair(dream_copy):
    view = analyze.RunView(dream_copy)
    out, summary = analyze.landscape(view, pairs=["0:300"], sharpness=False, grid=[0.0, 0.5, 1.0])
    kinds = [k.decode() for k in out["kind"]]
    # memorised at step 100, never grokked: memorised -> final, then the three events, then the named pair
    assert kinds == ["mem-final", "event", "event", "event", "named"]
    assert [a.decode() for a in out["a"]][0] == "0000100_end" and [b.decode() for b in out["b"]][0] == "0000300_end"
    assert out["train_loss"].shape == (5, 3)
    with pytest.raises(Exception, match="no complete checkpoint"):
        analyze.landscape(view, pairs=["0:12345"], sharpness=False, grid=[0.0, 1.0])


def test_probes_find_a_planted_feature_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    p = 13
    a, b = np.divmod(np.arange(p * p), p)
    X = np.eye(p)[a] @ rng.standard_normal((p, 32)) + 0.1 * rng.standard_normal((p * p, 32))
    assert probe_accuracy(X, a) > 0.95
    assert probe_accuracy(X, rng.permutation(a)) < 0.3  # chance is 1/13
    assert probe_accuracy(X, b) < 0.3  # b is not in X
    target = np.cos(2 * np.pi * 3 * a / p)
    assert probe_r2(X, target) > 0.95 and probe_r2(X, rng.permutation(target)) < 0.2


def test_probe_decodes_a_sum_coded_on_a_circle_as_a_grokked_model_codes_it():
    """(a + b) mod p carried by cos/sin of three frequencies (as in a grokked model): a linear rule
    (the sum of cos(2 pi k (s - c) / p) over k, largest at c = s) decodes every pair, so must the probe."""
    rng = np.random.default_rng(0)
    p = 31
    a, b = np.divmod(np.arange(p * p), p)
    s = (a + b) % p
    circle = np.concatenate([f(2 * np.pi * k * s[:, None] / p) for k in (1, 3, 5) for f in (np.cos, np.sin)], axis=1)
    X = circle @ rng.standard_normal((6, 32)) + 0.05 * rng.standard_normal((p * p, 32))
    assert probe_accuracy(X, s) > 0.95  # a one-vs-rest least-squares classifier scores about 0.8 here
    assert probe_accuracy(X, a) < 0.2  # a alone is not in X


def test_cli_bad_input_partial_runs_and_csv(arm_runs, tmp_path):
    good = tmp_path / "good.h5"
    shutil.copy(arm_runs["baseline"], good)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    r = _analyze_cli("norms", good, foreign, tmp_path / "missing", "--csv", tmp_path / "n.csv", "--quiet")
    assert r.returncode == 2
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("python -m mechgrok.analyze: error:") for e in errors)
    assert "Traceback" not in r.stderr
    assert str(good) in r.stdout  # the good run was still analysed
    assert runstore.read_analysis(good, "norms")[1]["complete"]
    assert (tmp_path / "n.csv").read_text().startswith("run,step,phase,total")
    # the analysis held the run's lock and let it go; the refused files got no lock file beside them
    assert not list(tmp_path.glob("*.lock"))
    # a run in use by another process (a training, or a second analysis) is refused, its file untouched
    before = good.read_bytes()
    with runstore.run_lock(good):
        with pytest.raises(RunLockedError, match="in use by another process"):
            analyze.analyse("fourier", good)
    assert good.read_bytes() == before
    # ... and while an analysis works, the run is in use: a training (or analysis) of it is refused
    refused = []

    def try_lock(label, i, n):
        with pytest.raises(RunLockedError):
            with runstore.run_lock(good):
                pass
        refused.append(i)

    analyze.analyse("norms", good, progress=try_lock)
    assert refused and not list(tmp_path.glob("*.lock"))
    # an interrupted run is analysed up to its last checkpoint and reported as partial
    partial = tmp_path / "partial.h5"

    class Stop(Exception):
        pass

    def stop(step, total, row):
        if step == 250:
            raise Stop

    with pytest.raises(Stop):
        train(tiny("dream"), partial, progress=stop)
    r = _analyze_cli("fourier", partial, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "partial" in r.stdout
    r = _analyze_cli("landscape", good, "--pair", "0:999", "--quiet")
    assert r.returncode == 2 and "no complete checkpoint '999'" in r.stderr
    r = _analyze_cli("wavelets", good)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = _analyze_cli("fourier", tmp_path / "nothing-here")
    assert r.returncode == 2 and "no such file or folder" in r.stderr


def _analysis_series_outlive_the_run_files(dream, baseline, tmp_path):
    """The analyses table (results/analyses.csv) carries what C6 and the analysis figures read from the
    files: with the files gone, the carried rows give the same C6 effect, the same series (to 4
    digits) and the same figures. ``dream`` holds every analysis; ``baseline`` is analysed here."""
    from mechgrok import audit, figures, report
    from mechgrok.results import (CARRIED_ANALYSES, EXACT_SERIES, SUMMARY_COLUMNS, analysed, analysis, carry,
                                  collect, read_analyses, read_csv, read_curves, write_analyses, write_csv,
                                  write_curves)

    runs = tmp_path / "runs"
    runs.mkdir(parents=True)
    shutil.move(dream, runs / "dream.h5")
    shutil.copy(baseline, runs / "baseline.h5")
    analyze.analyse("fourier", runs / "baseline.h5")
    rows = collect([runs])[0]
    for table, write in (("runs.csv", write_csv), ("curves.csv", write_curves), ("analyses.csv", write_analyses)):
        write(rows, tmp_path / table)
    # a seed's shorter run keeps its series in the table where a longer run of that seed, without them, is
    # finished too (each budget is written, not only the seed's longest)
    base = next(r for r in rows if r["arm"] == "baseline")
    longer = {**base, "budget": 2 * base["budget"], "config_hash": "longer", "path": "gone.h5", "carried": True,
              "analyses": {}, **{c: math.nan for c in SUMMARY_COLUMNS}}
    write_analyses(rows + [longer], tmp_path / "both.csv")
    assert set(read_analyses(tmp_path / "both.csv")[base["config_hash"]]) == {"fourier"}
    from_files = {(r["arm"], name): analysis(r, name) for r in rows for name in CARRIED_ANALYSES}
    reading = audit.reading_of(rows[0]["variant"])  # the tiny config's settings
    c6_files = audit.Audit(rows, reading).c6()
    caps: dict = {}
    figs_files = figures.make_all(rows, tmp_path / "f1", captions=caps)
    assert c6_files.n == 1 and any(f.name.startswith("landscape_") for f in figs_files)
    c6_figure = [f.stem for f in figs_files if f.name.startswith("c6logits_")]  # C6's logit part, drawn
    assert c6_figure and caps[c6_figure[0]].endswith(f"Seeds {rows[0]['seed']}: each seed's longest runs analysed "
                                                     "with this reading.")
    spectra = {k.split("_")[-2]: v for k, v in caps.items() if k.startswith("spectrum_")}
    assert spectra["dream"].endswith("white ticks: replay events.")
    assert spectra["baseline"].endswith("no ticks: this arm does not replay.")
    # the emergence step is a step or "never" (the analyses' -1), as the reader needs it
    assert re.match(r"\(a\) W_E: .*; seed \d+: emergence step dream (never|\d+), baseline (never|\d+); final "
                    r"top-5 share [\d.]+ vs [\d.]+$", c6_files.notes[0])
    assert re.match(r"\(b\) logits: .*; seed \d+: ratio [\d.e+-]+ over \d+ checkpoints to step \d+ \(\d+ with either "
                    r"arm below chance\); emergence \(<= 1 nat\) dream (never|\d+), baseline (never|\d+)$", c6_files.notes[1])
    assert [step_or_never(v) for v in (-1, -1.0, 1200.0, math.nan)] == ["never", "never", "1200", "n/a"]
    for f in runs.glob("*.h5"):
        f.unlink()
    carried, n = carry([], read_csv(tmp_path / "runs.csv"), read_curves(tmp_path / "curves.csv"),
                       read_analyses(tmp_path / "analyses.csv"))
    assert n == 2
    for r in carried:
        for name in CARRIED_ANALYSES:
            want = from_files[(r["arm"], name)]
            got = analysis(r, name)
            if want is None:  # baseline: only fourier
                assert got is None
                continue
            assert got[0].keys() == want[0].keys() and got[1].keys() == want[1].keys()
            for k, a in want[0].items():
                assert got[0][k].shape == a.shape, (name, k)
                if a.dtype.kind == "f" and (name, k) not in EXACT_SERIES:
                    np.testing.assert_allclose(got[0][k], a, rtol=1e-3, atol=1e-12)
                else:
                    assert (got[0][k] == a).all(), (name, k)
            assert got[1] == pytest.approx(want[1], rel=1e-9)
    c6_carried = audit.Audit(carried, reading).c6()
    assert (c6_carried.n, c6_carried.runs, c6_carried.notes) == (c6_files.n, c6_files.runs, c6_files.notes)
    assert c6_carried.effect == c6_files.effect  # its series are carried exactly
    # a longer run of the baseline's seed, carried without series, does not hide the shorter run's series
    # from C6, the mechanistic table or the analysis figures
    base = next(r for r in carried if r["arm"] == "baseline")
    longer = {**base, "budget": 2 * base["budget"], "config_hash": "longer", "path": "gone.h5", "analyses": {},
              **{c: math.nan for c in SUMMARY_COLUMNS}}
    claims = audit.Audit(carried + [longer], reading)
    assert claims.arm("hard", "baseline") == [longer]  # the seed's longest run
    c6_longer = claims.c6()
    assert (c6_longer.n, c6_longer.effect) == (c6_carried.n, c6_carried.effect)
    assert report._mechanistic_section(carried + [longer]) == report._mechanistic_section(carried)
    assert [r["config_hash"] for r, _, _ in analysed(carried + [longer], "fourier")] == \
        [r["config_hash"] for r, _, _ in analysed(carried, "fourier")]
    figs_carried = figures.make_all(carried, tmp_path / "f2")
    assert sorted(f.name for f in figs_carried) == sorted(f.name for f in figs_files)
    # a corrupt analyses table is one clear error, not a traceback
    (tmp_path / "analyses.csv").write_text("config_hash,analysis,part,key,dtype,shape,values\nabc,fourier,array,"
                                           "step,i,3,1 2\n")
    with pytest.raises(analyze.MechgrokError, match="not a readable analyses table"):
        read_analyses(tmp_path / "analyses.csv")


def test_an_analysis_run_before_the_run_was_extended_is_stale(tmp_path, capsys):
    """Extending a run leaves its old /analysis groups in place; they describe the shorter run, so
    the results table, the analyses table, C6 and the figures must not use them until re-run."""
    from mechgrok.results import analysis, collect, read_analyses, write_analyses

    path = tmp_path / "run.h5"
    train(tiny("baseline", 0, steps=100), path)
    analyze.analyse("fourier", path)
    row = collect([path])[0][0]
    assert analysis(row, "fourier") is not None and not np.isnan(row["final_top_share"])
    train(tiny("baseline", 0, steps=200), path, resume=True)  # extended to a longer budget
    row = collect([path])[0][0]
    assert row["steps_trained"] == 200 and runstore.read_analysis(path, "fourier")[1]["last_step"] == 100
    assert analysis(row, "fourier") is None and np.isnan(row["final_top_share"])
    write_analyses([row], tmp_path / "analyses.csv")
    assert read_analyses(tmp_path / "analyses.csv") == {}
    # --missing analyses exactly the files without a current result
    assert analyze.main(["fourier", str(path), "--missing", "--quiet"]) == 0
    assert str(path) in capsys.readouterr().out
    assert analyze.main(["fourier", str(path), "--missing", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    row = collect([path])[0][0]
    assert analysis(row, "fourier")[0]["step"][-1] == 200 and not np.isnan(row["final_top_share"])


def test_a_fourier_analysis_stored_before_the_logit_reading_is_still_read(dream_copy, capsys):
    """Run files analysed before the logit reading existed lack its series and attributes: the
    results table reads them as unknown, and ``--missing`` analyses them again."""
    from mechgrok.results import analysis_of, collect

    analyze.analyse("fourier", dream_copy)
    with h5py.File(dream_copy, "r+") as f:
        g = f["analysis/fourier"]
        for k in [k for k in g if k.startswith("logit_")]:
            del g[k]
        for k in [k for k in g.attrs if "logit" in k]:
            del g.attrs[k]
    arrays, attrs = analysis_of(dream_copy, "fourier")
    assert "logit_restricted_loss" not in arrays and "logit_emergence_step" not in attrs and "top_share" in arrays
    row = collect([dream_copy])[0][0]
    assert math.isnan(row["logit_emergence_step"]) and not math.isnan(row["emergence_step"])
    assert analyze.main(["fourier", str(dream_copy), "--missing", "--quiet"]) == 0
    assert "from the logits: emergence" in capsys.readouterr().out
    assert not math.isnan(collect([dream_copy])[0][0]["logit_emergence_step"])
