"""Faults a long sweep meets: full disks, read-only folders, kills, corrupted artefacts, a second run on the same
sweep folder. Each test injects the fault and checks the promise in docs/reliability.md."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from pathlib import Path

import pandas as pd
import pytest

import xaibench
from tests.conftest import FAST_METRICS, interrupted_on_call
from tests.reliability._faults import fill, results, tmpfs
from xaibench import sweep as sweep_module
from xaibench.cli import main
from xaibench.engine import runner, stages
from xaibench.engine import store as store_module
from xaibench.engine.store import Store
from xaibench.engine.store_maintenance import verify
from xaibench.errors import StorageError, UserError
from xaibench.models.base import ModelSpec
from xaibench.results import manifest
from xaibench.results.collect import PARTIAL, SWEEP_CELLS, collect_store, load_table

ONE = ["model=mlp", "dataset=iris", "method=saliency", "n_samples=4", *FAST_METRICS]
THREE = ["model=mlp", "dataset=iris", "method=saliency,random,input_x_gradient", "n_samples=4", *FAST_METRICS]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """THREE computed once without faults (the table every faulty-then-rerun sweep must reproduce)."""
    folder = tmp_path_factory.mktemp("reference")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return results(xaibench.run(THREE, multirun=True))
    finally:
        os.chdir(cwd)


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("xaibench: error: "), stderr[-3000:]
    return lines[0]


def cli_exit_code(argv: list[str]) -> int:
    """``xaibench ARGV`` run in this process (the console entry's ``main``): its exit code."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code or 0


# Full disk ------------------------------------------------------------------------------------------------
# Real full filesystems (a 1 MiB tmpfs), the CLI's entry run in this process (a subprocess, ~8 CPU-s of imports
# each, proved nothing more: the message, exit code and files are the entry's).
@pytest.mark.slow
def test_full_store_disk_one_line_keeps_what_was_written_and_rerun_gives_the_same_table(tmp_path, reference,
                                                                                      monkeypatch, capfd):
    store = tmp_path / "store"
    with tmpfs(store, "1m") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here; test_injected_enospc covers the same path in process")
        monkeypatch.chdir(tmp_path)
        xaibench.run([*ONE, f"store_dir={store}", "sweep_id=s"])  # one cell stored while there is space
        filler = fill(store)
        capfd.readouterr()
        code = cli_exit_code(["-m", *THREE, f"store_dir={store}", "sweep_id=s"])
        line = one_error_line(capfd.readouterr().err)
        assert code == 1 and f"cannot write {store}/v2/" in line and "[Errno 28] No space left" in line
        assert len(list((tmp_path / "results/runs/s/cells").glob("*.parquet"))) == 1  # the cached cell is recorded
        checked = verify(Store(store))
        assert checked.damaged == [] and checked.temp_files == 0 and sum(checked.checked.values()) >= 6
        filler.unlink()
        code = cli_exit_code(["-m", *THREE, f"store_dir={store}", "sweep_id=s"])
        assert code == 0, capfd.readouterr().err[-3000:]
        pd.testing.assert_frame_equal(results(load_table(tmp_path / "results/runs/s")), reference)


@pytest.mark.slow
def test_full_results_disk_one_line_and_rerun_gives_the_same_table(tmp_path, reference, monkeypatch, capfd):
    runs = tmp_path / "runs"
    with tmpfs(runs, "1m") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here; test_injected_enospc covers the same path in process")
        monkeypatch.chdir(tmp_path)
        filler = fill(runs, 64 * 1024)  # room for the sweep's start, not for all its cells and Hydra's job configs
        capfd.readouterr()
        code = cli_exit_code(["-m", *THREE, f"results_dir={runs}", "sweep_id=r"])
        line = one_error_line(capfd.readouterr().err)
        assert code == 1 and f"cannot write {runs}" in line and "[Errno 28] No space left" in line
        filler.unlink()
        code = cli_exit_code(["-m", *THREE, f"results_dir={runs}", "sweep_id=r"])
        assert code == 0, capfd.readouterr().err[-3000:]
        pd.testing.assert_frame_equal(results(load_table(runs / "r")), reference)


def test_injected_enospc_in_store_and_results_folder(workdir, monkeypatch, reference):
    """The same promise without a mount: an OSError(ENOSPC) injected into every write under one folder."""
    real = store_module.tempfile.mkstemp

    def full(folder):
        def mkstemp(dir=None, **kwargs):
            if os.path.abspath(dir).startswith(str(workdir / folder)):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dir))
            return real(dir=dir, **kwargs)
        return mkstemp

    for folder in ("results/store/v2/explanations", "results/runs/default/cells"):
        monkeypatch.setattr(store_module.tempfile, "mkstemp", full(folder))
        with pytest.raises(StorageError) as error:
            xaibench.run(THREE, multirun=True)
        assert str(error.value).startswith(f"cannot write {folder}") and "[Errno 28]" in str(error.value)
        assert "\n" not in str(error.value)
        monkeypatch.setattr(store_module.tempfile, "mkstemp", real)
        assert verify(Store("results/store")).damaged == []
    pd.testing.assert_frame_equal(results(xaibench.run(THREE, multirun=True)), reference)


def test_read_only_results_and_store_folders_are_refused_before_anything_runs(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    with tmpfs(ro, "64k", read_only=True) as mounted:
        if not mounted:  # no mount: pretend the filesystem is read-only
            monkeypatch.setattr(manifest, "_read_only", lambda folder: str(folder).startswith(str(ro)))
        monkeypatch.chdir(tmp_path)
        for override, what in ((f"results_dir={ro}/runs", "results_dir"), (f"store_dir={ro}/store", "store_dir")):
            with pytest.raises(UserError) as error:
                xaibench.run([*ONE, override])
            assert f"{what} {ro}" in str(error.value) and "[Errno 30] Read-only file system" in str(error.value)
        assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.parquet"))


# Interrupted sweeps and the sweep folder ------------------------------------------------------------------
def test_summary_of_a_killed_sweep_says_it_is_partial(workdir, monkeypatch, capsys):
    monkeypatch.setattr(runner, "_compute", interrupted_on_call(runner._compute, 3))
    with pytest.raises(KeyboardInterrupt):
        xaibench.run(THREE, multirun=True)
    with pytest.raises(SystemExit) as done:
        main(["summary", "results/runs/default", "-o", "s.parquet"])
    out = capsys.readouterr()
    assert done.value.code == 0
    assert "PARTIAL: 2 of 3 cells; the sweep did not finish" in out.out
    assert out.err == "xaibench: warning: 2 of 3 cells; the sweep did not finish\nxaibench: wrote s.parquet\n"
    assert pd.read_parquet("s.parquet").attrs[PARTIAL] == "2 of 3 cells; the sweep did not finish"
    for name in ("s.csv", "s.md", "s.tex", "s.html"):  # every written format carries the mark
        with pytest.raises(SystemExit):
            main(["summary", "results/runs/default", "-o", name])
        assert "2 of 3 cells; the sweep did not finish" in Path(name).read_text(), name
    assert set(pd.read_csv("s.csv")["partial"]) == {"2 of 3 cells; the sweep did not finish"}
    with pytest.raises(SystemExit) as strict:
        main(["collect", "results/runs/default", "--strict"])
    assert strict.value.code == 1


INTERRUPTED = ("xaibench: interrupted: the cells finished so far are stored and the sweep's previous table is kept; "
               "rerun the same command to finish it (stored cells are not recomputed)\n")


def test_ctrl_c_in_a_sweep_is_one_line_and_exit_130(workdir, monkeypatch, capsys):
    """Ctrl-C printed a 30-line traceback from wherever the sweep was (pandas, joblib's wait loop), in-process or
    through a Hydra launcher; the folder then says the sweep did not finish, and a rerun computes the rest."""
    monkeypatch.setattr(runner, "_compute", interrupted_on_call(runner._compute, 2))
    with pytest.raises(SystemExit) as stopped:
        main(["-m", *THREE])
    assert stopped.value.code == 130 and capsys.readouterr().err == INTERRUPTED
    assert manifest.read_state(workdir / "results/runs/default").note(1) == "1 of 3 cells; the sweep did not finish"

    def launching(n_jobs):
        raise KeyboardInterrupt  # inside Hydra's sweep, as while its launcher waits for the workers

    monkeypatch.setattr(sweep_module, "pending_jobs", launching)
    with pytest.raises(SystemExit) as stopped:
        main(["-m", *THREE, "hydra/launcher=joblib"])
    out = capsys.readouterr()
    note, interrupted = out.err.split("\n", 1)  # the rerun says first that the run before it did not finish
    assert stopped.value.code == 130 and interrupted == INTERRUPTED, out.err
    assert note.startswith("xaibench: note: the previous run of results/runs/default did not finish (1 of 3 cells "
                           "written, started ")
    assert "[job 0]" in out.out  # the stored cell, written by the launching process before Hydra


def test_a_second_run_on_a_busy_sweep_folder_is_refused(workdir):
    folder = workdir / "results/runs/default"
    folder.mkdir(parents=True)
    other = os.open(folder / manifest.LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)  # another run holds the folder (its own open file, as another process)
    try:
        with pytest.raises(UserError, match="sweep folder .* is in use by another xaibench run; wait"):
            xaibench.run(ONE)
        assert manifest.read_state(folder) is None  # the refused run wrote nothing
        manifest.begin(folder, 3)  # the holder's record (begun by it): the refusal says where it runs
        with pytest.raises(UserError) as refused:
            xaibench.run(ONE)
        started = json.loads((folder / manifest.MANIFEST_NAME).read_text())["started_at"]
        assert f"is in use by another xaibench run (pid {os.getpid()} on {socket.gethostname()}, started {started}); " \
               f"wait for it to finish" in str(refused.value)
    finally:
        os.close(other)
    xaibench.run(ONE)
    assert manifest.read_state(folder).finished


def test_outputs_honour_the_umask(workdir):
    old = os.umask(0o002)
    try:
        xaibench.run(ONE)
    finally:
        os.umask(old)
    files = [p for p in workdir.rglob("*") if p.is_file()]
    assert files and {p.stat().st_mode & 0o777 for p in files} == {0o664}


# Corruption -----------------------------------------------------------------------------------------------
def _counters(monkeypatch) -> dict[str, list]:
    calls = {"fit": [], "explain": [], "score": []}
    fit, explain, score = ModelSpec.fit, stages._explain, stages._score_frame
    monkeypatch.setattr(ModelSpec, "fit", lambda self, *a: calls["fit"].append(1) or fit(self, *a))
    monkeypatch.setattr(stages, "_explain", lambda *a: calls["explain"].append(1) or explain(*a))
    monkeypatch.setattr(stages, "_score_frame", lambda *a: calls["score"].append(1) or score(*a))
    return calls


@pytest.mark.parametrize("kind, recomputed", [("models", "fit"), ("explanations", "explain"), ("scores", "score"),
                                              ("cells", None)])
def test_a_corrupted_byte_anywhere_is_detected_and_recomputed_with_the_same_table(workdir, monkeypatch, kind,
                                                                                  recomputed):
    first = results(xaibench.run(ONE))
    store = Store("results/store")
    calls = _counters(monkeypatch)
    target = store.files(kind)[0]
    original = target.read_bytes()
    header_end = original.index(b"\n", 20)
    meta_at = original.index(b'"meta"')
    # the metadata, the payload, the checksum (test_store flips every header byte and 200 payload positions)
    for position in (meta_at + 10, header_end + 1 + (len(original) - header_end) // 2, len(original) - 1):
        damaged = bytearray(original)
        damaged[position] ^= 0x20  # e.g. n_forward -> n_Forward, 0.97 -> 0.9', a payload bit
        target.write_bytes(bytes(damaged))
        if kind != "cells":  # a stage is read only when its cell is recomputed
            store.files("cells")[0].unlink()
        for counts in calls.values():
            counts.clear()
        again = results(xaibench.run(ONE))
        pd.testing.assert_frame_equal(again, first)
        expected = {"fit": 0, "explain": 0, "score": 0} | ({recomputed: 1} if recomputed else {})
        assert {k: len(v) for k, v in calls.items()} == expected, f"byte {position} of the {kind} artefact"
        assert verify(store).damaged == []


def test_collect_store_reports_damaged_cells_and_strict_fails(workdir, capsys):
    xaibench.run(THREE, multirun=True)
    store = Store("results/store")
    damaged = store.files("cells")[0]
    damaged.write_bytes(damaged.read_bytes()[:-40])  # a truncated copy
    with pytest.raises(SystemExit) as done:
        main(["collect", "--store", "results/store", "-o", "all.parquet"])
    err = capsys.readouterr().err
    assert done.value.code == 0 and "skipped 1 of 3 cell artefacts (1 checksum mismatch)" in err
    assert len(pd.read_parquet("all.parquet").drop_duplicates("cell_key")) == 2
    with pytest.raises(SystemExit) as strict:
        main(["collect", "--store", "results/store", "--strict"])
    assert strict.value.code == 1
    xaibench.run(THREE, multirun=True)  # the damaged cell is recomputed, not trusted
    assert len(collect_store("results/store").drop_duplicates("cell_key")) == 3


def test_a_parallel_sweep_whose_job_could_not_write_its_cell_ends_incomplete_without_writing_a_table(
        tmp_path, monkeypatch, capsys):
    """reliab10: a joblib sweep on a full results disk (checked on a 3 MB tmpfs): the job that could not write its
    cell said so, then the end of the sweep tried to write a table of the cells it had anyway and its last line was
    `cannot write .../table.parquet: [Errno 28]`, not the promised `sweep ... is incomplete (3 of 4 cells written)`
    (it only got there on a disk with room for the partial table)."""
    folder = tmp_path / "runs" / "s"
    sweep_module.start_sweep(folder, 2, {"a" * 32, "b" * 32})
    (folder / SWEEP_CELLS).mkdir(exist_ok=True)
    (folder / SWEEP_CELLS / f"{'a' * 32}.parquet").write_bytes(b"one cell written")
    real = store_module.tempfile.mkstemp

    def full_disk(dir=None, **kwargs):
        if str(dir).startswith(str(tmp_path)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dir))
        return real(dir=dir, **kwargs)

    monkeypatch.setattr(store_module.tempfile, "mkstemp", full_disk)
    capsys.readouterr()
    sweep_module.finish_sweep(folder)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"xaibench: error: sweep {folder} is incomplete (1 of 2 cells written); its previous table is "
                   f"kept: rerun the sweep to finish it"]
    assert sweep_module.exit_code() == 1 and not (folder / "table.parquet").exists()


def test_a_rerun_removes_the_half_written_table_a_killed_sweep_left(tmp_path):
    """reliab10: `kill -9` while a sweep wrote its table (streamed: seconds to minutes at 10k cells) left
    `.table.parquet.<random>.tmp` (hundreds of MB) in the sweep folder, and every rerun kept it. The run that holds
    the sweep lock is the only writer there, so it removes them; the lock file stays."""
    folder = tmp_path / "runs" / "s"
    folder.mkdir(parents=True)
    (folder / ".table.parquet.k3j4h5.tmp").write_bytes(b"half a table")
    (folder / ".summary.parquet.a1b2c3.tmp").write_bytes(b"half a summary")
    (folder / ".sweep.lock").touch()
    sweep_module.start_sweep(folder, 1, {"a" * 32})
    assert sorted(p.name for p in folder.glob(".*")) == [".sweep.lock"]


def test_sigterm_in_an_in_process_sweep_is_one_line_exit_143_and_leaves_no_temp_file(workdir, monkeypatch, capsys):
    """reliab10: `kill PID`, `timeout`, or a batch job's end (SIGTERM) ended an in-process sweep without a word,
    mid-write, leaving its temp files; it now unwinds like Ctrl-C: one line, exit 143, the finished cells stored."""
    import signal

    real, calls = runner._compute, []

    def terminated_on_second_call(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_compute", terminated_on_second_call)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        main(["-m", *THREE])
    assert stopped.value.code == 143
    assert capsys.readouterr().err == INTERRUPTED.replace("interrupted", "terminated (SIGTERM)", 1)
    assert manifest.read_state(workdir / "results/runs/default").note(1) == "1 of 3 cells; the sweep did not finish"
    assert list(workdir.rglob("*.tmp")) == []
    assert signal.getsignal(signal.SIGTERM) is previous  # the CLI's handler is gone with its sweep


def test_an_in_process_sweep_restores_a_sigterm_handler_python_did_not_install(monkeypatch):
    """`signal.signal` reports a handler installed outside Python (an embedding process) as None, and giving None
    back raised TypeError in the sweep's `finally`, hiding its outcome; the default handler is restored instead."""
    import signal
    from types import SimpleNamespace

    from xaibench import cli, sweep

    installed, real = [], signal.signal

    def reporting_none_first(signum, handler):
        installed.append(handler)
        return None if len(installed) == 1 else real(signum, handler)

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(sweep, "run_configs", lambda *args, **kwargs: None)
    monkeypatch.setattr(sweep, "exit_code", lambda: 0)
    monkeypatch.setattr(signal, "signal", reporting_none_first)
    try:
        with pytest.raises(SystemExit) as ended:
            cli._run_in_process(SimpleNamespace(configs=[]), multirun=True)
    finally:
        real(signal.SIGTERM, previous)
    assert ended.value.code == 0 and installed[-1] is signal.SIG_DFL


def test_a_full_disk_under_collect_summary_and_report_outputs_is_exit_1_not_bad_input(tmp_path, monkeypatch, capfd):
    """reliab11: `collect -o`, `summary -o` and `report` on a full disk exited 2 (the bad-input code: every
    StorageError of a verb was turned into a UserError). A full disk is not the user's input: one line naming the
    file, exit 1, no file (not even a temp file) left. On a real full tmpfs where one can be mounted, else with
    ENOSPC injected where the written bytes reach the disk (fsync). A file where a folder should be stays exit 2."""
    from tests.reliability.test_collect import CELLS, cell_frame
    from tests.unit.report_fixtures import quickstart_like_table

    sweep = tmp_path / "sweep"
    (sweep / "cells").mkdir(parents=True)
    for index, (model, method, seed, metrics) in enumerate(CELLS[:2]):
        cell_frame(index, model, method, seed, metrics).to_parquet(sweep / "cells" / f"{index:032x}.parquet")
    quickstart_like_table().to_parquet(tmp_path / "table.parquet")
    disk = tmp_path / "disk"
    with tmpfs(disk, "256k") as mounted:
        if mounted:
            fill(disk)
        else:
            def full(fd):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            monkeypatch.setattr(store_module.os, "fsync", full)
        before = sorted(p.name for p in disk.iterdir())
        for argv, path in (
                (["collect", str(sweep), "-o", f"{disk}/t.parquet"], disk / "t.parquet"),
                (["collect", str(sweep), "-o", f"{disk}/t.csv", "--no-summary"], disk / "t.csv"),
                (["summary", str(tmp_path / "table.parquet"), "-o", f"{disk}/s.parquet"], disk / "s.parquet"),
                (["summary", str(tmp_path / "table.parquet"), "-o", f"{disk}/s.md"], disk / "s.md"),
                (["report", str(tmp_path / "table.parquet"), "--out", f"{disk}/rep", "--no-figures",
                  "--format", "md"], disk / "rep" / "report.md")):
            capfd.readouterr()
            with pytest.raises(SystemExit) as done:
                main(argv)
            lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("xaibench: ")]
            assert done.value.code == 1, (argv, lines)
            assert lines == [f"xaibench: error: cannot write {path}: [Errno 28] No space left on device"], argv
            assert sorted(p.name for p in disk.iterdir()) == before + (["rep"] if argv[0] == "report" else [])
            assert list(disk.rglob("*.tmp")) == [] and not path.exists()
    (tmp_path / "afile").write_text("a file where a folder should be")
    with pytest.raises(SystemExit) as refused:
        main(["summary", str(tmp_path / "table.parquet"), "-o", f"{tmp_path}/afile/s.csv"])
    assert refused.value.code == 2


def test_an_update_baseline_killed_between_its_two_writes_is_detected_in_one_line(tmp_path, monkeypatch, capfd):
    """reliab11: `compare --update-baseline` wrote the table, then its provenance; a kill between them left the new
    table beside the old provenance (or the reverse), which compare used as if they were one update. The provenance
    now records the table's SHA-256; both files are written and synced before the provenance, then the table, are
    renamed into place (a full disk changes nothing); compare refuses a pair that does not match, in one line
    (exit 2), until the update is rerun."""
    from tests.unit.test_compare import BASE, table

    baseline = tmp_path / "baselines" / "ci"
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    table({("saliency", "m"): list(BASE)}).to_parquet(first, index=False)
    table({("saliency", "m"): list(BASE - 0.2)}).to_parquet(second, index=False)

    def compare(*args) -> tuple[int, list[str]]:
        capfd.readouterr()
        with pytest.raises(SystemExit) as done:
            main(["compare", *map(str, args)])
        return done.value.code, capfd.readouterr().err.splitlines()

    assert compare(baseline, first, "--update-baseline")[0] == 0
    real_fsync, real_replace = os.fsync, os.replace

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)  # both files are written and synced before either is renamed
    code, err = compare(baseline, second, "--update-baseline")
    assert code == 1 and err[-1] == f"xaibench: error: cannot write {baseline}/table.parquet: [Errno 28] No space " \
                                    "left on device"
    monkeypatch.setattr(os, "fsync", real_fsync)
    code, err = compare(baseline, first)  # the pair is unchanged (a note only: first.parquet's config is unknown)
    assert code == 0 and [line for line in err if "its config was not checked" not in line] == []
    assert list(baseline.glob(".*.tmp")) == []

    def killed_before_the_table_is_renamed(src, dst, **kwargs):
        if str(dst).endswith("table.parquet"):
            raise KeyboardInterrupt  # stands in for the kill: the provenance is in place, the table is not
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", killed_before_the_table_is_renamed)
    capfd.readouterr()
    with pytest.raises(SystemExit) as interrupted:
        main(["compare", str(baseline), str(second), "--update-baseline"])
    assert interrupted.value.code == 130 and capfd.readouterr().err == (  # it spoke of cells and a sweep's table
        "xaibench: compare interrupted: a file it writes is replaced whole or not at all (no half-written file); "
        "rerun the same command\n")
    monkeypatch.setattr(os, "replace", real_replace)
    code, err = compare(baseline, first)
    assert code == 2 and len(err) == 1 and err[0].startswith(
        f"xaibench: error: baseline {baseline}/table.parquet does not match its provenance "
        f"{baseline}/table.provenance.json"), err
    assert "rerun xaibench compare BASELINE CURRENT --update-baseline" in err[0]
    assert compare(baseline, second, "--update-baseline")[0] == 0  # the rerun repairs the pair
    code, err = compare(baseline, second)
    assert code == 0 and [line for line in err if "its config was not checked" not in line] == []
    (baseline / "table.parquet").write_bytes(first.read_bytes())  # one file restored without the other
    assert compare(baseline, second)[0] == 2


def test_a_report_killed_mid_write_leaves_temp_files_the_next_report_removes(tmp_path, capfd):
    """reliab11: `kill -9` of `xaibench report` while it wrote its files left `.tables.tex.<random>.tmp` in the
    report folder, and every later report kept it. A report now holds `<out>/.report.lock` while it writes there
    and first removes such temp files (only the lock's holder writes there); a second report into the folder
    meanwhile is refused in one line. Real SIGKILL, in a subprocess, as the second file is renamed into place."""
    import signal
    import subprocess
    import sys
    import threading

    from tests.conftest import REPO, cli_env
    from tests.unit.report_fixtures import quickstart_like_table
    from xaibench.engine.locks import file_lock

    quickstart_like_table().to_parquet(tmp_path / "table.parquet")
    out = tmp_path / "report"
    argv = ["report", str(tmp_path / "table.parquet"), "--out", str(out), "--no-figures", "--format", "md,latex"]
    killer = ("import os, signal, sys\n"
              "real = os.replace\n"
              "def replace(src, dst, **kwargs):\n"
              "    if str(dst).endswith('tables.tex'):\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return real(src, dst, **kwargs)\n"
              "os.replace = replace\n"
              "from xaibench.cli import main\n"
              "main(sys.argv[1:])\n")
    killed = subprocess.run([sys.executable, "-c", killer, *argv], cwd=tmp_path, env=cli_env(PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    left = [p.name for p in out.glob(".*.tmp")]
    assert len(left) == 1 and left[0].startswith(".tables.tex."), left
    assert (out / "report.md").exists() and not (out / "tables.tex").exists()

    held, release = threading.Event(), threading.Event()

    def another_report() -> None:
        with file_lock(out / ".report.lock"):
            held.set()
            release.wait(60)

    holder = threading.Thread(target=another_report)
    holder.start()
    try:
        held.wait(60)
        capfd.readouterr()
        with pytest.raises(SystemExit) as refused:
            main(argv)
        err = capfd.readouterr().err.splitlines()
        assert refused.value.code == 2 and err == [
            f"xaibench: error: another xaibench report is writing in {out}; wait for it to end or choose another --out"]
        assert [p.name for p in out.glob(".*.tmp")] == left  # not the refused report's to remove
    finally:
        release.set()
        holder.join(60)
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0 and list(out.glob(".*.tmp")) == [] and (out / "tables.tex").exists()


def test_sigterm_in_a_verb_is_one_line_exit_143_and_leaves_no_temp_file(tmp_path):
    """reliab11: SIGTERM (`timeout`, the end of a batch job) ended `collect -o`/`summary -o`/`report` at once,
    leaving the output's `.<name>.<random>.tmp` (hundreds of MB for a 10k-cell collect) beside it. A verb now
    unwinds like Ctrl-C: one line, exit 143, the temp file removed. Real SIGTERM, sent while the file is written."""
    import subprocess
    import sys

    from tests.conftest import REPO, cli_env
    from tests.unit.report_fixtures import quickstart_like_table

    quickstart_like_table().to_csv(tmp_path / "table.csv", index=False)
    terminated = ("import os, signal, sys\n"
                  "real = os.fsync\n"
                  "def fsync(fd):\n"
                  "    os.kill(os.getpid(), signal.SIGTERM)\n"
                  "    return real(fd)\n"
                  "os.fsync = fsync\n"
                  "from xaibench.cli import main\n"
                  "main(sys.argv[1:])\n")
    done = subprocess.run([sys.executable, "-c", terminated, "summary", "table.csv", "-o", "s.csv"], cwd=tmp_path,
                          env=cli_env(PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 143, done.stderr[-2000:]
    assert done.stderr.splitlines()[-1:] == ["xaibench: summary terminated (SIGTERM): a file it writes is replaced "
                                             "whole or not at all (no half-written file); rerun the same command"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_a_collect_or_summary_killed_mid_write_leaves_a_temp_file_the_next_run_removes(tmp_path, capfd):
    """rel14: `kill -9` of `collect <sweep> -o t.parquet` or `summary t.parquet -o s.csv` left
    `.<output>.<random>.tmp` beside the output forever (hundreds of MB at 10k cells). The next run of the same output
    removes it; a temp file a live writer of that output still holds (a concurrent run) is kept, and that writer
    still completes. Real SIGKILL, in a subprocess, as the file is renamed into place."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO, cli_env
    from tests.reliability.test_collect import CELLS, cell_frame
    from tests.unit.report_fixtures import quickstart_like_table

    sweep = tmp_path / "sweep"
    (sweep / "cells").mkdir(parents=True)
    for index, (model, method, seed, metrics) in enumerate(CELLS[:2]):
        cell_frame(index, model, method, seed, metrics).to_parquet(sweep / "cells" / f"{index:032x}.parquet")
    quickstart_like_table().to_parquet(tmp_path / "table.parquet")
    killer = ("import os, signal, sys\n"
              "real = os.replace\n"
              "def replace(src, dst, **kwargs):\n"
              "    if os.path.basename(str(dst)) in ('t.parquet', 's.csv'):\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return real(src, dst, **kwargs)\n"
              "os.replace = replace\n"
              "from xaibench.cli import main\n"
              "main(sys.argv[1:])\n")
    for argv, name in ((["collect", str(sweep), "-o", "t.parquet"], "t.parquet"),
                       (["summary", "table.parquet", "-o", "s.csv"], "s.csv")):
        killed = subprocess.run([sys.executable, "-c", killer, *argv], cwd=tmp_path,
                                env=cli_env(PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=300)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        dead = list(tmp_path.glob(f".{name}.*.tmp"))
        assert len(dead) == 1 and dead[0].stat().st_size > 0 and not (tmp_path / name).exists()
        with store_module.atomic_writer(tmp_path / name) as live:  # a concurrent run, writing the same output
            live.write(b"the concurrent run's bytes")
            [alive] = set(tmp_path.glob(f".{name}.*.tmp")) - set(dead)
            with pytest.raises(SystemExit) as done:
                main([argv[0], *[str(tmp_path / a) if a.endswith((".parquet", ".csv")) else a for a in argv[1:]]])
            assert done.value.code == 0, capfd.readouterr().err
            assert sorted(tmp_path.glob(f".{name}.*.tmp")) == [alive]  # the dead writer's is gone, the live one's kept
            assert (tmp_path / name).stat().st_size > 100
        assert (tmp_path / name).read_bytes() == b"the concurrent run's bytes"  # the live writer completed
        assert list(tmp_path.glob("*.tmp")) == [] and list(tmp_path.glob(".*.tmp")) == []


def test_a_compare_killed_mid_write_leaves_temp_files_the_next_compare_removes(tmp_path, capfd):
    """A `kill -9` of `compare` while writing `--report`, `--json` or `--update-baseline`'s pair left
    `.<output>.<random>.tmp` beside each output forever (collect -o and summary -o remove theirs since rel14): the
    next compare writing the same outputs removes the temp files of dead writers, never one a live writer holds."""
    from tests.unit.test_compare import BASE, table

    baseline, current = tmp_path / "baselines" / "ci", tmp_path / "c.parquet"
    baseline.mkdir(parents=True)
    table({("saliency", "m"): list(BASE)}).to_parquet(current, index=False)
    report, verdict = tmp_path / "r.md", tmp_path / "r.json"
    dead = [tmp_path / ".r.md.abcd1234.tmp", tmp_path / ".r.json.abcd1234.tmp",
            baseline / ".table.parquet.abcd1234.tmp", baseline / ".table.provenance.json.abcd1234.tmp"]
    for temp in dead:  # what a killed writer leaves: its temp file, no lock held
        temp.write_bytes(b"half-written")
    with store_module.atomic_writer(verdict) as live:  # a concurrent compare, writing the same --json
        live.write(b"the concurrent run's verdict")
        [alive] = set(tmp_path.glob(".r.json.*.tmp")) - set(dead)
        for argv in ([baseline, current, "--update-baseline"], [baseline, current, "--report", report, "--json",
                                                                 verdict]):
            with pytest.raises(SystemExit) as done:
                main(["compare", *map(str, argv)])
            assert done.value.code == 0, capfd.readouterr().err
        assert [temp for temp in dead if temp.exists()] == [] and alive.exists()
        assert (baseline / "table.parquet").is_file() and report.is_file()
    assert verdict.read_bytes() == b"the concurrent run's verdict"  # the live writer completed
    assert list(tmp_path.rglob(".*.tmp")) == []


def test_a_damaged_sweep_json_warns_where_optional_and_a_rerun_of_the_sweep_rewrites_it(tmp_path, capsys):
    """rel14: a damaged `sweep.json` was read as no record at all. Readers that need it (summary, collect, report,
    load) refuse in one line (`test_bad_input.py`); compare's checks of the configs and plugin files a table was
    made from, which only use it when present, say once that they skip it; a rerun of the sweep rewrites it."""
    from xaibench.config.plan import make_plan

    folder = tmp_path / "runs" / "s"
    folder.mkdir(parents=True)
    (folder / manifest.MANIFEST_NAME).write_text('{"state": "running", "command": {"overr')
    capsys.readouterr()
    assert manifest.recorded_command(folder) is None and manifest.recorded_plugins(folder) == {}
    assert capsys.readouterr().err.splitlines() == [
        f"xaibench: warning: {folder}/sweep.json is damaged (not valid JSON: Unterminated string starting at: line 1 "
        f"column 34 (char 33)); compare does not check the configs the table was made from"]  # once per file
    with pytest.raises(UserError, match="sweep.json is damaged"):
        manifest.read_state(folder)
    plan = make_plan([*ONE, f"results_dir={tmp_path / 'runs'}", "sweep_id=s"], multirun=False)
    with sweep_module.claim_sweeps(plan.configs):
        state = manifest.read_state(folder)
    assert (state.expected_cells, state.finished) == (1, False)


def test_an_incomplete_sweep_names_the_cells_it_lacks_and_how_to_get_them(tmp_path, capsys):
    """cluster11: after a Slurm task or a joblib worker died, the end of the sweep and a later ``xaibench summary``
    said "1 of 3 cells" only: with 10,000 cells the user could not tell which were missing. Both now name them (in
    job order, five at most) and the summary says how to get them."""
    from xaibench.commands.summary import _resume_line

    folder = tmp_path / "runs" / "s"
    labels = {f"{c}" * 32: f"mlp x iris x {method} (seed {seed})"
              for c, (method, seed) in zip("0123456", [("saliency", s) for s in range(6)] + [("random", 0)])}
    sweep_module.start_sweep(folder, len(labels), labels)
    (folder / SWEEP_CELLS).mkdir(exist_ok=True)
    (folder / SWEEP_CELLS / f"{'1' * 32}.parquet").write_bytes(b"one cell written")
    capsys.readouterr()
    sweep_module.finish_sweep(folder)
    assert capsys.readouterr().err.strip() == (
        f"xaibench: error: sweep {folder} is incomplete (1 of 7 cells written; missing: mlp x iris x saliency (seed 0), "
        f"mlp x iris x saliency (seed 2), mlp x iris x saliency (seed 3), mlp x iris x saliency (seed 4), mlp x iris x "
        f"saliency (seed 5) and 1 more); its previous table is kept: rerun the sweep to finish it")
    assert _resume_line(folder) == (
        "missing: mlp x iris x saliency (seed 0), mlp x iris x saliency (seed 2), mlp x iris x saliency (seed 3), "
        "mlp x iris x saliency (seed 4), mlp x iris x saliency (seed 5) and 1 more; rerun the sweep's command to "
        "compute them (stored cells are not recomputed)")
    sweep_module.start_sweep(folder, 2, {"a" * 32, "b" * 32})  # keys without labels (a caller of start_sweep's own)
    assert manifest.planned_cells(folder) == {"a" * 32: "", "b" * 32: ""} and _resume_line(folder) == ""
