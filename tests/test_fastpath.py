"""The last-position training forward equals the full TransformerLens forward."""

import numpy as np
import torch
import torch.nn.functional as F

from conftest import tiny
from mechgrok import fastpath, runstore
from mechgrok.config import make_config
from mechgrok.data import encode, split_indices
from mechgrok.model import build_model, last_logits, load_weights


def _logits_and_grads(model, x, y, fast):
    model.zero_grad(set_to_none=True)
    logits = last_logits(model, x, fast)
    F.cross_entropy(logits, y).backward()
    return logits.detach(), {n: p.grad.clone() for n, p in fastpath.parameter_table(model).items()}


def _check_equal(model, x, y):
    full_logits, full_grads = _logits_and_grads(model, x, y, fast=False)
    fast_logits, fast_grads = _logits_and_grads(model, x, y, fast=True)
    torch.testing.assert_close(fast_logits, full_logits, rtol=1e-5, atol=1e-6)
    scale = max(g.abs().max() for g in full_grads.values())
    for name in full_grads:  # float32 tolerance relative to the largest gradient
        torch.testing.assert_close(fast_grads[name], full_grads[name], rtol=1e-4, atol=1e-6 * scale, msg=name)


def test_paper_sized_model_at_initialisation():
    cfg = make_config("hard", seed=5)
    model = build_model(cfg)
    assert fastpath.supports(model)
    train_idx, test_idx = split_indices(cfg)
    x, y = (torch.as_tensor(t) for t in encode(train_idx, cfg.p))
    _check_equal(model, x, y)


def test_trained_checkpoints_of_every_arm(arm_runs):
    for arm, path in arm_runs.items():
        cfg = runstore.read_config(path)
        model = build_model(cfg)
        train_idx = runstore.read_table(path, "split")["train_idx"]
        x, y = (torch.as_tensor(t) for t in encode(train_idx, cfg.p))
        for ckpt in ("0000200_before", "0000300_end"):
            load_weights(model, runstore.read_checkpoint(path, ckpt))
            _check_equal(model, x, y)
            _check_equal(model, x[:20], y[:20])  # a replay-sized batch


def test_one_adamw_step_lands_on_the_same_weights(arm_runs):
    """Whole runs drift apart (AdamW turns float32 rounding in near-zero gradients, such as
    the mathematically zero key-bias gradient, into lr-sized steps), so equality is per step."""
    path = arm_runs["dream"]
    cfg = runstore.read_config(path)
    train_idx = runstore.read_table(path, "split")["train_idx"]
    x, y = (torch.as_tensor(t) for t in encode(train_idx, cfg.p))
    after = {}
    for fast in (False, True):
        model = build_model(cfg)
        load_weights(model, runstore.read_checkpoint(path, "0000200_end"))
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        F.cross_entropy(last_logits(model, x, fast), y).backward()
        opt.step()
        after[fast] = {n: p.detach().clone() for n, p in fastpath.parameter_table(model).items()}
    for name in after[False]:
        torch.testing.assert_close(after[True][name], after[False][name], rtol=0, atol=2e-3 * cfg.lr, msg=name)


def test_layer_norm_models_use_the_full_forward():
    model = build_model(tiny(normalization="LN"))
    assert not fastpath.supports(model)
    x = torch.as_tensor(encode(np.arange(10), 13)[0])
    assert torch.equal(last_logits(model, x, fast=True), model(x)[:, -1])


def test_gradients_are_the_same_on_every_pass_on_two_threads():
    # the token embedding's gradient once came from the backward of an index, which on the CPU adds rows
    # with atomic adds across threads: on two threads repeated passes gave different sums
    cfg = make_config("hard", seed=5)
    model = build_model(cfg)
    train_idx, _ = split_indices(cfg)
    x, y = (torch.as_tensor(t) for t in encode(train_idx, cfg.p))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _, first = _logits_and_grads(model, x, y, fast=True)
        for _ in range(30):
            _, again = _logits_and_grads(model, x, y, fast=True)
            assert all(torch.equal(again[name], first[name]) for name in first)
    finally:
        torch.set_num_threads(threads)
