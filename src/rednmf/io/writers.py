"""Write results atomically: a temporary file in the target directory, then ``os.replace``.

A reader never sees a half-written file, and an interrupted run leaves the
previous result (if any) in place.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from rednmf.exceptions import InputError

__all__ = [
    "ensure_dir",
    "check_output_dir",
    "atomic_open",
    "atomic_path",
    "write_npy",
    "write_json",
    "write_csv",
    "jsonable",
]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
            f"cannot create output directory {p} ({_one_line(exc)}); pass another --out"
        ) from exc
    return p


def _default_mode() -> int:
    """The permissions a plain ``open()`` would give (mkstemp makes files 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


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
            f"output directory {probe} is not writable ({_one_line(exc)}); pass another --out"
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
        msg = f"cannot write to {parent} ({_one_line(exc)}); pass another --out"
        raise InputError(msg) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {target} ({_one_line(exc)})") from exc
        raise


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success move it onto ``path``.

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
    target = Path(path)
    parent = ensure_dir(target.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        msg = f"cannot write to {parent} ({_one_line(exc)}); pass another --out"
        raise InputError(msg) from exc
    tmp = Path(tmp_name)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {target} ({_one_line(exc)})") from exc
        raise


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
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
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
