import dataclasses

import pytest

from mechgrok.config import REGIMES, RunConfig, from_json, make_config, preset
from mechgrok.errors import ConfigError


def test_presets_are_the_papers_values():
    assert {r: (v["train_end"], v["lr"], v["weight_decay"], v["steps"]) for r, v in REGIMES.items()} == {
        "easy": (76, 1e-3, 0.05, 15_000), "medium": (48, 1e-3, 0.05, 15_000), "hard": (16, 5e-4, 0.15, 30_000)}
    hard = make_config("hard", "dream", 42)
    assert (hard.p, hard.n_layers, hard.d_model, hard.n_heads, hard.eval_every) == (97, 2, 128, 4, 200)
    assert (hard.dream_every, hard.dream_k, hard.dream_steps, hard.grok_threshold) == (400, 100, 2, 0.95)
    assert hard.batch_size is None and hard.split == "operand"


def test_operand_split_gives_the_papers_coverage():
    cov = {r: make_config(r).n_train / 97 ** 2 for r in REGIMES}
    assert cov["hard"] == pytest.approx(16 * 97 / 9409)
    assert round(cov["hard"], 3) == 0.165 and round(cov["medium"], 2) == 0.49 and round(cov["easy"], 2) == 0.78
    assert make_config("hard", split="both-operands").n_train == 256
    assert make_config("hard", split="random").n_train == round(16 / 97 * 9409)


@pytest.mark.parametrize("overrides, fragment", [
    (dict(arm="dreams"), "unknown arm"),
    (dict(train_end=0), "train_end must be in 1..p-1"),
    (dict(train_end=97), "train_end must be in 1..p-1"),
    (dict(dream_k=1553), "exceeds the training set"),
    (dict(steps=0), "steps must be positive"),
    (dict(dream_steps=-1), "dream_steps must be positive"),
    (dict(eval_every=0), "eval_every must be positive"),
    (dict(split="diagonal"), "unknown split"),
    (dict(split="random", train_fraction=1.0), "train_fraction"),
    (dict(train_fraction=0.5), "random split only"),
    (dict(batch_size=0), "batch_size"),
    (dict(lr=0.0), "lr must be positive"),
    (dict(lr=float("nan")), "finite"),
    (dict(dream_start=800, dream_stop=400), "dream_stop"),
    (dict(d_model=100), "must equal n_heads"),
    (dict(dream_selection="best"), "dream_selection"),
    (dict(steps=1.5), "integer"),
])
def test_invalid_configs_are_refused(overrides, fragment):
    arm = overrides.pop("arm", "dream")
    with pytest.raises(ConfigError, match=fragment):
        make_config("hard", arm, 0, **overrides)


def test_unknown_regime_and_field():
    with pytest.raises(ConfigError, match="unknown regime"):
        make_config("extreme")
    with pytest.raises(ConfigError, match="unknown config field"):
        make_config("hard", learning_rate=1.0)


def test_json_round_trip_and_hash():
    cfg = make_config("medium", "control", 7, batch_size=512, dream_stop=4000)
    back = from_json(cfg.to_json())
    assert back == cfg and back.config_hash() == cfg.config_hash()
    assert make_config("medium", "control", 8).config_hash() != make_config("medium", "control", 7).config_hash()


def test_variant_names_every_changed_setting():
    assert make_config("hard", "dream", 3).variant() == "hard"
    assert make_config("hard", "dream", 3, split="random", batch_size=512).variant() == \
        "hard@split=random,batch_size=512"
    # and the name gives the config back (the report rebuilds a reading's split from it)
    from mechgrok.config import config_of_variant

    for kw in ({}, {"split": "random", "batch_size": 512}, {"train_fraction": 0.3, "lr": 1e-3, "split": "random"},
               {"dream_selection": "sampled", "dream_alpha": 2.0, "p": 13, "train_end": 6, "dream_k": 20}):
        cfg = make_config("easy", "control", 7, **kw)
        assert config_of_variant(cfg.variant(), arm="control", seed=7) == cfg


def test_event_schedule_and_numbering():
    cfg = make_config("hard", dream_start=1000, dream_stop=2401)
    events = [s for s in range(1, 4001) if cfg.is_event_step(s)]
    assert events == [1200, 1600, 2000, 2400]
    assert [cfg.event_number(s) for s in events] == [1, 2, 3, 4]
    assert cfg.event_number(1199) == 0 and cfg.event_number(3000) == 4
    full = make_config("hard")
    assert sum(full.is_event_step(s) for s in range(1, 30_001)) == 75
    assert all(full.event_number(s) == s // 400 for s in range(0, 30_001, 137))


def test_event_checkpoint_thinning_rule():
    cfg = make_config("hard")
    kept = [n for n in range(1, 76) if cfg.keeps_event_checkpoint(n)]
    assert kept[:20] == list(range(1, 21)) and kept[20:] == list(range(24, 76, 4))
    every = dataclasses.replace(cfg, event_checkpoints_first=None)
    assert all(every.keeps_event_checkpoint(n) for n in range(1, 76))


def test_preset_is_frozen():
    cfg = preset("easy")
    assert isinstance(cfg, RunConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0
