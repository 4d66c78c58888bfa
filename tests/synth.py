"""Synthetic run files whose answer is known, written without training (shared by the tests of
the audit, the report, the figures and the sweep)."""

import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np

from mechgrok import audit, runstore
from mechgrok.config import make_config
from mechgrok.data import split_indices
from mechgrok.results import collect


EVAL = 200


_SYNTH_CACHE = tempfile.TemporaryDirectory(prefix="mechgrok-synth-")  # removed when the test process ends


def synth_run(path, arm, seed, grok_step, budget=30_000, regime="hard", **overrides):
    """A finished run file with the given time-to-grok (None = never), written without training:
    accuracy curves step from chance to 0.99 at grok_step; replay events every 400 steps.
    Many tests ask for the same run: it is written once per test process (through RunWriter, each
    table in one write per column) and copied after that; a run file does not hold its own path."""
    key = json.dumps([arm, seed, grok_step, budget, regime, sorted(overrides.items())], default=str)
    cached = Path(_SYNTH_CACHE.name) / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.h5"
    if not cached.exists():
        _write_synth_run(cached, arm, seed, grok_step, budget, regime, **overrides)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, path)
    return path


def _write_synth_run(path, arm, seed, grok_step, budget, regime, **overrides):
    cfg = make_config(regime, arm, seed, steps=budget, **overrides)
    train_idx, test_idx = split_indices(cfg)
    runstore.create(path, cfg, {"device": "synthetic"}, train_idx, test_idx)
    last = budget if grok_step is None else min(budget, grok_step + cfg.stop_after_grok)
    replays = arm in ("dream", "control")
    metrics, events = [], []
    with runstore.RunWriter(path) as w:
        for step in range(0, last + 1, EVAL):
            grokked = grok_step is not None and step >= grok_step
            row = {"step": step, "train_loss": 0.01, "train_acc": 1.0 if step else 0.01,
                   "test_loss": 0.05 if grokked else 5.0, "test_acc": 0.99 if grokked else 0.02,
                   "weight_norm": 50.0, "wall_time_s": step / 10, "fwd_regular": step * 1552, "bwd_regular": step * 1552,
                   "fwd_extra": 0, "bwd_extra": 0, "fwd_eval": 0}
            metrics.append(row)
        k = cfg.dream_k
        for i, step in enumerate(range(400, last + 1, 400)):
            before_test = 0.99 if grok_step is not None and step >= grok_step else 0.02
            events.append({"step": step, "event": i + 1, "extra_steps": 2 if replays else 0, "checkpointed": 0,
                           "train_loss_before": 0.01, "train_loss_after": 0.3 if replays else 0.01,
                           "train_acc_before": 1.0, "train_acc_after": 0.6 if replays else 1.0,
                           "test_loss_before": 5.0, "test_loss_after": 5.0,
                           "test_acc_before": before_test, "test_acc_after": before_test,
                           "memory_surprise_mean": 1.0, "memory_failures": 0,
                           "selected_surprise_mean": 1.5 if arm == "dream" else (1.0 if replays else math.nan),
                           "indices": np.full(k, -1), "loss_before": np.full(k, np.nan),
                           "loss_after": np.full(k, np.nan)})
        w.extend_metrics(metrics)
        w.extend_events(events)
        w.set_attrs(status="complete", last_step=last, grokked=grok_step is not None,
                    grok_step=-1 if grok_step is None else grok_step, time_to_grok=grok_step or last,
                    memorised_step=200, wall_time_s=last / 10, passes_fwd_regular=last * 1552,
                    passes_fwd_extra=len(events) * 2 * k if replays else 0)
    return path


def synth_grid(tmp_path, times: dict, seeds):
    """Run files of each arm for ``seeds``, grokking near ``times[arm]`` (None: never), on the evaluation grid."""
    rng = np.random.default_rng(0)
    for arm, center in times.items():
        for s in seeds:
            t = None if center is None else int(round(center * np.exp(0.05 * rng.standard_normal()) / EVAL) * EVAL)
            synth_run(tmp_path / f"{arm}{s}.h5", arm, s, t)
    return tmp_path


def verdicts_of(path):
    """Every claim's verdict on the run files under ``path``, by id."""
    rows, problems = collect([path])
    assert not problems
    return {v.id: v for v in audit.Audit(rows).all()}

