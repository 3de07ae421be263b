"""REDNMF's time per iteration against this machine's floor, measured in one run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_floor.py [--repeats 5]

One BLAS thread throughout. Prints:

1. The machine: memory bandwidth (a NumPy triad ``a = b + s * c`` on float32
   arrays of 256 MiB each, bytes read and written per second) and the float32
   GEMM rate at the block engine's shapes (``(2r x d) @ (d x B)`` and
   ``(3r x B) @ (B x d)`` with ``B`` the solver's block size, formed as the
   engine forms them: :meth:`rednmf.backend.NumpyBackend.lmul`), in
   multiply-adds per second.
2. The default fit's work per iteration (``m_split='factored'``, encoder on,
   pixel groups), counted from the engine's products: ``15 r d`` multiply-adds
   per pixel (``V X``, ``V |S|``, ``W H``, ``M |S|``, ``[H; MX; M|S|] |S|'``,
   ``[H; MX; MS] S'``, ``[H; MS+; MS-] X'``) plus ``r d^2`` for ``M G``; and the
   bytes that must cross memory at least once per iteration: ``X`` read, ``S``
   read and written (``3 d n`` values).
3. For airport-1 (10^4 pixels x 205 bands) and a synthetic 10^5 x 200 scene:
   the median time per iteration of ``REDNMF().fit`` (from the fit callback),
   the compute floor (multiply-adds / GEMM rate), the memory floor
   (bytes / bandwidth), and the ratio of the measured time to the larger floor.
4. The same GEMM rate on two threads as the engine uses them (``n_jobs=2``:
   one block per thread, one BLAS thread each), and the compute floor of 100
   iterations, the default fit's products alone, at airport-1 and at
   1000 x 1000 x 200: the floors that issue 25's targets for two cores
   (fit + score <= 1.0 s, 1000 x 1000 x 200 <= 60 s) are measured against.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf.backend import get_backend
from rednmf.datasets import load_benchmark, make_scene
from rednmf.detectors.rednmf import REDNMF
from rednmf.engines import InMemory
from rednmf.solvers.rednmf_blocks import DEFAULT_BLOCK_SIZE

RANK = 8
BLOCK = DEFAULT_BLOCK_SIZE


def _stamper(stamps: list[float]):
    """A two-argument fit callback that appends the time of each iteration to ``stamps``."""

    def stamp(_i: int, _obj: float) -> None:
        stamps.append(time.perf_counter())

    return stamp


def bandwidth(repeats: int) -> float:
    """Bytes per second of ``a = b + s * c`` (float32, 256 MiB per array; 3 arrays touched)."""
    n = (256 << 20) // 4
    b = np.random.default_rng(0).random(n, dtype=np.float32)
    c = np.random.default_rng(1).random(n, dtype=np.float32)
    a = np.empty_like(b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.multiply(c, np.float32(1.5), out=a)
        np.add(a, b, out=a)
        times.append(time.perf_counter() - t)
    # multiply: read c, write a; add: read a and b, write a -> 5 arrays' worth of traffic
    return 5 * a.nbytes / statistics.median(times)


def gemm_rate(d: int, repeats: int, threads: int = 1) -> float:
    """Multiply-adds per second of the engine's two product shapes (median of both).

    ``threads``: that many blocks multiplied at once, one per Python thread
    (BLAS on one thread each, as the block engine runs with ``n_jobs``).
    """
    rng = np.random.default_rng(2)
    V = rng.random((2 * RANK, d), dtype=np.float32)
    Xs = [np.asfortranarray(rng.random((d, BLOCK), dtype=np.float32)) for _ in range(threads)]
    P = rng.random((3 * RANK, BLOCK), dtype=np.float32)
    rates = []
    lmul = get_backend("numpy").lmul  # V X as the engine forms it (NumPy's V @ X is slower)
    with ThreadPoolExecutor(threads) as pool:
        for A, transpose in ((V, False), (P, True)):
            Bs = [X.T if transpose else X for X in Xs]
            macs = threads * A.shape[0] * A.shape[1] * Bs[0].shape[1]
            times = []
            for _ in range(repeats * 20):
                t = time.perf_counter()
                list(pool.map(lambda B, A=A: lmul(A, B), Bs))
                times.append(time.perf_counter() - t)
            rates.append(macs / statistics.median(times))
    return statistics.median(rates)


def macs_per_iteration(n: int, d: int) -> int:
    """The default fit's multiply-adds per iteration: ``15 r d`` per pixel plus ``r d^2``."""
    return 15 * RANK * d * n + RANK * d * d


def per_iteration(cube: np.ndarray, repeats: int) -> float:
    """Median seconds between successive iterations of the default fit (one thread)."""
    meds = []
    for _ in range(repeats):
        stamps: list[float] = []

        REDNMF(engine=InMemory(n_jobs=1), scorer="norm").fit(cube, callback=_stamper(stamps))
        meds.append(statistics.median(np.diff(stamps)))
    return statistics.median(meds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with threadpool_limits(1):
        bw = bandwidth(args.repeats)
        scenes = [("abu-airport-1", load_benchmark("abu-airport-1")[0])]
        syn, _ = make_scene(rows=250, cols=400, bands=200, n_targets=20, random_state=0)
        scenes.append(("synthetic 10^5 x 200", syn))
        print(f"memory bandwidth (triad, float32): {bw / 1e9:.1f} GB/s")
        print(
            "| scene | pixels | bands | GEMM rate (G mult-adds/s) | mult-adds per iteration (G) "
            "| compute floor ms | memory floor ms | measured ms | measured / floor |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for name, cube in scenes:
            rows, cols, d = cube.shape
            n = rows * cols
            rate = gemm_rate(d, args.repeats)
            macs = macs_per_iteration(n, d)
            compute = macs / rate
            memory = 3 * d * n * 4 / bw
            measured = per_iteration(cube, max(1, args.repeats // 2))
            print(
                f"| {name} | {n} | {d} | {rate / 1e9:.1f} | {macs / 1e9:.3f} | "
                f"{compute * 1e3:.1f} | {memory * 1e3:.1f} | {measured * 1e3:.1f} | "
                f"{measured / max(compute, memory):.2f} |",
                flush=True,
            )
        print()
        print(
            "| GEMM rate, one thread / two threads (G mult-adds/s) "
            "| 100 iterations' products at two threads: airport-1 s | 1000 x 1000 x 200 s |"
        )
        print("|---|---|---|")
        one, two = gemm_rate(200, args.repeats), gemm_rate(200, args.repeats, threads=2)
        airport = 100 * macs_per_iteration(10_000, 205) / two
        big = 100 * macs_per_iteration(1_000_000, 200) / two
        print(f"| {one / 1e9:.1f} / {two / 1e9:.1f} | {airport:.2f} | {big:.1f} |")


if __name__ == "__main__":
    main()
