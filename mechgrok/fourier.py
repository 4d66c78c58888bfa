"""The Fourier picture of modular addition (after Nanda et al. 2023, "Progress measures
for grokking via mechanistic interpretability"), reimplemented from its definitions.

Basis. Over tokens x = 0..p-1 (p odd) the real Fourier basis has p orthonormal
vectors: the constant 1/sqrt(p) and, for each frequency k = 1..(p-1)/2,
sqrt(2/p) cos(2 pi k x / p) and sqrt(2/p) sin(2 pi k x / p). :func:`basis` returns
it as the rows of a p x p orthogonal matrix, in the order
const, cos 1, sin 1, cos 2, sin 2, ...

Metrics (each a plain function on arrays, so tests can plant structure):

- ``frequency_norms(W)``: the norm of each frequency in a matrix whose rows (W_E,
  rows 0..p-1) or columns (W_U) are indexed by tokens;
- ``key_frequencies``: the smallest set of frequencies holding at least
  ``KEY_ENERGY`` (80%) of the non-constant energy (squared norm) of W_E;
- ``key_overlap``: the share of two key-frequency sets that both hold
  (Jaccard), e.g. whether two runs reached the same Fourier solution;
- sparsity of the non-constant spectrum: Gini coefficient of the frequency
  energies, inverse participation ratio (1/sum(e_k^2) for energies normalised to
  sum 1: the effective number of frequencies), share of energy in the top
  ``TOP_N`` (5) frequencies;
- per-neuron frequency: for each MLP neuron, the share of the variance of its
  activation at the last position over all p*p inputs (a, b) carried by 2-D
  Fourier terms that involve only one frequency k (with the constant); a neuron
  whose best share is >= ``CLEAN_NEURON`` (0.85) is a clean single-frequency neuron;
- restricted loss: the logits over all p*p inputs, for each output c projected
  onto the 2-D Fourier terms of the key frequencies (cos/sin k a x cos/sin k b, the
  span of cos/sin k(a +- b)) plus the constant; cross-entropy over all pairs;
- excluded loss: the logits with their components along cos k(a+b) and
  sin k(a+b) of every key frequency removed; cross-entropy over the training pairs;
- emergence: the first checkpoint whose top-5 share is >= ``EMERGE_TOP_SHARE``
  (0.5) and whose restricted loss is <= ``EMERGE_RESTRICTED_LOSS`` (1.0 nats).

The same, read from what the model computes rather than from its embedding:

- ``logit_spectrum(logits, p)``: for each frequency k, the norm of the logits'
  components (over all p*p inputs, summed over the outputs) along cos k(a+b) and
  sin k(a+b), the terms through which the modular-addition algorithm writes its
  answer (logit_c = sum_k cos k(a+b-c) up to scale);
- logit key frequencies: the ``TOP_N`` (5) strongest frequencies of that spectrum, a
  fixed number, so that restricting to them is always a strong restriction (21 of
  the p*p functions over (a, b));
- logit restricted and excluded losses: the definitions above with those keys;
- logit emergence: the first checkpoint whose logit restricted loss is <=
  ``EMERGE_RESTRICTED_LOSS``.

Why both. W_E's spectrum turns sparse only when weight decay clears the embedding
of what the algorithm does not use. At weaker decay a model can run the algorithm
on a few frequencies while W_E still spreads its energy over most of them: a
medium-regime run here (random split, weight decay 0.05, seed 2) grokked with 99.96%
of its logits' (a+b) energy on two frequencies and three quarters of its MLP neurons
tuned to its logit keys, while W_E's top-5 share was 0.38 and its 80% key set held
32 frequencies. The embedding reading cannot simply drop its top-5 gate: with a key
set that large, the restricted loss is low for a pure lookup table too, because
projecting on cos/sin k(a+b) averages the logits along each diagonal a + b = const,
where the memorised training pairs already vote for the right answer (planted in tests/test_fourier.py:
a memoriser of half of the p = 97 pairs has restricted loss 0.59 with its 39
80%-keys, 3.97 with its 5 logit keys). benchmarks/fourier_readings.py compares the
two readings on run files.
"""

from __future__ import annotations

import math

import numpy as np

KEY_ENERGY = 0.8
TOP_N = 5
CLEAN_NEURON = 0.85
EMERGE_TOP_SHARE = 0.5
EMERGE_RESTRICTED_LOSS = 1.0


def basis(p: int) -> np.ndarray:
    """Orthonormal real Fourier basis over 0..p-1 (rows), p odd."""
    if p % 2 == 0:
        raise ValueError(f"the Fourier analysis assumes an odd modulus, got p = {p}")
    x = np.arange(p)
    rows = [np.full(p, 1 / math.sqrt(p))]
    for k in range(1, (p - 1) // 2 + 1):
        rows.append(math.sqrt(2 / p) * np.cos(2 * math.pi * k * x / p))
        rows.append(math.sqrt(2 / p) * np.sin(2 * math.pi * k * x / p))
    return np.stack(rows)


def n_frequencies(p: int) -> int:
    return (p - 1) // 2


def frequency_norms(W: np.ndarray, axis: int = 0) -> tuple[float, np.ndarray]:
    """(constant norm, norms of frequencies 1..(p-1)/2) of ``W`` along its token axis."""
    W = np.asarray(W, dtype=np.float64)
    if axis == 1:
        W = W.T
    p = W.shape[0]
    c = basis(p) @ W  # rows: basis coefficients
    energy = (c ** 2).sum(axis=1)
    freq = energy[1::2] + energy[2::2]
    return float(math.sqrt(energy[0])), np.sqrt(freq)


def key_frequencies(norms: np.ndarray, fraction: float = KEY_ENERGY) -> np.ndarray:
    """1-based frequencies, strongest first, that together hold >= ``fraction`` of the energy."""
    e = np.asarray(norms, float) ** 2
    if e.sum() == 0:
        return np.zeros(0, dtype=int)
    order = np.argsort(-e, kind="stable")
    cum = np.cumsum(e[order]) / e.sum()
    n = int(np.searchsorted(cum, fraction - 1e-12) + 1)
    return order[:n] + 1


def key_overlap(keys_a, keys_b) -> float:
    """How far two sets of key frequencies (``key_frequencies`` of two spectra) are shared:
    |A & B| / |A | B| (Jaccard; 1 = the same set, 0 = none shared); NaN where both are empty."""
    a, b = {int(k) for k in keys_a}, {int(k) for k in keys_b}
    return len(a & b) / len(a | b) if a | b else math.nan


def sparsity(norms: np.ndarray, top: int = TOP_N) -> dict:
    """Gini coefficient, inverse participation ratio and top-``top`` share of the energies."""
    e = np.sort(np.asarray(norms, float) ** 2)
    n = len(e)
    if e.sum() == 0:
        return {"gini": 0.0, "ipr": 0.0, "top_share": 0.0}
    w = e / e.sum()
    gini = float((2 * np.arange(1, n + 1) - n - 1) @ w / (n - 1)) if n > 1 else 0.0
    return {"gini": gini, "ipr": float(1 / np.sum(w ** 2)), "top_share": float(w[::-1][:top].sum())}


def _freq_index(k: int) -> list[int]:
    return [2 * k - 1, 2 * k]


def neuron_frequencies(acts: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """For activations ``acts`` (p*p inputs in order a*p+b, n_neurons), each neuron's best
    frequency (1-based; 0 for a dead neuron) and the share of its variance it explains.

    The share of frequency k is the energy of the 2-D Fourier coefficients whose row
    and column are each the constant or frequency k (not both constant), over all
    energy but the constant-constant term (the mean)."""
    A = np.asarray(acts, dtype=np.float32).reshape(p, p, -1)
    F = basis(p).astype(np.float32)
    n = A.shape[2]
    T = (F @ A.reshape(p, p * n)).reshape(p, p, n)  # transform over a
    C = np.matmul(F[None], T)  # transform over b: C[i, j, n]
    E = (C.astype(np.float64)) ** 2
    K = n_frequencies(p)
    # block sums over the (constant, frequency 1..K) groups of rows and columns
    rows = np.concatenate([E[:1], E[1:].reshape(K, 2, p, n).sum(axis=1)])  # (K+1, p, n)
    S = np.concatenate([rows[:, :1], rows[:, 1:].reshape(K + 1, K, 2, n).sum(axis=2)], axis=1)  # (K+1, K+1, n)
    total = S.sum(axis=(0, 1)) - S[0, 0]
    k = np.arange(1, K + 1)
    share = S[0, k] + S[k, 0] + S[k, k]  # (K, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 1e-12 * np.maximum(S[0, 0], 1), share / np.where(total > 0, total, 1), 0.0)
    best = share.argmax(axis=0)
    alive = total > 1e-12 * np.maximum(S[0, 0], 1)
    return np.where(alive, best + 1, 0), share[best, np.arange(n)]


def _project_logits(logits: np.ndarray, p: int, funcs: np.ndarray) -> np.ndarray:
    """Project each output's logit map over (a, b) onto the orthonormal functions ``funcs`` (m, p*p)."""
    L = logits.reshape(p * p, -1)
    return funcs.T @ (funcs @ L)


def restricted_functions(p: int, keys) -> np.ndarray:
    """Orthonormal 2-D functions over (a, b): the constant and, for each key k, the four
    products cos/sin(k a) x cos/sin(k b) (their span is that of cos/sin k(a + b), cos/sin k(a - b))."""
    F = basis(p)
    out = [np.outer(F[0], F[0]).ravel()]
    for k in keys:
        idx = _freq_index(int(k))
        out += [np.outer(F[i], F[j]).ravel() for i in idx for j in idx]
    return np.stack(out)


def top_frequencies(norms: np.ndarray, n: int = TOP_N) -> np.ndarray:
    """The ``n`` strongest frequencies (1-based), strongest first."""
    return np.argsort(-np.asarray(norms, float), kind="stable")[:n] + 1


def logit_spectrum(logits: np.ndarray, p: int) -> np.ndarray:
    """Norm of the all-pairs ``logits`` (p*p, n_out) along cos/sin k(a+b), for k = 1..(p-1)/2."""
    L = np.asarray(logits, dtype=np.float64).reshape(p * p, -1)
    coef = sum_functions(p, range(1, n_frequencies(p) + 1)) @ L  # (2K, n_out)
    return np.sqrt((coef ** 2).sum(axis=1).reshape(-1, 2).sum(axis=1))


def sum_functions(p: int, keys) -> np.ndarray:
    """Orthonormal functions cos k(a+b), sin k(a+b) over (a, b) for each key k."""
    a, b = np.divmod(np.arange(p * p), p)
    out = []
    for k in keys:
        w = 2 * math.pi * int(k) / p
        out += [np.cos(w * (a + b)) * math.sqrt(2) / p, np.sin(w * (a + b)) * math.sqrt(2) / p]
    return np.stack(out) if out else np.zeros((0, p * p))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def restricted_and_excluded_loss(logits: np.ndarray, p: int, keys, train_idx: np.ndarray) -> dict:
    """Full, restricted (all pairs) and excluded (training pairs) loss of all-pairs ``logits`` (p*p, p)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.arange(p * p) // p + np.arange(p * p) % p
    labels %= p
    restricted = _project_logits(logits, p, restricted_functions(p, keys))
    excluded = logits - _project_logits(logits, p, sum_functions(p, keys))
    return {"full_loss": cross_entropy(logits, labels),
            "full_train_loss": cross_entropy(logits[train_idx], labels[train_idx]),
            "restricted_loss": cross_entropy(restricted, labels),
            "excluded_loss": cross_entropy(excluded[train_idx], labels[train_idx])}


def emergence(steps, top_share, restricted_loss) -> int:
    """First step meeting both emergence thresholds; -1 if none does. The logit reading
    has no share threshold: pass ``top_share=None``."""
    shares = [1.0] * len(steps) if top_share is None else top_share
    for s, t, r in zip(steps, shares, restricted_loss):
        if t >= EMERGE_TOP_SHARE and r <= EMERGE_RESTRICTED_LOSS:
            return int(s)
    return -1


def step_or_never(step) -> str:
    """A step from ``emergence`` (or a summary holding one) for the reader: -1 reads "never", NaN "n/a"."""
    step = float(step)
    return "n/a" if math.isnan(step) else "never" if step < 0 else str(int(step))
