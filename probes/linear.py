"""Linear probes on the residual stream (scikit-learn).

For activations X (one row per input pair) and a target, a probe is fitted on a
random 80% of the pairs and scored on the other 20% (``split_seed`` fixed, so
scores are comparable across checkpoints):

- categorical targets (a, b, (a + b) mod p): linear discriminant analysis
  (``LinearDiscriminantAnalysis``: class means and one shared covariance, closed form,
  about a second per probe at p = 97); score = held-out accuracy, chance = 1/p. Its
  decision rule is linear; it is the optimal one if each class is Gaussian with a
  common covariance, and a linear rule either way. Not a one-vs-rest least-squares
  classifier: with many classes coded on a circle, as a grokked model codes
  (a + b) mod p by cos/sin of a few frequencies, least squares misses classes a
  linear rule separates exactly (planted at p = 97: 0.30 vs 1.0; on a grokked
  calibration model whose own unembedding gets every pair right: 0.35 vs 1.0);
- continuous targets (cos and sin of 2 pi k (a + b) / p for key frequencies k):
  ``Ridge``; score = held-out R^2 (0 for a probe no better than the mean).

Features are standardised on the fitting part. Linear decodability is what is
measured: a feature can be present non-linearly and still score low.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import Ridge
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
    with warnings.catch_warnings():  # collinear features (e.g. at initialisation) are handled by the SVD solver
        warnings.filterwarnings("ignore", message="Variables are collinear")
        clf = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()).fit(X[fit], labels[fit])
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
