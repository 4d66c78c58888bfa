"""The loss landscape between checkpoints: linear interpolation, barriers, sharpness.

- :func:`interpolate`: loss and accuracy (train and test, full sets) of the model at
  theta(t) = (1 - t) theta_A + t theta_B for t on a grid (default 41 points on
  [-0.2, 1.2], so slightly beyond both ends).
- :func:`barrier`: max over the grid points with 0 <= t <= 1 of L(theta(t)) minus
  (L(theta_A) + L(theta_B)) / 2. It is measured on the grid, so it is a lower
  bound of the barrier of the continuous path (exact when the maximum falls on a
  grid point, e.g. at an end or in the middle).
  A monotone path has a positive barrier by this definition (half the drop), so
  :func:`chord_barrier` also gives max_t [L(t) - ((1 - t) L(0) + t L(1))], the
  excess over the straight chord between the ends (0 for a linear path).
- :func:`top_hessian_eigenvalue`: sharpness, the largest-magnitude eigenvalue of the
  Hessian of the training loss, by power iteration on Hessian-vector products
  (double backward). Power iteration finds the eigenvalue of largest magnitude;
  near a minimum that is the largest positive one.

The forward is the model's own (the last-position path of mechgrok.fastpath where
the architecture allows, which equals the TransformerLens forward); all pairs go
through in batches, one pass per grid point.
"""

from __future__ import annotations

import numpy as np
import torch

from .model import last_logits, load_weights, named_parameters, per_example_loss

DEFAULT_GRID = np.linspace(-0.2, 1.2, 41)


def mix(a: dict[str, np.ndarray], b: dict[str, np.ndarray], t: float) -> dict[str, np.ndarray]:
    """Weights (1 - t) a + t b (float64 arithmetic, stored as float32)."""
    return {k: ((1 - t) * np.asarray(a[k], np.float64) + t * np.asarray(b[k], np.float64)).astype(np.float32)
            for k in a}


@torch.no_grad()
def loss_and_accuracy(model, x: torch.Tensor, y: torch.Tensor, batch: int = 16384) -> tuple[float, float]:
    total, correct = 0.0, 0
    for i in range(0, len(x), batch):
        logits = last_logits(model, x[i:i + batch], fast=True).double()
        total += float(per_example_loss(logits, y[i:i + batch]).sum())
        correct += int((logits.argmax(-1) == y[i:i + batch]).sum())
    return total / len(x), correct / len(x)


def interpolate(model, a: dict, b: dict, data: dict[str, tuple], grid=DEFAULT_GRID) -> dict[str, np.ndarray]:
    """For each set name in ``data`` ({name: (x, y)}): ``<name>_loss`` and ``<name>_acc`` along the grid."""
    out = {"t": np.asarray(grid, float)}
    for name in data:
        out[f"{name}_loss"] = np.empty(len(grid))
        out[f"{name}_acc"] = np.empty(len(grid))
    for i, t in enumerate(grid):
        load_weights(model, mix(a, b, float(t)))
        for name, (x, y) in data.items():
            out[f"{name}_loss"][i], out[f"{name}_acc"][i] = loss_and_accuracy(model, x, y)
    return out


def barrier(t: np.ndarray, loss: np.ndarray) -> float:
    """max_{0<=t<=1} L(t) - (L(0) + L(1)) / 2 on the grid (both ends must be grid points)."""
    t, loss = np.asarray(t, float), np.asarray(loss, float)
    inside = (t >= -1e-9) & (t <= 1 + 1e-9)
    l0 = loss[np.argmin(np.abs(t))]
    l1 = loss[np.argmin(np.abs(t - 1))]
    return float(loss[inside].max() - (l0 + l1) / 2)


def chord_barrier(t: np.ndarray, loss: np.ndarray) -> float:
    """max_{0<=t<=1} L(t) - ((1 - t) L(0) + t L(1)) on the grid."""
    t, loss = np.asarray(t, float), np.asarray(loss, float)
    inside = (t >= -1e-9) & (t <= 1 + 1e-9)
    l0 = loss[np.argmin(np.abs(t))]
    l1 = loss[np.argmin(np.abs(t - 1))]
    return float(np.max(loss[inside] - ((1 - t[inside]) * l0 + t[inside] * l1)))


def top_hessian_eigenvalue(model, x: torch.Tensor, y: torch.Tensor, iters: int = 50, tol: float = 1e-4,
                           seed: int = 0) -> float:
    """Largest-magnitude Hessian eigenvalue of the mean training loss at the model's weights."""
    params = list(named_parameters(model).values())
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen).to(p) for p in params]
    norm = torch.sqrt(sum((u ** 2).sum() for u in v))
    v = [u / norm for u in v]
    loss = per_example_loss(last_logits(model, x, fast=True), y).mean()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    eig = 0.0
    for _ in range(iters):
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
        new = float(sum((h * u).sum() for h, u in zip(hv, v)))  # Rayleigh quotient
        norm = torch.sqrt(sum((h ** 2).sum() for h in hv))
        if float(norm) == 0:
            return 0.0
        v = [h / norm for h in hv]
        if abs(new - eig) <= tol * max(abs(new), 1e-12):
            return new
        eig = new
    return eig
