"""Cost of subnormal floats in late training steps, with and without flushing them to zero.

    .venv/bin/python benchmarks/bench_denormals.py runs/easy/control/seed42.h5 [--steps 10] [--reps 3] [--out F]

Restores a finished run's last resume state (weights and AdamW moments) into a copy of
the file and times ``--steps`` regular full-batch training steps with torch's CPU
flag ``set_flush_denormal`` off (IEEE subnormals) and on, alternating ``--reps`` times,
on 1 thread (so the flag, which is per thread, covers all the work). For contrast it
times the same at the run's initialisation (step 0, fresh optimiser). It also counts
the subnormal values in one step's logits, softmax and parameter gradients (flag off),
and compares the weights after ``--steps`` steps taken with the flag off and on.
Writes ``benchmarks/results/bench_denormals.json`` (or ``--out``). Run it on an idle machine.
"""

from __future__ import annotations

import copy
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from mechgrok import runstore
from mechgrok.loop import _Run
from mechgrok.model import last_logits
from mechgrok.cli import OneLineParser, positive_int, run_one_line

TINY = torch.finfo(torch.float32).tiny


def _subnormal(t: torch.Tensor) -> int:
    return int(((t != 0) & (t.abs() < TINY)).sum())


def _timed(run: _Run, state: tuple, steps: int, flush: bool) -> tuple[float, dict]:
    """Seconds per step from ``state`` with the flag set as asked, and the weights reached."""
    torch.set_flush_denormal(flush)
    run.model.load_state_dict(state[0])
    run.opt.load_state_dict(copy.deepcopy(state[1]))  # loading shares the tensors, which steps change in place
    t = time.perf_counter()
    for _ in range(steps):
        run._optimise(None, extra=False)
    seconds = (time.perf_counter() - t) / steps
    torch.set_flush_denormal(True)
    return seconds, {k: v.clone() for k, v in run.model.state_dict().items()}


def _counts(run: _Run) -> dict:
    """Subnormal values in one regular step's logits, softmax and gradients (flag off)."""
    torch.set_flush_denormal(False)
    run.opt.zero_grad(set_to_none=True)
    logits = last_logits(run.model, run.x_train, run.cfg.fast_forward)
    torch.nn.functional.cross_entropy(logits, run.y_train).backward()
    probs = logits.detach().softmax(-1)
    counts = {"logits": _subnormal(logits.detach()), "softmax": _subnormal(probs), "softmax_size": probs.numel(),
              "gradients": sum(_subnormal(p.grad) for p in run.model.parameters() if p.grad is not None),
              "adam_moments": sum(_subnormal(v) for s in run.opt.state.values() for k, v in s.items() if k != "step")}
    run.opt.zero_grad(set_to_none=True)
    torch.set_flush_denormal(True)
    return counts


def main() -> None:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a finished run file (its resume state is read, the file is not changed)")
    ap.add_argument("--steps", type=positive_int, default=10)
    ap.add_argument("--reps", type=positive_int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_denormals.json"))
    args = ap.parse_args()
    runstore.read_config(args.run)  # a missing, corrupt or foreign file: one line (RunFileError), exit 2
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "copy.h5"
        shutil.copy(args.run, path)
        cfg = runstore.read_config(path)
        run = _Run(cfg, path, torch.device("cpu"))
        init = (copy.deepcopy(run.model.state_dict()), copy.deepcopy(run.opt.state_dict()))
        run.restore()
        step = runstore.read_attrs(path)["last_step"]
        late = (copy.deepcopy(run.model.state_dict()), copy.deepcopy(run.opt.state_dict()))
        counts = _counts(run)
        result = {"run": str(args.run), "regime": cfg.regime, "arm": cfg.arm, "seed": cfg.seed, "n_train": run.n_train,
                  "restored_step": int(step), "steps_timed": args.steps, "reps": args.reps, "threads": 1,
                  "subnormal_counts_one_step": counts, "platform": platform.platform(), "torch": torch.__version__}
        reached = {}  # weights after the restored state's steps, by flag
        for name, state in (("init", init), ("restored", late)):
            times = {False: [], True: []}
            for _ in range(args.reps):
                for flush in (False, True):
                    seconds, reached[flush] = _timed(run, state, args.steps, flush)
                    times[flush].append(seconds)
            off, on = min(times[False]), min(times[True])
            result[name] = {"s_per_step_subnormals_kept": off, "s_per_step_flushed": on, "speedup": off / on,
                            "all_s_per_step_kept": times[False], "all_s_per_step_flushed": times[True]}
        w = reached
        result["max_abs_weight_difference_after_steps"] = max(float((w[False][k] - w[True][k]).abs().max())
                                                              for k in w[False])
        result["max_abs_weight"] = max(float(v.abs().max()) for v in w[True].values())
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("restored_step", "subnormal_counts_one_step", "init", "restored",
                                             "max_abs_weight_difference_after_steps")}, indent=1))


if __name__ == "__main__":
    sys.exit(run_one_line("bench_denormals.py", main))
