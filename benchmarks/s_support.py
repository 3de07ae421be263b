"""Could the support of REDNMF's ``S`` mark the background? Its size and what it holds.

Issue 21 suggests estimating the background statistics only from the pixels that ``S``
marks as background. With the default noise-calibrated threshold (``lam_mode='noise'``:
the S step keeps a pixel when its residual norm exceeds the expected noise energy plus a
margin), this prints for each of the 12 real scenes, clean and at sigma = 0.05 (noise
added after scaling as in ``benchmarks/earn_its_place.py``, draw 0): the share of pixels
where the fitted ``S`` (:meth:`rednmf.REDNMF.anomaly`, the fit's last S step) is not zero,
and the share of the ground-truth anomaly pixels among them. The default's suspects
(the evidence's tail probability at most ``suspect_level`` = 0.05) are one pixel in twenty
by construction.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/s_support.py
"""

from __future__ import annotations

import numpy as np

from rednmf import REDNMF
from rednmf.datasets import all_scenes, load_benchmark
from rednmf.experiments.common import noisy_cube

SIGMAS = (0.0, 0.05)


def support_shares(cube: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Share of pixels where the default fit's ``S`` is not zero, and of the truth in them."""
    support = np.any(REDNMF().fit(cube).anomaly(cube) != 0, axis=2)
    truth = np.asarray(gt) > 0
    return float(support.mean()), float(support[truth].mean())


def main() -> None:
    heads = (f"S != 0, σ = {s} | truth in it, σ = {s}" for s in SIGMAS)
    print("| scene | " + " | ".join(heads) + " |")
    print("|---|" + "---|---|" * len(SIGMAS))
    totals = {s: [] for s in SIGMAS}
    for path in all_scenes():
        raw, gt = load_benchmark(path)
        cells = []
        for sigma in SIGMAS:
            cube = noisy_cube(raw, sigma, int(round(sigma * 1000))).astype(np.float32)
            share, held = support_shares(cube, gt)
            totals[sigma].append((share, held))
            cells += [f"{share:.3f}", f"{held:.3f}"]
        print(f"| {path.stem} | " + " | ".join(cells) + " |", flush=True)
    means = []
    for sigma in SIGMAS:
        share, held = np.mean(totals[sigma], axis=0)
        means += [f"{share:.3f}", f"{held:.3f}"]
    print("| mean | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
