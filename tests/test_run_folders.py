"""Run folders that never lose a result: staging + atomic publish, signals, locks, stale files.

Every test here runs the real command in a subprocess (or the library entry
point) and checks the output folder byte for byte.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rednmf import cli
from rednmf.datasets import make_scene
from rednmf.pipeline import detect_scene

LAUNCH = [sys.executable, "-m", "rednmf"]


def _scene(tmp: Path, name: str = "big", rows: int = 240, cols: int = 240) -> Path:
    """A synthetic scene large enough that writing its outputs takes a while (report spectra)."""
    cube, gt = make_scene(
        rows=rows, cols=cols, bands=48, n_endmembers=3, n_targets=8, random_state=3
    )
    path = tmp / f"{name}.npz"
    np.savez(path, data=cube.astype(np.float32), map=(np.asarray(gt) != 0).astype(np.uint8))
    return path


def _snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (hidden ones included), by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONWARNINGS="ignore", OPENBLAS_NUM_THREADS="1")


def _detect(scene: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*LAUNCH, "detect", str(scene), "--out", str(out), "--method", "grx", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _staged_entries(out: Path) -> int:
    """Entries in the staging folder of a run in progress (-1 while there is none)."""
    for child in out.iterdir() if out.is_dir() else ():
        if ".staging-" in child.name:
            try:
                return len(os.listdir(child))
            except FileNotFoundError:
                return -1
    return -1


def _holds_lock(folder: Path) -> bool:
    """Whether some process holds a ``flock`` on ``folder`` (the run lock), from ``/proc/locks``.

    Read, not tried: taking the lock to test it could make a run that asks at that
    instant think another run holds the folder.
    """
    if not folder.is_dir():
        return False
    st = os.stat(folder)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as fh:
        return any(" FLOCK " in line and f" {device} " in line for line in fh)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "moment"),
    [
        (signal.SIGTERM, "fit"),
        (signal.SIGINT, "fit"),
        (signal.SIGTERM, 1),  # the first file is being written
        (signal.SIGINT, 3),
        (signal.SIGTERM, 6),  # the overview picture
        (signal.SIGINT, 8),  # the report
    ],
)
def test_signal_during_a_rerun_keeps_the_earlier_results(tmp_path, sig, moment):
    """SIGINT/SIGTERM at several moments of a re-run: exit 128+n, one line, folder unchanged."""
    scene = _scene(tmp_path)
    out = tmp_path / "out"
    first = _detect(scene, out)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    before = _snapshot(out)
    assert "big_grx/big_grx_report.html" in before

    proc = _detect(scene, out, "--contamination", "0.03")
    deadline = time.monotonic() + 120
    if moment == "fit":
        # the re-run holds the lock from before it reads until it has published: once it
        # does and nothing is staged yet, it is reading or fitting; it is paused there so
        # that the signal lands in that phase however fast the machine
        while not _holds_lock(out):
            assert proc.poll() is None, "the run ended before the signal could be sent"
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        proc.send_signal(signal.SIGSTOP)
        try:
            assert _staged_entries(out) == -1, "the re-run was already writing when paused"
            proc.send_signal(sig)
        finally:
            proc.send_signal(signal.SIGCONT)
    else:
        while _staged_entries(out) < moment:
            assert proc.poll() is None, "the run ended before the signal could be sent"
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        assert proc.poll() is None, "the run ended before the signal could be sent"
        proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), stderr
    assert "Traceback" not in stderr + stdout
    assert _snapshot(out) == before
    assert _hidden(out) == []


def _signal_when_published(proc: subprocess.Popen, folder: Path, sig: int) -> bool:
    """Send ``sig`` to ``proc`` the moment ``folder`` exists (published); False if it ended."""
    deadline = time.monotonic() + 120
    while not folder.is_dir():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline
        time.sleep(0.0005)
    proc.send_signal(sig)
    return True


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_right_after_publication_says_the_run_is_complete(tmp_path, sig):
    """Signalled as the run folder appears: exit 0, never 'nothing was written', and the
    --json line printed once (from disk if the signal came before the command printed it)."""
    scene = _scene(tmp_path, rows=60, cols=60)
    out = tmp_path / "out"
    proc = _detect(scene, out, "--no-report", "--json")
    assert _signal_when_published(proc, out / "big_grx", sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "nothing" not in stderr and "unchanged" not in stderr and "Traceback" not in stderr
    assert all(line.startswith("warning: ") for line in stderr.splitlines()), stderr
    summary = json.loads((out / "big_grx" / "big_grx_summary.json").read_text())
    assert sorted(Path(f).name for f in summary["files"].values()) == sorted(
        p.name for p in (out / "big_grx").iterdir()
    )
    assert _hidden(out) == []
    printed = [line for line in stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and json.loads(printed[0]) == summary, stdout


@pytest.mark.slow
def test_signal_after_a_batch_scene_was_published_lists_it(tmp_path):
    """A batch stopped after its first scene: exit 143, the message and batch_summary.csv
    name the published scene; the others are 'interrupted' / 'not run'."""
    import csv

    scenes = [_scene(tmp_path, name, rows=60, cols=60) for name in ("a", "b", "c")]
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*LAUNCH, "detect", *map(str, scenes), "--out", str(out), "--method", "grx",
         "--no-report"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    assert _signal_when_published(proc, out / "a_grx", signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: interrupted (SIGTERM)") and "a_grx" in last, stderr
    assert "batch_summary.csv" in last and "nothing behind" not in last
    with open(out / "batch_summary.csv", newline="") as fh:
        rows = {r["scene"]: r for r in csv.DictReader(fh)}
    assert rows["a"]["status"] == "ok" and rows["a"]["run_dir"] == str((out / "a_grx").resolve())
    published = {p.name for p in out.iterdir() if p.is_dir()}
    for name in ("b", "c"):  # usually not reached; 'ok' exactly when its folder was published
        ok = rows[name]["status"] == "ok"
        assert ok == (f"{name}_grx" in published), (rows[name], published)
        assert ok or rows[name]["status"] in ("interrupted", "not run")
    assert rows["c"]["status"] != "interrupted" or rows["b"]["status"] == "ok"
    assert _hidden(out) == []


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
@pytest.mark.parametrize("cpu", [3.0, 5.0])
def test_a_signal_during_the_rednmf_fit_acts_within_a_second(tmp_path, cpu):
    """SIGINT while REDNMF fits a 100 x 100 scene: the process is gone within 1 s.

    The fit is made long (10^4 iterations) and the signal is sent once the process has
    used ``cpu`` seconds of CPU, past its imports and reading on any machine, loaded or not.
    """
    scene = _scene(tmp_path, rows=100, cols=100)
    proc = subprocess.Popen(
        [*LAUNCH, "detect", str(scene), "--out", str(tmp_path / "out"), "--no-report",
         "--max-iter", "10000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while proc.poll() is None and _cpu_seconds(proc.pid) < cpu and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the signal could be sent"
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - start < 1.0, stderr
    assert proc.returncode == 130 and stderr.startswith("error: interrupted (SIGINT)"), stderr


@pytest.mark.slow
def test_ctrl_c_during_startup_is_one_line(tmp_path):
    scene = _scene(tmp_path, rows=20, cols=20)
    proc = _detect(scene, tmp_path / "out")
    time.sleep(0.3)  # python is importing numpy & co.
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_second_concurrent_run_is_refused_or_waits(tmp_path):
    """grx and lrx into one --out at once: the second is refused; with --wait it queues.

    The first run is paused (SIGSTOP) once it holds the lock, so the second
    meets it whatever the machine's speed; it resumes once the waiter queues.
    """
    scene = _scene(tmp_path)
    out = tmp_path / "out"
    first = _detect(scene, out)
    deadline = time.monotonic() + 120
    while not _holds_lock(out):  # until the first run holds the folder
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)
    try:
        assert _holds_lock(out), "the first run ended before it could be paused"
        refused = subprocess.run(
            [*LAUNCH, "detect", str(scene), "--out", str(out), "--method", "lrx"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
        assert "another rednmf run is writing to" in refused.stderr and "--wait" in refused.stderr
        waiting = subprocess.Popen(
            [*LAUNCH, "detect", str(scene), "--out", str(out), "--method", "lrx", "--wait"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        time.sleep(1.0)
        assert waiting.poll() is None, "--wait must queue behind the paused run"
    finally:
        first.send_signal(signal.SIGCONT)
    _, err1 = first.communicate(timeout=300)
    _, err2 = waiting.communicate(timeout=300)
    assert first.returncode == 0 and waiting.returncode == 0, (err1, err2)
    for method in ("grx", "lrx"):
        summary = json.loads((out / f"big_{method}" / f"big_{method}_summary.json").read_text())
        assert summary["method"] == method
        pixels = out / f"big_{method}" / f"big_{method}_detections_pixels.json"
        assert len(json.loads(pixels.read_text())["detections"]) == summary["n_detections"]
        assert all(Path(f).name.startswith(f"big_{method}_") for f in summary["files"].values())
    assert _hidden(out) == []


def _small(tmp: Path, with_gt: bool = True) -> Path:
    cube, gt = make_scene(rows=30, cols=30, bands=16, n_endmembers=3, n_targets=4, random_state=2)
    path = tmp / "s.npz"
    arrays = {"data": cube}
    if with_gt:
        arrays["map"] = (np.asarray(gt) != 0).astype(np.uint8)
    np.savez(path, **arrays)
    return path


def test_methods_never_overwrite_each_other_and_no_stale_file(tmp_path):
    out = tmp_path / "out"
    detect_scene(_small(tmp_path), out, method="lrx", params={"inner": 3, "outer": 9})
    detect_scene(_small(tmp_path), out, method="grx")
    assert sorted(p.name for p in out.iterdir()) == ["s_grx", "s_lrx"]
    assert (out / "s_grx" / "s_grx_roc.svg").is_file()
    lrx_before = _snapshot(out / "s_lrx")
    # the same method again, now without ground truth: its ROC must not survive
    detect_scene(_small(tmp_path, with_gt=False), out, method="grx")
    assert not (out / "s_grx" / "s_grx_roc.svg").exists()
    summary = json.loads((out / "s_grx" / "s_grx_summary.json").read_text())
    assert summary["auc"] is None
    assert sorted(Path(f).name for f in summary["files"].values()) == sorted(
        p.name for p in (out / "s_grx").iterdir()
    )
    assert _snapshot(out / "s_lrx") == lrx_before


def test_a_rerun_keeps_what_the_user_put_in_the_run_folder(tmp_path):
    """A re-run replaces the files it wrote (``s_grx_*``) and keeps the user's own files."""
    out = tmp_path / "out"
    detect_scene(_small(tmp_path), out, method="grx")
    run = out / "s_grx"
    (run / "notes.txt").write_text("mine")
    (run / "extra").mkdir()
    (run / "extra" / "plot.png").write_bytes(b"png")
    (run / "s_grx_stale.txt").write_text("an old output name")
    (run / "s_grx_backup").mkdir()  # a folder, even under the run's prefix: a run writes none
    (run / "s_grx_backup" / "old.csv").write_text("kept")
    detect_scene(_small(tmp_path, with_gt=False), out, method="grx")
    assert (run / "s_grx_backup" / "old.csv").read_text() == "kept"
    assert (run / "notes.txt").read_text() == "mine"
    assert (run / "extra" / "plot.png").read_bytes() == b"png"
    assert not (run / "s_grx_stale.txt").exists()
    assert not (run / "s_grx_roc.svg").exists()  # the earlier run's ROC did not survive
    assert [p.name for p in out.iterdir()] == ["s_grx"]  # no staging left behind


def test_an_error_while_writing_keeps_the_earlier_run(tmp_path, monkeypatch):
    from rednmf import overview
    from rednmf.exceptions import InputError

    out = tmp_path / "out"
    detect_scene(_small(tmp_path), out, method="grx")
    before = _snapshot(out)

    def broken(*args, **kwargs):
        raise RuntimeError("boom in the middle of the writes")

    monkeypatch.setattr(overview, "save_overview", broken)
    with pytest.raises(RuntimeError, match="boom"):
        detect_scene(_small(tmp_path), out, method="grx", contamination=0.05)
    assert _snapshot(out) == before and _hidden(out) == []

    monkeypatch.undo()
    real_fsync = os.fsync
    calls = []

    def full_disk(fd):
        calls.append(fd)
        if len(calls) == 3:  # the third file written runs out of space
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr("rednmf.io.writers.os.fsync", full_disk)
    with pytest.raises(InputError, match="No space left on device"):
        detect_scene(_small(tmp_path), out, method="grx", contamination=0.05)
    assert _snapshot(out) == before and _hidden(out) == []


def test_a_signal_swallowed_while_writing_keeps_the_earlier_run(tmp_path, monkeypatch):
    """SIGTERM whose interruption compiled code swallows: nothing is published."""
    from rednmf import overview
    from rednmf.exceptions import Interrupted

    out = tmp_path / "out"
    detect_scene(_small(tmp_path), out, method="grx")
    before = _snapshot(out)
    real = overview.save_overview

    def swallowing(*args, **kwargs):
        # What pybind11 did inside compiled drawing code in CI, with no error raised after it.
        with contextlib.suppress(Interrupted):
            signal.raise_signal(signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(overview, "save_overview", swallowing)
    with pytest.raises(Interrupted):  # detect_scene turns SIGTERM into Interrupted
        detect_scene(_small(tmp_path), out, method="grx", contamination=0.05)
    assert _snapshot(out) == before and _hidden(out) == []

    monkeypatch.setattr(overview, "save_overview", real)  # later runs publish again
    detect_scene(_small(tmp_path), out, method="grx", contamination=0.05)
    assert _snapshot(out) != before


def test_a_signal_swallowed_during_the_fit_keeps_the_earlier_run(tmp_path):
    """A signal noted during the fit whose exception never surfaced: not published."""
    from rednmf import _signals
    from rednmf.exceptions import Interrupted

    out = tmp_path / "out"
    detect_scene(_small(tmp_path), out, method="rednmf", params={"max_iter": 3})
    before = _snapshot(out)

    def swallowed(it, objective):  # as if a library had eaten the Interrupted
        if it == 2:
            _signals._received.append(int(signal.SIGTERM))

    with pytest.raises(Interrupted):
        detect_scene(
            _small(tmp_path), out, method="rednmf", params={"max_iter": 3}, callback=swallowed
        )
    assert _snapshot(out) == before and _hidden(out) == []
    _signals.signals_received(clear=True)


def test_a_signal_swallowed_between_batch_scenes_stops_the_batch(tmp_path):
    """Noted after scene 1 was published: the batch stops before scene 2 and its summary
    lists scene 1 as published, scene 2 as interrupted."""
    import csv

    from rednmf import _signals
    from rednmf.exceptions import Interrupted
    from rednmf.pipeline import detect_batch

    a, b = _small(tmp_path), tmp_path / "t.npz"
    shutil.copy(a, b)

    def after_first(i, total, path, row):
        if row is not None and i == 0:
            _signals._received.append(int(signal.SIGTERM))

    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        detect_batch([a, b], out, method="grx", on_scene=after_first)
    _signals.signals_received(clear=True)
    with open(out / "batch_summary.csv", newline="") as fh:
        rows = [(r["scene"], r["status"]) for r in csv.DictReader(fh)]
    assert rows == [("s", "ok"), ("t", "interrupted")]
    assert sorted(p.name for p in out.iterdir()) == ["batch_summary.csv", "s_grx"]


def test_full_disk_through_the_cli_is_one_line(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("rednmf.io.writers.os.fsync", full_disk)
    code = cli.main(["detect", str(_small(tmp_path)), "--out", str(out), "--method", "grx"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "No space left on device" in err and "Traceback" not in err
    assert not out.exists()


def test_stale_staging_of_a_killed_run_is_cleaned(tmp_path):
    out = tmp_path / "out"
    stale = out / ".s_grx.staging-999-1-abc"
    stale.mkdir(parents=True)
    (stale / "s_grx_scores.npy").write_bytes(b"half")
    detect_scene(_small(tmp_path), out, method="grx")
    assert sorted(p.name for p in out.iterdir()) == ["s_grx"]


def test_a_signal_before_the_json_line_prints_it_from_disk(tmp_path, capsys, monkeypatch):
    """Published, then a signal before the command printed its --json line: exit 0, the
    warning, and the summary on stdout as the run would have printed it."""
    from rednmf.exceptions import Interrupted

    def signalled(summary, as_json):
        raise Interrupted(signal.SIGINT)

    monkeypatch.setattr(cli, "_show_summary", signalled)
    out = tmp_path / "out"
    code = cli.main(["detect", str(_small(tmp_path)), "--out", str(out), "--method", "grx",
                     "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert captured.err.startswith("warning: interrupted (SIGINT) after the run was published")
    on_disk = json.loads((out / "s_grx" / "s_grx_summary.json").read_text())
    assert [json.loads(line) for line in captured.out.splitlines()] == [on_disk]
