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
