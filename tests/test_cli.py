"""The command line: bad input is one line and exit code 2, and nothing on disk changes."""

import hashlib
import shutil
import time

import h5py
import pytest

from conftest import TINY_FLAGS, run_cli


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(proc, fragment):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("python -m mechgrok.train: error:") and fragment in lines[0], lines[0]


@pytest.fixture
def finished(arm_runs, tmp_path):
    """A copy of a finished tiny baseline run (seed 0)."""
    path = tmp_path / "run.h5"
    shutil.copy(arm_runs["baseline"], path)
    return path


def test_help_is_fast_and_imports_no_torch():
    t = time.perf_counter()
    proc = run_cli("--help")
    assert proc.returncode == 0 and "--regime" in proc.stdout and "--dream-k" in proc.stdout
    assert time.perf_counter() - t < 1.0


@pytest.mark.parametrize("flags, fragment", [
    (["--regime", "extreme"], "unknown regime"),
    (["--regime", "hard", "--arm", "sleep"], "unknown arm"),
    (["--regime", "hard", "--train-end", "0"], "train_end must be in 1..p-1"),
    (["--regime", "hard", "--p", "13", "--train-end", "13"], "train_end must be in 1..p-1"),
    (["--regime", "hard", "--p", "13", "--train-end", "6", "--dream-k", "79"], "exceeds the training set (78 pairs)"),
    (["--regime", "hard", "--steps", "0"], "steps must be positive"),
    (["--regime", "hard", "--dream-steps", "-2"], "dream_steps must be positive"),
    (["--regime", "hard", "--split", "random", "--train-fraction", "1.5"], "train_fraction"),
    (["--regime", "hard", "--steps", "ten"], "invalid int value"),
    (["--regime", "hard", "--resume", "--overwrite"], "exclude each other"),
])
def test_bad_arguments_are_one_line(flags, fragment, tmp_path):
    proc = run_cli(*flags, "--out", tmp_path)
    _refused(proc, fragment)
    assert list(tmp_path.iterdir()) == []


def test_a_different_run_is_not_overwritten(finished):
    digest = _digest(finished)
    for extra in ([], ["--resume"]):
        proc = run_cli(*TINY_FLAGS, "--seed", 1, "--run-file", finished, *extra)
        _refused(proc, "holds a different run")
        assert _digest(finished) == digest


def test_the_same_finished_run_is_left_alone(finished):
    digest = _digest(finished)
    proc = run_cli(*TINY_FLAGS, "--seed", 0, "--run-file", finished)
    assert proc.returncode == 0 and "already finished" in proc.stdout
    assert _digest(finished) == digest


def test_an_unfinished_run_needs_resume_or_overwrite(finished):
    with h5py.File(finished, "r+") as f:
        f.attrs["status"] = "running"
    digest = _digest(finished)
    _refused(run_cli(*TINY_FLAGS, "--seed", 0, "--run-file", finished), "pass --resume")
    assert _digest(finished) == digest


def test_truncated_foreign_and_non_hdf5_files_are_refused(finished, tmp_path):
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(finished.read_bytes()[: finished.stat().st_size // 2])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    for path, fragment in ((truncated, "not a readable HDF5 run file"), (foreign, "not a mechgrok run file"),
                           (text, "not a readable HDF5 run file")):
        digest = _digest(path)
        for extra in (["--resume"], ["--overwrite"]):
            _refused(run_cli(*TINY_FLAGS, "--run-file", path, *extra), fragment)
            assert _digest(path) == digest


def test_a_directory_is_not_a_run_file(tmp_path):
    _refused(run_cli(*TINY_FLAGS, "--run-file", tmp_path), "is not a file")


def test_missing_cuda_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _refused(run_cli(*TINY_FLAGS, "--out", tmp_path, "--device", "cuda"), "no CUDA device")


def test_help_and_refusals_do_not_import_transformer_lens(finished, tmp_path):
    """Importing TransformerLens takes seconds: --help and refused input (one line, exit 2) answer
    without it, including a landscape pair the run does not have (checked before the model is built)."""
    import subprocess
    import sys

    from conftest import ROOT

    calls = [("train", ["--help"]), ("train", ["--regime", "harder"]), ("sweep", ["--arms", "dreamy"]),
             ("analyze", ["landscape", str(finished), "--pair", "0:999", "--quiet"]),
             ("analyze", ["fourier", str(tmp_path / "missing")]), ("report", ["--help"])]
    for module, args in calls:
        code = (f"import sys\nfrom mechgrok import {module}\ntry:\n    rc = {module}.main({args!r})\n"
                f"except SystemExit as e:\n    rc = e.code\nprint(rc, 'transformer_lens' in sys.modules)")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
        rc, imported = r.stdout.split()[-2:]
        assert (rc, imported) == ("0" if "--help" in args else "2", "False"), (module, args, r.stderr)


def test_other_clis_refuse_a_corrupt_file_or_bad_setting_in_one_line(tmp_path):
    """Given only a corrupt run file, report, figures and stats say which file and why in one line
    (not a 'skipped' line and then an error), exit 2 and write nothing; so does the demo given a
    setting no run can have, before it starts any training."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x00 not hdf5 \x00" * 100)
    digest = _digest(corrupt)
    calls = [("report", [corrupt, "--out", "rep"]), ("figures", [corrupt, "--out", "figs"]),
             ("stats", [corrupt, "--csv", "t.csv"]), ("demo", ["--steps", "-1", "--out", "demo"])]
    for module, args in calls:
        r = subprocess.run([sys.executable, "-m", f"mechgrok.{module}", *map(str, args)], capture_output=True,
                           text=True, cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, (module, r.stderr)
        assert lines[0].startswith(f"python -m mechgrok.{module}: error:"), lines[0]
        assert ("steps must be positive" if module == "demo" else "could not read") in lines[0], lines[0]
        assert "not a readable HDF5 run file" in lines[0] or module == "demo", lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.h5"] and _digest(corrupt) == digest


def test_output_locations_and_options_are_checked_before_anything_is_written(finished, tmp_path, capsys):
    """A file where an output folder goes (or above it), a folder where an output file goes, a
    README the report cannot update, a results table without its columns (even one with no
    rows), an unknown device and an impossible analysis option: one line, exit 2, the run file
    untouched and nothing created, in every command that writes."""
    from mechgrok import analyze, demo, figures, report, stats, sweep, train, transport

    afile, adir = tmp_path / "afile", tmp_path / "adir"
    afile.write_text("keep me\n")
    adir.mkdir()
    no_markers = tmp_path / "README.md"
    no_markers.write_text("# a README without the findings markers\n")
    digest = _digest(finished)
    tiny = [str(a) for a in TINY_FLAGS]
    calls = [
        (report, [finished, "--out", afile, "--no-figures"], "afile: exists and is not a folder"),
        (report, [finished, "--out", tmp_path / "rep", "--figures-dir", afile], "exists and is not a folder"),
        (report, [finished, "--out", tmp_path / "rep", "--readme", no_markers], "no findings markers"),
        (report, [finished, "--out", tmp_path / "rep", "--readme", tmp_path / "missing.md"], "no such README"),
        (figures, [finished, "--out", afile / "sub"], "afile is not a folder"),
        (stats, [finished, "--csv", adir], "is a folder, not a file to write"),
        (analyze, ["norms", finished, "--csv", adir, "--quiet"], "is a folder, not a file to write"),
        (analyze, ["probes", finished, "--every", "0", "--quiet"], "argument --every: must be positive, got 0"),
        (analyze, ["bogus", finished, "--quiet"], "unknown analysis 'bogus'; choose from fourier, norms"),
        (analyze, ["landscape", finished, "--max-events", "-1", "--quiet"],
         "argument --max-events: must be 0 or more, got -1"),
        (figures, [finished, "--out", tmp_path / "figs", "--spectra-per-arm", "-1"],
         "argument --spectra-per-arm: must be 0 or more, got -1"),
        (train, [*tiny, "--out", afile], "afile is not a folder"),
        (train, [*tiny, "--out", tmp_path / "runs", "--device", "tpu"], "unknown device 'tpu'"),
        (sweep, ["--regimes", "hard", "--seeds", "0", "--out", afile, "--dry-run"], "exists and is not a folder"),
        (transport, ["pack", tmp_path, "--out", afile], "exists and is not a folder"),
        (transport, ["unpack", tmp_path / "runs-000.tar.gz", "--root", afile / "runs"], "afile is not a folder"),
        (transport, ["pack", tmp_path], "the following arguments are required: --out"),
        (transport, [], "the following arguments are required: cmd"),
        (stats, [finished, "--table", afile], "not a readable results table (ValueError: no column"),
        (sweep, ["--regimes", "hard", "--seeds", "0", "--out", tmp_path / "runs", "--done", afile, "--dry-run"],
         "not a readable results table"),
        (demo, ["--out", afile], "exists and is not a folder"),
    ]
    for module, args, fragment in calls:
        capsys.readouterr()
        try:
            rc = module.main([str(a) for a in args])
        except SystemExit as exc:  # a usage error (OneLineParser.error)
            rc = exc.code
        assert rc == 2, (module.__name__, args)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and fragment in err, (module.__name__, args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "adir", "afile", "run.h5"]
    assert list(adir.iterdir()) == [] and afile.read_text() == "keep me\n" and _digest(finished) == digest


@pytest.mark.parametrize("script, args, fragment", [
    ("bench_analyze.py", ["missing.h5"], "bench_analyze.py: error: missing.h5: no such run file"),
    ("bench_denormals.py", ["corrupt.h5", "--out", "x.json"], "not a readable HDF5 run file"),
    ("bench_batch.py", ["--device", "tpu"], "argument --device: unknown device 'tpu'"),
    ("bench_sweep.py", ["--runs", "0"], "argument --runs: must be positive, got 0"),
])
def test_benchmark_scripts_refuse_bad_input_in_one_line(script, args, fragment, tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    (tmp_path / "corrupt.h5").write_bytes(b"\x00 not hdf5 \x00" * 100)
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and fragment in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.h5"]
