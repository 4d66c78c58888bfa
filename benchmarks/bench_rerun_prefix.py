"""Do committed runs whose files are gone still train the same? Their first steps trained again and
compared with the learning curves the results table carries.

    .venv/bin/python benchmarks/bench_rerun_prefix.py --variant V --arm baseline --seeds 2,3,25 [--steps 600] [--out F]

For each seed, the finished row of ``results/runs.csv`` for (variant, arm, seed) with the longest
budget is looked up, and its config rebuilt from the variant name and the row's budget
(``config.config_of_variant``; its hash must equal the row's ``config_hash``). That config is
trained for ``--steps`` steps on 1 thread in this process (the budget changes nothing in the steps
a run shares with a longer one), and the test and train accuracy at every evaluation step are
compared with the row's curve in ``results/curves.csv``, which keeps 4 significant digits: a step
matches when the rerun's values, written the same way, are the same text. A 4-digit match is not
proof of equal weights; a mismatch is proof that the training differs. Where the run file is still
here, ``bench_rerun.py`` compares bit for bit instead.
Writes ``benchmarks/results/bench_rerun_prefix.json`` (or ``--out``); exit code 1 when any run differs.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mechgrok.cli import OneLineParser, positive_int, run_one_line  # noqa: E402  (after the path above)
from mechgrok.errors import MechgrokError  # noqa: E402


def compare(row: dict, committed: dict, steps: int, workdir: Path) -> dict:
    """Train the row's config for ``steps`` steps on 1 thread and compare its curve with ``committed``."""
    from mechgrok import runstore
    from mechgrok.config import config_of_variant
    from mechgrok.loop import train
    from mechgrok.results import four_digits

    def text(values) -> list[str]:  # accuracies as the curves table writes them
        return [four_digits(float(v)) for v in values]

    cfg = config_of_variant(row["variant"], arm=row["arm"], seed=row["seed"], steps=row["budget"])
    if cfg.config_hash() != row["config_hash"]:
        raise MechgrokError(f"{row['variant']} {row['arm']} seed {row['seed']}: the config rebuilt from the variant "
                            f"has hash {cfg.config_hash()}, the row {row['config_hash']}")
    path = workdir / f"{row['arm']}_seed{row['seed']}.h5"
    train(dataclasses.replace(cfg, steps=steps), path, threads=1)
    m = runstore.read_table(path, "metrics")
    mine = dict(zip(map(int, m["step"]), zip(text(m["test_acc"]), text(m["train_acc"]))))
    theirs = dict(zip(map(int, committed["step"]), zip(text(committed["test_acc"]), text(committed["train_acc"]))))
    shared = sorted(set(mine) & set(theirs))
    differ = [s for s in shared if mine[s] != theirs[s]]
    first = differ[0] if differ else None
    return {"seed": row["seed"], "recorded_threads": row["threads"], "device": row["device"],
            "batch_runs": row["batch_runs"], "steps_compared": shared, "first_differing_step": first,
            "rerun_test_train_acc": list(mine[first]) if differ else None,
            "committed_test_train_acc": list(theirs[first]) if differ else None,
            "same_at_4_digits": not differ}


def main(argv=None) -> int:
    ap = OneLineParser(prog="bench_rerun_prefix.py", description=__doc__.splitlines()[0])
    ap.add_argument("--variant", required=True)
    ap.add_argument("--arm", required=True)
    ap.add_argument("--seeds", required=True, help="e.g. 2,3,25 or 2-8")
    ap.add_argument("--steps", type=positive_int, default=600)
    ap.add_argument("--table", type=Path, default=ROOT / "results" / "runs.csv")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_rerun_prefix.json")
    args = ap.parse_args(argv)
    from mechgrok.results import read_csv, read_curves, select
    from mechgrok.sweep import parse_seeds

    seeds = parse_seeds(args.seeds)
    rows = select(read_csv(args.table), variant=args.variant, arm=args.arm, finished=True)
    curves = read_curves(args.table.with_name("curves.csv"))
    chosen = []
    for seed in seeds:
        mine = [r for r in select(rows, seed=seed) if r["config_hash"] in curves]
        if not mine:
            raise MechgrokError(f"{args.table}: no finished {args.variant} {args.arm} seed {seed} with a curve")
        chosen.append(max(mine, key=lambda r: r["budget"]))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in chosen:
            results.append(compare(row, curves[row["config_hash"]], args.steps, Path(tmp)))
            r = results[-1]
            print(f"seed {r['seed']} (threads recorded {r['recorded_threads']}, {r['device']}): "
                  + ("same at 4 digits at every step" if r["same_at_4_digits"] else
                     f"differs from step {r['first_differing_step']} (rerun {r['rerun_test_train_acc']}, "
                     f"committed {r['committed_test_train_acc']})"))
    import torch
    out = {"variant": args.variant, "arm": args.arm, "steps": args.steps, "threads": 1, "torch": torch.__version__,
           "platform": platform.platform(), "runs": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["same_at_4_digits"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(run_one_line("bench_rerun_prefix.py", main))
