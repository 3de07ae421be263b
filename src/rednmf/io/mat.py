"""Read the variables of MATLAB ``.mat`` (v4/v5 and v7.3) and NumPy ``.npy``/``.npz`` files.

This module only turns a file into a ``{name: array}`` mapping; choosing the
cube and the ground truth among those variables is :mod:`rednmf.io.scene`'s job.

* MATLAB v4/v5/v7 files are read with :func:`scipy.io.loadmat`.
* MATLAB v7.3 files are HDF5 files; they are read with :mod:`h5py`. MATLAB
  stores arrays column-major, so h5py returns them with their axes reversed;
  every array is transposed back (``arr.T``) to give MATLAB's own shape.

Every failure a user can cause (missing, empty, truncated or foreign file) is
raised as :class:`rednmf.exceptions.InputError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from rednmf.exceptions import InputError, one_line

__all__ = ["check_file", "file_sha256", "load_mat", "load_npy", "load_npz", "is_numeric"]

#: MATLAB classes of a v7.3 dataset that hold plain numbers.
_MATLAB_NUMERIC = frozenset(
    {
        "double",
        "single",
        "logical",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "uint64",
    }
)


def is_numeric(arr: object) -> bool:
    """Return True for a real or complex numeric (or boolean) NumPy array."""
    return isinstance(arr, np.ndarray) and (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as hexadecimal (read in 1 MiB pieces)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` names an existing, non-empty regular file and return it.

    Raises
    ------
    InputError
        If the file is missing, is a directory, is empty or cannot be accessed.
    """
    import stat

    p = Path(path)
    try:
        info = p.stat()  # follows links: a loop raises ELOOP, a dangling link ENOENT
    except FileNotFoundError:
        if p.is_symlink():
            raise InputError(
                f"{p} is a link to {os.readlink(p)}, which does not exist; fix the link"
            ) from None
        raise InputError(f"file not found: {p}; check the path") from None
    except OSError as exc:
        if p.is_symlink():
            raise InputError(
                f"{p} is a symbolic link that cannot be followed ({one_line(exc.strerror)}, "
                "e.g. a loop); point it at the scene file"
            ) from exc
        raise InputError(f"cannot access {p}: {one_line(exc)}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{p} is a directory; pass a .mat, .npy or .npz file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else "not a regular file"
        if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            kind = "a device"
        raise InputError(f"{p} is {kind}; pass a scene file saved on disk")
    if info.st_size == 0:
        raise InputError(f"{p} is empty (0 bytes); the file was not saved completely")
    return p


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(path))
    except OSError:  # pragma: no cover - unreadable file; loadmat will report it
        return False


def _load_mat_v73(path: Path) -> dict[str, object]:
    """Read the top-level numeric datasets of a MATLAB v7.3 (HDF5) file."""
    import h5py

    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:
        for name in f:
            if name.startswith(("#", "__")):
                continue
            obj = f[name]
            if not isinstance(obj, h5py.Dataset):
                out[name] = obj.__class__.__name__  # a struct (group): kept for listing
                continue
            attrs = obj.attrs
            mclass = attrs.get("MATLAB_class", b"")
            if isinstance(mclass, bytes):
                mclass = mclass.decode("ascii", "replace")
            if attrs.get("MATLAB_empty", 0):
                out[name] = np.zeros((0,))
                continue
            if mclass and str(mclass) not in _MATLAB_NUMERIC:
                out[name] = str(mclass)  # char, cell, ...: listed, never chosen
                continue
            if obj.dtype.kind not in "biuf":
                out[name] = str(obj.dtype)
                continue
            arr = np.asarray(obj[()])
            out[name] = np.ascontiguousarray(arr.T)
    return out


def _load_mat_v5(path: Path) -> dict[str, object]:
    import scipy.io
    import scipy.sparse

    raw = scipy.io.loadmat(path)
    out: dict[str, object] = {}
    for name, value in raw.items():
        if name.startswith("__"):
            continue
        if scipy.sparse.issparse(value):
            value = value.toarray()
        out[name] = value
    return out


def load_mat(path: str | os.PathLike[str]) -> dict[str, object]:
    """Read every variable of a MATLAB file.

    Parameters
    ----------
    path : str or path-like
        A MATLAB v4/v5/v7 file (read with :func:`scipy.io.loadmat`) or v7.3
        file (HDF5, read with :mod:`h5py` and transposed back to MATLAB's
        axis order).

    Returns
    -------
    dict
        ``{name: value}`` without the ``__header__``-style entries. Numeric
        variables are :class:`numpy.ndarray`; other values (strings, cells,
        structs) are kept only so that error messages can list them.

    Raises
    ------
    InputError
        If the file is missing, empty, truncated, or not a MATLAB file.
    """
    p = check_file(path)
    v73 = _is_hdf5(p)
    try:
        return _load_mat_v73(p) if v73 else _load_mat_v5(p)
    except MemoryError:
        raise
    except Exception as exc:  # scipy/h5py raise many types for a damaged file
        kind = "MATLAB v7.3 (HDF5)" if v73 else "MATLAB"
        raise InputError(
            f"cannot read {p} as a {kind} file ({one_line(exc)}); "
            "check that it is a complete .mat file saved by MATLAB or scipy.io.savemat"
        ) from exc


def load_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ``.npy`` file (no pickles).

    Raises
    ------
    InputError
        If the file is missing, empty or not a valid ``.npy`` file.
    """
    p = check_file(path)
    try:
        return np.load(p, allow_pickle=False)
    except MemoryError:
        raise
    except Exception as exc:
        raise InputError(
            f"cannot read {p} as a .npy file ({one_line(exc)}); save it with numpy.save"
        ) from exc


def load_npz(path: str | os.PathLike[str]) -> dict[str, object]:
    """Read every array of a ``.npz`` file (no pickles).

    Raises
    ------
    InputError
        If the file is missing, empty or not a valid ``.npz`` file.
    """
    p = check_file(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except MemoryError:
        raise
    except Exception as exc:
        raise InputError(
            f"cannot read {p} as a .npz file ({one_line(exc)}); save it with numpy.savez"
        ) from exc
