"""Choose REDNMF's defaults by leave-one-scene-out over the 12 real scenes, clean and noisy.

Run from the repository root (about 25 min on 2 cores)::

    .venv/bin/python benchmarks/robust_defaults.py --out docs/robust --jobs 2

Every candidate is a pair (fit, scorer). Each fit (``REDNMF`` with the fit
parameters of :data:`FITS`) runs once per scene and noise condition: the 12
scenes of ``$REDNMF_DATA`` and ``$REDNMF_DATA_EXTRA`` (``../shared/data/had``
and ``had-extra``), clean and with the paper's noise (Sec. 5.3: the cube
min-max scaled to [0, 1] plus N(0, sigma^2)) at sigma = 0.01, 0.05, 0.10, two
draws each. Its scored evidence (``evidence_``) is then scored by every
scorer of :data:`SCORERS` with the library's public scorers, so a candidate's
AUC is exactly what ``REDNMF(**fit, **scorer).fit(cube)`` gives.

Protocol (``docs/choices.md``): a candidate's criterion on a set of scenes is
its mean AUC over the scenes and the four conditions (draws averaged). For
each held-out scene the candidate with the best criterion on the other 11 is
chosen and judged on the held-out scene alone; the table reports those
held-out AUCs, their mean and the worst scene. The default is the candidate
chosen on all 12.

Writes ``auc.csv`` (one row per scene, condition, fit and scorer),
``candidates.md`` and ``loso.md`` in ``--out`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf.data import all_scenes, load_benchmark
from rednmf.detectors.rednmf import REDNMF
from rednmf.experiments.common import noisy_cube
from rednmf.metrics import roc_auc
from rednmf.scoring import brad, multiscale

SIGMAS = (0.0, 0.01, 0.05, 0.10)
DRAWS = (0, 1)
DEV_EXCLUDED = ("abu-urban-2", "muufl-gulfport_taef")  # the two scenes of had-extra

#: Fit configurations (REDNMF parameters besides the defaults).
FITS: dict[str, dict[str, Any]] = {
    "noise": {},  # lam_mode='noise', noise_margin=3
    "noise-z0": {"noise_margin": 0.0},
    "noise-lam2": {"lam": 2.0},
    "noise-lam6": {"lam": 6.0},
    "svd": {"lam_mode": "svd"},
}


def _scorers() -> dict[str, dict[str, Any]]:
    """Scorer configurations: label -> parameters (``noise``: noise-aware PCA count)."""
    out: dict[str, dict[str, Any]] = {}
    for w in (7, 9, 11):
        for noise in (True, False):
            k = "knoise" if noise else "k20"
            out[f"brad/{w}/{k}"] = {"scorer": "brad", "inner": w, "noise": noise}
            for pool in (1, 3, 5):
                out[f"multiscale/{w}/p{pool}/{k}"] = {
                    "scorer": "multiscale", "inner": w, "pool": pool, "noise": noise,
                }  # fmt: skip
    return out


SCORERS = _scorers()


def _score(det: REDNMF, spec: dict[str, Any]) -> np.ndarray:
    E = det.evidence_
    noise_var = det.noise_std_**2 if spec["noise"] and det.noise_std_ is not None else None
    w = spec["inner"]
    kw = dict(inner=w, outer=3 * w, n_components=det.n_pca, ridge=det.ridge, noise_var=noise_var)
    if spec["scorer"] == "brad":
        return brad(E, **kw)
    return multiscale(E, pool=spec["pool"], **kw)


def run_job(path: str, sigma: float, draw: int, fit: str) -> list[dict[str, Any]]:
    """One fit and every scorer on its evidence; rows for the CSV."""
    cube, gt = load_benchmark(path)
    if sigma:
        cube = noisy_cube(cube, sigma, draw)
    rows = []
    with threadpool_limits(1):
        t = time.perf_counter()
        det = REDNMF(scorer="norm", n_jobs=1, **FITS[fit]).fit(cube)
        fit_s = time.perf_counter() - t
        nz = float(np.mean(np.any(det.anomaly_ != 0, axis=2)))
        for label, spec in SCORERS.items():
            if spec["noise"] and det.noise_std_ is None:
                continue
            t = time.perf_counter()
            auc = roc_auc(_score(det, spec), gt)
            rows.append(
                dict(scene=Path(path).stem, sigma=sigma, draw=draw, fit=fit, scorer=label,
                     auc=round(float(auc), 6), fit_s=round(fit_s, 3),
                     score_s=round(time.perf_counter() - t, 3), s_nonzero=round(nz, 4))
            )  # fmt: skip
    return rows


def loso(table: dict[tuple[str, str], dict[str, dict[float, float]]]) -> list[dict[str, Any]]:
    """Leave one scene out: per held-out scene, the candidate chosen on the others."""
    scenes = sorted({s for c in table.values() for s in c})
    crit = {
        cand: {s: float(np.mean(list(conds.values()))) for s, conds in per.items()}
        for cand, per in table.items()
    }
    complete = [c for c, per in crit.items() if len(per) == len(scenes)]
    out = []
    for held in scenes:
        best = max(complete, key=lambda c: np.mean([crit[c][s] for s in scenes if s != held]))
        out.append({"scene": held, "chosen": best, **table[best][held]})
    return out


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def report(rows: list[dict[str, Any]]) -> str:
    # table[(fit, scorer)][scene][sigma] = mean over draws
    acc: dict[tuple[str, str], dict[str, dict[float, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for r in rows:
        acc[(r["fit"], r["scorer"])][r["scene"]][float(r["sigma"])].append(float(r["auc"]))
    table = {
        c: {s: {sg: float(np.mean(v)) for sg, v in conds.items()} for s, conds in per.items()}
        for c, per in acc.items()
    }
    table = {
        c: per for c, per in table.items() if all(len(v) == len(SIGMAS) for v in per.values())
    }
    lines = ["## Candidates (all 12 scenes; cells: mean / worst scene; DEV = the paper's ten)", ""]
    head = "| fit | scorer | criterion | " + " | ".join(
        f"σ={s:g} mean / worst | σ={s:g} DEV" for s in SIGMAS
    )
    lines += [head + " |", "|" + "---|" * (3 + 2 * len(SIGMAS))]
    ranked = sorted(
        table.items(),
        key=lambda kv: -np.mean([np.mean(list(c.values())) for c in kv[1].values()]),
    )
    for (fit, scorer), per in ranked:
        crit = np.mean([np.mean(list(c.values())) for c in per.values()])
        cells = []
        for sg in SIGMAS:
            v = [per[s][sg] for s in per]
            dev = [per[s][sg] for s in per if s not in DEV_EXCLUDED]
            cells.append(f"{_fmt(np.mean(v))} / {_fmt(np.min(v))} | {_fmt(np.mean(dev))}")
        lines.append(f"| {fit} | {scorer} | {_fmt(crit)} | " + " | ".join(cells) + " |")
    choice = loso({f"{f} + {s}": per for (f, s), per in table.items()})
    lines += ["", "## Leave one scene out", ""]
    lines += ["| held-out scene | chosen on the other 11 | " + " | ".join(
        f"σ={s:g}" for s in SIGMAS) + " |", "|" + "---|" * (2 + len(SIGMAS))]  # fmt: skip
    for r in choice:
        cells = " | ".join(_fmt(r[sg]) for sg in SIGMAS)
        lines.append(f"| {r['scene']} | {r['chosen']} | {cells} |")
    for name, fn in (("mean", np.mean), ("worst", np.min)):
        cells = " | ".join(_fmt(fn([r[sg] for r in choice])) for sg in SIGMAS)
        lines.append(f"| **{name}** | | {cells} |")
    dev = [r for r in choice if r["scene"] not in DEV_EXCLUDED]
    cells = " | ".join(_fmt(np.mean([r[sg] for r in dev])) for sg in SIGMAS)
    lines.append(f"| **DEV mean** | | {cells} |")
    best = ranked[0][0]
    lines += ["", f"Chosen on all 12 scenes: fit `{best[0]}`, scorer `{best[1]}`."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/robust")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "auc.csv"
    rows: list[dict[str, Any]] = []
    if csv_path.exists():
        with open(csv_path) as f:
            rows = list(csv.DictReader(f))
    done = {(r["scene"], float(r["sigma"]), int(r["draw"]), r["fit"]) for r in rows}
    jobs = [
        (str(p), sg, d, fit)
        for p in all_scenes()
        for sg in SIGMAS
        for d in (DRAWS if sg else (0,))
        for fit in FITS
        if (p.stem, sg, d, fit) not in done
    ]
    if jobs and not args.report_only:
        # Larger scenes first, so that no long fit runs alone at the end.
        jobs.sort(key=lambda j: -os.path.getsize(j[0]))
        fields = ["scene", "sigma", "draw", "fit", "scorer", "auc", "fit_s", "score_s"]
        fields.append("s_nonzero")
        new = not csv_path.exists()
        with open(csv_path, "a", newline="") as f, ProcessPoolExecutor(args.jobs) as pool:
            w = csv.DictWriter(f, fieldnames=fields)
            if new:
                w.writeheader()
            futures = [pool.submit(run_job, *j) for j in jobs]
            for i, fut in enumerate(as_completed(futures), 1):
                new_rows = fut.result()
                w.writerows(new_rows)
                f.flush()
                rows += new_rows
                first = new_rows[0]
                print(
                    f"[{i}/{len(jobs)}] {first['scene']} sigma={first['sigma']} "
                    f"{first['fit']} fit {first['fit_s']} s",
                    flush=True,
                )
    text = report(rows)
    (out / "report.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
