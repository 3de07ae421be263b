"""The example overview pictures of docs/img/: 40 x 40, 100 x 100 and 1000 x 1000 scenes.

Run from the repository root::

    .venv/bin/python benchmarks/overview_examples.py [--out docs/img] [--data ../shared/data/had]

Each picture is the ``overview.png`` of a real ``detect_scene`` run (the same
code as ``rednmf detect``), copied to ``OUT/overview_SIZE.png``:

* 40 x 40: the top-left crop of ABU Airport-1 (no wavelengths: PCA false
  colour), GRX at contamination 0.01, one no-data corner;
* 100 x 100: ABU Airport-1 whole, GRX with its defaults (the method whose
  scores a linear stretch painted black);
* 1000 x 1000: a synthetic ``make_scene`` cube of 60 bands over 400-1000 nm
  (true colour), GRX with its defaults: thousands of detections, so the
  top 20 are ringed.

A picture over 512 KiB (the 1000 x 1000 one) is stored with
256 colours (Pillow's median cut, no dither) so that the repository stays small;
the run's own overview is unchanged.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    from rednmf.datasets import make_scene
    from rednmf.experiments.common import load_scene
    from rednmf.io.scene import Scene
    from rednmf.pipeline import detect_scene

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data/had"))
    args = parser.parse_args()
    cube, gt = load_scene("abu-airport-1", args.data)
    big, big_gt = make_scene(1000, 1000, 60, n_targets=40, target_size=3, random_state=0)
    crop = np.array(cube[:40, :40], dtype=np.float64)
    crop[:6, :6] = np.nan  # a no-data corner
    scenes = {
        40: (Scene(crop, gt[:40, :40] != 0, "airport-1-crop40"), {"contamination": 0.01}),
        100: (Scene(np.asarray(cube), gt != 0, "airport-1"), {}),
        1000: (
            Scene(big, big_gt != 0, "synthetic1000", wavelengths=np.linspace(400.0, 1000.0, 60)),
            {},
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for size, (scene, options) in scenes.items():
            summary = detect_scene(scene, Path(tmp), method="grx", report=False, **options)
            target = args.out / f"overview_{size}.png"
            shutil.copyfile(summary["files"]["overview"], target)
            if target.stat().st_size > _MAX_BYTES:
                _palette(target)
            print(f"{target}: {summary['n_detections']} detection(s)")


#: Largest example picture kept as written (the repository's limit on tracked files).
_MAX_BYTES = 512 * 1024


def _palette(path: Path) -> None:
    """Rewrite a PNG with 256 colours (median cut, no dither)."""
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
    quant = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    quant.save(path, optimize=True)


if __name__ == "__main__":
    main()
