"""Command line: ``python -m mechgrok.train --regime hard [--arm dream] [--seed 42] [--out runs/]``.

A thin layer over :func:`mechgrok.loop.train`. The configuration and the output
path are checked before torch and TransformerLens are imported, so ``--help``
and bad input answer at once. Bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import OneLineParser, device_arg, error_line, positive_int
from .config import ARMS, DREAM_SELECTIONS, REGIMES, SPLITS, RunConfig, make_config
from .errors import MechgrokError, out_dir

PROG = "python -m mechgrok.train"


def _none_or_int(text: str):
    return None if text.lower() == "none" else int(text)


# (flag, config field, type, help): every config field the command line can set.
CONFIG_FLAGS = [
    ("--p", "p", int, "modulus (97)"),
    ("--train-end", "train_end", int, "operand bound of the training set (preset per regime)"),
    ("--split", "split", str, f"one of {', '.join(SPLITS)} (operand)"),
    ("--train-fraction", "train_fraction", float, "random split: fraction of pairs in train (train_end / p)"),
    ("--split-seed", "split_seed", int, "random split: seed of the split (the run seed)"),
    ("--lr", "lr", float, "AdamW learning rate (preset per regime)"),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay (preset per regime)"),
    ("--beta1", "beta1", float, "AdamW beta1 (0.9)"),
    ("--beta2", "beta2", float, "AdamW beta2 (0.999)"),
    ("--steps", "steps", int, "step budget (15000 easy/medium, 30000 hard)"),
    ("--batch-size", "batch_size", _none_or_int, "examples per regular step, or none for full batch (none)"),
    ("--d-mlp", "d_mlp", int, "MLP width (512)"),
    ("--eval-every", "eval_every", int, "steps between evaluations (200)"),
    ("--stop-after-grok", "stop_after_grok", int, "steps to train on after grokking; 0 = whole budget (2000)"),
    ("--checkpoint-every", "checkpoint_every", int, "steps between periodic checkpoints (1000)"),
    ("--dream-every", "dream_every", int, "steps between replay events (400)"),
    ("--dream-k", "dream_k", int, "examples replayed per event (100)"),
    ("--dream-steps", "dream_steps", int, "extra optimiser steps per event (2)"),
    ("--dream-selection", "dream_selection", str, f"dream arm: one of {', '.join(DREAM_SELECTIONS)} (topk)"),
    ("--dream-alpha", "dream_alpha", float, "sampled selection: weight = surprise ** alpha (1.0)"),
    ("--dream-start", "dream_start", int, "first step at which replay events may happen (0)"),
    ("--dream-stop", "dream_stop", _none_or_int, "replay events happen before this step only (none)"),
    ("--grokfast-alpha", "grokfast_alpha", float, "grokfast arm: EMA decay of the gradient filter (0.98)"),
    ("--grokfast-lambda", "grokfast_lambda", float, "grokfast arm: gain of the filtered gradient (2.0)"),
]


def add_config_flags(ap: argparse.ArgumentParser) -> None:
    """The flags that set config fields (shared with ``mechgrok.sweep``)."""
    for flag, field, typ, text in CONFIG_FLAGS:
        ap.add_argument(flag, dest=field, type=typ, help=text)
    ap.add_argument("--layer-norm", action="store_true", help="use LayerNorm (the default has none)")
    ap.add_argument("--full-forward", action="store_true",
                    help="train and evaluate through the full TransformerLens forward (default: last position only)")
    ap.add_argument("--keep-all-checkpoints", action="store_true",
                    help="keep every replay event's checkpoints (default: first 20 events, then every 4th)")


def overrides_from_args(args: argparse.Namespace) -> dict:
    """Config fields set on the command line (unset flags are left to the preset)."""
    overrides = {field: getattr(args, field) for _, field, _, _ in CONFIG_FLAGS if getattr(args, field) is not None}
    if args.layer_norm:
        overrides["normalization"] = "LN"
    if args.full_forward:
        overrides["fast_forward"] = False
    if args.keep_all_checkpoints:
        overrides["event_checkpoints_first"] = None
    return overrides


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog=PROG, description="Train one run (baseline, dream or control) into one HDF5 run file.")
    ap.add_argument("--regime", required=True, help=f"one of {', '.join(REGIMES)}")
    ap.add_argument("--arm", default="baseline", help=f"one of {', '.join(ARMS)} (baseline)")
    ap.add_argument("--seed", type=int, default=42, help="seed of initialisation, batches and replay (42)")
    ap.add_argument("--out", default="runs", help="root folder of run files (runs/)")
    ap.add_argument("--run-file", help="exact path of the run file (default OUT/VARIANT/ARM/seedN.h5)")
    add_config_flags(ap)
    ap.add_argument("--resume", action="store_true", help="continue an unfinished run from its last resume state")
    ap.add_argument("--overwrite", action="store_true", help="replace a run file that holds another run")
    ap.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (cpu)")
    ap.add_argument("--threads", type=positive_int,
                    help="torch CPU threads (torch's default; recorded in the run file)")
    ap.add_argument("--quiet", action="store_true", help="no progress display")
    return ap


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return make_config(args.regime, args.arm, args.seed, **overrides_from_args(args))


def default_run_path(cfg: RunConfig, out: str | Path = "runs") -> Path:
    """``OUT/VARIANT/ARM/seedN.h5``; VARIANT names the regime and every changed setting."""
    return Path(out) / cfg.variant() / cfg.arm / f"seed{cfg.seed}.h5"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.resume and args.overwrite:
            raise MechgrokError("--resume and --overwrite exclude each other")
        cfg = config_from_args(args)
        path = Path(args.run_file) if args.run_file else default_run_path(cfg, args.out)
        out_dir(path.parent)
        from . import runstore

        if runstore.prepare(path, cfg, resume=args.resume, overwrite=args.overwrite) == "done":
            print(f"{path}: already finished, nothing to do")
            return 0
        from .loop import train
        from .progress import Progress

        bar = None if args.quiet else Progress(f"{cfg.regime}/{cfg.arm} seed {cfg.seed}")
        try:
            attrs = train(cfg, path, resume=args.resume, overwrite=args.overwrite, device=args.device,
                          threads=args.threads, progress=bar)
        finally:
            if bar is not None:
                bar.close()
    except MechgrokError as exc:
        return error_line(PROG, exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; continue with --resume", file=sys.stderr)
        return 130
    grok = f"grokked at step {attrs['grok_step']}" if attrs["grokked"] else f"not grokked by step {attrs['last_step']}"
    print(f"{path}: {attrs['status']}, {grok}, {attrs['wall_time_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
