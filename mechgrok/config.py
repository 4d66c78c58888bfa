"""Run configuration: one frozen dataclass, with the paper's settings as presets.

Every choice that changes what is trained is a field here and is stored, as
JSON, in the run file. Fields the manuscript states take its values; fields it
leaves open carry a default that is marked ``open`` in ``OPEN_CHOICES`` below,
so reports can list them.

This module imports neither torch nor TransformerLens: the command line checks
a configuration before it pays for those imports.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Optional

from .errors import ConfigError

ARMS = ("baseline", "dream", "control", "grokfast", "dream-early", "dream-plateau")
# Arms that replay failures chosen from the surprise memory, and the window in which each replays:
# "all" events, only events before the model has memorised the training set (train accuracy >=
# memorised_threshold at an evaluation), or only events from then on (the plateau).
TARGETED_ARMS = {"dream": "all", "dream-early": "before-memorised", "dream-plateau": "after-memorised"}
# Arms that take extra optimiser steps at replay events (control replays uniformly random examples).
REPLAY_ARMS = (*TARGETED_ARMS, "control")
SPLITS = ("operand", "both-operands", "random")
DREAM_SELECTIONS = ("topk", "sampled")
NORMALIZATIONS = (None, "LN")

# The manuscript's regimes (section 2): train_end, optimiser and budget.
REGIMES = {
    "easy": dict(train_end=76, lr=1e-3, weight_decay=0.05, steps=15_000),
    "medium": dict(train_end=48, lr=1e-3, weight_decay=0.05, steps=15_000),
    "hard": dict(train_end=16, lr=5e-4, weight_decay=0.15, steps=30_000),
}

# Choices the manuscript leaves open, with the reason for our default.
OPEN_CHOICES = {
    "split": "'train = pairs with a < train_end' is the only reading that gives the stated coverages",
    "batch_size": "not stated; full batch (None) is the default",
    "beta1": "not stated; PyTorch's AdamW default 0.9",
    "beta2": "not stated; PyTorch's AdamW default 0.999",
    "eps": "not stated; PyTorch's AdamW default 1e-8",
    "d_mlp": "not stated; 4 * d_model",
    "normalization": "not stated; none (TransformerLens normalization_type=None)",
    "act_fn": "not stated; relu",
    "dream_steps": "stated as '1-2'; 2",
    "dream_selection": "'top-k ... surprise-weighted' is ambiguous; deterministic top-k is the default",
    "surprise": "not stated; per-example cross-entropy from the training forward pass",
    "replay_optimizer": "not stated; consolidation steps use the same AdamW and its state",
    "weight_decay_scope": "not stated; AdamW decays every parameter",
    "token_layout": "not stated; [a, b, =] with '=' as token p, prediction at the last position",
    "dream_timing": "'during a plateau, not early' is not defined; dream-early replays only before the first "
                    "evaluation with train acc >= memorised_threshold, dream-plateau only from then on",
    "grokfast": "positive control, Lee et al. 2024 Grokfast-EMA on regular steps: g <- g + lambda * EMA_alpha(g)",
}

# Fields whose values the manuscript states ("Setup as stated" in claims.md). A reading may change
# the open choices above and the step budget (a screen); a run that changes a stated field is not a
# reading of the paper but a calibration of the instrument, and enters no verdict.
STATED_FIELDS = ("p", "train_end", "train_fraction", "lr", "weight_decay", "n_layers", "d_model", "n_heads",
                 "eval_every", "grok_threshold", "dream_every", "dream_k")


def reading_settings(reading: str) -> dict[str, str]:
    """The settings a reading (a variant suffix such as 'split=random,lr=0.001') changes, as
    field name -> value text, in the reading's order."""
    return dict(item.partition("=")[::2] for item in reading.split(",") if item)


def config_of_variant(variant: str, **fields) -> RunConfig:
    """The config a variant name describes (``RunConfig.variant``: regime, then the changed
    settings), with ``fields`` (arm, seed, ...) applied; ConfigError if it names no valid run."""
    regime, _, reading = variant.partition("@")
    values = {}
    for name, text in reading_settings(reading).items():
        try:
            values[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            values[name] = text  # a plain word, e.g. split=random
    return make_config(regime, **{**values, **fields})


def stated_changes(reading: str) -> list[str]:
    """The stated fields a reading changes."""
    return [n for n in reading_settings(reading) if n in STATED_FIELDS]


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run. Construct with :func:`make_config`."""

    regime: str = "hard"
    arm: str = "baseline"
    seed: int = 42
    # task and split
    p: int = 97
    train_end: int = 16
    split: str = "operand"
    train_fraction: Optional[float] = None  # random split only; None -> train_end / p
    split_seed: Optional[int] = None  # random split only; None -> seed
    # optimiser
    lr: float = 5e-4
    weight_decay: float = 0.15
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    steps: int = 30_000
    batch_size: Optional[int] = None  # None = full batch
    # model
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    act_fn: str = "relu"
    normalization: Optional[str] = None
    # training and evaluation forward: last position only (mechgrok/fastpath.py) where the
    # architecture allows (no layer norm); False = the full TransformerLens forward
    fast_forward: bool = True
    # evaluation and stopping
    eval_every: int = 200
    grok_threshold: float = 0.95
    memorised_threshold: float = 0.99
    stop_after_grok: int = 2000  # 0 disables early stopping
    # checkpoints
    checkpoint_every: int = 1000
    event_checkpoints_first: Optional[int] = 20  # None keeps every event's checkpoints
    event_checkpoints_then_every: int = 4
    # replay (the schedule applies to every arm, so arms align step for step)
    dream_every: int = 400
    dream_k: int = 100
    dream_steps: int = 2
    dream_selection: str = "topk"
    dream_alpha: float = 1.0
    dream_start: int = 0
    dream_stop: Optional[int] = None
    replay_optimizer: str = "shared"
    # grokfast arm (Lee et al. 2024, "Grokfast"): EMA gradient filter of the regular steps
    grokfast_alpha: float = 0.98
    grokfast_lambda: float = 2.0

    # ---- derived quantities -------------------------------------------------
    @property
    def vocab(self) -> int:
        """Tokens 0..p-1 are numbers, token p is '='."""
        return self.p + 1

    @property
    def effective_train_fraction(self) -> float:
        return self.train_fraction if self.train_fraction is not None else self.train_end / self.p

    @property
    def effective_split_seed(self) -> int:
        return self.split_seed if self.split_seed is not None else self.seed

    @property
    def n_train(self) -> int:
        p, e = self.p, self.train_end
        if self.split == "operand":
            return e * p
        if self.split == "both-operands":
            return e * e
        return int(round(self.effective_train_fraction * p * p))

    @property
    def n_test(self) -> int:
        return self.p * self.p - self.n_train

    def is_event_step(self, step: int) -> bool:
        """Replay events (and the aligned checkpoints of every arm) happen here."""
        return (
            step > 0
            and step % self.dream_every == 0
            and step >= self.dream_start
            and (self.dream_stop is None or step < self.dream_stop)
        )

    @property
    def first_event_step(self) -> int:
        """The step of the first replay event: no replay acts on the model before it."""
        return max(self.dream_every, -(-self.dream_start // self.dream_every) * self.dream_every)

    def event_number(self, step: int) -> int:
        """1-based index of the event at ``step`` (0 if none at or before it)."""
        first = self.first_event_step
        last = step if self.dream_stop is None else min(step, self.dream_stop - 1)
        return 0 if last < first else (last - first) // self.dream_every + 1

    def replays_at_event(self, memorised: bool) -> bool:
        """Whether this arm takes extra steps at a replay event, given whether the
        run has memorised its training set by then."""
        window = TARGETED_ARMS.get(self.arm, "all" if self.arm == "control" else None)
        return window == "all" or (window == "before-memorised" and not memorised) or \
            (window == "after-memorised" and memorised)

    def keeps_event_checkpoint(self, number: int) -> bool:
        """Thinning rule: every one of the first N events, then every M-th."""
        first = self.event_checkpoints_first
        if first is None or number <= first:
            return True
        return (number - first) % self.event_checkpoints_then_every == 0

    # ---- serialisation ------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def config_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def variant(self) -> str:
        """Name of the regime reading: the regime, plus every field that differs
        from the preset (arm and seed excluded). Used for default output paths."""
        base = preset(self.regime, arm=self.arm, seed=self.seed)
        diffs = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(base, f.name)
        ]
        return self.regime + ("@" + ",".join(diffs) if diffs else "")


    def reading(self) -> str:
        """The variant without the step budget: runs of one reading with different budgets
        measure one time-to-grok distribution, censored at different steps."""
        return dataclasses.replace(self, steps=preset(self.regime).steps).variant()


def from_json(text: str) -> RunConfig:
    """Rebuild a config stored by :meth:`RunConfig.to_json` (validated)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"stored config is not JSON: {exc}") from None
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"stored config has unknown fields: {', '.join(unknown)}")
    return validate(RunConfig(**data))


def preset(regime: str, arm: str = "baseline", seed: int = 42) -> RunConfig:
    """The paper's settings for a regime, unvalidated."""
    if regime not in REGIMES:
        raise ConfigError(f"unknown regime {regime!r}; choose from {', '.join(REGIMES)}")
    return RunConfig(regime=regime, arm=arm, seed=seed, **REGIMES[regime])


def make_config(regime: str = "hard", arm: str = "baseline", seed: int = 42, **overrides) -> RunConfig:
    """The preset of ``regime`` with ``overrides`` applied, validated.

    Overrides whose value is ``None`` are ignored only for fields whose preset
    value is not ``None``; pass the field explicitly to change it.
    """
    base = preset(regime, arm=arm, seed=seed)
    known = {f.name for f in dataclasses.fields(RunConfig)}
    for name in overrides:
        if name not in known:
            raise ConfigError(f"unknown config field {name!r}")
    return validate(dataclasses.replace(base, **overrides))


def validate(cfg: RunConfig) -> RunConfig:
    """Return ``cfg`` if it describes a possible run; raise ConfigError otherwise."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ConfigError(msg)

    def is_int(x) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    need(cfg.regime in REGIMES, f"unknown regime {cfg.regime!r}; choose from {', '.join(REGIMES)}")
    need(cfg.arm in ARMS, f"unknown arm {cfg.arm!r}; choose from {', '.join(ARMS)}")
    need(cfg.split in SPLITS, f"unknown split {cfg.split!r}; choose from {', '.join(SPLITS)}")
    for name in ("seed", "p", "train_end", "steps", "eval_every", "checkpoint_every",
                 "dream_every", "dream_k", "dream_steps", "dream_start", "stop_after_grok",
                 "n_layers", "d_model", "n_heads", "d_head", "d_mlp", "event_checkpoints_then_every"):
        need(is_int(getattr(cfg, name)), f"{name} must be an integer, got {getattr(cfg, name)!r}")
    need(cfg.seed >= 0, f"seed must be >= 0, got {cfg.seed}")
    need(cfg.p >= 3, f"p must be >= 3, got {cfg.p}")
    need(1 <= cfg.train_end <= cfg.p - 1, f"train_end must be in 1..p-1 = 1..{cfg.p - 1}, got {cfg.train_end}")
    for name in ("steps", "eval_every", "checkpoint_every", "dream_every", "dream_k", "dream_steps",
                 "n_layers", "d_model", "n_heads", "d_head", "d_mlp", "event_checkpoints_then_every"):
        need(getattr(cfg, name) > 0, f"{name} must be positive, got {getattr(cfg, name)}")
    need(cfg.stop_after_grok >= 0, f"stop_after_grok must be >= 0 (0 disables), got {cfg.stop_after_grok}")
    need(cfg.dream_start >= 0, f"dream_start must be >= 0, got {cfg.dream_start}")
    need(cfg.dream_stop is None or (is_int(cfg.dream_stop) and cfg.dream_stop > cfg.dream_start),
         f"dream_stop must be an integer above dream_start={cfg.dream_start}, got {cfg.dream_stop!r}")
    need(cfg.event_checkpoints_first is None or (is_int(cfg.event_checkpoints_first) and cfg.event_checkpoints_first >= 0),
         f"event_checkpoints_first must be None or >= 0, got {cfg.event_checkpoints_first!r}")
    if cfg.split == "random":
        f = cfg.effective_train_fraction
        need(isinstance(f, (int, float)) and 0 < f < 1, f"train_fraction must be in (0, 1), got {f}")
        need(cfg.split_seed is None or (is_int(cfg.split_seed) and cfg.split_seed >= 0),
             f"split_seed must be None or an integer >= 0, got {cfg.split_seed!r}")
    else:
        need(cfg.train_fraction is None, f"train_fraction applies to the random split only (split={cfg.split})")
        need(cfg.split_seed is None, f"split_seed applies to the random split only (split={cfg.split})")
    need(cfg.n_train >= 1 and cfg.n_test >= 1,
         f"impossible split: {cfg.n_train} training and {cfg.n_test} test pairs")
    need(cfg.dream_k <= cfg.n_train,
         f"dream_k={cfg.dream_k} exceeds the training set ({cfg.n_train} pairs)")
    need(cfg.batch_size is None or (is_int(cfg.batch_size) and 1 <= cfg.batch_size <= cfg.n_train),
         f"batch_size must be None (full batch) or in 1..{cfg.n_train}, got {cfg.batch_size!r}")
    for name in ("lr", "weight_decay", "eps", "dream_alpha", "beta1", "beta2", "grokfast_alpha", "grokfast_lambda",
                 "grok_threshold", "memorised_threshold"):
        v = getattr(cfg, name)
        need(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
             f"{name} must be a finite number, got {v!r}")
    need(cfg.lr > 0, f"lr must be positive, got {cfg.lr}")
    need(cfg.weight_decay >= 0, f"weight_decay must be >= 0, got {cfg.weight_decay}")
    need(cfg.eps > 0, f"eps must be positive, got {cfg.eps}")
    need(0 <= cfg.beta1 < 1 and 0 <= cfg.beta2 < 1, f"betas must be in [0, 1), got {cfg.beta1}, {cfg.beta2}")
    need(0 <= cfg.grokfast_alpha < 1, f"grokfast_alpha must be in [0, 1), got {cfg.grokfast_alpha}")
    need(cfg.grokfast_lambda >= 0, f"grokfast_lambda must be >= 0, got {cfg.grokfast_lambda}")
    need(cfg.dream_alpha >= 0, f"dream_alpha must be >= 0, got {cfg.dream_alpha}")
    need(0 < cfg.grok_threshold <= 1 and 0 < cfg.memorised_threshold <= 1, "accuracy thresholds must be in (0, 1]")
    need(cfg.dream_selection in DREAM_SELECTIONS,
         f"unknown dream_selection {cfg.dream_selection!r}; choose from {', '.join(DREAM_SELECTIONS)}")
    need(cfg.d_model == cfg.n_heads * cfg.d_head,
         f"d_model ({cfg.d_model}) must equal n_heads * d_head ({cfg.n_heads} * {cfg.d_head})")
    need(cfg.act_fn in ("relu", "gelu"), f"act_fn must be relu or gelu, got {cfg.act_fn!r}")
    need(cfg.normalization in NORMALIZATIONS, f"normalization must be None or 'LN', got {cfg.normalization!r}")
    need(isinstance(cfg.fast_forward, bool), f"fast_forward must be true or false, got {cfg.fast_forward!r}")
    need(cfg.replay_optimizer == "shared", f"replay_optimizer must be 'shared', got {cfg.replay_optimizer!r}")
    return cfg
