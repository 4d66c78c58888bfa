"""The batched trainer: R runs of one arm and reading (different seeds) in one process.

The R models' parameters are stacked into one tensor per parameter name (R x shape), and
each run's hooked model keeps its own ``nn.Parameter`` objects, re-pointed at its slice of
the stack (``param.data = stack[r]``). So every run still evaluates, checkpoints, writes
its own run file and resumes exactly as a run of :mod:`mechgrok.loop` does (the
bookkeeping is ``loop._Run``'s, unchanged); only the tensor work of an optimiser step is
shared:

- the forward is :func:`mechgrok.fastpath.forward` on each run's own batch (R x n tokens:
  runs with a random split, or with mini-batches, see different examples): under
  ``torch.vmap`` over the stacked parameters (``vectorise``, the default on a GPU, where R
  small models in one kernel each is the point), or run by run over slices of the stack
  (the default on a CPU, where vmap's batched products measured 2-3x slower per run than
  one run's; see benchmarks/bench_batch.py);
- the loss is the sum over runs of each run's mean cross-entropy, so the gradient of
  stack[r] is run r's own gradient;
- one ``torch.optim.AdamW`` over the stacked tensors. AdamW (and the grokfast filter) is
  elementwise, so this is per-run AdamW exactly, provided every run takes the same number
  of optimiser steps: the step counter is shared. That holds for the arms whose replay does
  not depend on a run's own state (``BATCHABLE_ARMS``); ``dream-early`` and
  ``dream-plateau`` replay or not depending on when each run memorises, and are refused.

A run that stops (grokked and ``stop_after_grok`` later, or diverged) leaves the batch
(``train_batch`` lets go of its lock then, so it can be analysed while the others train),
and the rest are stacked again. The arithmetic is that of separate runs:
``tests/test_batch.py`` checks batches of 2 and 3 runs against separate runs in float64
(to 1e-9, both forwards). In float32 batched and single matrix products round differently,
and training amplifies the difference over a run.

Timers: each run is charged 1/R of the wall time of a shared optimiser step, and its
``wall_time_s`` is the wall time of the whole batch (attribute ``batch_runs`` = R at the start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path

import torch

from . import fastpath, runstore
from .config import RunConfig
from .errors import ConfigError, MechgrokError, RunLockedError
from .loop import _Run, grokfast_filter, torch_device, torch_threads
from .model import per_example_loss

BATCHABLE_ARMS = ("baseline", "dream", "control", "grokfast")


def batch_key(cfg: RunConfig) -> RunConfig:
    """Runs can share a batch when their configs are equal up to the seed (and so the split seed)."""
    return dataclasses.replace(cfg, seed=0, split_seed=None if cfg.split_seed is None else 0)


def why_not_batchable(cfg: RunConfig) -> str | None:
    """Why a run of ``cfg`` cannot be trained in a batch; None if it can."""
    if cfg.arm not in BATCHABLE_ARMS:
        return (f"arm {cfg.arm!r} cannot be batched (whether it replays depends on each run's own state); "
                f"batchable arms: {', '.join(BATCHABLE_ARMS)}")
    if not cfg.fast_forward or cfg.normalization is not None:
        return "the batched trainer needs the fast forward (no --full-forward, no layer norm)"
    return None


def check_batchable(cfgs: list[RunConfig]) -> None:
    """ConfigError unless ``cfgs`` can be trained as one batch."""
    if not cfgs:
        raise ConfigError("a batch needs at least one run")
    reason = why_not_batchable(cfgs[0])
    if reason:
        raise ConfigError(reason)
    if len({batch_key(c) for c in cfgs}) > 1:
        raise ConfigError("runs of one batch must differ in their seed only")


class _Member(_Run):
    """A run whose tensors live in a :class:`Batch` while it trains there."""

    batch: "Batch | None" = None
    index: int = 0

    def optimizer_state(self) -> dict[str, dict[str, torch.Tensor]]:
        if self.batch is None:
            return super().optimizer_state()
        return self.batch.optimizer_state_of(self.index)


class Batch:
    """R runs at the same step, trained together (see the module docstring)."""

    def __init__(self, runs: list[_Member], vectorise: bool | None = None, on_leave=None):
        self.on_leave = on_leave  # called with each run as it leaves (its file is written and closed)
        self.vectorise = runs[0].device.type != "cpu" if vectorise is None else vectorise
        steps = {r.step for r in runs}
        if len(steps) != 1:
            raise MechgrokError(f"runs of one batch must start at the same step, got {sorted(steps)}")
        self.runs = runs
        self.names = list(runs[0].params)
        self.tl_cfg = runs[0].model.cfg
        self._stack()

    def _stack(self) -> None:
        """Stack the runs' parameters, AdamW state and grokfast EMA; point each run at its slice."""
        runs, names, cfg = self.runs, self.names, self.runs[0].cfg
        states = [r.optimizer_state() for r in runs]
        emas = [dict(r.grad_ema) for r in runs]
        self.P = {n: torch.stack([r.params[n].detach() for r in runs]).requires_grad_() for n in names}
        self.opt = torch.optim.AdamW(list(self.P.values()), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                     betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
        if states[0]:
            for n in names:
                self.opt.state[self.P[n]] = {
                    "step": states[0][n]["step"].detach().clone(),
                    **{key: torch.stack([s[n][key].detach() for s in states]) for key in ("exp_avg", "exp_avg_sq")}}
        self.ema = {n: torch.stack([e[n] for e in emas]) for n in names} if emas[0] else {}
        for i, run in enumerate(runs):
            run.batch, run.index = self, i
            for n in names:
                run.params[n].data = self.P[n].data[i]
            run.grad_ema = {n: e[i] for n, e in self.ema.items()}

    def optimizer_state_of(self, i: int) -> dict[str, dict[str, torch.Tensor]]:
        out = {}
        for n in self.names:
            state = self.opt.state.get(self.P[n])
            if state:
                out[n] = {"step": state["step"], "exp_avg": state["exp_avg"][i], "exp_avg_sq": state["exp_avg_sq"][i]}
        return out

    def update(self, positions: list, extra: bool) -> None:
        """One optimiser step of every run, each on its own examples (see ``_Run._optimise``)."""
        t = time.perf_counter()
        cfg, runs = self.runs[0].cfg, self.runs
        examples = [r.examples(p) for r, p in zip(runs, positions)]
        x = torch.stack([e[0] for e in examples])
        y = torch.stack([e[1] for e in examples])
        if self.vectorise:
            logits = torch.vmap(lambda P, tokens: fastpath.forward(P, self.tl_cfg, tokens))(self.P, x)
        else:
            logits = torch.stack([fastpath.forward({n: t[i] for n, t in self.P.items()}, self.tl_cfg, x[i])
                                  for i in range(len(runs))])
        losses = per_example_loss(logits.flatten(0, 1), y.flatten()).view(y.shape)
        self.opt.zero_grad(set_to_none=True)
        losses.mean(1).sum().backward()
        if cfg.arm == "grokfast" and not extra:
            new = not self.ema
            grokfast_filter(self.P, self.ema, cfg.grokfast_alpha, cfg.grokfast_lambda)
            if new:
                for i, run in enumerate(runs):
                    run.grad_ema = {n: e[i] for n, e in self.ema.items()}
        self.opt.step()
        failed = (logits.argmax(-1) != y).cpu()  # one device-to-host copy for all runs
        losses = losses.detach().cpu()
        seconds = (time.perf_counter() - t) / len(runs)
        for i, (run, e) in enumerate(zip(runs, examples)):
            run.count_update(e[2], losses[i], failed[i], extra, seconds)

    def fit(self, progress=None) -> None:
        """Train until every run has stopped (budget, stop after grokking, divergence)."""
        while self.runs:
            runs = self.runs
            self.update([r.begin_step() for r in runs], extra=False)
            if runs[0].cfg.is_event_step(runs[0].step):
                events = [r.begin_event() for r in runs]
                for _ in range(events[0]["extra_steps"]):  # equal for every run of a batchable arm
                    self.update([e["chosen"] for e in events], extra=True)
                for run, event in zip(runs, events):
                    run.end_event(event)
            for run in runs:
                run.end_step(progress)
            left = [r for r in runs if not r.running()]
            if left:  # stopped runs leave; the rest are stacked again
                self.runs = [r for r in runs if r.running()]
                for run in left:
                    if self.on_leave is not None:
                        self.on_leave(run)
                if self.runs:
                    self._stack()


def train_batch(cfgs: list[RunConfig], paths: list[str | Path], *, device: str = "cpu", threads: int | None = None,
                progress=None) -> tuple[list[dict], list[Path]]:
    """Train the runs ``cfgs`` into ``paths`` as batches (resuming unfinished runs and extending
    shorter-budget ones as ``loop.train(..., resume=True)`` does; finished runs are left).

    Runs held by another process are skipped. Each run's lock is let go as soon as the run
    leaves its batch, so a finished run can be analysed while the others still train. Runs
    resuming from different steps are trained as separate batches, one per starting step. Returns the attributes of every run trained or
    already finished, and the paths that were skipped because another process trains them.
    """
    check_batchable(cfgs)
    dev = torch_device(device)
    paths = [Path(p) for p in paths]
    locked, trained, holds = [], [], {}
    with torch_threads(threads), contextlib.ExitStack() as stack:
        members: list[_Member] = []
        for cfg, path in zip(cfgs, paths):
            holds[path] = hold = stack.enter_context(contextlib.ExitStack())  # closed early when the run leaves
            try:
                hold.enter_context(runstore.run_lock(path))
            except RunLockedError:
                locked.append(path)
                continue
            trained.append(path)
            plan = runstore.prepare(path, cfg, resume=True, overwrite=False)
            if plan == "done":
                continue
            run = _Member(cfg, path, dev)
            run.restore() if plan in ("resume", "extend") else run.create()
            members.append(run)
        groups = {}
        for run in members:
            groups.setdefault(run.step, []).append(run)
        for step in sorted(groups):
            for run in groups[step]:
                with runstore.RunWriter(run.path) as w:
                    w.set_attrs(batch_runs=len(groups[step]))
            Batch(groups[step], on_leave=lambda run: holds[run.path].close()).fit(progress)
    return [runstore.read_attrs(p) for p in trained], locked
