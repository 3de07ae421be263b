"""What both report pages share: the assets, base64 arrays, embedded PNG and JSON, the write."""

from __future__ import annotations

import base64
import io
import json
import os
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from rednmf.io.writers import atomic_open


@cache
def asset(name: str) -> str:
    """The text of ``rednmf/report/assets/NAME`` (package data)."""
    return files("rednmf.report").joinpath("assets", name).read_text(encoding="utf-8")


def b64(array: np.ndarray) -> str:
    """The bytes of ``array`` (C order, native little-endian) as base64 text."""
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def bits_b64(mask: np.ndarray) -> str:
    """A boolean map packed 8 pixels a byte (``numpy.packbits``, C order) as base64."""
    return b64(np.packbits(np.asarray(mask, bool).ravel()))


def png_b64(image: np.ndarray) -> str:
    """An RGB image in [0, 1] (or already 8-bit) as a base64 PNG."""
    from PIL import Image

    from rednmf.composite import rgb8

    buf = io.BytesIO()
    rgb = image[:, :, :3] if image.dtype == np.uint8 else rgb8(image)
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, format="png", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def json_payload(data: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` element."""
    return json.dumps(data, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")


def write_page(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    target = Path(path)
    with atomic_open(target, "w") as fh:
        fh.write(text)
    return target
