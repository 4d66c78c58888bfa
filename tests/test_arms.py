"""The calibration arms: grokfast (positive control) and the dream timing arms."""

import numpy as np
import pytest
import torch

from conftest import tiny
from mechgrok import runstore
from mechgrok.config import make_config
from mechgrok.errors import ConfigError
from mechgrok.loop import _Run, train
from mechgrok.model import last_logits, per_example_loss
from test_loop import _contents, _same


class _Stop(Exception):
    pass


def _stop_at(step):
    def progress(s, total, row):
        if s == step:
            raise _Stop

    return progress


def test_grokfast_filter_follows_its_definition(tmp_path):
    """Three regular steps of the grokfast arm equal AdamW on hand-filtered gradients."""
    cfg = tiny("grokfast", steps=3, grokfast_alpha=0.9, grokfast_lambda=2.0)
    run = _Run(cfg, tmp_path / "g.h5", torch.device("cpu"))
    ref = _Run(tiny("baseline", steps=3), tmp_path / "b.h5", torch.device("cpu"))
    ref.model.load_state_dict(run.model.state_dict())
    ema = {}
    for _ in range(3):
        run._optimise(None, extra=False)
        # reference: the same step with the filter written out by hand
        loss = per_example_loss(last_logits(ref.model, ref.x_train, True), ref.y_train).mean()
        ref.opt.zero_grad()
        loss.backward()
        with torch.no_grad():
            for name, p in ref.params.items():
                g = p.grad.clone()
                ema[name] = g if name not in ema else 0.9 * ema[name] + 0.1 * g
                p.grad.copy_(g + 2.0 * ema[name])
        ref.opt.step()
    for name, p in run.params.items():
        torch.testing.assert_close(p, ref.params[name], rtol=1e-5, atol=1e-6)


def test_grokfast_differs_from_baseline_and_takes_no_extra_steps(tmp_path):
    train(tiny("grokfast", steps=200), tmp_path / "g.h5")
    train(tiny("baseline", steps=200), tmp_path / "b.h5")
    g, b = runstore.read_table(tmp_path / "g.h5", "metrics"), runstore.read_table(tmp_path / "b.h5", "metrics")
    assert g["train_loss"][0] == b["train_loss"][0]  # same initialisation
    assert not np.allclose(g["train_loss"][1:], b["train_loss"][1:])
    ev = runstore.read_table(tmp_path / "g.h5", "events")
    assert (ev["extra_steps"] == 0).all() and runstore.read_attrs(tmp_path / "g.h5")["passes_fwd_extra"] == 0


def test_grokfast_resume_restores_the_filter_state(tmp_path):
    cfg = tiny("grokfast", steps=400)
    path = tmp_path / "killed.h5"
    with pytest.raises(_Stop):
        train(cfg, path, progress=_stop_at(250))
    assert runstore.read_attrs(path)["status"] == "running"
    train(cfg, path, resume=True)
    train(cfg, tmp_path / "reference.h5")
    assert _same(_contents(path), _contents(tmp_path / "reference.h5"))


@pytest.mark.parametrize("arm", ["dream-early", "dream-plateau"])
def test_timing_arms_replay_only_in_their_window(tmp_path, arm):
    path = tmp_path / f"{arm}.h5"
    train(tiny(arm, steps=600, dream_every=50, eval_every=50), path)
    attrs = runstore.read_attrs(path)
    memorised = attrs["memorised_step"]
    assert memorised > 0, "the tiny config memorises within 600 steps"
    ev = runstore.read_table(path, "events")
    # the window is decided from the evaluations before the event's step
    replayed = ev["extra_steps"] > 0
    before = ev["step"] <= memorised
    expected = before if arm == "dream-early" else ~before
    assert (replayed == expected).all(), (ev["step"], ev["extra_steps"], memorised)
    assert replayed.any() and (~replayed).any()


def test_new_arm_settings_are_validated():
    with pytest.raises(ConfigError, match="grokfast_alpha"):
        make_config("hard", "grokfast", grokfast_alpha=1.0)
    with pytest.raises(ConfigError, match="unknown arm"):
        make_config("hard", "dreamy")
