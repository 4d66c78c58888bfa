"""The training loop shared by every arm (baseline, dream, control, grokfast, dream-early, dream-plateau).

One step, at ``step`` = 1 .. budget:

1. a regular optimiser step on the batch (full batch by default); its forward
   pass refreshes the surprise memory;
2. at replay-event steps (every ``dream_every``, within ``dream_start`` ..
   ``dream_stop``), in every arm: evaluate, checkpoint ``before``, and then
   - ``dream``: ``dream_steps`` extra optimiser steps on the k examples chosen
     by :func:`mechgrok.replay.select_failures`,
   - ``control``: as many extra steps on k uniformly random training examples,
   - ``dream-early`` / ``dream-plateau``: as ``dream``, but only before / from
     the first evaluation with train accuracy >= ``memorised_threshold``,
   - ``baseline`` and ``grokfast``: nothing (grokfast filters the gradients of
     every regular step instead: :func:`grokfast_filter`);
   evaluate again, checkpoint ``end``, append a row to ``/events``;
3. every ``eval_every`` steps: a row of ``/metrics``; time-to-grok is the first
   evaluated step with test accuracy >= ``grok_threshold``;
4. checkpoints (periodic, memorised, grok, final) and the resume state.

The run stops at the budget, ``stop_after_grok`` steps after grokking, or
when the training loss stops being finite (status ``diverged``).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import platform
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from . import __version__, runstore
from .config import TARGETED_ARMS, RunConfig
from .errors import MechgrokError, check_device
from .data import encode, split_indices
from .model import build_model, evaluate, flush_denormals, last_logits, load_weights, named_parameters, \
    per_example_loss, weight_norm, weights
from .provenance import git_state
from .replay import SurpriseMemory, select_failures, select_uniform


def train(cfg: RunConfig, path: str | Path, *, resume: bool = False, overwrite: bool = False,
          device: str = "cpu", threads: int | None = None, progress=None) -> dict:
    """Train one run into the run file ``path`` and return its summary attributes.

    The run file is locked (``<path>.lock``) while training: a second process
    asked to train it gets RunLockedError. ``resume`` continues an unfinished run,
    or a run of the same config with a shorter budget that ended without grokking
    (its budget is extended: the result equals a run trained with ``cfg`` from the start).
    Otherwise ``resume`` continues an unfinished run of the same config from its newest
    resume state; ``overwrite`` replaces whatever run ``path`` holds. A finished
    run of the same config is left as it is. ``progress`` is called as
    ``progress(step, budget, row)`` after every step (``row`` is the metrics
    row at evaluation steps, else None).
    """
    dev = torch_device(device)
    with runstore.run_lock(path):
        plan = runstore.prepare(path, cfg, resume=resume, overwrite=overwrite)
        if plan != "done":
            with torch_threads(threads):
                run = _Run(cfg, Path(path), dev)
                run.restore() if plan in ("resume", "extend") else run.create()
                run.fit(progress)
    return runstore.read_attrs(path)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Train on ``threads`` intra-op CPU threads (None: as set), then give the process its
    setting back. A run's arithmetic depends only on its seed and thread count
    (``benchmarks/bench_threads.py``); trained on 2+ threads before fastpath's F.embedding
    (2026-12-06), the same seed gave different runs from one time to the next."""
    before = torch.get_num_threads()
    if not threads or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_device(device: str) -> torch.device:
    """``device`` as a torch device; MechgrokError if it is not cpu, cuda or cuda:N
    (``errors.check_device``), or asks for CUDA that torch cannot see."""
    dev = torch.device(check_device(str(device)))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MechgrokError(f"device {device!r} asked for, but torch sees no CUDA device")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise MechgrokError(f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return dev


@torch.no_grad()
def grokfast_filter(params: dict[str, torch.Tensor], ema: dict[str, torch.Tensor], alpha: float, lam: float) -> None:
    """Grokfast-EMA (Lee et al. 2024) on the gradients of ``params``, in place:
    ema <- alpha * ema + (1 - alpha) * g, then g <- g + lambda * ema. The EMA starts at
    the first gradient. Elementwise, so it applies unchanged to stacked parameters."""
    for name, param in params.items():
        e = ema.get(name)
        if e is None:
            e = ema[name] = param.grad.detach().clone()
        else:
            e.mul_(alpha).add_(param.grad, alpha=1 - alpha)
        param.grad.add_(e, alpha=lam)


def _newest_slot_at(f, step: int) -> str | None:
    """The complete resume slot holding ``step``, if any."""
    for name, g in f["resume"].items():
        if g.attrs.get("complete", False) and int(g.attrs["step"]) == step:
            return name
    return None


def seed_for(seed: int, stream: str) -> int:
    """An independent 63-bit seed for each random stream of a run."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stream}".encode()).digest()[:8], "little") >> 1


def _process_attrs(device: torch.device) -> dict:
    """What a training process records about itself: its code, device, threads and subnormal
    flushing. The creating process writes these under their own names (``run_metadata``); a
    resuming process overwrites the last three and writes its code as ``resumed_git_*``."""
    commit, uncommitted = git_state()
    return {"git_commit": commit, "git_uncommitted_changes": uncommitted, "device": str(device),
            "threads": torch.get_num_threads(), "denormals_flushed": flush_denormals()}


def run_metadata(device: torch.device) -> dict:
    return {
        "mechgrok_version": __version__,
        "torch_version": torch.__version__,
        "transformer_lens_version": metadata.version("transformer-lens"),
        "h5py_version": metadata.version("h5py"),
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        **_process_attrs(device),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class _Run:
    def __init__(self, cfg: RunConfig, path: Path, device: torch.device):
        self.cfg, self.path, self.device = cfg, path, device
        self.train_idx, self.test_idx = split_indices(cfg)
        to = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        x, y = encode(self.train_idx, cfg.p)
        self.x_train, self.y_train = to(x), to(y)
        x, y = encode(self.test_idx, cfg.p)
        self.x_test, self.y_test = to(x), to(y)
        self.n_train = len(self.train_idx)
        self.model = build_model(cfg, device)
        self.params = named_parameters(self.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                     betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
        self.memory = SurpriseMemory(self.n_train, cfg.p)
        self.grad_ema: dict[str, torch.Tensor] = {}  # grokfast arm only
        self.gen = {name: torch.Generator().manual_seed(seed_for(cfg.seed, name)) for name in ("batch", "replay")}
        self.step, self.updates = 0, 0
        self.passes = dict.fromkeys(runstore.PASS_COUNTERS, 0)
        self.seconds = dict.fromkeys(runstore.TIMERS, 0.0)  # wall time by kind of work (CPU: exact)
        self.grok_step = self.memorised_step = None
        self.wall_before = 0.0  # wall time spent by earlier processes of this run
        self.pending: list[tuple] = []
        self._eval_cache = None
        self.status = "running"

    # ---- set-up -------------------------------------------------------------
    def create(self) -> None:
        runstore.create(self.path, self.cfg, run_metadata(self.device), self.train_idx, self.test_idx)
        self.t0 = time.perf_counter()
        self._record_metrics()
        self.pending.append(("ckpt", 0, "end", ["init"], weights(self.model), None))
        self._flush(resume_state=True)

    def restore(self) -> None:
        step, arrays, info = runstore.read_resume(self.path)
        load_weights(self.model, {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")})
        if info["optimizer_started"]:
            sd = self.opt.state_dict()
            sd["state"] = {
                i: {"step": torch.tensor(float(arrays[f"optimizer/{name}/step"]))} | {
                    key: torch.as_tensor(arrays[f"optimizer/{name}/{key}"]).to(self.device)
                    for key in ("exp_avg", "exp_avg_sq")}
                for i, name in enumerate(self.params)}
            self.opt.load_state_dict(sd)
        self.grad_ema = {k[len("grad_ema/"):]: torch.as_tensor(v).to(self.device)
                         for k, v in arrays.items() if k.startswith("grad_ema/")}
        for name, g in self.gen.items():
            g.set_state(torch.as_tensor(arrays[f"rng/{name}"]))
        self.memory.load_state({k: arrays[f"memory/{k}"] for k in ("surprise", "failed", "seen_step")})
        self.step, self.updates = step, info["updates"]
        self.passes = info["passes"]
        self.seconds = info["seconds"]
        self.grok_step, self.memorised_step = info["grok_step"], info["memorised_step"]
        self.wall_before = info["wall_time_s"]
        attrs = _process_attrs(self.device)
        for key in ("git_commit", "git_uncommitted_changes"):  # the creating process's code stays
            attrs["resumed_" + key] = attrs.pop(key)
        with runstore.RunWriter(self.path) as w:
            w.truncate_after(step)
            if runstore.read_config_from(w.f) != self.cfg:  # extending a finished run to a longer budget
                w.extend_budget(self.cfg, step)
            w.set_attrs(status="running", last_step=step, **attrs,
                        resumed_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.t0 = time.perf_counter()

    # ---- the loop -------------------------------------------------------------
    # A step is split into phases so that mechgrok.batch can run the tensor work of R runs at
    # once while each run keeps this bookkeeping: begin_step -> regular update -> (event:
    # begin_event -> extra updates -> end_event) -> end_step.
    def fit(self, progress=None) -> None:
        while self.running():
            self._optimise(self.begin_step(), extra=False)
            if self.cfg.is_event_step(self.step):
                event = self.begin_event()
                for _ in range(event["extra_steps"]):
                    self._optimise(event["chosen"], extra=True)
                self.end_event(event)
            self.end_step(progress)

    def running(self) -> bool:
        return self.status == "running" and self.step < self.cfg.steps

    def begin_step(self) -> torch.Tensor | None:
        """Advance the step counter; the positions of this step's batch (None = full batch)."""
        self.step += 1
        if self.cfg.batch_size is None:
            return None
        return torch.randperm(self.n_train, generator=self.gen["batch"])[: self.cfg.batch_size]

    def end_step(self, progress=None) -> None:
        """Evaluation, grok/memorised detection, checkpoints, writing and the stop rule."""
        cfg, step = self.cfg, self.step
        final = step == cfg.steps or (
            self.grok_step is not None and cfg.stop_after_grok > 0 and step >= self.grok_step + cfg.stop_after_grok)
        reasons, row = [], None
        if step % cfg.eval_every == 0 or final:
            row = self._record_metrics()
            if not math.isfinite(row["train_loss"]):
                self.status = "diverged"
            if self.memorised_step is None and row["train_acc"] >= cfg.memorised_threshold:
                self.memorised_step = step
                reasons.append("memorised")
            if self.grok_step is None and row["test_acc"] >= cfg.grok_threshold:
                self.grok_step = step
                reasons.append("grok")
        if step % cfg.checkpoint_every == 0:
            reasons.append("periodic")
        if final or self.status != "running":
            self.status = "diverged" if self.status == "diverged" else "complete"
            reasons.append("final")
        if reasons:
            self.pending.append(("ckpt", step, "end", reasons, weights(self.model), None))
        self._flush(resume_state=bool(reasons) and (self.status == "running" or self._extendable(self.status)),
                    status=self.status)
        if progress is not None:
            progress(step, cfg.steps, row)

    def examples(self, positions: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens, labels and positions of the training examples at ``positions`` (None = all)."""
        if positions is None:
            return self.x_train, self.y_train, torch.arange(self.n_train)
        dev = positions.to(self.device)
        return self.x_train[dev], self.y_train[dev], positions

    def _optimise(self, positions: torch.Tensor | None, extra: bool) -> None:
        """One optimiser step on the training examples at ``positions`` (None = all)."""
        t = time.perf_counter()
        x, y, positions = self.examples(positions)
        logits = last_logits(self.model, x, self.cfg.fast_forward)
        losses = per_example_loss(logits, y)
        self.opt.zero_grad(set_to_none=True)
        losses.mean().backward()
        if self.cfg.arm == "grokfast" and not extra:
            grokfast_filter(self.params, self.grad_ema, self.cfg.grokfast_alpha, self.cfg.grokfast_lambda)
        self.opt.step()
        self.count_update(positions, losses, logits.argmax(-1) != y, extra, time.perf_counter() - t)

    def count_update(self, positions, losses, failed, extra: bool, seconds: float) -> None:
        """Bookkeeping of one optimiser step: the surprise memory, counters and timers."""
        self.updates += 1
        self.memory.update(positions, losses, failed, self.step)
        kind = "extra" if extra else "regular"
        self.passes[f"fwd_{kind}"] += len(losses)
        self.passes[f"bwd_{kind}"] += len(losses)
        self.seconds[kind] += seconds

    def begin_event(self) -> dict:
        """Measure before a replay event and choose what it replays: the event's record so far,
        with ``chosen`` (positions, or None) and ``extra_steps`` to take on them."""
        cfg, step = self.cfg, self.step
        number = cfg.event_number(step)
        event = {"step": step, "number": number, "keep": cfg.keeps_event_checkpoint(number),
                 "before": self._evaluate(), "memory_mean": float(self.memory.surprise.mean()),
                 "memory_failures": int(self.memory.failed.sum()), "chosen": None, "extra_steps": 0,
                 "selected_mean": math.nan, "loss_before": np.full(cfg.dream_k, np.nan)}
        if event["keep"]:
            self.pending.append(("ckpt", step, "before", ["event"], weights(self.model), None))
        if cfg.replays_at_event(memorised=self.memorised_step is not None):
            if cfg.arm in TARGETED_ARMS:
                chosen = select_failures(self.memory, cfg.dream_k, cfg.dream_selection, cfg.dream_alpha,
                                         self.gen["replay"])
            else:
                chosen = select_uniform(self.n_train, cfg.dream_k, self.gen["replay"])
            event.update(chosen=chosen, extra_steps=cfg.dream_steps,
                         selected_mean=float(self.memory.surprise[chosen].mean()),
                         loss_before=self._example_losses(chosen))
        return event

    def end_event(self, event: dict) -> None:
        """Measure after the event's extra steps and record it (``/events``, checkpoint ``end``)."""
        cfg, step, chosen = self.cfg, event["step"], event["chosen"]
        k = cfg.dream_k
        loss_after = np.full(k, np.nan) if chosen is None else self._example_losses(chosen)
        after = self._evaluate()
        if event["keep"]:
            link = runstore.checkpoint_name(step, "before") if chosen is None else None
            self.pending.append(("ckpt", step, "end", ["event"], None if link else weights(self.model), link))
        names = ("train_loss", "train_acc", "test_loss", "test_acc")
        self.pending.append(("event", {
            "step": step, "event": event["number"], "extra_steps": event["extra_steps"],
            "checkpointed": int(event["keep"]),
            **{f"{name}_before": v for name, v in zip(names, event["before"])},
            **{f"{name}_after": v for name, v in zip(names, after)},
            "memory_surprise_mean": event["memory_mean"], "memory_failures": event["memory_failures"],
            "selected_surprise_mean": event["selected_mean"],
            "indices": np.full(k, -1) if chosen is None else self.train_idx[chosen.numpy()],
            "loss_before": event["loss_before"], "loss_after": loss_after,
        }))

    # ---- measurement ------------------------------------------------------------
    def _evaluate(self) -> tuple[float, float, float, float]:
        """Train loss, train accuracy, test loss, test accuracy (cached per weights)."""
        if self._eval_cache is None or self._eval_cache[0] != self.updates:
            t = time.perf_counter()
            train = evaluate(self.model, self.x_train, self.y_train, fast=self.cfg.fast_forward)
            test = evaluate(self.model, self.x_test, self.y_test, fast=self.cfg.fast_forward)
            self.passes["fwd_eval"] += self.n_train + len(self.y_test)
            self._eval_cache = (self.updates, (*train, *test))
            self.seconds["eval"] += time.perf_counter() - t
        return self._eval_cache[1]

    @torch.no_grad()
    def _example_losses(self, positions: torch.Tensor) -> np.ndarray:
        dev = positions.to(self.device)
        logits = last_logits(self.model, self.x_train[dev], self.cfg.fast_forward)
        self.passes["fwd_eval"] += len(positions)
        return per_example_loss(logits.double(), self.y_train[dev]).cpu().numpy()

    def _record_metrics(self) -> dict:
        tl, ta, vl, va = self._evaluate()
        row = {"step": self.step, "train_loss": tl, "train_acc": ta, "test_loss": vl, "test_acc": va,
               "weight_norm": weight_norm(self.model), "wall_time_s": self._wall(), **self.passes}
        self.pending.append(("metrics", row))
        return row

    def _wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.t0

    # ---- writing ----------------------------------------------------------------
    def _flush(self, resume_state: bool, status: str = "running") -> None:
        if not self.pending and not resume_state and status == "running":
            return
        t = time.perf_counter()
        with runstore.RunWriter(self.path) as w:
            for item in self.pending:
                if item[0] == "ckpt":
                    w.write_checkpoint(*item[1:])
                elif item[0] == "event":
                    w.append_event(item[1])
                else:
                    w.append_metrics(item[1])
            self.pending = []
            if resume_state:
                w.write_resume(self.step, *self._resume_state())
            grokked = self.grok_step is not None
            w.set_attrs(last_step=self.step, grokked=grokked, grok_step=self.grok_step if grokked else -1,
                        memorised_step=-1 if self.memorised_step is None else self.memorised_step,
                        time_to_grok=self.grok_step if grokked else self.step, wall_time_s=self._wall(),
                        **{f"passes_{k}": v for k, v in self.passes.items()},
                        **{f"seconds_{k}": v for k, v in self.seconds.items()})
            if status != "running":
                keep = _newest_slot_at(w.f, self.step) if self._extendable(status) else None
                for slot in list(w.f["resume"]):
                    if slot != keep:
                        del w.f["resume"][slot]
            w.set_attrs(status=status)
        self.seconds["write"] += time.perf_counter() - t

    def _extendable(self, status: str) -> bool:
        """A run that reaches its budget without grokking keeps its final state, so that a
        later, longer budget can continue it instead of starting again."""
        return status == "complete" and self.grok_step is None and self.step == self.cfg.steps

    def optimizer_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """AdamW's state (step, exp_avg, exp_avg_sq) by parameter name; empty before the first step."""
        return {name: self.opt.state[p] for name, p in self.params.items() if p in self.opt.state}

    def _resume_state(self) -> tuple[dict, dict]:
        arrays = {f"model/{k}": v for k, v in weights(self.model).items()}
        opt_state = self.optimizer_state()
        for name, state in opt_state.items():
            for key, value in state.items():
                arrays[f"optimizer/{name}/{key}"] = value.detach().cpu().numpy()
        arrays.update({f"grad_ema/{name}": v.detach().cpu().numpy() for name, v in self.grad_ema.items()})
        arrays.update({f"rng/{name}": g.get_state().numpy() for name, g in self.gen.items()})
        arrays.update({f"memory/{k}": v.numpy() for k, v in self.memory.state().items()})
        info = {"updates": self.updates, "passes": self.passes, "seconds": self.seconds, "grok_step": self.grok_step,
                "memorised_step": self.memorised_step, "wall_time_s": self._wall(),
                "optimizer_started": bool(opt_state)}
        return arrays, info
