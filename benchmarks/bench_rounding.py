"""How far does one seed's grok step move when only the float rounding of its training changes?
Two variants of one arm that train the same arithmetic, compared seed by seed from the results
table (no training).

    .venv/bin/python benchmarks/bench_rounding.py --variant A --rerun B [--arm baseline] --seeds 42,0-8
        [--context-arms dream control] [--table results/runs.csv] [--out F]

The two variants may differ only in settings that change what is measured, not the training: the
evaluation interval (``tests/test_loop.py``) and, for an arm that never replays, the replay-event
interval (its events only evaluate and checkpoint). B's evaluation interval must divide A's, so A's
evaluation steps are also B's. For each seed with a finished row of the arm in both variants (the
longest budget of each):

- each run's grok step on A's evaluation grid: A's recorded one, and B's read from its learning curve
  (``results/curves.csv``) at A's steps with the same threshold (the curve keeps 4 significant
  digits, so an accuracy less than 5e-5 below the threshold reads as reaching it); the ratio A / B
  of the two, and the fold change max(ratio, 1 / ratio);
- whether the two curves are the same text at 4 significant digits at every step they share, and the
  first step where they differ (unknown where the table carries no curve for one of them). Curves
  that agree come from the same computation; curves that differ from step s were computed with
  another rounding from then on (another thread count or kernel path; the rows record the thread
  count, 0 = not recorded), since the configs are the same.

Summary: the fold changes of the pairs whose curves differ, and, with ``--context-arms``, for scale,
the fold change between the arm and each context arm of variant A at one seed (both grokked; every
seed A holds, not only ``--seeds``), which is what a per-seed comparison of two arms measures.
Runs that did not grok are counted, not used.
This measures; it checks nothing, so the exit code is 0 unless the input is bad (2).
Writes ``benchmarks/results/bench_rounding.json`` (or ``--out``).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mechgrok.cli import OneLineParser, run_one_line  # noqa: E402  (after the path above)
from mechgrok.errors import MechgrokError  # noqa: E402


def config_of(row: dict):
    from mechgrok.config import config_of_variant
    return config_of_variant(row["variant"], arm=row["arm"], seed=row["seed"], steps=row["budget"])


def check_same_training(a, b) -> None:
    """MechgrokError unless configs ``a`` and ``b`` train the same arithmetic, with B's evaluation
    steps a superset of A's."""
    from mechgrok.config import REPLAY_ARMS
    free = {"eval_every", "steps"} | ({"dream_every"} if a.arm not in REPLAY_ARMS else set())
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    changed = sorted(k for k in da if da[k] != db[k] and k not in free)
    if changed:
        raise MechgrokError(f"{a.reading()} and {b.reading()} ({a.arm}) differ in {', '.join(changed)}, "
                            f"which change the training; only {', '.join(sorted(free))} may differ")
    if a.eval_every % b.eval_every:
        raise MechgrokError(f"the rerun's evaluation interval ({b.eval_every}) does not divide the first's "
                            f"({a.eval_every}): their evaluation steps are not nested")


def grok_on_grid(curve: dict, every: int, threshold: float) -> int | None:
    """The first step of ``curve`` that is a multiple of ``every`` with test accuracy >= ``threshold``."""
    for step, acc in zip(curve["step"], curve["test_acc"]):
        if step % every == 0 and acc >= threshold:
            return int(step)
    return None


def first_difference(a: dict | None, b: dict | None) -> tuple[int, int | None] | None:
    """(steps compared, first step where the curves differ or None); None without both. Both curves
    come from the curves table, which wrote them at 4 significant digits, so equal values are equal text."""
    if a is None or b is None:
        return None

    def values(c):
        return {int(s): (t, r) for s, t, r in zip(c["step"], c["test_acc"], c["train_acc"])}
    va, vb = values(a), values(b)
    shared = sorted(set(va) & set(vb))
    return len(shared), next((s for s in shared if va[s] != vb[s]), None)


def fold(ratio: float) -> float:
    return max(ratio, 1 / ratio)


def spread(folds: list[float]) -> dict:
    return {"n": len(folds), "median_fold": statistics.median(folds) if folds else None,
            "max_fold": max(folds) if folds else None}


def compare_pair(a: dict, b: dict, curves: dict) -> dict:
    """One seed: A's row and the rerun B's row of the same arm."""
    ca, cb = config_of(a), config_of(b)
    check_same_training(ca, cb)
    out = {"seed": a["seed"], "threads": [a["threads"], b["threads"]], "devices": [a["device"], b["device"]],
           "grok_step_recorded": [a["time_to_grok"] if a["grokked"] else None,
                                  b["time_to_grok"] if b["grokked"] else None]}
    curve_b = curves.get(b["config_hash"])
    if curve_b is None:
        raise MechgrokError(f"{b['variant']} {b['arm']} seed {b['seed']}: no learning curve in the table")
    on_grid = [out["grok_step_recorded"][0], grok_on_grid(curve_b, ca.eval_every, cb.grok_threshold)]
    out["grok_step_on_first_grid"] = on_grid
    out["ratio"] = on_grid[0] / on_grid[1] if None not in on_grid else None
    out["fold"] = fold(out["ratio"]) if out["ratio"] is not None else None
    diff = first_difference(curves.get(a["config_hash"]), curve_b)
    out["curves"] = ("not carried" if diff is None else "same at 4 digits" if diff[1] is None else "differ")
    out["steps_compared"], out["first_differing_step"] = (None, None) if diff is None else diff
    return out


def context(rows: list[dict], arm: str, other: str) -> dict:
    """Fold changes between ``arm`` and ``other`` in one variant's rows, at every seed holding both."""
    from mechgrok.results import finished, select
    used, folds, not_both = [], [], 0
    for seed in sorted({r["seed"] for r in rows}):
        x, y = (finished(select(rows, arm=name, seed=seed)) for name in (arm, other))
        if not x or not y:
            continue
        if x[0]["grokked"] and y[0]["grokked"]:
            used.append(seed)
            folds.append(fold(x[0]["time_to_grok"] / y[0]["time_to_grok"]))
        else:
            not_both += 1
    return {**spread(folds), "seeds": used, "not_both_grokked": not_both}


def main(argv=None) -> int:
    ap = OneLineParser(prog="bench_rounding.py", description=__doc__.splitlines()[0])
    ap.add_argument("--variant", required=True, help="the first variant (A)")
    ap.add_argument("--rerun", required=True, help="the variant that trained the same seeds again (B)")
    ap.add_argument("--arm", default="baseline")
    ap.add_argument("--seeds", required=True, help="e.g. 42,0-8")
    ap.add_argument("--context-arms", nargs="*", default=[], help="arms of A to compare with --arm, for scale")
    ap.add_argument("--table", type=Path, default=ROOT / "results" / "runs.csv")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_rounding.json")
    args = ap.parse_args(argv)
    from mechgrok.results import finished, read_csv, read_curves, select
    from mechgrok.sweep import parse_seeds

    seeds = parse_seeds(args.seeds)
    table = read_csv(args.table)
    curves = read_curves(args.table.with_name("curves.csv"))
    first, rerun = (select(table, variant=v) for v in (args.variant, args.rerun))
    pairs, missing = [], []
    for seed in seeds:
        a, b = (finished(select(rows, arm=args.arm, seed=seed)) for rows in (first, rerun))
        if a and b:
            pairs.append(compare_pair(a[0], b[0], curves))
        else:
            missing.append(seed)
    if not pairs:
        raise MechgrokError(f"{args.table}: no seed of {args.seeds} has a finished {args.arm} run in both variants")
    for r in pairs:
        print(f"seed {r['seed']} (threads {r['threads'][0]} / {r['threads'][1]}): grok step on the first grid "
              f"{r['grok_step_on_first_grid'][0]} / {r['grok_step_on_first_grid'][1]}"
              + (f", fold {r['fold']:.3g}" if r["fold"] is not None else "") + f"; curves {r['curves']}"
              + (f" from step {r['first_differing_step']}" if r["curves"] == "differ" else ""))
    by_curves = {kind: [r for r in pairs if r["curves"] == kind] for kind in ("same at 4 digits", "differ", "not carried")}
    summary = {kind: {**spread([r["fold"] for r in rs if r["fold"] is not None]),
                      "equal_on_grid": sum(r["fold"] == 1 for r in rs),
                      "not_both_grokked": sum(r["fold"] is None for r in rs)} for kind, rs in by_curves.items()}
    ctx = {other: context(first, args.arm, other) for other in args.context_arms}
    for kind, s in summary.items():
        if s["n"]:
            print(f"curves {kind}: {s['n']} pairs grokked in both, {s['equal_on_grid']} at the same step; "
                  f"fold median {s['median_fold']:.3g}, max {s['max_fold']:.3g}")
    for other, s in ctx.items():
        if s["n"]:
            print(f"{args.arm} vs {other} in the first variant, same seed: {s['n']} seeds, "
                  f"fold median {s['median_fold']:.3g}, max {s['max_fold']:.3g}")
    out = {"variant": args.variant, "rerun": args.rerun, "arm": args.arm, "seeds": seeds,
           "seeds_missing": missing, "pairs": pairs, "summary_by_curves": summary, "context": ctx}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_one_line("bench_rounding.py", main))
