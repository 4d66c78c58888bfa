"""The results table: one row per run file, the input of statistics, report and figures.

:func:`find_run_files` searches folders for run files; :func:`summarise` reads one
file's attributes and tables into a flat row; :func:`collect` does both and keeps
going past bad files (returned as problems, never fatal). ``write_csv`` and
``read_csv`` store the table as ``results/runs.csv``.

``variant`` is the regime reading without the step budget (``RunConfig.reading``):
runs of one reading with different budgets sample one time-to-grok distribution,
each censored at its own budget (``budget``), which Kaplan-Meier and the log-rank
test allow. Time-to-grok is right-censored: a finished run that never reached the grok
threshold contributes ``time_to_grok = last_step`` with ``grokked = False``. A run
that is still training (status ``running``) is *not* a censored observation: its
row has ``finished = False`` and statistics leave it out. ``steps_trained`` is the last
step the run reached (a grokked run trains on for ``stop_after_grok`` steps); compute
per step is ``process_seconds(row) / steps_trained``.

The table also carries what the report needs from each file, so that it outlives the
file: the per-run replay-event effects (``event_drop``, ``event_test_change``, C5) and
the summaries of the analyses stored in the file (``ANALYSIS_COLUMNS``; NaN where an
analysis has not been run). :func:`carry` merges the rows of an earlier table whose
run files are not on this machine: they enter every statistic computed from rows, and
are never read from a file (:func:`has_file`). The learning curves travel beside the table, in a curves table
(``curves.csv``: :func:`write_curves`, :func:`read_curves`, :func:`curve`), and so do the
analyses' per-checkpoint series that the report and figures read (``analyses.csv``:
:data:`CARRIED_ANALYSES`, :func:`write_analyses`, :func:`read_analyses`, :func:`analysis`).
:func:`load` reads run files and an earlier table (with its curves and series) in one call.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from . import runstore
from .errors import MechgrokError, RunFileError

COLUMNS = ("variant", "regime", "split", "batch_size", "arm", "seed", "status", "finished", "grokked",
           "time_to_grok", "budget", "steps_trained", "peak_test_acc", "final_test_acc", "final_train_acc",
           "memorised_step", "events", "extra_updates", "regular_passes", "extra_passes", "surprise_ratio",
           "selected_surprise", "event_drop", "event_test_change", "emergence_step", "emergence_event_distance",
           "final_top_share", "logit_emergence_step", "final_logit_restricted_loss", "median_event_ratio", "mem_alg_barrier_train", "mem_alg_chord_barrier_train",
           "mem_final_chord_barrier_train", "median_event_barrier_train", "probe_acc_sum", "device", "threads", "batch_runs",
           "denormals_flushed", "config_hash", "wall_time_s", "path")

# summaries of the analyses stored in a run file: column -> (analysis, attribute)
ANALYSIS_COLUMNS = {
    "emergence_step": ("fourier", "emergence_step"),
    "emergence_event_distance": ("fourier", "emergence_event_distance"),
    "final_top_share": ("fourier", "final_top_share"),
    "logit_emergence_step": ("fourier", "logit_emergence_step"),
    "final_logit_restricted_loss": ("fourier", "final_logit_restricted_loss"),
    "median_event_ratio": ("norms", "median_event_ratio"),
    "mem_alg_barrier_train": ("landscape", "mem_alg_barrier_train"),
    "mem_alg_chord_barrier_train": ("landscape", "mem_alg_chord_barrier_train"),
    "mem_final_chord_barrier_train": ("landscape", "mem_final_chord_barrier_train"),
    "median_event_barrier_train": ("landscape", "median_event_barrier_train"),
}
# every per-run summary column the report reads instead of a file: replay-event effects (C5), the
# analysis summaries, and the (a+b) probe accuracy; NaN where unknown (tables older than them too)
EVENT_EFFECT_COLUMNS = ("event_drop", "event_test_change")
SUMMARY_COLUMNS = (*ANALYSIS_COLUMNS, "probe_acc_sum")


def _batch_runs(row: dict) -> int:
    return max(1, int(row.get("batch_runs", 1) or 1))


def device_of(row: dict) -> str:
    """The device a run was trained on ('cpu', 'cuda'), or 'unknown' where its file does not say."""
    return row["device"] or "unknown"


def process_seconds(row: dict) -> float:
    """The run's share of its training process's wall time: ``wall_time_s``, divided by
    ``batch_runs`` for a run trained in a batch (whose ``wall_time_s`` is the whole batch's)."""
    return row["wall_time_s"] / _batch_runs(row)


def compute_text(rows: list[dict], batch_note: bool = True) -> str:
    """Training compute of ``rows`` per device, e.g. '13.6 process-hours on cpu, 0.4 process-hours on
    cuda (a batched run is charged 1/R of its batch)'; the note in brackets only with ``batch_note``."""
    by: dict[str, float] = {}
    for r in rows:
        device = device_of(r)
        by[device] = by.get(device, 0.0) + process_seconds(r)
    if not by:
        return "no training compute"
    parts = [f"{s / 3600:.1f} process-hours on {d}" for d, s in sorted(by.items())]
    batched = any(_batch_runs(r) > 1 for r in rows)
    return ", ".join(parts) + (" (a batched run is charged 1/R of its batch)" if batched and batch_note else "")


def compute_bounds_text(rows: list[dict]) -> str:
    """Training compute of the finished ``rows`` as two bounds: each seed's longest run only
    (``finished``), and every finished budget. A longer run extended from a copy of a shorter one
    carries the shorter one's wall time, so the first bound counts that time once and the second
    twice; a shorter run trained separately counts only in the second. The run files do not record
    which happened, so the true total is only known to lie between the two."""
    longest, every = finished(rows), [r for r in rows if r["finished"]]
    lo, hi = compute_text(longest, batch_note=False), compute_text(every, batch_note=False)
    text = lo if lo == hi else f"{lo} (each seed's longest run) to {hi} (every finished budget)"
    return text + ("; a batched run is charged 1/R of its batch" if any(_batch_runs(r) > 1 for r in every) else "")


def find_run_files(paths) -> list[Path]:
    """Every ``*.h5`` file in ``paths`` (files, or folders searched recursively), sorted.
    Raises MechgrokError if a path does not exist or nothing is found."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(q for q in p.rglob("*.h5") if q.is_file())
        else:
            raise MechgrokError(f"{p}: no such file or folder")
    if not found:
        raise MechgrokError(f"no run files (*.h5) under {', '.join(map(str, paths))}")
    return sorted(set(found))


def has_file(row: dict) -> bool:
    """Whether the row was read from its run file, which is on this machine (a row carried from an
    earlier table was not: its file may be gone, or hold a run being trained again)."""
    return not row.get("carried") and Path(row["path"]).is_file()


def event_effects(arm: str, events: dict, metrics: dict) -> tuple[float, float]:
    """One run's replay-event effects (C5): the mean train-accuracy drop over its replay events
    (in baseline, over every aligned event, where nothing is replayed), and the mean change of
    test accuracy from just before an event to the next evaluation after it. NaN without events."""
    if not len(events["step"]):
        return math.nan, math.nan
    sel = np.ones(len(events["step"]), bool) if arm == "baseline" else events["extra_steps"] > 0
    if not sel.any():
        return math.nan, math.nan
    drop = float(np.mean(events["train_acc_before"][sel] - events["train_acc_after"][sel]))
    changes = []
    for s, before in zip(events["step"][sel], events["test_acc_before"][sel]):
        later = np.nonzero(metrics["step"] > s)[0]
        if len(later):
            changes.append(metrics["test_acc"][later[0]] - before)
    return drop, float(np.mean(changes)) if changes else math.nan


def current_analyses(path: str | os.PathLike) -> dict[str, dict]:
    """Attributes of the file's analyses that were run on the run as it is now: an analysis whose
    ``last_step`` is not the run's (it was run before the run was resumed or extended) is stale and
    left out, so its summaries and series never stand for the longer run."""
    last = int(runstore.read_attrs(path).get("last_step", 0))
    return {name: a for name, a in runstore.read_analysis_attrs(path).items() if int(a.get("last_step", -1)) == last}


def _analysis_summaries(path: Path) -> dict:
    """ANALYSIS_COLUMNS and ``probe_acc_sum`` (held-out accuracy of the (a+b) probe on the last
    layer at the final checkpoint) from the file's /analysis groups; NaN where absent."""
    out = {col: math.nan for col in SUMMARY_COLUMNS}
    attrs = current_analyses(path)
    for col, (name, key) in ANALYSIS_COLUMNS.items():
        value = attrs.get(name, {}).get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[col] = float(value)
    final = attrs.get("probes", {}).get("final")
    if isinstance(final, dict) and final.get("acc_sum"):
        out["probe_acc_sum"] = float(final["acc_sum"][-1])
    return out


def summarise(path: str | os.PathLike) -> dict:
    """One row of the results table (see COLUMNS) for the run file at ``path``."""
    path = Path(path)
    cfg = runstore.read_config(path)
    attrs = runstore.read_attrs(path)
    metrics = runstore.read_table(path, "metrics")
    events = runstore.read_table(path, "events")
    status = str(attrs.get("status"))
    grokked = bool(attrs.get("grokked"))
    last = int(attrs.get("last_step", 0))
    # surprise of the replayed examples relative to the memory's mean (C10), at events with
    # replay before grokking (all events if the run never grokked)
    replayed = events["extra_steps"] > 0 if len(events["step"]) else np.zeros(0, bool)
    if grokked:
        replayed &= events["step"] <= int(attrs["grok_step"])
    sel, mem = events["selected_surprise_mean"][replayed], events["memory_surprise_mean"][replayed]
    ratio = float(np.mean(sel / mem)) if replayed.any() else math.nan
    drop, change = event_effects(cfg.arm, events, metrics)
    return {
        "variant": cfg.reading(), "regime": cfg.regime, "split": cfg.split,
        "batch_size": "full" if cfg.batch_size is None else cfg.batch_size, "arm": cfg.arm, "seed": cfg.seed,
        "status": status, "finished": status in runstore.FINISHED, "grokked": grokked,
        "time_to_grok": int(attrs["grok_step"]) if grokked else last, "budget": cfg.steps, "steps_trained": last,
        "peak_test_acc": float(np.max(metrics["test_acc"])) if len(metrics["test_acc"]) else math.nan,
        "final_test_acc": float(metrics["test_acc"][-1]) if len(metrics["test_acc"]) else math.nan,
        "final_train_acc": float(metrics["train_acc"][-1]) if len(metrics["train_acc"]) else math.nan,
        "memorised_step": int(attrs.get("memorised_step", -1)), "events": int(len(events["step"])),
        "extra_updates": int(events["extra_steps"].sum()) if len(events["step"]) else 0,
        "regular_passes": int(attrs.get("passes_fwd_regular", 0)), "extra_passes": int(attrs.get("passes_fwd_extra", 0)),
        "surprise_ratio": ratio, "selected_surprise": float(np.mean(sel)) if replayed.any() else math.nan,
        "event_drop": drop, "event_test_change": change, **_analysis_summaries(path),
        "device": str(attrs.get("device", "")), "threads": int(attrs.get("threads", 0)),  # 0: not recorded
        "batch_runs": int(attrs.get("batch_runs", 1)),
        "denormals_flushed": bool(attrs.get("denormals_flushed", False)),  # absent: trained before the flag
        "config_hash": str(attrs.get("config_hash", cfg.config_hash())),
        "wall_time_s": float(attrs.get("wall_time_s", math.nan)), "path": str(path),
    }


def no_runs_error(paths, problems: list[str], what: str = "finished runs", table=None,
                  detail: str = "") -> MechgrokError:
    """The one-line error of a command that found no ``what`` under ``paths`` (nor in ``table``),
    naming the first file it could not read, if any; ``detail`` follows in parentheses."""
    msg = f"no {what} under {', '.join(map(str, paths))}" + (f" and none in {table}" if table else "")
    msg += f" ({detail})" if detail else ""
    if problems:
        msg += f"; could not read {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    return MechgrokError(msg)


def collect(paths, allow_empty: bool = False) -> tuple[list[dict], list[str]]:
    """Rows for every readable run file under ``paths``, and one line per file that is not.
    With ``allow_empty``, folders without run files give no rows instead of an error."""
    rows, problems = [], []
    try:
        files = find_run_files(paths)
    except MechgrokError:
        if not allow_empty or not all(Path(p).exists() for p in paths):
            raise
        files = []
    for path in files:
        try:
            rows.append(summarise(path))
        except (RunFileError, KeyError, OSError) as exc:
            problems.append(str(exc) if isinstance(exc, RunFileError) else f"{path}: unreadable run file ({exc})")
    return rows, problems


# ---- learning curves: results/curves.csv, one line per run, so the curves outlive the files ----
CURVE_COLUMNS = ("config_hash", "step", "test_acc", "train_acc", "replay_steps")


def four_digits(value) -> str:
    """A float as the curves and analyses tables write it: 4 significant digits."""
    return f"{value:.4g}"


def curve_of(path: str | os.PathLike) -> dict:
    """A run's learning curve from its file: evaluation steps, test and train accuracy, and the
    steps of its replay events that replayed something (arrays)."""
    m, ev = runstore.read_table(path, "metrics"), runstore.read_table(path, "events")
    replay = ev["step"][ev["extra_steps"] > 0] if len(ev["step"]) else np.zeros(0, np.int64)
    return {"step": np.asarray(m["step"]), "test_acc": np.asarray(m["test_acc"]),
            "train_acc": np.asarray(m["train_acc"]), "replay_steps": np.asarray(replay)}


def curve(row: dict) -> dict | None:
    """The row's learning curve: from its file where it is here, else the one carried with the
    row from an earlier curves table (None if neither)."""
    return curve_of(row["path"]) if has_file(row) else row.get("curve")


def write_curves(rows: list[dict], path: str | os.PathLike) -> None:
    """The learning curves of the finished rows that have one (``curve``), one line per run:
    space-separated values, accuracies to 4 significant digits (enough for a figure)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CURVE_COLUMNS)
        for r in sorted(rows, key=lambda r: (r["variant"], r["arm"], r["seed"], r["budget"])):
            c = curve(r) if r["finished"] else None
            if c is not None:
                w.writerow([r["config_hash"], " ".join(str(int(v)) for v in c["step"]),
                            *(" ".join(map(four_digits, c[k])) for k in ("test_acc", "train_acc")),
                            " ".join(str(int(v)) for v in c["replay_steps"])])


def read_curves(path: str | os.PathLike) -> dict[str, dict]:
    """config_hash -> learning curve (as ``curve_of``) from a curves table (``write_curves``)."""
    out = {}
    try:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                c = {"step": np.array(r["step"].split(), np.int64),
                     "test_acc": np.array(r["test_acc"].split(), np.float64),
                     "train_acc": np.array(r["train_acc"].split(), np.float64),
                     "replay_steps": np.array(r["replay_steps"].split(), np.int64)}
                if not len(c["step"]) == len(c["test_acc"]) == len(c["train_acc"]):
                    raise ValueError(f"run {r['config_hash']}: series of different lengths")
                out[r["config_hash"]] = c
    except (KeyError, ValueError, AttributeError, OSError, csv.Error) as exc:
        raise MechgrokError(f"{path}: not a readable curves table ({type(exc).__name__}: {exc})") from None
    return out


# ---- analysis series: results/analyses.csv, so C6 and the analysis figures outlive the files ----
# What the report and the figures read from each /analysis/<name> group: (arrays, attributes).
# Every reader goes through ``analysis``, so a run read from its file and one carried from the
# table give the same inputs. Each attribute set also holds ``p`` (the run's modulus).
CARRIED_ANALYSES = {
    "fourier": (("step", "top_share", "restricted_loss", "excluded_loss", "we_norms", "logit_restricted_loss"),
                ("emergence_step", "final_top_share", "logit_emergence_step")),
    "norms": (("step", "total", "dist_init"), ()),
    "landscape": (("kind", "t", "train_loss", "test_loss"), ()),
    "probes": (("step", "acc_sum"), ()),
}
# Series a verdict is computed from (C6's differences of top-5 shares, some ~1e-5, and its ratios of
# logit restricted losses), carried exactly.
EXACT_SERIES = {("fourier", "top_share"), ("fourier", "logit_restricted_loss")}
ANALYSES_COLUMNS = ("config_hash", "analysis", "part", "key", "dtype", "shape", "values")


def analysis_of(path: str | os.PathLike, name: str) -> tuple[dict, dict]:
    """The carried part (CARRIED_ANALYSES) of a file's ``/analysis/<name>``: arrays (strings
    decoded) and attributes, plus ``p``. RunFileError where the analysis is absent or stale
    (``current_analyses``)."""
    if name not in current_analyses(path):
        raise RunFileError(f"{path}: no current '{name}' analysis (python -m mechgrok.analyze {name} {path})")
    arrays, attrs = runstore.read_analysis(path, name)
    keys, attr_keys = CARRIED_ANALYSES[name]
    out = {}
    for k in (k for k in keys if k in arrays):  # an analysis stored before a key existed lacks it
        a = np.asarray(arrays[k])
        out[k] = np.char.decode(a, "utf-8") if a.dtype.kind == "S" else a
    kept = {k: attrs[k] for k in attr_keys if k in attrs}
    return out, {**kept, "p": runstore.read_config(path).p}


def analysis(row: dict, name: str) -> tuple[dict, dict] | None:
    """The row's analysis ``name`` (as ``analysis_of``): from its file where it is here, else the
    one carried with the row from an earlier analyses table; None if neither holds it."""
    if has_file(row):
        try:
            return analysis_of(row["path"], name)
        except MechgrokError:
            return None
    return row.get("analyses", {}).get(name)


def _cells(a: np.ndarray, exact: bool) -> tuple[str, str]:
    """dtype code and text of an array: integers and strings as they are, floats to 4 significant
    digits, or (``exact``) to full precision."""
    if a.dtype.kind in "iub":
        return "i", " ".join(str(int(v)) for v in a.ravel())
    if a.dtype.kind == "f":
        return "f", " ".join(repr(float(v)) if exact else four_digits(v) for v in a.ravel())
    if any(" " in str(v) or not str(v) for v in a.ravel()):
        raise MechgrokError(f"cannot carry strings with spaces or empty strings: {a.ravel()[:3]}")
    return "s", " ".join(str(v) for v in a.ravel())


def write_analyses(rows: list[dict], path: str | os.PathLike) -> None:
    """The carried analyses (``analysis``) of the finished rows, every budget of a seed (C6, the
    mechanistic table and the figures use a seed's longest run that has one, ``analysed``), one line
    per array or attribute: space-separated values in row-major order with their shape; array floats
    to 4 significant digits (enough for a figure), attributes and the series a verdict reads
    (EXACT_SERIES) exact, so the report from the tables alone gives the same numbers."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(ANALYSES_COLUMNS)
        done = [r for r in rows if r["finished"]]
        for r in sorted(done, key=lambda r: (r["variant"], r["arm"], r["seed"], r["budget"])):
            for name in CARRIED_ANALYSES:
                item = analysis(r, name)
                if item is None:
                    continue
                for part, values in zip(("array", "attr"), item):
                    for key, value in values.items():
                        a = np.asarray(value)
                        dtype, text = _cells(a, exact=part == "attr" or (name, key) in EXACT_SERIES)
                        w.writerow([r["config_hash"], name, part, key, dtype, "x".join(map(str, a.shape)), text])


def read_analyses(path: str | os.PathLike) -> dict[str, dict[str, tuple[dict, dict]]]:
    """config_hash -> analysis name -> (arrays, attributes), from an analyses table
    (``write_analyses``); 0-d attributes come back as Python numbers or strings."""
    out: dict[str, dict[str, tuple[dict, dict]]] = {}
    types = {"i": np.int64, "f": np.float64, "s": str}
    try:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                shape = tuple(int(n) for n in r["shape"].split("x")) if r["shape"] else ()
                a = np.array(r["values"].split(), dtype=types[r["dtype"]]).reshape(shape)
                arrays, attrs = out.setdefault(r["config_hash"], {}).setdefault(r["analysis"], ({}, {}))
                if r["part"] == "array":
                    arrays[r["key"]] = a
                elif r["part"] == "attr":
                    attrs[r["key"]] = a.item()
                else:
                    raise ValueError(f"part {r['part']!r}")
    except (KeyError, ValueError, TypeError, AttributeError, OSError, csv.Error) as exc:
        raise MechgrokError(f"{path}: not a readable analyses table ({type(exc).__name__}: {exc})") from None
    return out


def load(paths, table: str | os.PathLike | None = None) -> tuple[list[dict], list[str], int]:
    """Rows of the run files under ``paths`` plus, with ``table`` (an earlier runs.csv), its
    finished rows whose files are not here (``carry``) with their curves and analysis series from
    the curves.csv and analyses.csv beside it (where present); also the unreadable files and how
    many rows were carried."""
    table_rows = read_csv(table) if table is not None else []
    side = {}
    for name, reader in (("curves.csv", read_curves), ("analyses.csv", read_analyses)):
        p = Path(table).with_name(name) if table is not None else None
        side[name] = reader(p) if p is not None and p.is_file() else {}
    rows, problems = collect(paths, allow_empty=bool(table_rows))
    rows, n_carried = carry(rows, table_rows, side["curves.csv"], side["analyses.csv"])
    return rows, problems, n_carried


def carry(rows: list[dict], table: list[dict], curves: dict | None = None,
          analyses: dict | None = None) -> tuple[list[dict], int]:
    """``rows`` (read from run files) plus the finished rows of an earlier results table
    (``read_csv``) whose run files are not on this machine, and how many were carried.

    A run is identified by its ``config_hash`` (the whole configuration, seed and budget
    included) or its path: a finished run read from a file replaces the table row of the
    same run. A table row stays while its run is being trained again here (its file is
    unfinished). Unfinished table rows are dropped: they never were observations. Carried
    rows are marked ``carried`` and never read from a file (``has_file`` is False); with
    ``curves`` (``read_curves`` of the earlier curves table), each takes its learning curve, and with
    ``analyses`` (``read_analyses``) its analysis series."""
    done = [r for r in rows if r["finished"]]
    have = {r["config_hash"] for r in done} | {str(Path(r["path"])) for r in done}
    curves, analyses = curves or {}, analyses or {}
    carried = [{**r, "carried": True, "curve": curves.get(r["config_hash"]),
                "analyses": analyses.get(r["config_hash"], {})} for r in table
               if r["finished"] and r["config_hash"] not in have and str(Path(r["path"])) not in have]
    return rows + carried, len(carried)


def analysed(rows: list[dict], name: str, series: str | None = None) -> list[tuple[dict, dict, dict]]:
    """(row, arrays, attrs) of analysis ``name`` (``analysis``: its file, or carried), one per
    (variant, arm, seed), from its longest finished run that has it: a longer run without it (carried
    from the table without series) does not hide it. With ``series``, only analyses that hold that
    array count (an analysis stored before the series existed lacks it). Each run's analysis is read once."""
    items = {id(r): item for r in rows if r["finished"] and (item := analysis(r, name)) is not None
             and (series is None or series in item[0])}
    return [(r, *items[id(r)]) for r in finished(rows, keep=lambda r: id(r) in items)]


def shared_checkpoints(a: dict, b: dict, key: str) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The checkpoints after step 0 that two analyses' series both have (step 0 is the same
    initialisation in both arms of a seed), and series ``key`` of each at them (C6 and its figure)."""
    steps = sorted(set(a["step"][a["step"] > 0].tolist()) & set(b["step"].tolist()))
    ia = [int(np.nonzero(a["step"] == t)[0][-1]) for t in steps]
    ib = [int(np.nonzero(b["step"] == t)[0][-1]) for t in steps]
    return steps, np.asarray(a[key], float)[ia], np.asarray(b[key], float)[ib]


def capped_loss_ratio(x: np.ndarray, y: np.ndarray, p: int) -> np.ndarray:
    """x / y of two restricted losses, each first capped at chance, ln p, and floored at 1e-12 (a loss
    of exactly 0 stays finite). A restricted loss above chance means the Fourier-restricted logits
    predict worse than uniform: no Fourier solution, however far above; so two runs that both lack
    one compare as equal (ratio 1), not by how confidently wrong each is (C6 and its figure)."""
    cap = math.log(p)
    return np.clip(x, 1e-12, cap) / np.clip(y, 1e-12, cap)


def finished(rows: list[dict], keep=None) -> list[dict]:
    """Finished runs, one per (variant, arm, seed): where one seed was run with several budgets
    (the same trajectory, cut at different steps), the run with the largest budget; with ``keep``
    (a predicate on a row), the largest budget among the runs it keeps (e.g. those analysed)."""
    best: dict[tuple, dict] = {}
    for r in rows:
        if not r["finished"] or (keep is not None and not keep(r)):
            continue
        key = (r["variant"], r["arm"], r["seed"])
        if key not in best or (r["budget"], r["grokked"]) > (best[key]["budget"], best[key]["grokked"]):
            best[key] = r
    return sorted(best.values(), key=lambda r: (r["variant"], r["arm"], r["seed"]))


def seed_ranges(seeds) -> str:
    """Seeds with three or more consecutive numbers written as a range: [0, 1, 2, 3, 7, 8, 42] ->
    '0-3, 7, 8, 42'."""
    runs: list[list[int]] = []
    for s in sorted(set(seeds)):
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def select(rows: list[dict], **match) -> list[dict]:
    """Rows whose columns equal every ``match`` value."""
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def write_csv(rows: list[dict], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in sorted(rows, key=lambda r: (r["variant"], r["arm"], r["seed"])):
            w.writerow({k: r[k] for k in COLUMNS})


def read_csv(path: str | os.PathLike) -> list[dict]:
    ints = ("seed", "time_to_grok", "budget", "steps_trained", "memorised_step", "events", "extra_updates",
            "regular_passes", "extra_passes", "threads", "batch_runs")
    floats = ("peak_test_acc", "final_test_acc", "final_train_acc", "surprise_ratio", "selected_surprise",
              "wall_time_s", *EVENT_EFFECT_COLUMNS, *SUMMARY_COLUMNS)
    try:
        return _read_csv(path, ints, floats)
    except (KeyError, ValueError, OSError, csv.Error) as exc:
        raise MechgrokError(f"{path}: not a readable results table ({type(exc).__name__}: {exc})") from None


def _read_csv(path, ints, floats) -> list[dict]:
    rows = []
    # columns that tables written before they existed lack: batch_runs 1, threads unknown (0), no
    # run before the flag flushed subnormals, later analysis columns unknown; steps_trained below
    defaults = {"batch_runs": "1", "threads": "0", "denormals_flushed": "False",
                **{k: "nan" for k in (*EVENT_EFFECT_COLUMNS, *SUMMARY_COLUMNS)}}
    needed = [c for c in (*ints, *floats, "finished", "grokked", "batch_size") if c not in {*defaults, "steps_trained"}]
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in needed if c not in (reader.fieldnames or ())]
        if missing:  # checked on the header, so a table with no rows is refused as well
            raise ValueError(f"no column {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        for r in reader:
            for k, v in defaults.items():
                r.setdefault(k, v)
            r.setdefault("steps_trained", r["time_to_grok"] if r["grokked"] != "True" else "-1")
            for k in ints:
                r[k] = int(r[k])
            for k in floats:
                r[k] = float(r[k])
            for k in ("finished", "grokked", "denormals_flushed"):
                r[k] = r[k] == "True"
            r["batch_size"] = r["batch_size"] if r["batch_size"] == "full" else int(r["batch_size"])
            rows.append(r)
    return rows
