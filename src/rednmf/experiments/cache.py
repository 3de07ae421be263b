"""Results cache of the benchmark: one JSON record (and one ``.npz`` of arrays) per job.

A job is identified by a dict of everything its result depends on (method,
full parameter set, scene and its content (SHA-256), noise level and seed, repeat,
rednmf version); :func:`job_key` hashes it. Files are written atomically, so
an interrupted run leaves only complete entries and a rerun resumes from them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rednmf.io.writers import atomic_open, jsonable

__all__ = ["ResultCache", "job_key"]


def job_key(spec: Mapping[str, Any]) -> str:
    """Return a stable 24-hex-digit hash of a JSON-friendly ``spec``."""
    text = json.dumps(jsonable(dict(spec)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class ResultCache:
    """A folder of ``<key>.json`` records with optional ``<key>.npz`` arrays.

    Parameters
    ----------
    folder : str or path-like
        Created on the first :meth:`store`.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.json", self.folder / f"{key}.npz"

    def load(self, key: str) -> dict[str, Any] | None:
        """Return the stored record (arrays included) or ``None`` if absent or unreadable."""
        meta, arrays = self._paths(key)
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
            if record.pop("_arrays", False):
                with np.load(arrays, allow_pickle=False) as data:
                    record.update({name: data[name] for name in data.files})
        except (OSError, ValueError, KeyError):
            return None
        return record

    def store(self, key: str, record: Mapping[str, Any]) -> None:
        """Store ``record``; its NumPy-array values go to the ``.npz`` file."""
        meta, arrays = self._paths(key)
        arr = {k: v for k, v in record.items() if isinstance(v, np.ndarray)}
        rest = {k: v for k, v in record.items() if k not in arr}
        if arr:
            with atomic_open(arrays, "wb") as fh:
                np.savez_compressed(fh, **arr)
        rest["_arrays"] = bool(arr)
        with atomic_open(meta, "w") as fh:  # written last: its presence marks completion
            fh.write(json.dumps(jsonable(rest), allow_nan=False) + "\n")
