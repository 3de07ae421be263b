"""The scene files of a run: files, folders and glob patterns expanded into a list.

Importing this module imports neither NumPy nor a reader, so that the command
line can refuse a missing file at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rednmf.exceptions import InputError

__all__ = ["expand_inputs"]


_SCENE_SUFFIXES = {".mat", ".npz", ".npy", ".hdr", ".tif", ".tiff", ".img", ".dat"}


def expand_inputs(items: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Expand files, folders (their scene files, sorted) and glob patterns into a file list.

    A folder contributes its ``.mat``, ``.npz``, ``.npy``, ``.hdr``, ``.tif``
    and ``.tiff`` files (an ENVI data file is reached through its header).
    Duplicates are dropped; a pattern that matches nothing, or a missing path,
    is kept as given so that the run reports it.

    Raises
    ------
    InputError
        If nothing is given.
    """
    import glob

    found: list[Path] = []
    for item in items:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir():
            for child in sorted(p.iterdir()):
                suffix = child.suffix.lower()
                if child.is_file() and suffix in _SCENE_SUFFIXES - {".img", ".dat"}:
                    if suffix in (".tif", ".tiff") and child.name.endswith(
                        ("_scores.tif", "_detections.tif")
                    ):
                        continue  # our own outputs
                    found.append(child)
        elif any(ch in text for ch in "*?[") and not p.exists():
            matches = sorted(Path(m) for m in glob.glob(text))
            found.extend(matches or [p])
        else:
            found.append(p)
    if not found:
        folders = [os.fspath(i) for i in items if Path(i).is_dir()]
        if folders:
            raise InputError(
                f"directory {folders[0]} holds no scene file (.mat, .npz, .npy, .hdr, .tif); "
                "pass a scene file or a folder of scenes"
            )
        raise InputError("no input scene given; pass files, folders or glob patterns")
    unique: list[Path] = []
    seen: set[str] = set()
    for p in found:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique
