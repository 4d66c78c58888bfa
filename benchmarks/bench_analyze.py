"""Speed of the analyses on a real run file (2 CPU cores).

    python benchmarks/bench_analyze.py runs/hard/dream/seed42.h5

Times, without writing to the run file: the ``fourier`` analysis over every
checkpoint of the run, ``norms`` over every checkpoint, and one 41-point
interpolation (init -> final checkpoint) on all p*p pairs (train and test sets).
Writes ``benchmarks/results/bench_analyze.json``. Run it on an idle machine.
"""

import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from mechgrok import analyze
from mechgrok import landscape as LS
from mechgrok.cli import OneLineParser, run_one_line


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a run file (p = 97 for the figures the README quotes)")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    view = analyze.RunView(args.run)
    n = len(view.checkpoints())
    t = time.perf_counter()
    analyze.fourier(view)
    t_fourier = time.perf_counter() - t
    t = time.perf_counter()
    analyze.norms(view)
    t_norms = time.perf_counter() - t
    ck = view.checkpoints()
    a, b = view.weights(ck[0]["name"]), view.weights(ck[-1]["name"])
    t = time.perf_counter()
    LS.interpolate(view.model, a, b, view.data(), LS.DEFAULT_GRID)
    t_interp = time.perf_counter() - t
    result = {"run": str(args.run), "p": view.cfg.p, "checkpoints": n, "fourier_s": round(t_fourier, 2),
              "fourier_s_per_100_checkpoints": round(t_fourier * 100 / n, 2), "norms_s": round(t_norms, 2),
              "interpolation_41_points_all_pairs_s": round(t_interp, 2), "pairs": view.cfg.p ** 2,
              "threads": torch.get_num_threads(), "platform": platform.platform()}
    for k, v in result.items():
        print(f"{k}: {v}")
    out = Path(__file__).parent / "results" / "bench_analyze.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(run_one_line("bench_analyze.py", main))
