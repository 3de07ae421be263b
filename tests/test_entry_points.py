"""``rednmf`` (the console script) and ``python -m rednmf`` are one entry point.

The console script is ``rednmf.__main__:main`` (pyproject.toml), the function
that ``python -m rednmf`` runs; ``import rednmf`` imports nothing heavy, so the
launcher's start-up signal handlers are in place as early in both.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the ``rednmf`` console script runs (pip's wrapper imports the function and exits).
SCRIPT = [sys.executable, "-c", "import sys; from rednmf.__main__ import main; sys.exit(main())"]
PACKAGE = [sys.executable, "-m", "rednmf"]


def _env() -> dict[str, str]:
    """The subprocesses import the rednmf under test (from any working directory)."""
    import rednmf

    src = str(Path(rednmf.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONWARNINGS="ignore", OPENBLAS_NUM_THREADS="1", PYTHONPATH=path)


def _run(cmd: list[str], *args: str, cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=120
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_console_script_is_the_package_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"rednmf": "rednmf.__main__:main"}


def test_importing_the_package_imports_nothing_heavy():
    code = (
        "import sys, rednmf; "
        "heavy = [m for m in ('numpy', 'scipy', 'sklearn', 'rasterio', 'rednmf.cli') "
        "if m in sys.modules]; print(heavy); print(rednmf.__version__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "0.1.0"]


def test_lazy_names_resolve_and_unknown_names_fail():
    import rednmf

    assert type(rednmf.get_detector("grx")).__module__.startswith("rednmf.detectors.")
    assert [name for name, _ in rednmf.list_methods()][:2] == ["bsdm", "crd"]
    assert rednmf.REDNMF.__name__ == "REDNMF"
    assert set(rednmf.__all__) <= set(dir(rednmf))
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        rednmf.nosuch  # noqa: B018


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("methods",),
        (),
        ("detect", "missing.mat"),
        ("detect", "x.mat", "--far", "2"),
        ("detect", "--nosuch"),
    ],
    ids=["version", "methods", "no-args", "missing-file", "bad-far", "bad-option"],
)
def test_both_entry_points_answer_identically(tmp_path, args):
    script = _run(SCRIPT, *args, cwd=tmp_path)
    package = _run(PACKAGE, *args, cwd=tmp_path)
    assert script == package
    assert "Traceback" not in script[2]


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (``SigCgt`` of /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (int(sig) - 1) & 1)


def _published(out: Path) -> bool:
    """Whether a run folder is in ``out`` (a run stages in a hidden folder beside it)."""
    return out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status")
@pytest.mark.parametrize("delay", [0.0, 0.3], ids=["at-once", "0.3s"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("cmd", [SCRIPT, PACKAGE], ids=["console-script", "python-m"])
def test_signal_during_startup_is_one_line_for_both(tmp_path, cmd, sig, delay):
    """A signal early in a command (importing, or running before it publishes): one line,
    128 + signal, no output.

    The signal is sent ``delay`` after the launcher installed its handlers (before
    them, no program can answer a signal). The command is paused (SIGSTOP) while the
    signal is sent, and resumed after: a test process starved on a loaded machine
    cannot let the run finish first. A run that published its folder in the meantime
    is started again (at most three times).
    """
    import numpy as np

    scene = tmp_path / "s.npz"
    rng = np.random.default_rng(0)
    np.savez(scene, data=rng.random((20, 20, 8)).astype(np.float32))
    out = tmp_path / "out"
    for _ in range(3):
        proc = subprocess.Popen(
            [*cmd, "detect", str(scene), "--method", "grx", "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=tmp_path,
        )
        deadline = time.monotonic() + 60
        while not _catches(proc.pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.001)  # until rednmf.__main__ has installed its handlers
        time.sleep(delay)
        proc.send_signal(signal.SIGSTOP)
        if _published(out):
            proc.kill()  # the run published its folder: too late to test start-up; again
            proc.communicate(timeout=60)
            shutil.rmtree(out)
            continue
        proc.send_signal(sig)
        proc.send_signal(signal.SIGCONT)
        stdout, stderr = proc.communicate(timeout=60)
        if proc.returncode == 0 and _published(out) and "after the run was published" in stderr:
            # stopped inside publication (signals held there): the run completed, as it
            # says, before the signal acted; too late to test start-up: again
            shutil.rmtree(out)
            continue
        break
    else:
        pytest.fail("three runs published their folder before the signal")
    assert proc.returncode == 128 + int(sig), stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), stderr
    assert stdout == ""
    assert not out.exists()


def test_a_signal_after_publication_never_says_nothing_was_written(tmp_path, monkeypatch):
    """The start-up handler is back for an instant after the command returns: a run
    published by then is complete, so the signal is ignored there, not answered with
    'nothing was written' and exit 143 (seen once under load, in the run-folder tests)."""
    import signal

    from rednmf import _signals
    from rednmf.io import writers

    exits: list[int] = []
    monkeypatch.setattr(_signals.os, "_exit", exits.append)
    writers.published(clear=True)
    _signals.early_exit(signal.SIGTERM, None)  # nothing published: start-up exit
    assert exits == [128 + signal.SIGTERM]
    writers.mark_published(tmp_path / "scene_grx")
    try:
        _signals.early_exit(signal.SIGTERM, None)
    finally:
        writers.published(clear=True)
    assert exits == [128 + signal.SIGTERM]  # the second signal was ignored


def test_a_signal_as_the_handlers_are_restored_leaves_the_result(monkeypatch, capsys):
    """A signal that runs the command's handler as ``handling`` exits (seen once under
    load: a traceback and exit 1 after a published run) does not replace the finished
    command's status and message; the handlers are restored all the same."""
    from rednmf import _signals, cli
    from rednmf.exceptions import Interrupted

    before = signal.getsignal(signal.SIGINT)

    def exit_then_signal(self, *exc_info):
        raise Interrupted(signal.SIGINT)  # as if delivered before the handlers were put back

    monkeypatch.setattr(_signals.handling, "__exit__", exit_then_signal)
    assert cli.main(["methods"]) == 0
    out, err = capsys.readouterr()
    assert "rednmf" in out and err == ""
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_while_the_handlers_are_restored_goes_to_the_old_handler():
    """A signal that lands while ``handling`` puts the handlers back runs the old handler,
    not the block's (``Interrupted``), whichever thread of the process receives it."""
    import threading

    from rednmf import _signals

    got: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    idle = threading.Event()
    other = threading.Thread(target=idle.wait)  # a second thread the kernel may pick
    other.start()
    try:
        guard = _signals.handling(signal.SIGUSR1)
        guard.__enter__()
        real_signal = signal.signal

        def send_while_restoring(signum, handler):
            os.kill(os.getpid(), signal.SIGUSR1)  # lands before the handler is put back
            time.sleep(0.05)  # whichever thread receives it, Python then runs the handler
            return real_signal(signum, handler)

        signal.signal = send_while_restoring
        try:
            guard.__exit__(None, None, None)  # must not raise Interrupted
        finally:
            signal.signal = real_signal
        assert got == [signal.SIGUSR1]
        guard.restore()  # a second call does nothing
        assert signal.getsignal(signal.SIGUSR1) is not None and got == [signal.SIGUSR1]
    finally:
        idle.set()
        other.join()
        signal.signal(signal.SIGUSR1, old)


def test_a_signal_where_python_cannot_raise_is_noted_not_printed(capfd):
    """SIGUSR1 handled inside a ``__del__`` (or a weak reference's callback): Python cannot
    raise ``Interrupted`` there and would print 'Exception ignored' and a traceback. The
    signal is noted (``signals_received``) and nothing is printed; another exception
    there still reaches the old hook; the old hook is back after the block."""
    from rednmf import _signals

    class Sends:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(100_000):  # the handler runs here, inside __del__
                pass

    class Fails:
        def __del__(self):
            raise ValueError("kept")

    seen: list = []
    hook, sys.unraisablehook = sys.unraisablehook, seen.append  # Python's would print them
    try:
        _signals.signals_received(clear=True)
        old = signal.getsignal(signal.SIGUSR1)
        with _signals.handling(signal.SIGUSR1):
            Sends()  # collected at once: its __del__ runs and the signal lands in it
            Fails()
        assert sys.unraisablehook == seen.append and signal.getsignal(signal.SIGUSR1) is old
    finally:
        sys.unraisablehook = hook
    assert _signals.signals_received(clear=True) == [signal.SIGUSR1]
    assert [type(u.exc_value).__name__ for u in seen] == ["ValueError"]  # not Interrupted
    assert "Traceback" not in capfd.readouterr().err


def test_a_signal_waits_for_a_deferred_step_then_acts():
    """A signal during ``deferred`` lets the block finish, then the handler there raises."""
    from rednmf import _signals
    from rednmf.exceptions import Interrupted

    steps: list[str] = []
    _signals.signals_received(clear=True)
    old = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(Interrupted), _signals.handling(signal.SIGUSR1):
        with _signals.deferred(signal.SIGUSR1):
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(100_000):  # the signal is handled here, and only noted
                pass
            steps.append("printed")
            steps.append("noted as printed")
        steps.append("after")  # not reached: the handler raised at the block's end
    assert steps == ["printed", "noted as printed"]
    assert signal.getsignal(signal.SIGUSR1) is old
    assert _signals.signals_received(clear=True) == [signal.SIGUSR1]
