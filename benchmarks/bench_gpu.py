"""REDNMF on a GPU (torch backend) against NumPy: speed at 1000x1000x200 and agreement.

Run from the repository root on a machine with a CUDA device::

    python benchmarks/bench_gpu.py [--device cuda] [--pixels 1000000] [--json OUT.json]

Prints, measured in this one run:

1. The device, torch's version and whether TF32 matmuls are allowed (they are
   not by default; the comparison below is in true float32).
2. ``REDNMF(engine=TorchEngine(device))`` with every other default on a
   synthetic ``1000 x 1000 x 200`` float32 scene (``bench_solver.synthetic_cube``),
   after a warm-up fit on a 10^4-pixel scene: seconds for the whole
   ``fit`` (scaling, initialisation, 100 iterations, evidence, scoring),
   seconds per iteration (from the fit callback), set-up and scoring seconds,
   and the device's peak memory. Then the same fit with NumPy on this
   machine's CPUs for ``--cpu-iter`` iterations (time per iteration, projected
   to 100).
3. Agreement on the real scenes of ``--data`` (default: the ten DEV scenes):
   the default fit with NumPy and with torch, in float64 (relative
   differences ``||A_torch - A_numpy|| / ||A_numpy||`` of ``W``, ``H``, ``M``,
   ``S`` and the scores) and in float32 (the default dtype: the same and the
   AUC of each), with the seconds of each fit.

``--profile N`` also runs the large fit under :mod:`cProfile` and prints its
N costliest rednmf calls (cumulative seconds); ``--scenes 0`` skips part 3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from bench_solver import synthetic_cube  # benchmarks/ is on sys.path when run as a script
from rednmf.datasets import data_dir, list_scenes, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.engines import TorchEngine
from rednmf.metrics import roc_auc


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / ||b||`` in float64."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / (np.linalg.norm(b) or 1.0))


def _fit(cube: np.ndarray, **params) -> tuple[REDNMF, float, list[float]]:
    """A fit with the callback's timestamps; seconds of the whole fit."""
    stamps: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        det = REDNMF(**params).fit(cube, callback=lambda t, f: stamps.append(time.perf_counter()))
        seconds = time.perf_counter() - t0
    return det, seconds, [t0] + stamps + [t0 + seconds]


def speed(pixels: int, device: str, cpu_iter: int, profile: int = 0) -> dict:
    """Part 2: the large synthetic scene on the device, and a few iterations on the CPUs."""
    import torch

    _fit(synthetic_cube(10_000), engine=TorchEngine(device), max_iter=5)  # warm-up
    cube = synthetic_cube(pixels)
    torch.cuda.reset_peak_memory_stats() if device.startswith("cuda") else None
    det, seconds, st = _fit(cube, engine=TorchEngine(device))
    per_iter = (st[-2] - st[1]) / (len(st) - 3)
    row = {
        "shape": list(cube.shape),
        "iterations": det.n_iter_,
        "seconds": seconds,
        "per_iter": per_iter,
        "setup": st[1] - st[0] - per_iter,
        "scoring": st[-1] - st[-2],
        "gpu_peak_mb": (
            torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
        ),
        "cube_mb": cube.nbytes / 2**20,
    }
    if profile:  # where the seconds of the whole fit go: the rednmf functions by cumulative time
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        _fit(cube, engine=TorchEngine(device))
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats("rednmf", profile)
        print(buf.getvalue(), flush=True)
    if cpu_iter:
        _, cpu_s, cst = _fit(cube, max_iter=cpu_iter)
        cpu_per = (cst[-2] - cst[1]) / (len(cst) - 3)
        row["cpu"] = {
            "iterations": cpu_iter,
            "seconds": cpu_s,
            "per_iter": cpu_per,
            "projected_100": cpu_s + (100 - cpu_iter) * cpu_per,
            "cpus": len(os.sched_getaffinity(0)),
        }
    return row


def agreement(folder: Path, device: str, limit: int | None) -> list[dict]:
    """Part 3: NumPy against torch on each real scene, float64 and float32."""
    rows = []
    for path in list_scenes(folder)[:limit]:
        cube, gt = load_benchmark(path)
        row: dict = {"scene": path.stem}
        for dtype in ("float64", "float32"):
            ref, t_np, _ = _fit(cube, dtype=dtype)
            got, t_gpu, _ = _fit(cube, dtype=dtype, engine=TorchEngine(device))
            row[dtype] = {
                "W": _rel(got.components_, ref.components_),
                "H": _rel(got.coefficients_, ref.coefficients_),
                "M": _rel(got.encoder_, ref.encoder_),
                "S": _rel(got.anomaly(cube), ref.anomaly(cube)),
                "scores": _rel(got.decision_scores_, ref.decision_scores_),
                "auc_numpy": roc_auc(ref.decision_scores_, gt),
                "auc_torch": roc_auc(got.decision_scores_, gt),
                "seconds_numpy": t_np,
                "seconds_torch": t_gpu,
            }
        rows.append(row)
        f64, f32 = row["float64"], row["float32"]
        print(
            f"| {path.stem} | {max(f64[k] for k in 'WHMS'):.1e} | {f64['scores']:.1e} "
            f"| {max(f32[k] for k in 'WHMS'):.1e} | {f32['auc_numpy']:.4f} "
            f"| {f32['auc_torch']:.4f} | {abs(f32['auc_torch'] - f32['auc_numpy']):.1e} "
            f"| {f32['seconds_numpy']:.2f} | {f32['seconds_torch']:.2f} |",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--pixels", type=int, default=1_000_000)
    ap.add_argument("--cpu-iter", type=int, default=3, help="NumPy iterations (0: skip)")
    ap.add_argument("--data", default=None, help="folder of real scenes (default: data_dir())")
    ap.add_argument("--scenes", type=int, default=None, help="only the first N scenes")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--profile", type=int, default=0, help="print the N costliest calls")
    ap.add_argument("--json", default=None, help="also write every number to this file")
    args = ap.parse_args()

    import torch

    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()
    print(f"device: {name}; torch {torch.__version__}; numpy {np.__version__}; "
          f"TF32 matmul allowed: {torch.backends.cuda.matmul.allow_tf32}; "
          f"{len(os.sched_getaffinity(0))} CPUs", flush=True)  # fmt: skip
    out: dict = {"device": name, "torch": torch.__version__}
    if not args.skip_speed:
        r = speed(args.pixels, args.device, args.cpu_iter, args.profile)
        out["speed"] = r
        print()
        print("| fit + scoring, REDNMF() defaults | iterations | s total | s / iteration "
              "| set-up s | scoring s | device peak MiB | cube MiB |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        peak = "-" if r["gpu_peak_mb"] is None else f"{r['gpu_peak_mb']:.0f}"
        print(f"| torch, {args.device}, {' x '.join(map(str, r['shape']))} | {r['iterations']} "
              f"| {r['seconds']:.2f} | {r['per_iter'] * 1e3:.1f} ms | {r['setup']:.2f} "
              f"| {r['scoring']:.2f} | {peak} | {r['cube_mb']:.0f} |")  # fmt: skip
        if "cpu" in r:
            c = r["cpu"]
            print(f"| NumPy, {c['cpus']} CPUs, {c['iterations']} iterations | {c['iterations']} "
                  f"| {c['seconds']:.1f} (100: {c['projected_100']:.0f} projected) "
                  f"| {c['per_iter'] * 1e3:.0f} ms | | | | |", flush=True)  # fmt: skip
    print()
    print(
        "| scene | float64: max rel. diff W,H,M,S | float64: scores | float32: max rel. diff "
        "W,H,M,S | float32 AUC NumPy | float32 AUC torch | AUC diff | s NumPy | s torch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    folder = Path(args.data) if args.data else data_dir()
    rows = agreement(folder, args.device, args.scenes)
    out["agreement"] = rows
    if not rows:
        return
    worst = max(abs(r["float32"]["auc_torch"] - r["float32"]["auc_numpy"]) for r in rows)
    f64 = max(max(r["float64"][k] for k in "WHMS") for r in rows)
    med = statistics.median(r["float32"]["seconds_torch"] for r in rows)
    print(f"\nworst float64 factor difference {f64:.1e}; worst float32 AUC difference "
          f"{worst:.1e}; median torch s {med:.2f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
