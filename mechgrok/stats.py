"""Statistics of time-to-grok over seeds, with right-censoring.

A run that never groks within its budget is a right-censored observation: we
know only that its time-to-grok exceeds its last step. Every function here keeps
such runs in the data. In mechgrok all censoring is administrative (a run is
censored exactly at its step budget, which is the same for every run of a
comparison), which is what makes the rank-based tests below usable on censored
data; each docstring says what else it assumes.

``python -m mechgrok.stats runs/`` prints, per regime reading (variant) and arm,
the number of finished runs, how many grokked, the Kaplan-Meier median and
quartiles of time-to-grok, and each arm against baseline: the speed-up (ratio of
KM medians) with a seeded bootstrap 95% interval, the log-rank p-value,
Mann-Whitney on time-to-grok and a permutation test on peak test accuracy.
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

from .errors import MechgrokError, out_file

ALPHA = 0.05
BOOTSTRAP_SEED = 20261124
N_BOOT = 4000
N_PERM = 9999


# ---- Kaplan-Meier -----------------------------------------------------------------------------
@dataclass(frozen=True)
class KaplanMeier:
    """The Kaplan-Meier estimate of P(not yet grokked at step t).

    ``times`` are the distinct grok times, ``survival[i]`` the estimate just
    after ``times[i]`` (it is 1 before the first). Assumes censoring independent
    of time-to-grok (true here: censoring is at the fixed budget).
    """

    times: np.ndarray
    survival: np.ndarray
    n: int
    events: int

    def at(self, t: float) -> float:
        i = np.searchsorted(self.times, t, side="right")
        return 1.0 if i == 0 else float(self.survival[i - 1])

    def quantile(self, q: float) -> float:
        """Smallest time by which a fraction >= q has grokked; inf if the curve never gets there."""
        hit = np.nonzero(self.survival <= 1 - q + 1e-12)[0]
        return float(self.times[hit[0]]) if len(hit) else math.inf

    @property
    def median(self) -> float:
        return self.quantile(0.5)


def kaplan_meier(times, grokked) -> KaplanMeier:
    """Kaplan-Meier curve of time-to-grok; ``grokked`` False marks a censored run (kept, not dropped)."""
    t = np.asarray(times, dtype=float)
    e = np.asarray(grokked, dtype=bool)
    if t.shape != e.shape:
        raise ValueError("times and grokked must have the same length")
    event_times = np.unique(t[e])
    surv, s = [], 1.0
    for u in event_times:
        at_risk = np.sum(t >= u)
        s *= 1.0 - np.sum((t == u) & e) / at_risk
        surv.append(s)
    return KaplanMeier(event_times, np.asarray(surv, dtype=float), int(len(t)), int(e.sum()))


# ---- tests between two arms --------------------------------------------------------------------
def logrank(times_a, grokked_a, times_b, grokked_b) -> tuple[float, float]:
    """Log-rank test (scipy.stats.logrank) of equal time-to-grok distributions.

    Assumes independent censoring and is most powerful under proportional
    hazards. Returns (chi-square statistic, two-sided p); (nan, nan) if no run
    of either arm grokked, where the test has nothing to compare, and where the
    statistic's variance is 0 (every run of both arms grokked at the same step).
    """
    from scipy.stats import CensoredData, logrank as _logrank

    ga, gb = np.asarray(grokked_a, bool), np.asarray(grokked_b, bool)
    if not ga.any() and not gb.any():
        return math.nan, math.nan

    def data(t, g):
        t = np.asarray(t, float)
        return CensoredData(uncensored=t[g], right=t[~g])

    with np.errstate(invalid="ignore", divide="ignore"):  # zero variance: nan, as documented
        res = _logrank(data(times_a, ga), data(times_b, gb))
    return float(res.statistic) ** 2, float(res.pvalue)


def common_censoring(times, grokked) -> bool:
    """Whether every censored run is censored at one time that no grok time exceeds, the
    condition under which ranking censored runs at their censoring time is exact."""
    t, g = np.asarray(times, float), np.asarray(grokked, bool)
    cens = set(t[~g].tolist())
    return len(cens) <= 1 and (not cens or not g.any() or min(cens) >= t[g].max())


def mann_whitney(times_a, times_b) -> float:
    """Two-sided Mann-Whitney U p-value on time-to-grok (scipy.stats.mannwhitneyu).

    Censored runs enter at their censoring time. That ranks them correctly only
    because every run here is censored at the same budget, after every observed
    grok time; they form one tie group at the top. Assumes independent runs.
    nan if either arm has fewer than 1 run or all values are equal.
    """
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(times_a, float), np.asarray(times_b, float)
    if len(a) == 0 or len(b) == 0 or np.ptp(np.concatenate([a, b])) == 0:
        return math.nan
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def permutation_pvalue(x, y, n_resamples: int = N_PERM, seed: int = BOOTSTRAP_SEED) -> float:
    """Two-sided permutation test (scipy.stats.permutation_test) of a difference in means,
    e.g. peak test accuracy. Assumes exchangeability of runs under the null. nan if an arm has
    fewer than 2 runs."""
    from scipy.stats import permutation_test

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0
    res = permutation_test((x, y), lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
                           n_resamples=n_resamples, alternative="two-sided", vectorized=True,
                           random_state=np.random.default_rng(seed))
    return float(res.pvalue)


def _ratios(num, den) -> np.ndarray:
    """Ratios of Kaplan-Meier medians, elementwise; a median of inf was never reached: finite / inf
    is 0, inf / finite is inf, a zero denominator gives inf, and inf / inf (neither reached) is nan."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den == 0, np.inf, num / den)
    return np.where(np.isinf(num) & np.isinf(den), np.nan, out)


def speedup(times_ref, grokked_ref, times_new, grokked_new, n_boot: int = N_BOOT, seed: int = BOOTSTRAP_SEED,
            level: float = 0.95) -> tuple[float, float, float]:
    """Ratio of Kaplan-Meier medians (reference / new: > 1 means ``new`` groks faster),
    with a percentile bootstrap interval (runs resampled within each arm, seeded).

    A median that the KM curve never reaches is infinite, so the ratio can be
    inf (only ``new`` reached it), 0 (only the reference) or nan (neither). The
    interval is nan when more than (1 - level)/2 of the resamples have no ratio.
    Assumes independent runs; percentile intervals are rough for few seeds.
    """
    tr, gr = np.asarray(times_ref, float), np.asarray(grokked_ref, bool)
    tn, gn = np.asarray(times_new, float), np.asarray(grokked_new, bool)
    point = float(_ratios(kaplan_meier(tr, gr).median, kaplan_meier(tn, gn).median))
    if len(tr) == 0 or len(tn) == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    # the resamples are drawn in the order of one loop over them (reference, then new), and each
    # resample's median comes from its counts over the arm's distinct outcomes (km_medians)
    idx_ref, idx_new = np.empty((n_boot, len(tr)), np.int64), np.empty((n_boot, len(tn)), np.int64)
    for i in range(n_boot):
        idx_ref[i] = rng.integers(0, len(tr), len(tr))
        idx_new[i] = rng.integers(0, len(tn), len(tn))
    return (point, *percentile_interval(_ratios(_resampled_medians(tr, gr, idx_ref),
                                                _resampled_medians(tn, gn, idx_new)), level))


def _resampled_medians(t: np.ndarray, g: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Kaplan-Meier medians of the resamples ``t[idx[i]], g[idx[i]]`` (one per row of ``idx``),
    the same numbers as ``kaplan_meier(t[idx[i]], g[idx[i]]).median``, computed at once."""
    times, cell = _outcome_cells(t, g)
    k = len(times)
    rows = np.repeat(np.arange(len(idx)), idx.shape[1])
    counts = np.bincount(rows * 2 * k + cell[idx].ravel(), minlength=len(idx) * 2 * k).reshape(len(idx), 2 * k)
    return km_medians(times, counts[:, :k], counts[:, k:])


def _outcome_cells(t: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct times of runs ``t`` and each run's outcome cell among them: a run that grokked at
    ``times[j]`` is in cell ``j``, one censored there in cell ``len(times) + j``."""
    times = np.unique(t)
    return times, np.searchsorted(times, t) + len(times) * (~np.asarray(g, bool))


def percentile_interval(ratios, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap speed-up ratios, as :func:`speedup` reports it:
    a resample with no ratio (nan) counts at the low end, and the interval is (nan, nan)
    when more than (1 - level)/2 of the resamples have none."""
    ratios = np.asarray(ratios, float)
    n_boot, tail = len(ratios), (1 - level) / 2
    if n_boot == 0 or np.mean(np.isnan(ratios)) > tail:
        return math.nan, math.nan
    finite_order = np.sort(np.where(np.isnan(ratios), -np.inf, ratios))  # nan resamples at the low end
    lo = finite_order[int(math.floor(tail * n_boot))]
    hi = finite_order[min(n_boot - 1, int(math.ceil((1 - tail) * n_boot)) - 1)]
    return float(lo), float(hi)


def kruskal_wallis(groups: list) -> float:
    """Kruskal-Wallis p-value (scipy.stats.kruskal) that several groups (e.g. per-seed log
    speed-ups in each regime) share one distribution. Assumes independent observations
    and at least 2 groups with data; nan otherwise."""
    from scipy.stats import kruskal

    groups = [np.asarray(g, float) for g in groups if len(g)]
    if len(groups) < 2 or np.ptp(np.concatenate(groups)) == 0:
        return math.nan
    return float(kruskal(*groups).pvalue)


def correlation(x, y, level: float = 0.95) -> dict:
    """Pearson r with its Fisher-z interval (scipy.stats.pearsonr) and Spearman rho.

    Pearson's interval assumes bivariate normality; Spearman only monotonicity.
    nan entries below 3 pairs or for constant input."""
    from scipy.stats import pearsonr, spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    nan = {"n": int(len(x)), "r": math.nan, "lo": math.nan, "hi": math.nan, "p": math.nan, "spearman": math.nan}
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return nan
    res = pearsonr(x, y)
    ci = res.confidence_interval(level) if len(x) > 3 else type("CI", (), {"low": -1.0, "high": 1.0})
    return {"n": int(len(x)), "r": float(res.statistic), "lo": float(ci.low), "hi": float(ci.high),
            "p": float(res.pvalue), "spearman": float(spearmanr(x, y).statistic)}


def median_at_most(successes: int, n: int) -> float:
    """Sign test of the hypothesis "the median is at most the claimed value": the one-sided
    binomial p-value of seeing ``successes`` or fewer of ``n`` runs at or below it, when
    each run would be with probability >= 1/2. Assumes independent runs; exact."""
    from scipy.stats import binom

    return float(binom.cdf(successes, n, 0.5)) if n else math.nan


def sign_test(earlier: int, later: int) -> float:
    """Two-sided exact sign test of paired runs: ``earlier`` seeds in which one arm grokked first,
    ``later`` in which the other did, seeds with no difference dropped. Null hypothesis: within a seed
    the two arms are exchangeable, so each seed that differs is equally likely to go either way.
    Assumes independent seeds; uses only the direction of each difference, not its size. nan
    without a seed that differs."""
    from scipy.stats import binomtest

    n = earlier + later
    return float(binomtest(earlier, n, 0.5).pvalue) if n else math.nan


def paired_speedup(times_ref, times_new, level: float = 0.95, n_boot: int = N_BOOT,
                   seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """Geometric mean over seeds of the per-seed ratio ``times_ref / times_new`` (> 1: ``new`` groks
    faster), with a seeded percentile bootstrap interval over seeds (``mean_interval`` of the log ratios).

    Pairs are runs of one seed in two arms; every run must have grokked (a censored time has no ratio,
    so callers leave this out rather than drop seeds, which would bias it toward the seeds that grok).
    Unlike the ratio of Kaplan-Meier medians it uses every seed's size of difference, not only the
    middle run of each arm, so it moves less in the evaluation grid's steps. Assumes independent seeds;
    percentile intervals are rough for few seeds. nan below 1 pair, nan interval below 2."""
    ref, new = np.asarray(times_ref, float), np.asarray(times_new, float)
    if len(ref) != len(new) or (ref <= 0).any() or (new <= 0).any():
        raise ValueError("paired_speedup needs positive times, one per seed in each arm")
    m, lo, hi = mean_interval(np.log(ref / new), level=level, n_boot=n_boot, seed=seed)
    return math.exp(m), math.exp(lo), math.exp(hi)  # nan stays nan


def mean_interval(x, level: float = 0.95, n_boot: int = N_BOOT, seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """Mean with a seeded percentile bootstrap interval (nan interval below 2 values).
    Assumes independent observations; rough for very few."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    if len(x) < 2:
        return float(x.mean()), math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(x.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


# ---- power ---------------------------------------------------------------------------------------
def simulated_power(draw_a, draw_b, n: int, sims: int = 400, alpha: float = ALPHA, seed: int = 0) -> float:
    """Fraction of ``sims`` simulated experiments with ``n`` runs per arm in which the
    log-rank test rejects at ``alpha``. ``draw_x(rng, n)`` returns (times, grokked)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(sims):
        ta, ga = draw_a(rng, n)
        tb, gb = draw_b(rng, n)
        p = logrank(ta, ga, tb, gb)[1]
        hits += bool(p < alpha)
    return hits / sims


def _sped_up(t: np.ndarray, g: np.ndarray, budget: int, speedup: float) -> tuple[np.ndarray, np.ndarray]:
    """The power model's treated runs: grok times divided by ``speedup`` (rounded up), censored at
    the budget; a censored run stays censored. Returns (times, grokked)."""
    tt = np.where(g, np.ceil(t / speedup), t)
    return np.minimum(tt, budget), g & (tt <= budget)


def seeds_needed(pilot_times, pilot_grokked, budget: int, target_speedup: float, power: float = 0.8,
                 alpha: float = ALPHA, sims: int = 300, seed: int = 0,
                 candidates=(3, 5, 8, 10, 15, 20, 30, 50, 75, 100, 150, 200)) -> dict:
    """Seeds per arm for the log-rank test to detect a ``target_speedup`` with ``power``.

    Model: baseline runs are resampled from the pilot runs; a treated run is a
    resampled pilot run with its grok time divided by the speed-up (censored if
    that exceeds the budget; a censored pilot run stays censored, which is
    conservative). Returns {"n": seeds or None, "power": at n, "reason": text}.
    Needs at least one pilot run that grokked: without one, the pilots carry no
    information about grok times and no number of seeds can be promised.
    """
    t = np.asarray(pilot_times, float)
    g = np.asarray(pilot_grokked, bool)
    if not g.any():
        return {"n": None, "power": math.nan,
                "reason": f"no pilot run grokked within {budget} steps: more seeds at this budget cannot show a speed-up"}

    def base(rng, n):
        i = rng.integers(0, len(t), n)
        return t[i], g[i]

    def treated(rng, n):
        i = rng.integers(0, len(t), n)
        return _sped_up(t[i], g[i], budget, target_speedup)

    pw = math.nan
    for n in candidates:
        pw = simulated_power(base, treated, n, sims=sims, alpha=alpha, seed=seed)
        if pw >= power:
            return {"n": int(n), "power": pw, "reason": f"simulated log-rank power {pw:.2f} at n = {n} per arm"}
    n = candidates[-1]
    ahead, behind, z = expected_logrank(t, g, budget, target_speedup, n)
    need = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    reason = (f"power {pw:.2f} even at n = {n} per arm: the expected sample of that size (pilot: {int(g.sum())} of "
              f"{len(g)} runs grokked, at {len(np.unique(t[g]))} distinct steps) gives a log-rank z of {z:.2f}, where "
              f"{power:.0%} power needs about {need:.2f}; the treated arm's observed minus expected events sum to "
              f"{ahead:+.1f} over the grok times where they are positive and {behind:+.1f} where they are negative, "
              f"and the test's numerator is their total")
    return {"n": None, "power": pw, "reason": reason}


def expected_logrank(pilot_times, pilot_grokked, budget: int, target_speedup: float, n: int):
    """The log-rank statistic of the *expected* experiment under :func:`seeds_needed`'s model: ``n``
    runs per arm spread over the pilot's outcomes in proportion (fractional counts), the treated
    arm's grok times divided by ``target_speedup``. Returns (sum of the treated arm's observed minus
    expected events at the times where it is positive, the sum where it is negative, z = total O - E
    over the square root of the hypergeometric variance). z is about the mean of the test's z over
    simulated experiments, so power is about Phi(|z| - 1.96): it says why a simulation's power is what
    it is, e.g. low when the arms' curves differ in when runs grok but not in how many do."""
    t, g = np.asarray(pilot_times, float), np.asarray(pilot_grokked, bool)
    w = np.full(len(t), n / len(t))
    tt, gt = _sped_up(t, g, budget, target_speedup)
    times = np.unique(np.concatenate([t, tt]))
    ahead = behind = var = 0.0
    for s in times:
        r_b, r_t = w[t >= s].sum(), w[tt >= s].sum()
        d_b, d_t = w[(t == s) & g].sum(), w[(tt == s) & gt].sum()
        r, d = r_b + r_t, d_b + d_t
        if d == 0 or r <= 1:
            continue
        oe = d_t - d * r_t / r
        ahead, behind = ahead + max(oe, 0.0), behind + min(oe, 0.0)
        var += d * (r_t / r) * (r_b / r) * (r - d) / (r - 1)
    z = (ahead + behind) / math.sqrt(var) if var > 0 else math.nan
    return ahead, behind, z


def km_medians(times, events, censored) -> np.ndarray:
    """Kaplan-Meier medians of many samples at once, each given as counts over the same
    distinct times: ``events[i, j]`` / ``censored[i, j]`` runs of sample ``i`` grokked / were
    censored at ``times[j]`` (sorted ascending). The same estimate as :func:`kaplan_meier`
    (a run censored at t is at risk at t); inf where the curve never reaches one half."""
    times = np.asarray(times, float)
    d, c = np.atleast_2d(np.asarray(events, float)), np.atleast_2d(np.asarray(censored, float))
    at_risk = (d + c).sum(axis=1, keepdims=True) - (np.cumsum(d + c, axis=1) - (d + c))
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(at_risk > 0, 1.0 - d / at_risk, 1.0), axis=1)
    hit = surv <= 0.5 + 1e-12  # first reached at an event time: the curve only drops there
    return np.where(hit.any(axis=1), times[hit.argmax(axis=1)], np.inf)


def equivalence_power(pilot_times, pilot_grokked, n: int, margin: tuple[float, float] = (2 / 3, 3 / 2),
                      sims: int = 200, n_boot: int = 400, level: float = 0.95, alpha: float = ALPHA,
                      seed: int = 0) -> float:
    """Probability that an experiment with ``n`` runs per arm meets the rule for a claimed absence
    of effect when there is none: the bootstrap interval of the speed-up (:func:`speedup`) inside
    ``margin`` and the log-rank test not rejecting.

    Model: both arms are drawn from the pilot runs (no effect), runs independent, as the rule's
    unpaired bootstrap assumes; a resample is drawn as counts over the pilot's distinct outcomes,
    which is the same distribution as resampling runs. ``n_boot`` is smaller than the report's
    (the interval's ends are rougher, in both directions).
    """
    t, g = np.asarray(pilot_times, float), np.asarray(pilot_grokked, bool)
    times, cell = _outcome_cells(t, g)
    cells = np.bincount(cell, minlength=2 * len(times)).astype(float)  # events, then censored
    prob, k = cells / cells.sum(), len(times)
    rng = np.random.default_rng(seed)

    def medians(counts):
        boot = rng.multinomial(n, counts / n, size=n_boot)
        return km_medians(times, boot[:, :k], boot[:, k:])

    def runs(counts):
        return np.repeat(np.concatenate([times, times]), counts), np.repeat(np.arange(2 * k) < k, counts)

    hits = 0
    for _ in range(sims):
        a, b = rng.multinomial(n, prob), rng.multinomial(n, prob)
        lo, hi = percentile_interval(_ratios(medians(a), medians(b)), level)
        if not math.isnan(lo) and margin[0] <= lo and hi <= margin[1]:
            p = logrank(*runs(a), *runs(b))[1]
            hits += bool(math.isnan(p) or p >= alpha)
    return hits / sims


def seeds_for_equivalence(pilot_times, pilot_grokked, power: float = 0.8, margin: tuple[float, float] = (2 / 3, 3 / 2),
                          sims: int = 200, seed: int = 0,
                          candidates=(3, 5, 8, 10, 15, 20, 30, 50, 75, 100, 150, 200)) -> dict:
    """Seeds per arm for a claim of no effect to be *supported* (:func:`equivalence_power`) with
    ``power``, if the arms truly do not differ. Returns {"n", "power", "reason"} like
    :func:`seeds_needed`; where no candidate suffices, the reason says what in the pilot's
    survival curve stands in the way."""
    t, g = np.asarray(pilot_times, float), np.asarray(pilot_grokked, bool)
    if not g.any():
        return {"n": None, "power": math.nan,
                "reason": "no pilot run grokked: neither arm has a Kaplan-Meier median, so the speed-up has no "
                          "interval and more seeds at this budget cannot show equivalence"}
    pw = math.nan
    for n in candidates:
        pw = equivalence_power(t, g, n, margin=margin, sims=sims, seed=seed)
        if pw >= power:
            return {"n": int(n), "power": pw, "reason": f"simulated power {pw:.2f} at n = {n} per arm"}
    reason = f"power {pw:.2f} even at n = {candidates[-1]} per arm"
    km = kaplan_meier(t, g)
    if math.isinf(km.median):
        return {"n": None, "power": pw, "reason": reason + f": fewer than half the pilot runs grokked "
                f"({int(g.sum())}/{len(g)}), so a resample's median is often undefined"}
    i = int(np.searchsorted(km.times, km.median))
    before = 1.0 if i == 0 else float(km.survival[i - 1])
    # the neighbouring grok time a resample's median falls on when the curve's crossing of 1/2 moves
    if i > 0 and abs(before - 0.5) <= abs(float(km.survival[i]) - 0.5):
        other, s_near = float(km.times[i - 1]), before
    elif i + 1 < len(km.times):
        other, s_near = float(km.times[i + 1]), float(km.survival[i])
    else:
        other, s_near = math.inf, float(km.survival[i])
    step = max(other, km.median) / min(other, km.median)
    if math.isfinite(other) and step > margin[1]:
        lo_t, hi_t = sorted((other, km.median))
        reason += (f": the pilot's survival curve is {s_near:.3f} at step {lo_t:g}, within {abs(s_near - 0.5):.3f} of "
                   f"the one half that defines the median, so a resample's median falls on step {lo_t:g} or "
                   f"{hi_t:g}, whose ratio {step:.2f} lies outside the margin {margin[0]:.2f}-{margin[1]:.2f}, until "
                   "the seeds are enough to tell on which side of one half the curve passes; the grok times are no "
                   "finer than the evaluation interval")
    return {"n": None, "power": pw, "reason": reason}


# ---- the comparisons a report needs --------------------------------------------------------------
def compare(ref_rows: list[dict], new_rows: list[dict]) -> dict:
    """Every statistic of ``new`` against ``ref`` (rows of mechgrok.results, finished runs only)."""
    tr = [r["time_to_grok"] for r in ref_rows]
    gr = [r["grokked"] for r in ref_rows]
    tn = [r["time_to_grok"] for r in new_rows]
    gn = [r["grokked"] for r in new_rows]
    ratio, lo, hi = speedup(tr, gr, tn, gn) if ref_rows and new_rows else (math.nan,) * 3
    km_r, km_n = kaplan_meier(tr, gr), kaplan_meier(tn, gn)
    chi2, p_lr = logrank(tr, gr, tn, gn) if ref_rows and new_rows else (math.nan, math.nan)
    peak_r = [r["peak_test_acc"] for r in ref_rows]
    peak_n = [r["peak_test_acc"] for r in new_rows]
    return {
        "n_ref": len(ref_rows), "n_new": len(new_rows), "grokked_ref": int(sum(gr)), "grokked_new": int(sum(gn)),
        "median_ref": km_r.median, "median_new": km_n.median, "speedup": ratio, "speedup_lo": lo, "speedup_hi": hi,
        "logrank_chi2": chi2, "logrank_p": p_lr,
        # Mann-Whitney only where censoring is common to all runs (else its ranks would be wrong)
        "mannwhitney_p": mann_whitney(tr, tn) if common_censoring(tr + tn, gr + gn) else math.nan,
        "peak_diff": float(np.mean(peak_n) - np.mean(peak_r)) if peak_r and peak_n else math.nan,
        "peak_p": permutation_pvalue(peak_n, peak_r),
    }


def arm_summary(rows: list[dict]) -> dict:
    km = kaplan_meier([r["time_to_grok"] for r in rows], [r["grokked"] for r in rows])
    return {"n": km.n, "grokked": km.events, "q25": km.quantile(0.25), "median": km.median,
            "q75": km.quantile(0.75), "budget": max((r["budget"] for r in rows), default=0),
            "peak_test_acc": float(np.median([r["peak_test_acc"] for r in rows])) if rows else math.nan}


def table(rows: list[dict]) -> list[dict]:
    """The stats table: one line per (variant, arm) of finished runs, with the comparison
    against the same variant's baseline where there is one."""
    from .results import finished

    rows = finished(rows)
    out = []
    for variant in sorted({r["variant"] for r in rows}):
        in_v = [r for r in rows if r["variant"] == variant]
        base = [r for r in in_v if r["arm"] == "baseline"]
        for arm in sorted({r["arm"] for r in in_v}, key=lambda a: (a != "baseline", a)):
            arm_rows = [r for r in in_v if r["arm"] == arm]
            line = {"variant": variant, "arm": arm, **arm_summary(arm_rows)}
            if arm != "baseline" and base:
                line.update(compare(base, arm_rows))
            out.append(line)
    return out


def _fmt(v, digits=3, inf="never") -> str:
    """A table cell: '-' for missing, ``inf`` for +infinity ('never' for a time, 'inf' for a ratio)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return inf if v > 0 else "-inf"
        return f"{v:.{digits}g}"
    return str(v)


def format_table(lines: list[dict]) -> str:
    """The lines of :func:`table` as fixed-width text; the variant column is as wide as its longest
    name (never cut: variants that differ only in their last setting must stay apart)."""
    w = max([28, *(len(ln["variant"]) for ln in lines)])
    head = (f"{'variant':<{w}} {'arm':<14} {'n':>3} {'grok':>4} {'median':>7} {'q25':>6} {'q75':>6} "
            f"{'speed-up [95% CI]':>24} {'log-rank p':>10} {'MW p':>7} {'peak acc':>8}")
    out = [head]
    for ln in lines:
        ratio = [_fmt(ln[k], inf="inf") for k in ("speedup", "speedup_lo", "speedup_hi")
                 if "speedup" in ln]  # a ratio's infinity is not a time: 'inf', as in the report
        sp = f"{ratio[0]} [{ratio[1]}, {ratio[2]}]" if ratio else ""
        out.append(f"{ln['variant']:<{w}} {ln['arm']:<14} {ln['n']:>3} {ln['grokked']:>4} "
                   f"{_fmt(ln['median'], 5):>7} {_fmt(ln['q25'], 5):>6} {_fmt(ln['q75'], 5):>6} {sp:>24} "
                   f"{_fmt(ln.get('logrank_p')):>10} {_fmt(ln.get('mannwhitney_p')):>7} "
                   f"{_fmt(ln['peak_test_acc']):>8}")
    out.append("time-to-grok in steps (Kaplan-Meier, censored runs kept; 'never' = curve never reaches it); "
               "speed-up = baseline median / arm median (0 or inf where a median of a resample lies beyond the budget)")
    return "\n".join(out)


def extra_lines(rows: list[dict]) -> list[str]:
    """Kruskal-Wallis of the per-seed dream speed-up across regimes, and per reading the
    correlation of replayed surprise with time-to-grok over dream runs that grokked."""
    from .results import finished

    rows = finished(rows)
    out = []
    groups = {}
    for r in rows:
        if r["arm"] != "dream":
            continue
        base = [b for b in rows if b["arm"] == "baseline" and b["variant"] == r["variant"] and b["seed"] == r["seed"]]
        if base:
            groups.setdefault(r["regime"], []).append(math.log(base[0]["time_to_grok"] / max(r["time_to_grok"], 1)))
    if len(groups) >= 2:
        out.append(f"Kruskal-Wallis of per-seed log(baseline/dream time-to-grok) across regimes "
                   f"({', '.join(f'{k} n={len(v)}' for k, v in groups.items())}): p {_fmt(kruskal_wallis(list(groups.values())))}"
                   " (censored runs at their budget)")
    for variant in sorted({r["variant"] for r in rows}):
        d = [r for r in rows if r["variant"] == variant and r["arm"] == "dream" and r["grokked"]]
        c = correlation([r["selected_surprise"] for r in d], [r["time_to_grok"] for r in d])
        if c["n"]:
            out.append(f"{variant}: replayed surprise vs time-to-grok over {c['n']} grokked dream runs: r {_fmt(c['r'])} "
                       f"[{_fmt(c['lo'])}, {_fmt(c['hi'])}], Spearman {_fmt(c['spearman'])}")
    return out


def main(argv: list[str] | None = None) -> int:
    from .cli import OneLineParser, error_line

    ap = OneLineParser(prog="python -m mechgrok.stats", description="Time-to-grok statistics of run files.")
    ap.add_argument("paths", nargs="+", help="run files or folders (searched recursively)")
    ap.add_argument("--csv", help="also write the table as CSV here")
    ap.add_argument("--table", help="also the finished runs of this results table (results/runs.csv) whose "
                                    "files are not here")
    args = ap.parse_args(argv)
    from .results import load, no_runs_error

    try:
        if args.csv:
            out_file(args.csv)
        rows, problems, n_carried = load(args.paths, args.table or None)
        if n_carried:
            print(f"from {args.table}: {n_carried} finished rows whose files are not here")
        unfinished = [r for r in rows if not r["finished"]]
        if not any(r["finished"] for r in rows):
            raise no_runs_error(args.paths, problems, table=args.table, detail=f"{len(unfinished)} unfinished")
        for line in problems:
            print(f"skipped: {line}", file=sys.stderr)
    except MechgrokError as exc:
        return error_line(ap.prog, exc)
    lines = table(rows)
    print(format_table(lines))
    for line in extra_lines(rows):
        print(line)
    if unfinished:
        print(f"left out: {len(unfinished)} unfinished run(s) (still training; not censored)")
    if args.csv:
        keys = sorted({k for ln in lines for k in ln}, key=lambda k: (k not in ("variant", "arm"), k))
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
