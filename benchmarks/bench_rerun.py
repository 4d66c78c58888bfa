"""Does a finished run train again to the same file? Full-size runs re-trained from their stored config.

    .venv/bin/python benchmarks/bench_rerun.py RUN.h5 [RUN.h5 ...] --rerun-dir DIR [--workers 2] [--out F]

For each run file, the config it stores (attribute ``config``) is trained again into
``DIR/<variant>/<arm>/seed<N>.h5`` through ``mechgrok.sweep.run_local`` (the sweep's own worker
processes, on the thread count and device the original recorded), unless a finished run is
already there: a rerun started by the sweep CLI with the same settings and ``--out DIR`` is
compared as it is. Then the two files are compared bit for bit: every dataset but the
wall-clock column ``metrics/wall_time_s`` and the ``/analysis`` group (written later by the
analyses, absent from a fresh run); every attribute of every group (a resume state's ``info``
without its timers); every top-level attribute but wall-clock times and provenance (commits,
versions, creation and resume times), which are listed side by side instead. A dataset
matches only with the same dtype, shape and bytes.
Writes ``benchmarks/results/bench_rerun.json`` (or ``--out``).
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mechgrok.errors import MechgrokError  # noqa: E402  (after the path above)
from mechgrok.cli import OneLineParser, positive_int, run_one_line  # noqa: E402
from mechgrok.train import default_run_path  # noqa: E402

# top-level attributes that say when, where and with which code a run was made, not what it computed
PROVENANCE = ("created_utc", "resumed_utc", "git_commit", "git_uncommitted_changes", "resumed_git_commit",
              "resumed_git_uncommitted_changes", "mechgrok_version", "torch_version", "transformer_lens_version",
              "h5py_version", "numpy_version", "python_version", "platform")
WALL_CLOCK = ("wall_time_s", "seconds_regular", "seconds_extra", "seconds_eval", "seconds_write")


def _plain(value):
    """An HDF5 attribute as a JSON-ready value."""
    import numpy as np

    if isinstance(value, bytes):
        return value.decode()
    return value.tolist() if isinstance(value, (np.generic, np.ndarray)) else value


def _items(path: Path) -> tuple[dict, dict, dict]:
    """(datasets, attributes, top-level attributes) of a run file, in one read: name -> array and
    'group@attr' -> value with analyses and wall-clock times left out, and every top-level attribute."""
    import h5py

    datasets, attrs = {}, {}
    with h5py.File(path, "r", locking=False) as f:
        top = {key: _plain(value) for key, value in f.attrs.items()}
        attrs.update((f"/@{key}", value) for key, value in top.items() if key not in PROVENANCE + WALL_CLOCK)

        def visit(name, obj):
            if name == "analysis" or name.startswith("analysis/"):
                return
            for key, value in obj.attrs.items():
                value = _plain(value)
                if name.startswith("resume/") and key == "info":  # a resume state's JSON holds its timers
                    value = {k: v for k, v in json.loads(value).items() if k not in ("seconds", "wall_time_s")}
                attrs[f"{name}@{key}"] = value
            if isinstance(obj, h5py.Dataset) and name != "metrics/wall_time_s":
                datasets[name] = obj[...]

        f.visititems(visit)
    return datasets, attrs, top


def compare(original: Path, rerun: Path) -> dict:
    """What differs between two run files, as described in the module docstring."""
    import numpy as np

    da, aa, pa = _items(original)
    db, ab, pb = _items(rerun)
    differences = [f"dataset only in {which}: {name}" for which, names in
                   (("original", da.keys() - db.keys()), ("rerun", db.keys() - da.keys())) for name in sorted(names)]
    for name in sorted(da.keys() & db.keys()):
        a, b = da[name], db[name]
        if a.dtype != b.dtype or a.shape != b.shape:
            differences.append(f"{name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
        elif a.tobytes() != b.tobytes():
            gap = np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.dtype.kind in "fiu" else None
            differences.append(f"{name}: values differ" + ("" if gap is None else f" (max |difference| {gap:.3g})"))
    differences += [f"attribute only in {which}: {key}" for which, keys in
                    (("original", aa.keys() - ab.keys()), ("rerun", ab.keys() - aa.keys())) for key in sorted(keys)]
    differences += [f"attribute {key}: {aa[key]!r} vs {ab[key]!r}" for key in sorted(aa.keys() & ab.keys())
                    if aa[key] != ab[key]]
    checkpoints = [key for key, value in ab.items() if key.startswith("checkpoints/") and key.endswith("@complete")
                   and value]
    return {
        "original": str(original), "rerun": str(rerun),
        "identical": not differences, "differences": differences,
        "datasets_compared": len(da.keys() & db.keys()), "attributes_compared": len(aa.keys() & ab.keys()),
        "checkpoints": len(checkpoints), "last_step": int(pb["last_step"]), "grok_step": int(pb["grok_step"]),
        "provenance": {key: [pa.get(key), pb.get(key)] for key in PROVENANCE + WALL_CLOCK[:1]
                       if key in pa or key in pb},
    }


def main() -> int:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished run files to train again")
    ap.add_argument("--rerun-dir", required=True, type=Path, help="where the reruns go (kept)")
    ap.add_argument("--workers", type=positive_int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bench_rerun.json")
    args = ap.parse_args()

    from mechgrok import runstore, sweep
    from mechgrok.config import from_json

    originals = {}
    for path in args.runs:
        attrs = runstore.read_attrs(path)
        if attrs.get("status") not in runstore.FINISHED:
            raise MechgrokError(f"{path}: not a finished run (status {attrs.get('status')})")
        if "threads" not in attrs:  # a file from before runs recorded their thread count
            raise MechgrokError(f"{path}: records no thread count, so it cannot be trained again as it was")
        cfg = from_json(attrs["config"])  # read_attrs has validated the file and its config
        originals[path] = (cfg, default_run_path(cfg, args.rerun_dir), int(attrs["threads"]), str(attrs["device"]))
    for threads, device in sorted({(t, d) for _, _, t, d in originals.values()}):
        jobs = [sweep.Job(cfg, rerun) for cfg, rerun, t, d in originals.values() if (t, d) == (threads, device)]
        counts = sweep.run_local(jobs, workers=args.workers, threads=threads, device=device)
        if counts["failed"] or counts["locked"]:
            raise MechgrokError(f"not trained: {', '.join(counts['failed'] + counts['locked'])}")
    rows = [compare(path, rerun) for path, (_, rerun, _, _) in originals.items()]
    for row in rows:
        print(f"{row['original']}: {'identical' if row['identical'] else 'DIFFERENT'} "
              f"({row['datasets_compared']} datasets, {row['attributes_compared']} attributes, "
              f"{row['checkpoints']} checkpoints, last step {row['last_step']})")
        for line in row["differences"][:20]:
            print(f"  {line}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "processor": platform.processor(),
                                    "workers": args.workers, "runs": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(row["identical"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(run_one_line("bench_rerun", main))
