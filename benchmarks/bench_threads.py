"""Is a CPU run reproducible from its seed? The same seeds trained again and again, on 1 and on 2 threads.

    .venv/bin/python benchmarks/bench_threads.py [--seeds 4] [--reps 4] [--out F]

Each repetition is a child process that trains seeds 0..N-1 one after another with
``mechgrok.loop.train``, as a sweep worker does, in the tests' reading that groks within a
few hundred steps (``GROKS`` in tests/conftest.py: p = 13, random split, threshold 0.7).
Two repetitions run at once, so each trains beside another's load, as sweep workers do.
Per seed it records the stop step, the grok step and a hash of the final weights, and per
thread count how many distinct outcomes the repetitions gave (1 = reproducible).
Writes ``benchmarks/results/bench_threads.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from mechgrok.cli import OneLineParser, positive_int, run_one_line

ROOT = Path(__file__).resolve().parents[1]


def child(threads: int, seeds: int) -> list[dict]:
    """Train seeds 0..seeds-1 on ``threads`` threads into a scratch folder; one row per seed."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import GROKS

    from mechgrok import runstore
    from mechgrok.config import make_config
    from mechgrok.loop import train

    rows = []
    with tempfile.TemporaryDirectory() as d:
        for seed in range(seeds):
            path = Path(d) / f"seed{seed}.h5"
            attrs = train(make_config("hard", "dream", seed, **GROKS), path, threads=threads)
            final = runstore.read_checkpoint(path, runstore.list_checkpoints(path)[-1]["name"])
            digest = hashlib.sha256()
            for key in sorted(final):
                digest.update(key.encode() + np.ascontiguousarray(final[key]).tobytes())
            rows.append({"seed": seed, "last_step": int(attrs["last_step"]), "grok_step": int(attrs["grok_step"]),
                         "weights_sha256": digest.hexdigest()[:16]})
    return rows


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=positive_int, default=4)
    ap.add_argument("--reps", type=positive_int, default=4, help="repetitions per thread count (run two at a time)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/bench_threads.json"))
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.seeds)))
        return
    result = {"machine": platform.processor() or platform.machine(), "seeds": args.seeds, "reps": args.reps,
              "threads": {}}
    for threads in (1, 2):
        reps = []
        for start in range(0, args.reps, 2):
            procs = [subprocess.Popen([sys.executable, __file__, "--child", str(threads), "--seeds", str(args.seeds)],
                                      stdout=subprocess.PIPE, text=True, cwd=ROOT)
                     for _ in range(min(2, args.reps - start))]
            for proc in procs:
                out, _ = proc.communicate()
                if proc.returncode:
                    sys.exit(f"bench_threads: a child on {threads} thread(s) failed (exit {proc.returncode})")
                reps.append(json.loads(out))
        outcomes = {json.dumps(rep) for rep in reps}
        result["threads"][str(threads)] = {
            "distinct_outcomes": len(outcomes),
            "last_steps_per_rep": [[row["last_step"] for row in rep] for rep in reps],
            "weights_per_rep": [[row["weights_sha256"] for row in rep] for rep in reps]}
        print(f"{threads} thread(s): {len(outcomes)} distinct outcome(s) in {len(reps)} repetitions; stop steps "
              + " | ".join(",".join(str(r["last_step"]) for r in rep) for rep in reps))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(run_one_line("bench_threads.py", main))
