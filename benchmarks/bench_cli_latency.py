"""How long the command line takes to answer: help, version and errors.

Run from the repository root::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_cli_latency.py --repeats 5

Each case runs ``python -m rednmf ...`` (the launcher of the console script,
:mod:`rednmf.__main__`, with this interpreter and its ``PYTHONPATH``) as a new
process, ``--repeats`` times, and the table gives the median wall time, the
exit status and the first line of its error output. With ``--src A --src B``
the two source trees run alternately, case by case and run by run, so that a
busy machine weighs on both alike (a column of medians each). The scene is a
small ``.mat`` written to a temporary folder (no shared data needed).

What each error waits for: a numeric flag below the smallest value any method
accepts (``--rank -1``, ``--max-iter 0``) is refused by the command line before
any import; a missing file, the method's name and the threshold rule
(``--contamination``, ``--far``) after NumPy's import (the pipeline's) and
before scikit-learn's (``RunOptions`` checks them first); the rest of the
detector's parameters (``--param``, ``--inner 11 --outer 9``) by
scikit-learn, which the check imports, before the read; an in-memory cube right
after the read.
"""

from __future__ import annotations

import argparse
import os
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


def _run(argv: list[str], src: str | None) -> tuple[float, int, str]:
    """Wall time, exit status and first stderr line of ``python -m rednmf ARGV``."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    t = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "rednmf", *argv], capture_output=True, text=True, env=env
    )
    elapsed = time.perf_counter() - t
    return elapsed, res.returncode, (res.stderr.strip().splitlines() or [""])[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--src",
        action="append",
        help="A source tree (its PYTHONPATH) to time, repeatable: the trees alternate run by "
        "run, one median column each, the first tree's exit and message (default: this "
        "process's PYTHONPATH)",
    )
    args = ap.parse_args()
    trees = args.src or [None]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cube = np.random.default_rng(0).random((40, 40, 20))
        scipy.io.savemat(tmp_path / "scene.mat", {"data": cube})
        cube[3, 4, 5] = np.inf
        scipy.io.savemat(tmp_path / "broken.mat", {"data": cube})
        rows = []
        for label, argv in cases(tmp_path / "scene.mat", tmp_path / "broken.mat", tmp_path):
            times: list[list[float]] = [[] for _ in trees]
            rc, first = 0, ""
            for _ in range(args.repeats):
                for i, src in enumerate(trees):
                    elapsed, code, line = _run(argv, src)
                    times[i].append(elapsed)
                    if i == 0:
                        rc, first = code, line
            rows.append((label, [statistics.median(t) for t in times], rc, first))
    names = ["median s"] if args.src is None else [f"median s, {src}" for src in trees]
    print(f"| command | {' | '.join(names)} | exit | first line of stderr |")
    print("|---" * (3 + len(names)) + "|")
    for label, medians, rc, first in rows:
        text = first if len(first) <= 70 else first[:67] + "..."
        cells = " | ".join(f"{t:.2f}" for t in medians)
        print(f"| `{label}` | {cells} | {rc} | {text} |")


if __name__ == "__main__":
    main()
