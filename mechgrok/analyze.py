"""Look inside runs: ``python -m mechgrok.analyze {fourier,norms,landscape,probes} PATH... [--csv FILE]``.

PATH is run files or folders (searched recursively). Each analysis runs over
every complete checkpoint of every run, stores its results in the run file as
``/analysis/<name>`` (replacing an earlier result; training data is never
touched; schema in docs/run-file.md), prints a summary line per run, and can
write the per-checkpoint table as CSV. Each analysis is a plain function
(:func:`fourier`, :func:`norms`, :func:`landscape`, :func:`probes`) taking a
:class:`RunView`; the metric definitions live in mechgrok.fourier,
mechgrok.norms, mechgrok.landscape and probes.linear.

One cached forward pass over all p*p inputs per checkpoint (TransformerLens
``run_with_cache`` with only the hooks an analysis needs) serves every metric of
that checkpoint.

Runs that are in use (being trained or analysed: their lock is held) are skipped,
and an analysis holds the lock while it works, so no other process writes the
file meanwhile; runs that stopped unfinished are analysed up to their last
complete checkpoint and reported as partial. Bad paths, foreign or unreadable
files and unknown checkpoints are one line each; the other runs are still analysed, and the exit code is 2 if any
path or run could not be analysed.
"""

from __future__ import annotations

import csv
import functools
import math
import sys
from pathlib import Path

import numpy as np

from . import runstore
from .errors import MechgrokError, RunFileError, out_file

ANALYSES = ("fourier", "norms", "landscape", "probes")
PROG = "python -m mechgrok.analyze"


class SlimRunError(RunFileError):
    """A slim run file (mechgrok.transport): analysing it again would replace results computed on
    every checkpoint by results on the few it kept."""


class RunView:
    """One run file opened for analysis: its config, split, checkpoints and hooked model. It reads
    only; ``analyse`` holds the run's lock around it and the write of the results.

    A slim copy (mechgrok.transport) keeps only some checkpoints (init, final), so an analysis
    stored from it would replace one computed on every checkpoint: it is refused (SlimRunError)
    unless ``allow_slim``, for tools that read the kept checkpoints and store nothing."""

    def __init__(self, path: str | Path, device: str = "cpu", allow_slim: bool = False):
        import torch

        from .data import encode

        self.path, self.device = Path(path), device
        self.cfg = runstore.read_config(self.path)
        self.attrs = runstore.read_attrs(self.path)
        if "slim" in self.attrs and not allow_slim:
            raise SlimRunError(f"{self.path}: a slim copy without its checkpoints (mechgrok.transport); its stored "
                               "analyses were computed on every checkpoint and are kept, not recomputed")
        self.partial = self.attrs.get("status") == "running"
        with runstore._open(self.path, "r") as f:
            self.train_idx = f["split/train_idx"][...]
            self.test_idx = f["split/test_idx"][...]
        self.events = runstore.read_table(self.path, "events")
        p = self.cfg.p
        x, y = encode(np.arange(p * p), p)
        self.x_all, self.y_all = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)

    @functools.cached_property
    def model(self):
        """The run's hooked model (weights as built; :meth:`load` sets a checkpoint's). Built on first
        use: importing TransformerLens takes seconds, and a refused request (a bad --pair) needs none."""
        from .model import build_model

        model = build_model(self.cfg, self.device)
        model.eval()
        return model

    def checkpoints(self) -> list[dict]:
        """Complete checkpoints with distinct weights, in training order (an ``end`` equal to
        its ``before``, at an event without extra steps, is left out)."""
        extra = dict(zip(self.events["step"].tolist(), self.events["extra_steps"].tolist()))
        all_ckpts = runstore.list_checkpoints(self.path)
        befores = {c["step"] for c in all_ckpts if c["phase"] == "before"}
        return [c for c in all_ckpts
                if not (c["phase"] == "end" and c["step"] in befores and extra.get(c["step"], 0) == 0)]

    def weights(self, name: str) -> dict[str, np.ndarray]:
        return runstore.read_checkpoint(self.path, name)

    def load(self, name: str) -> dict[str, np.ndarray]:
        from .model import load_weights

        w = self.weights(name)
        load_weights(self.model, w)
        return w

    def forward(self, hooks: list[str]):
        """Last-position logits (p*p, p; float64) and the named hooks' last-position activations (float32)."""
        import torch

        with torch.no_grad():
            logits, cache = self.model.run_with_cache(self.x_all, names_filter=lambda n: n in hooks)
        return logits[:, -1].double().numpy(), {h: cache[h][:, -1].numpy() for h in hooks}

    def data(self) -> dict[str, tuple]:
        import torch

        tr, te = torch.as_tensor(self.train_idx), torch.as_tensor(self.test_idx)
        return {"train": (self.x_all[tr], self.y_all[tr]), "test": (self.x_all[te], self.y_all[te])}

    def event_steps(self) -> np.ndarray:
        return self.events["step"][self.events["extra_steps"] > 0] if len(self.events["step"]) else np.zeros(0, int)


def _ticker(progress, label: str, n: int):
    return (lambda i: progress(label, i, n)) if progress else (lambda i: None)


# ---- fourier -------------------------------------------------------------------------------------
def fourier(view: RunView, progress=None) -> tuple[dict, dict]:
    """Fourier metrics at every checkpoint (see mechgrok.fourier for the definitions)."""
    from . import fourier as F

    cfg, p = view.cfg, view.cfg.p
    ckpts = view.checkpoints()
    hooks = [f"blocks.{L}.mlp.hook_post" for L in range(cfg.n_layers)]
    K = F.n_frequencies(p)
    n = len(ckpts)
    out = {k: np.empty((n, K)) for k in ("we_norms", "wu_norms", "logit_norms")}
    out["key_mask"] = np.zeros((n, K), dtype=bool)
    out["logit_key_mask"] = np.zeros((n, K), dtype=bool)
    out["neuron_freq"] = np.zeros((n, cfg.n_layers, cfg.d_mlp), dtype=np.int16)
    out["neuron_share"] = np.zeros((n, cfg.n_layers, cfg.d_mlp), dtype=np.float32)
    for key in ("we_const", "gini", "ipr", "top_share", "n_key", "full_loss", "full_train_loss",
                "restricted_loss", "excluded_loss", "logit_top_share", "logit_restricted_loss",
                "logit_excluded_loss"):
        out[key] = np.empty(n)
    out["clean_share"] = np.empty((n, cfg.n_layers))
    tick = _ticker(progress, f"fourier {view.path.name}", n)
    for i, c in enumerate(ckpts):
        w = view.load(c["name"])
        const, we = F.frequency_norms(w["embed.weight"][:p])
        _, wu = F.frequency_norms(w["unembed.weight"])
        keys = F.key_frequencies(we)
        sp = F.sparsity(we)
        logits, acts = view.forward(hooks)
        losses = F.restricted_and_excluded_loss(logits, p, keys, view.train_idx)
        out["we_const"][i], out["we_norms"][i], out["wu_norms"][i] = const, we, wu
        out["key_mask"][i, keys - 1] = True
        out["n_key"][i] = len(keys)
        for key in ("gini", "ipr", "top_share"):
            out[key][i] = sp[key]
        for key, v in losses.items():
            out[key][i] = v
        # the same read from the logits' (a+b) spectrum (mechgrok.fourier: "Why both")
        lg = F.logit_spectrum(logits, p)
        lkeys = F.top_frequencies(lg)
        lloss = F.restricted_and_excluded_loss(logits, p, lkeys, view.train_idx)
        out["logit_norms"][i], out["logit_top_share"][i] = lg, F.sparsity(lg)["top_share"]
        out["logit_key_mask"][i, lkeys - 1] = True
        out["logit_restricted_loss"][i], out["logit_excluded_loss"][i] = lloss["restricted_loss"], lloss["excluded_loss"]
        for L, h in enumerate(hooks):
            freq, share = F.neuron_frequencies(acts[h], p)
            out["neuron_freq"][i, L], out["neuron_share"][i, L] = freq, share
            alive = freq > 0
            out["clean_share"][i, L] = float(np.mean(share[alive] >= F.CLEAN_NEURON)) if alive.any() else 0.0
        tick(i + 1)
    out["step"] = np.array([c["step"] for c in ckpts])
    out["phase"] = np.array([c["phase"] for c in ckpts], dtype="S6")
    final_keys = out["key_mask"][-1]
    inter = (out["key_mask"] & final_keys).sum(1)
    union = (out["key_mask"] | final_keys).sum(1)
    out["key_jaccard_final"] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    events = view.event_steps()

    def to_event(step: int) -> int:  # steps from an emergence step to the nearest replay event; -1 if none
        return int(np.min(np.abs(events - step))) if step >= 0 and len(events) else -1

    emerge = F.emergence(out["step"], out["top_share"], out["restricted_loss"])
    l_emerge = F.emergence(out["step"], None, out["logit_restricted_loss"])
    dist, l_dist = to_event(emerge), to_event(l_emerge)
    summary = {"emergence_step": emerge, "emergence_event_distance": dist,
               "logit_emergence_step": l_emerge, "logit_emergence_event_distance": l_dist,
               "final_logit_key_frequencies": [int(k) for k in F.top_frequencies(out["logit_norms"][-1])],
               "final_logit_top_share": float(out["logit_top_share"][-1]),
               "final_logit_restricted_loss": float(out["logit_restricted_loss"][-1]),
               "final_key_frequencies": [int(k) for k in np.nonzero(final_keys)[0] + 1],
               "final_top_share": float(out["top_share"][-1]), "final_gini": float(out["gini"][-1]),
               "final_restricted_loss": float(out["restricted_loss"][-1]),
               "final_excluded_loss": float(out["excluded_loss"][-1]),
               "final_clean_neuron_share": float(out["clean_share"][-1].mean()),
               "thresholds": {"key_energy": F.KEY_ENERGY, "top_n": F.TOP_N, "clean_neuron": F.CLEAN_NEURON,
                              "emerge_top_share": F.EMERGE_TOP_SHARE,
                              "emerge_restricted_loss": F.EMERGE_RESTRICTED_LOSS}}
    return out, summary


# ---- norms -----------------------------------------------------------------------------------------
def norms(view: RunView, progress=None) -> tuple[dict, dict]:
    """Component norms and distance from init at every checkpoint; displacement across events."""
    from . import norms as N

    ckpts = view.checkpoints()
    init = view.weights(ckpts[0]["name"])
    out = {c: np.empty(len(ckpts)) for c in (*N.COMPONENTS, "total", "dist_init")}
    tick = _ticker(progress, f"norms {view.path.name}", len(ckpts))
    # replay events with extra steps whose before and end checkpoints were both kept, measured
    # against the window from the checkpoint before them (one read of each checkpoint)
    extra = dict(zip(view.events["step"].tolist(), view.events["extra_steps"].tolist()))
    ev_rows, history = [], []  # history: the last two (checkpoint, weights)
    for i, c in enumerate(ckpts):
        w = view.weights(c["name"])
        for comp, v in N.component_norms(w).items():
            out[comp][i] = v
        out["dist_init"][i] = N.distance(w, init)
        if (c["phase"] == "end" and extra.get(c["step"], 0) > 0 and len(history) == 2
                and history[1][0]["step"] == c["step"] and history[1][0]["phase"] == "before"):
            (prev, prev_w), (before, before_w) = history
            ev_rows.append((c["step"], N.distance(w, before_w), N.distance(before_w, prev_w),
                            before["step"] - prev["step"], extra[c["step"]]))
        history = (history + [(c, w)])[-2:]
        tick(i + 1)
    out["step"] = np.array([c["step"] for c in ckpts])
    out["phase"] = np.array([c["phase"] for c in ckpts], dtype="S6")
    ev = np.array(ev_rows, dtype=float).reshape(-1, 5)
    out["event_step"] = ev[:, 0].astype(int)
    out["event_displacement"] = ev[:, 1]
    out["window_displacement"] = ev[:, 2]
    out["window_steps"] = ev[:, 3].astype(int)
    scaled = ev[:, 2] * ev[:, 4] / np.maximum(ev[:, 3], 1)
    out["event_ratio"] = np.where(scaled > 0, ev[:, 1] / np.where(scaled > 0, scaled, 1), np.nan)
    summary = {"final_total_norm": float(out["total"][-1]), "final_dist_init": float(out["dist_init"][-1]),
               "events_measured": int(len(ev)),
               "median_event_ratio": float(np.nanmedian(out["event_ratio"])) if len(ev) else math.nan}
    return out, summary


# ---- landscape ---------------------------------------------------------------------------------------
def _resolve(view: RunView, spec: str, names: list[str]) -> str:
    """A checkpoint from ``STEP`` (its ``end``) or ``STEP_before``/``STEP_end`` or a full name."""
    text = spec.strip()
    if text in names:
        return text
    step, _, phase = text.partition("_")
    if step.isdigit():
        name = runstore.checkpoint_name(int(step), phase or "end")
        if name in names:
            return name
    raise RunFileError(f"{view.path}: no complete checkpoint {spec!r}")


def landscape_pairs(view: RunView, explicit=(), max_events: int | None = None) -> list[tuple[str, str, str]]:
    """(kind, A, B): memorisation -> algorithmic (if the run has both; memorisation -> final
    checkpoint, kind ``mem-final``, if it never grokked), before -> end of each replay event
    with extra steps, and explicit ``A:B`` specs."""
    ckpts = runstore.list_checkpoints(view.path)
    names = [c["name"] for c in ckpts]
    pairs = []
    mem = [c["name"] for c in ckpts if "memorised" in c["reasons"]]
    grok = [c["name"] for c in ckpts if "grok" in c["reasons"]]
    final = [c["name"] for c in ckpts if "final" in c["reasons"]]
    if mem and grok and mem[0] != grok[0]:
        pairs.append(("mem-alg", mem[0], grok[0]))
    elif mem and not grok and final and mem[0] != final[-1]:
        pairs.append(("mem-final", mem[0], final[-1]))  # never grokked: memorised -> where training ended
    events = [int(s) for s in view.event_steps()]
    for s in events[:max_events]:
        a, b = runstore.checkpoint_name(s, "before"), runstore.checkpoint_name(s, "end")
        if a in names and b in names:
            pairs.append(("event", a, b))
    for spec in explicit:
        if ":" not in spec:
            raise MechgrokError(f"--pair {spec!r}: write A:B, e.g. 2000:5000 or 0000400_before:0000400_end")
        a, b = spec.split(":", 1)
        pairs.append(("named", _resolve(view, a, names), _resolve(view, b, names)))
    return pairs


def landscape(view: RunView, progress=None, pairs=(), max_events: int | None = 8, sharpness: bool = True,
              grid=None) -> tuple[dict, dict]:
    """Interpolation curves and barriers for :func:`landscape_pairs`; sharpness at the
    memorisation, grok and final checkpoints."""
    todo = landscape_pairs(view, pairs, max_events)  # a bad pair is refused before torch is imported
    from . import landscape as LS

    grid = LS.DEFAULT_GRID if grid is None else np.asarray(grid, float)
    data = view.data()
    out = {"t": grid}
    cols = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    bar_train, bar_test, chord_train, chord_test = [], [], [], []
    tick = _ticker(progress, f"landscape {view.path.name}", len(todo))
    for i, (kind, a, b) in enumerate(todo):
        curves = LS.interpolate(view.model, view.weights(a), view.weights(b), data, grid)
        for k in cols:
            cols[k].append(curves[k])
        bar_train.append(LS.barrier(grid, curves["train_loss"]))
        bar_test.append(LS.barrier(grid, curves["test_loss"]))
        chord_train.append(LS.chord_barrier(grid, curves["train_loss"]))
        chord_test.append(LS.chord_barrier(grid, curves["test_loss"]))
        tick(i + 1)
    for k, v in cols.items():
        out[k] = np.array(v).reshape(len(todo), len(grid))
    out["kind"] = np.array([k for k, _, _ in todo], dtype="S9")
    out["a"] = np.array([a for _, a, _ in todo], dtype="S16")
    out["b"] = np.array([b for _, _, b in todo], dtype="S16")
    out["barrier_train"] = np.array(bar_train)
    out["barrier_test"] = np.array(bar_test)
    out["chord_barrier_train"] = np.array(chord_train)
    out["chord_barrier_test"] = np.array(chord_test)
    sharp_names, sharp_vals = [], []
    if sharpness:
        ckpts = runstore.list_checkpoints(view.path)
        for reason in ("memorised", "grok", "final"):
            hit = [c["name"] for c in ckpts if reason in c["reasons"]]
            if hit and hit[0] not in sharp_names:
                view.load(hit[0])
                x, y = data["train"]
                sharp_names.append(hit[0])
                sharp_vals.append(LS.top_hessian_eigenvalue(view.model, x, y))
    out["sharpness_checkpoint"] = np.array(sharp_names, dtype="S16")
    out["sharpness"] = np.array(sharp_vals, dtype=float)
    kinds = [k for k, _, _ in todo]
    summary = {"pairs": len(todo),
               "mem_alg_barrier_train": float(bar_train[kinds.index("mem-alg")]) if "mem-alg" in kinds else math.nan,
               "mem_alg_barrier_test": float(bar_test[kinds.index("mem-alg")]) if "mem-alg" in kinds else math.nan,
               "mem_alg_chord_barrier_train": float(chord_train[kinds.index("mem-alg")]) if "mem-alg" in kinds
               else math.nan,
               "mem_final_barrier_train": float(bar_train[kinds.index("mem-final")]) if "mem-final" in kinds
               else math.nan,
               "mem_final_chord_barrier_train": float(chord_train[kinds.index("mem-final")]) if "mem-final" in kinds
               else math.nan,
               "median_event_barrier_train": float(np.median([b for k, b in zip(kinds, bar_train) if k == "event"]))
               if "event" in kinds else math.nan,
               "median_event_chord_barrier_train": float(np.median([b for k, b in zip(kinds, chord_train)
                                                                    if k == "event"])) if "event" in kinds else math.nan,
               "sharpness": dict(zip(sharp_names, map(float, sharp_vals)))}
    return out, summary


# ---- probes ----------------------------------------------------------------------------------------
def probes(view: RunView, progress=None, every: int = 1, keys=None) -> tuple[dict, dict]:
    """Linear probes on the last-position residual stream after each layer, at every
    ``every``-th checkpoint (plus the last). Key frequencies: the final checkpoint's
    (from the stored fourier analysis if present, else computed from its W_E)."""
    from probes.linear import probe_all

    from . import fourier as F

    cfg, p = view.cfg, view.cfg.p
    ckpts = view.checkpoints()
    chosen = ckpts[::every] if ckpts[-1] in ckpts[::every] else ckpts[::every] + [ckpts[-1]]
    if keys is None:
        _, we = F.frequency_norms(view.weights(ckpts[-1]["name"])["embed.weight"][:p])
        keys = [int(k) for k in F.key_frequencies(we)][:5]
    hooks = [f"blocks.{L}.hook_resid_post" for L in range(cfg.n_layers)]
    rows = []
    tick = _ticker(progress, f"probes {view.path.name}", len(chosen))
    for i, c in enumerate(chosen):
        view.load(c["name"])
        _, acts = view.forward(hooks)
        rows.append([probe_all(acts[h], p, keys) for h in hooks])
        tick(i + 1)
    names = list(rows[0][0])
    out = {"step": np.array([c["step"] for c in chosen]), "phase": np.array([c["phase"] for c in chosen], dtype="S6"),
           "layer": np.array(hooks, dtype="S32")}
    for nm in names:
        out[nm] = np.array([[r[L][nm] for L in range(len(hooks))] for r in rows])
    summary = {"keys": keys, "final": {nm: [float(v) for v in out[nm][-1]] for nm in names}, "checkpoints": len(chosen)}
    return out, summary


RUNNERS = {"fourier": fourier, "norms": norms, "landscape": landscape, "probes": probes}
TIME_COLUMNS = {"fourier": ("step", "phase", "top_share", "gini", "ipr", "n_key", "full_loss", "restricted_loss",
                            "excluded_loss"),
                "norms": ("step", "phase", "total", "embed", "attention", "mlp", "unembed", "dist_init"),
                "landscape": ("kind", "a", "b", "barrier_train", "barrier_test", "chord_barrier_train",
                              "chord_barrier_test"),
                "probes": ("step", "phase")}


def analyse(name: str, path: str | Path, progress=None, **options) -> dict:
    """Run analysis ``name`` on one run file, store it as /analysis/<name>, return its summary.
    Holds the run's lock throughout (RunLockedError where a training or another analysis holds it)."""
    runstore.read_config(path)  # a missing or foreign file is refused before a lock file is made beside it
    with runstore.run_lock(path):
        view = RunView(path)
        arrays, summary = RUNNERS[name](view, progress=progress, **options)
        summary = {**summary, "partial": view.partial, "last_step": int(view.attrs.get("last_step", 0)),
                   "checkpoints_analysed": int(len(arrays.get("step", arrays.get("kind", []))))}
        runstore.write_analysis(path, name, arrays, summary)
    return summary


def _progress_bar(stream=sys.stderr):
    def show(label, i, n):
        if stream.isatty():
            stream.write(f"\r{label}: {i}/{n}\x1b[K" + ("\n" if i == n else ""))
        elif i == n:
            stream.write(f"{label}: {n}/{n}\n")
        stream.flush()
    return show


def _summary_line(name: str, path: Path, s: dict) -> str:
    tag = " (partial: unfinished run, up to step %d)" % s["last_step"] if s["partial"] else ""
    if name == "fourier":
        from .fourier import step_or_never

        emerged = f"emergence {step_or_never(s['emergence_step'])}" + (
            f" (nearest event {s['emergence_event_distance']} steps)" if s["emergence_step"] >= 0 else "")
        keys = s["final_key_frequencies"]
        body = (f"{emerged}, final keys {keys[:8]}{'...' if len(keys) > 8 else ''}, "
                f"top-5 share {s['final_top_share']:.2f}, restricted loss {s['final_restricted_loss']:.3g}; from the "
                f"logits: emergence {step_or_never(s['logit_emergence_step'])}, final keys "
                f"{s['final_logit_key_frequencies']}, restricted loss {s['final_logit_restricted_loss']:.3g}")
    elif name == "norms":
        body = (f"final norm {s['final_total_norm']:.1f}, from init {s['final_dist_init']:.1f}, "
                f"event/window displacement ratio (median) {s['median_event_ratio']:.3g}")
    elif name == "landscape":
        body = (f"{s['pairs']} pairs, mem->alg barrier train {s['mem_alg_barrier_train']:.3g} "
                f"test {s['mem_alg_barrier_test']:.3g}, event barrier (median) {s['median_event_barrier_train']:.3g}")
    else:
        body = ", ".join(f"{k} {v[-1]:.2f}" for k, v in s["final"].items() if k.startswith("acc_"))
    return f"{path}: {s['checkpoints_analysed']} checkpoints; {body}{tag}"


def _write_csv(name: str, results: list[tuple[Path, dict]], csv_path: str) -> None:
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        w = None
        for path, arrays in results:
            cols = [c for c in TIME_COLUMNS[name] if c in arrays]
            extra = [k for k in arrays if k.startswith(("acc_", "r2_"))] if name == "probes" else []
            for i in range(len(arrays[cols[0]])):
                row = {"run": str(path)}
                for c in cols:
                    v = arrays[c][i]
                    row[c] = v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)
                for c in extra:
                    for L, v in enumerate(arrays[c][i]):
                        row[f"{c}_L{L}"] = float(v)
                if w is None:
                    w = csv.DictWriter(f, fieldnames=list(row))
                    w.writeheader()
                w.writerow(row)


# attributes an analysis writes now that older stored results lack (``--missing`` re-runs those)
NEWER_ATTRS = {"fourier": ("logit_emergence_step",)}


def _up_to_date(name: str, current: dict[str, dict]) -> bool:
    return name in current and all(k in current[name] for k in NEWER_ATTRS.get(name, ()))


def main(argv: list[str] | None = None) -> int:
    from .cli import OneLineParser, error_line, nonnegative_int, positive_int

    ap = OneLineParser(prog=PROG, description="Analyse run files; results go to /analysis/<name> in each file.")
    ap.add_argument("analysis", help=f"one of {', '.join(ANALYSES)}")
    ap.add_argument("paths", nargs="+", help="run files or folders (searched recursively)")
    ap.add_argument("--csv", help="write the per-checkpoint (or per-pair) table here")
    ap.add_argument("--pair", action="append", default=[], help="landscape: extra pair A:B (steps or names)")
    ap.add_argument("--max-events", type=nonnegative_int, default=8,
                    help="landscape: replay events to interpolate across (8)")
    ap.add_argument("--every", type=positive_int, default=1, help="probes: every N-th checkpoint (1)")
    ap.add_argument("--quiet", action="store_true", help="no progress display")
    ap.add_argument("--missing", action="store_true", help="only files without a current result of this analysis "
                                                           "(never run, run before the run was extended, or "
                                                           "stored before a reading it now holds existed)")
    args = ap.parse_args(argv)
    if args.analysis not in ANALYSES:
        return error_line(PROG, f"unknown analysis {args.analysis!r}; choose from {', '.join(ANALYSES)}")
    from .results import current_analyses, find_run_files

    try:
        if args.csv:
            out_file(args.csv)
    except MechgrokError as exc:
        return error_line(PROG, exc)
    files, bad = [], 0
    for p in args.paths:
        try:
            files += find_run_files([p])
        except MechgrokError as exc:
            bad += 1
            error_line(PROG, exc)
    options = {"landscape": {"pairs": args.pair, "max_events": args.max_events}, "probes": {"every": args.every}}
    progress = None if args.quiet else _progress_bar()
    results = []
    for path in files:
        try:
            runstore.read_config(path)
            if args.missing and _up_to_date(args.analysis, current_analyses(path)):
                continue
            s = analyse(args.analysis, path, progress=progress, **options.get(args.analysis, {}))
            results.append((path, runstore.read_analysis(path, args.analysis)[0]))
            print(_summary_line(args.analysis, path, s), flush=True)
        except SlimRunError as exc:  # not an error: the run was analysed before it was packed
            print(f"{PROG}: skipped: {exc}", file=sys.stderr)
        except MechgrokError as exc:
            bad += 1
            error_line(PROG, exc)
    if args.csv and results:
        _write_csv(args.analysis, results, args.csv)
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
