"""Sweeps: a grid of runs (regimes x arms x seeds), resumable, on a pool of worker processes.

``python -m mechgrok.sweep --regimes hard --arms baseline dream control --seeds 0-19 --out runs/``

Every run goes to its default path ``OUT/VARIANT/ARM/seedN.h5`` (as ``mechgrok.train``),
so a sweep and single runs share one folder. Before any work starts, every existing
file is checked: a finished run of the same config is skipped, an unfinished one is
resumed from its last resume state, anything else (another run's file, a foreign or
corrupt file) stops the sweep with one line and exit code 2, touching nothing.

Workers are separate processes (``python -m mechgrok.sweep --worker``), one per core
with one torch thread each by default: on the 2-core CPU two 1-thread processes beat
one 2-thread process. Training holds an exclusive lock (``<run file>.lock``, see
mechgrok.runstore.run_lock), so two sweeps on one folder never write the same
file (the second reports the run as busy); workers die with the
sweep (Linux parent-death signal), and a killed sweep loses at most each run's work
since its last resume state (every checkpoint step).

``--backend ray [--address host:port]`` runs every run as a task on a Ray cluster
instead (optional extra: ``pip install 'mechgrok[ray]'``); the output folder must be
shared by the nodes. Without ``--address`` a local Ray instance is started.

A run that a shorter-budget sweep already trained (same reading, arm and seed, ended at its
budget without grokking) is not trained again from step 0: a copy of it is continued to the
longer budget, which gives the same file as training the longer budget from the start.

Jobs start in the order seed, regime, arm (the seeds in the order given), so the
first seeds of every arm finish first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import runstore
from .cli import OneLineParser, device_arg, error_line, positive_int
from .config import ARMS, REGIMES, RunConfig, from_json, make_config
from .errors import MechgrokError, RunLockedError, out_dir
from .train import add_config_flags, default_run_path, overrides_from_args

PROG = "python -m mechgrok.sweep"
EXIT_LOCKED = 3  # a worker found its run locked by another process


@dataclass(frozen=True)
class Job:
    cfg: RunConfig
    path: Path

    @property
    def label(self) -> str:
        return f"{self.cfg.variant()}/{self.cfg.arm}/seed{self.cfg.seed}"


def parse_seeds(text: str) -> list[int]:
    """``"0-19"``, ``"42"``, ``"42,0-2"`` -> seeds in the order given, without repeats."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise MechgrokError(f"seed range {text!r} does not parse; write e.g. 0-19 or 42,0-2")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise MechgrokError(f"seed range {part.strip()!r} is empty (end below start)")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return seeds


def plan(regimes, arms, seeds, out: str | Path, **overrides) -> list[Job]:
    """The grid's jobs in start order (seed, regime, arm); configs validated."""
    for arm in arms:
        if arm not in ARMS:
            raise MechgrokError(f"unknown arm {arm!r}; choose from {', '.join(ARMS)}")
    for regime in regimes:
        if regime not in REGIMES:
            raise MechgrokError(f"unknown regime {regime!r}; choose from {', '.join(REGIMES)}")
    jobs = []
    for seed in seeds:
        for regime in regimes:
            for arm in arms:
                cfg = make_config(regime, arm, seed, **overrides)
                jobs.append(Job(cfg, default_run_path(cfg, out)))
    return jobs


def done_elsewhere(jobs: list[Job], table: str | Path) -> tuple[list[Job], list[Job]]:
    """Split ``jobs`` into those to run and those a results table (``results/runs.csv``) holds as
    finished, identified by config hash, whose files are not here: trained on another machine or
    in an earlier session whose files are gone. A job whose file is here is always kept (the
    file decides)."""
    from .results import read_csv

    finished = {r["config_hash"] for r in read_csv(table) if r["finished"]}
    elsewhere = [j for j in jobs if not j.path.exists() and j.cfg.config_hash() in finished]
    return [j for j in jobs if j not in elsewhere], elsewhere


def check(jobs: list[Job]) -> dict[str, list[Job]]:
    """Sort jobs into ``new``, ``resume`` and ``done`` from what is on disk.
    Raises MechgrokError (naming the first bad file) if any file holds something else."""
    states: dict[str, list[Job]] = {"new": [], "resume": [], "extend": [], "done": []}
    for job in jobs:
        state = runstore.prepare(job.path, job.cfg, resume=True, overwrite=False)
        if state == "new" and shorter_run(job.cfg, job.path) is not None:
            state = "extend"
        states[state].append(job)
    return states


# ---- one run in a worker process ------------------------------------------------------------
def shorter_run(cfg: RunConfig, path: Path) -> Path | None:
    """A finished run of the same reading, arm and seed with a shorter budget, ended without
    grokking and with its final state, beside ``path`` (OUT/*/ARM/seedN.h5); the longest such."""
    out = path.parents[2]
    best = None
    for cand in out.glob(f"*/{cfg.arm}/{path.name}"):
        try:
            stored = runstore.read_config(cand)
            if runstore.extendable(cand, stored, cfg) and (best is None or stored.steps > best[0]):
                best = (stored.steps, cand)
        except MechgrokError:
            continue
    return None if best is None else best[1]


def run_job(cfg: RunConfig, path: Path, threads: int = 1, device: str = "cpu") -> int:
    """Train one run (resuming it if unfinished, or continuing a shorter-budget run of the same
    seed: a copy of it at ``path`` is extended); 0, or EXIT_LOCKED if another process trains it."""
    return run_jobs([Job(cfg, path)], threads, device)


def run_jobs(jobs: list[Job], threads: int = 1, device: str = "cpu") -> int:
    """Train ``jobs`` in this process: one run with mechgrok.loop, several (a unit of
    :func:`units`) as one batch with mechgrok.batch. 0, or EXIT_LOCKED if another process
    trains one of them (the others are trained)."""
    import shutil

    for job in jobs:
        if not job.path.exists():
            src = shorter_run(job.cfg, job.path)
            if src is not None:
                job.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = job.path.with_name(job.path.name + ".tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, job.path)
    if len(jobs) > 1:
        from .batch import train_batch

        _, locked = train_batch([j.cfg for j in jobs], [j.path for j in jobs], device=device, threads=threads)
        return EXIT_LOCKED if locked else 0
    from .loop import train

    try:
        train(jobs[0].cfg, jobs[0].path, resume=True, device=device, threads=threads)
    except RunLockedError:
        return EXIT_LOCKED
    return 0


def units(jobs: list[Job], batch_runs: int = 1) -> list[list[Job]]:
    """The jobs as units of work for one worker each: single runs, or with ``batch_runs`` > 1
    batches of up to that many runs that differ only in their seed (mechgrok.batch; arms that
    cannot be batched stay single). Order: the order of each unit's first job."""
    if batch_runs <= 1:
        return [[j] for j in jobs]
    from .batch import batch_key, why_not_batchable

    out, open_units = [], {}
    for job in jobs:
        if why_not_batchable(job.cfg):
            out.append([job])
            continue
        key = batch_key(job.cfg)
        unit = open_units.get(key)
        if unit is None or len(unit) >= batch_runs:
            unit = open_units[key] = []
            out.append(unit)
        unit.append(job)
    return out


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _worker_cmd(unit: list[Job], threads: int, device: str) -> list[str]:
    spec = json.dumps([[str(j.path), j.cfg.to_dict()] for j in unit])
    return [sys.executable, "-m", "mechgrok.sweep", "--worker", spec, "--threads", str(threads), "--device", device]


# ---- the local pool ---------------------------------------------------------------------------
class _Tracker:
    """Overall progress: runs done / running / pending and an ETA from steps per second.

    Each run's progress counts from the step it started at: its own last step, or, for a run
    extended from a shorter budget, that run's last step (its copy is made by the worker, so
    the steps it inherits are not counted as trained here)."""

    def __init__(self, jobs: list[Job], stream, extend: list[Job] = ()):
        self.jobs, self.stream = jobs, stream
        self.t0 = time.monotonic()
        self.start = {j.path: self._steps(j.path) for j in jobs}
        for j in extend:
            src = shorter_run(j.cfg, j.path)
            if src is not None:
                self.start[j.path] = max(self.start[j.path], self._steps(src))
        self.last_print = 0.0

    @staticmethod
    def _steps(path) -> int:
        try:
            return int(runstore.read_attrs(path).get("last_step", 0))
        except (MechgrokError, OSError, KeyError):
            return 0  # missing, or being written this instant

    def line(self, done: int, running: int, pending: int, failed: int) -> str:
        now = {j.path: self._steps(j.path) for j in self.jobs}
        # a resumed run first falls back to its last resume state, so a run's count can dip below its start
        trained = sum(max(now[j.path] - self.start[j.path], 0) for j in self.jobs)
        left = sum(j.cfg.steps - max(now[j.path], self.start[j.path]) for j in self.jobs)
        rate = trained / max(time.monotonic() - self.t0, 1e-9)
        # run files record their step at checkpoints only: until the first one lands nothing is measured
        speed = "? steps/s (none checkpointed yet)" if rate <= 0 else f"{rate:.1f} steps/s"
        eta = "?" if rate <= 0 else _duration(left / rate)
        return (f"sweep: {done}/{len(self.jobs)} done, {running} running, {pending} pending"
                + (f", {failed} failed" if failed else "") + f" | {speed} | ETA <= {eta} (full budgets)")

    def show(self, *counts, force=False) -> None:
        now = time.monotonic()
        if force or now - self.last_print >= 60:
            self.last_print = now
            print(self.line(*counts), file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def run_local(jobs: list[Job], workers: int | None = None, threads: int = 1, device: str = "cpu",
              stream=None, poll: float = 0.5, batch_runs: int = 1) -> dict:
    """Run ``jobs`` on ``workers`` processes (default: one per core), each training one unit of
    :func:`units` at a time. Skips finished runs, resumes unfinished ones. Returns counts:
    done, skipped, failed (labels), locked (labels)."""
    stream = stream or sys.stderr
    workers = workers or os.cpu_count() or 1
    states = check(jobs)
    todo = units([j for j in jobs if j not in states["done"]], batch_runs)
    tracker = _Tracker(jobs, stream, states["extend"])
    pending, running = list(todo), {}
    done, failed, locked = len(states["done"]), [], []
    print(f"sweep: {len(jobs)} runs; {done} already finished, {len(states['resume'])} to resume, "
          f"{len(states['extend'])} to extend from a shorter budget, {len(states['new'])} new; "
          f"{workers} workers x {threads} thread(s)"
          + (f", up to {batch_runs} runs per worker as one batch" if batch_runs > 1 else ""), file=stream, flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                                      os.environ.get("PYTHONPATH")]))}
    try:
        while pending or running:
            while pending and len(running) < workers:
                unit = pending.pop(0)
                for job in unit:
                    job.path.parent.mkdir(parents=True, exist_ok=True)
                log_path = str(unit[0].path) + ".log"  # the worker's output; removed when it succeeds
                log = open(log_path, "a")
                proc = subprocess.Popen(_worker_cmd(unit, threads, device), stdout=log, stderr=log, env=env,
                                        preexec_fn=_die_with_parent)
                running[proc] = (unit, log, log_path)
                tracker.show(done, len(running), len(pending), len(failed), force=True)
            time.sleep(poll)
            for proc in [p for p in running if p.poll() is not None]:
                unit, log, log_path = running.pop(proc)
                log.close()
                for job in unit:
                    finished = _finished(job.path)
                    if finished is not None:
                        done += 1
                        print(f"sweep: finished {job.label}: {finished}", file=stream, flush=True)
                    elif proc.returncode == EXIT_LOCKED:
                        locked.append(job.label)
                        print(f"sweep: {job.label} is in use by another process (training or analysis); skipped",
                              file=stream, flush=True)
                    else:
                        failed.append(job.label)
                        print(f"sweep: {job.label} failed (exit {proc.returncode}); see {log_path}",
                              file=stream, flush=True)
                if proc.returncode == 0:
                    os.unlink(log_path)
                tracker.show(done, len(running), len(pending), len(failed), force=True)
            tracker.show(done, len(running), len(pending), len(failed))
    finally:
        for proc in running:
            proc.terminate()
        for proc, (unit, log, log_path) in running.items():
            proc.wait()
            log.close()
    return {"done": done, "skipped": len(states["done"]), "failed": failed, "locked": locked}


def _finished(path: Path) -> str | None:
    """'grokked at S' / 'not grokked by S' for a finished run file, else None."""
    try:
        a = runstore.read_attrs(path)
    except (MechgrokError, OSError):
        return None
    if a.get("status") not in runstore.FINISHED:
        return None
    return f"grokked at {a['grok_step']}" if a["grokked"] else f"not grokked by {a['last_step']}"


# ---- the Ray backend ---------------------------------------------------------------------------
def _ray_task(cfg_json: str, path: str, threads: int, device: str) -> str:
    """One run as a Ray task: '' on success, 'locked', or the error's first line."""
    import torch

    torch.set_num_threads(threads)
    try:
        return "locked" if run_job(from_json(cfg_json), Path(path), threads, device) == EXIT_LOCKED else ""
    except Exception as exc:  # noqa: BLE001 - reported to the driver as the run's failure
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _check_reachable(address: str) -> None:
    """Fail fast, with one line, when a host:port address does not answer."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise MechgrokError(f"Ray address {address!r} is not host:port (or ray://host:port, or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise MechgrokError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def run_ray(jobs: list[Job], address: str | None = None, threads: int = 1, device: str = "cpu", stream=None,
            num_cpus: int | None = None) -> dict:
    """Run ``jobs`` as tasks on a Ray cluster (``address``; None starts a local instance with
    ``num_cpus``). Every node must see the output folder and have mechgrok installed. Same
    skipping and resuming as :func:`run_local`; the run files are the same as the local backend's."""
    stream = stream or sys.stderr
    try:
        import ray
    except ImportError:
        raise MechgrokError("--backend ray needs Ray: pip install 'mechgrok[ray]'") from None
    states = check(jobs)
    todo = [j for j in jobs if j not in states["done"]]
    if address is not None:
        _check_reachable(address)
    try:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 logging_level="ERROR", log_to_driver=False, ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise MechgrokError(f"cannot start or reach Ray ({address or 'local'}): {str(exc).splitlines()[0]}") from None
    print(f"sweep (ray): {len(jobs)} runs; {len(states['done'])} already finished, {len(states['resume'])} to "
          f"resume, {len(states['new'])} new; cluster CPUs {ray.cluster_resources().get('CPU', 0):g}",
          file=stream, flush=True)
    task = ray.remote(num_cpus=threads)(_ray_task)
    refs = {task.remote(j.cfg.to_json(), str(j.path.resolve()), threads, device): j for j in todo}
    done, failed, locked = len(states["done"]), [], []
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            job, result = refs[ready[0]], ray.get(ready[0])
            if result == "":
                done += 1
                print(f"sweep (ray): finished {job.label} ({done}/{len(jobs)})", file=stream, flush=True)
            elif result == "locked":
                locked.append(job.label)
            else:
                failed.append(job.label)
                print(f"sweep (ray): {job.label} failed: {result}", file=stream, flush=True)
    finally:
        ray.shutdown()
    return {"done": done, "skipped": len(states["done"]), "failed": failed, "locked": locked}


# ---- command line -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog=PROG, description="Train a grid of runs (regimes x arms x seeds), resumably.")
    ap.add_argument("--regimes", nargs="+", default=["hard"], help=f"of {', '.join(REGIMES)} (hard)")
    ap.add_argument("--arms", nargs="+", default=["baseline", "dream", "control"],
                    help=f"of {', '.join(ARMS)} (baseline dream control)")
    ap.add_argument("--seeds", default="42", help="e.g. 0-19 or 42,0-2 (42)")
    ap.add_argument("--out", default="runs", help="root folder of run files (runs/)")
    ap.add_argument("--workers", type=positive_int, help="worker processes (one per core)")
    ap.add_argument("--threads", type=positive_int, default=1,
                    help="torch threads per worker (1: one worker per core is the fastest layout)")
    ap.add_argument("--device", type=device_arg, default="cpu",
                    help="torch device of every worker: cpu, cuda or cuda:N (cpu)")
    ap.add_argument("--backend", default="local", help="local (a process pool) or ray (local)")
    ap.add_argument("--address", help="ray: address of an existing cluster (host:port, ray://host:port, auto); "
                                      "none starts a local Ray instance")
    ap.add_argument("--dry-run", action="store_true", help="list the runs and what would happen to each")
    ap.add_argument("--done", metavar="TABLE", help="leave out runs this results table holds as finished whose "
                                                    "files are not here (e.g. results/runs.csv)")
    ap.add_argument("--batch-runs", type=positive_int, default=1,
                    help="local backend: train up to this many runs that differ only in their seed in one "
                         "worker, as one batch with stacked parameters (mechgrok/batch.py); arms "
                         "dream-early and dream-plateau stay single (1)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-config", help=argparse.SUPPRESS)  # with --worker PATH: one run (older sweeps)
    add_config_flags(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.worker and args.worker_config:
            return run_job(from_json(args.worker_config), Path(args.worker), args.threads, args.device)
        if args.worker:
            unit = [Job(from_json(json.dumps(cfg)), Path(path)) for path, cfg in json.loads(args.worker)]
            return run_jobs(unit, args.threads, args.device)
        if args.batch_runs > 1 and args.backend != "local":
            raise MechgrokError("--batch-runs applies to the local backend only")
        out_dir(args.out)
        jobs = plan(args.regimes, args.arms, parse_seeds(args.seeds), args.out, **overrides_from_args(args))
        elsewhere: list[Job] = []
        if args.done:
            jobs, elsewhere = done_elsewhere(jobs, args.done)
            print(f"sweep: {len(elsewhere)} runs finished in {args.done} (files not here) left out")
        if args.dry_run:
            for job in elsewhere:
                print(f"{'table':<6} {job.path}")
            states = check(jobs)
            for job in jobs:
                state = next(s for s, js in states.items() if job in js)
                print(f"{state:<6} {job.path}")
            return 0
        if args.backend not in ("local", "ray"):
            raise MechgrokError(f"unknown backend {args.backend!r}; choose local or ray")
        if args.address and args.backend != "ray":
            raise MechgrokError("--address applies to --backend ray only")
        if args.backend == "ray":
            result = run_ray(jobs, args.address, args.threads, args.device, num_cpus=args.workers)
        else:
            result = run_local(jobs, args.workers, args.threads, args.device, batch_runs=args.batch_runs)
    except MechgrokError as exc:
        return error_line(PROG, exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    print(f"sweep: {result['done']} of {len(jobs)} runs finished ({result['skipped']} were already)"
          + (f"; failed: {', '.join(result['failed'])}" if result["failed"] else "")
          + (f"; busy elsewhere: {', '.join(result['locked'])}" if result["locked"] else ""))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
