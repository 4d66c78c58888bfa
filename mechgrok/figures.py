"""Figures for the paper: ``python -m mechgrok.figures runs/ --out figures/``.

Every figure is drawn from run files (and their /analysis results) or, for runs
whose files are not here, from the rows, curves and analysis series carried in the
results tables (``--table``; mechgrok.results), as PNG (300 dpi) and PDF, sized for
a journal column (3.4 in wide; two-panel figures 7 in).
Each function returns the numbers it plotted, so tests can check them against
the statistics table. Colours are fixed per arm across all figures.

- ``curves_<variant>``: test and train accuracy per arm, median and interquartile
  band over seeds, replay events marked on the axis;
- ``km_<variant>``: Kaplan-Meier curves of time-to-grok per arm (censored runs
  marked), KM medians as points;
- ``speedup``: the speed-up over baseline per arm and reading, with bootstrap 95%
  intervals;
- ``spectrum_<variant>_<arm>_seed<N>``: the norm of each frequency of W_E over
  training (heatmap), replay events marked; by default for three seeds per variant and
  arm (seed 42 and the lowest analysed in every arm; ``--spectra-per-arm``);
- ``fourier_<variant>``: top-5 share of W_E's spectrum, restricted and excluded loss
  over training, per analysed run;
- ``c6logits_<variant>``: C6's logit reading, dream over baseline restricted loss per seed;
- ``norms_<variant>``: total weight norm and distance from initialisation;
- ``landscape_<variant>``: loss along the line from the memorisation to the grokked
  checkpoint and across replay events;
- ``probes_<variant>``: linear-probe accuracy for (a + b) mod p per layer over training.

The per-run figures (fourier, norms, landscape, probes) draw one line per run but
name arms, not runs, in their legends (one entry per arm with its run count, and one
per line style): a reading with dozens of seeds would otherwise get a legend taller
than its plot. Their captions list the runs drawn.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from . import stats
from .audit import before_grokking
from .config import REPLAY_ARMS
from .errors import MechgrokError, out_dir
from .results import (analysed, capped_loss_ratio, curve, finished, load, no_runs_error, seed_ranges, select,
                      shared_checkpoints)

ARM_COLORS = {"baseline": "#4d4d4d", "dream": "#d62728", "control": "#1f77b4", "grokfast": "#2ca02c",
              "dream-early": "#ff7f0e", "dream-plateau": "#9467bd"}
ARM_ORDER = tuple(ARM_COLORS)
COLUMN = 3.4
DOUBLE = 7.0
MAX_NAMED_SEEDS = 8  # a legend names each seed up to this many (C6's logit figure)
LAYER_STYLES = ("-", "--", "-.")  # probe lines per layer; dotted is the chance line
SPEEDUP_AXES_WIDTH = 3.0  # inches of plotting area in the speed-up figure, however long its row labels


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 7, "axes.titlesize": 7, "axes.labelsize": 7, "legend.fontsize": 6,
                         "xtick.labelsize": 6, "ytick.labelsize": 6, "lines.linewidth": 1.0,
                         "axes.spines.top": False, "axes.spines.right": False, "savefig.dpi": 300})
    return plt


def _save(fig, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.tight_layout()
    for p in paths:  # no creation date in the PDF, so the same runs give the same files
        fig.savefig(p, bbox_inches="tight", metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def _safe(variant: str) -> str:
    return variant.replace("@", "_").replace("=", "-").replace(",", "_")


def _arms(rows) -> list[str]:
    present = {r["arm"] for r in rows}
    return [a for a in ARM_ORDER if a in present]


def _any_replays(rows) -> bool:
    """Whether any of these runs belongs to an arm that replays (so its plot has event ticks)."""
    return any(r["arm"] in REPLAY_ARMS for r in rows)


def _mark_events(ax, steps, color, y=0.0):
    if len(steps):
        ax.plot(steps, np.full(len(steps), y), "|", color=color, markersize=3, alpha=0.6, clip_on=False)


def _title(head: str, what: str, max_chars: int = 55) -> str:
    """"head: what" on one line where it fits a panel about 3.4 in wide at 7 pt, else on more lines,
    with a long reading name broken after its commas, so that it neither widens a column figure nor
    runs into the next panel's title."""
    if len(head) + 2 + len(what) <= max_chars:
        return f"{head}: {what}"
    lines = [""]
    for part in (p + "," for p in head.split(",")):
        if lines[-1] and len(lines[-1]) + len(part) > max_chars:
            lines.append("")
        lines[-1] += part
    lines[-1] = lines[-1][:-1] + ":"
    if len(lines[-1]) + 1 + len(what) <= max_chars:
        return "\n".join(lines[:-1] + [f"{lines[-1]} {what}"])
    return "\n".join(lines + [what])


def _run_alpha(items) -> float:
    """Opacity of one run's line: solid for a few runs, faint where dozens overlap, so the bundle shows."""
    return 1.0 if len(items) <= 9 else 0.4


def _arm_legend(ax, rows, styles=(), note=None, **kw) -> None:
    """A legend that names arms, not runs: one colour entry per arm, "dream (31 runs)" or, with
    ``note(arm)``, what it adds ("dream (3 runs; 1 never grokked: to final)"), then one entry per
    ``(linestyle, text)`` or ``(linestyle, text, colour)`` in ``styles`` (grey by default).
    ``kw`` goes to ``ax.legend``."""
    from matplotlib.lines import Line2D

    handles = []
    for arm in _arms(rows):
        n = sum(r["arm"] == arm for r in rows)
        extra = note(arm) if note else ""
        handles.append(Line2D([], [], color=ARM_COLORS[arm],
                              label=f"{arm} ({n} run{'s' if n != 1 else ''}{'; ' + extra if extra else ''})"))
    handles += [Line2D([], [], color=(st[2] if len(st) > 2 else "0.35"), ls=st[0], label=st[1]) for st in styles]
    ax.legend(handles=handles, frameon=False, fontsize=5, **kw)


def _runs_label(arm: str, grid, counts) -> str:
    """Legend text: how many runs a curve is the median of, and from which step on fewer runs
    (shorter budgets) remain in it."""
    counts = np.asarray(counts)
    n = int(counts.max())
    if counts[-1] == n:
        return f"{arm} (n={n})"
    return f"{arm} (n={n} to step {int(np.asarray(grid)[counts == n][-1])}, {int(counts[-1])} at the end)"


# ---- from the results table ----------------------------------------------------------------------
def learning_curves(rows, variant: str, out: Path, drawn: list | None = None) -> tuple[list[Path], dict]:
    """Median and IQR of test and train accuracy over seeds, per arm. ``drawn``, a list, is extended
    with the rows whose curves the figure draws (those with a curve, from a file or carried)."""
    plt = _plt()
    # a run's curve: from its file, or carried with its row from the committed curves table
    with_curves = [(r, c) for r in select(finished(rows), variant=variant) if (c := curve(r)) is not None]
    if drawn is not None:
        drawn.extend(r for r, _ in with_curves)
    if not with_curves:
        return [], {}
    fig, axes = plt.subplots(1, 2, figsize=(DOUBLE, 2.4), sharex=True)
    plotted = {}
    for arm in _arms([r for r, _ in with_curves]):
        arm_rows, tables = zip(*[(r, c) for r, c in with_curves if r["arm"] == arm])
        grid = np.unique(np.concatenate([t["step"] for t in tables]))
        for ax, key in zip(axes, ("test_acc", "train_acc")):
            # a run that stopped after grokking keeps its last value afterwards; one that
            # reached its budget without grokking leaves the statistics after its budget
            vals = np.array([np.where((grid <= t["step"][-1]) | bool(r["grokked"]),
                                      np.interp(grid, t["step"], t[key]), np.nan)
                             for t, r in zip(tables, arm_rows)])
            keep = np.isfinite(vals).any(axis=0)
            grid_k, vals = grid[keep], vals[:, keep]
            med = np.nanmedian(vals, axis=0)
            q1, q3 = np.nanpercentile(vals, [25, 75], axis=0)
            ax.plot(grid_k, med, color=ARM_COLORS[arm], label=_runs_label(arm, grid_k, np.isfinite(vals).sum(axis=0)))
            ax.fill_between(grid_k, q1, q3, color=ARM_COLORS[arm], alpha=0.2, linewidth=0)
            plotted[(arm, key)] = (grid_k, med)
        events = np.unique(np.concatenate([t["replay_steps"] for t in tables]))  # every run's, the longest included
        _mark_events(axes[0], events, ARM_COLORS[arm], y=-0.04)
    for ax, title in zip(axes, ("test accuracy", "train accuracy")):
        ax.set_xlabel("training step")
        ax.set_ylabel(title)
        ax.set_ylim(-0.06, 1.02)
        ax.axhline(0.95, color="k", lw=0.5, ls=":")
    axes[0].set_title(_title(variant, "median and IQR over seeds"
                             + ("; ticks = replay events" if _any_replays(r for r, _ in with_curves) else "")))
    # below the panels: noisy train curves leave no empty corner inside them
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 3), frameon=False)
    return _save(fig, out, f"curves_{_safe(variant)}"), plotted


def kaplan_meier(rows, variant: str, out: Path) -> tuple[list[Path], dict]:
    plt = _plt()
    rows = select(finished(rows), variant=variant)
    fig, ax = plt.subplots(figsize=(COLUMN, 2.4))
    medians = {}
    for arm in _arms(rows):
        arm_rows = select(rows, arm=arm)
        t = [r["time_to_grok"] for r in arm_rows]
        g = [r["grokked"] for r in arm_rows]
        km = stats.kaplan_meier(t, g)
        budget = max(r["budget"] for r in arm_rows)
        # step function: 1 until the first grok time, then each survival value
        xs, ys = [0.0], [1.0]
        s_prev = 1.0
        for time, s in zip(km.times, km.survival):
            xs += [time, time]
            ys += [s_prev, s]
            s_prev = s
        xs.append(budget)
        ys.append(s_prev)
        ax.plot(xs, ys, color=ARM_COLORS[arm], label=f"{arm} ({km.events}/{km.n} grokked)", drawstyle="default")
        cens = [r["time_to_grok"] for r in arm_rows if not r["grokked"]]
        if cens:
            ax.plot(cens, [km.at(c) for c in cens], "+", color=ARM_COLORS[arm], markersize=5)
        medians[arm] = km.median
        if math.isfinite(km.median):
            ax.plot([km.median], [0.5], "o", color=ARM_COLORS[arm], markersize=3)
    ax.axhline(0.5, color="k", lw=0.5, ls=":")
    ax.set_xlabel("training step")
    ax.set_ylabel("fraction not yet grokked")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(_title(variant, "Kaplan-Meier (+ = censored, o = median)"))
    ax.legend(frameon=False, loc="best")  # clear of the curves, wherever they fall
    return _save(fig, out, f"km_{_safe(variant)}"), medians


def speedup(rows, out: Path) -> tuple[list[Path], dict]:
    """Speed-up over baseline per arm and reading, with its bootstrap interval. An interval end at 0 or
    infinity (some resamples have no Kaplan-Meier median within the budget) is drawn to the axis edge
    with an arrowhead and written out, so an unbounded interval never looks like a precise point.
    Returns the figure's paths and, per (variant, arm), {"ratio", "lo", "hi", "drawn": (x0, x1) or
    None, "open": the unbounded ends, "", "left", "right" or "both"}."""
    plt = _plt()
    lines = [ln for ln in stats.table(rows) if "speedup" in ln]
    fig, ax = plt.subplots(figsize=(COLUMN, 1.0 + 0.22 * max(len(lines), 1)))
    ends = [x for ln in lines for x in (ln["speedup"], ln["speedup_lo"], ln["speedup_hi"]) if math.isfinite(x) and x > 0]
    x_min, x_max = min([0.2] + [x / 1.25 for x in ends]), max([20.0] + [x * 1.25 for x in ends])
    plotted = {}
    for i, ln in enumerate(lines):
        r, lo, hi = ln["speedup"], ln["speedup_lo"], ln["speedup_hi"]
        color = ARM_COLORS.get(ln["arm"], "k")
        has_ratio = math.isfinite(r) and r > 0
        bounded = not (math.isnan(lo) or math.isnan(hi))  # nan: no interval at all
        left_open, right_open = bounded and not lo > 0, bounded and math.isinf(hi)
        drawn, opened = None, {(False, False): "", (True, False): "left", (False, True): "right",
                               (True, True): "both"}[(left_open, right_open)]
        if has_ratio:
            ax.plot([r], [i], "o", color=color, markersize=3)
            if bounded:
                drawn = (x_min if left_open else lo, x_max if right_open else hi)
                ax.plot(drawn, [i, i], color=color)
                for x, shape, is_open in ((drawn[0], "<", left_open), (drawn[1], ">", right_open)):
                    if is_open:  # an arrowhead at the axis edge: the interval goes on
                        ax.plot([x], [i], shape, color=color, markersize=3, clip_on=False)
                if opened:
                    ax.text(r, i + 0.28, f"95% CI [{_g(lo)}, {_g(hi)}]: unbounded", ha="center", va="bottom",
                            fontsize=4.5, color=color)
        else:
            ax.text(1, i, " no ratio: neither arm's KM median within budget" if math.isnan(r) else f" ratio {r}",
                    va="center", fontsize=5, zorder=3,
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.5))  # drawn over the 3.7x line
        plotted[(ln["variant"], ln["arm"])] = {"ratio": r, "lo": lo, "hi": hi, "drawn": drawn, "open": opened}
    ax.set_yticks(range(len(lines)), [f"{ln['variant']} {ln['arm']}" for ln in lines])
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.xaxis.set_major_locator(FixedLocator([0.25, 0.5, 1, 2, 4, 8, 16]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylim(-0.7, len(lines) - 0.3)
    ax.set_xlim(x_min, x_max)
    ax.axvline(1, color="k", lw=0.5, ls=":")
    ax.axvline(3.7, color="#d62728", lw=0.5, ls="--")
    ax.set_xlabel("speed-up over baseline (KM median ratio, 95% bootstrap CI); dashed = paper's 3.7x")
    # the row labels name readings and can be long: widen the figure for them rather than squeeze the axes
    fig.canvas.draw()
    label_width = max((t.get_window_extent().width for t in ax.get_yticklabels()), default=0.0) / fig.dpi
    fig.set_size_inches(max(COLUMN, label_width + SPEEDUP_AXES_WIDTH + 0.5), fig.get_size_inches()[1])
    return _save(fig, out, "speedup"), plotted


def _g(x: float) -> str:
    """An interval end for a figure: 3 significant digits, 'inf' for infinity."""
    return "inf" if math.isinf(x) else f"{x:.3g}"


# ---- from /analysis --------------------------------------------------------------------------------
def spectrum(row, arrays, out: Path) -> list[Path]:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(COLUMN, 2.4))
    steps = arrays["step"]
    norms = arrays["we_norms"]
    K = norms.shape[1]
    im = ax.imshow(norms.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                   extent=[0, len(steps), 0.5, K + 0.5])
    ticks = np.linspace(0, len(steps) - 1, min(6, len(steps))).astype(int)
    ax.set_xticks(ticks + 0.5, [str(int(steps[i])) for i in ticks])
    c = curve(row)  # replay events, from the file or the carried curve
    ev = set(c["replay_steps"].tolist()) if c is not None else set()
    idx = [i + 0.5 for i, s in enumerate(steps) if int(s) in ev]
    if idx:
        ax.plot(idx, np.full(len(idx), 0.5), "|", color="w", markersize=3, clip_on=False)
    ax.set_xlabel("checkpoint (training step)")
    ax.set_ylabel("frequency k")
    ax.set_title(_title(f"{row['variant']} {row['arm']} seed {row['seed']}", "|W_E| per frequency"))
    fig.colorbar(im, ax=ax, label="norm")
    return _save(fig, out, f"spectrum_{_safe(row['variant'])}_{row['arm']}_seed{row['seed']}")


def fourier_metrics(items, variant: str, out: Path) -> list[Path]:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(DOUBLE, 2.4))
    alpha = _run_alpha(items)
    for r, a, _ in items:
        c = ARM_COLORS[r["arm"]]
        axes[0].plot(a["step"], a["top_share"], color=c, alpha=alpha)
        axes[1].plot(a["step"], a["restricted_loss"], color=c, alpha=alpha)
        axes[1].plot(a["step"], a["excluded_loss"], color=c, ls="--", alpha=alpha)
        if "logit_restricted_loss" in a:  # the logits' reading (absent from analyses stored before it)
            axes[1].plot(a["step"], a["logit_restricted_loss"], color=c, ls=":", alpha=alpha)
    axes[0].set_ylabel("top-5 share of W_E energy")
    axes[1].set_ylabel("loss (nats)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("training step")
    axes[0].set_title(_title(variant, "Fourier sparsity"))
    axes[1].set_title("restricted (solid; logit keys: dotted) / excluded (dashed)", fontsize=6)
    rows = [r for r, _, _ in items]
    _arm_legend(axes[0], rows)
    # the line-style key goes beside the panel: with dozens of runs no corner of it is free of curves
    _arm_legend(axes[1], [], [("-", "restricted"), ("--", "excluded")]
                + ([(":", "restricted, logit keys")] if any("logit_restricted_loss" in a for _, a, _ in items) else []),
                loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, out, f"fourier_{_safe(variant)}")


def logit_ratio(items, variant: str, out: Path) -> tuple[list[Path], list[int]]:
    """C6's logit part drawn: per seed with both arms analysed with the logit reading, dream's over
    baseline's logit restricted loss, each capped at chance (``capped_loss_ratio``), at each checkpoint
    both have (mechgrok/audit.py, C6 (b)). A seed's line is solid over the checkpoints before either
    of its runs grokked (the memorisation plateau, where the claim says dreaming acts), faint and
    dashed from its last plateau checkpoint on (both arms may then sit at the Fourier solution, and
    the ratio of two near-zero losses swings widely).
    Returns the files and the seeds drawn (none: no file)."""
    by: dict[int, dict] = {}
    for r, a, attrs in items:
        by.setdefault(r["seed"], {})[r["arm"]] = (r, a, int(attrs["p"]))  # p sets the seed's chance level
    seeds = sorted(s for s, arms in by.items() if {"dream", "baseline"} <= set(arms))
    if not seeds:
        return [], []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(COLUMN, 2.4))
    named = len(seeds) <= MAX_NAMED_SEEDS  # beyond that, one colour and one legend entry: the caption lists them
    after_drawn = False
    for seed in seeds:
        (rd, dream, p), (rb, base, _) = by[seed]["dream"], by[seed]["baseline"]
        steps, x, y = shared_checkpoints(dream, base, "logit_restricted_loss")
        ratio = capped_loss_ratio(x, y, p)
        cut = int(before_grokking(steps, rd, rb).sum())  # the plateau: the (sorted) checkpoints before either grokked
        steps = np.asarray(steps, float)
        style = ({"label": f"seed {seed}"} if named else
                 {"color": ARM_COLORS["dream"], "alpha": 0.35,
                  "label": f"one line per seed ({len(seeds)} seeds)" if seed == seeds[0] else None})
        line, = ax.plot(steps[:cut], ratio[:cut], marker=".", ms=2, lw=0.8, **style)
        if cut < len(steps):  # from the plateau's last checkpoint on: faint, dashed
            ax.plot(steps[max(cut - 1, 0):], ratio[max(cut - 1, 0):], lw=0.5, ls="--", color=line.get_color(),
                    alpha=0.2, label=None if after_drawn else "after either run grokked")
            after_drawn = True
    ax.axhline(1, color="k", lw=0.5)
    ax.axhline(2 / 3, color="k", lw=0.5, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("restricted loss, dream / baseline")
    ax.set_title(_title(variant, "logit Fourier reading"), fontsize=7)
    ax.legend(frameon=False, fontsize=5)
    return _save(fig, out, f"c6logits_{_safe(variant)}"), seeds


def norm_trajectories(items, variant: str, out: Path) -> list[Path]:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(DOUBLE, 2.4))
    alpha = _run_alpha(items)
    for r, a, _ in items:
        c = ARM_COLORS[r["arm"]]
        axes[0].plot(a["step"], a["total"], color=c, alpha=alpha)
        axes[1].plot(a["step"], a["dist_init"], color=c, alpha=alpha)
    axes[0].set_ylabel("L2 norm of all weights")
    axes[1].set_ylabel("distance from initialisation (L2)")
    for ax in axes:
        ax.set_xlabel("training step")
    axes[0].set_title(_title(variant, "weight norms"))
    _arm_legend(axes[0], [r for r, _, _ in items])
    return _save(fig, out, f"norms_{_safe(variant)}")


def interpolation(items, variant: str, out: Path) -> list[Path]:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(DOUBLE, 2.4))
    drawn = []  # (run, whether its end is the final checkpoint) per memorised-to-end line
    alpha = _run_alpha(items)
    for r, a, _ in items:
        c = ARM_COLORS[r["arm"]]
        kinds = [str(k) for k in a["kind"]]
        for i, k in enumerate(kinds):
            if k in ("mem-alg", "mem-final"):
                drawn.append((r, k == "mem-final"))
                axes[0].plot(a["t"], a["train_loss"][i], color=c, alpha=alpha)
                axes[0].plot(a["t"], a["test_loss"][i], color=c, ls="--", alpha=alpha)
            elif k == "event":
                axes[1].plot(a["t"], a["train_loss"][i], color=c, alpha=0.5)
    axes[0].set_title(_title(variant, "memorised -> grokked (or final) checkpoint"))
    axes[1].set_title("before -> after each replay event (train loss)")
    for ax in axes:
        ax.set_xlabel("interpolation t")
        ax.set_ylabel("loss (nats)")
        ax.axvline(0, color="k", lw=0.4, ls=":")
        ax.axvline(1, color="k", lw=0.4, ls=":")
    if drawn:
        def never(arm):
            k = sum(final for r, final in drawn if r["arm"] == arm)
            return f"{k} never grokked: to final" if k else ""
        _arm_legend(axes[0], [r for r, _ in drawn], [("-", "train"), ("--", "test")], note=never)
    else:
        axes[0].text(0.5, 0.5, "no run has both a memorised\nand a grokked checkpoint", ha="center",
                     va="center", transform=axes[0].transAxes)
    return _save(fig, out, f"landscape_{_safe(variant)}")


def probe_curves(items, variant: str, out: Path) -> list[Path]:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(COLUMN, 2.4))
    alpha = _run_alpha(items)
    for r, a, _ in items:
        c = ARM_COLORS[r["arm"]]
        for L in range(a["acc_sum"].shape[1]):
            ax.plot(a["step"], a["acc_sum"][:, L], color=c, ls=LAYER_STYLES[L % 3], alpha=alpha)
    layers = max((a["acc_sum"].shape[1] for _, a, _ in items), default=0)
    styles = [(LAYER_STYLES[L % 3], f"after layer {L}") for L in range(layers)]
    if items:
        chance = 1 / items[0][2]["p"]
        ax.axhline(chance, color="k", lw=0.5, ls=":")
        styles.append((":", "chance (1/p)", "k"))
    ax.set_xlabel("training step")
    ax.set_ylabel("probe accuracy, (a+b) mod p\n(held-out pairs)")
    ax.set_title(_title(variant, "linear probes on the residual stream"))
    _arm_legend(ax, [r for r, _, _ in items], styles)
    return _save(fig, out, f"probes_{_safe(variant)}")


FIGURE_PREFIXES = ("curves_", "km_", "speedup", "spectrum_", "fourier_", "c6logits_", "norms_", "landscape_",
                   "probes_")


def _runs_of(rows) -> str:
    """'dream seeds 0-3, 42 (30000 steps); baseline seed 42 (12000 steps)': the runs a figure draws."""
    parts = []
    for arm in _arms(rows):
        arm_rows = [r for r in rows if r["arm"] == arm]
        budgets = sorted({int(r["budget"]) for r in arm_rows})
        seeds = seed_ranges(r["seed"] for r in arm_rows)
        parts.append(f"{arm} seed{'s' if len(arm_rows) > 1 else ''} {seeds} "
                     f"({' or '.join(str(b) for b in budgets)} steps)")
    return "; ".join(parts)


ANALYSIS_CAPTIONS = {
    "fourier": "Top-5 share of the energy of W_E's Fourier spectrum (left), restricted loss on all pairs (solid) and "
               "excluded loss on the training pairs (dashed, right) over training, with W_E's key frequencies; dotted: "
               "restricted loss with the five strongest frequencies of the logits' (a+b) spectrum, where analysed",
    "norms": "L2 norm of all weights (left) and distance from initialisation (right) over training",
    "landscape": "Loss along the straight line between checkpoints: memorised to grokked (or, if the run never "
                 "grokked, final) checkpoint (left); before to after each replay event (right, train loss)",
    "probes": "Accuracy of linear probes for (a + b) mod p on the residual stream after each layer, on held-out "
              "pairs, over training",
}


# per-run W_E spectrum heatmaps drawn per variant and arm by default: a reading with dozens of seeds
# would otherwise add a heatmap per run (the fourier_ figure draws every run's top-5 share)
SPECTRA_PER_ARM = 3


def spectrum_items(items, per_arm: int | None = SPECTRA_PER_ARM) -> list:
    """The analysed runs ((row, arrays, attrs), one per seed and arm) whose spectrum heatmap is drawn:
    per variant, the same seeds in every arm where they can be, seed 42 (the paper's) first and then
    the lowest seeds analysed in every arm, up to ``per_arm``; an arm with fewer of those is filled with
    its own lowest other seeds. ``per_arm`` None: every run."""
    if per_arm is None:
        return list(items)
    chosen = []
    for variant in sorted({r["variant"] for r, _, _ in items}):
        mine = [it for it in items if it[0]["variant"] == variant]
        by_arm: dict[str, dict[int, tuple]] = {}
        for it in mine:
            by_arm.setdefault(it[0]["arm"], {})[it[0]["seed"]] = it
        paper_first = lambda s: (s != 42, s)  # noqa: E731
        order = sorted(set.intersection(*(set(seeds) for seeds in by_arm.values())), key=paper_first)[:per_arm]
        for arm, seeds in by_arm.items():
            own = order + sorted(set(seeds) - set(order), key=paper_first)
            chosen += [seeds[s] for s in own[:per_arm]]
    keep = {id(it) for it in chosen}
    return [it for it in items if id(it) in keep]


def make_all(rows, out: str | Path, prune: bool = False, captions: dict | None = None,
             spectra_per_arm: int | None = SPECTRA_PER_ARM) -> list[Path]:
    """Every figure the runs (and their analyses) allow; returns the files written. With ``prune``,
    figures of this module's names (FIGURE_PREFIXES) in ``out`` that this call did not write are
    removed, so the folder holds exactly the figures the runs give now. ``captions``, a dict, is
    filled with each figure's name (file stem) -> one sentence on what it shows and which runs it draws.
    Spectrum heatmaps: ``spectrum_items(..., spectra_per_arm)`` of the analysed runs (None: every one)."""
    out = Path(out)
    captions = {} if captions is None else captions
    fin = finished(rows)
    paths: list[Path] = []
    for variant in sorted({r["variant"] for r in fin}):
        runs = select(fin, variant=variant)
        drawn: list = []
        new = learning_curves(fin, variant, out, drawn)[0]
        if new:
            captions[new[0].stem] = (
                f"Learning curves, `{variant}`: median and interquartile band over seeds of test (left) and train "
                "(right) accuracy; "
                + ("ticks mark replay events" if _any_replays(drawn)
                   else "no ticks: no arm drawn here replays")
                + f"; dotted line: the 95% grokking threshold. Drawn from "
                f"{len(drawn)} of its {len(runs)} finished runs: {_runs_of(drawn)}"
                + (f"; the other {len(runs) - len(drawn)} are rows carried from the results table without a "
                   "learning curve." if len(drawn) < len(runs) else "."))
        new_km = kaplan_meier(fin, variant, out)[0]
        captions[new_km[0].stem] = (
            f"Kaplan-Meier estimate of the fraction of runs not yet grokked, `{variant}`; + marks a run censored "
            f"(it ended without grokking), o a KM median. {len(runs)} runs: {_runs_of(runs)}.")
        paths += new + new_km
    if any("speedup" in ln for ln in stats.table(fin)):
        new = speedup(fin, out)[0]
        captions[new[0].stem] = ("Speed-up over baseline per arm and reading: ratio of Kaplan-Meier median times to "
                                 "grok, with a 95% bootstrap interval; an interval end at 0 or infinity (resamples "
                                 "without a median within the budget) runs to the axis edge, with an arrowhead, and "
                                 "is written above its row; where a median lies beyond the budget there is no ratio "
                                 "(said in the plot); dashed: the paper's 3.7x.")
        paths += new
    for name, fn in (("fourier", fourier_metrics), ("norms", norm_trajectories), ("landscape", interpolation),
                     ("probes", probe_curves)):
        items = analysed(rows, name)
        for variant in sorted({r["variant"] for r, _, _ in items}):
            mine = [it for it in items if it[0]["variant"] == variant]
            new = fn(mine, variant, out)
            captions[new[0].stem] = f"{ANALYSIS_CAPTIONS[name]}, `{variant}`: {_runs_of([r for r, _, _ in mine])}."
            paths += new
        if name == "fourier":
            with_logits = analysed(rows, name, "logit_restricted_loss")  # a seed's longest run that has them
            for variant in sorted({r["variant"] for r, _, _ in with_logits}):
                new, seeds = logit_ratio([it for it in with_logits if it[0]["variant"] == variant], variant, out)
                if new:
                    captions[new[0].stem] = (
                        f"C6, read from the logits, `{variant}`: per seed, dream's over baseline's restricted loss "
                        "with the five strongest frequencies of the logits' (a+b) spectrum, each capped at chance "
                        "(ln p: above it, no Fourier solution), at each checkpoint both "
                        "runs have (log scale; below 1: dream nearer the Fourier solution; dotted: the 2/3 margin "
                        "of the C6 rule); solid: before either run of the seed grokked (the plateau), faint and "
                        f"dashed: after. Seeds {', '.join(map(str, seeds))}: each seed's longest runs analysed "
                        "with this reading.")
                    paths += new
            for r, a, _ in spectrum_items(items, spectra_per_arm):
                new = spectrum(r, a, out)
                captions[new[0].stem] = (f"Norm of each Fourier frequency k of W_E at each checkpoint (colour), "
                                         f"`{r['variant']}` {r['arm']} seed {r['seed']} ({int(r['budget'])} steps); "
                                         + ("white ticks: replay events." if r["arm"] in REPLAY_ARMS
                                            else "no ticks: this arm does not replay."))
                paths += new
    if prune:
        written = set(paths)
        for f in sorted(out.glob("*")):
            if f.suffix in (".png", ".pdf") and f.name.startswith(FIGURE_PREFIXES) and f not in written:
                f.unlink()
    return paths


def main(argv: list[str] | None = None) -> int:
    from .cli import OneLineParser, error_line, nonnegative_int

    ap = OneLineParser(prog="python -m mechgrok.figures", description="Draw the paper's figures from run files.")
    ap.add_argument("paths", nargs="+", help="run files or folders (searched recursively)")
    ap.add_argument("--out", default="figures", help="output folder (figures/)")
    ap.add_argument("--table", help="also the finished runs of this results table (results/runs.csv) whose "
                                    "files are not here, with the curves and analyses tables beside it")
    ap.add_argument("--spectra-per-arm", type=nonnegative_int, default=SPECTRA_PER_ARM, metavar="N",
                    help=f"W_E spectrum heatmaps per variant and arm: seed 42 and the lowest seeds analysed in every "
                         f"arm ({SPECTRA_PER_ARM}; 0 = one for every analysed run)")
    args = ap.parse_args(argv)
    try:
        out_dir(args.out)
        rows, problems, _ = load(args.paths, args.table or None)
        if not finished(rows):
            raise no_runs_error(args.paths, problems, table=args.table)
        for p in problems:
            print(f"skipped: {p}", file=sys.stderr)
        paths = make_all(rows, args.out, spectra_per_arm=args.spectra_per_arm or None)
    except MechgrokError as exc:
        return error_line(ap.prog, exc)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
