"""Move finished runs between machines: ``python -m mechgrok.transport {pack,unpack}``.

A full run file is 40-170 MB, almost all of it checkpoints (1.7 MB each at the paper's
sizes) and the resume slot. What the claims audit reads is small: the attributes,
``/split``, ``/metrics``, ``/events`` and any ``/analysis`` groups. So runs trained on a
machine whose files cannot all come back (a lent GPU machine returns at most 64 MiB per
call) are analysed there, then *packed*:

- :func:`slim_copy` copies a finished run file without its resume slots and without the
  checkpoints outside ``keep`` (reasons, default ``init`` and ``final``; ``()`` keeps none).
  Everything else is copied unchanged, ``/events/checkpointed`` is set to 0 where an event's
  checkpoints were dropped, and the attribute ``slim`` (JSON) records what was dropped
  and from where. A slim run enters the results table and the report exactly as the full
  one; analyses already stored in it stay valid (they were computed on every checkpoint),
  but running an analysis again sees only the kept checkpoints, and a slim run cannot
  be resumed or extended to a longer budget.
- :func:`pack` slims every finished run under the given folders into tar files of at
  most ``max_mb`` each (paths relative to the folder given, so ``runs/hard/dream/seed0.h5``
  becomes ``hard/dream/seed0.h5``), with a JSON manifest. It never overwrites: a folder that
  already holds a pack of the same prefix is refused before anything is written.
- :func:`unpack` extracts packed runs under a root folder. It never overwrites: if any
  destination exists (and is not the identical run file), it stops before writing
  anything, unless ``skip_existing``.

Unfinished runs are never packed: they would count as neither grokked nor censored.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import h5py
import numpy as np

from . import runstore
from .errors import MechgrokError, RunFileError, out_dir
from .results import find_run_files

PROG = "python -m mechgrok.transport"
REASONS = ("init", "event", "periodic", "memorised", "grok", "final")


def slim_copy(src: str | os.PathLike, dest: str | os.PathLike, keep: tuple[str, ...] = ("init", "final")) -> dict:
    """Copy the finished run file ``src`` to ``dest`` without its resume slots and without
    every checkpoint none of whose reasons is in ``keep``. Returns the ``slim`` record."""
    src, dest = Path(src), Path(dest)
    unknown = set(keep) - set(REASONS)
    if unknown:
        raise MechgrokError(f"unknown checkpoint reasons {sorted(unknown)}; choose from {', '.join(REASONS)}")
    attrs = runstore.read_attrs(src)
    if attrs.get("status") not in runstore.FINISHED:
        raise RunFileError(f"{src}: unfinished run (status {attrs.get('status')}); only finished runs are packed")
    if dest.exists():
        raise MechgrokError(f"{dest}: exists; not overwritten")
    dest.parent.mkdir(parents=True, exist_ok=True)
    kept, dropped, kept_before = [], [], set()
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        with h5py.File(src, "r") as f, h5py.File(tmp, "w") as g:
            for key, value in f.attrs.items():
                g.attrs[key] = value
            for name in f:
                if name not in ("checkpoints", "resume"):
                    f.copy(f[name], g, name=name)
            ckpts = g.create_group("checkpoints")
            for name, group in f["checkpoints"].items():
                reasons = json.loads(group.attrs.get("reasons", "[]"))
                if group.attrs.get("complete", False) and set(reasons) & set(keep):
                    f.copy(group, ckpts, name=name)
                    kept.append(name)
                    if group.attrs["phase"] == "before":
                        kept_before.add(int(group.attrs["step"]))
                else:
                    dropped.append(name)
            if "events" in g and "checkpointed" in g["events"]:
                col = g["events/checkpointed"]
                col[...] = (col[...].astype(bool) & np.isin(g["events/step"][...], list(kept_before))).astype(np.int8)
            record = {"source": str(src), "kept_reasons": list(keep), "checkpoints_kept": kept,
                      "checkpoints_dropped": len(dropped), "resume_dropped": "resume" in f}
            g.attrs["slim"] = json.dumps(record)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
    return record


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tar_member_bytes(path: Path, arcname: str) -> int:
    """Bytes that ``path`` adds to an uncompressed tar as ``arcname``: its header blocks (a pax
    header too, for long names or a fractional mtime) and its data padded to whole blocks."""
    with tarfile.open(fileobj=io.BytesIO(), mode="w") as probe:
        info = probe.gettarinfo(path, arcname)
        header = info.tobuf(probe.format, probe.encoding, probe.errors)
    return len(header) + -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _tar_bytes(member_bytes: int) -> int:
    """Size of an uncompressed tar whose members take ``member_bytes``: plus the two zero blocks
    that end it, rounded up to whole records (what tarfile writes)."""
    return -(-(member_bytes + 2 * tarfile.BLOCKSIZE) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def pack(roots: list[str | os.PathLike], out: str | os.PathLike, *, max_mb: float = 15.0,
         keep: tuple[str, ...] = ("init", "final"), prefix: str = "runs",
         include: list[str] | None = None) -> list[Path]:
    """Slim every finished run file under ``roots`` into ``out/<prefix>-NNN.tar.gz`` (gzip; each at
    most ``max_mb`` MiB before compression; a single larger slim run is an error) plus ``out/<prefix>-manifest.json``.
    Unfinished runs are listed in the manifest as left out. With ``include`` (shell patterns
    on the path relative to its root, e.g. ``hard/*``), only matching runs are packed.
    Refuses, before writing anything, a root that does not exist and an ``out`` that already holds
    files of a pack with this prefix (they would be overwritten, or mixed with this pack's).
    Returns the files written."""
    run_files = [(root, find_run_files([root])) for root in map(Path, roots)]
    out = out_dir(out)
    ours = re.compile(rf"{re.escape(prefix)}-(manifest\.json|\d{{3,}}\.tar\.gz)")
    earlier = sorted(q for q in out.iterdir() if ours.fullmatch(q.name)) if out.is_dir() else []
    if earlier:
        raise MechgrokError(f"{out}: already holds {earlier[0].name} (an earlier pack); choose another --out "
                            "or --prefix")
    out.mkdir(parents=True, exist_ok=True)
    limit = int(max_mb * 2**20)
    manifest = {"keep": list(keep), "runs": [], "left_out": []}
    written: list[Path] = []
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        members = []
        for root, paths in run_files:
            for path in paths:
                rel = path.relative_to(root) if root.is_dir() else Path(path.name)
                if include and not any(fnmatch.fnmatch(rel.as_posix(), pat) for pat in include):
                    continue
                try:
                    slim_copy(path, Path(tmp) / rel, keep)
                except RunFileError as exc:
                    manifest["left_out"].append(str(exc))
                    continue
                size = (Path(tmp) / rel).stat().st_size
                need = _tar_member_bytes(Path(tmp) / rel, rel.as_posix())
                if _tar_bytes(need) > limit:
                    raise MechgrokError(f"{path}: slim copy is {size / 2**20:.1f} MiB, over --max-mb {max_mb}; "
                                        "keep fewer checkpoints")
                members.append((rel, size, need))
        chunk: list = []
        used = 0

        def flush() -> None:
            name = out / f"{prefix}-{len(written):03d}.tar.gz"
            with tarfile.open(name, "w:gz") as tar:
                for rel in chunk:
                    tar.add(Path(tmp) / rel, arcname=rel.as_posix())
            written.append(name)

        for rel, size, need in members:
            if chunk and _tar_bytes(used + need) > limit:
                flush()
                chunk, used = [], 0
            chunk.append(rel)
            used += need
            manifest["runs"].append({"path": rel.as_posix(), "tar": len(written),
                                     "sha256": _sha256(Path(tmp) / rel), "bytes": size})
        if chunk:
            flush()
    man = out / f"{prefix}-manifest.json"
    man.write_text(json.dumps(manifest, indent=1) + "\n")
    return written + [man]


def _safe_member(member: tarfile.TarInfo, tar_path: Path) -> PurePosixPath:
    rel = PurePosixPath(member.name)
    if not member.isfile() or rel.is_absolute() or ".." in rel.parts or rel.suffix != ".h5":
        raise MechgrokError(f"{tar_path}: member {member.name!r} is not a run file path inside the archive")
    return rel


def unpack(tars: list[str | os.PathLike], root: str | os.PathLike, *, skip_existing: bool = False) -> dict:
    """Extract the run files of ``tars`` under ``root``. Every member is checked first (a safe
    relative ``*.h5`` path, a readable finished run file); if a destination exists and is not
    byte-identical, nothing is written unless ``skip_existing``. Returns counts."""
    root = out_dir(root)
    plan, same, clash = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for t in map(Path, tars):
            if not t.is_file():
                raise MechgrokError(f"{t}: no such archive")
            try:
                tar = tarfile.open(t, "r")
            except (tarfile.TarError, OSError) as exc:
                raise MechgrokError(f"{t}: not a readable tar archive ({exc})") from None
            with tar:
                for member in tar.getmembers():
                    rel = _safe_member(member, t)
                    staged = Path(tmp, str(len(plan) + len(same) + len(clash)) + ".h5")
                    with tar.extractfile(member) as src, open(staged, "wb") as dst:
                        dst.write(src.read())
                    attrs = runstore.read_attrs(staged)
                    if attrs.get("status") not in runstore.FINISHED:
                        raise MechgrokError(f"{t}: {rel} is not a finished run")
                    dest = root / rel
                    if dest.exists():
                        (same if _sha256(dest) == _sha256(staged) else clash).append(dest)
                    else:
                        plan.append((staged, dest))
        if clash and not skip_existing:
            raise MechgrokError(f"{clash[0]}: exists and holds a different file ({len(clash)} such); nothing "
                                "unpacked (pass --skip-existing to unpack the others)")
        for staged, dest in plan:
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            shutil.move(staged, part)  # then renamed in place: a reader never sees half a file
            part.replace(dest)
    return {"unpacked": len(plan), "identical": len(same), "skipped": len(clash)}


def main(argv: list[str] | None = None) -> int:
    from .cli import OneLineParser, error_line

    ap = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="slim finished runs into tar files")
    p.add_argument("roots", nargs="+", help="run folders (paths inside the tar are relative to these)")
    p.add_argument("--out", required=True, help="folder for the tar files and manifest")
    p.add_argument("--max-mb", type=float, default=15.0, help="largest tar file, MiB (15)")
    p.add_argument("--keep", nargs="*", default=["init", "final"],
                   help=f"checkpoint reasons to keep, of {', '.join(REASONS)} (init final); none: no checkpoints")
    p.add_argument("--prefix", default="runs", help="name of the tar files (runs)")
    p.add_argument("--include", nargs="+", help="only runs whose path under its root matches one of these "
                   "shell patterns (e.g. 'hard/*' 'hard@*')")
    u = sub.add_parser("unpack", help="extract packed runs under a root folder")
    u.add_argument("tars", nargs="+")
    u.add_argument("--root", default="runs", help="root folder of run files (runs/)")
    u.add_argument("--skip-existing", action="store_true", help="unpack the others when some destination exists")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "pack":
            files = pack(args.roots, args.out, max_mb=args.max_mb, keep=tuple(args.keep), prefix=args.prefix,
                         include=args.include)
            man = json.loads(files[-1].read_text())
            print(f"packed {len(man['runs'])} runs into {len(files) - 1} tar files under {args.out} "
                  f"({len(man['left_out'])} unfinished left out)")
        else:
            n = unpack(args.tars, args.root, skip_existing=args.skip_existing)
            print(f"unpacked {n['unpacked']} runs under {args.root} ({n['identical']} already there, "
                  f"{n['skipped']} skipped)")
    except MechgrokError as exc:
        return error_line(PROG, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
