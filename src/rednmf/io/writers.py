"""Write results atomically: a temporary file in the target directory, then ``os.replace``.

A reader never sees a half-written file, and an interrupted run leaves the
previous result (if any) in place.

Whole run folders are written the same way (:func:`staged_dir`): every file of a
run goes into a hidden staging folder beside the final one, which is published
at the very end by one atomic exchange of the two folders (``renameat2`` with
``RENAME_EXCHANGE`` on Linux; elsewhere two renames under blocked signals). An
output folder is held by one run at a time (:func:`lock_dir`, an advisory
``flock`` on the folder itself, so no lock file is left behind).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from rednmf._signals import signals_received
from rednmf.exceptions import InputError, Interrupted, one_line

__all__ = [
    "ensure_dir",
    "check_output_dir",
    "atomic_open",
    "atomic_path",
    "write_npy",
    "write_json",
    "write_csv",
    "jsonable",
    "lock_dir",
    "mark_published",
    "published",
    "signals_blocked",
    "staged_dir",
    "remove_stale_staging",
    "STAGING_MARK",
]

#: Infix of the hidden staging folders (``.NAME.staging-PID``) beside a run folder.
STAGING_MARK = ".staging-"


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create the directory ``path`` (and its parents) if missing and return it.

    Raises
    ------
    InputError
        If ``path`` exists and is not a directory, or cannot be created.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"output path {p} exists and is not a directory; pass another --out")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create output directory {p} ({one_line(exc)}); pass another --out"
        ) from exc
    return p


def _default_mode() -> int:
    """The permissions a plain ``open()`` would give (mkstemp makes files 0600)."""
    return 0o666 & ~_umask()


def check_output_dir(path: str | os.PathLike[str]) -> Path:
    """Check, without creating anything, that ``path`` is or can become a writable directory.

    Raises
    ------
    InputError
        If ``path`` (or its nearest existing ancestor) is a file, or is not writable.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"output path {p} exists and is not a directory; pass another --out")
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(
            f"cannot create output directory {p}: {probe} is a file; pass another --out"
        )
    try:  # os.access says yes to root everywhere: try a real (removed) directory
        os.rmdir(tempfile.mkdtemp(prefix=".rednmf-probe-", dir=probe))
    except OSError as exc:
        raise InputError(
            f"output directory {probe} is not writable ({one_line(exc)}); pass another --out"
        ) from exc
    return p


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` for a library that writes by name.

    On success the temporary file is moved onto ``path``; on an exception it
    is removed and ``path`` is left untouched.

    Raises
    ------
    InputError
        If the directory cannot be created or written.
    """
    target = Path(path)
    parent = ensure_dir(target.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=f"{target.suffix}.tmp", dir=parent
        )
        os.close(fd)
    except OSError as exc:
        msg = f"cannot write to {parent} ({one_line(exc)}); pass another --out"
        raise InputError(msg) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {target} ({one_line(exc)})") from exc
        raise


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` (:func:`atomic_path`); on success, move it there.

    The parent directory is created if missing. On an exception the temporary
    file is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : str or path-like
        The final file name.
    mode : {'wb', 'w'}
        Binary or text (UTF-8) mode.

    Raises
    ------
    InputError
        If the directory cannot be created or the file cannot be written.
    """
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Save ``array`` to ``path`` in ``.npy`` format, atomically, and return the path."""
    target = Path(path)
    with atomic_open(target, "wb") as fh:
        np.save(fh, np.asarray(array), allow_pickle=False)
    return target


def jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays, paths, tuples and sets to plain JSON types, recursively.

    Non-finite floats become ``None`` so that the output is strict JSON.
    """
    kind = type(obj)
    if kind is float:  # the leaves first: most calls are floats, strings and integers
        return obj if math.isfinite(obj) else None
    if kind is str or kind is int or kind is bool or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, str | int | bool) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return repr(obj)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Write ``obj`` (made JSON-friendly by :func:`jsonable`) to ``path`` atomically."""
    target = Path(path)
    text = json.dumps(jsonable(obj), indent=indent, allow_nan=False)
    with atomic_open(target, "w") as fh:
        fh.write(text + "\n")
    return target


def write_csv(
    path: str | os.PathLike[str], rows: list[dict[str, Any]], columns: list[str]
) -> Path:
    """Write ``rows`` (dicts keyed by ``columns``) as a CSV file with a header, atomically.

    Floats are written with ``repr`` precision; NaN and None become empty cells.
    """
    import csv

    target = Path(path)
    with atomic_open(target, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            cells = []
            for col in columns:
                value = jsonable(row.get(col))
                cells.append("" if value is None else value)
            writer.writerow(cells)
    return target


@contextmanager
def lock_dir(
    path: str | os.PathLike[str],
    *,
    wait: bool = False,
    on_wait: Callable[[Path], None] | None = None,
) -> Iterator[Path]:
    """Hold the output folder ``path`` for this process (created if missing).

    The lock is an advisory ``flock`` on the folder itself: it is released
    when the process ends, however it ends, and leaves no file behind. If the
    folder had to be created and is still empty at the end, it is removed.

    Parameters
    ----------
    path : str or path-like
        The output folder.
    wait : bool, default False
        Wait for another run holding the folder to finish instead of refusing.
    on_wait : callable, optional
        ``on_wait(path)`` once, when ``wait`` is True and the folder is held: before waiting
        (to say so).

    Raises
    ------
    InputError
        If another run holds the folder and ``wait`` is False.
    """
    import fcntl

    p = Path(path)
    created = not p.exists()
    ensure_dir(p)
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise
                if on_wait is not None:
                    on_wait(p)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BlockingIOError:
            raise InputError(
                f"another rednmf run is writing to {p}; wait for it to finish, pass --wait to "
                "queue behind it, or pass another --out"
            ) from None
        except OSError as exc:  # a file system without flock
            raise InputError(
                f"cannot lock the output folder {p} ({one_line(exc)}); pass an --out on a "
                "local file system"
            ) from exc
        yield p
    finally:
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                p.rmdir()  # only when empty: nothing was published


def remove_stale_staging(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove staging folders left in ``folder`` by a run that was killed (SIGKILL, power).

    Call it only while holding :func:`lock_dir` on ``folder``: then no other
    run is staging there.
    """
    removed = []
    for child in Path(folder).iterdir():
        if child.name.startswith(".") and STAGING_MARK in child.name and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2``); False if unsupported."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


#: What this process has published (run folders, batch summaries), oldest first.
_published: list[Path] = []


def published(*, clear: bool = False) -> list[Path]:
    """The run folders and batch summaries published since the last ``clear``, oldest first.

    Recorded in the same signal-free step as the publication itself, so that a
    command stopped by a signal can say what is on disk.
    """
    got = list(_published)
    if clear:
        _published.clear()
    return got


def mark_published(path: str | os.PathLike[str]) -> None:
    """Record ``path`` (a file just written in full, e.g. a batch summary) as published."""
    _published.append(Path(path))


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (they are delivered then)."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _carry_foreign(target: Path, staging: Path) -> list[str]:
    """Copy into ``staging`` what ``target`` holds that a run did not write; their names.

    A run writes only files named ``TARGET_*`` (its prefix), so anything else in
    the earlier folder (a user's notes, a folder of any name) is the user's. It is hard-linked
    into the staging folder (copied where links fail), so that it survives the
    publication, and stays in ``target`` until the exchange: an interruption
    before it loses nothing.
    """
    if not target.is_dir():
        return []
    carried = []
    for child in sorted(target.iterdir()):
        ours = child.name.startswith(f"{target.name}_") and not child.is_dir()  # no folder
        if ours or (staging / child.name).exists():
            continue
        dest = staging / child.name
        if child.is_dir() and not child.is_symlink():
            shutil.copytree(child, dest, symlinks=True, copy_function=_link_or_copy)
        elif child.is_symlink():
            os.symlink(os.readlink(child), dest)
        else:
            _link_or_copy(child, dest)
        carried.append(child.name)
    return carried


def _link_or_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _publish(staging: Path, target: Path, noted: int = 0) -> None:
    """Move the finished ``staging`` folder onto ``target`` in one step; drop the old one.

    Not when a signal was noted (:func:`rednmf._signals.signals_received`) after
    the first ``noted``: its interruption was swallowed somewhere (compiled code
    can), so the run did not finish as asked and :class:`Interrupted` is raised.
    """
    with signals_blocked():
        received = signals_received()
        if len(received) > noted:
            raise Interrupted(received[noted])
        if target.exists():
            if not target.is_dir():
                raise InputError(f"{target} exists and is not a folder; move it away")
            if _exchange(staging, target):
                _published.append(target)
                shutil.rmtree(staging, ignore_errors=True)  # now the earlier run
                return
            old = target.with_name(f".{target.name}{STAGING_MARK}old-{os.getpid()}")
            os.rename(target, old)
            os.rename(staging, target)
            _published.append(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, target)
            _published.append(target)


@contextmanager
def staged_dir(target: str | os.PathLike[str], *, since: int | None = None) -> Iterator[Path]:
    """Yield a hidden staging folder; publish it onto ``target`` when the block succeeds.

    Every file of a run is written into the staging folder. When the block
    ends normally the folder replaces ``target`` (with whatever an earlier run
    left there: files named ``TARGET_*``) in one atomic step, and what else
    ``target`` held is kept (:func:`_carry_foreign`); when it raises anything (an error,
    ``KeyboardInterrupt``, a signal turned into an exception, a full disk) the
    staging folder is removed and ``target`` is left byte for byte as it was.
    So it is, too, when a signal was noted (:func:`rednmf._signals.signals_received`)
    beyond the first ``since`` (default: those noted when the block starts): its
    exception was swallowed somewhere (:func:`_publish`).

    Raises
    ------
    InputError
        If the staging folder cannot be created or the result cannot be published.
    """
    final = Path(target)
    parent = ensure_dir(final.parent)
    try:
        staging = Path(
            tempfile.mkdtemp(
                prefix=f".{final.name}{STAGING_MARK}{os.getpid()}-{int(time.time())}-",
                dir=parent,
            )
        )
    except OSError as exc:
        raise InputError(
            f"cannot write to {parent} ({one_line(exc)}); pass another --out"
        ) from exc
    os.chmod(staging, 0o777 & ~_umask())
    noted = len(signals_received()) if since is None else since
    try:
        yield staging
        try:
            _carry_foreign(final, staging)
            _publish(staging, final, noted)
        except OSError as exc:
            raise InputError(f"cannot publish {final} ({one_line(exc)})") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
