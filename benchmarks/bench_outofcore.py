"""Peak memory and time of REDNMF in memory, out of core and on a local Dask cluster.

Writes a synthetic ENVI scene (BIP, int16) to a temporary folder and fits it in a
fresh process per mode, printing one table row each:

    python benchmarks/bench_outofcore.py [ROWS COLS BANDS [MAX_ITER]]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from threadpoolctl import threadpool_limits
from rednmf import REDNMF
from rednmf.io import read_scene
hdr, mode, max_iter = sys.argv[1], sys.argv[2], int(sys.argv[3])
cube = read_scene(hdr).cube
from rednmf.engines import DaskEngine, InMemory, OutOfCore
kw = {"max_iter": max_iter}
with threadpool_limits(1):
    if mode == "dask":
        from distributed import Client, LocalCluster
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                          dashboard_address=None) as cl, Client(cl) as c:
            t = time.perf_counter()
            det = REDNMF(engine=DaskEngine(c), **kw).fit(cube)
    else:
        t = time.perf_counter()
        engine = OutOfCore(n_jobs=1) if mode == "out-of-core" else InMemory(n_jobs=1, spill=False)
        det = REDNMF(engine=engine, **kw).fit(cube)
    sec = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"mode": mode, "seconds": round(sec, 2), "peak_mib": round(peak),
                  "score_sum": float(det.decision_scores_.sum())}))
"""


def main() -> None:
    rows, cols, bands = (int(a) for a in sys.argv[1:4]) if len(sys.argv) > 3 else (300, 300, 100)
    max_iter = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    import numpy as np
    import spectral.io.envi as envi

    from rednmf import make_scene

    with tempfile.TemporaryDirectory() as tmp:
        cube, _ = make_scene(rows=rows, cols=cols, bands=bands, random_state=0)
        hdr = Path(tmp) / "scene.hdr"
        envi.save_image(str(hdr), (cube * 1000).astype(np.int16), interleave="bip", ext=".img")
        mib = cube.size * 2 / 2**20
        del cube
        print(f"scene {rows}x{cols}x{bands} int16 ({mib:.0f} MiB on disk), {max_iter} iterations")
        print("| mode | fit + score s | peak RSS MiB |\n|---|---|---|")
        for mode in ("in-memory", "out-of-core", "dask"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(hdr), mode, str(max_iter)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {mode} | {rec['seconds']} | {rec['peak_mib']} |")


if __name__ == "__main__":
    main()
