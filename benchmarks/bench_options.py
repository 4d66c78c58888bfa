"""Options of issue 3 measured on this CPU: bf16 autocast and torch.compile of the training step.

    .venv/bin/python benchmarks/bench_options.py [--threads 2] [--reps 30]

Times one full-batch training step of the hard regime (1552 sequences, AdamW, the
last-position forward of mechgrok/fastpath.py) three ways on the same weights and
inputs: fp32 (the default), bf16 autocast with fp32 master weights, and
``torch.compile`` of the loss function (compile time reported separately). Also the
largest logit difference of each against fp32 after one step. Writes
``benchmarks/results/bench_options.json``. Neither option is adopted by this script:
a change of numerics needs a time-to-grok comparison over seeds first.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

from mechgrok import fastpath
from mechgrok.config import make_config
from mechgrok.data import encode, split_indices
from mechgrok.model import build_model, per_example_loss, weights, load_weights
from mechgrok.cli import OneLineParser, positive_int, run_one_line


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=positive_int, default=2)
    ap.add_argument("--reps", type=positive_int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = make_config("hard", "baseline", 0)
    tr, _ = split_indices(cfg)
    x, y = map(torch.as_tensor, encode(tr, cfg.p))
    model = build_model(cfg)
    w0 = weights(model)

    def loss_fn():
        return per_example_loss(fastpath.last_logits(model, x), y).mean()

    def timed(fn, autocast=False):
        load_weights(model, w0)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = fn()
            loss.backward()
            opt.step()

        t = time.perf_counter()
        step()
        first = time.perf_counter() - t
        for _ in range(3):
            step()
        t = time.perf_counter()
        for _ in range(args.reps):
            step()
        per = (time.perf_counter() - t) / args.reps
        with torch.no_grad():
            logits = fastpath.last_logits(model, x)
        return per, first, logits

    results = {"threads": args.threads, "reps": args.reps, "platform": platform.platform(),
               "torch": torch.__version__}
    base, _, ref = timed(loss_fn)
    results["fp32_step_ms"] = round(base * 1e3, 2)
    bf, _, lb = timed(loss_fn, autocast=True)
    results["bf16_autocast_step_ms"] = round(bf * 1e3, 2)
    results["bf16_max_logit_diff_after_34_steps"] = float((lb - ref).abs().max())
    try:
        compiled = torch.compile(loss_fn)
        cp, first, lc = timed(compiled)
        results["compiled_step_ms"] = round(cp * 1e3, 2)
        results["compile_first_step_s"] = round(first, 1)
        results["compiled_max_logit_diff_after_34_steps"] = float((lc - ref).abs().max())
    except Exception as exc:  # noqa: BLE001 - a failed compile is a result to record
        results["compiled_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    for k, v in results.items():
        print(f"{k}: {v}")
    out = Path(__file__).parent / "results" / "bench_options.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(run_one_line("bench_options.py", main))
