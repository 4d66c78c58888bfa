"""The claims' rules (mechgrok.audit) on synthetic runs whose answer is known."""

import math

import numpy as np
import pytest

from synth import synth_grid, synth_run, verdicts_of
from mechgrok import audit, figures
from mechgrok.results import collect


def test_truly_faster_arm_is_supported_and_equal_arm_is_not(tmp_path):
    synth_grid(tmp_path, {"baseline": 8000, "dream": 2000, "control": 8000}, range(8))
    v = verdicts_of(tmp_path)
    assert v["C3"].verdict == "supported", v["C3"].notes
    assert v["C9"].verdict == "supported", v["C9"].notes  # control ~ baseline, dream >> control
    assert v["C11"].verdict == "supported"
    assert v["C3"].runs == v["C9"].runs == v["C11"].runs == v["C10"].runs == "0-7"  # seeds as a range, every claim
    assert v["C12"].verdict == "contradicted"  # every token is seen in training under the operand split
    assert v["C12"].notes[1].startswith("every test operand's embedding is trained (each unseen first operand")
    assert v["C1"].verdict == "no runs" and "python -m mechgrok.sweep --regimes easy" in v["C1"].notes[0]
    # a comparison with a speed-up names each arm's median and grokked count in its notes
    assert "; medians (KM): dream 2000, baseline 8000 steps; grokked: dream 8/8, baseline 8/8; Mann-Whitney p" \
        in v["C3"].notes[0]
    # every synthetic dream run replays the same surprise (1.5): no correlation can be computed
    assert v["C10"].notes[1].endswith("8 grokked dream runs: r undefined (fewer than 3 runs, or a constant variable)")


def test_no_effect_is_contradicted_or_inconclusive(tmp_path):
    synth_grid(tmp_path, {"baseline": 8000, "dream": 8000, "control": 8000}, range(8))
    v = verdicts_of(tmp_path)
    # the claimed ~2000-step grok time is rejected by the sign test: 0 of 8 by 3000
    assert v["C3"].verdict == "contradicted"
    assert v["C13"].verdict == "contradicted"
    # its run count is the contradicting test's, and its runs column names both tests' runs
    assert v["C13"].n == v["C3"].n == 8
    assert v["C13"].runs == f"C3: 8, seeds {v['C3'].runs}; C7: {v['C7'].n}, {v['C7'].runs}"


def test_never_grokking_arms_are_contradicted_not_dropped(tmp_path):
    synth_grid(tmp_path, {"baseline": None, "dream": None}, range(5))
    v = verdicts_of(tmp_path)
    assert v["C3"].verdict == "contradicted" and v["C3"].n == 5
    # without a median the effect gives the grokked counts, and the notes do not repeat them
    assert "; speed-up n/a (grokked: dream 0/5, baseline 0/5);" in v["C3"].effect
    notes = "; ".join(v["C3"].notes)
    assert notes.count("grokked: dream 0/5, baseline 0/5") == 1 and " vs 0/5" not in notes
    assert v["C10"].notes[1] == "correlation over 0 grokked dream runs: r undefined (fewer than 3 runs, or a constant variable)"
    assert v["C4"].verdict == "contradicted"  # peak accuracy nowhere near the claimed 98%


def test_c4_is_decided_by_the_dream_runs_alone_when_none_reaches_the_claimed_level(tmp_path):
    """Five dream runs at the full budget, none near 98%, reject the claimed level by the sign test
    (p = 1/32) whatever the number of baselines; the verdict counts the runs that decided it."""
    synth_grid(tmp_path, {"dream": None}, range(5))
    synth_run(tmp_path / "baseline0.h5", "baseline", 0, None)
    c4 = verdicts_of(tmp_path)["C4"]
    assert (c4.verdict, c4.n) == ("contradicted", 5)
    assert "0/5 (sign test of the claimed ~98% level, p 0.0312)" in c4.notes[0]
    (tmp_path / "dream4.h5").unlink()  # four: p = 1/16, not below alpha; one baseline: no permutation test
    c4 = verdicts_of(tmp_path)["C4"]
    assert (c4.verdict, c4.n) == ("inconclusive at n = 1", 1)


def test_too_few_runs_are_inconclusive(tmp_path):
    synth_grid(tmp_path, {"baseline": 8000, "dream": 2000, "control": 8000}, range(2))
    v = verdicts_of(tmp_path)
    for cid in ("C3", "C4", "C5", "C9", "C10"):
        assert v[cid].verdict.startswith("inconclusive at n = "), (cid, v[cid].verdict)


def test_claimed_time_is_judged_on_the_claimed_arm_alone(tmp_path):
    """Five dream runs that never grok by 3000 reject 'dream groks at ~2000' even with one baseline run."""
    for s in range(5):
        synth_run(tmp_path / f"d{s}.h5", "dream", s, None, budget=3000)
    synth_run(tmp_path / "b0.h5", "baseline", 0, None, budget=3000)
    v = verdicts_of(tmp_path)
    assert v["C3"].verdict == "contradicted" and v["C3"].n == 5
    assert "rejected by 5 runs" in " ".join(v["C3"].notes)
    # runs stopped before the tolerance say nothing about a later claimed time
    rows, _ = collect([tmp_path])
    claims = audit.Audit(rows)
    assert claims.claimed_time(claims.arm("hard", "baseline"), 7800)[2] == 0


def test_no_effect_notes_the_seeds_that_grokked_before_replay_could_act(tmp_path):
    """Easy regime, random split, first replay event at step 400: seeds 0 and 1 grok at 200 in both arms
    (before any replay), seed 2 at 400 (after the first event) and seed 3 never; seeds 4-6 differ: dream
    groks at 400 vs 600 (earlier), at 600 vs never (earlier, though both stop at step 600) and never vs 600
    (later). The C1 comparison says that a difference between dream and baseline can show only in the
    seeds that did not grok early, and in which direction the seeds that differ go."""
    times = {0: (200, 200), 1: (200, 200), 2: (400, 400), 3: (None, None), 4: (600, 400), 5: (None, 600),
             6: (600, None)}
    for s, (base, dream) in times.items():
        synth_run(tmp_path / f"b{s}.h5", "baseline", s, base, budget=600, regime="easy", split="random")
        synth_run(tmp_path / f"d{s}.h5", "dream", s, dream, budget=600, regime="easy", split="random")
    rows, _ = collect([tmp_path])
    c1 = audit.Audit(rows, "split=random").all()[0]
    assert ("2 of these seeds grokked in both arms before the first replay event (step 400), before replay could "
            "act, so their two runs cannot differ; a difference between the arms can show only in the other 5"
            ) in " ".join(c1.notes), c1.notes
    assert ("same outcome (time-to-grok, or censoring step) in 4 of 7 seeds run with the same budget in both arms; "
            "in the other 3, dream grokked earlier in 2 and later in 1") in " ".join(c1.notes), c1.notes


def test_c7_pairs_runs_of_different_budgets_at_their_common_horizon():
    def row(arm, seed, t, grokked, budget):
        return {"variant": "hard", "arm": arm, "seed": seed, "time_to_grok": t, "grokked": grokked,
                "budget": budget, "finished": True}

    rows = [row("baseline", 42, 30_000, False, 30_000), row("dream", 42, 3000, False, 3000),  # both censored
            row("baseline", 0, 2400, True, 30_000), row("dream", 0, 3000, False, 3000),  # baseline faster
            row("baseline", 1, 30_000, False, 30_000), row("dream", 1, 1200, True, 3000)]  # dream faster
    speedups = sorted(math.exp(x) for x in audit.Audit(rows)._log_speedups("hard"))
    # not 30000/3000 = 10 for seed 42: neither run is known past 3000, so they tie there
    assert speedups == pytest.approx([2400 / 3000, 1.0, 30_000 / 1200])  # censored: enters at its budget


def test_paired_whole_run_quantities_compare_runs_of_the_same_budget(tmp_path):
    """Compute counts (C11) and event effects (C5) sum or average over a whole run: a seed's dream run
    extended to a longer budget is paired with the other arm's run of the budget both have."""
    for s in range(3):
        for arm in ("dream", "control", "baseline"):
            synth_run(tmp_path / f"{arm}{s}_3000.h5", arm, s, None, budget=3000)
        synth_run(tmp_path / f"dream{s}_6000.h5", "dream", s, None, budget=6000)  # the longest dream run
    rows, _ = collect([tmp_path])
    claims = audit.Audit(rows)
    assert {r["budget"] for r in claims.arm("hard", "dream")} == {6000}
    pairs = claims.pairs("hard", "dream", "control")
    assert sorted(pairs) == [0, 1, 2] and all(d["budget"] == c["budget"] == 3000 for d, c in pairs.values())
    c11 = claims.c11()
    assert c11.verdict == "supported" and c11.effect.startswith("equal totals in 3/3")
    # without the 3000-step dream runs there is no common budget, and so no pair
    rows = [r for r in rows if not (r["arm"] == "dream" and r["budget"] == 3000)]
    assert audit.Audit(rows).pairs("hard", "dream", "control") == {}


def _fourier_row(arm, seed, top, logit, budget=3000):
    """A finished hard-regime run carried from the table with planted Fourier series: W_E top-5 share
    ``top`` and logit restricted loss ``logit`` (a number, or None for an analysis stored before the
    logit reading) at checkpoints every 1000 steps."""
    steps = np.arange(0, budget + 1, 1000)
    arrays = {"step": steps, "top_share": np.full(len(steps), float(top))}
    if logit is not None:
        arrays["logit_restricted_loss"] = np.full(len(steps), float(logit))
    attrs = {"emergence_step": -1, "final_top_share": float(top), "logit_emergence_step": -1, "p": 97}
    return {"variant": "hard", "arm": arm, "seed": seed, "budget": budget, "finished": True, "grokked": False,
            "time_to_grok": budget, "carried": True, "path": f"gone/{arm}{seed}_{budget}.h5",
            "analyses": {"fourier": (arrays, attrs)}}


def test_c6_reads_the_fourier_solution_from_w_e_and_from_the_logits():
    """C6 has two parts: W_E's top-5 share (dream minus baseline) and the logits' restricted loss
    (dream / baseline). One contradicted part decides; supported needs both."""
    def c6(dream_top, ratios, seeds=(0, 1, 2), base_logit=3.0):
        rows = []
        for s, r in zip(seeds, ratios):
            rows += [_fourier_row("baseline", s, 0.5, base_logit), _fourier_row("dream", s, 0.5 + dream_top, base_logit * r)]
        claims = audit.Audit(rows)
        return claims._c6_embedding(), claims._c6_logits(), claims.c6()

    # the logits' loss halved in every seed, W_E's share unchanged: (b) supports, (a) contradicts and decides
    a, b, v = c6(0.0, [0.5, 0.45, 0.55])
    assert (a.verdict, b.verdict, v.verdict, v.n) == ("contradicted", "supported", "contradicted", 3)
    assert b.effect == "ratio 0.498"  # geometric mean: (0.5 * 0.45 * 0.55) ** (1 / 3)
    assert b.notes[0].startswith("seed 0: ratio 0.5 over 3 checkpoints to step 3000 (3 with either arm below chance)")
    assert v.notes[1].startswith("(b) logits: restricted loss capped at chance, dream / baseline at shared checkpoints")
    # both readings move toward the Fourier solution: supported
    a, b, v = c6(0.1, [0.5, 0.45, 0.55])
    assert (a.verdict, b.verdict, v.verdict) == ("supported", "supported", "supported")
    # the same loss in both arms: less than a 1.5x reduction however many seeds, so (b) contradicts
    a, b, v = c6(0.1, [1.0, 0.95, 1.05])
    assert (b.verdict, v.verdict) == ("contradicted", "contradicted")
    assert "by 1.5x or more" in b.notes[-1]
    # a ratio that straddles the margin, and too few seeds, stay inconclusive
    assert c6(0.1, [0.3, 1.0, 0.9])[1].verdict == "inconclusive at n = 3"
    a, b, v = c6(0.1, [0.5, 0.5], seeds=(0, 1))
    assert (b.verdict, v.verdict) == ("inconclusive at n = 2", "inconclusive at n = 2")
    # losses above chance (ln 97 = 4.57 nats) are capped there: two runs without a Fourier solution compare
    # as equal however confidently wrong each is, here 40 vs 18-22 nats
    a, b, v = c6(0.1, [0.5, 0.45, 0.55], base_logit=40.0)
    assert (b.effect, b.verdict) == ("ratio 1", "contradicted") and "(0 with either arm below chance)" in b.notes[0]
    # a loss of exactly 0 in the dream arm (a clean circuit) stays a finite, very small ratio
    assert float(c6(0.1, [0.0, 0.0, 0.0])[1].effect.split()[-1]) < 1e-6


def test_c6_says_what_its_parts_give_before_either_run_of_a_seed_grokked(tmp_path, monkeypatch):
    """The claim is about the memorisation plateau: beside each part's rule (every shared checkpoint),
    C6 says what the part gives at the checkpoints before either run of a seed grokked. Planted: the
    baseline groks at 4000, dream at 5000; dream's W_E share and logit loss equal the baseline's until
    step 4000, then dream's share is 0.4 higher and its loss 10x lower. Over every checkpoint the parts
    see an effect; over the plateau (steps 1000-3000) none."""
    rows = []
    for s in range(3):
        base, dream = _fourier_row("baseline", s, 0.5, 3.0, budget=6000), _fourier_row("dream", s, 0.5, 3.0, budget=6000)
        steps = base["analyses"]["fourier"][0]["step"]
        arrays = {"step": steps, "top_share": np.where(steps >= 4000, 0.9, 0.5),
                  "logit_restricted_loss": np.where(steps >= 4000, 0.3, 3.0)}
        rows += [{**base, "grokked": True, "time_to_grok": 4000},
                 {**dream, "grokked": True, "time_to_grok": 5000,
                  "analyses": {"fourier": (arrays, dream["analyses"]["fourier"][1])}}]
    claims = audit.Audit(rows)
    a, b = claims._c6_embedding(), claims._c6_logits()
    assert a.effect == "mean difference 0.2" and b.effect == "ratio 0.316"  # (1 ** 3 * 0.1 ** 3) ** (1 / 6)
    plateau = "before either run of a seed grokked (the plateau, where the claim says dreaming acts; descriptive, " \
              "the rule takes every shared checkpoint): "
    assert plateau + "difference 0 [0, 0] over 3 seeds" in a.notes
    assert plateau + "ratio 1 [1, 1] over 3 seeds" in b.notes
    # where no run grokked, every checkpoint is the plateau: nothing more to say
    unchanged = [{**r, "grokked": False, "time_to_grok": 6000} for r in rows]
    claims = audit.Audit(unchanged)
    assert not any(n.startswith("before either") for v in (claims._c6_embedding(), claims._c6_logits())
                   for n in v.notes)
    # its figure draws each seed solid over the plateau, then faint and dashed from the plateau's last checkpoint
    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, out, name: saved.append(fig) or [])
    items = [(r, *r["analyses"]["fourier"]) for r in rows]
    assert figures.logit_ratio(items, "hard", tmp_path)[1] == [0, 1, 2]
    lines = [(ln.get_linestyle(), np.asarray(ln.get_xdata()).tolist(), np.asarray(ln.get_ydata()).tolist())
             for ln in saved[0].axes[0].lines]
    assert [(style, x) for style, x, _ in lines[:2]] == [("-", [1000, 2000, 3000]), ("--", [3000, 4000, 5000, 6000])]
    assert lines[0][2] == [1, 1, 1] and lines[1][2] == pytest.approx([1, 0.1, 0.1, 0.1])
    assert [ln.get_label() for ln in saved[0].axes[0].get_legend().get_lines()] == \
        ["seed 0", "after either run grokked", "seed 1", "seed 2"]


def test_c6_logits_use_the_longest_run_that_has_the_logit_series(tmp_path):
    """A seed's 30000-step runs, analysed before the logit reading existed, give W_E's part; the same
    seed's 3000-step runs, analysed with it, give the logits' part. With no logit series at all, that
    part is inconclusive at n = 0 and says what it needs, and W_E's part decides alone."""
    old = [_fourier_row(arm, s, 0.5, None, budget=30_000) for s in range(3) for arm in ("baseline", "dream")]
    new = [_fourier_row("baseline", s, 0.4, 3.0) for s in range(3)] + \
          [_fourier_row("dream", s, 0.4, 3.0 * r) for s, r in zip(range(3), (0.5, 0.45, 0.55))]
    claims = audit.Audit(old + new)
    a, b = claims._c6_embedding(), claims._c6_logits()
    assert a.effect == "mean difference 0" and a.notes[0].endswith("final top-5 share 0.500 vs 0.500")  # 30000 runs
    assert b.verdict == "supported" and b.notes[0].endswith("to step 3000 (3 with either arm below chance); emergence "
                                                            "(<= 1 nat) dream never, baseline never")
    # its figure draws the same runs: the ratio at each shared checkpoint, per seed
    from mechgrok.results import analysed
    paths, seeds = figures.logit_ratio(analysed(old + new, "fourier", "logit_restricted_loss"), "hard", tmp_path)
    assert seeds == [0, 1, 2] and [f.name for f in paths] == ["c6logits_hard.png", "c6logits_hard.pdf"]
    assert figures.logit_ratio(analysed(old, "fourier", "logit_restricted_loss"), "hard", tmp_path) == ([], [])
    unanalysed = [{**_fourier_row(arm, 3, 0.5, None, budget=30_000), "analyses": {}} for arm in ("baseline", "dream")]
    claims = audit.Audit(old + unanalysed)
    b, v = claims._c6_logits(), claims.c6()
    # the seeds W_E's part compares would do: seed 3, never analysed, is not asked for
    assert b.verdict == "inconclusive at n = 0" and b.notes[-1].startswith("needs: 6 runs trained again")
    assert v.verdict == "contradicted" and v.n == 3
    # neither reading measured: one line saying what is needed
    bare = [{**r, "analyses": {}} for r in old]
    v = audit.Audit(bare).c6()
    assert (v.verdict, v.notes) == ("inconclusive at n = 0", [
        "needs: 6 runs trained again (their files are not on this machine; rows carried from the results table)"])

