"""AUC and run time of the deep detectors (msnet, bsdm) on the benchmark scenes.

Each method with its defaults (the authors' schedules), seed 0, one torch
thread. One CSV row per fit is appended to ``--csv`` as soon as it is done
(so a long run can be followed and resumed: scenes already in the CSV are
skipped), then the markdown table of ``baselines_table.py`` is printed. For
MSNet the CSV also holds the AUC after every separation round.

Usage::

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/deep_table.py msnet --csv msnet.csv
    python benchmarks/deep_table.py bsdm --scenes abu-airport-1 abu-beach-3 --csv b.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from baselines_table import markdown
from rednmf.datasets import list_scenes, load_benchmark
from rednmf.detectors.registry import get_detector
from rednmf.metrics import roc_auc

FIELDS = ["scene", "method", "auc", "seconds", "round_aucs"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("methods", nargs="+", choices=["msnet", "bsdm"])
    parser.add_argument("--scenes", nargs="+", help="scene names (default: all in data_dir)")
    parser.add_argument("--csv", type=Path, required=True, help="CSV to append to")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    scenes = args.scenes or [p.stem for p in list_scenes()]
    done: dict[tuple[str, str], tuple[float, float]] = {}
    if args.csv.is_file():
        with args.csv.open() as fh:
            for row in csv.DictReader(fh):
                done[row["scene"], row["method"]] = (float(row["auc"]), float(row["seconds"]))
    new = not args.csv.is_file()
    with args.csv.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        if new:
            writer.writeheader()
        for scene in scenes:
            cube, gt = load_benchmark(scene)
            for name in args.methods:
                if (scene, name) in done:
                    continue
                det = get_detector(name, device=args.device)
                t0 = time.perf_counter()
                det.fit(cube)
                seconds = time.perf_counter() - t0
                auc = roc_auc(det.decision_scores_, gt)
                rounds = [roc_auc(s, gt) for s in getattr(det, "round_scores_", [])]
                done[scene, name] = (auc, seconds)
                writer.writerow(
                    {
                        "scene": scene,
                        "method": name,
                        "auc": f"{auc:.6f}",
                        "seconds": f"{seconds:.1f}",
                        "round_aucs": " ".join(f"{a:.4f}" for a in rounds),
                    }
                )
                fh.flush()
                print(f"# {scene} {name}: AUC {auc:.4f}, {seconds:.1f} s", flush=True)
    print()
    print(
        markdown(
            done, args.methods, [s for s in scenes if all((s, m) in done for m in args.methods)]
        )
    )


if __name__ == "__main__":
    main()
