"""What a training run costs, measured in one process on the same inputs.

    .venv/bin/python benchmarks/bench_step.py [--threads 2] [--run-steps 800] [--out benchmarks/results]

Writes ``bench_step.json`` and prints a table:

- one full-batch training step of the hard regime (1552 sequences, AdamW), through
  mechgrok's loop with the full TransformerLens forward and with the last-position
  forward (mechgrok/fastpath.py), against a minimal hand-written PyTorch model of the
  same shapes and math (computing all positions or only what the loss needs);
- the fraction of the machine's measured dense fp32 matmul FLOP/s that each achieves;
- evaluation throughput over all p*p pairs, and the time to write one checkpoint;
- a real dream run of the hard regime for ``--run-steps`` steps, and the share of its
  wall time that is not training steps (evaluation, replay bookkeeping, checkpoints).

Run it on an otherwise idle machine: other processes distort every number.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from mechgrok import runstore
from mechgrok.config import make_config
from mechgrok.data import encode, split_indices
from mechgrok.loop import _Run, train
from mechgrok.model import build_model, weights
from mechgrok.cli import OneLineParser, positive_int, run_one_line


class MinimalModel(nn.Module):
    """The bridge's native transformer, written out by hand (no hooks, no bridge)."""

    def __init__(self, cfg, last_only: bool):
        super().__init__()
        d, m = cfg.d_model, cfg.d_mlp
        self.cfg, self.last_only = cfg, last_only
        self.embed = nn.Embedding(cfg.vocab, d)
        self.pos = nn.Parameter(torch.randn(3, d) * 0.02)
        self.blocks = nn.ModuleList()
        for _ in range(cfg.n_layers):
            self.blocks.append(nn.ModuleDict({name: nn.Linear(d, d) for name in "qkvo"} |
                                             {"fc_in": nn.Linear(d, m), "fc_out": nn.Linear(m, d)}))
        self.unembed = nn.Linear(d, cfg.p, bias=False)
        self.register_buffer("mask", torch.triu(torch.ones(3, 3, dtype=torch.bool), 1))

    def forward(self, tokens):
        n = tokens.shape[0]
        h, dh = self.cfg.n_heads, self.cfg.d_head
        x = self.embed(tokens) + self.pos
        for i, blk in enumerate(self.blocks):
            last = self.last_only and i == len(self.blocks) - 1
            split = lambda t: t.view(n, -1, h, dh).transpose(1, 2)  # noqa: E731
            queries = x[:, -1:] if last else x
            q, k, v = split(blk["q"](queries)), split(blk["k"](x)), split(blk["v"](x))
            s = q @ k.transpose(-2, -1) / math.sqrt(dh)
            if not last:
                s = s.masked_fill(self.mask, float("-inf"))
            z = (s.softmax(-1) @ v).transpose(1, 2).reshape(n, queries.shape[1], -1)
            x = queries + blk["o"](z)
            x = x + blk["fc_out"](F.relu(blk["fc_in"](x)))
        return self.unembed(x[:, -1])


def forward_flops(cfg, last_only: bool) -> float:
    """Matmul FLOPs (2 per multiply-add) of one sequence's forward pass."""
    d, m, s = cfg.d_model, cfg.d_mlp, 3
    per_pos = 4 * d * d + 2 * d * m  # q, k, v, o and the MLP
    total = 0
    for layer in range(cfg.n_layers):
        if last_only and layer == cfg.n_layers - 1:
            total += s * 2 * d * d + (2 * d * d + 2 * d * m) + 2 * s * d  # k, v at all; q, o, MLP, attention at one
        else:
            total += s * per_pos + 2 * s * s * d
    total += (1 if last_only else s) * d * cfg.p
    return 2.0 * total


def timed(fn, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def matmul_flops(n: int = 2048, repeat: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / timed(lambda: a @ b, repeat)


def main(argv=None) -> int:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=positive_int, default=2)
    ap.add_argument("--repeat", type=positive_int, default=30, help="timed steps per variant")
    ap.add_argument("--run-steps", type=positive_int, default=800, help="steps of the real dream run")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = make_config("hard", "dream", 42)
    res = {"machine": platform.processor() or platform.machine(), "threads": args.threads,
           "torch": torch.__version__, "n_train": cfg.n_train}

    res["matmul_flops"] = matmul_flops()
    train_idx, _ = split_indices(cfg)
    x, y = (torch.as_tensor(t) for t in encode(train_idx, cfg.p))

    def mechgrok_step(fast: bool):
        run = _Run(make_config("hard", "dream", 42, fast_forward=fast), Path("/dev/null"), torch.device("cpu"))
        return lambda: run._optimise(None, extra=False)

    def minimal_step(last_only: bool):
        model = MinimalModel(cfg, last_only)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

        def step():
            losses = F.cross_entropy(model(x), y, reduction="none")
            opt.zero_grad(set_to_none=True)
            losses.mean().backward()
            opt.step()
        return step

    steps = {
        "mechgrok_full_forward": mechgrok_step(False),
        "mechgrok_fast_forward": mechgrok_step(True),
        "minimal_full": minimal_step(False),
        "minimal_last_only": minimal_step(True),
    }
    for name, fn in steps.items():  # interleave rounds so drift hits every variant alike
        res[f"step_s_{name}"] = []
    for _ in range(3):
        for name, fn in steps.items():
            res[f"step_s_{name}"].append(timed(fn, args.repeat // 3))
    for name in steps:
        res[f"step_s_{name}"] = min(res[f"step_s_{name}"])
    for name, last_only in (("mechgrok_full_forward", False), ("mechgrok_fast_forward", True)):
        flops = 3 * forward_flops(cfg, last_only) * cfg.n_train  # backward ~ 2x forward
        res[f"achieved_flops_{name}"] = flops / res[f"step_s_{name}"]
        res[f"matmul_fraction_{name}"] = res[f"achieved_flops_{name}"] / res["matmul_flops"]
    res["ratio_full_vs_minimal_full"] = res["step_s_mechgrok_full_forward"] / res["step_s_minimal_full"]
    res["ratio_fast_vs_minimal_last_only"] = res["step_s_mechgrok_fast_forward"] / res["step_s_minimal_last_only"]
    res["speedup_fast_vs_full"] = res["step_s_mechgrok_full_forward"] / res["step_s_mechgrok_fast_forward"]

    # evaluation over all p*p pairs, and one checkpoint write
    model = build_model(cfg)
    all_x = torch.as_tensor(encode(torch.arange(cfg.p ** 2).numpy(), cfg.p)[0])
    from mechgrok.model import last_logits

    with torch.no_grad():
        for fast in (False, True):
            sec = timed(lambda: last_logits(model, all_x, fast), 5, warmup=1)
            res[f"eval_pairs_per_s_{'fast' if fast else 'full'}"] = cfg.p ** 2 / sec
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        tr, te = split_indices(cfg)
        runstore.create(path, cfg, {}, tr, te)
        arrays = weights(model)
        counter = iter(range(1, 10 ** 6))

        def write():
            with runstore.RunWriter(path) as w:
                w.write_checkpoint(next(counter), "end", ["periodic"], arrays)
        res["checkpoint_write_s"] = timed(write, 10, warmup=1)

        # a real run: the share of wall time outside training steps
        run_cfg = make_config("hard", "dream", 42, steps=args.run_steps)
        attrs = train(run_cfg, Path(tmp) / "run.h5")
        res["run_steps"] = args.run_steps
        res["run_wall_s"] = attrs["wall_time_s"]
        res["run_file_mb"] = (Path(tmp) / "run.h5").stat().st_size / 1e6
        res["run_seconds"] = {k: attrs[f"seconds_{k}"] for k in runstore.TIMERS}
        # the run's own timers: regular and replay steps are training, the rest is not
        training = attrs["seconds_regular"] + attrs["seconds_extra"]
        res["run_non_training_share"] = 1 - training / attrs["wall_time_s"]
        res["run_step_s"] = attrs["seconds_regular"] / args.run_steps

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_step.json").write_text(json.dumps(res, indent=2) + "\n")
    print(f"threads {args.threads}, dense fp32 matmul {res['matmul_flops'] / 1e9:.1f} GFLOP/s")
    print(f"{'hard full-batch step':<28} {'ms':>7} {'GFLOP/s':>8} {'of matmul':>9}")
    for name in steps:
        ms = res[f"step_s_{name}"] * 1e3
        extra = ""
        if f"achieved_flops_{name}" in res:
            extra = f" {res[f'achieved_flops_{name}'] / 1e9:>8.1f} {res[f'matmul_fraction_{name}']:>9.1%}"
        print(f"{name:<28} {ms:>7.1f}{extra}")
    print(f"mechgrok/minimal: full {res['ratio_full_vs_minimal_full']:.2f}, "
          f"last-position {res['ratio_fast_vs_minimal_last_only']:.2f}; "
          f"fast path speed-up over full TransformerLens forward {res['speedup_fast_vs_full']:.2f}x")
    print(f"evaluation: {res['eval_pairs_per_s_full']:.0f} pairs/s full, {res['eval_pairs_per_s_fast']:.0f} fast; "
          f"checkpoint write {res['checkpoint_write_s'] * 1e3:.1f} ms")
    print(f"dream run of {args.run_steps} steps: {res['run_wall_s']:.1f} s wall, "
          f"{res['run_step_s'] * 1e3:.1f} ms per regular step, {res['run_non_training_share']:.1%} outside "
          f"training steps ({', '.join(f'{k} {v:.1f} s' for k, v in res['run_seconds'].items())}), "
          f"file {res['run_file_mb']:.1f} MB")
    print(f"wrote {out / 'bench_step.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_one_line("bench_step.py", main))
