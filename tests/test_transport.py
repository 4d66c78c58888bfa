"""Slim copies, pack and unpack (mechgrok/transport.py) on real tiny runs."""

import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile

import h5py
import numpy as np
import pytest

from conftest import ROOT
from mechgrok import analyze, runstore, transport
from mechgrok.errors import MechgrokError, RunFileError
from mechgrok.results import summarise


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mechgrok.transport", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture()
def run_tree(arm_runs, tmp_path):
    """A runs/ folder holding the tiny dream and baseline runs (dream analysed) and an unfinished run."""
    root = tmp_path / "runs"
    for arm in ("dream", "baseline"):
        (root / "hard" / arm).mkdir(parents=True)
        shutil.copy(arm_runs[arm], root / "hard" / arm / "seed0.h5")
    analyze.analyse("norms", root / "hard" / "dream" / "seed0.h5")
    unfinished = root / "hard" / "control" / "seed0.h5"
    unfinished.parent.mkdir(parents=True)
    shutil.copy(arm_runs["control"], unfinished)
    with h5py.File(unfinished, "r+") as f:
        f.attrs["status"] = "running"
    return root


def test_slim_copy_keeps_what_the_audit_reads_and_drops_the_rest(run_tree, tmp_path):
    src = run_tree / "hard" / "dream" / "seed0.h5"
    dest = tmp_path / "slim.h5"
    record = transport.slim_copy(src, dest, keep=("final",))
    full, slim = summarise(src), summarise(dest)
    assert {k: v for k, v in slim.items() if k != "path"} == {k: v for k, v in full.items() if k != "path"}
    with h5py.File(src, "r") as f, h5py.File(dest, "r") as g:
        for group in ("metrics", "split"):
            for name in f[group]:
                np.testing.assert_array_equal(f[group][name][...], g[group][name][...])
        for name in f["events"]:
            if name != "checkpointed":
                np.testing.assert_array_equal(f["events"][name][...], g["events"][name][...])
        assert "resume" not in g
        kept = list(g["checkpoints"])
        assert kept == record["checkpoints_kept"] and len(kept) == 1 and kept[0] == f"{300:07d}_end"
        assert record["checkpoints_dropped"] == len(f["checkpoints"]) - 1
        # no event keeps its checkpoints now, and the record says what was dropped and from where
        assert f["events/checkpointed"][...].any() and not g["events/checkpointed"][...].any()
        assert json.loads(g.attrs["slim"])["source"] == str(src)
        assert "`slim`" in (ROOT / "docs" / "run-file.md").read_text()  # the schema page names it
        np.testing.assert_array_equal(f["analysis/norms/total"][...], g["analysis/norms/total"][...])
    np.testing.assert_array_equal(runstore.read_checkpoint(dest, kept[0])["embed.weight"],
                                  runstore.read_checkpoint(src, kept[0])["embed.weight"])
    # re-analysing a slim run would replace results from every checkpoint: refused, results kept
    with pytest.raises(analyze.SlimRunError):
        analyze.analyse("norms", dest)
    assert runstore.read_analysis(dest, "norms")[1]["checkpoints_analysed"] > 1
    # a read-only tool (benchmarks/fourier_readings.py) may open it: the kept checkpoint gives the
    # same forward pass as in the full file
    with pytest.raises(analyze.SlimRunError):
        analyze.RunView(dest)
    views = analyze.RunView(src), analyze.RunView(dest, allow_slim=True)
    assert [c["name"] for c in views[1].checkpoints()] == kept
    hook = "blocks.0.mlp.hook_post"
    (la, aa), (lb, ab) = [(v.load(kept[0]), v.forward([hook]))[1] for v in views]
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(aa[hook], ab[hook])
    # keeping the event checkpoints keeps the events' flags as they were
    transport.slim_copy(src, tmp_path / "events.h5", keep=("event",))
    with h5py.File(src, "r") as f, h5py.File(tmp_path / "events.h5", "r") as g:
        np.testing.assert_array_equal(f["events/checkpointed"][...], g["events/checkpointed"][...])
        assert all("event" in json.loads(c.attrs["reasons"]) for c in g["checkpoints"].values())
    with pytest.raises(RunFileError, match="unfinished"):
        transport.slim_copy(run_tree / "hard" / "control" / "seed0.h5", tmp_path / "x.h5")
    with pytest.raises(MechgrokError, match="exists"):
        transport.slim_copy(src, dest)


def test_pack_then_unpack_restores_the_finished_runs_and_never_overwrites(run_tree, tmp_path):
    files = transport.pack([run_tree], tmp_path / "out", keep=())
    manifest = json.loads(files[-1].read_text())
    assert sorted(r["path"] for r in manifest["runs"]) == ["hard/baseline/seed0.h5", "hard/dream/seed0.h5"]
    assert len(manifest["left_out"]) == 1 and "unfinished" in manifest["left_out"][0]
    dest = tmp_path / "elsewhere"
    assert transport.unpack(files[:-1], dest) == {"unpacked": 2, "identical": 0, "skipped": 0}
    for arm in ("baseline", "dream"):
        a, b = summarise(run_tree / "hard" / arm / "seed0.h5"), summarise(dest / "hard" / arm / "seed0.h5")
        assert {k: v for k, v in a.items() if k != "path"} == {k: v for k, v in b.items() if k != "path"}
    assert transport.unpack(files[:-1], dest)["identical"] == 2  # the same files again: nothing to do
    # unpacking over different runs (the full files) writes nothing and says so in one line
    before = {p: p.read_bytes() for p in run_tree.rglob("*.h5")}
    r = _cli("unpack", *files[:-1], "--root", run_tree)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "holds a different file" in r.stderr
    assert {p: p.read_bytes() for p in run_tree.rglob("*.h5")} == before
    # packing again into a folder that holds this pack writes nothing and says so in one line; another
    # prefix may share the folder; a missing root is refused before the output folder is made
    packed = {f: f.read_bytes() for f in files}
    r = _cli("pack", run_tree, "--out", tmp_path / "out", "--keep")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "already holds runs-000.tar.gz" in r.stderr
    assert {f: f.read_bytes() for f in files} == packed and sorted((tmp_path / "out").iterdir()) == sorted(files)
    again = transport.pack([run_tree], tmp_path / "out", keep=(), prefix="runs-b")
    assert [f.name for f in again] == ["runs-b-000.tar.gz", "runs-b-manifest.json"]
    assert {f: f.read_bytes() for f in files} == packed
    r = _cli("pack", tmp_path / "no_such_runs", "--out", tmp_path / "never")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no such file or folder" in r.stderr
    assert not (tmp_path / "never").exists()
    # --include packs a subset; small --max-mb splits into several archives
    files = transport.pack([run_tree], tmp_path / "sub", keep=(), include=["hard/dream/*"])
    assert [r["path"] for r in json.loads(files[-1].read_text())["runs"]] == ["hard/dream/seed0.h5"]
    sizes = [r["bytes"] for r in manifest["runs"]]
    files = transport.pack([run_tree], tmp_path / "split", keep=(), max_mb=(max(sizes) + 20000) / 2**20)
    assert len(files) - 1 == 2
    # --max-mb bounds each archive before compression, to the byte: a limit just large enough for the
    # largest run alone is met by every archive; one byte less refuses that run
    limit = max(len(gzip.open(f).read()) for f in files[:-1])
    files = transport.pack([run_tree], tmp_path / "tight", keep=(), max_mb=limit / 2**20)
    assert max(len(gzip.open(f).read()) for f in files[:-1]) <= limit
    with pytest.raises(MechgrokError, match="over --max-mb"):
        transport.pack([run_tree], tmp_path / "tighter", keep=(), max_mb=(limit - 1) / 2**20)


def test_unpack_refuses_unsafe_or_broken_archives(run_tree, tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(run_tree / "hard" / "dream" / "seed0.h5", arcname="../escape.h5")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tar")
    for archive, message in ((evil, "not a run file path"), (broken, "not a readable tar"),
                             (tmp_path / "missing.tar.gz", "no such archive")):
        r = _cli("unpack", archive, "--root", tmp_path / "root")
        assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "escape.h5").exists() and not (tmp_path / "root").exists()
