"""The claims audit's rules: every claim's verdict, computed from the runs.

Evaluates every claim of the manuscript (ids C1..C13 of ../shared/paper/claims.md)
by a stated, mechanical rule: :class:`Audit`, one method per claim, applied to the
rows of the results table (:mod:`mechgrok.results`: run files and their /analysis
results, or rows carried from ``results/runs.csv``). :mod:`mechgrok.report` writes
the verdicts into ``REPORT.md``, ``report.html`` and the README's Findings, with
these rules printed next to them. Nothing in a verdict is typed by hand.

Verdict vocabulary: ``supported``, ``contradicted``, ``inconclusive at n = N``
(N = the smallest number of finished runs per arm behind the test), or
``no runs`` with the sweep command that would supply them.

Rules shared by the claims (alpha = 0.05 throughout):

- A claimed speed-up of arm X over arm Y is *supported* when the log-rank test
  rejects in the claimed direction and the bootstrap 95% interval of the speed-up
  (ratio of Kaplan-Meier medians) lies above 1; *contradicted* when the log-rank
  test rejects in the other direction, when the interval lies below the claimed
  factor, or when the sign test rejects the claimed grok time of X (below).
- A claimed grok time T ("about T steps") is tested by the sign test on the
  median: among the arm's runs whose outcome at T_tol = max(1.5 T, T + eval_every)
  is known (grokked, or trained to at least T_tol), those that grokked by T_tol
  are counted; if so few did that the median time cannot be <= T_tol
  (one-sided binomial p < alpha) the time is contradicted.
- A claimed absence of effect is *supported* only by equivalence: the speed-up
  interval inside [2/3, 3/2]; *contradicted* when the log-rank test rejects.
- No verdict other than inconclusive with fewer than ``MIN_SEEDS`` (3) finished
  runs per arm.
- A claim made of parts (C1, C3, C6, C8 and C9 test several comparisons; C13 stands
  on C3 and C7) is contradicted by one contradicted part, supported only when
  every part is, and otherwise inconclusive at the smallest n of the parts with
  runs (:meth:`Audit.joint`).

A calibration (a variant that changes a stated setting) enters no verdict. Its
runs are described in their own section, where the same rules are also applied
to them (``calibration_rules``): what the verdicts would be if it were accepted
as a reading, labelled as such and never mixed into the verdict tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import stats
from .config import REGIMES, config_of_variant, reading_settings, stated_changes
from .fourier import step_or_never
from .results import analysed, capped_loss_ratio, finished, has_file, seed_ranges, select, shared_checkpoints

ALPHA = 0.05
MIN_SEEDS = 3
PEAK_LEVEL = 0.95  # C4's claimed ~98% peak test accuracy, tested as a median peak at or above this
EQUIVALENCE = (2 / 3, 3 / 2)

# What the manuscript reports (claims.md), used only as the values the tests test against.
PAPER = {
    "hard_grok": {"dream": 2000, "control": 7400, "baseline": 7800},
    "hard_speedup": (3.7, 3.9),
    "easy_grok": 200,
    "hard_peak": {"dream": 0.9825, "baseline": 0.9817},
    "surprise_ratio": 1.5,
    "surprise_r": 0.82,
}


CLAIMS = {
    "C1": "Easy regime: every arm groks within about 200 steps; dreaming has no effect.",
    "C2": "Medium regime: a shallow memorisation plateau; dreaming gives a small acceleration.",
    "C3": "Hard regime: dreaming groks 3.7-3.9x faster (about 2000 steps vs 7400 control and 7800 baseline).",
    "C4": "Hard regime: dreaming reaches a marginally higher peak test accuracy (98.25% vs 98.17%).",
    "C5": "Hard regime: dream events cause temporary drops in train accuracy, followed by a rapid rise in test accuracy.",
    "C6": "Dreaming destabilises the memorisation basin and moves the model toward the Fourier solution.",
    "C7": "The benefit grows with generalisation difficulty (easy < medium < hard).",
    "C8": "Dreaming is harmful when applied too early; it must act during the plateau.",
    "C9": "The replay must be targeted: random replay of the same size does not accelerate.",
    "C10": "Surprise of replayed samples is about 1.5x the mean loss; steps-to-grok correlates with surprise (r = 0.82).",
    "C11": "Dreaming and control are compute-matched (same extra updates).",
    "C12": "Integer tokenisation makes unseen operands novel embeddings (a memorisation barrier).",
    "C13": "The reported statistics (single-seed t-test and permutation test; ANOVA F<1, p>0.9) support the conclusions.",
}


@dataclass
class Verdict:
    id: str
    test: str
    runs: str
    n: int
    effect: str
    ci: str
    p: float
    verdict: str
    notes: list[str] = field(default_factory=list)

    @property
    def claim(self) -> str:
        return CLAIMS[self.id]


def fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def ci_text(lo, hi) -> str:
    return "n/a" if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)) else f"[{fmt(lo)}, {fmt(hi)}]"


def sweep_command(regimes, arms, seeds="42,0-9", extra="") -> str:
    return (f"python -m mechgrok.sweep --regimes {' '.join(regimes)} --arms {' '.join(arms)} --seeds {seeds} "
            f"--out runs{(' ' + extra) if extra else ''}")


def reading_of(variant: str) -> str:
    """The reading of a variant: its settings after '@' ('' = the paper's stated setup)."""
    return variant.split("@", 1)[1] if "@" in variant else ""


def is_calibration(variant: str) -> bool:
    """A variant that changes a stated setting: a calibration of the instrument, not a reading."""
    return bool(stated_changes(reading_of(variant)))


def _reading_flags(variant: str) -> str:
    """Sweep flags that reproduce a variant's non-default settings (best effort for the common ones)."""
    settings = reading_settings(reading_of(variant))
    return " ".join(f"--{name.replace('_', '-')} {value}" for name, value in settings.items())


def _needs_files(analysis: str | None, rows: list[dict]) -> str:
    """What a verdict without data needs: the analysis run on the files that are here, or (runs
    carried from the results table without files, or ``analysis`` None: a measurement made while
    training) the runs trained again."""
    here = [r["path"] for r in rows if has_file(r)] if analysis else []
    gone = sum(not has_file(r) for r in rows)
    parts = [f"python -m mechgrok.analyze {analysis} " + " ".join(here)] if here else []
    if gone:
        parts.append(f"{gone} runs trained again (their files are not on this machine; rows carried from the "
                     "results table)")
    return "needs: " + "; ".join(parts)


def _grokked_counts(c: dict, ref: list[dict], new: list[dict]) -> str:
    """How many runs of each arm of a comparison (stats.compare) grokked, new arm first."""
    return f"grokked: {new[0]['arm']} {c['grokked_new']}/{len(new)}, {ref[0]['arm']} {c['grokked_ref']}/{len(ref)}"


def speedup_effect(c: dict, ref: list[dict], new: list[dict]) -> str:
    """The speed-up of a comparison (stats.compare), or, where no median exists, how many runs grokked."""
    if math.isnan(c["speedup"]):
        return f"speed-up n/a ({_grokked_counts(c, ref, new)})"
    return f"speed-up {fmt(c['speedup'])}"


def _grokked_note(c: dict, ref: list[dict], new: list[dict]) -> str:
    """'; grokked: ...' for a comparison's notes, or '' where its effect already says it (no speed-up)."""
    return "" if math.isnan(c["speedup"]) else "; " + _grokked_counts(c, ref, new)


def seed_speedup(ref: dict, new: dict) -> float:
    """ref / new time-to-grok of two runs of one seed, both cut at the pair's common horizon: the
    earlier censoring step of the two (a censored run is known only up to it), so a pair trained
    to different budgets compares the same stretch of training (1.0 = no difference seen)."""
    horizon = min([x["time_to_grok"] for x in (ref, new) if not x["grokked"]] or [math.inf])
    return min(ref["time_to_grok"], horizon) / max(min(new["time_to_grok"], horizon), 1)


def grokked_earlier(a: dict, b: dict) -> bool:
    """Whether run ``a`` is known to have grokked before run ``b`` (of the same seed): ``a`` grokked, and
    ``b`` grokked later or was still not grokked at an evaluation at or after ``a``'s grok step."""
    return a["grokked"] and (a["time_to_grok"] < b["time_to_grok"] or (not b["grokked"] and
                                                                       b["time_to_grok"] >= a["time_to_grok"]))


def before_grokking(steps: list[int], a: dict, b: dict) -> np.ndarray:
    """Which of ``steps`` (checkpoints two runs of one seed share) come before either run grokked:
    the memorisation plateau, where C6 says dreaming acts (after it, both arms may sit at the
    Fourier solution). Every step where neither run grokked."""
    first = min([r["time_to_grok"] for r in (a, b) if r["grokked"]], default=math.inf)
    return np.asarray(steps, float) < first


def _exp(interval) -> tuple[float, float, float]:
    """A mean of logs and its interval (stats.mean_interval) as a ratio and its interval."""
    return tuple(math.exp(v) if not math.isnan(v) else math.nan for v in interval)


def _plateau_note(name: str, interval, per_seed: list[float]) -> str:
    """C6's part over the checkpoints before either run of a seed grokked (``before_grokking``):
    descriptive, beside the rule, which takes every shared checkpoint."""
    k = sum(not math.isnan(v) for v in per_seed)
    return (f"before either run of a seed grokked (the plateau, where the claim says dreaming acts; descriptive, "
            f"the rule takes every shared checkpoint): {name} {fmt(interval[0])} {ci_text(*interval[1:])} over "
            f"{k} seed{'s' * (k != 1)}")


class Audit:
    """Every claim's verdict for one regime reading (``reading`` = the variant suffix, '' = paper's)."""

    def __init__(self, rows: list[dict], reading: str = ""):
        self.all_rows = rows
        self.rows = finished(rows)
        self.reading = reading

    def variant(self, regime: str) -> str:
        return regime + (("@" + self.reading) if self.reading else "")

    def arm(self, regime: str, arm: str) -> list[dict]:
        return select(self.rows, variant=self.variant(regime), arm=arm)

    def every_budget(self, regime: str, arm: str) -> list[dict]:
        """Finished runs of ``arm``, every budget of a seed (``arm`` keeps only the longest), shortest first."""
        return sorted((r for r in select(self.all_rows, variant=self.variant(regime), arm=arm) if r["finished"]),
                      key=lambda r: r["budget"])

    def pairs(self, regime: str, a: str, b: str) -> dict[int, tuple[dict, dict]]:
        """Per seed, finished runs of arms ``a`` and ``b`` with the same budget, the largest both have:
        a paired comparison of whole-run quantities (event effects, compute counts) must cover the
        same stretch of training, which the longest run of each arm (``arm``) need not."""
        by = {arm: {(r["seed"], r["budget"]): r for r in self.every_budget(regime, arm)} for arm in (a, b)}
        out = {}
        for seed, budget in sorted(set(by[a]) & set(by[b])):
            out[seed] = (by[a][(seed, budget)], by[b][(seed, budget)])  # ascending budgets: the largest stays
        return out

    def missing(self, cid: str, regime_arms: dict[str, list[str]], test: str) -> Verdict:
        cmds = [sweep_command([r], arms, extra=_reading_flags(self.variant(r))) for r, arms in regime_arms.items()]
        return Verdict(cid, test, "none", 0, "n/a", "n/a", math.nan, "no runs", [f"needs: {c}" for c in cmds])

    # ---- shared rules ----------------------------------------------------------------------------
    @staticmethod
    def _seeds(rows) -> str:
        return seed_ranges(r["seed"] for r in rows) or "-"

    def claimed_time(self, rows: list[dict], claimed: int, eval_every: int = 200) -> tuple[int, int, int, float]:
        tol = int(max(1.5 * claimed, claimed + eval_every))
        # only runs whose outcome at tol is known: grokked, or trained at least to tol
        known = [r for r in rows if r["grokked"] or r["time_to_grok"] >= tol]
        k = sum(1 for r in known if r["grokked"] and r["time_to_grok"] <= tol)
        return tol, k, len(known), stats.median_at_most(k, len(known))

    def time_part(self, cid: str, arm: str, rows: list[dict], claimed: int) -> Verdict:
        """The sign test of one arm's claimed grok time, as a verdict of its own."""
        tol, k, m, p = self.claimed_time(rows, claimed)
        verdict = "contradicted" if m >= MIN_SEEDS and p < ALPHA else (
            "supported" if m >= MIN_SEEDS and k == m else f"inconclusive at n = {m}")
        effect = f"{arm}: {k}/{m} grokked by {tol}" if m else f"{arm}: no run grokked or reached {tol}"
        return Verdict(cid, f"{arm} groks at ~{claimed}", self._seeds(rows), m, effect,
                       "n/a", p, verdict, [f"runs known at {tol}: {m} of {len(rows)}"])

    def faster(self, cid: str, test: str, ref: list[dict], new: list[dict], claimed_factor: float | None = None,
               claimed_time: int | None = None) -> Verdict:
        c = stats.compare(ref, new)
        n = min(len(ref), len(new))
        notes = [f"medians (KM): {new[0]['arm']} {fmt(c['median_new'], 5)}, {ref[0]['arm']} {fmt(c['median_ref'], 5)} "
                 f"steps" + _grokked_note(c, ref, new) + f"; Mann-Whitney p {fmt(c['mannwhitney_p'])}"]
        contradicted, why = False, []
        if claimed_time is not None:
            # the claimed time concerns the new arm alone: its own runs can reject it
            tol, k, m, p_sign = self.claimed_time(new, claimed_time)
            notes.append(f"claimed time {claimed_time}: {k}/{m} runs grokked by {tol} (sign test p {fmt(p_sign)})")
            if m >= MIN_SEEDS and p_sign < ALPHA:
                contradicted, why = True, why + [f"claimed grok time {claimed_time} rejected by {m} runs"]
                n = max(n, m)  # the runs behind this verdict
        p = c["logrank_p"]
        ratio, lo, hi = c["speedup"], c["speedup_lo"], c["speedup_hi"]
        direction_ok = ratio > 1 if not math.isnan(ratio) else c["grokked_new"] > c["grokked_ref"]
        if n >= MIN_SEEDS and p < ALPHA and not direction_ok:
            contradicted, why = True, why + ["significantly slower"]
        if n >= MIN_SEEDS and claimed_factor is not None and not math.isnan(hi) and hi < claimed_factor:
            contradicted, why = True, why + [f"interval below the claimed {claimed_factor}x"]
        if contradicted:
            verdict = "contradicted"
        elif n >= MIN_SEEDS and p < ALPHA and direction_ok and not math.isnan(lo) and lo > 1:
            verdict = "supported"
        else:
            verdict = f"inconclusive at n = {n}"
        if why:
            notes.append("; ".join(why))
        effect = speedup_effect(c, ref, new)
        if claimed_time is not None:
            effect = f"{k}/{m} grokked by {tol}; " + effect
        return Verdict(cid, test, self._seeds(new), n, effect, ci_text(lo, hi), p, verdict, notes)

    def no_effect(self, cid: str, test: str, ref: list[dict], new: list[dict]) -> Verdict:
        c = stats.compare(ref, new)
        n = min(len(ref), len(new))
        lo, hi, p = c["speedup_lo"], c["speedup_hi"], c["logrank_p"]
        if n < MIN_SEEDS:
            verdict = f"inconclusive at n = {n}"
        elif p < ALPHA:
            verdict = "contradicted"
        elif not math.isnan(lo) and EQUIVALENCE[0] <= lo and hi <= EQUIVALENCE[1]:
            verdict = "supported"
        else:
            verdict = f"inconclusive at n = {n}"
        notes = [f"equivalence margin {EQUIVALENCE[0]:.2f}-{EQUIVALENCE[1]:.2f}" + _grokked_note(c, ref, new)]
        # descriptive only (the rule above compares the arms unpaired): seeds whose two runs agree
        ref_at = {(r["seed"], r["budget"]): r for r in ref}
        both = [(ref_at[k], r) for r in new if (k := (r["seed"], r["budget"])) in ref_at]
        if both:
            same = sum((b["time_to_grok"], b["grokked"]) == (r["time_to_grok"], r["grokked"]) for b, r in both)
            differ = len(both) - same
            notes.append(f"same outcome (time-to-grok, or censoring step) in {same} of {len(both)} seeds "
                         "run with the same budget in both arms"
                         + (f"; in the other {differ}, {new[0]['arm']} grokked earlier in "
                            f"{sum(grokked_earlier(r, b) for b, r in both)} and later in "
                            f"{sum(grokked_earlier(b, r) for b, r in both)}" if differ else ""))
            # a seed that groks in both arms before any replay event is one the arms cannot differ on
            first = config_of_variant(new[0]["variant"], arm=new[0]["arm"]).first_event_step
            early = sum(1 for b, r in both if r["grokked"] and b["grokked"]
                        and max(r["time_to_grok"], b["time_to_grok"]) < first)
            if early:
                notes.append(f"{early} of these seeds grokked in both arms before the first replay event (step "
                             f"{first}), before replay could act, so their two runs cannot differ; a difference "
                             f"between the arms can show only in the other {len(both) - early}")
        return Verdict(cid, test, self._seeds(new), n, speedup_effect(c, ref, new), ci_text(lo, hi), p, verdict, notes)

    @staticmethod
    def joint(parts: list[Verdict]) -> tuple[str, int]:
        """The verdict and run count of a claim that holds only if every part holds: one contradicted
        part decides (n: the largest contradicting part), all supported is supported (n: the smallest),
        no part with runs is "no runs", else inconclusive at the smallest n of the parts with runs."""
        verdicts = [v.verdict for v in parts]
        with_runs = [v.n for v in parts if v.verdict != "no runs" and v.n > 0]
        if "contradicted" in verdicts:  # one contradicted part decides, whatever else is missing
            return "contradicted", max(v.n for v in parts if v.verdict == "contradicted")
        if all(v == "supported" for v in verdicts):
            return "supported", min(v.n for v in parts)
        if not with_runs:
            return "no runs", min(v.n for v in parts)
        return f"inconclusive at n = {min(with_runs)}", min(with_runs)

    @staticmethod
    def combine(cid: str, parts: list[Verdict], test: str) -> Verdict:
        verdict, n = Audit.joint(parts)
        notes = [f"({chr(97 + i)}) {v.test}: {v.verdict}; {v.effect}{'' if v.ci == 'n/a' else ' ' + v.ci}; "
                 + "; ".join(v.notes)
                 for i, v in enumerate(parts)]
        return Verdict(cid, test, parts[0].runs, n, "; ".join(v.effect for v in parts),
                       "; ".join(v.ci for v in parts), parts[0].p, verdict, notes)

    # ---- the claims ------------------------------------------------------------------------------
    def c1(self) -> Verdict:
        arms = {a: self.arm("easy", a) for a in ("baseline", "dream", "control")}
        if not any(arms.values()):
            return self.missing("C1", {"easy": ["baseline", "dream", "control"]}, "grok time per arm; dream vs baseline")
        # "every arm groks within about 200 steps": under the claim each run, of any arm, groks by
        # the tolerance with probability >= 1/2, so the runs of all arms are pooled in one sign test
        pooled = [r for rows in arms.values() for r in rows]
        tol, k, n, p = self.claimed_time(pooled, PAPER["easy_grok"])
        v = "contradicted" if (n >= MIN_SEEDS and p < ALPHA) else (
            "supported" if n >= MIN_SEEDS and k == n else f"inconclusive at n = {n}")
        per_arm = ", ".join(f"{a} {sum(r['grokked'] and r['time_to_grok'] <= tol for r in rows)}/{len(rows)}"
                            for a, rows in arms.items() if rows)
        parts = [Verdict("C1", f"every arm groks by ~{PAPER['easy_grok']} (pooled sign test)", self._seeds(pooled), n,
                         f"{k}/{n} runs grokked by {tol}", "n/a", p, v, [f"per arm: {per_arm}"])]
        if arms["baseline"] and arms["dream"]:
            parts.append(self.no_effect("C1", "dream vs baseline: no effect", arms["baseline"], arms["dream"]))
        else:
            parts.append(self.missing("C1", {"easy": ["baseline", "dream"]}, "dream vs baseline: no effect"))
        return self.combine("C1", parts, "sign test on the claimed time per arm; equivalence of dream and baseline")

    def c2(self) -> Verdict:
        ref, new = self.arm("medium", "baseline"), self.arm("medium", "dream")
        if not ref or not new:
            return self.missing("C2", {"medium": ["baseline", "dream"]}, "log-rank dream vs baseline")
        v = self.faster("C2", "log-rank and KM speed-up, dream vs baseline (medium)", ref, new)
        if v.verdict == f"inconclusive at n = {v.n}" and v.n >= MIN_SEEDS:
            c = stats.compare(ref, new)
            if not math.isnan(c["speedup_hi"]) and c["speedup_hi"] <= 1:
                v.verdict = "contradicted"
                v.notes.append("interval at or below 1: no acceleration")
        return v

    def c3(self) -> Verdict:
        base, dream, control = (self.arm("hard", a) for a in ("baseline", "dream", "control"))
        if not base or not dream:
            return self.missing("C3", {"hard": ["baseline", "dream", "control"]}, "log-rank dream vs baseline/control")
        parts = [self.faster("C3", "dream vs baseline", base, dream, PAPER["hard_speedup"][0],
                             PAPER["hard_grok"]["dream"])]
        if control:
            parts.append(self.faster("C3", "dream vs control", control, dream, PAPER["hard_speedup"][0]))
        for arm, rows in (("baseline", base), ("control", control)):
            if rows:
                parts.append(self.time_part("C3", arm, rows, PAPER["hard_grok"][arm]))
        return self.combine("C3", parts, "log-rank, KM-median speed-up with bootstrap CI, sign test on claimed times")

    def full_budget(self, arm: str) -> list[dict]:
        """Hard-regime runs of ``arm`` whose peak covers the whole budget: trained to it, or grokked."""
        return [r for r in self.arm("hard", arm) if r["grokked"] or r["budget"] >= REGIMES["hard"]["steps"]]

    def c4(self) -> Verdict:
        full = REGIMES["hard"]["steps"]
        base, dream = self.full_budget("baseline"), self.full_budget("dream")
        if not base or not dream:
            return self.missing("C4", {"hard": ["baseline", "dream"]}, "permutation test on peak test accuracy")
        n = min(len(base), len(dream))
        diff_mean = np.mean([r["peak_test_acc"] for r in dream]) - np.mean([r["peak_test_acc"] for r in base])
        p = stats.permutation_pvalue([r["peak_test_acc"] for r in dream], [r["peak_test_acc"] for r in base])
        k = sum(r["peak_test_acc"] >= PEAK_LEVEL for r in dream)
        p_level = stats.median_at_most(k, len(dream))  # median peak >= PEAK_LEVEL claimed (98.25%)
        notes = [f"dream runs with peak >= {PEAK_LEVEL:.0%}: {k}/{len(dream)} (sign test of the claimed ~98% level, "
                 f"p {fmt(p_level)}); runs with a shorter budget than {full} that never grokked are left out"]
        if len(dream) >= MIN_SEEDS and p_level < ALPHA:
            verdict, n = "contradicted", len(dream)  # the claimed ~98% level is rejected by the dream runs alone
        elif n >= MIN_SEEDS and p < ALPHA and diff_mean < 0:
            verdict = "contradicted"
        elif n >= MIN_SEEDS and p < ALPHA and diff_mean > 0:
            verdict = "supported"
        else:
            verdict = f"inconclusive at n = {n}"
        boot = stats.mean_interval([r["peak_test_acc"] for r in dream])
        return Verdict("C4", "permutation test of mean peak test accuracy, dream vs baseline", self._seeds(dream), n,
                       f"difference {fmt(float(diff_mean))} (dream mean {fmt(boot[0])})", "n/a", p, verdict, notes)

    @staticmethod
    def _event_drops(rows: list[dict]) -> list[float]:
        """Per run with replay events: its mean train-accuracy drop at them (results.event_effects)."""
        return [r["event_drop"] for r in rows if not math.isnan(r["event_drop"])]

    def c5(self) -> Verdict:
        dream, base, control = (self.arm("hard", a) for a in ("dream", "baseline", "control"))
        if not dream or not base:
            return self.missing("C5", {"hard": ["baseline", "dream", "control"]}, "event-level accuracy changes")
        drops = self._event_drops(dream)
        n = len(drops)
        d_mean, d_lo, d_hi = stats.mean_interval(drops)
        paired = [d["event_test_change"] - b["event_test_change"] for d, b in self.pairs("hard", "dream", "baseline").values()
                  if not (math.isnan(d["event_test_change"]) or math.isnan(b["event_test_change"]))]
        r_mean, r_lo, r_hi = stats.mean_interval(paired)
        notes = [f"train-accuracy drop at dream events: mean over runs {fmt(d_mean)} {ci_text(d_lo, d_hi)}",
                 f"test-accuracy change in the evaluation window after an event, dream minus baseline (paired by seed, "
                 f"runs of the same budget): {fmt(r_mean)} {ci_text(r_lo, r_hi)}"]
        if control:
            c_drops = self._event_drops(control)
            cm = stats.mean_interval(c_drops)
            notes.append("for comparison, the drop at control (random replay) events: " +
                         (f"{fmt(cm[0])} {ci_text(cm[1], cm[2])}" if c_drops else
                          f"not measured (none of the {len(control)} control runs has event effects in its row)"))
        if n < MIN_SEEDS or len(paired) < MIN_SEEDS:
            verdict = f"inconclusive at n = {min(n, len(paired))}"
            unmeasured = [r for r in dream + base if not has_file(r) and
                          math.isnan(r["event_drop" if r["arm"] == "dream" else "event_test_change"])]
            if unmeasured:  # rows carried from a results table written before event effects were measured
                notes.append(_needs_files(None, unmeasured))
        elif (not math.isnan(d_hi) and d_hi <= 0) or (not math.isnan(r_hi) and r_hi < 0.01):
            verdict = "contradicted"
            notes.append("no drop, or no test-accuracy rise of even 1 point after events")
        elif d_lo > 0 and r_lo > 0:
            verdict = "supported"
        else:
            verdict = f"inconclusive at n = {min(n, len(paired))}"
        measured = [r for r in dream if not math.isnan(r["event_drop"])]
        return Verdict("C5", "bootstrap intervals of per-run event effects (drop; test rise vs baseline)",
                       self._seeds(measured), min(n, len(paired)) if paired else n,
                       f"drop {fmt(d_mean)}; rise vs baseline {fmt(r_mean)}",
                       f"{ci_text(d_lo, d_hi)}; {ci_text(r_lo, r_hi)}",
                       math.nan, verdict, notes)

    def _fourier_by_seed(self, arm: str, series: str = "top_share") -> dict:
        """Per seed, the Fourier analysis of the longest finished hard-regime run of ``arm`` whose
        analysis holds ``series``. A seed's longest run may be carried from the table without its
        series (or from before the series existed) while a shorter run of it (the same training,
        stopped earlier) has them here; C6 compares the two arms at the checkpoints they share, so
        the longer the runs the more checkpoints it compares."""
        return {r["seed"]: (arrays, attrs, r) for r, arrays, attrs in
                analysed(select(self.all_rows, variant=self.variant("hard"), arm=arm), "fourier", series)}

    def _c6_embedding(self) -> Verdict:
        """C6 read from W_E: the mean over shared checkpoints of dream minus baseline top-5 share."""
        test = "W_E: top-5 share, dream minus baseline at shared checkpoints"
        fd, fb = self._fourier_by_seed("dream"), self._fourier_by_seed("baseline")
        seeds = sorted(set(fd) & set(fb))
        diffs, plateau, notes, cut = [], [], [], False
        for s in seeds:
            (a, da, rd), (b, ba, rb) = fd[s], fb[s]  # series, attributes, run
            steps, x, y = shared_checkpoints(a, b, "top_share")
            diffs.append(float(np.mean(x - y)) if len(x) else math.nan)
            early = before_grokking(steps, rd, rb)
            plateau.append(float(np.mean((x - y)[early])) if early.any() else math.nan)
            cut |= not early.all()
            notes.append(f"seed {s}: emergence step dream {step_or_never(da['emergence_step'])}, baseline "
                         f"{step_or_never(ba['emergence_step'])}; final top-5 share {da['final_top_share']:.3f} vs "
                         f"{ba['final_top_share']:.3f}")
        m, lo, hi = stats.mean_interval(diffs)
        n = len(seeds)
        if cut:
            notes.append(_plateau_note("difference", stats.mean_interval(plateau), plateau))
        if n < MIN_SEEDS:
            verdict = f"inconclusive at n = {n}"
        elif not math.isnan(hi) and hi < 0.02:
            verdict = "contradicted"
            notes.append("dreaming does not make the embedding's spectrum sparser (difference < 0.02)")
        elif lo > 0:
            verdict = "supported"
        else:
            verdict = f"inconclusive at n = {n}"
        return Verdict("C6", test, seed_ranges(seeds) or "-", n, f"mean difference {fmt(m)}", ci_text(lo, hi),
                       math.nan, verdict, notes)

    def _c6_logits(self) -> Verdict:
        """C6 read from the logits: per seed, the geometric mean over shared checkpoints of dream's over
        baseline's restricted loss (the five strongest frequencies of the logits' spectrum along
        cos/sin k(a+b), mechgrok/fourier.py), each loss capped at chance, ln p (``capped_loss_ratio``:
        above it there is no Fourier solution to be nearer to); over seeds, the mean of its log with a
        bootstrap interval, shown as a ratio. Moving toward the Fourier solution means a ratio below 1. The least effect
        that counts is the report's equivalence margin: a ratio whose whole interval lies above 2/3
        (less than a 1.5x lower loss) contradicts the claim; an interval below 1 supports it."""
        test = "logits: restricted loss capped at chance, dream / baseline at shared checkpoints (geometric mean)"
        key = "logit_restricted_loss"
        fd, fb = self._fourier_by_seed("dream", key), self._fourier_by_seed("baseline", key)
        seeds = sorted(set(fd) & set(fb))
        logs, plateau, notes, cut = [], [], [], False
        for s in seeds:
            (a, da, rd), (b, ba, rb) = fd[s], fb[s]
            steps, x, y = shared_checkpoints(a, b, key)
            ok, p = np.isfinite(x) & np.isfinite(y), int(da["p"])
            ratio = capped_loss_ratio(x[ok], y[ok], p)
            logs.append(float(np.mean(np.log(ratio))) if len(ratio) else math.nan)
            early = before_grokking(steps, rd, rb)[ok]
            plateau.append(float(np.mean(np.log(ratio[early]))) if early.any() else math.nan)
            cut |= not early.all()
            below = int(np.sum(np.minimum(x[ok], y[ok]) < math.log(p)))  # chance, the cap: the others compare as equal
            notes.append(f"seed {s}: ratio {fmt(math.exp(logs[-1]) if len(ratio) else math.nan)} over {len(ratio)} "
                         f"checkpoints to step {max(steps, default=0)} ({below} with either arm below chance); emergence "
                         f"(<= 1 nat) dream {step_or_never(da.get('logit_emergence_step', math.nan))}, baseline "
                         f"{step_or_never(ba.get('logit_emergence_step', math.nan))}")
        m, lo, hi = _exp(stats.mean_interval(logs))
        n = len(seeds)
        if cut:
            notes.append(_plateau_note("ratio", _exp(stats.mean_interval(plateau)), plateau))
        if n == 0:  # the runs of the seeds W_E's part compares, where it has any, would do
            w_e = set(self._fourier_by_seed("dream")) & set(self._fourier_by_seed("baseline"))
            runs = [r for r in self.arm("hard", "dream") + self.arm("hard", "baseline") if not w_e or r["seed"] in w_e]
            notes.append(_needs_files("fourier", runs))
        if n < MIN_SEEDS:
            verdict = f"inconclusive at n = {n}"
        elif not math.isnan(lo) and lo > EQUIVALENCE[0]:
            verdict = "contradicted"
            notes.append(f"dreaming does not lower the logits' restricted loss by 1.5x or more (ratio > "
                         f"{EQUIVALENCE[0]:.2f})")
        elif not math.isnan(hi) and hi < 1:
            verdict = "supported"
        else:
            verdict = f"inconclusive at n = {n}"
        return Verdict("C6", test, seed_ranges(seeds) or "-", n, f"ratio {fmt(m)}", ci_text(lo, hi), math.nan,
                       verdict, notes)

    def c6(self) -> Verdict:  # needs each run's Fourier series: its file, or the analyses table
        dream, base = self.arm("hard", "dream"), self.arm("hard", "baseline")
        test = "Fourier reading of W_E (top-5 share) and of the logits (restricted loss), dream vs baseline"
        if not dream or not base:
            return self.missing("C6", {"hard": ["baseline", "dream"]}, test)
        parts = [self._c6_embedding(), self._c6_logits()]
        if all(v.n == 0 for v in parts):
            return Verdict("C6", test, "-", 0, "n/a", "n/a", math.nan, "inconclusive at n = 0",
                           [_needs_files("fourier", dream + base)])
        return self.combine("C6", parts, test)

    def _log_speedups(self, regime: str) -> list[float]:
        """Per seed, log(baseline / dream time-to-grok), both cut at the pair's common horizon:
        the earlier censoring step of the two (a censored run is known only up to it), so a pair
        trained to different budgets compares the same stretch of training."""
        base = {r["seed"]: r for r in self.arm(regime, "baseline")}
        return [math.log(seed_speedup(base[r["seed"]], r)) for r in self.arm(regime, "dream") if r["seed"] in base]

    def c7(self) -> Verdict:
        groups = {reg: self._log_speedups(reg) for reg in REGIMES}
        present = {k: v for k, v in groups.items() if v}
        if len(present) < 2:
            return self.missing("C7", {r: ["baseline", "dream"] for r in REGIMES if not groups[r]},
                                "Kruskal-Wallis on per-seed log speed-ups across regimes")
        p = stats.kruskal_wallis(list(present.values()))
        med = {k: float(np.median(v)) for k, v in present.items()}
        n = min(len(v) for v in present.values())
        ordered = all(med[a] < med[b] for a, b in (("easy", "medium"), ("medium", "hard")) if a in med and b in med)
        if n < MIN_SEEDS or len(present) < 3:
            verdict = f"inconclusive at n = {n}"
        elif p < ALPHA:
            verdict = "supported" if ordered else "contradicted"
        else:
            verdict = f"inconclusive at n = {n}"
        eff = ", ".join(f"{k} {math.exp(v):.2f}x" for k, v in med.items())
        return Verdict("C7", "Kruskal-Wallis on per-seed log(baseline/dream time-to-grok) by regime", "paired seeds", n,
                       f"median per-seed speed-up: {eff}", "n/a", p, verdict,
                       ["censored runs enter at their budget, which pulls ratios toward 1"])

    def c8(self) -> Verdict:
        base, early, plateau = (self.arm("hard", a) for a in ("baseline", "dream-early", "dream-plateau"))
        if not base or not early or not plateau:
            v = self.missing("C8", {"hard": ["baseline", "dream-early", "dream-plateau"]},
                             "log-rank dream-early and dream-plateau vs baseline")
            hard = select(self.rows, variant=self.variant("hard"))
            if hard and not any(r["grokked"] for r in hard):
                # issue 7, stage 4: the timing ablation is run under a reading where grokking happens
                v.notes.insert(0, f"not run: no run of any arm in this reading grokked (0/{len(hard)}, longest "
                               f"{max(r['time_to_grok'] for r in hard)} steps), so neither timing can be told "
                               "apart from the baseline by its time to grok")
            timing = ("dream-early", "dream-plateau")
            for cal in sorted({r["variant"] for r in self.rows if r["regime"] == "hard" and is_calibration(r["variant"])
                               and r["arm"] in timing}):
                seeds = {a: self._seeds(select(self.rows, variant=cal, arm=a)) for a in timing}
                v.notes.append(f"run where stated settings are changed, a calibration that enters no verdict: `{cal}` "
                               f"(dream-early seeds {seeds['dream-early']}, dream-plateau seeds {seeds['dream-plateau']}); "
                               "the claim's rule on it is in REPORT.md, 'Calibration runs'")
            return v
        harm = self.faster("C8", "baseline vs dream-early (early dreaming harmful: baseline faster)", early, base)
        helps = self.faster("C8", "dream-plateau vs baseline (plateau dreaming helps)", base, plateau)
        return self.combine("C8", [harm, helps], "log-rank and KM speed-ups of the timing arms")

    def c9(self) -> Verdict:
        base, dream, control = (self.arm("hard", a) for a in ("baseline", "dream", "control"))
        if not base or not dream or not control:
            return self.missing("C9", {"hard": ["baseline", "dream", "control"]}, "control vs baseline; dream vs control")
        parts = [self.no_effect("C9", "control vs baseline: random replay does not accelerate", base, control),
                 self.faster("C9", "dream vs control: targeting matters", control, dream)]
        return self.combine("C9", parts, "equivalence of control and baseline; log-rank dream vs control")

    def c10(self) -> Verdict:
        dream = self.arm("hard", "dream")
        if not dream:
            return self.missing("C10", {"hard": ["dream"]}, "surprise ratio and its correlation with time-to-grok")
        ratios = [r["surprise_ratio"] for r in dream]
        m, lo, hi = stats.mean_interval(ratios)
        grokked = [r for r in dream if r["grokked"]]
        corr = stats.correlation([r["selected_surprise"] for r in grokked], [r["time_to_grok"] for r in grokked])
        n = len(dream)
        notes = ["surprise ratio = mean over a run's replay events (before grokking) of replayed surprise / memory mean",
                 f"correlation over {corr['n']} grokked dream runs: " +
                 (f"r {fmt(corr['r'])} {ci_text(corr['lo'], corr['hi'])}, Spearman {fmt(corr['spearman'])}"
                  if not math.isnan(corr["r"]) else "r undefined (fewer than 3 runs, or a constant variable)")]
        if n < MIN_SEEDS:
            verdict = f"inconclusive at n = {n}"
        elif (not math.isnan(lo) and not lo <= PAPER["surprise_ratio"] <= hi) or \
                (not math.isnan(corr["hi"]) and corr["n"] >= 4 and not corr["lo"] <= PAPER["surprise_r"] <= corr["hi"]):
            verdict = "contradicted"
        elif not math.isnan(lo) and corr["n"] >= 4 and corr["lo"] > 0:
            verdict = "supported"
        else:
            verdict = f"inconclusive at n = {n}"
        return Verdict("C10", "bootstrap interval of the surprise ratio; Pearson r with Fisher interval",
                       self._seeds(dream), n, f"ratio {fmt(m)}; r {fmt(corr['r'])}", f"{ci_text(lo, hi)}; "
                       f"{ci_text(corr['lo'], corr['hi'])}", corr["p"], verdict, notes)

    def c11(self) -> Verdict:
        pairs = self.pairs("hard", "dream", "control")  # same seed and budget
        seeds = sorted(pairs)
        if not seeds:
            return self.missing("C11", {"hard": ["dream", "control"]}, "extra updates and example passes per seed")
        same = [d["extra_updates"] == c["extra_updates"] and d["extra_passes"] == c["extra_passes"]
                for d, c in pairs.values()]
        # runs that stop early (grokked) have fewer events; compare per event as well
        per_event = [d["extra_updates"] / max(d["events"], 1) == c["extra_updates"] / max(c["events"], 1)
                     for d, c in pairs.values()]
        extra_share = np.mean([d["extra_passes"] / max(d["regular_passes"], 1) for d, _ in pairs.values()])
        verdict = "supported" if all(per_event) else "contradicted"
        return Verdict("C11", "extra optimiser updates and example passes, dream vs control, per seed (exact counts)",
                       seed_ranges(seeds) or "-", len(seeds),
                       f"equal totals in {sum(same)}/{len(seeds)} seed pairs, per event in {sum(per_event)}/{len(seeds)}",
                       "n/a", math.nan, verdict,
                       [f"extra example passes are {100 * extra_share:.2f}% of the regular ones (not matched to baseline)"])

    def c12(self) -> Verdict:
        cfg = config_of_variant(self.variant("hard"))  # the split follows from the reading alone
        from .data import split_indices

        train_idx, test_idx = split_indices(cfg)
        a, b = np.divmod(train_idx, cfg.p)
        seen = set(a.tolist()) | set(b.tolist())
        ta, tb = np.divmod(test_idx, cfg.p)
        unseen = sorted((set(ta.tolist()) | set(tb.tolist())) - seen)
        first_unseen = sorted(set(ta.tolist()) - set(a.tolist()))
        verdict = "contradicted" if not unseen else "inconclusive at n = 0"
        notes = [f"split '{cfg.split}', train_end {cfg.train_end}: {len(first_unseen)} tokens never appear as the first "
                 f"operand in training; {len(unseen)} test tokens never appear in any training sequence",
                 "some test tokens are untrained embeddings" if unseen else
                 "every test operand's embedding is trained" + (" (each unseen first operand occurs as a second "
                                                                "operand)" if first_unseen else "") + ", so none is novel"]
        return Verdict("C12", "token coverage of the training inputs (computed from the split)", "split", 1,
                       f"{len(unseen)} of {cfg.p} tokens unseen in training", "n/a", math.nan, verdict, notes)

    def c13(self, c3: Verdict, c7: Verdict) -> Verdict:
        notes = ["a single seed gives no estimate of seed-to-seed variance, so no test on one run per arm can "
                 "support a between-arm difference; the replacement here is C3 and C7 over seeds"]
        verdict, n = self.joint([c3, c7])
        if verdict == "contradicted":
            notes.append(f"the conclusions these statistics were used for do not hold over seeds (C3 {c3.verdict}, "
                         f"C7 {c7.verdict})")
        return Verdict("C13", "the multi-seed tests (C3, C7) that replace the single-seed statistics",
                       f"C3: {c3.n}, seeds {c3.runs}; C7: {c7.n}, {c7.runs}", n,
                       f"C3 {c3.verdict}; C7 {c7.verdict}", "n/a", math.nan, verdict, notes)

    def all(self) -> list[Verdict]:
        out = [self.c1(), self.c2()]
        c3 = self.c3()
        out += [c3, self.c4(), self.c5(), self.c6()]
        c7 = self.c7()
        out += [c7, self.c8(), self.c9(), self.c10(), self.c11(), self.c12(), self.c13(c3, c7)]
        return out


def readings(rows: list[dict]) -> list[str]:
    """Regime readings of the paper present among the runs ('' = the paper's stated setup);
    variants that change a stated setting (calibrations) are left out."""
    out = {reading_of(r["variant"]) for r in rows if not is_calibration(r["variant"])}
    return sorted(out, key=lambda s: (s != "", s))


def calibration_rules(rows: list[dict], variant: str) -> list[Verdict]:
    """Every claim's rule (``Audit``, the code behind the verdicts) applied to a calibration variant's
    runs, the claims it has runs for; descriptive: a calibration changes a stated setting, so what
    the rules give there is no verdict on the paper, only what accepting it as a reading would say."""
    return [v for v in Audit(rows, reading_of(variant)).all() if v.verdict != "no runs"]
