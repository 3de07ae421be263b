"""Where a deep detector's (MSNet, BSDM) memory goes, phase by phase, in one process.

A thread samples the process's resident set size (``VmRSS`` of ``/proc/self/status``)
every millisecond; the fit's phases are marked by the detector's own progress callback
(the first and the last optimisation step) and by wrapping its band selection (MSNet) or
its global RX (BSDM). Printed: the RSS after the imports (NumPy, scikit-learn, rednmf,
then torch), after the cube is loaded, and the peak of each phase of the fit, in MiB.

The cube is a synthetic scene (:func:`rednmf.datasets.make_scene`), float32,
1000 x 1000 x 50 by default, made in a child process and loaded from ``.npy``.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_deep_phases.py \
        --method msnet [--rows 1000 --cols 1000 --bands 50] [--param epochs=1 ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def rss_mib() -> float:
    """The resident set size of this process, MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


class Sampler(threading.Thread):
    """The peak RSS since the last :meth:`mark`, per named phase."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss_mib()
        self.phases: list[tuple[str, float]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.001)

    def mark(self, name: str) -> None:
        """Close the phase ``name``: record its peak and start the next one."""
        self.peak = max(self.peak, rss_mib())
        self.phases.append((name, self.peak))
        self.peak = rss_mib()


def value(text: str) -> object:
    """A ``--param`` value: int, float or the string itself."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["msnet", "bsdm"], default="msnet")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--cols", type=int, default=1000)
    parser.add_argument("--bands", type=int, default=50)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    params = {k: value(v) for k, v in (kv.split("=", 1) for kv in args.param)}

    sampler = Sampler()
    sampler.start()
    start = rss_mib()
    import numpy as np
    import sklearn  # noqa: F401

    import rednmf.detectors.registry as registry

    sampler.mark("NumPy, scikit-learn, rednmf imported")
    import torch  # noqa: F401

    sampler.mark("torch imported")
    with tempfile.TemporaryDirectory(prefix="rednmf-phases-") as tmp:
        path = Path(tmp) / "scene.npy"
        make = (
            "import numpy as np; from rednmf.datasets import make_scene; "
            f"cube, _ = make_scene(rows={args.rows}, cols={args.cols}, bands={args.bands}, "
            f"random_state=0); np.save({str(path)!r}, np.asarray(cube, dtype=np.float32))"
        )
        subprocess.run([sys.executable, "-c", make], check=True)
        cube = np.load(path)
    sampler.mark(f"cube loaded ({cube.nbytes / 2**20:.0f} MiB)")

    det = registry.get_detector(args.method, **params)
    module = sys.modules[type(det).__module__]
    total = None

    def callback(step: int, loss: float) -> None:
        if step == 1:
            sampler.mark("fit: preparation and the first step")
        if step == total:
            sampler.mark("fit: the other steps")

    if args.method == "msnet":
        opbs = module.opbs

        def marked_opbs(*a: object) -> object:
            out = opbs(*a)
            sampler.mark("fit: band selection (OPBS)")
            return out

        module.opbs = marked_opbs
    else:
        global_rx = module.global_rx

        def marked_rx(*a: object, **k: object) -> object:
            sampler.mark("fit: suppression")
            out = global_rx(*a, **k)
            sampler.mark("fit: global RX")
            return out

        module.global_rx = marked_rx
    total = det.total_steps()
    wall = time.perf_counter()
    det.fit(cube, callback=callback)
    wall = time.perf_counter() - wall
    sampler.mark("fit: scoring and threshold")
    sampler.running = False
    print(f"{args.method} {args.rows} x {args.cols} x {args.bands} {params or ''}: "
          f"{getattr(det, 'n_tiles_', '?')} tiles, fit {wall:.1f} s")  # fmt: skip
    print("| phase | peak RSS MiB |")
    print("|---|---|")
    print(f"| interpreter | {start:.0f} |")
    for name, peak in sampler.phases:
        print(f"| {name} | {peak:.0f} |")


if __name__ == "__main__":
    main()
