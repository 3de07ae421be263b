"""One scene (or a batch) from file to a published run folder: the library's detect pipeline.

:func:`detect_scene` reads a scene, fits a detector, thresholds the scores,
finds the detections and writes every output of the run into a hidden staging
folder, published at the end as ``OUT/STEM_METHOD/`` in one atomic step
(:func:`rednmf.io.writers.staged_dir`). An error, ``KeyboardInterrupt`` or
SIGTERM (turned into :class:`Interrupted` while a run is in progress) at any
moment leaves the earlier run folder byte for byte as it was, and no temporary
file. The output folder is held by one run at a time
(:func:`rednmf.io.writers.lock_dir`): a second run is refused, or waits with
``wait=True``.

A run folder ``STEM_METHOD/`` holds ``STEM_METHOD_`` + ``scores.tif``,
``scores.npy``, ``detections.tif``, ``detections.csv``, ``overview.png``,
``report.html``, ``summary.json``; with a CRS ``detections.geojson`` (RFC 7946,
WGS84) and ``detections.gpkg`` (native CRS), without one
``detections_pixels.json`` (footprints in pixel space); with ground truth
``roc.svg``.
:func:`detect_batch` runs several scenes into one folder and adds
``batch_summary.csv``. What a run does is one :class:`rednmf.options.RunOptions`,
checked once when built (both functions also take its fields as keyword
arguments).

Nothing here prints: the command line (:mod:`rednmf.cli`) parses and prints.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import platform
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from rednmf._memory import peak_rss_mib
from rednmf._signals import handling, signals_received
from rednmf.exceptions import InputError, Interrupted, one_line
from rednmf.inputs import expand_inputs
from rednmf.options import RunOptions

if TYPE_CHECKING:  # pragma: no cover
    from rednmf.io.scene import Scene

__all__ = [
    "BATCH_COLUMNS",
    "Interrupted",
    "RunOptions",
    "detect_batch",
    "detect_scene",
    "detect_synthetic",
    "run_name",
]

#: Columns of ``batch_summary.csv``.
BATCH_COLUMNS = [
    "scene",
    "path",
    "method",
    "status",
    "auc",
    "n_detections",
    "threshold",
    "seconds",
    "run_dir",
    "error",
]


def run_name(stem: str, method: str) -> str:
    """The run folder (and file prefix) of ``method`` on the scene ``stem``: ``STEM_METHOD``."""
    return f"{stem}_{method}"


# -- provenance ------------------------------------------------------------------------
def _file_record(path: Path, role: str) -> dict[str, Any]:
    from rednmf.io.mat import file_sha256

    return {
        "role": role,
        "path": str(path.resolve()),
        "bytes": path.stat().st_size,
        "sha256": file_sha256(path),
    }


def _input_files(scene: Any, gt: str | None, mask: str | None) -> list[dict[str, Any]]:
    """Every file the run read, with size and sha256."""
    from rednmf.io.scene import split_var

    files: list[dict[str, Any]] = []
    if scene.path is None:  # built in memory (detect_synthetic): no file to record
        files.append({"role": "scene", "path": None, "source": scene.format})
        return files
    path = Path(scene.path)
    files.append(_file_record(path, "scene"))
    if path.suffix.lower() == ".hdr" or scene.format.startswith("ENVI"):
        from rednmf.io.envi import find_envi_data, find_envi_header

        header = path if path.suffix.lower() == ".hdr" else find_envi_header(path)
        if header is not None and header != path:
            files.append(_file_record(header, "envi header"))
        if header is not None:
            data = find_envi_data(header)
            if data != path:
                files.append(_file_record(data, "envi data"))
    for spec, role in ((gt, "ground truth"), (mask, "mask")):
        if spec is not None:
            files.append(_file_record(split_var(spec)[0], role))
    return files


def _in_background(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """Start ``fn(*args)`` in a daemon thread; the callable returned waits for its result.

    For I/O and hashing that release the GIL (the inputs' sha256, while the fit runs).
    An exception of ``fn`` is raised by the callable. A run stopped by a signal does not
    wait for the thread.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"rednmf-{fn.__name__}", daemon=True)
    thread.start()

    def result() -> Any:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


def _environment() -> dict[str, Any]:
    import scipy
    from threadpoolctl import threadpool_info

    from rednmf import __version__

    blas = [
        {
            "api": info.get("internal_api"),
            "version": info.get("version"),
            "threads": info.get("num_threads"),
        }
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "rednmf": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        **{
            name: installed(name)
            for name in ("scikit-learn", "numba", "rasterio", "torch", "dask", "spectral")
        },
        "blas": blas,
        "platform": platform.platform(),
    }


# -- one scene ------------------------------------------------------------------------
def _roc(
    scores: np.ndarray, gt: np.ndarray | None, notes: list[str]
) -> tuple[float | None, tuple[np.ndarray, np.ndarray] | None]:
    """The AUC and the ROC curve ``(fpr, tpr)`` (one sort of the scores), or None, None."""
    if gt is None:
        return None, None
    if not gt.any() or gt.all():
        notes.append("the ground truth has no anomalous or no background pixel; AUC not computed")
        return None, None
    from rednmf.metrics import roc_curve_auc

    try:
        fpr, tpr, auc = roc_curve_auc(scores, gt)
    except InputError as exc:  # e.g. every anomaly pixel is no-data: report, do not fail
        notes.append(f"{one_line(exc)}; AUC not computed")
        return None, None
    return auc, (fpr, tpr)


def _pd_pf(detected: np.ndarray, gt: np.ndarray | None, valid: np.ndarray) -> dict[str, Any]:
    if gt is None:
        return {"pd": None, "pf": None}
    truth = gt & valid
    back = ~gt & valid
    return {
        "pd": float(detected[truth].mean()) if truth.any() else None,
        "pf": float(detected[back].mean()) if back.any() else None,
    }


@contextlib.contextmanager
def noted(notes: list[str]) -> Iterator[None]:
    """Record the warnings raised in the block as one-line ``notes`` (each once), unprinted.

    The run summary lists them under ``warnings``; the command line prints them.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        msg = one_line(w.message)
        if msg not in notes:
            notes.append(msg)


def _check_data(cube: Any) -> None:
    """The checks of the data that ``fit`` makes first, before the detectors are imported.

    Only for a floating-point cube in memory (integers cannot be infinite or
    overflow, and converting them would copy the cube; a memory map or a
    raster read on demand is checked by the fit, block by block): one
    summation and two extremes.
    """
    if type(cube) is np.ndarray and cube.dtype.kind == "f":
        from rednmf._validation import check_cube, check_magnitude

        check_magnitude(check_cube(cube, min_pixels=1, min_bands=1, allow_nan=True))


def _run_one(
    path: Any,
    out: Path,
    options: RunOptions,
    callback: Callable[[int, float], None] | None,
    since: int | None = None,
) -> dict[str, Any]:
    """Everything of :func:`detect_scene` but the lock: read, fit, stage, publish.

    ``options`` were validated when they were built. A signal noted beyond the
    first ``since`` (:func:`rednmf._signals.signals_received`; default: those
    noted when the run starts) whose exception was swallowed (in a library, or
    where Python cannot raise) keeps the run from being published.
    """
    from rednmf.detectors.registry import get_detector
    from rednmf.io import read_map, read_scene
    from rednmf.io.scene import Scene
    from rednmf.thresholding import ThresholdChoice, choose_threshold

    if since is None:
        since = len(signals_received())
    phases: dict[str, float] = {}
    peaks: dict[str, float | None] = {}  # the process's peak RSS at the end of each phase
    notes: list[str] = []
    t0 = time.perf_counter()
    method, gt, mask, far = options.method, options.gt, options.mask, options.far
    if isinstance(path, Scene):
        scene = path
    else:
        with noted(notes):
            scene = read_scene(
                path, data_var=options.data_var, gt_var=options.gt_var, lazy=options.lazy
            )
    rows, cols, bands = scene.shape
    grid = (scene.crs, scene.transform)
    if gt is not None:
        scene.gt, var = read_map(gt, (rows, cols), grid=grid)
        scene.gt_var = var or Path(gt).name
    use = (
        None
        if mask is None
        else read_map(mask, (rows, cols), what="mask", option="--mask", grid=grid)[0]
    )
    # the checksums of the inputs (a second pass over the files) overlap the fit
    inputs = _in_background(_input_files, scene, gt, mask)
    phases["read"] = time.perf_counter() - t0
    peaks["read"] = peak_rss_mib()

    t0 = time.perf_counter()  # the data check, the detector's import and construction
    _check_data(scene.cube)
    detector = get_detector(method, **options.detector_params)
    phases["setup"] = time.perf_counter() - t0
    peaks["setup"] = peak_rss_mib()

    t0 = time.perf_counter()  # the detector's fit and scores, nothing else
    with noted(notes):
        detector.fit(scene.cube, mask=use, callback=callback)
    phases["fit"] = time.perf_counter() - t0
    peaks["fit"] = peak_rss_mib()

    t0 = time.perf_counter()
    scores = detector.decision_scores_
    valid = detector.valid_mask_
    if options.threshold is None and far is None:  # contamination: the detector's own threshold
        rule = ThresholdChoice(
            float(detector.threshold_), "contamination", float(detector.contamination)
        )
    else:
        rule = choose_threshold(scores[valid], threshold=options.threshold, far=far)
    if rule.fallback is not None:
        notes.append(f"--far {far:g}: {rule.fallback}")
    n_valid = int(valid.sum())
    if rule.rule == "contamination" and rule.setting * n_valid < 1 - 1e-9:
        step = 10.0 ** (math.floor(math.log10(1 / n_valid)) - 1)  # two significant digits
        least = math.ceil(1 / n_valid / step - 1e-9) * step  # the smallest that flags one
        notes.append(
            f"contamination {rule.setting:g} of {n_valid} valid pixels flags none; pass "
            f"--contamination {least:.2g} or more to flag one"
        )
    if not valid.all() and (partial := scene.partial_nodata_pixels()):
        value = "" if scene.nodata is None else f" (no-data value {scene.nodata:g})"
        notes.append(
            f"{partial} of {valid.size} pixels ({100 * partial / valid.size:.1f} %) are no-data"
            f"{value} in some bands only and are left out; if that value occurs in valid "
            "data, the file's no-data value is wrong"
        )
    thr = rule.value
    with np.errstate(invalid="ignore"):
        above = valid & (scores > thr)
    from rednmf.io.detections import find_detections, keep_detections

    found, labels = find_detections(scores, above, scene.transform, crs=scene.crs)
    detections, labels = keep_detections(
        found, labels, min_area=options.min_area, exclude_border=options.exclude_border
    )
    detected = labels > 0
    auc, curve = _roc(scores, scene.gt, notes)
    input_files = inputs()  # the checksums, if the fit was faster than they were
    phases["threshold"] = time.perf_counter() - t0
    peaks["threshold"] = peak_rss_mib()

    name = run_name(scene.name, method)
    run_dir = out / name
    summary: dict[str, Any] = {
        "scene": scene.name,
        "path": None if isinstance(path, Scene) else str(Path(path).resolve()),
        "format": scene.format,
        "inputs": input_files,
        "data_var": scene.data_var,
        "gt_var": scene.gt_var,
        "variables": scene.variables,
        "shape": list(scene.shape),
        "crs": scene.crs,
        "transform": None if scene.transform is None else list(scene.transform),
        "wavelengths": None if scene.wavelengths is None else scene.wavelengths.tolist(),
        "wavelength_units": scene.wavelength_units,
        "method": method,
        "detector": type(detector).__name__,
        "params": detector.get_params(),
        "seed": detector.get_params().get("random_state"),
        "n_iter": None if getattr(detector, "n_iter_", None) is None else int(detector.n_iter_),
        "objective": None
        if getattr(detector, "objective_", None) is None
        else [float(v) for v in detector.objective_],
        "threshold_rule": rule.text,
        "threshold_rule_name": rule.rule,
        "threshold_rule_value": rule.setting,
        "threshold_fallback": rule.fallback,
        "threshold": thr,
        "min_area": options.min_area,
        "exclude_border": options.exclude_border,
        "n_above_threshold": int(above.sum()),
        "n_detections": len(detections),
        "n_detected_pixels": int(detected.sum()),
        "auc": auc,
        **_pd_pf(detected, scene.gt, valid),
        "nodata_pixels": int(scores.size - int(valid.sum())),
        "bands_used": int(detector.bands_kept_.size),
        "warnings": notes,
        "run_dir": str(run_dir.resolve()),
        "environment": _environment(),
    }
    window = _window_of(detector)
    # the writes need the scores and the valid mask only: the detector's other fitted
    # arrays (REDNMF's anomaly and evidence, each the size of the cube) are freed first
    del detector

    t0 = time.perf_counter()
    # what the writes need of the cube (the composite, the report's spectra), taken first;
    # the cube is then let go (freed when this run read it) before the writes import
    # Pillow and GDAL and draw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels or bands
        drawn = _SceneFacts.take(scene, scores, valid, thr, report=options.report)
    del scene
    from rednmf.io.writers import staged_dir, write_json

    summary["seconds"] = {k: round(v, 4) for k, v in phases.items()}  # the report shows these
    summary["peak_rss_mib"] = peaks

    with staged_dir(run_dir, since=since) as stage, warnings.catch_warnings():
        # NumPy's RuntimeWarnings on all-NaN pixels or bands (their statistics are NaN,
        # shown as such) say nothing the summary does not: not printed
        warnings.simplefilter("ignore", RuntimeWarning)
        files = _write_outputs(
            stage,
            name,
            drawn,
            scores,
            valid,
            window,
            method,
            thr,
            detections,
            labels,
            curve,
            summary,
            report=options.report,
        )
        summary["files"] = {k: str(run_dir.resolve() / v.name) for k, v in files.items()}
        phases["write"] = time.perf_counter() - t0
        summary["seconds"] = {k: round(v, 4) for k, v in phases.items()}
        peaks["write"] = peak_rss_mib()  # summary["peak_rss_mib"] is this dict
        summary["files"]["summary"] = str(run_dir.resolve() / f"{name}_summary.json")
        write_json(stage / f"{name}_summary.json", summary)
    return summary


class _SceneFacts(NamedTuple):
    """What the writes need of a scene: no cube, its composite and spectra codes instead."""

    name: str
    gt: np.ndarray | None
    crs: str | None
    transform: tuple[float, ...] | None
    wavelengths: np.ndarray | None
    bands: int
    image: np.ndarray
    spectra: dict[str, Any] | None

    @classmethod
    def take(
        cls, scene: Scene, scores: np.ndarray, valid: np.ndarray, thr: float, *, report: bool
    ) -> _SceneFacts:
        """Read the composite (and, with a report, the spectra codes) from the cube."""
        from rednmf.composite import scene_rgb

        spectra = None
        if report:
            from rednmf.report.scene import scene_spectra

            spectra = scene_spectra(scene.cube, scores, valid, thr)
        return cls(
            name=scene.name,
            gt=scene.gt,
            crs=scene.crs,
            transform=scene.transform,
            wavelengths=scene.wavelengths,
            bands=scene.shape[2],
            image=scene_rgb(scene.cube, scene.wavelengths, valid=valid),
            spectra=spectra,
        )


def _write_outputs(
    stage: Path,
    name: str,
    scene: _SceneFacts,
    scores: np.ndarray,
    valid: np.ndarray,
    window: tuple[int, int],
    method: str,
    thr: float,
    detections: list[Any],
    labels: np.ndarray,
    curve: tuple[np.ndarray, np.ndarray] | None,
    summary: dict[str, Any],
    *,
    report: bool,
) -> dict[str, Path]:
    """Write every output of a run into ``stage``; return them by kind."""
    auc = summary["auc"]
    from rednmf import overview
    from rednmf.io.detections import (
        detections_geojson,
        detections_pixel_json,
        write_detections_csv,
        write_detections_gpkg,
        write_detections_json,
    )
    from rednmf.io.geotiff import write_geotiff
    from rednmf.io.writers import write_npy

    geo = {"crs": scene.crs, "transform": scene.transform}
    det_map = np.where(valid, (labels > 0).astype(np.uint8), np.uint8(255))
    files: dict[str, Path] = {}
    files["scores_tif"] = write_geotiff(
        stage / f"{name}_scores.tif", scores, nodata=float("nan"), **geo
    )
    files["scores_npy"] = write_npy(stage / f"{name}_scores.npy", scores)
    files["detections_tif"] = write_geotiff(
        stage / f"{name}_detections.tif", det_map, nodata=255, **geo
    )
    if scene.crs is not None:  # what a GIS can place: WGS84 GeoJSON, native-CRS GeoPackage
        files["geojson"] = write_detections_json(
            stage / f"{name}_detections.geojson", detections_geojson(detections, labels, **geo)
        )
        files["gpkg"] = write_detections_gpkg(
            stage / f"{name}_detections.gpkg", detections, labels, **geo
        )
    else:  # no CRS: footprints in pixel space, under a name that says so
        files["pixels_json"] = write_detections_json(
            stage / f"{name}_detections_pixels.json", detections_pixel_json(detections, labels)
        )
    files["csv"] = write_detections_csv(stage / f"{name}_detections.csv", detections)
    from rednmf.composite import composite_title

    files["overview"] = overview.save_overview(
        stage / f"{name}_overview.png",
        scene.image,
        scores,
        labels,
        scene.gt,
        threshold=thr,
        image_title=composite_title(scene.wavelengths, scene.bands),
        title=f"{method} on {scene.name}",
        subtitle=f"threshold {thr:.4g} ({summary['threshold_rule']}), "
        f"{len(detections)} detection(s)" + ("" if auc is None else f", AUC {auc:.4f}"),
    )
    if curve is not None:
        from rednmf.svgplot import save_roc_svg

        files["roc"] = save_roc_svg(
            stage / f"{name}_roc.svg", *curve, auc=auc, label=f"{method} on {scene.name}"
        )
    if report and scene.spectra is not None:
        from rednmf.report import write_scene_report

        files["report"] = write_scene_report(
            stage / f"{name}_report.html",
            spectra=scene.spectra,
            image=scene.image,
            scores=scores,
            valid=valid,
            gt=scene.gt,
            threshold=thr,
            detections=detections,
            labels=labels,
            summary=summary,
            wavelengths=scene.wavelengths,
            window=window,
        )
    return files


def _window_of(detector: Any) -> tuple[int, int]:
    """The (inner, outer) window of a local detector, for the report's background statistics."""
    p = detector.get_params()  # a scorer's window is scorer__inner, scorer__outer
    inner, outer = p.get("inner", p.get("scorer__inner")), p.get("outer", p.get("scorer__outer"))
    inner = inner if isinstance(inner, int) else 3
    outer = outer if isinstance(outer, int) else 15
    return int(inner), int(outer)


def detect_scene(
    path: str | os.PathLike[str] | Scene,
    out: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    on_wait: Callable[[Path], None] | None = None,
    callback: Callable[[int, float], None] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Detect anomalies in one scene and publish its run folder ``out/STEM_METHOD``.

    Parameters
    ----------
    path : str, path-like or Scene
        The scene: a file (any format :func:`rednmf.io.read_scene` reads) or a
        :class:`rednmf.io.scene.Scene` already in memory (its ``name`` names
        the run; ``data_var``, ``gt_var`` and ``lazy`` are then not used).
    out : str or path-like
        The output folder; created if missing.
    options : RunOptions, optional
        What the run does (:class:`rednmf.options.RunOptions`), validated when built.
    on_wait : callable, optional
        ``on_wait(out)`` when ``wait`` is True and ``out`` is held by another run, before
        waiting (:func:`rednmf.io.writers.lock_dir`).
    callback : callable, optional
        ``callback(iteration, objective)`` during the fit (progress bars).
    **fields
        Fields of :class:`~rednmf.options.RunOptions` (``method``, ``params``,
        ``threshold``, ``contamination``, ``far``, ``data_var``, ``gt_var``, ``gt``,
        ``mask``, ``min_area``, ``exclude_border``, ``lazy``, ``report``, ``wait``):
        the options, or those replacing the ones of ``options``.

    Returns
    -------
    dict
        The run summary, also written as ``STEM_METHOD_summary.json``.

    Raises
    ------
    InputError
        On bad input or options, or when ``out`` is held by another run.
    KeyboardInterrupt, Interrupted
        When stopped by SIGINT / SIGTERM; nothing of the run is left on disk.
    """
    options = RunOptions.of(options, **fields)
    from rednmf.io.scene import Scene
    from rednmf.io.writers import check_output_dir, lock_dir, remove_stale_staging

    check_output_dir(out)
    # SIGTERM -> Interrupted (SIGINT raises KeyboardInterrupt): both unwind the staging.
    with handling(signal.SIGTERM), lock_dir(out, wait=options.wait, on_wait=on_wait) as folder:
        remove_stale_staging(folder)
        return _run_one(path if isinstance(path, Scene) else Path(path), folder, options, callback)


def detect_synthetic(
    out: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Run :func:`detect_scene` on the synthetic scene of :func:`rednmf.datasets.make_scene`.

    The scene (``make_scene(random_state=seed)``, with its ground truth) is
    built in memory and published as ``out/synthetic_METHOD/`` like any other
    run; ``rednmf demo`` without ``--data`` is this function.

    Parameters
    ----------
    out : str or path-like
        The output folder.
    options : RunOptions, optional
        As in :func:`detect_scene`.
    seed : int, default 0
        Seed of the scene and, when the detector has one, of its
        ``random_state`` (unless the options' ``params`` set it).
    callback : callable, optional
        As in :func:`detect_scene`.
    **fields
        Fields of :class:`~rednmf.options.RunOptions`, as in :func:`detect_scene`.

    Returns
    -------
    dict
        The run summary.
    """
    from rednmf import datasets
    from rednmf.detectors.registry import method_params
    from rednmf.io.scene import Scene

    given = (
        {}
        if options is None
        else {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
    )
    given.update(fields)
    params = dict(given.get("params") or {})
    if "random_state" in method_params(given.get("method", "rednmf")):
        params.setdefault("random_state", seed)
    options = RunOptions(**{**given, "params": params})
    cube, gt = datasets.make_scene(random_state=seed)
    scene = Scene(
        cube=cube,
        gt=np.asarray(gt) != 0,
        name="synthetic",
        format=f"synthetic: rednmf.datasets.make_scene(random_state={seed})",
        variables={"data": "x".join(str(n) for n in cube.shape) + f" {cube.dtype}"},
        data_var="data",
        gt_var="gt",
    )
    return detect_scene(scene, out, options, callback=callback)


def detect_batch(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    on_wait: Callable[[Path], None] | None = None,
    on_scene: Callable[[int, int, Path, dict[str, Any] | None], None] | None = None,
    callback: Callable[[int, float], None] | None = None,
    explain: Callable[[str], str] | None = None,
    **fields: Any,
) -> list[dict[str, Any]]:
    """Run :func:`detect_scene` on every input; one failing scene does not stop the others.

    Parameters
    ----------
    paths : sequence of str or path-like
        Files, folders and glob patterns (:func:`rednmf.inputs.expand_inputs`).
    out : str or path-like
        The output folder; every scene gets its run folder there, and
        ``batch_summary.csv`` lists them all.
    options : RunOptions, optional
        What every run does, as in :func:`detect_scene`.
    on_wait : callable, optional
        As in :func:`detect_scene`.
    on_scene : callable, optional
        ``on_scene(index, total, path, result)`` before each scene (result
        None) and after it (its row), for progress displays.
    callback : callable, optional
        As in :func:`detect_scene`, for every fit.
    explain : callable, optional
        Rewrites a failed scene's one-line error for its row (the command line
        turns the detectors' ``outer=11`` into its ``--outer 11``).
    **fields
        Fields of :class:`~rednmf.options.RunOptions`, as in :func:`detect_scene`.

    Returns
    -------
    list of dict
        One row per scene: ``status`` ``'ok'`` with the run summary under
        ``summary``, or ``'error'`` with the one-line ``error``.
    """
    from rednmf.io.writers import check_output_dir, lock_dir, remove_stale_staging

    files = expand_inputs(paths)
    options = RunOptions.of(options, **fields)
    check_output_dir(out)
    rows: list[dict[str, Any]] = []
    names: set[str] = set()
    # SIGTERM -> Interrupted (SIGINT raises KeyboardInterrupt): both unwind the staging.
    with handling(signal.SIGTERM), lock_dir(out, wait=options.wait, on_wait=on_wait) as folder:
        remove_stale_staging(folder)
        try:
            _batch_loop(files, folder, options, callback, rows, names, on_scene, explain)
        except (KeyboardInterrupt, Interrupted) as exc:
            _write_batch_summary(folder, _interrupted_rows(files, folder, options, rows, exc))
            raise
        _write_batch_summary(folder, rows)
    return rows


def _write_batch_summary(folder: Path, rows: list[dict[str, Any]]) -> None:
    """``batch_summary.csv``, written and recorded as published with the signals held.

    The rows of an earlier batch into the same folder are kept first
    (:func:`_earlier_rows`), so the file lists every run folder published there.
    """
    from rednmf.io.writers import mark_published, signals_blocked, write_csv

    target = folder / "batch_summary.csv"
    rows = [*_earlier_rows(target, rows), *rows]
    with signals_blocked():
        write_csv(target, rows, BATCH_COLUMNS)
        mark_published(target)


def _earlier_rows(path: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of an earlier ``batch_summary.csv`` that still describe a run folder on disk.

    An ``ok`` row is kept when its run folder (named for its scene and method) is
    still in the output folder and this batch did not publish the same scene and
    method again (an ``ok`` row of ``rows``); rows of failed scenes describe
    nothing on disk and are dropped. A file that cannot be read is moved aside to
    ``batch_summary.unread.csv``, with a warning.
    """
    if not path.is_file():
        return []
    again = {(r["scene"], r["method"]) for r in rows if r.get("status") == "ok"}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            earlier = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        aside = path.with_name("batch_summary.unread.csv")
        os.replace(path, aside)
        warnings.warn(
            f"the earlier {path.name} could not be read ({one_line(exc)}); it is kept as "
            f"{aside.name} and its rows are not carried over",
            UserWarning,
            stacklevel=3,
        )
        return []
    return [
        r
        for r in earlier
        if r.get("status") == "ok"
        and (r.get("scene"), r.get("method")) not in again
        and r.get("run_dir")
        and Path(r["run_dir"]).name == run_name(str(r["scene"]), str(r["method"]))
        and (path.parent / Path(r["run_dir"]).name).is_dir()
    ]


def _interrupted_rows(
    files: list[Path],
    folder: Path,
    options: RunOptions,
    rows: list[dict[str, Any]],
    exc: BaseException,
) -> list[dict[str, Any]]:
    """The batch's rows when a signal stopped it: the scenes done, then the rest, as they are.

    The scene in progress is ``ok`` if its run folder was published before the signal
    (its summary is read back), else ``interrupted``; the scenes after it ``not run``.
    """
    import json

    from rednmf.io.writers import published

    what = "SIGINT" if isinstance(exc, KeyboardInterrupt) else str(exc).split()[-1]
    out = list(rows)
    done = set(published())
    for path in files[len(rows) :]:
        row: dict[str, Any] = {"scene": path.stem, "path": str(path), "method": options.method}
        run_dir = folder / run_name(path.stem, options.method)
        if len(out) == len(rows) and run_dir in done:
            summary = json.loads((run_dir / f"{run_dir.name}_summary.json").read_text())
            row.update(_published_row(summary))
        elif len(out) == len(rows):
            row.update(status="interrupted", error=f"stopped by {what}; nothing of it written")
        else:
            row.update(status="not run", error=f"not started: the batch was stopped by {what}")
        out.append(row)
    return out


def _published_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``batch_summary.csv`` that a published run's summary gives."""
    return {
        "status": "ok",
        **{k: summary[k] for k in ("auc", "n_detections", "threshold", "run_dir")},
    }


def _batch_loop(
    files: list[Path],
    folder: Path,
    options: RunOptions,
    callback: Callable[[int, float], None] | None,
    rows: list[dict[str, Any]],
    names: set[str],
    on_scene: Callable[[int, int, Path, dict[str, Any] | None], None] | None,
    explain: Callable[[str], str] | None = None,
) -> None:
    """Run every scene of a batch into ``folder``, appending one row per scene to ``rows``.

    A signal whose exception was swallowed since the batch started stops it before
    the next scene (and keeps the scene it landed in from being published).
    """
    since = len(signals_received())
    for i, path in enumerate(files):
        if len(received := signals_received()) > since:
            raise Interrupted(received[since])
        if on_scene is not None:
            on_scene(i, len(files), path, None)
        row: dict[str, Any] = {
            "scene": path.stem,
            "path": str(path),
            "method": options.method,
        }
        start = time.perf_counter()
        try:
            name = run_name(path.stem, options.method)
            if name in names:
                raise InputError(
                    f"another input of this batch is also named {path.stem}; rename one "
                    "or run them into different --out folders"
                )
            names.add(name)
            summary = _run_one(path, folder, options, callback, since)
            row.update(_published_row(summary), summary=summary)
        except InputError as exc:
            row.update(status="error", error=(explain or str)(one_line(exc)))
        row["seconds"] = round(time.perf_counter() - start, 3)
        rows.append(row)
        if on_scene is not None:
            on_scene(i, len(files), path, row)
