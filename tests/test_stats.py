"""Statistics against hand-computed values, censoring, and calibration by simulation."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from mechgrok import stats


def test_kaplan_meier_by_hand():
    km = stats.kaplan_meier([2, 3, 3, 5, 8], [True, True, False, True, False])
    # t=2: 5 at risk, 1 grokks -> 0.8; t=3: 4 at risk, 1 grokks -> 0.6; t=5: 2 at risk -> 0.3
    np.testing.assert_allclose(km.times, [2, 3, 5])
    np.testing.assert_allclose(km.survival, [0.8, 0.6, 0.3])
    assert km.median == 5 and km.quantile(0.25) == 3 and km.at(1) == 1.0 and km.at(4) == pytest.approx(0.6)
    assert km.n == 5 and km.events == 3


def test_censored_runs_are_kept_and_lower_the_drops():
    with_censored = stats.kaplan_meier([2, 3, 5, 30], [True, True, True, False])
    dropped = stats.kaplan_meier([2, 3, 5], [True, True, True])
    assert with_censored.n == 4
    assert 1 - with_censored.at(2) == pytest.approx(0.25)
    assert 1 - dropped.at(2) == pytest.approx(1 / 3)
    assert with_censored.at(5) == pytest.approx(0.25) and dropped.at(5) == 0.0
    # a curve that never reaches one half has no median
    assert math.isinf(stats.kaplan_meier([5, 30, 30], [True, False, False]).median)


def test_logrank_by_hand():
    # A = {1, 3}, B = {2, 4}, all grokked: O_A - E_A = 2 - 4/3, V = 1/4 + 2/9 + 1/4 -> chi2 = 8/13
    chi2, p = stats.logrank([1, 3], [True, True], [2, 4], [True, True])
    assert chi2 == pytest.approx(8 / 13)
    assert p == pytest.approx(0.43276, abs=1e-4)
    assert all(math.isnan(v) for v in stats.logrank([5, 5], [False, False], [5], [False]))


def test_paired_speedup_is_the_geometric_mean_of_each_seeds_ratio():
    # seeds where the new arm took half, the same, and twice the time: no speed-up on average
    g, lo, hi = stats.paired_speedup([4000, 3000, 2000], [2000, 3000, 4000])
    assert g == pytest.approx(1.0) and lo < 1 < hi
    # every seed 1.5x faster: the point and both ends are 1.5, whatever the resample
    assert stats.paired_speedup([3000, 6000, 4500], [2000, 4000, 3000]) == pytest.approx((1.5, 1.5, 1.5))
    # one seed: a point, no interval; no seed: nothing
    g, lo, hi = stats.paired_speedup([3000], [1000])
    assert g == pytest.approx(3.0) and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in stats.paired_speedup([], []))
    with pytest.raises(ValueError):  # a censored run has no time: callers leave the statistic out
        stats.paired_speedup([3000, 2000], [1000])


def test_sign_test_by_hand():
    # 5 of 6 differing seeds one way: P(X <= 1) = (1 + 6) / 64 under Binomial(6, 1/2), doubled
    assert stats.sign_test(5, 1) == pytest.approx(14 / 64)
    assert stats.sign_test(1, 5) == stats.sign_test(5, 1)
    assert stats.sign_test(3, 0) == pytest.approx(0.25) and stats.sign_test(2, 2) == 1.0
    assert math.isnan(stats.sign_test(0, 0))


def test_mann_whitney_and_permutation_by_hand():
    # exact: U = 0 is 1 of the 6 equally likely orderings of 2 vs 2, two-sided -> 2/6
    assert stats.mann_whitney([1, 2], [3, 4]) == pytest.approx(1 / 3)
    # all 6 splits enumerated: |mean diff| >= 2 for 2 of them
    assert stats.permutation_pvalue([1, 2], [3, 4]) == pytest.approx(1 / 3)
    assert stats.permutation_pvalue([0.5, 0.5], [0.5, 0.5]) == 1.0
    assert math.isnan(stats.permutation_pvalue([0.5, 0.6], [0.5]))  # one run is no sample


def test_speedup_point_interval_and_censoring():
    ratio, lo, hi = stats.speedup([10, 20, 30, 40, 50], [True] * 5, [5, 10, 15, 20, 25], [True] * 5)
    assert ratio == pytest.approx(2.0) and lo <= 2.0 <= hi
    assert (lo, hi) == stats.speedup([10, 20, 30, 40, 50], [True] * 5, [5, 10, 15, 20, 25], [True] * 5)[1:]  # seeded
    # only the new arm groks -> infinite ratio; only the reference -> 0; neither -> no ratio, no interval
    assert math.isinf(stats.speedup([100] * 3, [False] * 3, [10, 20, 30], [True] * 3)[0])
    assert stats.speedup([10, 20, 30], [True] * 3, [100] * 3, [False] * 3)[0] == 0.0
    r = stats.speedup([100] * 3, [False] * 3, [100] * 3, [False] * 3)
    assert all(math.isnan(v) for v in r)


def test_kruskal_and_correlation():
    assert stats.kruskal_wallis([[1, 2, 3, 4], [11, 12, 13, 14], [21, 22, 23, 24]]) < 0.01
    assert math.isnan(stats.kruskal_wallis([[1, 1], [1, 1]]))
    c = stats.correlation([1, 2, 3, 4, 5], [2, 4, 6, 8, 10.5])
    assert c["r"] > 0.99 and c["lo"] < c["r"] <= c["hi"] <= 1 and c["n"] == 5
    assert math.isnan(stats.correlation([1, 2], [3, 4])["r"])


def _lognormal(median, budget, sigma=0.6):
    def draw(rng, n):
        t = np.ceil(median * np.exp(sigma * rng.standard_normal(n)))
        return np.minimum(t, budget), t <= budget

    return draw


def test_aa_comparison_rejects_at_the_nominal_rate():
    """Two arms drawn from one process (with censoring): the log-rank test rejects at ~5%."""
    same = _lognormal(6000, 10_000)
    rate = stats.simulated_power(same, same, n=10, sims=600, seed=7)
    # binomial sd at 600 draws is 0.009; allow the test's small-sample conservatism
    assert 0.02 <= rate <= 0.085, rate


def test_power_matches_the_schoenfeld_prediction():
    """Exponential times, hazard ratio 2, no censoring: simulated log-rank power equals
    Schoenfeld's formula, power = Phi(sqrt(d / 4) |log HR| - z_(1 - alpha/2)), d = 2n events."""
    n = 20

    def expo(rate):
        return lambda rng, k: (rng.exponential(1 / rate, k), np.ones(k, bool))

    simulated = stats.simulated_power(expo(1.0), expo(2.0), n=n, sims=600, seed=3)
    predicted = norm.cdf(math.sqrt(2 * n / 4) * math.log(2) - norm.ppf(0.975))
    assert abs(simulated - predicted) < 0.07, (simulated, predicted)


def test_seeds_needed():
    rng = np.random.default_rng(0)
    t = np.ceil(6000 * np.exp(0.4 * rng.standard_normal(12)))
    g = t <= 30_000
    big = stats.seeds_needed(t, g, 30_000, target_speedup=3.7, sims=150)
    small = stats.seeds_needed(t, g, 30_000, target_speedup=1.3, sims=150)
    assert big["n"] is not None and big["n"] <= 8
    assert small["n"] is None or small["n"] > big["n"]
    none = stats.seeds_needed([30_000] * 3, [False] * 3, 30_000, target_speedup=3.7)
    assert none["n"] is None and "no pilot run grokked" in none["reason"]


def test_expected_logrank_is_the_test_on_the_expected_sample_and_predicts_the_simulated_power():
    # five pilot runs: three grok at few distinct steps, two never do; with 40 runs per pilot outcome
    # the expected sample has whole counts, so scipy's log-rank on it must give the same statistic
    t, g = np.array([15000, 4200, 4000, 15000, 12600.0]), np.array([False, True, True, False, True])
    ahead, behind, z = stats.expected_logrank(t, g, 15000, 1.5, 200)
    tt = np.where(g, np.ceil(t / 1.5), t)
    chi2, _ = stats.logrank(np.repeat(t, 40), np.repeat(g, 40), np.repeat(tt, 40), np.repeat(g, 40))
    assert z ** 2 == pytest.approx(chi2, rel=1e-9)
    assert ahead > 0 > behind and ahead + behind > 0  # the treated arm leads on balance
    # the normal approximation from z is what the simulation finds (the arms differ in when runs grok,
    # not in how many do, so the terms offset and the power is far below a 1.5x shift's usual)
    simulated = stats.seeds_needed(t, g, 15000, 1.5, candidates=(100,), sims=400)
    assert simulated["n"] is None
    assert abs(simulated["power"] - norm.cdf(abs(stats.expected_logrank(t, g, 15000, 1.5, 100)[2]) - 1.96)) < 0.08
    assert "log-rank z of 1.40" in simulated["reason"] and "too small" not in simulated["reason"]


def test_km_medians_from_counts_equal_kaplan_meier():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        t = rng.choice([200.0, 400.0, 600.0, 800.0], n)
        g = rng.random(n) < 0.6
        times = np.unique(t)
        d = [[np.sum((t == u) & g) for u in times]]
        c = [[np.sum((t == u) & ~g) for u in times]]
        assert stats.km_medians(times, d, c)[0] == stats.kaplan_meier(t, g).median, (t, g)


def test_seeds_for_equivalence():
    """Equivalence is reachable when grok times spread smoothly, and not when the survival curve
    passes one half just at an evaluation step whose neighbour lies outside the margin."""
    rng = np.random.default_rng(0)
    smooth = np.ceil(1000 * np.exp(0.3 * rng.standard_normal(30)))
    got = stats.seeds_for_equivalence(smooth, np.ones(30, bool), sims=100)
    assert got["n"] is not None and 10 <= got["n"] <= 100, got
    # 18 of 37 grok at 200 (survival 0.514 there), 4 more at 400, the rest censored at 600
    grid = [200.0] * 18 + [400.0] * 4 + [600.0] * 15
    grid_g = [True] * 22 + [False] * 15
    stuck = stats.seeds_for_equivalence(grid, grid_g, sims=60, candidates=(10, 50))
    assert stuck["n"] is None and stuck["power"] < 0.2
    assert "0.514 at step 200" in stuck["reason"] and "evaluation interval" in stuck["reason"]
    assert stats.equivalence_power(grid, grid_g, 50, sims=60) < 0.2
    none = stats.seeds_for_equivalence([600.0] * 5, [False] * 5)
    assert none["n"] is None and "no pilot run grokked" in none["reason"]


def test_mann_whitney_is_withheld_under_mixed_censoring():
    assert stats.common_censoring([100, 200, 3000, 3000], [True, True, False, False])
    assert not stats.common_censoring([100, 3000, 30000], [True, False, False])  # two budgets
    assert not stats.common_censoring([5000, 3000], [True, False])  # a grok after a censoring time
    ref = [{"time_to_grok": t, "grokked": False, "peak_test_acc": 0.1} for t in (30000, 3000)]
    new = [{"time_to_grok": t, "grokked": False, "peak_test_acc": 0.1} for t in (3000, 3000)]
    assert math.isnan(stats.compare(ref, new)["mannwhitney_p"])


def test_format_table_keeps_long_variant_names_apart():
    names = ["hard@split=random,train_fraction=0.3", "hard@split=random,train_fraction=0.5"]
    lines = [{"variant": v, "arm": "baseline", "n": 3, "grokked": 3, "median": 5600.0, "q25": 3600.0,
              "q75": 7600.0, "peak_test_acc": 1.0} for v in names]
    text = stats.format_table(lines).splitlines()
    assert [ln.split()[0] for ln in text[1:3]] == names
    assert len({len(ln) for ln in text[:3]}) == 1  # the header is as wide as the rows


def test_format_table_writes_an_infinite_ratio_as_inf_and_a_time_that_never_comes_as_never():
    base = {"variant": "medium", "n": 5, "grokked": 3, "median": 12600.0, "q25": 4200.0, "q75": math.inf,
            "peak_test_acc": 0.98}
    text = stats.format_table([{**base, "arm": "baseline"},
                               {**base, "arm": "dream", "speedup": 1.07, "speedup_lo": 0.0, "speedup_hi": math.inf,
                                "logrank_p": 0.5, "mannwhitney_p": 0.67}])
    dream = text.splitlines()[2]
    assert "1.07 [0, inf]" in dream and dream.count("never") == 1  # q75: the curve never reaches 3/4


def test_speedup_bootstrap_equals_the_loop_over_resamples_it_stands_for():
    """The vectorised bootstrap gives exactly the interval of its definition: the same seeded
    resamples, each arm's Kaplan-Meier median by kaplan_meier, the percentile interval of the ratios."""
    rng = np.random.default_rng(11)
    for _ in range(30):
        na, nb = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        ta, tb = rng.choice([200.0, 400.0, 600.0, 1000.0], na), rng.choice([200.0, 400.0, 800.0, 1000.0], nb)
        ga, gb = rng.random(na) < 0.7, rng.random(nb) < 0.7
        boot = np.random.default_rng(3)
        med_a, med_b = np.empty(300), np.empty(300)
        for i in range(300):
            a, b = boot.integers(0, na, na), boot.integers(0, nb, nb)
            med_a[i], med_b[i] = stats.kaplan_meier(ta[a], ga[a]).median, stats.kaplan_meier(tb[b], gb[b]).median
        expected = stats.percentile_interval(stats._ratios(med_a, med_b))
        got = stats.speedup(ta, ga, tb, gb, n_boot=300, seed=3)[1:]
        assert np.array_equal(got, expected, equal_nan=True), (ta, ga, tb, gb)
