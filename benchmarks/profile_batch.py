"""Where the batched trainer's step time goes: torch.profiler over a batch of R hard-regime runs.

    python benchmarks/profile_batch.py [--runs 32] [--steps 60] [--device cuda] [--out benchmarks/results]

Trains R runs (seeds 0..R-1, dream arm, every piece of bookkeeping) for ``--steps`` steps after
a warm-up of the same length, under ``torch.profiler``, and writes the operator table sorted by
self device time and by self CPU time to ``profile_batch_<device>.txt``, with the wall time per
batched step and the share of it during which the device was busy.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from mechgrok.batch import Batch, _Member
from mechgrok.config import make_config
from mechgrok.cli import OneLineParser, device_arg, positive_int, run_one_line


def members(R: int, steps: int, device: torch.device, folder: Path, tag: str) -> list[_Member]:
    runs = []
    for seed in range(R):
        run = _Member(make_config("hard", "dream", seed, steps=steps), folder / f"{tag}{seed}.h5", device)
        run.create()
        runs.append(run)
    return runs


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=positive_int, default=32)
    ap.add_argument("--steps", type=positive_int, default=60)
    ap.add_argument("--device", type=device_arg, default="cuda")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory() as tmp:
        Batch(members(args.runs, args.steps, device, Path(tmp), "warm")).fit()
        batch = Batch(members(args.runs, args.steps, device, Path(tmp), "prof"))
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        sync()
        t = time.perf_counter()
        with profile(activities=acts) as prof:
            batch.fit()
            sync()
        wall = time.perf_counter() - t
    avg = prof.key_averages()
    dev_key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    busy_us = sum(getattr(e, "self_device_time_total", 0) for e in avg) if device.type == "cuda" else float("nan")
    head = (f"R = {args.runs}, {args.steps} steps (dream arm, hard regime, bookkeeping included) on "
            f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}\n"
            f"wall {1e3 * wall / args.steps:.1f} ms per batched step (under the profiler); device busy "
            f"{1e-3 * busy_us / args.steps:.1f} ms per step ({100 * 1e-6 * busy_us / wall:.0f}% of wall)\n")
    text = head + "\n== by self device time ==\n" + avg.table(sort_by=dev_key, row_limit=25) + \
        "\n== by self CPU time ==\n" + avg.table(sort_by="self_cpu_time_total", row_limit=25)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"profile_batch_{device.type}.txt").write_text(text)
    print(head)


if __name__ == "__main__":
    sys.exit(run_one_line("profile_batch.py", main))
