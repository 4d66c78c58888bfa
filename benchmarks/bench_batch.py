"""Throughput of the batched trainer (mechgrok/batch.py): R runs of one arm in one process.

    .venv/bin/python benchmarks/bench_batch.py [--runs 1 2 4 8] [--steps 100] [--threads 2] [--device cpu]

For each R, trains R hard-regime runs (seeds 0..R-1, the arm's default settings, budget
``--steps``) as one batch with every piece of bookkeeping (evaluations, checkpoints, run
files in a temporary folder), and reports run-steps per second (R x steps / wall time) and
the implied runs per hour of the full 30k-step budget, for both forwards of the batch
(``vmap`` over the stack, and ``loop``: run by run over slices of it). R = 1 through the
ordinary trainer (mechgrok.loop) is the reference. Model construction is not timed. Writes
``benchmarks/results/bench_batch[_DEVICE].json``.

Run it on an otherwise idle machine: other processes distort every number.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from mechgrok.batch import Batch, _Member
from mechgrok.config import make_config
from mechgrok.loop import _Run
from mechgrok.cli import OneLineParser, device_arg, positive_int, run_one_line


def timed_fit(runs_per_batch: int, steps: int, arm: str, device: torch.device, folder: Path,
              vectorise: bool | None = None) -> float:
    cfgs = [make_config("hard", arm, seed, steps=steps) for seed in range(runs_per_batch)]
    cls = _Run if runs_per_batch == 1 else _Member
    runs = []
    for cfg in cfgs:
        run = cls(cfg, folder / f"R{runs_per_batch}_{vectorise}_seed{cfg.seed}.h5", device)
        run.create()
        runs.append(run)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    runs[0].fit() if runs_per_batch == 1 else Batch(runs, vectorise=vectorise).fit()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=positive_int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--steps", type=positive_int, default=100)
    ap.add_argument("--threads", type=positive_int, default=2)
    ap.add_argument("--arm", default="dream")
    ap.add_argument("--device", type=device_arg, default="cpu")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    budget = make_config("hard", args.arm, 0).steps
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        timed_fit(1, 5, args.arm, device, Path(tmp) / "warm")  # first-call costs out of the way
        for r in args.runs:
            for vectorise in ([None] if r == 1 else [False, True]):
                wall = timed_fit(r, args.steps, args.arm, device, Path(tmp), vectorise)
                rate = r * args.steps / wall
                rows.append({"runs": r, "mode": "single" if r == 1 else ("vmap" if vectorise else "loop"),
                             "steps": args.steps, "wall_s": round(wall, 2),
                             "ms_per_batched_step": round(1e3 * wall / args.steps, 1),
                             "run_steps_per_s": round(rate, 2),
                             "full_runs_per_hour": round(3600 * rate / budget, 3)})
    base = rows[0]["run_steps_per_s"] if rows and rows[0]["runs"] == 1 else None
    for row in rows:
        row["vs_R1"] = None if base is None else round(row["run_steps_per_s"] / base, 2)
    result = {"arm": args.arm, "threads": args.threads, "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
              "platform": platform.platform(), "torch": torch.__version__, "budget": budget, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "bench_batch.json" if device.type == "cpu" else f"bench_batch_{device.type}.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'R':>3} {'mode':>6} {'ms/step':>8} {'run-steps/s':>12} {'x R=1':>6} {'30k runs/h':>10}")
    for row in rows:
        print(f"{row['runs']:>3} {row['mode']:>6} {row['ms_per_batched_step']:>8} {row['run_steps_per_s']:>12} "
              f"{row['vs_R1'] if row['vs_R1'] is not None else '-':>6} {row['full_runs_per_hour']:>10}")


if __name__ == "__main__":
    sys.exit(run_one_line("bench_batch.py", main))
