"""Does the factorisation earn its place? REDNMF against its own scorer on the raw cube.

Run from the repository root (about 15 min on 2 cores)::

    .venv/bin/python benchmarks/earn_its_place.py --out docs/earn --jobs 2

For the 12 real scenes of ``$REDNMF_DATA`` and ``$REDNMF_DATA_EXTRA``
(``../shared/data/had`` and ``had-extra``), clean and with the paper's noise
(Sec. 5.3: min-max scaled to [0, 1] plus N(0, sigma^2), sigma = 0.01, 0.05,
0.10, two draws each), it measures

* **AUC of each candidate** of :data:`CANDIDATES`: ``msrx`` (the multi-scale
  scorer on the cube, no factorisation); REDNMF scoring its evidence alone
  (``scorer=MultiScale(score_cube=False)``); and the cube's four detectors with the suspects
  that the evidence flags at several levels left out of the cube's background
  statistics, joined by none, two (local RX at the pixel and pooled) or all
  four of the evidence's detectors, or its pooled local RX alone. One REDNMF fit per scene
  and condition;
  the candidates are the library's
  :func:`rednmf.scoring.multiscale.detector_maps` and
  :func:`~rednmf.scoring.multiscale.combine_tail_probabilities` on that fit's
  projected evidence and the projected cube; the candidate :data:`DEFAULT` is
  checked to equal ``REDNMF().fit(cube)`` on every scene and condition.
  Two controls (:data:`SELF_MASKED`) take their suspects from msrx's own
  score instead of the evidence, to show what the suspects need the
  factorisation for.
* **Where the signal goes** (draw 0): for the ground-truth pixels, the
  contrast ``dx = x - b`` of each pixel against the mean ``b`` of the
  non-anomalous pixels of its 9/27 ring, split as ``x = WH + E + rest``
  (``E`` the scored evidence): the share of ``||dx||^2`` carried by each part,
  ``<dx, dA> / ||dx||^2`` (the three add up to 1); and the share of the
  evidence's (and the cube's) contrast that the scorer's noise-aware
  projection keeps, with the number of components kept.
* **Leave one scene out**: for each held-out scene, the candidate with the best
  criterion (mean AUC over the other 11 scenes and the four conditions, draws
  averaged); candidates within 0.001 are ties, decided by the clean mean, then
  by the order above (evidence alone first, the earlier default).

Writes the per-condition rows to ``--csv`` (outside the repository, resumable)
and the tables to ``report.md`` in ``--out``, and prints them.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from rednmf import REDNMF, get_detector
from rednmf.backend import get_backend
from rednmf.datasets import all_scenes, load_benchmark
from rednmf.experiments.common import noisy_cube
from rednmf.metrics import roc_auc
from rednmf.preprocessing import scale_data
from rednmf.scoring.from_matrix import project_matrix
from rednmf.scoring.multiscale import Detectors, combine_tail_probabilities, detector_maps
from rednmf.scoring.pca import noise_pca_count, principal_axes
from rednmf.scoring.scorers import MultiScale
from rednmf.solvers.noise import band_noise_variance

SIGMAS = (0.0, 0.01, 0.05, 0.10)
DRAWS = (0, 1)
DEV_EXCLUDED = ("abu-urban-2", "muufl-gulfport_taef")
TIE = 0.001
#: Candidates: label -> (suspect level, evidence detectors joined to the cube's four).
#: Level None: the evidence alone (``MultiScale(score_cube=False)``); 0: no suspects. The evidence
#: detectors, as indices into ``[local, pooled local, global, pooled global]``: (0, 1) = local RX
#: at the pixel and pooled (what ``cube_and_evidence`` does), () = none (the cube alone, with the
#: suspects left out of its statistics), (0, 1, 2, 3) = all four, (1,) = the pooled local alone
#: (the evidence only where neighbours share it: a noisy residual's pixel RX is mostly noise).
#: Leave-one-out breaks ties in this order, so a candidate added later never displaces an earlier
#: one that ties with it.
CANDIDATES: dict[str, tuple[float | None, tuple[int, ...]]] = {
    "evidence alone": (None, ()),
    "cube + evidence local, no suspects": (0.0, (0, 1)),
    "cube, suspects 0.05": (0.05, ()),
    "cube + evidence (4), suspects 0.05": (0.05, (0, 1, 2, 3)),
    "cube + evidence local, suspects 0.01": (0.01, (0, 1)),
    "cube + evidence local, suspects 0.05": (0.05, (0, 1)),
    "cube + evidence local, suspects 0.10": (0.10, (0, 1)),
    "cube + evidence local, suspects 0.20": (0.20, (0, 1)),
    "cube + evidence pooled local, suspects 0.05": (0.05, (1,)),
}
#: Controls that need no factorisation for their suspects: the cube's four detectors with
#: the suspects of msrx's own score at 0.05 left out (label -> evidence detectors joined).
SELF_MASKED: dict[str, int] = {
    "msrx, its own suspects 0.05": 0,
    "msrx, its own suspects 0.05 + evidence local": 2,
}
#: The evidence's local detectors also with the suspects left out of their rings (a second
#: pass over the evidence): label -> suspect level.
EVIDENCE_MASKED: dict[str, float] = {
    "cube + evidence local, both masked, suspects 0.01": 0.01,
    "cube + evidence local, both masked, suspects 0.05": 0.05,
    "cube + evidence local, both masked, suspects 0.10": 0.10,
}
#: The candidate that REDNMF's defaults compute.
DEFAULT = "cube + evidence local, suspects 0.05"
SHARES = ("WH", "E", "rest", "E_kept", "k_E", "X_kept", "k_X")


def _conditions() -> list[tuple[str, float, int]]:
    return [
        (p.stem, s, d) for p in all_scenes() for s in SIGMAS for d in (DRAWS if s > 0 else (0,))
    ]


def _ring_reference(A: np.ndarray, gt: np.ndarray, inner: int = 9, outer: int = 27) -> np.ndarray:
    """Per pixel, the mean of ``A`` over the non-anomalous pixels of its ring (``(n, d)``)."""
    from scipy.ndimage import uniform_filter

    rows, cols = gt.shape
    w = (gt == 0).astype(np.float64)
    Z = np.concatenate([w[..., None], w[..., None] * A.reshape(rows, cols, -1)], axis=2)

    def box(side: int) -> np.ndarray:
        return uniform_filter(Z, size=(side, side, 1), mode="constant") * side * side

    ring = box(outer) - box(inner)
    return (ring[..., 1:] / np.maximum(ring[..., :1], 1e-12)).reshape(rows * cols, -1)


def _kept_share(A: np.ndarray, dA: np.ndarray, noise_var: np.ndarray) -> tuple[float, int]:
    """Share of the contrast ``dA`` inside the scorer's noise-aware projection of ``A``."""
    Ac = A - A.mean(axis=0)
    cov = Ac.T @ Ac / len(A)
    k = noise_pca_count(cov, noise_var, len(A), 20)
    V = principal_axes(cov, k)
    return float(((dA @ V) ** 2).sum() / max((dA * dA).sum(), 1e-300)), k


def where_the_signal_goes(cube: np.ndarray, gt: np.ndarray, det: REDNMF) -> dict[str, float]:
    """Shares of the anomalies' contrast in ``WH``, the evidence and the rest (module doc)."""
    rows, cols, d = cube.shape
    off, div = det.scaling_
    X = (cube.reshape(-1, d).astype(np.float64) - off) / div
    WH = (det.components_.astype(np.float64) @ det.coefficients_.astype(np.float64)).T
    E = det.evidence(cube).reshape(-1, d).astype(np.float64)
    a = gt.reshape(-1) > 0
    dx = (X - _ring_reference(X, gt))[a]
    total = float((dx * dx).sum())
    out = {}
    for name, A in (("WH", WH), ("E", E), ("rest", X - WH - E)):
        out[name] = float((dx * (A - _ring_reference(A, gt))[a]).sum() / total)
    dE = (E - _ring_reference(E, gt))[a]
    out["E_kept"], out["k_E"] = _kept_share(E, dE, det.noise_std_.astype(np.float64) ** 2)
    cov = np.cov(X, rowvar=False, bias=True)
    out["X_kept"], out["k_X"] = _kept_share(X, dx, band_noise_variance(cov))
    return out


def _run(cond: tuple[str, float, int]) -> list[dict]:
    name, sigma, draw = cond
    path = next(p for p in all_scenes() if p.stem == name)
    with threadpool_limits(1):
        raw, gt = load_benchmark(path)
        cube = noisy_cube(raw, sigma, 1000 * draw + int(round(sigma * 1000))).astype(np.float32)
        rows, cols, d = cube.shape
        t = time.perf_counter()
        ms = get_detector("msrx").fit(cube).decision_scores_
        t_ms = time.perf_counter() - t
        t = time.perf_counter()
        det = REDNMF(scorer=MultiScale(score_cube=False)).fit(cube)
        t_ev = time.perf_counter() - t
        base = dict(scene=name, sigma=sigma, draw=draw)
        rows_out = [{**base, "candidate": "msrx", "auc": roc_auc(ms, gt), "seconds": t_ms}]
        t = time.perf_counter()
        default = REDNMF().fit(cube).decision_scores_
        t_default = time.perf_counter() - t
        xp = get_backend("numpy")
        sp = det.get_params(deep=True)
        E = det.evidence(cube).reshape(-1, d).T
        P_e = project_matrix(E, (rows, cols), sp["scorer__n_pca"], det.noise_std_**2)
        X = scale_data(cube.reshape(-1, d).T, "minmax", np.float32, det.scaling_)
        P_x = project_matrix(X, (rows, cols), sp["scorer__n_pca"], "estimate")  # as REDNMF
        args = Detectors(sp["scorer__inner"], sp["scorer__outer"], sp["scorer__ridge"],
                         sp["scorer__pool"], np.dtype(np.float64), xp)  # fmt: skip
        maps_e = detector_maps(P_e, args)
        tail = xp.tail_counts(combine_tail_probabilities(*maps_e)) / (rows * cols)
        for label, (level, joined) in CANDIDATES.items():
            if level is None:
                scores, secs = det.decision_scores_, t_ev
            else:
                background = tail > level if level > 0 else None
                maps_x = detector_maps(P_x, args, background=background)
                scores = combine_tail_probabilities(*maps_x, *(maps_e[i] for i in joined))
                secs = t_default if label == DEFAULT else float("nan")
            if label == DEFAULT:  # the detector computes exactly this candidate
                np.testing.assert_allclose(default, scores, rtol=1e-5)  # blocks: rounding
            rows_out.append({**base, "candidate": label, "auc": roc_auc(scores, gt),
                             "seconds": secs})  # fmt: skip
        for label, level in EVIDENCE_MASKED.items():
            background = tail > level
            maps_x = detector_maps(P_x, args, background=background)
            maps_e2 = detector_maps(P_e, args, background=background)
            scores = combine_tail_probabilities(*maps_x, *maps_e2[:2])
            rows_out.append({**base, "candidate": label, "auc": roc_auc(scores, gt),
                             "seconds": float("nan")})  # fmt: skip
        own = xp.tail_counts(ms) / (rows * cols) > 0.05
        maps_own = detector_maps(P_x, args, background=own)
        for label, n_e in SELF_MASKED.items():
            scores = combine_tail_probabilities(*maps_own, *maps_e[:n_e])
            rows_out.append({**base, "candidate": label, "auc": roc_auc(scores, gt),
                             "seconds": float("nan")})  # fmt: skip
        if draw == 0:
            shares = where_the_signal_goes(cube, gt, det)
            rows_out.append({**base, "candidate": "shares", **shares})
    return rows_out


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return [
            {k: (v if k in ("scene", "candidate") else float(v)) for k, v in r.items() if v != ""}
            for r in csv.DictReader(f)
        ]


def scene_means(rows: list[dict], cands: list[str]) -> dict:
    """``mean[(candidate, sigma)][scene]``: the AUC of ``rows``, draws averaged."""
    auc: dict[tuple[str, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["candidate"] in cands:
            auc[(r["candidate"], r["sigma"])][r["scene"]].append(r["auc"])
    return {
        (c, s): {sc: float(np.mean(v)) for sc, v in auc[(c, s)].items()} for c in cands
        for s in SIGMAS
    }  # fmt: skip


def summary_cells(mean: dict, c: str) -> list[str]:
    """Per noise level, "mean / worst / scenes at least as good as msrx" of candidate ``c``."""
    cells = []
    for s in SIGMAS:
        m = mean[(c, s)]
        wins = sum(m[sc] >= mean[("msrx", s)][sc] for sc in m)
        cells.append(f"{np.mean(list(m.values())):.4f} / {min(m.values()):.4f} / {wins}")
    return cells


def leave_one_out_table(
    mean: dict, pool: list[str], scenes: list[str], *, msrx_column: bool = False
) -> list[str]:
    """Rows of a table: per held-out scene the candidate :func:`choose` picks on the other
    scenes and that scene's AUC per noise level (and msrx's at sigma = 0.05), then the
    mean and the worst held-out AUC."""
    extra = " msrx σ = 0.05 |" if msrx_column else ""
    out = ["| held-out scene | chosen | " + " | ".join(f"σ = {s}" for s in SIGMAS) + f" |{extra}"]
    out.append("|---" * (len(SIGMAS) + 2 + msrx_column) + "|")
    held: dict[float, list[float]] = {s: [] for s in SIGMAS}
    for sc in scenes:
        chosen = choose(mean, pool, [o for o in scenes if o != sc])
        for s in SIGMAS:
            held[s].append(mean[(chosen, s)][sc])
        cells = " | ".join(f"{mean[(chosen, s)][sc]:.4f}" for s in SIGMAS)
        ms = f" {mean[('msrx', 0.05)][sc]:.4f} |" if msrx_column else ""
        out.append(f"| {sc} | {chosen} | {cells} |{ms}")
    blank = " |" if msrx_column else ""
    means = " | ".join(f"**{np.mean(held[s]):.4f}**" for s in SIGMAS)
    out.append(f"| **mean** | | {means} |{blank}")
    out.append(
        "| **worst** | | " + " | ".join(f"{min(held[s]):.4f}" for s in SIGMAS) + f" |{blank}"
    )
    return out


def summary_header(first: str, extra: list[str]) -> list[str]:
    """Header and rule of a table of :func:`summary_cells`: ``first``, a column per noise
    level, then ``extra``."""
    columns = [first, *(f"σ = {s}" for s in SIGMAS), *extra]
    return ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]


def choose(mean: dict, pool: list[str], keep: list[str]) -> str:
    """The candidate of ``pool`` that the protocol chooses on the scenes ``keep``.

    ``mean[(candidate, sigma)][scene]`` is the AUC (draws averaged). The criterion is the
    mean over ``keep`` and :data:`SIGMAS`; candidates within :data:`TIE` of the best are
    ties, decided by the clean mean (again within :data:`TIE`), then by their order in
    ``pool``.
    """

    def crit(c: str, sigmas: tuple[float, ...] = SIGMAS) -> float:
        return float(np.mean([mean[(c, s)][sc] for s in sigmas for sc in keep]))

    crits = {c: crit(c) for c in pool}
    best = max(crits.values())
    ties = [c for c in pool if crits[c] >= best - TIE]
    clean = {c: crit(c, (0.0,)) for c in ties}
    top = max(clean.values())
    return next(c for c in ties if clean[c] >= top - TIE)


def _table(rows: list[dict]) -> str:
    """All the report's tables (markdown)."""
    secs: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["candidate"] != "shares" and r["sigma"] == 0.0 and np.isfinite(r["seconds"]):
            secs[r["candidate"]].append(r["seconds"])
    cands = ["msrx", *CANDIDATES, *EVIDENCE_MASKED, *SELF_MASKED]
    pool = [*CANDIDATES, *EVIDENCE_MASKED]  # what leave-one-out chooses from, in this order
    scenes = sorted({r["scene"] for r in rows})
    dev = [s for s in scenes if not s.startswith(DEV_EXCLUDED)]
    mean = scene_means(rows, cands)
    out = ["## Mean / worst AUC over the 12 scenes; scenes at least as good as msrx", ""]
    out += summary_header("candidate", ["DEV σ = 0", "DEV σ = 0.05", "median s (clean)"])
    for c in cands:
        cells = summary_cells(mean, c)
        dv = [np.mean([mean[(c, s)][sc] for sc in dev]) for s in (0.0, 0.05)]
        out.append(
            f"| {c} | "
            + " | ".join(cells)
            + f" | {dv[0]:.4f} | {dv[1]:.4f} | "
            + (f"{np.median(secs[c]):.2f} |" if secs[c] else "– |")
        )
    out += ["", f"## Per scene (AUC, draws averaged): msrx / evidence alone / {DEFAULT}", ""]
    out.append("| scene | " + " | ".join(f"σ = {s}" for s in SIGMAS) + " |")
    out.append("|---" * (len(SIGMAS) + 1) + "|")
    for sc in scenes:
        cells = [
            " / ".join(f"{mean[(c, s)][sc]:.4f}" for c in ("msrx", "evidence alone", DEFAULT))
            for s in SIGMAS
        ]
        out.append(f"| {sc} | " + " | ".join(cells) + " |")

    # leave one scene out
    out += [
        "",
        "## Leave one scene out (the candidate chosen on the other 11; msrx not a candidate)",
        "",
    ]
    out += leave_one_out_table(mean, pool, scenes, msrx_column=True)
    # where the signal goes
    out += [
        "",
        "## Where the anomalies' contrast goes (draw 0; shares of ||x - ring mean||², GT pixels)",
        "",
    ]
    out.append(
        "| scene | σ | in WH | in E | rest | E kept by its projection (k) "
        "| cube kept by its projection (k) |"
    )
    out.append("|---" * 7 + "|")
    for r in sorted(
        (r for r in rows if r["candidate"] == "shares"), key=lambda r: (r["scene"], r["sigma"])
    ):
        out.append(
            f"| {r['scene']} | {r['sigma']} | {r['WH']:.2f} | {r['E']:.2f} | {r['rest']:.2f} | "
            f"{r['E_kept']:.2f} ({int(r['k_E'])}) | {r['X_kept']:.2f} ({int(r['k_X'])}) |"
        )
    sh = [r for r in rows if r["candidate"] == "shares"]
    out += ["", "Medians over the 12 scenes:", ""]
    out += ["| σ | in WH | in E | E kept | cube kept | k_E | k_X |", "|---" * 7 + "|"]
    for s in SIGMAS:
        rs = [r for r in sh if r["sigma"] == s]
        med = {k: float(np.median([r[k] for r in rs])) for k in SHARES}
        out.append(f"| {s} | {med['WH']:.2f} | {med['E']:.2f} | {med['E_kept']:.2f} | "
                   f"{med['X_kept']:.2f} | {med['k_E']:.0f} | {med['k_X']:.0f} |")  # fmt: skip
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/earn")
    ap.add_argument("--csv", default="rednmf-bench/earn_its_place.csv")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    path = Path(args.csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = load_rows(path)
    done = {(r["scene"], r["sigma"], r["draw"]) for r in rows}
    todo = [c for c in _conditions() if (c[0], float(c[1]), float(c[2])) not in done]
    fields = ["scene", "sigma", "draw", "candidate", "auc", "seconds", *SHARES]
    new = not path.exists()
    with path.open("a", newline="") as f, ProcessPoolExecutor(args.jobs) as ex:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        for cond, out in zip(todo, ex.map(_run, todo), strict=True):
            for r in out:
                w.writerow(r)
            f.flush()
            print(
                cond,
                " ".join(f"{r['candidate']}={r['auc']:.4f}" for r in out if "auc" in r),
                flush=True,
            )
    text = (
        "# Does the factorisation earn its place?\n\n"
        "Generated by `benchmarks/earn_its_place.py`. The seconds are wall time on the\n"
        "machine as loaded during the run; `docs/earn/time.md` has the\n"
        "seconds of one BLAS thread, alternating, medians of 3.\n\n" + _table(load_rows(path))
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "report.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
