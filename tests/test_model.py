import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny
from mechgrok.data import encode, split_indices
from mechgrok.model import build_model, evaluate, last_logits, load_weights, named_parameters, weights


def test_model_is_a_seeded_hooked_transformer():
    cfg = tiny(seed=3)
    a, b, c = build_model(cfg), build_model(cfg), build_model(tiny(seed=4))
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert not np.array_equal(wa["embed.weight"], wc["embed.weight"])
    assert wa["embed.weight"].shape == (14, 128) and wa["unembed.weight"].shape == (13, 128)
    tokens = torch.as_tensor(encode(np.arange(5), 13)[0])
    logits, cache = a.run_with_cache(tokens)
    for hook in ("hook_embed", "blocks.0.hook_resid_post", "blocks.1.mlp.hook_post", "blocks.0.attn.hook_pattern"):
        assert hook in cache
    assert cache["blocks.1.mlp.hook_post"].shape == (5, 3, 512)
    assert a.W_E.shape == (14, 128)


def test_named_parameters_cover_every_trainable_tensor():
    model = build_model(tiny())
    named = named_parameters(model)
    assert len(named) == len(list(model.parameters()))
    assert "unembed.bias" not in named  # a fixed zero buffer, not trained
    assert set(named) | {"unembed.bias"} == set(model.state_dict())


def test_weights_round_trip_and_last_position_loss():
    cfg = tiny()
    src, dst = build_model(cfg), build_model(tiny(seed=9))
    load_weights(dst, weights(src))
    train, _ = split_indices(cfg)
    x, y = (torch.as_tensor(t) for t in encode(train, cfg.p))
    assert torch.equal(last_logits(src, x), last_logits(dst, x))
    loss, acc = evaluate(src, x, y, batch=7)  # batched evaluation covers the whole set once
    full = last_logits(src, x).detach()
    # float32 logits differ in the last bits between batch shapes, hence the tolerance
    assert abs(loss - F.cross_entropy(full.double(), y).item()) < 1e-6
    assert acc == (full.argmax(-1) == y).double().mean().item()


def _subnormals(n: int = 1 << 20) -> torch.Tensor:
    """float32 subnormals built from their bits (arithmetic would flush them)."""
    return torch.from_numpy(np.full(n, 1 << 20, dtype=np.int32)).view(torch.float32)


def test_cpu_arithmetic_flushes_subnormals_to_zero_in_every_thread(arm_runs):
    from mechgrok import model

    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no flush-to-zero flag")
    assert model.DENORMALS_FLUSHED and model.flush_denormals()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:  # large enough to be split across the intra-op threads; zero bits = flushed everywhere
        assert int((_subnormals() * 1.0).view(torch.int32).count_nonzero()) == 0
    finally:
        torch.set_num_threads(threads)  # later tests in this process keep their setting
    from mechgrok import runstore
    assert bool(runstore.read_attrs(arm_runs["dream"])["denormals_flushed"])


def test_flush_report_is_measured_not_assumed():
    # a thread pool created before mechgrok is imported keeps its worker threads unflushed,
    # and mechgrok says so
    code = ("import torch; torch.set_num_threads(2); (torch.ones(1 << 22) * 2).sum()\n"
            "from mechgrok import model; print(model.DENORMALS_FLUSHED)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
