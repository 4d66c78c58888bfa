"""Linear probes on the residual stream (scikit-learn).

For activations X (one row per input pair) and a target, a probe is fitted on a
random 80% of the pairs and scored on the other 20% (``split_seed`` fixed, so
scores are comparable across checkpoints):

- categorical targets (a, b, (a + b) mod p): ``RidgeClassifier`` (one-vs-rest
  least squares, closed form, so a checkpoint's probes cost well under a second);
  score = held-out accuracy, chance = 1/p;
- continuous targets (cos and sin of 2 pi k (a + b) / p for key frequencies k):
  ``Ridge``; score = held-out R^2 (0 for a probe no better than the mean).

Features are standardised on the fitting part. Linear decodability is what is
measured: a feature can be present non-linearly and still score low.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HOLDOUT = 0.2
ALPHA = 1.0


def _split(n: int, seed: int):
    return train_test_split(np.arange(n), test_size=HOLDOUT, random_state=seed)


def probe_accuracy(X: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Held-out accuracy of a linear classifier of ``labels`` from ``X``."""
    fit, held = _split(len(X), seed)
    clf = make_pipeline(StandardScaler(), RidgeClassifier(alpha=ALPHA)).fit(X[fit], labels[fit])
    return float(clf.score(X[held], labels[held]))


def probe_r2(X: np.ndarray, target: np.ndarray, seed: int = 0) -> float:
    """Held-out R^2 of a linear regression of ``target`` from ``X``."""
    fit, held = _split(len(X), seed)
    reg = make_pipeline(StandardScaler(), Ridge(alpha=ALPHA)).fit(X[fit], target[fit])
    return float(reg.score(X[held], target[held]))


def targets(p: int, keys) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Categorical and continuous probe targets over all p*p pairs (order a*p + b)."""
    a, b = np.divmod(np.arange(p * p), p)
    cats = {"a": a, "b": b, "sum": (a + b) % p}
    conts = {}
    for k in keys:
        w = 2 * math.pi * int(k) * (a + b) / p
        conts[f"cos{int(k)}"] = np.cos(w)
        conts[f"sin{int(k)}"] = np.sin(w)
    return cats, conts


def probe_all(X: np.ndarray, p: int, keys, seed: int = 0) -> dict[str, float]:
    """Every probe of :func:`targets` on activations ``X`` (p*p rows)."""
    cats, conts = targets(p, keys)
    out = {f"acc_{name}": probe_accuracy(X, y, seed) for name, y in cats.items()}
    out.update({f"r2_{name}": probe_r2(X, y, seed) for name, y in conts.items()})
    return out
