"""The claims audit as a document: ``python -m mechgrok.report runs/ --out report/``.

Writes ``REPORT.md``, a self-contained ``report.html`` (figures embedded) and the
README's Findings block from the runs on disk: the verdicts of every claim
(computed by the rules of :mod:`mechgrok.audit`, printed next to them), the
readings and calibrations, seed 42 on its own, time to grok by arm, the
mechanistic evidence and the power calculation. Nothing in it is typed by hand.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import provenance, stats
from .audit import (ALPHA, EQUIVALENCE, MIN_SEEDS, PAPER, PEAK_LEVEL, Audit, Verdict, calibration_rules, ci_text,
                    fmt, grokked_earlier, is_calibration, reading_of, readings, seed_speedup, speedup_effect)
from .config import OPEN_CHOICES, REGIMES, make_config, reading_settings, stated_changes
from .errors import MechgrokError, out_dir
from .fourier import key_frequencies, key_overlap, step_or_never
from .results import (analysed, compute_bounds_text, device_of, finished, has_file, load, no_runs_error, process_seconds,
                      seed_ranges, select, SUMMARY_COLUMNS, write_analyses, write_csv, write_curves)


def _cell(v: float) -> str:
    """A table cell for a summary number: '-' where unknown, whole numbers (steps) as integers."""
    return "-" if math.isnan(v) else str(int(v)) if float(v).is_integer() else fmt(v)


def _counted(values) -> str:
    """Distinct values with how many runs have each, most common first: 'cpu: 30, cuda: 8'."""
    return ", ".join(f"{v}: {n}" for v, n in sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0])))


def _lower_median(steps: list[int]) -> int:
    """The middle of sorted grok steps, the lower middle one of an even count: what a Kaplan-Meier
    median gives when every run grokked, so it stays on the evaluation grid."""
    return steps[(len(steps) - 1) // 2]


def _spread(values) -> str:
    """'median (lowest-highest)' of integers (the lower middle one of an even count), the value
    itself where all are equal, '-' for none."""
    v = sorted(values)
    return "-" if not v else str(v[0]) if v[0] == v[-1] else f"{_lower_median(v)} ({v[0]}-{v[-1]})"


def _calibration_arm_row(variant: str, arm: str, runs: list[dict]) -> list[str]:
    """One arm of a calibration variant, summarised: its runs and seeds, devices, how many grokked
    and the spread of their grok steps, the lowest peak test and final train accuracy, the steps
    at which its runs memorised, and the spread of their replay updates (extra_updates: what tells
    C8's timing arms apart). Each run's own values are in results/runs.csv."""
    done = finished(runs)  # one per seed: the longest budget of a seed run several times
    by_seed = {r["seed"]: r for r in runs if not r["finished"]} | {r["seed"]: r for r in done}  # finished first
    runs, training = list(by_seed.values()), len(by_seed) - len(done)
    grok = [r["time_to_grok"] for r in done if r["grokked"]]
    memorised = _counted("never" if r["memorised_step"] < 0 else str(r["memorised_step"]) for r in done)
    return [f"`{variant}`", arm, f"{len(runs)} ({seed_ranges(r['seed'] for r in runs)})",
            _counted(device_of(r) for r in runs), f"{len(grok)}/{len(done)}" + (f" ({training} still training)"
                                                                                  if training else ""),
            _spread(grok), fmt(min(r["peak_test_acc"] for r in done), 4) if done else "-",
            f"{min(r['final_train_acc'] for r in done):.3f}" if done else "-", memorised or "-",
            _spread(r["extra_updates"] for r in done)]


def _calibration_section(rows: list[dict]) -> str:
    """Runs that change a setting the manuscript states: they test the instrument (can this
    trainer grok at all, and where), not the paper, and enter no verdict. One table row per arm
    (results/runs.csv has one per run); each seed's grok steps are in the paired lines under it."""
    cal = sorted((r for r in rows if is_calibration(r["variant"])),
                 key=lambda r: (r["variant"], r["arm"], r["seed"], r["budget"]))
    if not cal:
        return ""
    variants = sorted({r["variant"] for r in cal})
    changed = []
    for v in variants:
        r = select(cal, variant=v)[0]
        base, settings = make_config(r["regime"]), reading_settings(reading_of(v))
        changed.append(f"- `{v}` changes " + ", ".join(f"{n} {getattr(base, n)} -> {settings[n]}"
                                                     for n in stated_changes(reading_of(v))))
    body = [_calibration_arm_row(v, arm, select(cal, variant=v, arm=arm))
            for v in variants for arm in sorted({r["arm"] for r in select(cal, variant=v)})]
    return "\n".join([
        "## Calibration runs (not readings of the paper)", "",
        "These runs change a setting the manuscript states (config.STATED_FIELDS), so they enter no verdict. "
        "They test the instrument: whether this trainer and model grok at all, at settings where grokking is "
        "well documented.", "", *changed, "",
        "One row per arm; each run's own values are in `results/runs.csv`, and each seed's grok step per arm in "
        "the lines under the table. Grok step: median of the runs that grokked (the lower middle one of an even "
        "count, as a Kaplan-Meier median takes), and their range; the Kaplan-Meier median, which keeps the runs "
        "that never grokked, is in 'Time-to-grok by arm'; accuracies: the lowest over the "
        "arm's finished runs; memorised: the step of the first evaluation with train accuracy "
        f">= {make_config('hard').memorised_threshold}: how many runs reached it there; replay updates: the extra "
        "updates of replay (dream, control and the timing arms; 0 for the baseline and grokfast) a run made before it "
        "stopped, median and range over the finished runs.", "",
        _md_table(["variant", "arm", "runs (seeds)", "device", "grokked", "grok step", "lowest peak test acc",
                   "lowest final train acc", "memorised", "replay updates"], body), "", *_calibration_notes(finished(cal)), "",
        *[line for v in variants for line in _calibration_rules(rows, v)]])


def _calibration_rules(rows: list[dict], variant: str) -> list[str]:
    """The section's table of ``calibration_rules`` for one variant, with each claim's notes."""
    rules = calibration_rules(rows, variant)
    if not rules:
        return []
    return [f"### The claims' rules on `{variant}` (descriptive, no verdict)", "",
            "Each claim's rule, the same code as the verdicts, applied to these runs; claims without runs here are "
            "left out. Its outcome is not a verdict on the paper (these runs change stated settings); it shows what "
            "the verdicts would be if this variant were accepted as a reading of the paper.", "",
            _md_table(["id", "claim", "test", "runs (seeds)", "effect", "95% CI", "p", "the rule gives"],
                      _verdict_rows(rules, bold=False)), "",
            *[_detail_line(v) for v in rules], ""]


def _seed_pairs(runs: list[dict], arm: str, ref: str = "baseline") -> list[tuple[dict, dict]]:
    """(ref, arm) runs of the same seed."""
    base = {r["seed"]: r for r in runs if r["arm"] == ref}
    return [(base[r["seed"]], r) for r in sorted(runs, key=lambda r: r["seed"]) if r["arm"] == arm and r["seed"] in base]


def _calibration_comparisons(runs: list[dict]) -> list[tuple[str, str]]:
    """(arm, reference arm) pairs a calibration variant's runs are described by: every arm against
    the baseline, and dream against control where both were run (C9's question, targeted vs random
    replay of the same size)."""
    arms = {r["arm"] for r in runs}
    pairs = [(arm, "baseline") for arm in sorted(arms - {"baseline"})]
    return pairs + ([("dream", "control")] if {"dream", "control"} <= arms else [])


def _paired_comparison(pairs: list[tuple[dict, dict]]) -> str:
    """The speed-up of the second runs of ``pairs`` over the first (ratio of Kaplan-Meier medians,
    bootstrap interval, log-rank p), the geometric mean of the per-seed ratios where every run grokked
    (stats.paired_speedup), in how many seeds the second was faster or slower, and the sign test of
    those counts (stats.sign_test). The last three use the pairing by seed, which the unpaired
    Kaplan-Meier ratio and log-rank test ignore."""
    c = stats.compare([b for b, _ in pairs], [r for _, r in pairs])
    ci = ci_text(c["speedup_lo"], c["speedup_hi"])
    arm, ref = pairs[0][1]["arm"], pairs[0][0]["arm"]
    steps = PAPER["hard_grok"]
    claimed = (f"; the paper's hard-regime steps give {steps[ref] / steps[arm]:.2f}x ({ref} {steps[ref]}, {arm} "
               f"{steps[arm]})" if pairs[0][0]["regime"] == "hard" and arm in steps and ref in steps else "")
    faster, slower = sum(grokked_earlier(r, b) for b, r in pairs), sum(grokked_earlier(b, r) for b, r in pairs)
    sign = (f" (two-sided sign test on the {faster + slower} that differ, paired by seed: p "
            f"{fmt(stats.sign_test(faster, slower))})" if faster + slower else "")
    censored = sum(1 for b, r in pairs if not (b["grokked"] and r["grokked"]))
    if censored:
        per_seed = f"per-seed ratio n/a ({censored} seed{'s' * (censored > 1)} with a run that never grokked)"
    else:
        g, lo, hi = stats.paired_speedup([b["time_to_grok"] for b, _ in pairs], [r["time_to_grok"] for _, r in pairs])
        per_seed = f"per-seed ratio {ref} / {arm}, geometric mean over seeds: {fmt(g)} {ci_text(lo, hi)}"
    return (f"{speedup_effect(c, *zip(*pairs))}{'' if ci == 'n/a' else ' ' + ci} (ratio of Kaplan-Meier medians"
            f"{claimed}), log-rank p {fmt(c['logrank_p'])}; {per_seed}; {arm} faster in {faster}, slower in "
            f"{slower} of {len(pairs)} seeds{sign}")


def _device_note(pairs: list[tuple[dict, dict]]) -> str:
    """' Seeds ... pair runs trained on two devices ...' for the pairs of ``pairs`` whose runs were
    trained on different devices, or ''."""
    mixed: dict[tuple[str, str], list[str]] = {}
    for b, r in pairs:
        if b["device"] != r["device"]:
            mixed.setdefault((device_of(r), device_of(b)), []).append(str(r["seed"]))
    if not mixed:
        return ""
    arm, ref = pairs[0][1]["arm"], pairs[0][0]["arm"]
    parts = "; ".join(f"seed{'s' * (len(seeds) > 1)} {', '.join(seeds)}: {arm} on {dev}, {ref} on {dev_ref}"
                      for (dev, dev_ref), seeds in sorted(mixed.items()))
    return (f" Pairs trained on two devices ({parts}): both runs of a seed start from the same weights, split and "
            "replay draws (made on the CPU from the seed), but float32 arithmetic rounds differently on the two "
            "devices and training amplifies the difference, so such a pair differs by more than its arm.")


def _calibration_notes(cal: list[dict]) -> list[str]:
    """Descriptive lines per calibration variant: each comparison of ``_calibration_comparisons`` over
    the same seeds, and whether the dream-early arm could replay anything there (no test: they enter no verdict)."""
    lines = []
    for variant in sorted({r["variant"] for r in cal}):
        runs = select(cal, variant=variant)
        for arm, ref in _calibration_comparisons(runs):
            pairs = _seed_pairs(runs, arm, ref)
            if pairs:
                each = "; ".join(f"seed {r['seed']}: {arm} {_grok_text(r)} vs {ref} {_grok_text(b)} "
                                 f"({seed_speedup(b, r):.2f}x)" for b, r in pairs)
                lines.append(f"- `{variant}`: {arm} vs {ref}, same seeds (time to grok at the pair's common "
                             f"horizon; in brackets {ref} / {arm}, above 1 where {arm} grokked first): {each}."
                             + _device_note(pairs))
            if len(pairs) >= MIN_SEEDS:
                lines.append(f"- `{variant}`: {arm} vs {ref} over these {len(pairs)} seeds (the verdict rules' "
                             f"statistics, descriptive here): {_paired_comparison(pairs)}.")
        memorised = sorted({r["memorised_step"] for r in runs if r["memorised_step"] >= 0})
        cfg = make_config(runs[0]["regime"])
        first_event = int(reading_settings(reading_of(variant)).get("dream_every", cfg.dream_every))
        if memorised and memorised[-1] < first_event:
            lines.append(f"- `{variant}`: train accuracy reaches {cfg.memorised_threshold} at step "
                         f"{', '.join(map(str, memorised))}, before the first replay event (step {first_event}): "
                         "dream-early (replay only before that) would replay nothing, and dream-plateau (replay from "
                         "then on) would replay at every event the dream arm does, so neither reading of C8's timing "
                         "ablation (before vs after memorisation; from step 0 vs from the plateau) can be run at "
                         "these settings.")
    return lines


def _grok_text(r: dict) -> str:
    """A run's grok step, or 'not grokked by' the step it reached."""
    return str(r["time_to_grok"]) if r["grokked"] else f"not grokked by {r['time_to_grok']}"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _seed42_section(rows: list[dict]) -> str:
    lines = ["## Seed 42 of the paper's hard regime, on its own", "",
             "The manuscript's single-seed numbers next to the same seed here (one run each; no statistics).", "", ""]
    body = []
    for arm in ("dream", "control", "baseline"):
        r = select(finished(rows), variant="hard", arm=arm, seed=42)
        paper = PAPER["hard_grok"][arm]
        running = [x for x in select(rows, variant="hard", arm=arm, seed=42) if not x["finished"]]
        if not r and running:
            body.append([arm, str(paper), f"unfinished: trained to step {max(x['time_to_grok'] for x in running)}"
                                          " so far, not grokked (continue: make pilot)", "", ""])
        elif r:
            r = r[0]
            body.append([arm, str(paper), _grok_text(r), f"{r['peak_test_acc']:.4f}", f"{r['final_train_acc']:.3f}"])
        else:
            body.append([arm, str(paper), "not run (python -m mechgrok.sweep --regimes hard --arms "
                                          f"{arm} --seeds 42 --out runs)", "", ""])
    analysed = finished(select(rows, variant="hard", seed=42), keep=_has_summaries)
    more = ("\n\nSeed 42's analysed runs are in the mechanistic table below: " +
            ", ".join(f"{r['arm']} ({r['budget']} steps)" for r in analysed) + "." if analysed else "")
    return "\n".join(lines) + _md_table(["arm", "paper: grok step", "here: grok step", "peak test acc",
                                         "final train acc"], body) + more + "\n"


def _setup_section(rows: list[dict]) -> str:
    cfg = make_config("hard")
    lines = ["## The manuscript's setup next to what was run", "",
             "Stated = values the manuscript gives (claims.md, 'Setup as stated'); open = choices it leaves open, "
             "with the default used here. Readings run: " +
             (", ".join(f"`{v}`" for v in sorted({r['variant'] for r in rows})) or "none") + ".", ""]
    stated = [("task", "(a + b) mod 97, one token per number", f"p = {cfg.p}, tokens [a, b, =]"),
              ("regimes", "train_end 76 / 48 / 16", ", ".join(f"{k} {v['train_end']}" for k, v in REGIMES.items())),
              ("split", "pairs with a < train_end (only reading giving 16.5%)", f"`{cfg.split}` by default; other "
               "readings selectable (`--split random`, `both-operands`)"),
              ("model", "2 layers, d_model 128, 4 heads", f"{cfg.n_layers} layers, d_model {cfg.d_model}, "
               f"{cfg.n_heads} heads (TransformerLens TransformerBridge)"),
              ("optimiser", "AdamW; lr 1e-3 / wd 0.05 (easy, medium), 5e-4 / 0.15 (hard)",
               ", ".join(f"{k} lr {v['lr']:g} wd {v['weight_decay']:g}" for k, v in REGIMES.items())),
              ("budget", "15k / 15k / 30k steps; eval every 200; grokked = test acc >= 95%",
               f"{', '.join(str(v['steps']) for v in REGIMES.values())}; eval {cfg.eval_every}; threshold "
               f"{cfg.grok_threshold}; runs stop {cfg.stop_after_grok} steps after grokking"),
              ("dreaming", "every 400 steps, top-k = 100 failures, 1-2 extra steps",
               f"every {cfg.dream_every}, k {cfg.dream_k}, {cfg.dream_steps} extra steps, {cfg.dream_selection}"),
              ("control", "same number of extra updates on random training examples",
               "same schedule and count, uniform random examples")]
    body = [[n, s, w, "stated"] for n, s, w in stated]
    for name, why in OPEN_CHOICES.items():
        val = getattr(cfg, name, None)
        body.append([name, "not stated", (f"{val!r}; " if val is not None or name in ("batch_size",
                                                                                       "normalization") else "") + why,
                     "**open**"])
    return "\n".join(lines) + "\n" + _md_table(["choice", "manuscript", "here", ""], body) + "\n"


STATISTICS_TEXT = """## On the manuscript's statistics

- One seed per arm measures one draw of a random time-to-grok. Without repeated seeds there is no estimate of
  how much that time varies between seeds, so no test can say whether a difference between arms exceeds that
  variation. A "t-test" or "permutation test" on one seed can only resample within a single training curve
  (for example over subsets of evaluation points), which measures the smoothness of that curve, not the effect of
  dreaming.
- Runs that never grok within the budget are right-censored, not failures to be dropped or set to the budget.
  Here time-to-grok is analysed as survival data: Kaplan-Meier curves per arm, the log-rank test between arms,
  and the speed-up as a ratio of Kaplan-Meier medians with a seeded bootstrap interval over seeds. Mann-Whitney on
  time-to-grok (censored runs tied at the budget) is reported beside it.
- "Peak test accuracy" differences are tested by a permutation test over runs (seeds), not over evaluation points.
- An ANOVA across regimes with F < 1 and p > 0.9 says the regimes do *not* differ detectably, which is the
  opposite of claim C7; here the regimes are compared by Kruskal-Wallis on per-seed log speed-ups.
- Each verdict below names its test, its seeds and its rule (module docstring of mechgrok/audit.py).
"""


def _verdict_rows(verdicts: list[Verdict], bold: bool = True) -> list[list[str]]:
    """Table rows of verdicts (``bold``: the outcome set as a verdict; not for a calibration's rules)."""
    mark = "**" if bold else ""
    return [[v.id, v.claim, v.test, f"{v.n} ({v.runs})", v.effect, v.ci, fmt(v.p), f"{mark}{v.verdict}{mark}"]
            for v in verdicts]


def _has_summaries(r: dict) -> bool:
    """Whether the run has analysis summaries (kept in the results table)."""
    return not all(math.isnan(r[c]) for c in SUMMARY_COLUMNS)


# an arm with more analysed seeds than this gets one summary row in the mechanistic table (its runs'
# own rows are in results/runs.csv); the pilots' few seeds stay one row each
MECH_ROWS_PER_ARM = 8
# summary columns that are steps at which something happened (-1 = never)
_EVENT_STEPS = ("emergence_step", "logit_emergence_step")


def _mechanistic_row(r: dict) -> list[str]:
    """One analysed run's cells of the mechanistic table."""
    cells = {c: _cell(r[c]) for c in SUMMARY_COLUMNS}  # in the order of the table's header
    if r["emergence_step"] < 0:  # no emergence: no distance to an event either
        cells.update(emergence_step=step_or_never(r["emergence_step"]), emergence_event_distance="-")
    if r["emergence_event_distance"] < 0:  # a run without replay events (the baseline)
        cells.update(emergence_event_distance="-")
    if r["logit_emergence_step"] < 0:
        cells.update(logit_emergence_step=step_or_never(r["logit_emergence_step"]))
    return [r["variant"], r["arm"], str(r["seed"]), str(r["budget"])] + list(cells.values())


def _mechanistic_summary_row(runs: list[dict]) -> list[str]:
    """One arm's analysed runs in one row: each column's median over the runs that have a value, with
    '(m/n)' where only m of the n runs do (an analysis stored before that reading existed); an
    emergence step's median, and its distance to an event, are over the runs where it happened, with
    'never in j' for the others ('never' where it happened in none)."""
    n = len(runs)

    def with_notes(value: str, known: int, never: int = 0) -> str:
        notes = ([] if known == n else [f"{known}/{n}"]) + ([f"never in {never}"] if never else [])
        return value + (f" ({', '.join(notes)})" if notes else "")

    cells = {}
    for c in (c for c in SUMMARY_COLUMNS if c != "emergence_event_distance"):  # that one: below
        known = [r for r in runs if not math.isnan(r[c])]
        happened = [r for r in known if r[c] >= 0] if c in _EVENT_STEPS else known
        if not known:
            cells[c] = "-"
        elif not happened:  # an emergence step that no run reached
            cells[c] = with_notes("never", len(known))
        else:
            cells[c] = with_notes(_cell(float(np.median([r[c] for r in happened]))), len(known),
                                  len(known) - len(happened))
    # the distance to an event, over the runs that emerged (-1: a run without replay events; NaN is not >= 0)
    dist = [r["emergence_event_distance"] for r in runs
            if r["emergence_step"] >= 0 and r["emergence_event_distance"] >= 0]
    cells["emergence_event_distance"] = _cell(float(np.median(dist))) if dist else "-"
    budgets = sorted({r["budget"] for r in runs})
    return [runs[0]["variant"], runs[0]["arm"], f"{n} runs ({seed_ranges(r['seed'] for r in runs)})",
            str(budgets[0]) if len(budgets) == 1 else f"{budgets[0]}-{budgets[-1]}"] + [cells[c] for c in SUMMARY_COLUMNS]


def _mechanistic_section(rows: list[dict]) -> str:
    out = ["## Mechanistic evidence (C5, C6, C12)", ""]
    body = []
    analysed_runs = finished(rows, keep=_has_summaries)  # a seed's longest analysed run, which may be a shorter budget
    for key in sorted({(r["variant"], r["arm"]) for r in analysed_runs}):
        runs = [r for r in analysed_runs if (r["variant"], r["arm"]) == key]
        body += ([_mechanistic_summary_row(runs)] if len(runs) > MECH_ROWS_PER_ARM else
                 [_mechanistic_row(r) for r in runs])
    if not body:
        out.append("No run has been analysed yet: `python -m mechgrok.analyze fourier runs/` (and `norms`, "
                   "`landscape`, `probes`).")
        return "\n".join(out) + "\n"
    out.append("Per seed, its longest analysed run (steps = its budget; a seed's longer run without analyses, "
               "carried from the table, is left out here): Fourier emergence step (first checkpoint with top-5 "
               "share >= 0.5 and restricted loss <= 1 nat) and its distance to the nearest replay "
               "event; final top-5 share of W_E; the same read from the logits: the first checkpoint whose restricted "
               "loss with the five strongest frequencies of the logits' spectrum along cos/sin k(a+b) is <= 1 nat, "
               "and that loss at the final checkpoint (mechgrok/fourier.py, \"Why both\": at weak weight decay a "
               "model can run the algorithm on a few frequencies while W_E stays spread; '-' for analyses run "
               "before this reading existed); "
               "median ratio of the displacement across a replay event to an ordinary window scaled to the same "
               "number of updates; loss barriers (train) from the memorisation to the grokked checkpoint (stated "
               "definition, and over the chord), from the memorisation to the final checkpoint of a run that never "
               "grokked (over the chord), and across replay events (stated definition); held-out accuracy of a "
               "linear probe of (a + b) mod p on the last layer's residual stream at the final checkpoint (chance "
               "1/p; probes/linear.py). The top-5 share measures how much of W_E's energy sits in any five "
               "frequencies, the lowest ones included (a smooth embedding); only with a low restricted loss (which the "
               "emergence step also requires) are they the frequencies of the modular-addition algorithm. An arm with "
               f"more than {MECH_ROWS_PER_ARM} analysed seeds is one row: each column's median over its runs, with "
               "(m/n) where only m of its n runs have the value (analyses stored before that reading existed); an "
               "emergence step and its distance to an event are the median over the runs where it happened, with "
               "'never in j' for the others; each run's own values are in results/runs.csv.")
    out.append("")
    out.append(_md_table(["variant", "arm", "seed", "steps", "emergence", "to event", "top-5 share", "logit emergence",
                          "logit restricted", "event/window",
                          "mem->alg barrier", "chord", "mem->final chord", "event barrier", "(a+b) probe"], body))
    return "\n".join(out + _solution_overlap(rows)) + "\n"


def _solution_overlap(rows: list[dict]) -> list[str]:
    """Which Fourier solution the runs that grokked reached, compared (descriptive, no verdict): the
    overlap (fourier.key_overlap) of W_E's key frequencies at their final checkpoints, per variant, for
    the two arms of one seed (each other arm against baseline) and for two seeds of one arm."""
    final = {}  # variant -> arm -> seed -> W_E's key frequencies at the final checkpoint
    for r, arrays, _ in analysed(rows, "fourier", "we_norms"):
        if r["grokked"]:
            final.setdefault(r["variant"], {}).setdefault(r["arm"], {})[r["seed"]] = key_frequencies(arrays["we_norms"][-1])
    body = []
    for variant, arms in sorted(final.items()):
        pairs = {}  # label -> (the pairs of key sets compared, the key set of each run in them)
        base = arms.get("baseline", {})
        for arm in sorted(a for a in arms if a != "baseline"):
            shared = sorted(set(arms[arm]) & set(base))
            pairs[f"{arm} vs baseline, same seed"] = ([(arms[arm][s], base[s]) for s in shared],
                                                      [arms[arm][s] for s in shared] + [base[s] for s in shared])
        for arm in sorted(arms):
            seeds = sorted(arms[arm])
            pairs[f"{arm}, two seeds"] = ([(arms[arm][s], arms[arm][t]) for i, s in enumerate(seeds) for t in seeds[i + 1:]],
                                          [arms[arm][s] for s in seeds])
        for label, (pp, runs) in pairs.items():
            j = np.array([key_overlap(a, b) for a, b in pp])
            j = j[~np.isnan(j)]
            if len(j):
                q1, med, q3 = np.percentile(j, [25, 50, 75])
                n_keys = np.median([len(k) for k in runs])
                body.append([variant, label, str(len(j)), _cell(n_keys), f"{_cell(med)} ({_cell(q1)}-{_cell(q3)})",
                             f"{int(np.sum(j == 1))}/{len(j)}", f"{int(np.sum(j == 0))}/{len(j)}"])
    if not body:
        return []
    return ["", "Which Fourier solution the runs reached (descriptive, no verdict): W_E's key frequencies at the final "
            "checkpoint of each run that grokked (the fewest frequencies holding 80% of its energy, mechgrok/fourier.py), "
            "two runs compared by the share of their key frequencies they have in common (shared / either's; 1: "
            "the same set, 0: none shared); median (quartiles) over the pairs. 'Same seed': the two arms of one "
            "seed, which start from the same initialisation and training pairs; 'two seeds': every pair of seeds "
            "of one arm, the reference for how alike two independent solutions are (a seed fixes the "
            "initialisation and, under split=random, the training pairs). 'Keys per run': the median size of "
            "the compared runs' key sets; where it is large (weak weight decay leaves W_E spread, "
            "mechgrok/fourier.py, 'Why both'), a high overlap says less.",
            "", _md_table(["variant", "runs compared", "pairs", "keys per run", "overlap, median (quartiles)",
                           "the same set", "none shared"], body)]


GPU_BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "bench_batch_cuda.json"


def _gpu_rate(path: Path = GPU_BENCHMARK) -> tuple[float, str] | None:
    """Run-steps per second of the fastest batched trainer row in the GPU benchmark
    (benchmarks/bench_batch.py --device cuda), and what it was measured on; None if absent."""
    try:
        bench = json.loads(Path(path).read_text())
        best = max(bench["rows"], key=lambda r: r["run_steps_per_s"])
    except (OSError, ValueError, KeyError):
        return None
    return best["run_steps_per_s"], (f"{best['runs']} runs per batch ({best['mode']}) on {bench['device_name']}, "
                                     f"{bench['arm']} arm, hard regime")


def _cpu_seconds_per_step(fin: list[dict], variant: str) -> tuple[float, bool] | None:
    """Measured process seconds per training step of a variant's CPU runs (None without any),
    and whether they come from runs that flushed subnormal floats. Only those are used when
    there are any: the others' late steps were slowed by subnormals, an overestimate now."""
    cpu = [r for r in fin if r["variant"] == variant and r["device"] == "cpu" and r["steps_trained"] > 0]
    flushed = [r for r in cpu if r["denormals_flushed"]]
    use = flushed or cpu
    return (float(np.mean([process_seconds(r) / r["steps_trained"] for r in use])), bool(flushed)) if use else None


def _cost(runs: str, n_runs: int, steps: int, per_step: tuple[float, bool] | None, gpu) -> str:
    """What ``n_runs`` whole runs of ``steps`` cost: on this CPU (two runs side by side) and on the GPU."""
    cost = []
    if per_step is not None:
        seconds, flushed = per_step
        cost.append(f"{runs} x {steps} steps x {seconds * 1e3:.0f} ms / 2 workers = "
                    f"{n_runs * steps * seconds / 7200:.1f} h on this CPU"
                    + ("" if flushed else " (an upper bound: measured on runs that kept subnormal floats)"))
    if gpu:
        cost.append(f"{n_runs * steps / gpu[0] / 3600:.2f} h on the GPU")
    return "; ".join(cost) or "-"


# what the power calculation aims at in each regime: the speed-up its claim states (C2: "small", read as 1.5x;
# C3, C8: 3.7x), and equivalence for its claims of no effect (C1: dream vs baseline in easy; C9: control vs
# baseline in hard)
POWER_AIMS = {"easy": ("equivalence",), "medium": (1.5,), "hard": (PAPER["hard_speedup"][0], "equivalence")}
# the claims each aim serves
SPEED_CLAIM_REGIME = {"C1": "easy", "C2": "medium", "C3": "hard", "C8": "hard", "C9": "hard"}
NO_EFFECT_CLAIMS = ("C1", "C9")


def _aim_label(aim) -> str:
    return (f"equivalence within {EQUIVALENCE[0]:.2f}-{EQUIVALENCE[1]:.2f}" if aim == "equivalence"
            else f"detect {aim}x")


def _power_rows(fin: list[dict], gpu) -> dict[tuple[str, object], dict]:
    """Per reading with baseline runs and per aim (POWER_AIMS): seeds per arm for the log-rank test to
    detect the claimed speed-up (stats.seeds_needed), or for a claim of no effect to be supported by
    equivalence (stats.seeds_for_equivalence), both simulated from the baseline runs; or why more seeds
    cannot do it; and the cost."""
    out = {}
    for variant in sorted({r["variant"] for r in fin if not is_calibration(r["variant"])}):
        base = select(fin, variant=variant, arm="baseline")
        if not base:
            continue
        budget = max(r["budget"] for r in base)
        times, grokked = [r["time_to_grok"] for r in base], [r["grokked"] for r in base]
        shorter = sorted({r["budget"] for r in base if r["budget"] < budget})
        # the pilots that stopped earlier say nothing about grok times past their budget
        pilots = (f" ({sum(r['budget'] == budget for r in base)} of {len(base)} pilot runs ran all {budget} "
                  f"steps; the others stopped at {' or '.join(map(str, shorter))})") if shorter else ""
        for aim in POWER_AIMS[variant.split("@")[0]]:
            res = (stats.seeds_for_equivalence(times, grokked, margin=EQUIVALENCE) if aim == "equivalence"
                   else stats.seeds_needed(times, grokked, budget, aim))
            cost = "-" if res["n"] is None else _cost(f"{res['n']} seeds x 3 arms", res["n"] * 3, budget,
                                                       _cpu_seconds_per_step(fin, variant), gpu)
            out[(variant, aim)] = {"aim": _aim_label(aim), "pilot": len(base), "n": res["n"],
                                   "reason": res["reason"] + pilots, "cost": cost}
    return out


def _c1_pooled_text(audit: Audit) -> str:
    """What more seeds can do for C1's part (a), the pooled sign test of "every arm groks by ~200":
    its rule supports it only when every run known at the tolerance grokked by then."""
    pooled = [r for arm in ("baseline", "dream", "control") for r in audit.arm("easy", arm)]
    tol, k, n, _ = audit.claimed_time(pooled, PAPER["easy_grok"])
    if k == n:
        return f"(a) every run known at step {tol} grokked by then ({k}/{n})"
    return (f"(a) the pooled sign test is supported only when every run groks by step {tol}, and {n - k} of {n} "
            f"did not, so no number of seeds can make C1 supported; more seeds contradict it only if fewer than "
            f"half of the runs grok by then ({k}/{n} do now)")


def _more_seeds_text(v: Verdict, audit: Audit, power: dict, gpu) -> str:
    """What more seeds can do for one inconclusive claim under the audit's reading."""
    cid = v.id
    needs = [n for n in v.notes if n.startswith("needs: ")]
    if needs and v.n == 0:
        return f"what it lacks is not seeds but measurements of the runs it has; {needs[0]}"
    if cid in SPEED_CLAIM_REGIME:
        variant = audit.variant(SPEED_CLAIM_REGIME[cid])
        aims = POWER_AIMS[SPEED_CLAIM_REGIME[cid]]
        aim = "equivalence" if cid in NO_EFFECT_CLAIMS else next(a for a in aims if a != "equivalence")
        row = power.get((variant, aim))
        if row is None:
            return f"no baseline runs in `{variant}` to simulate from"
        text = (f"`{variant}`, {row['aim']} (table above): {row['reason']}"
                + (f"; cost: {row['cost']}" if row["n"] is not None else ""))
        if cid == "C1":
            text = _c1_pooled_text(audit) + "; (b) " + text
        return text
    if cid == "C4":
        dream = audit.full_budget("dream")
        k = sum(r["peak_test_acc"] >= PEAK_LEVEL for r in dream)
        if k:
            return f"{k} of {len(dream)} dream runs reach {PEAK_LEVEL:.0%}; the permutation test needs more of both arms"
        n = next(n for n in range(max(MIN_SEEDS, len(dream)), 100) if stats.median_at_most(0, n) < ALPHA)
        extra = n - len(dream)
        return (f"no dream run at the full budget reaches {PEAK_LEVEL:.0%} (0/{len(dream)}); if the next ones do not "
                f"either, {n} runs reject the claimed ~98% level by the sign test: {extra} more dream runs (and as "
                f"many baselines, for the permutation test) cost " +
                _cost(f"{2 * extra} runs", 2 * extra, REGIMES["hard"]["steps"],
                      _cpu_seconds_per_step(audit.rows, audit.variant("hard")), gpu))
    if cid == "C7":
        by_regime = {reg: select(audit.rows, variant=audit.variant(reg)) for reg in REGIMES}
        none = [reg for reg, runs in by_regime.items() if runs and not any(r["grokked"] for r in runs)]
        if none:
            return (f"no run grokked in {', '.join(none)}: every per-seed speed-up there is 1 (both runs censored "
                    "at the same step), so more seeds at these budgets cannot change the verdict")
        return "needs at least 3 seeds with a baseline and a dream run in each of the three regimes"
    if cid == "C10":
        return "the correlation needs at least 4 grokked dream runs"
    return "not computed for this claim"


def _power_section(rows: list[dict], audits: dict[str, list[Verdict]] | None = None) -> str:
    out = ["## More seeds: what the power calculation asks for", ""]
    gpu, fin = _gpu_rate(), finished(rows)
    power = _power_rows(fin, gpu)
    if not power:
        return "\n".join(out + ["No finished baseline runs yet."]) + "\n"
    out.append("Seeds per arm for 80% power, simulated from the baseline runs: for a claimed speed-up, that the log-rank "
               "test detects it (stats.seeds_needed); for a claimed absence of effect (C1, C9), that the verdict rule "
               "supports it (speed-up interval inside the equivalence margin, log-rank not rejecting) when the arms "
               "truly do not differ (stats.seeds_for_equivalence). CPU cost: the reading's measured seconds per step on this "
               "machine (2 cores, one run per core), whole budgets; from the runs that flushed subnormal floats "
               "where the reading has any (earlier runs kept them, which made their late steps up to 3.3x slower: "
               "benchmarks/bench_denormals.py). " +
               (f"GPU cost: whole budgets at {gpu[0]:.0f} run-steps/s, the batched trainer's rate measured by "
                f"`python benchmarks/bench_batch.py --device cuda --runs 1 32 --steps 400` ({gpu[1]}; "
                "benchmarks/results/bench_batch_cuda.json); medium and easy steps are larger than hard ones, so "
                "their GPU cost is a lower bound." if gpu else "GPU cost: not measured (no GPU benchmark in "
                "benchmarks/results/)."))
    out.append("")
    body = [[v, p["aim"], str(p["pilot"]), "-" if p["n"] is None else str(p["n"]), p["reason"], p["cost"]]
            for (v, _), p in power.items()]
    out += [_md_table(["reading", "aim", "pilot runs", "seeds per arm", "why", "cost"], body), ""]
    pending = [(reading, v) for reading, verdicts in (audits or {}).items() for v in verdicts
               if v.verdict.startswith("inconclusive")]
    if pending:
        by_reading = {reading: Audit(fin, reading) for reading in audits}
        out += ["Each inconclusive verdict, and what more seeds can do for it:", ""]
        out += [f"- **{v.id}** (`{reading or 'stated'}`, {v.verdict}): "
                f"{_more_seeds_text(v, by_reading[reading], power, gpu)}." for reading, v in pending]
        out.append("")
    return "\n".join(out) + "\n"


def _detail_line(v: Verdict, with_effect: bool = False) -> str:
    """A verdict's Details bullet: its notes (and its effect where no verdict table shows it)."""
    return f"- **{v.id}** ({v.verdict}{'; ' + v.effect if with_effect else ''}): " + "; ".join(v.notes)


def build(paths, out: str | Path, figures: bool = True, figures_dir: str | Path | None = None,
          readme: str | Path | None = None, table: str | Path | None = None) -> tuple[Path, list[Verdict]]:
    """Write REPORT.md, report.html, runs.csv, curves.csv and analyses.csv for the runs under ``paths`` (figures
    into ``figures_dir``, default OUT/figures; with ``readme``, replace its Findings block); return
    the verdicts of the paper's stated reading.

    With ``table`` (an earlier runs.csv), its finished runs whose files are not on this machine
    are carried (results.carry): every statistic computed from table rows includes them, the new
    runs.csv keeps them, and their learning curves and analysis series (C6, the analysis figures)
    come from the curves.csv and analyses.csv beside the table where they hold them
    (results.load); the report says how many rows were carried."""
    out = out_dir(out)  # every output location is checked before anything is written
    fig_dir = Path(figures_dir) if figures_dir is not None else out / "figures"
    if figures:
        out_dir(fig_dir)
    if readme is not None:
        readme_text(readme)
    rows, problems, n_carried = load(paths, table)
    if not rows:
        raise no_runs_error(paths, problems, "readable run files", table)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "runs.csv")
    write_curves(rows, out / "curves.csv")
    write_analyses(rows, out / "analyses.csv")
    reads = readings(rows) or [""]
    audits = {r: Audit(rows, r).all() for r in reads}
    main_reading = "" if "" in audits else reads[0]
    verdicts = audits[main_reading]
    fin = finished(rows)
    n_running = sum(1 for r in rows if not r["finished"])
    n_shorter = len(rows) - n_running - len(fin)
    lines = ["# Claims audit: \"Accelerating Grokking through Targeted Replay of Failures\"", "",
             f"Generated by `python -m mechgrok.report` ({provenance.versions_text()}; commit {provenance.describe()}) on "
             f"{datetime.now(timezone.utc).date()} from {len(rows)} runs: {len(fin)} finished; {n_running} still "
             f"training and left out; {n_shorter} shorter budgets of a seed run longer, counted once"
             f"{'; unreadable: ' + str(len(problems)) if problems else ''}. "
             f"Compute in the finished runs: {compute_bounds_text(rows)}. The true total lies between the two "
             f"(a longer run extended from a shorter one carries its time, which the second bound counts twice; "
             f"a shorter run trained separately is left out of the first; the run files do not say which).", "",
             *_carried_text(rows, n_carried, table),
             "Verdicts are computed by the rules in the module docstring of mechgrok/audit.py: log-rank test and "
             "bootstrap interval of the Kaplan-Meier median speed-up for speed claims, a sign test for claimed grok "
             "times, equivalence within [2/3, 3/2] for claims of no effect, alpha = 0.05, and no verdict below "
             f"{MIN_SEEDS} finished runs per arm; a claim tested by several comparisons is contradicted by any one "
             "of them and supported only by all.", "",
             f"## Verdicts (reading: {'the paper’s stated setup' if main_reading == '' else main_reading})", "",
             _md_table(["id", "claim", "test", "runs (seeds)", "effect", "95% CI", "p", "verdict"],
                       _verdict_rows(verdicts)), "", "### Details", ""]
    lines += [_detail_line(v) for v in verdicts] + [""]
    if len(audits) > 1:
        lines += ["## Does a verdict depend on the reading?", "",
                  "The same rules on each regime reading that has runs (variant suffix = settings that differ from "
                  "the paper's stated ones).", ""]
        head = ["id"] + [f"`{r or 'stated'}`" for r in audits]
        body = [[v.id] + [audits[r][i].verdict for r in audits] for i, v in enumerate(verdicts)]
        lines += [_md_table(head, body), ""]
        for r, audit in audits.items():
            if r == main_reading:
                continue
            lines += [f"### Details under `{r or 'stated'}`", ""]
            lines += [_detail_line(v, with_effect=True) for v in audit if v.verdict != "no runs"] + [""]
    lines += [_seed42_section(rows), "", "## Time-to-grok by arm", "", "```",
              stats.format_table(stats.table(rows)) if fin else "no finished runs", "```", "",
              _mechanistic_section(rows), _power_section(rows, audits), _calibration_section(rows), STATISTICS_TEXT,
              _setup_section(rows)]
    if problems:
        lines += ["## Files that could not be read", ""] + [f"- {p}" for p in problems]
    figs: list[Path] = []
    if figures and fin:
        from .figures import make_all

        captions: dict = {}
        figs = make_all(rows, fig_dir, prune=True, captions=captions)
        rel = Path(os.path.relpath(fig_dir, out))
        lines += ["## Figures", ""]
        for f in figs:
            if f.suffix == ".png":
                lines += [f"![{f.stem}]({(rel / f.name).as_posix()})", "", f"*{captions[f.stem]}*", ""]
    text = "\n".join(lines) + "\n"
    (out / "REPORT.md").write_text(text)
    (out / "report.html").write_text(to_html(text, out))
    if readme is not None:
        splice_findings(readme, findings(verdicts, rows, out, audits))
    return out / "REPORT.md", verdicts


def _carried_text(rows: list[dict], n_carried: int, table) -> list[str]:
    """The header paragraph on runs carried from an earlier results table without their files."""
    if not n_carried:
        return []
    fin = finished(rows)
    with_files = sum(1 for r in fin if has_file(r))
    series = sum(1 for r in fin if not has_file(r) and r.get("analyses"))
    return [f"{n_carried} of these rows come from the results table `{table}` without their run files (trained "
            "earlier; the files are not on this machine). They enter every statistic computed from the table's "
            "columns: times to grok, peak accuracies, replay counts, surprise, replay-event effects and analysis "
            "summaries, where the table holds them; learning curves, where the curves table beside it "
            "(`curves.csv`) holds them; and the analyses' per-checkpoint series (C6, the analysis figures), where "
            f"the analyses table beside it (`analyses.csv`) holds them: {series} of the carried runs in use have "
            f"series there, and {with_files} finished runs have their files here.",
            ""]


FINDINGS_START = "<!-- findings:start (generated by python -m mechgrok.report; do not edit) -->"
FINDINGS_END = "<!-- findings:end -->"


def _effect_text(v: Verdict) -> str:
    """A verdict's effects with their intervals, leaving out the parts that are n/a: each effect
    next to its interval where the two lists match, else the effects and then the intervals."""
    effects, cis = v.effect.split("; "), v.ci.split("; ")
    known = lambda x: x and not x.endswith("n/a")  # noqa: E731
    if len(effects) == len(cis):
        parts = [e + (f" {c}" if known(c) else "") for e, c in zip(effects, cis) if known(e)]
    else:
        parts = [e for e in effects if known(e)] + [c for c in cis if known(c)]
    return "; ".join(parts) or "n/a"


# the Findings block lists each calibration arm's grok steps up to this many; beyond, their median and range
FINDINGS_STEPS = 5


def findings(verdicts: list[Verdict], rows: list[dict], out: Path,
             audits: dict[str, list[Verdict]] | None = None) -> str:
    """The README's Findings block: one line per claim, compute, commands and versions, and
    the claims whose verdict differs between the readings in ``audits``."""
    fin = finished(rows)
    lines = [f"Generated from {len(fin)} finished runs (`{out}/runs.csv`; "
             f"training: {compute_bounds_text(rows)}) by `python -m mechgrok.report runs/ --out "
             f"{out} --figures-dir figures --readme README.md` ({provenance.versions_text()}). "
             f"Full audit: [{out}/REPORT.md]({out}/REPORT.md).", ""]
    for v in verdicts:
        lines.append(f"- **{v.id}** {v.verdict}: {_effect_text(v)} ({v.test}; runs: {v.runs})")
    differ, undecided = [], []
    for i, v in enumerate(verdicts):
        by = {r or "stated": a[i].verdict for r, a in (audits or {}).items()}
        text = f"{v.id} (" + "; ".join(f"`{r}`: {x}" for r, x in by.items() if x != "no runs") + ")"
        decided = {x for x in by.values() if x in ("supported", "contradicted")}
        if len(decided) > 1:
            differ.append(text)
        elif decided and any(x.startswith("inconclusive") for x in by.values()):
            undecided.append(text)
    if differ:
        lines += ["", "Verdicts that one reading supports and another contradicts: " + ", ".join(differ) + "."]
    if undecided:
        lines += ["", "Verdicts that one reading decides and another leaves inconclusive: " + ", ".join(undecided)
                  + "."]
    cal = [r for r in fin if is_calibration(r["variant"])]
    if cal:
        lines += ["", "Calibration runs (they change stated settings and enter no verdict; REPORT.md, 'Calibration "
                  "runs'):"]
        for variant in sorted({r["variant"] for r in cal}):
            runs = select(cal, variant=variant)
            arms = sorted({r["arm"] for r in runs}, key=lambda a: (a != "baseline", a))
            parts = []
            for arm in arms:
                mine = select(runs, arm=arm)
                steps = sorted(r["time_to_grok"] for r in mine if r["grokked"])
                told = (f"steps {', '.join(map(str, steps))}" if len(steps) <= FINDINGS_STEPS else
                        f"median {_lower_median(steps)}, range {steps[0]}-{steps[-1]}")
                parts.append(f"{arm} grokked {len(steps)}/{len(mine)}" + (f" ({told})" if steps else ""))
            text = "; ".join(parts)
            for arm, ref in _calibration_comparisons(runs):
                pairs = _seed_pairs(runs, arm, ref)
                if len(pairs) >= MIN_SEEDS:
                    text += f"; {arm} vs {ref}, same seeds: {_paired_comparison(pairs)}"
            rules = calibration_rules(rows, variant)
            if rules:
                text += ("; the claims' rules on it (not verdicts): "
                         + ", ".join(f"{v.id} {v.verdict}" for v in rules))
            lines.append(f"- `{variant}`: {text}.")
    return "\n".join(lines)


def readme_text(readme: str | Path) -> str:
    """The text of a README whose Findings block the report replaces; MechgrokError if it is
    missing or has no findings markers (checked before the report writes anything)."""
    path = Path(readme)
    if not path.is_file():
        raise MechgrokError(f"{path}: no such README")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MechgrokError(f"{path}: not a UTF-8 text file ({exc})") from None
    if FINDINGS_START not in text or FINDINGS_END not in text:
        raise MechgrokError(f"{path}: no findings markers ({FINDINGS_START} ... {FINDINGS_END})")
    return text


def splice_findings(readme: str | Path, block: str) -> None:
    path = Path(readme)
    head, rest = readme_text(path).split(FINDINGS_START, 1)
    _, tail = rest.split(FINDINGS_END, 1)
    path.write_text(head + FINDINGS_START + "\n" + block + "\n" + FINDINGS_END + tail, encoding="utf-8")


def to_html(markdown: str, base: Path) -> str:
    """A self-contained HTML page for the report's markdown subset (headings, tables, lists,
    code blocks, bold, inline code, whole-line italics, images embedded as data URIs)."""
    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
        s = re.sub(r"`(.+?)`", r"<code>\1</code>", s)
        return s

    out, in_code, in_list, table = [], False, False, []

    def flush_table():
        if table:
            rows = [r for r in table if not re.fullmatch(r"\|(---\|)+", r)]
            cells = [[c.strip() for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows]
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells[0]) + "</tr>" +
                       "".join("<tr>" + "".join(f"<td>{inline(c.replace(chr(92) + '|', '|'))}</td>" for c in r) +
                               "</tr>" for r in cells[1:]) + "</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("```"):
            flush_table()
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            out.append(html.escape(line))
            continue
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if in_list and not line.startswith(("- ", "  ")):
            out.append("</ul>")
            in_list = False
        m = re.match(r"!\[(.*?)\]\((.+?)\)", line)
        if m:
            data = base64.b64encode((base / m.group(2)).read_bytes()).decode()
            out.append(f'<figure><img alt="{html.escape(m.group(1))}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{html.escape(m.group(1))}</figcaption></figure>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(line[2:])}</li>")
        elif line.startswith("  ") and in_list:
            out[-1] = out[-1].replace("</li>", " " + inline(line.strip()) + "</li>")
        elif re.fullmatch(r"\*[^*].*[^*]\*", line):  # a whole-line italic: a figure's caption
            out.append(f"<p><i>{inline(line[1:-1])}</i></p>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush_table()
    if in_list:
        out.append("</ul>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:3px 6px;"
             "vertical-align:top}img{max-width:100%}pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:0.8em}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mechgrok claims audit</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def main(argv: list[str] | None = None) -> int:
    from .cli import OneLineParser, error_line

    ap = OneLineParser(prog="python -m mechgrok.report", description="Write the claims audit from run files.")
    ap.add_argument("paths", nargs="+", help="run files or folders (searched recursively)")
    ap.add_argument("--out", default="report", help="output folder (report/)")
    ap.add_argument("--no-figures", action="store_true", help="skip the figures")
    ap.add_argument("--figures-dir", help="where the figures go (OUT/figures)")
    ap.add_argument("--readme", help="replace the Findings block of this README")
    ap.add_argument("--table", help="an earlier results table whose runs without files here are carried "
                                    "(default: OUT/runs.csv if it exists)")
    ap.add_argument("--no-table", action="store_true", help="use only the run files under PATHS")
    args = ap.parse_args(argv)
    table = None if args.no_table else args.table or (Path(args.out) / "runs.csv")
    try:
        if table is not None and not Path(table).is_file():
            if args.table:
                raise MechgrokError(f"{table}: no such results table")
            table = None
        path, verdicts = build(args.paths, args.out, figures=not args.no_figures, figures_dir=args.figures_dir,
                               readme=args.readme, table=table)
    except MechgrokError as exc:
        return error_line(ap.prog, exc)
    for v in verdicts:
        print(f"{v.id:<4} {v.verdict:<24} {v.effect}")
    print(f"wrote {path} and {path.parent / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
