"""Fourier metrics on planted structure."""

import math

import numpy as np
import pytest

from mechgrok import fourier as F


def _planted_embedding(p, norms_by_freq, d=16, seed=0):
    rng = np.random.default_rng(seed)
    B = F.basis(p)
    W = np.zeros((p, d))
    for k, norm in norms_by_freq.items():
        v_cos, v_sin = rng.standard_normal(d), rng.standard_normal(d)
        scale = norm / math.sqrt(v_cos @ v_cos + v_sin @ v_sin)
        W += np.outer(B[2 * k - 1], v_cos * scale) + np.outer(B[2 * k], v_sin * scale)
    return W


def test_basis_is_orthonormal():
    B = F.basis(13)
    np.testing.assert_allclose(B @ B.T, np.eye(13), atol=1e-12)
    with pytest.raises(ValueError):
        F.basis(12)


def test_planted_embedding_is_decomposed_exactly():
    p = 13
    W = _planted_embedding(p, {2: 3.0, 5: 3.0, 6: 1.0})
    const, norms = F.frequency_norms(W)
    expected = np.zeros(6)
    expected[[1, 4, 5]] = [3.0, 3.0, 1.0]
    np.testing.assert_allclose(norms, expected, atol=1e-12)
    assert const == pytest.approx(0, abs=1e-12)
    # energies 9, 9, 1: two frequencies hold 18/19 >= 80%
    assert sorted(F.key_frequencies(norms)) == [2, 5]
    sp = F.sparsity(norms)
    assert sp["top_share"] == pytest.approx(1.0)
    assert sp["ipr"] == pytest.approx(1 / ((9 / 19) ** 2 * 2 + (1 / 19) ** 2))
    assert sp["gini"] > 0.6
    # W_U is indexed by tokens along its columns
    _, norms_u = F.frequency_norms(W.T, axis=1)
    np.testing.assert_allclose(norms_u, expected, atol=1e-12)


def test_random_embedding_is_not_sparse():
    W = np.random.default_rng(1).standard_normal((97, 128))
    _, norms = F.frequency_norms(W)
    sp = F.sparsity(norms)
    assert sp["top_share"] < 0.25 and sp["gini"] < 0.3 and sp["ipr"] > 30
    assert len(F.key_frequencies(norms)) > 25


def _fourier_logits(p, keys, beta=4.0):
    a, b = np.divmod(np.arange(p * p), p)
    c = np.arange(p)
    return sum(beta * np.cos(2 * math.pi * k * ((a + b)[:, None] - c[None, :]) / p) for k in keys)


def test_restricted_loss_of_fourier_built_logits_equals_full_loss():
    p, keys = 13, [2, 5]
    logits = _fourier_logits(p, keys)
    train_idx = np.random.default_rng(0).permutation(p * p)[:60]
    res = F.restricted_and_excluded_loss(logits, p, keys, train_idx)
    assert res["restricted_loss"] == pytest.approx(res["full_loss"], abs=1e-10)
    assert res["full_loss"] < 0.5
    # removing the key frequencies' cos/sin k(a+b) leaves nothing: chance-level loss on the training pairs
    assert res["excluded_loss"] == pytest.approx(math.log(p), abs=1e-9)
    # restricting to other frequencies destroys the model
    other = F.restricted_and_excluded_loss(logits, p, [1, 3], train_idx)
    assert other["restricted_loss"] == pytest.approx(math.log(p), abs=1e-9)


def test_logit_spectrum_finds_the_planted_frequencies_and_not_noise():
    p = 13
    logits = _fourier_logits(p, [2, 5]) + 3.0  # an offset per output changes nothing
    lg = F.logit_spectrum(logits, p)
    # each planted cos k(a+b-c) puts beta^2 * p^2 / 2 per output along cos/sin k(a+b), summed over p outputs
    expected = np.zeros(6)
    expected[[1, 4]] = math.sqrt(4.0 ** 2 * p ** 2 / 2 * p)
    np.testing.assert_allclose(lg, expected, atol=1e-9)
    assert sorted(F.key_frequencies(lg)) == [2, 5] and list(F.top_frequencies(lg, 2)) in ([2, 5], [5, 2])
    # a term in a or b alone (what a memorising embedding can carry) is not in the (a+b) spectrum
    a, b = np.divmod(np.arange(p * p), p)
    np.testing.assert_allclose(F.logit_spectrum(np.outer(np.cos(2 * math.pi * 3 * a / p), np.ones(p)), p), 0,
                               atol=1e-9)
    # random logits over p = 97 spread over the frequencies
    noise = F.logit_spectrum(np.random.default_rng(0).standard_normal((97 * 97, 97)), 97)
    assert F.sparsity(noise)["top_share"] < 0.25 and len(F.key_frequencies(noise)) > 25


def test_a_lookup_table_passes_the_many_key_restriction_but_not_the_five_logit_keys():
    """A pure memoriser of half the p = 97 pairs (the right answer 12 nats up on its training pairs,
    noise elsewhere): averaging along the diagonals a + b = const recovers the answer, so restricting
    to W_E-style 80% key sets (dozens of frequencies) scores well; five keys do not."""
    p = 97
    rng = np.random.default_rng(0)
    labels = (np.arange(p * p) // p + np.arange(p * p) % p) % p
    train = np.nonzero(rng.random(p * p) < 0.5)[0]
    logits = rng.standard_normal((p * p, p))
    logits[train, labels[train]] += 12
    lg = F.logit_spectrum(logits, p)
    many = F.key_frequencies(lg)
    assert len(many) > 30
    assert F.restricted_and_excluded_loss(logits, p, many, train)["restricted_loss"] < 1.0
    assert F.restricted_and_excluded_loss(logits, p, F.top_frequencies(lg), train)["restricted_loss"] > 3.0
    # ... while Fourier-built logits pass with their five strongest
    built = _fourier_logits(p, [7, 20, 33, 41, 45], beta=2.0)
    keys = F.top_frequencies(F.logit_spectrum(built, p))
    assert sorted(keys) == [7, 20, 33, 41, 45]
    assert F.restricted_and_excluded_loss(built, p, keys, train)["restricted_loss"] < 0.1


def test_neuron_frequencies():
    p = 13
    a, b = np.divmod(np.arange(p * p), p)
    w = 2 * math.pi * 3 / p
    clean = np.cos(w * a) * np.cos(w * b) + 0.5 * np.sin(w * b) + 2.0
    noisy = np.random.default_rng(0).standard_normal(p * p)
    dead = np.zeros(p * p)
    freq, share = F.neuron_frequencies(np.stack([clean, noisy, dead], axis=1), p)
    assert freq[0] == 3 and share[0] == pytest.approx(1.0)
    assert share[1] < 0.5 and freq[2] == 0


def test_emergence_rule():
    steps = [0, 400, 800, 1200]
    assert F.emergence(steps, [0.1, 0.6, 0.7, 0.9], [4.0, 2.0, 0.5, 0.1]) == 800
    assert F.emergence(steps, [0.1] * 4, [0.1] * 4) == -1
    assert F.emergence(steps, None, [4.0, 2.0, 0.5, 0.1]) == 800  # the logit reading: loss alone


def test_key_overlap_counts_the_key_frequencies_two_spectra_share():
    p = 13
    keys = {planted: F.key_frequencies(F.frequency_norms(_planted_embedding(p, {k: 3.0 for k in planted}))[1])
            for planted in ((2, 5), (5, 6), (1, 3))}
    assert F.key_overlap(keys[(2, 5)], keys[(2, 5)]) == 1.0
    assert F.key_overlap(keys[(2, 5)], keys[(5, 6)]) == pytest.approx(1 / 3)  # {5} of {2, 5, 6}
    assert F.key_overlap(keys[(2, 5)], keys[(1, 3)]) == 0.0
    assert math.isnan(F.key_overlap(F.key_frequencies(np.zeros(6)), F.key_frequencies(np.zeros(6))))
