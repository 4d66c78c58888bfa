"""Modular addition: sequences ``[a, b, =]`` labelled ``(a + b) mod p``.

A pair (a, b) is identified by its *pair index* ``a * p + b`` (0 .. p*p - 1);
run files store splits and replayed examples as pair indices.

Splits (``RunConfig.split``):

- ``operand``: train = pairs with ``a < train_end`` (all b). The only reading
  that gives the manuscript's coverages (hard: 16 * 97 / 9409 = 16.5%).
- ``both-operands``: train = pairs with ``a < train_end`` and ``b < train_end``.
- ``random``: a seeded random subset of ``round(train_fraction * p * p)`` pairs.

Test is every pair not in train.
"""

from __future__ import annotations

import numpy as np

from .config import RunConfig


def split_indices(cfg: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """Sorted pair indices of the training and test sets (int64)."""
    p = cfg.p
    a, b = np.divmod(np.arange(p * p, dtype=np.int64), p)
    if cfg.split == "operand":
        is_train = a < cfg.train_end
    elif cfg.split == "both-operands":
        is_train = (a < cfg.train_end) & (b < cfg.train_end)
    else:
        rng = np.random.default_rng(cfg.effective_split_seed)
        chosen = rng.permutation(p * p)[: cfg.n_train]
        is_train = np.zeros(p * p, dtype=bool)
        is_train[chosen] = True
    idx = np.arange(p * p, dtype=np.int64)
    return idx[is_train], idx[~is_train]


def encode(pair_idx: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences ``[a, b, p]`` (shape n x 3) and labels ``(a + b) mod p``."""
    a, b = np.divmod(np.asarray(pair_idx, dtype=np.int64), p)
    tokens = np.stack([a, b, np.full_like(a, p)], axis=1)
    return tokens, (a + b) % p
