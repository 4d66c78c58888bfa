"""Sweep throughput on this machine: the same runs with 1 worker and with 2 workers.

    python benchmarks/bench_sweep.py [--runs 4] [--steps 300]

Trains ``--runs`` hard-regime runs (seeds 0.., arm baseline, paper settings, budget
``--steps``) through :func:`mechgrok.sweep.run_local` with one worker process, with two
(one torch thread each), and with one worker of two threads, into fresh temporary folders, and writes
``benchmarks/results/bench_sweep.json``. Throughput is training steps per wall-clock
second over the whole sweep, process start-up included. Run it on an idle machine.
"""

import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from mechgrok.sweep import plan, run_local
from mechgrok.cli import OneLineParser, positive_int, run_one_line


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=positive_int, default=4)
    ap.add_argument("--steps", type=positive_int, default=300)
    args = ap.parse_args()
    result = {"runs": args.runs, "steps_per_run": args.steps, "regime": "hard", "cpu_count": os.cpu_count(),
              "platform": platform.platform()}
    for workers, threads in ((1, 1), (2, 1), (1, 2)):
        with tempfile.TemporaryDirectory() as out:
            jobs = plan(["hard"], ["baseline"], list(range(args.runs)), out, steps=args.steps)
            t = time.perf_counter()
            run_local(jobs, workers=workers, threads=threads, stream=io.StringIO())
            wall = time.perf_counter() - t
        key = f"workers_{workers}" if threads == 1 else f"workers_{workers}_threads_{threads}"
        result[key] = {"wall_s": round(wall, 2), "steps_per_s": round(args.runs * args.steps / wall, 2)}
        print(f"{workers} worker(s) x {threads} thread(s): {wall:.1f} s, {args.runs * args.steps / wall:.1f} steps/s",
              flush=True)
    result["speedup_2_vs_1"] = round(result["workers_2"]["steps_per_s"] / result["workers_1"]["steps_per_s"], 3)
    result["two_1thread_vs_one_2thread"] = round(
        result["workers_2"]["steps_per_s"] / result["workers_1_threads_2"]["steps_per_s"], 3)
    print(f"2 workers vs 1: {result['speedup_2_vs_1']:.2f}x; two 1-thread workers vs one 2-thread worker: "
          f"{result['two_1thread_vs_one_2thread']:.2f}x")
    path = Path(__file__).parent / "results" / "bench_sweep.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(run_one_line("bench_sweep.py", main))
