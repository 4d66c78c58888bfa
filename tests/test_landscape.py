"""Interpolation, barrier and sharpness against exact answers."""

import numpy as np
import pytest
import torch

from mechgrok import landscape as LS
from mechgrok import runstore
from mechgrok.analyze import RunView
from mechgrok.config import make_config
from mechgrok.model import build_model, last_logits, named_parameters, per_example_loss


def test_barrier_of_a_closed_form_curve():
    t = np.linspace(-0.2, 1.2, 43)  # contains 0, 0.5 and 1
    assert 0.5 in np.round(t, 12)
    loss = 1.0 + 4 * t * (1 - t) + 0.3 * t  # ends 1.0 and 1.3, maximum 2.155625 at t = 0.5375
    # the grid maximum inside [0, 1]
    inside = (t >= 0) & (t <= 1)
    assert LS.barrier(t, loss) == pytest.approx(loss[inside].max() - 1.15)
    t_fine = np.linspace(0, 1, 801)  # 0.5375 is on this grid: the barrier is exact there
    assert LS.barrier(t_fine, 1.0 + 4 * t_fine * (1 - t_fine) + 0.3 * t_fine) == pytest.approx(2.155625 - 1.15)
    # a straight line: the stated definition gives half the drop; over the chord there is no barrier
    assert LS.barrier(t, 5 - 2 * t) == pytest.approx(1.0)
    assert LS.chord_barrier(t, 5 - 2 * t) == pytest.approx(0.0, abs=1e-12)
    assert LS.chord_barrier(t_fine, 1.0 + 4 * t_fine * (1 - t_fine) + 0.3 * t_fine) == pytest.approx(1.0)


def test_interpolation_ends_reproduce_the_stored_losses(arm_runs):
    view = RunView(arm_runs["dream"])
    metrics = runstore.read_table(view.path, "metrics")
    a, b = view.weights("0000000_end"), view.weights("0000300_end")
    curves = LS.interpolate(view.model, a, b, view.data(), grid=[0.0, 0.5, 1.0])
    i300 = list(metrics["step"]).index(300)
    for name in ("train", "test"):
        assert curves[f"{name}_loss"][0] == pytest.approx(metrics[f"{name}_loss"][0], rel=1e-6)
        assert curves[f"{name}_loss"][2] == pytest.approx(metrics[f"{name}_loss"][i300], rel=1e-6)
        assert curves[f"{name}_acc"][2] == metrics[f"{name}_acc"][i300]
    # the same point twice: a flat line, zero barrier
    flat = LS.interpolate(view.model, b, b, view.data(), grid=[0.0, 0.5, 1.0])
    assert np.ptp(flat["train_loss"]) < 1e-6 and abs(LS.barrier([0, 0.5, 1], flat["train_loss"])) < 1e-6


def test_power_iteration_matches_the_full_hessian():
    cfg = make_config("hard", "baseline", 0, p=5, train_end=2, n_layers=1, d_model=4, n_heads=1, d_head=4, d_mlp=8,
                      dream_k=2)
    model = build_model(cfg)
    params = named_parameters(model)
    x = torch.tensor([[a, b, 5] for a in range(5) for b in range(5)])
    y = (x[:, 0] + x[:, 1]) % 5
    plist = list(params.values())
    # the full Hessian, one row per parameter coordinate (second derivatives of each gradient entry)
    loss = per_example_loss(model(x)[:, -1], y).mean()
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, plist, create_graph=True)])
    rows = [torch.cat([h.reshape(-1) for h in torch.autograd.grad(grad[i], plist, retain_graph=True)])
            for i in range(len(grad))]
    H = torch.stack(rows).double()
    eig = torch.linalg.eigvalsh((H + H.T) / 2)
    top = float(eig[torch.argmax(eig.abs())])
    got = LS.top_hessian_eigenvalue(model, x, y, iters=500, tol=1e-7)
    assert got == pytest.approx(top, rel=2e-3)
    # the fast path used by the power iteration is the model's own forward
    torch.testing.assert_close(last_logits(model, x, fast=True), model(x)[:, -1], rtol=1e-5, atol=1e-6)
