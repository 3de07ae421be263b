"""How well does ``--far`` deliver the false-alarm rate it names, on the real scenes?

For every method (each with its defaults, seed 0) and every scene of the benchmark folders,
the score map is computed once and cached (``--cache``, outside the repository). Then for
each requested rate ``far`` the threshold of :func:`rednmf.thresholding.far_threshold` is
applied and the fraction of *background* pixels (ground truth 0) above it is measured.

Printed: one table per estimator (the GPD tail of :mod:`rednmf.thresholding`, and the
robust log-normal rule it replaced, kept here for comparison), rows = methods, columns =
far; each cell is the pooled
flagged background fraction over all scenes divided by the request (1.00 = exact), and in
brackets the smallest and largest per-scene ratio. The pooled ratio is the estimator's bias;
with ~10^4 background pixels per scene, a per-scene count at far = 1e-4 is about one pixel,
so per-scene ratios at the low rates are dominated by counting noise.

``--diagnose`` adds the tables behind the diagnosis in ``docs/outputs.md`` (why the
estimator misses): the same GPD fitted to the *background pixels only* (ground truth used,
an oracle: is the tail model right?), the empirical ``1 - far`` quantile of all pixels, a
GPD on the full tail above the 90th percentile with no trimming, and with the top ``m``
pixels trimmed, ``m`` = the true number of anomaly pixels (an oracle count), a GPD fitted
with the top 1 % censored instead of truncated, and the oracle itself: the fraction of *all*
pixels above the background's ``1 - far`` quantile, over ``far`` (how many pixels in total a
rule must flag).

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/far_calibration.py \
        [--data DIR ...] [--methods grx,lrx,...] [--cache /tmp/rednmf-far-cache] [--diagnose]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rednmf.datasets import data_dir, list_scenes, load_benchmark
from rednmf.detectors.registry import DEEP_METHODS, get_detector, list_methods
from rednmf.thresholding import (
    FLAGGED_BOUNDS,
    bounded_far_threshold,
    far_threshold,
    gpd_tail_quantile,
)

FARS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
#: The rates the bounds are chosen on (below 1e-3 a scene has a handful of false alarms).
LOSO_FARS = (1e-3, 3e-3, 1e-2)
#: The (lo, hi) flagged-count bounds compared by ``--loso``.
BOUNDS_GRID = tuple(
    (lo, hi)
    for lo in (1.0, 1.1, 1.2, 1.3, 1.5, 1.75, 2.0)
    for hi in (2.0, 2.5, 3.0, 4.0, 5.0)
    if hi > lo
)


def lognormal_threshold(scores: np.ndarray, far: float) -> float:
    """The rule before the GPD tail: log-normal from the median and MAD of log-scores."""
    from statistics import NormalDist

    s = scores[np.isfinite(scores)].astype(np.float64)
    lo, hi = float(s.min()), float(s.max())
    eps = 1e-9 * (hi - lo)
    logs = np.log(s - lo + eps)
    centre = float(np.median(logs))
    spread = 1.4826 * float(np.median(np.abs(logs - centre))) or float(np.std(logs)) or 1.0
    return float(np.exp(centre + NormalDist().inv_cdf(1.0 - far) * spread) + lo - eps)


def cached_scores(method: str, path: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Scores of ``method`` on the scene ``path`` (computed once) and its ground truth."""
    target = cache / f"{path.stem}__{method}.npz"
    if target.is_file():
        with np.load(target) as z:
            return z["scores"], z["gt"]
    cube, gt = load_benchmark(path)
    start = time.perf_counter()
    det = get_detector(method, random_state=0) if method_has_seed(method) else None
    det = det or get_detector(method)
    det.fit(cube)
    print(f"  {method:12s} {path.stem:32s} {time.perf_counter() - start:7.1f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npz")
    np.savez(tmp, scores=det.decision_scores_, gt=np.asarray(gt) != 0)
    tmp.replace(target)
    return det.decision_scores_, np.asarray(gt) != 0


def method_has_seed(method: str) -> bool:
    return "random_state" in get_detector(method).get_params()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", type=Path, default=None)
    parser.add_argument(
        "--methods",
        default=",".join(n for n, _ in list_methods() if n not in DEEP_METHODS),
        help="comma list (default: every method but the slow deep ones, MSNet and BSDM)",
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/rednmf-far-cache"))
    parser.add_argument("--compute-only", action="store_true")
    parser.add_argument(
        "--diagnose", action="store_true", help="also print the diagnosis tables (oracles)"
    )
    parser.add_argument(
        "--loso",
        action="store_true",
        help="also choose the flagged-count bounds leaving one scene out (FLAGGED_BOUNDS)",
    )
    parser.add_argument(
        "--window-grid",
        action="store_true",
        help="also compare fit windows (lower x upper quantile, scores or log-scores)",
    )
    args = parser.parse_args()
    folders = args.data or [data_dir(), data_dir().parent / "had-extra"]
    scenes = [p for f in folders if f.is_dir() for p in list_scenes(f)]
    methods = [m for m in args.methods.split(",") if m]

    results: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for method in methods:
        results[method] = [cached_scores(method, p, args.cache) for p in scenes]
    if args.compute_only:
        return

    print(f"\n{len(scenes)} scenes: {', '.join(p.stem for p in scenes)}")
    print("cell: pooled flagged background fraction / far  [min..max per scene]\n")
    for label, rule in (
        ("GPD tail (rednmf.thresholding.far_threshold)", far_threshold),
        ("previous rule: robust log-normal", lognormal_threshold),
    ):
        print(f"\n{label}\n")
        _table(methods, results, rule)
    _replaced(methods, results)
    if args.loso:
        _loso_bounds(methods, results, [p.stem for p in scenes])
    if args.window_grid:
        _window_grid(methods, results)
    if args.diagnose:
        _diagnose(methods, results)


def _replaced(methods, results) -> None:
    """Per method and far: on how many scenes the cap, the floor or the empirical quantile
    (too few window scores, or far above the fitted tail mass) replaced the tail quantile."""
    from rednmf.thresholding import choose_threshold

    n = len(next(iter(results.values())))
    print(
        f"\nscenes (of {n}) where the GPD tail quantile was replaced: "
        f"cap (1 - {FLAGGED_BOUNDS[0]:g} far) / floor (1 - {FLAGGED_BOUNDS[1]:g} far) / "
        "empirical\n"
    )
    print("| method | " + " | ".join(f"far {f:g}" for f in FARS) + " |")
    print("|---|" + "---|" * len(FARS))
    for method in methods:
        cells = []
        for far in FARS:
            why = [choose_threshold(s, far=far).fallback or "" for s, _ in results[method]]
            capped = sum("capped" in w for w in why)
            raised = sum("raised" in w for w in why)
            other = sum(bool(w) for w in why) - capped - raised
            cells.append(f"{capped} / {raised} / {other}")
        print(f"| {method} | " + " | ".join(cells) + " |")


def _gpd_window_thresholds(s: np.ndarray, lo_q: float, hi_q: float) -> list[float]:
    """far_threshold with another fit window (the same truncated GPD fit)."""
    from scipy import stats

    from rednmf.thresholding import _fit_gpd_truncated

    u, c = np.quantile(s, [lo_q, hi_q])
    w = np.sort(s[(s > u) & (s <= c)])
    xi, sigma = _fit_gpd_truncated(w - u, c - u)
    p_u = w.size / s.size / stats.genpareto.cdf(c - u, xi, scale=sigma)
    return [
        float(np.quantile(s, 1 - f))
        if f >= p_u
        else u + stats.genpareto.isf(f / p_u, xi, scale=sigma)
        for f in FARS
    ]


def _window_grid(methods, results) -> None:
    """Cells (method x far, pooled) within 1.5x for several fit windows."""
    print("\nfit window | scale | pooled cells within 1.5x | max |log ratio|")
    print("|---|---|---|---|")
    for lo_q in (0.80, 0.90, 0.95):
        for hi_q in (0.98, 0.99, 0.995):
            for log in (False, True):
                ratios = []
                for method in methods:
                    flagged = np.zeros(len(FARS))
                    total = 0
                    for scores, gt in results[method]:
                        s = scores.ravel()
                        ok = np.isfinite(s)
                        if log:
                            span = np.nanmax(s) - np.nanmin(s)
                            s = np.log(s - np.nanmin(s) + 1e-9 * span)
                        ts = _gpd_window_thresholds(s[ok], lo_q, hi_q)
                        bg = ~gt.ravel() & ok
                        flagged += [np.count_nonzero(s[bg] > t) for t in ts]
                        total += int(bg.sum())
                    ratios.append(flagged / total / np.array(FARS))
                lr = np.abs(np.log(np.maximum(np.array(ratios), 1e-3)))
                within = int((lr <= np.log(1.5)).sum())
                scale = "log-scores" if log else "scores"
                print(f"| {lo_q}-{hi_q} | {scale} | {within}/{lr.size} | {lr.max():.2f} |")


def _gpd_tail(s: np.ndarray, far: float, lo_q: float, n_total: int | None = None) -> float:
    """A GPD fitted to every score above the ``lo_q`` quantile (no upper truncation)."""
    from scipy import stats

    from rednmf.thresholding import _fit_gpd_truncated

    s = np.sort(s)
    u = float(np.quantile(s, lo_q))
    x = s[s > u] - u
    xi, sigma = _fit_gpd_truncated(x, np.inf)
    p_u = x.size / (s.size if n_total is None else n_total)
    if far >= p_u:
        return float(np.quantile(s, 1 - far))
    return float(u + stats.genpareto.isf(far / p_u, xi, scale=sigma))


def _gpd_censored(s: np.ndarray, far: float, lo_q: float = 0.95, hi_q: float = 0.99) -> float:
    """GPD on the window, the scores above ``hi_q`` counted but their values not used."""
    from scipy import optimize, stats

    u, c = (float(v) for v in np.quantile(s, [lo_q, hi_q]))
    x = s[(s > u) & (s <= c)] - u
    k = int(np.count_nonzero(s > c))
    scale0 = float(x.mean()) or 1.0

    def nll(p: np.ndarray) -> float:
        sigma = np.exp(p[1]) * scale0
        logpdf = stats.genpareto.logpdf(x, p[0], scale=sigma)
        tail = float(stats.genpareto.sf(c - u, p[0], scale=sigma))
        if tail <= 0 or not np.all(np.isfinite(logpdf)):
            return 1e300
        return -(float(logpdf.sum()) + k * np.log(tail))

    res = optimize.minimize(nll, np.array([0.1, 0.0]), method="Nelder-Mead")
    xi, sigma = float(res.x[0]), float(np.exp(res.x[1]) * scale0)
    p_u = (x.size + k) / s.size
    if far >= p_u:
        return float(np.quantile(s, 1 - far))
    return float(u + stats.genpareto.isf(far / p_u, xi, scale=sigma))


def _diagnose(methods, results) -> None:
    """The oracle and alternative tables of docs/outputs.md (see the module docstring)."""

    def background_only(lo_q):
        def rule(scores, gt, far):
            ok = np.isfinite(scores)
            return _gpd_tail(scores[~gt & ok], far, lo_q)

        return rule

    def trimmed(scores, gt, far):
        s = np.sort(scores[np.isfinite(scores)])
        m = int(gt.sum())
        return _gpd_tail(s[: s.size - m], far, 0.90)

    rules = [
        (
            "oracle: GPD on the background pixels only, above their 90th percentile",
            background_only(0.90),
        ),
        (
            "oracle: GPD on the background pixels only, above their 98th percentile",
            background_only(0.98),
        ),
        (
            "empirical 1 - far quantile of all pixels",
            lambda s, g, f: float(np.quantile(s[np.isfinite(s)], 1 - f)),
        ),
        (
            "GPD on every score above the 90th percentile (no trimming)",
            lambda s, g, f: _gpd_tail(s[np.isfinite(s)], f, 0.90),
        ),
        (
            "GPD above the 90th percentile after trimming the top m = #anomaly pixels (oracle m)",
            trimmed,
        ),
        (
            "GPD on the 95-99th percentile window, the top 1 % censored",
            lambda s, g, f: _gpd_censored(s[np.isfinite(s)], f),
        ),
    ]
    for label, rule in rules:
        print(f"\n{label}\n")
        _table(methods, results, rule, with_gt=True)
    print("\noracle: fraction of all pixels above the background's 1 - far quantile, / far\n")
    print("| method | " + " | ".join(f"far {f:g}" for f in FARS) + " |")
    print("|---|" + "---|" * len(FARS))
    for method in methods:
        cells = []
        for far in FARS:
            above = total = 0
            for scores, gt in results[method]:
                ok = np.isfinite(scores)
                t = np.quantile(scores[~gt & ok], 1 - far)
                above += int(np.count_nonzero(scores[ok] > t))
                total += int(ok.sum())
            cells.append(f"{above / total / far:.2f}")
        print(f"| {method} | " + " | ".join(cells) + " |")


def _loso_bounds(methods, results, names: list[str]) -> None:
    """Choose ``FLAGGED_BOUNDS`` leaving one scene out; print the held-out pooled ratios.

    For each bounds pair of :data:`BOUNDS_GRID` and each scene, method and rate, the flagged
    background count (the GPD tail quantile is fitted once per cell). The criterion on a set
    of scenes: the largest ``|log(pooled ratio)|`` over methods and the rates of
    :data:`LOSO_FARS`, ties broken by the mean. For each scene the pair best on the other 11
    is applied to it; the held-out counts, pooled over the 12 folds, give the table. Also
    printed: the same rule applied to each scene's background pixels alone (a scene without
    labelled anomalies).
    """
    n = len(names)
    counts: dict[tuple, tuple[int, int]] = {}
    for method in methods:
        for i, (scores, gt) in enumerate(results[method]):
            ok = np.isfinite(scores)
            for part, s in (("scene", scores[ok]), ("background", scores[ok & ~gt])):
                bg = np.sort(scores[ok & ~gt])
                for far in FARS:
                    tail, _ = gpd_tail_quantile(s, far)
                    for bounds in BOUNDS_GRID:
                        t, _ = bounded_far_threshold(s, far, tail, bounds)
                        flagged = bg.size - int(np.searchsorted(bg, t, side="right"))
                        counts[bounds, part, method, far, i] = (flagged, bg.size)

    def pooled(bounds, part, method, far, scenes) -> float:
        k = sum(counts[bounds, part, method, far, i][0] for i in scenes)
        total = sum(counts[bounds, part, method, far, i][1] for i in scenes)
        return k / total / far

    def criterion(bounds, scenes) -> tuple[float, float]:
        logs = [
            abs(np.log(max(pooled(bounds, "scene", m, f, scenes), 1e-9)))
            for m in methods
            for f in LOSO_FARS
        ]
        return max(logs), float(np.mean(logs))

    print("\nflagged-count bounds (lo, hi), all 12 scenes (in sample): "
          "max / mean |log pooled ratio| over methods at far 1e-3..1e-2\n")  # fmt: skip
    for bounds in BOUNDS_GRID:
        worst, mean = criterion(bounds, range(n))
        print(f"  {bounds}: {worst:.3f} / {mean:.3f}")
    chosen = [
        min(BOUNDS_GRID, key=lambda b, i=i: criterion(b, [j for j in range(n) if j != i]))
        for i in range(n)
    ]
    print("\nchosen on the other 11 scenes: " + ", ".join(
        f"{name} {b}" for name, b in zip(names, chosen, strict=True)))  # fmt: skip
    for part in ("scene", "background"):
        title = "held-out scenes" if part == "scene" else "held-out scenes' background alone"
        print(f"\n{title}: pooled flagged background fraction / far\n")
        print("| method | " + " | ".join(f"far {f:g}" for f in FARS) + " |")
        print("|---|" + "---|" * len(FARS))
        within = within_target = 0
        for method in methods:
            cells = []
            for far in FARS:
                k = sum(counts[chosen[i], part, method, far, i][0] for i in range(n))
                total = sum(counts[chosen[i], part, method, far, i][1] for i in range(n))
                ratio = k / total / far
                inside = 1 / 1.5 <= ratio <= 1.5
                within += inside
                within_target += inside and far in (1e-3, 1e-2)
                cells.append(f"{ratio:.2f}")
            print(f"| {method} | " + " | ".join(cells) + " |")
        print(f"\npooled cells within 1.5x: {within}/{len(methods) * len(FARS)}; "
              f"at 1e-3 and 1e-2: {within_target}/{2 * len(methods)}")  # fmt: skip


def _table(methods, results, rule, with_gt: bool = False) -> None:
    """Pooled and per-scene ratios; the last line counts the pooled cells within 1.5x."""
    print("| method | " + " | ".join(f"far {f:g}" for f in FARS) + " |")
    print("|---|" + "---|" * len(FARS))
    within = 0
    for method in methods:
        cells = []
        for far in FARS:
            flagged = total = 0
            ratios = []
            for scores, gt in results[method]:
                t = rule(scores, gt, far) if with_gt else rule(scores, far)
                bg = (~gt) & np.isfinite(scores)
                n = int(np.count_nonzero(scores[bg] > t))
                flagged += n
                total += int(bg.sum())
                ratios.append(n / bg.sum() / far)
            pooled = flagged / total / far
            within += 1 / 1.5 <= pooled <= 1.5
            cells.append(f"{pooled:.2f} [{min(ratios):.2f}..{max(ratios):.2f}]")
        print(f"| {method} | " + " | ".join(cells) + " |")
    print(f"\npooled cells within 1.5x: {within}/{len(methods) * len(FARS)}")


if __name__ == "__main__":
    main()
