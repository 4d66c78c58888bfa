"""Weight norms over training, distance from initialisation, displacement across replay events.

All functions take checkpoints as ``{state_dict key: array}`` (as stored in run files).
Components: ``embed`` (token and position embeddings), ``attention`` (every
``blocks.L.attn.*``), ``mlp`` (every ``blocks.L.mlp.*``), ``unembed`` (``unembed.weight``;
its bias is a fixed zero buffer) and ``other`` (layer norms, if any).

Displacement across a replay event is ||theta_end - theta_before|| at the event's
step (the ``dream_steps`` extra updates). It is compared with an ordinary window:
the displacement over the regular steps since the previous checkpoint, scaled to
the same number of updates *linearly* (``window * extra_steps / window_steps``).
Linear scaling assumes consistent step directions over the window; when steps
partly cancel, it underestimates a single step's size, so the ratio is an upper
bound on how unusual the event's move is.
"""

from __future__ import annotations

import math

import numpy as np

COMPONENTS = ("embed", "attention", "mlp", "unembed", "other")


def component(key: str) -> str:
    if key in ("embed.weight", "pos_embed.weight"):
        return "embed"
    if ".attn." in key:
        return "attention"
    if ".mlp." in key:
        return "mlp"
    if key.startswith("unembed."):
        return "unembed"
    return "other"


def component_norms(weights: dict[str, np.ndarray]) -> dict[str, float]:
    """L2 norm of each component and of everything together (``total``)."""
    sq = dict.fromkeys(COMPONENTS, 0.0)
    for key, value in weights.items():
        sq[component(key)] += float(np.sum(np.asarray(value, np.float64) ** 2))
    out = {c: math.sqrt(v) for c, v in sq.items()}
    out["total"] = math.sqrt(sum(sq.values()))
    return out


def distance(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """||a - b|| over every shared key."""
    return math.sqrt(sum(float(np.sum((np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)) ** 2))
                         for k in a))
