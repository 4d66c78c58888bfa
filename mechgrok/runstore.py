"""The run file: one HDF5 file per run, written once by training, read by analyses.

The schema is documented in ``docs/run-file.md``; keep the two in step.
Everything in a run file is a plain array, a string or a number: nothing is
pickled, and nothing is ever loaded with pickle.

Crash safety: the file is opened for a batch of writes and closed again, and
every checkpoint group and resume slot gets ``complete = True`` as its last
write. A process killed at any point leaves earlier groups readable; incomplete
ones are ignored by readers and removed by ``--resume``.

Only h5py and numpy are imported here, so the command line can check a run
file (and fail with one clear line) before it imports torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path

import h5py
import numpy as np

from .config import RunConfig, from_json
from .errors import ConfigError, RunFileError, RunLockedError

FORMAT = "mechgrok-run"
SCHEMA_VERSION = 1

# Example-pass counters: one unit is one example through a forward (or backward) pass.
PASS_COUNTERS = ("fwd_regular", "bwd_regular", "fwd_extra", "bwd_extra", "fwd_eval")
# Wall time by kind of work: regular steps, replay extra steps, evaluation, file writes.
TIMERS = ("regular", "extra", "eval", "write")
# The `status` values of a finished run (training will not continue it); `running` is the other one.
FINISHED = ("complete", "diverged")

METRIC_COLUMNS = {
    "step": np.int64,
    "train_loss": np.float64,
    "train_acc": np.float64,
    "test_loss": np.float64,
    "test_acc": np.float64,
    "weight_norm": np.float64,
    "wall_time_s": np.float64,
    **{c: np.int64 for c in PASS_COUNTERS},
}

# Per-event scalar columns; the per-example columns below have dream_k entries a row.
EVENT_COLUMNS = {
    "step": np.int64,
    "event": np.int64,
    "extra_steps": np.int64,
    "checkpointed": np.int8,
    "train_loss_before": np.float64,
    "train_loss_after": np.float64,
    "train_acc_before": np.float64,
    "train_acc_after": np.float64,
    "test_loss_before": np.float64,
    "test_loss_after": np.float64,
    "test_acc_before": np.float64,
    "test_acc_after": np.float64,
    "memory_surprise_mean": np.float64,
    "memory_failures": np.int64,
    "selected_surprise_mean": np.float64,
}
EVENT_EXAMPLE_COLUMNS = {"indices": np.int64, "loss_before": np.float64, "loss_after": np.float64}


def checkpoint_name(step: int, phase: str) -> str:
    """``0000400_before`` (before the replay at step 400) or ``0000400_end`` (end of step 400)."""
    return f"{step:07d}_{phase}"


# HDF5 locks a file while a process has it open: readers share, a writer excludes everyone. Every
# holder here keeps a run file open for one short batch (a few attributes, one checkpoint), so an
# open that meets a lock waits for it instead of failing: without this, a progress reader (the
# sweep's, or a person's) that opened a file the instant training wanted to write killed the run.
LOCK_WAIT_S = 30.0


def _open(path: Path, mode: str) -> h5py.File:
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = 0.01
    while True:
        try:
            return h5py.File(path, mode)
        except BlockingIOError as exc:
            if time.monotonic() >= deadline:
                raise RunFileError(f"{path}: held open by another process for over {LOCK_WAIT_S:g} s "
                                   f"({_first_line(exc)})") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        except (OSError, ValueError) as exc:
            raise RunFileError(f"{path}: not a readable HDF5 run file ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_config_attr(f: h5py.File, path: Path) -> RunConfig:
    if f.attrs.get("format") != FORMAT:
        raise RunFileError(f"{path}: not a mechgrok run file (no format='{FORMAT}' attribute)")
    version = int(f.attrs.get("schema_version", -1))
    if version != SCHEMA_VERSION:
        raise RunFileError(f"{path}: run-file schema version {version}, this mechgrok reads {SCHEMA_VERSION}")
    try:
        return from_json(f.attrs["config"])
    except (KeyError, ConfigError) as exc:
        raise RunFileError(f"{path}: run file has no valid config ({exc})") from None


def read_config(path: str | os.PathLike) -> RunConfig:
    """The config a run file was trained with; RunFileError if it is not a run file."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such run file")
    with _open(path, "r") as f:
        return _read_config_attr(f, path)


def read_attrs(path: str | os.PathLike) -> dict:
    """The file's top-level attributes as plain Python values (validated run file)."""
    path = Path(path)
    read_config(path)
    with _open(path, "r") as f:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}


def prepare(path: str | os.PathLike, cfg: RunConfig, *, resume: bool, overwrite: bool) -> str:
    """Decide what training does with ``path``; touches nothing on disk.

    Returns ``"new"`` (create the file, replacing an existing run only with
    ``overwrite``), ``"resume"`` (continue from the newest resume state),
    ``"extend"`` (with ``resume``: the file holds the same run with a shorter budget,
    ended without grokking, and its final state; continue it to ``cfg.steps``) or
    ``"done"`` (the same run is already finished). Raises RunFileError for
    anything else: a directory, an unreadable or foreign file, a different run.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise RunFileError(f"{path}: exists and is not a file")
    if not path.exists():
        return "new"
    with _open(path, "r") as f:
        stored = _read_config_attr(f, path)
        status = f.attrs.get("status")
        has_resume = _newest_resume_slot(f) is not None
    if overwrite:
        return "new"
    if resume and stored != cfg and extendable(path, stored, cfg):
        return "extend"
    if stored != cfg:
        raise RunFileError(
            f"{path}: holds a different run (config {stored.config_hash()}, asked for {cfg.config_hash()}); "
            "choose another --out or pass --overwrite to replace it")
    if status in FINISHED:
        return "done"
    if not resume:
        raise RunFileError(f"{path}: holds an unfinished run of this config; pass --resume to continue it "
                           "or --overwrite to start again")
    return "resume" if has_resume else "new"


def extendable(path: str | os.PathLike, stored: RunConfig, cfg: RunConfig) -> bool:
    """Whether the run at ``path`` (config ``stored``) can be continued to ``cfg``: the same
    config but a longer budget, finished at its budget without grokking, final state kept."""
    import dataclasses

    if dataclasses.replace(stored, steps=cfg.steps) != cfg or cfg.steps <= stored.steps:
        return False
    with _open(Path(path), "r") as f:
        if f.attrs.get("status") != "complete" or bool(f.attrs.get("grokked")):
            return False
        slot = _newest_resume_slot(f)
        return slot is not None and int(f["resume"][slot].attrs["step"]) == stored.steps


def read_config_from(f: h5py.File) -> RunConfig:
    return from_json(f.attrs["config"])


def create(path: str | os.PathLike, cfg: RunConfig, meta: dict, train_idx: np.ndarray, test_idx: np.ndarray) -> None:
    """Write a new run file (metadata, split, empty tables), atomically replacing ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["config"] = cfg.to_json()
        f.attrs["config_hash"] = cfg.config_hash()
        f.attrs["variant"] = cfg.variant()
        for key, value in meta.items():
            f.attrs[key] = value if isinstance(value, (bool, int, float)) else str(value)
        f.attrs["status"] = "running"
        f.attrs["grokked"] = False
        f.attrs["grok_step"] = -1
        f.attrs["memorised_step"] = -1
        f.attrs["time_to_grok"] = -1
        f.attrs["last_step"] = 0
        split = f.create_group("split")
        split.attrs["p"] = cfg.p
        split.create_dataset("train_idx", data=np.asarray(train_idx, dtype=np.int64))
        split.create_dataset("test_idx", data=np.asarray(test_idx, dtype=np.int64))
        metrics = f.create_group("metrics")
        for name, dtype in METRIC_COLUMNS.items():
            metrics.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(256,))
        events = f.create_group("events")
        events.attrs["k"] = cfg.dream_k
        for name, dtype in EVENT_COLUMNS.items():
            events.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(64,))
        for name, dtype in EVENT_EXAMPLE_COLUMNS.items():
            events.create_dataset(name, shape=(0, cfg.dream_k), maxshape=(None, cfg.dream_k), dtype=dtype,
                                  chunks=(8, cfg.dream_k))
        f.create_group("checkpoints")
        f.create_group("resume")
    os.replace(tmp, path)


class RunWriter:
    """Open a run file for one batch of writes: ``with RunWriter(path) as w: ...``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self) -> "RunWriter":
        self.f = _open(self.path, "r+")
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()

    # ---- tables ---------------------------------------------------------------
    def _extend(self, group: str, rows: list[dict]) -> None:
        g = self.f[group]
        for row in rows:
            if set(g.keys()) != set(row):
                raise ValueError(f"row for /{group} has columns {sorted(row)}, the table {sorted(g.keys())}")
        if not rows:
            return
        n = g["step"].shape[0]
        for name in rows[0]:
            ds = g[name]
            ds.resize(n + len(rows), axis=0)
            ds[n:] = np.asarray([row[name] for row in rows], dtype=ds.dtype)

    def append_metrics(self, row: dict) -> None:
        self._extend("metrics", [row])

    def append_event(self, row: dict) -> None:
        self._extend("events", [row])

    def extend_metrics(self, rows: list[dict]) -> None:
        """Several metrics rows in one write per column (the same table as appending them one by one)."""
        self._extend("metrics", rows)

    def extend_events(self, rows: list[dict]) -> None:
        """Several event rows in one write per column."""
        self._extend("events", rows)

    # ---- checkpoints ----------------------------------------------------------
    def write_checkpoint(self, step: int, phase: str, reasons: list[str], arrays: dict[str, np.ndarray] | None,
                         link_to: str | None = None) -> str:
        """Write weights as one dataset per state_dict key, or add ``reasons`` to an existing group.

        With ``link_to`` the datasets are hard links to another checkpoint's
        (same weights, no extra storage), as for the baseline's ``end`` at an
        event step, which equals its ``before``.
        """
        name = checkpoint_name(step, phase)
        ckpts = self.f["checkpoints"]
        if name in ckpts and ckpts[name].attrs.get("complete", False):
            g = ckpts[name]
            g.attrs["reasons"] = json.dumps(sorted(set(json.loads(g.attrs["reasons"])) | set(reasons)))
            return name
        if name in ckpts:
            del ckpts[name]
        g = ckpts.create_group(name)
        g.attrs["step"] = step
        g.attrs["phase"] = phase
        g.attrs["reasons"] = json.dumps(sorted(set(reasons)))
        if link_to is not None:
            src = ckpts[link_to]
            for key in src:
                g[key] = src[key]
        else:
            for key, value in arrays.items():
                g.create_dataset(key, data=value)
        g.attrs["complete"] = True
        return name

    # ---- resume state ---------------------------------------------------------
    def write_resume(self, step: int, arrays: dict[str, np.ndarray], info: dict) -> None:
        """Store the resume state of the end of ``step`` in the older of two slots."""
        res = self.f["resume"]
        newest = _newest_resume_slot(self.f)
        slot = "slot1" if newest == "slot0" else "slot0"
        g = res.require_group(slot)
        g.attrs["complete"] = False
        for key, value in arrays.items():
            value = np.asarray(value)
            if key in g and g[key].shape == value.shape and g[key].dtype == value.dtype:
                g[key][...] = value
            else:
                if key in g:
                    del g[key]
                g.create_dataset(key, data=value)
        g.attrs["step"] = step
        g.attrs["info"] = json.dumps(info)
        g.attrs["complete"] = True

    def truncate_after(self, step: int) -> None:
        """Forget everything recorded after ``step`` and every incomplete group."""
        for group in ("metrics", "events"):
            g = self.f[group]
            keep = int(np.searchsorted(g["step"][...], step, side="right"))
            for ds in g.values():
                ds.resize(keep, axis=0)
        ckpts = self.f["checkpoints"]
        for name in list(ckpts):
            g = ckpts[name]
            if not g.attrs.get("complete", False) or int(g.attrs["step"]) > step:
                del ckpts[name]

    def extend_budget(self, cfg: RunConfig, step: int) -> None:
        """Make a finished shorter-budget run the run of ``cfg``: new config attributes, and the
        ``final`` reason dropped from the checkpoint of its last step (training continues)."""
        self.f.attrs["config"] = cfg.to_json()
        self.f.attrs["config_hash"] = cfg.config_hash()
        self.f.attrs["variant"] = cfg.variant()
        for g in self.f["checkpoints"].values():
            if int(g.attrs["step"]) == step:
                reasons = [r for r in json.loads(g.attrs["reasons"]) if r != "final"]
                g.attrs["reasons"] = json.dumps(sorted(reasons))

    def set_attrs(self, **attrs) -> None:
        for key, value in attrs.items():
            self.f.attrs[key] = value


def _newest_resume_slot(f: h5py.File) -> str | None:
    best, best_step = None, -1
    for name, g in f.get("resume", {}).items():
        if g.attrs.get("complete", False) and int(g.attrs["step"]) > best_step:
            best, best_step = name, int(g.attrs["step"])
    return best


def read_resume(path: str | os.PathLike) -> tuple[int, dict[str, np.ndarray], dict]:
    """The newest complete resume state: (step, arrays by path, info)."""
    path = Path(path)
    with _open(path, "r") as f:
        slot = _newest_resume_slot(f)
        if slot is None:
            raise RunFileError(f"{path}: no complete resume state to continue from")
        g = f["resume"][slot]
        arrays = {}
        g.visititems(lambda name, obj: arrays.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None)
        return int(g.attrs["step"]), arrays, json.loads(g.attrs["info"])


def read_table(path: str | os.PathLike, group: str) -> dict[str, np.ndarray]:
    """All columns of ``/metrics`` or ``/events`` as arrays."""
    with _open(Path(path), "r") as f:
        return {name: ds[...] for name, ds in f[group].items()}


def list_checkpoints(path: str | os.PathLike) -> list[dict]:
    """Complete checkpoints in step order: name, step, phase, reasons."""
    out = []
    with _open(Path(path), "r") as f:
        for name, g in f["checkpoints"].items():
            if g.attrs.get("complete", False):
                out.append({"name": name, "step": int(g.attrs["step"]), "phase": str(g.attrs["phase"]),
                            "reasons": json.loads(g.attrs["reasons"])})
    return sorted(out, key=lambda c: (c["step"], c["phase"] != "before"))


def read_checkpoint(path: str | os.PathLike, name: str) -> dict[str, np.ndarray]:
    """Weights of one complete checkpoint, by state_dict key."""
    path = Path(path)
    with _open(path, "r") as f:
        g = f["checkpoints"].get(name)
        if g is None or not g.attrs.get("complete", False):
            raise RunFileError(f"{path}: no complete checkpoint {name!r}")
        return {key: ds[...] for key, ds in g.items()}


# ---- analysis results: /analysis/<name> -----------------------------------------------------------
def write_analysis(path: str | os.PathLike, name: str, arrays: dict[str, np.ndarray], attrs: dict) -> None:
    """Store an analysis's results as ``/analysis/<name>``, replacing an earlier result.

    The new group is written under a temporary name and moved into place with its
    ``complete`` attribute last, so a crash leaves either the old result or none.
    Training data (metrics, events, checkpoints) is never touched.
    """
    with _open(Path(path), "r+") as f:
        root = f.require_group("analysis")
        tmp = f"{name}.tmp"
        if tmp in root:
            del root[tmp]
        g = root.create_group(tmp)
        for key, value in arrays.items():
            g.create_dataset(key, data=np.asarray(value))
        for key, value in attrs.items():
            g.attrs[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
        if name in root:
            del root[name]
        root.move(tmp, name)
        root[name].attrs["complete"] = True


def read_analysis(path: str | os.PathLike, name: str) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and attributes of ``/analysis/<name>``; RunFileError if it is absent or incomplete.
    Lists and dicts, which write_analysis stores as JSON text, come back decoded."""
    path = Path(path)
    with _open(path, "r") as f:
        g = f.get("analysis", {}).get(name)
        if g is None or not g.attrs.get("complete", False):
            raise RunFileError(f"{path}: no '{name}' analysis (run python -m mechgrok.analyze {name} {path})")
        arrays = {}
        g.visititems(lambda key, obj: arrays.__setitem__(key, obj[...]) if isinstance(obj, h5py.Dataset) else None)
        return arrays, _decoded_attrs(g)


def read_analysis_attrs(path: str | os.PathLike) -> dict[str, dict]:
    """Attributes (summaries) of every complete ``/analysis/<name>`` group, by name, without
    reading their arrays; JSON text decoded as in read_analysis."""
    path = Path(path)
    out = {}
    with _open(path, "r") as f:
        for name, g in f.get("analysis", {}).items():
            if g.attrs.get("complete", False):
                out[name] = _decoded_attrs(g)
    return out


def _decoded_attrs(g) -> dict:
    attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in g.attrs.items()}
    return {k: json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for k, v in attrs.items()}


# ---- the training lock: <run file>.lock -----------------------------------------------------------
LOCK_SUFFIX = ".lock"


@contextlib.contextmanager
def run_lock(path: str | os.PathLike):
    """Hold an exclusive lock on ``<path>.lock`` while training or analysing ``path`` (RunLockedError
    if another process holds it). The lock dies with its process; the file is removed on exit.

    The holder removes the lock file before it lets go, so a process that opened the file just
    before that finds, once it has the lock, a file no longer at ``<path>.lock``; it then starts
    over on the path's current file, and two processes never both hold the lock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = _lock_path(path)
    while True:
        try:
            fh = open(lock_path, "a")
        except OSError as exc:
            raise RunFileError(f"{path}: cannot make its lock file {lock_path.name} ({exc.strerror})") from None
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(f"{path}: is in use by another process (training or analysis); "
                                     "try again when it has finished") from None
            if not _same_file(fh, lock_path):
                continue  # its holder removed it and let go between our open and our lock
            try:
                yield
            finally:
                lock_path.unlink(missing_ok=True)
            return


def lock_held(path: str | os.PathLike) -> bool:
    """Whether a live process holds ``path``'s lock now. A lock file whose holder died without
    removing it (SIGKILL) is not held. Asks with a shared lock held for an instant, so a process
    taking the lock in that same instant is refused as if the lock were held; creates nothing."""
    try:
        fd = os.open(_lock_path(path), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing lets go of the shared lock, if taken
    return False


def _lock_path(path: str | os.PathLike) -> Path:
    """Where the lock of run file ``path`` lives: ``<path>.lock``."""
    return Path(str(path) + LOCK_SUFFIX)


def _same_file(fh, path: Path) -> bool:
    """Whether the open file ``fh`` is still the file at ``path``."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fh.fileno())
    return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)
