"""The README's main job: every stage of mechgrok end to end in a few minutes on 2 CPU cores.

``python -m mechgrok.demo --out demo-runs`` trains the three arms (baseline,
dream, control) of the paper's hard regime for a short budget (800 steps: the
model memorises, two replay events happen), one process per arm, reads the run
files back, prints the time-to-grok table (mechgrok.stats), runs the analyses
(fourier, norms, landscape, probes), and writes the claims audit and figures to
``OUT/report/``. A verdict on the paper needs the full budgets and many seeds;
this only shows the machinery working: the run-based verdicts say so ("inconclusive
at n = 1" or "no runs"); only C11 and C12 (exact counts, a property of the split) get one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import runstore
from .cli import OneLineParser
from .config import make_config
from .errors import MechgrokError, out_dir
from .train import default_run_path

ARMS = ("baseline", "dream", "control")


def train_arms(out: Path, steps: int, seed: int) -> dict[str, Path]:
    """Train the three arms side by side (one single-threaded process each)."""
    procs, paths = {}, {}
    for arm in ARMS:
        paths[arm] = default_run_path(make_config("hard", arm, seed, steps=steps), out)
        cmd = [sys.executable, "-m", "mechgrok.train", "--regime", "hard", "--arm", arm, "--seed", str(seed),
               "--steps", str(steps), "--out", str(out), "--threads", "1", "--quiet"]
        if paths[arm].exists():
            cmd.append("--overwrite")
        procs[arm] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    for arm, proc in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"mechgrok.demo: training the {arm} arm failed (exit {proc.returncode})")
    return paths


def report(paths: dict[str, Path]) -> str:
    lines = [f"{'arm':<9} {'steps':>5} {'train acc':>9} {'test acc':>8} {'events':>6} {'extra passes':>12} "
             f"{'checkpoints':>11} {'MB':>5} {'seconds':>7}"]
    for arm, path in paths.items():
        a = runstore.read_attrs(path)
        m = runstore.read_table(path, "metrics")
        ev = runstore.read_table(path, "events")
        lines.append(f"{arm:<9} {a['last_step']:>5} {m['train_acc'][-1]:>9.3f} {m['test_acc'][-1]:>8.3f} "
                     f"{len(ev['step']):>6} {a['passes_fwd_extra']:>12} {len(runstore.list_checkpoints(path)):>11} "
                     f"{os.path.getsize(path) / 1e6:>5.1f} {a['wall_time_s']:>7.1f}")
    lines.append("")
    lines.append("replay events (whole-set accuracy just before -> just after the extra steps):")
    for arm in ("dream", "control"):
        ev = runstore.read_table(paths[arm], "events")
        for i, step in enumerate(ev["step"]):
            lines.append(f"  {arm:<8} step {step:>5}: train {ev['train_acc_before'][i]:.3f} -> "
                         f"{ev['train_acc_after'][i]:.3f}, test {ev['test_acc_before'][i]:.3f} -> "
                         f"{ev['test_acc_after'][i]:.3f}, replayed surprise {ev['selected_surprise_mean'][i]:.3g} "
                         f"vs memory mean {ev['memory_surprise_mean'][i]:.3g}")
    lines.append("")
    lines.append("run files:")
    lines += [f"  {path}" for path in paths.values()]
    lines.append("schema: docs/run-file.md. A verdict needs the full budget and many seeds, e.g.")
    lines.append("  python -m mechgrok.train --regime hard --arm dream --seed 42")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m mechgrok.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo-runs", help="folder for the demo's run files (demo-runs/), kept apart from "
                                                       "the replication's runs/")
    ap.add_argument("--steps", type=int, default=800, help="step budget of each arm (800)")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:  # bad settings are refused here, in one line, before three training processes each refuse them
        out_dir(out)
        for arm in ARMS:
            make_config("hard", arm, args.seed, steps=args.steps)
    except MechgrokError as exc:
        ap.error(str(exc))
    print(f"training baseline, dream and control on the hard regime for {args.steps} steps -> {out}/", flush=True)
    paths = train_arms(out, args.steps, args.seed)
    print(report(paths))
    from . import analyze, stats
    from .report import build
    from .results import collect

    rows, _ = collect(list(paths.values()))
    print("\ntime-to-grok per arm (python -m mechgrok.stats):")
    print(stats.format_table(stats.table(rows)))
    print("\nanalyses (python -m mechgrok.analyze NAME RUNS):", flush=True)
    for name in analyze.ANALYSES:
        for path in paths.values():
            print("  " + analyze._summary_line(name, path, analyze.analyse(name, path)), flush=True)
    md, verdicts = build(list(paths.values()), out / "report")
    print(f"\nclaims audit -> {md} and {md.parent / 'report.html'} (figures in {md.parent / 'figures'}):")
    for v in verdicts:
        print(f"  {v.id:<4} {v.verdict}")
    print("a verdict needs the full sweep: make pilot (see README, 'Replication')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
