"""Replay: the episodic surprise memory and the choice of examples to replay.

The memory holds, for every training example, its latest *surprise* (the
cross-entropy of that example) and whether the model got it wrong
(``failed``: argmax of the logits differs from the label). It is filled by the
training forward passes themselves, regular and extra steps alike, so it costs
no extra compute. With a full batch every example is refreshed at every step
(with the weights before that step's update); with mini-batches an example
keeps the value from the last batch it was in. An example never seen yet
counts as a failure with surprise ``ln p`` (the loss of a uniform guess).

Selection:

- ``dream`` (:func:`select_failures`): failures first, then, if fewer than k
  examples are failing, the most surprising of the rest.
  ``topk`` (the default) takes the k highest surprises in that order: it is the
  literal reading of the manuscript's "top-k = 100 failures", and it makes the
  selection a pure function of the memory. ``sampled`` draws without
  replacement with probability proportional to ``surprise ** alpha``, again
  failures first.
- ``control`` (:func:`select_uniform`): k training examples uniformly at
  random, without replacement.
"""

from __future__ import annotations

import math

import torch


class SurpriseMemory:
    """Per-example surprise and failure flags over the training set (CPU tensors)."""

    def __init__(self, n: int, p: int):
        self.surprise = torch.full((n,), math.log(p), dtype=torch.float32)
        self.failed = torch.ones(n, dtype=torch.bool)
        self.seen_step = torch.full((n,), -1, dtype=torch.int64)

    def update(self, positions: torch.Tensor, losses: torch.Tensor, failed: torch.Tensor, step: int) -> None:
        positions = positions.cpu()
        self.surprise[positions] = losses.detach().float().cpu()
        self.failed[positions] = failed.cpu()
        self.seen_step[positions] = step

    def state(self) -> dict[str, torch.Tensor]:
        return {"surprise": self.surprise, "failed": self.failed, "seen_step": self.seen_step}

    def load_state(self, state: dict) -> None:
        self.surprise = torch.as_tensor(state["surprise"]).float().clone()
        self.failed = torch.as_tensor(state["failed"]).bool().clone()
        self.seen_step = torch.as_tensor(state["seen_step"]).long().clone()


def select_failures(
    memory: SurpriseMemory, k: int, mode: str = "topk", alpha: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Positions (into the training set) of the k examples a dream replays."""
    chosen = []
    for pool in (memory.failed.nonzero().flatten(), (~memory.failed).nonzero().flatten()):
        need = k - sum(len(c) for c in chosen)
        if need <= 0 or len(pool) == 0:
            continue
        s = memory.surprise[pool]
        if mode == "topk" or need >= len(pool):
            order = torch.sort(s, descending=True, stable=True).indices
            chosen.append(pool[order[:need]])
        else:
            w = s.double().clamp_min(0) ** alpha
            w = torch.where(torch.isfinite(w), w, torch.zeros_like(w)).clamp_min(1e-300)
            chosen.append(pool[torch.multinomial(w, need, replacement=False, generator=generator)])
    return torch.cat(chosen)


def select_uniform(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """k distinct positions drawn uniformly from range(n)."""
    return torch.randperm(n, generator=generator)[:k]
