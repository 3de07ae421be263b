"""How long the command line takes to answer: help, version and errors.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_cli_latency.py --repeats 5

Each case runs ``python -m rednmf ...`` (the launcher of the console script,
:mod:`rednmf.__main__`, with this interpreter and its ``PYTHONPATH``) as a new
process, ``--repeats`` times, and the table gives the median wall time, the
exit status and the first line of its error output. The scene is a small
``.mat`` written to a temporary folder (no shared data needed). Options are
checked before the read, the detector's parameters by scikit-learn (which the
check imports), an in-memory cube right after the read.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.io


def cases(scene: Path, broken: Path, out: Path) -> list[tuple[str, list[str]]]:
    """(label, arguments) of every case."""
    detect = ["detect", str(scene), "--out", str(out)]
    return [
        ("--help", ["--help"]),
        ("--version", ["--version"]),
        ("detect --help", ["detect", "--help"]),
        ("missing file", ["detect", str(out / "missing.mat"), "--out", str(out)]),
        ("--rank -1", [*detect, "--rank", "-1"]),
        ("--max-iter 0", [*detect, "--max-iter", "0"]),
        ("--contamination 0.7", [*detect, "--contamination", "0.7"]),
        ("--param lam=x", [*detect, "--param", "lam=x"]),
        ("--param foo=1", [*detect, "--param", "foo=1"]),
        ("--inner 11 --outer 9", [*detect, "--inner", "11", "--outer", "9"]),
        ("--method nope", [*detect, "--method", "nope"]),
        ("--far 2", [*detect, "--far", "2"]),
        ("--data-var nope", [*detect, "--data-var", "nope"]),
        ("infinite value in the cube", ["detect", str(broken), "--out", str(out)]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cube = np.random.default_rng(0).random((40, 40, 20))
        scipy.io.savemat(tmp_path / "scene.mat", {"data": cube})
        cube[3, 4, 5] = np.inf
        scipy.io.savemat(tmp_path / "broken.mat", {"data": cube})
        rows = []
        for label, argv in cases(tmp_path / "scene.mat", tmp_path / "broken.mat", tmp_path):
            times, rc, first = [], None, ""
            for _ in range(args.repeats):
                t = time.perf_counter()
                res = subprocess.run(
                    [sys.executable, "-m", "rednmf", *argv], capture_output=True, text=True
                )
                times.append(time.perf_counter() - t)
                rc = res.returncode
                first = (res.stderr.strip().splitlines() or [""])[0]
            rows.append((label, statistics.median(times), rc, first))
    print("| command | median s | exit | first line of stderr |")
    print("|---|---|---|---|")
    for label, t, rc, first in rows:
        text = first if len(first) <= 70 else first[:67] + "..."
        print(f"| `{label}` | {t:.2f} | {rc} | {text} |")


if __name__ == "__main__":
    main()
