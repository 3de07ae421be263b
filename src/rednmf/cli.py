"""The ``rednmf`` command line: ``detect``, ``info``, ``demo``, ``methods``, ``bench``,
``--version``.

This module only wires :mod:`rednmf.io`, :mod:`rednmf.detectors.registry`,
:mod:`rednmf.metrics` and :mod:`rednmf.plotting` together. Every user error
(an :class:`~rednmf.exceptions.InputError` or a command-line usage error) is
printed as one line ``error: <message>`` on stderr, with exit status 2 and no
traceback.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from rednmf._version import __version__
from rednmf.exceptions import InputError, Interrupted, one_line

__all__ = ["app", "main", "parse_param"]

#: Exit status of every user error.
EXIT_USAGE = 2

app = typer.Typer(
    name="rednmf",
    help="Hyperspectral anomaly detection with REDNMF (Moradi et al. 2026) and its baselines.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


# -- helpers ----------------------------------------------------------------
def _flag(*names: str, **kwargs: Any) -> Any:
    """A boolean option shown as a flag (``--json``), not as ``--json <bool>``, in the help."""
    return typer.Option(*names, metavar="", **kwargs)


def _fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise."""
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()
    return typer.Exit(EXIT_USAGE)


@contextlib.contextmanager
def _guard() -> Iterator[None]:
    """Turn an :class:`InputError` raised by a command into a one-line error and exit 2."""
    try:
        yield
    except InputError as exc:
        raise _fail(str(exc)) from None


#: The flag of ``detect`` that sets each constructor parameter.
PARAM_FLAGS = {
    "n_components": "--rank",
    "lam": "--lam",
    "beta": "--beta",
    "max_iter": "--max-iter",
    "tol": "--tol",
    "random_state": "--seed",
    "scorer": "--scorer",
    "inner": "--inner",
    "outer": "--outer",
}

#: The smallest value of each numeric flag: every method that has the parameter refuses
#: less (tests/test_cli.py holds this against the classes' constraints), so the flag is
#: refused before scikit-learn is imported. A value at or above it is checked by the
#: method's own constraints (scikit-learn), like every ``--param``.
FLAG_LOW: dict[str, int] = {
    "n_components": 1,
    "lam": 0,
    "beta": 0,
    "max_iter": 1,
    "tol": 0,
    "random_state": 0,
    "inner": 1,
    "outer": 1,
}


def _check_flags(named: dict[str, Any]) -> None:
    """Refuse a numeric flag below the smallest value any method accepts (no import).

    The error names the parameter; :func:`_naming_flags` starts it with the flag typed.
    """
    for key, low in FLAG_LOW.items():
        value = named.get(key)
        if value is not None and value < low:
            flag = PARAM_FLAGS[key]
            raise InputError(f"{key!r} must be >= {low}; pass {flag} {low} or above")


@contextlib.contextmanager
def _naming_flags(named: dict[str, Any]) -> Iterator[None]:
    """Start an error about a parameter set by a flag with that flag and value (``--rank 0:``).

    The detectors name their constructor parameters (``'n_components'``); the user typed
    the flag.
    """
    try:
        yield
    except InputError as exc:
        text = _as_flags(str(exc))
        typed = [
            f"{PARAM_FLAGS[k]} {v}"
            for k, v in named.items()
            if k in PARAM_FLAGS
            and v is not None
            and any(name in text for name in (f"'{k}'", f"`{k}`", f"{PARAM_FLAGS[k]} "))
        ]
        if not typed:
            if text == str(exc):
                raise
            raise InputError(text) from exc
        raise InputError(f"{', '.join(typed)}: {text}") from exc


def _as_flags(text: str) -> str:
    """A detector's advice in the flags of ``detect``.

    ``outer=19`` becomes ``--outer 19``, ``a larger outer`` ``a larger --outer`` and
    ``(method 'grx')`` ``(--method grx)``.
    """
    import re

    def flag(match: re.Match[str]) -> str:
        return f"{PARAM_FLAGS[match[1]]} {match[2]}"

    names = "|".join(map(re.escape, PARAM_FLAGS))
    text = re.sub(rf"\b({names})=([^\s,;)]+)", flag, text)
    text = re.sub(
        rf"\ba (smaller|larger) ({names})\b", lambda m: f"a {m[1]} {PARAM_FLAGS[m[2]]}", text
    )
    return re.sub(r"\(method '([\w-]+)'\)", r"(--method \1)", text)


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # pragma: no cover - closed or odd stream
        return False


def _echo(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def parse_param(item: str) -> tuple[str, Any]:
    """Parse one ``KEY=VALUE`` of ``--param``.

    The value becomes ``None`` (``none``/``null``), a bool (``true``/``false``),
    an int, a float, or else stays a string. Dashes in the key become
    underscores.

    Raises
    ------
    InputError
        If ``item`` has no ``=`` or an empty key.
    """
    key, sep, raw = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise InputError(f"--param expects KEY=VALUE, got {item!r}")
    text = raw.strip()
    low = text.lower()
    value: Any
    if low in ("none", "null"):
        value = None
    elif low in ("true", "false"):
        value = low == "true"
    else:
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = text
    return key, value


def _engine_option(scheduler: str | None, out_of_core: bool) -> Any:
    """REDNMF's ``engine`` for ``--scheduler`` and ``--out-of-core`` (None: neither).

    A name where one exists (:mod:`rednmf.engines`), so that summary.json shows it as given.
    """
    if scheduler is not None and out_of_core:
        from rednmf.engines import DaskEngine

        return DaskEngine(scheduler, out_of_core=True)
    if scheduler is not None:
        return scheduler
    return "out-of-core" if out_of_core else None


def _collect_params(named: dict[str, Any], extra: Sequence[str] | None) -> dict[str, Any]:
    params = {k: v for k, v in named.items() if v is not None}
    for item in extra or ():
        key, value = parse_param(item)
        if key in params:
            raise InputError(f"parameter {key!r} is given twice; give it once")
        params[key] = value
    return params


def _progress_bar(console: Any, label: str, total: int) -> tuple[Any, Any]:
    """A rich progress bar (a context manager) and the callback that feeds it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn(f"fitting {label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("objective {task.fields[objective]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("fit", total=total, objective="-")

    def callback(iteration: int, objective: float) -> None:
        bar.update(task, completed=iteration, objective=f"{objective:.6g}")

    return bar, callback


def _print_history(summary: dict[str, Any]) -> None:
    """``--verbose``: the objective after each iteration, one line each, on stderr."""
    history = summary.get("objective")
    if not history:
        sys.stderr.write("verbose: this method has no objective history\n")
        return
    sys.stderr.write("iteration objective\n")
    for t, value in enumerate(history, start=1):
        sys.stderr.write(f"{t} {value:.10g}\n")


# -- commands ---------------------------------------------------------------
#: The options that several commands share.
DataVar = Annotated[
    str | None, typer.Option("--data-var", help="Cube variable, if several are 3-D.")
]
GtVar = Annotated[
    str | None,
    typer.Option(
        "--gt-var",
        help="Ground-truth variable (default: the map of the cube's size; among several, "
        "map, gt, groundtruth first, with a warning).",
    ),
]
OutDir = Annotated[Path, typer.Option("--out", help="Output directory.")]


def _version_callback(value: bool) -> None:
    if value:
        _echo(f"rednmf {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        _flag(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Hyperspectral anomaly detection with REDNMF (Moradi et al. 2026) and its baselines."""


@app.command()
def detect(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH",
            help="Scene files, folders and glob patterns: .mat (v5 or v7.3), .npz, .npy, ENVI "
            ".hdr, GeoTIFF or any raster GDAL reads.",
            show_default=False,
        ),
    ],
    data_var: DataVar = None,
    gt_var: GtVar = None,
    gt: Annotated[
        str | None,
        typer.Option("--gt", help="Ground truth in a separate file: FILE or FILE:VAR."),
    ] = None,
    mask: Annotated[
        str | None,
        typer.Option(
            "--mask", help="Pixels to use (nonzero) in FILE or FILE:VAR; the rest is no-data."
        ),
    ] = None,
    out: OutDir = Path("rednmf-out"),
    as_json: Annotated[
        bool, _flag("--json", help="Print the run summary as one JSON object, last line.")
    ] = False,
    method: Annotated[str, typer.Option("--method", help="Detector (see 'methods').")] = "rednmf",
    rank: Annotated[
        int | None, typer.Option("--rank", help="Number of components (n_components).")
    ] = None,
    lam: Annotated[float | None, typer.Option("--lam", help="Sparsity weight lambda.")] = None,
    beta: Annotated[float | None, typer.Option("--beta", help="Encoder weight beta.")] = None,
    max_iter: Annotated[int | None, typer.Option("--max-iter", help="Maximum iterations.")] = None,
    tol: Annotated[float | None, typer.Option("--tol", help="Convergence tolerance.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (random_state).")] = None,
    scorer: Annotated[
        str | None, typer.Option("--scorer", help="Pixel scorer: multiscale, brad or norm.")
    ] = None,
    inner: Annotated[int | None, typer.Option("--inner", help="Inner window size.")] = None,
    outer: Annotated[int | None, typer.Option("--outer", help="Outer window size.")] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Detection threshold, as a score.")
    ] = None,
    contamination: Annotated[
        float | None,
        typer.Option(
            "--contamination",
            help="Detect this fraction of the valid pixels (default 0.01).",
        ),
    ] = None,
    far: Annotated[
        float | None,
        typer.Option(
            "--far",
            help="False-alarm rate, e.g. 0.001: a generalised Pareto fit of the background "
            "tail (docs/outputs.md).",
        ),
    ] = None,
    min_area: Annotated[
        int, typer.Option("--min-area", help="Drop detections smaller than this many pixels.")
    ] = 1,
    exclude_border: Annotated[
        int,
        typer.Option(
            "--exclude-border",
            help="Drop detections within this many pixels of the image edge (0: keep all).",
        ),
    ] = 0,
    wait: Annotated[
        bool,
        _flag("--wait", help="If another run is writing to --out, wait for it."),
    ] = False,
    no_report: Annotated[bool, _flag("--no-report", help="Do not write the HTML report.")] = False,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Any other constructor parameter, KEY=VALUE (repeatable)."),
    ] = None,
    verbose: Annotated[
        bool,
        _flag("--verbose", "-v", help="Print the objective after each iteration (stderr)."),
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Fit REDNMF across a Dask cluster: its scheduler address, tcp://HOST:8786 "
            "(engine=ADDRESS; other engines: --param engine=torch, rednmf.engines).",
        ),
    ] = None,
    out_of_core: Annotated[
        bool,
        _flag(
            "--out-of-core",
            help="REDNMF: keep the scene on disk (memory-mapped ENVI, GeoTIFF read window by "
            "window), scale it per block and hold S in a temporary file (default: only when the "
            "scene does not fit in memory; engine=out-of-core).",
        ),
    ] = False,
) -> None:
    """Detect anomalies in one or more scenes; publish one run folder per scene and method.

    Each run goes to OUT/STEM_METHOD/, written in a hidden staging folder and
    published at the end in one atomic step (an interrupted or failed run leaves
    the earlier folder as it was): STEM_METHOD_ + scores.tif, scores.npy,
    detections.tif, detections.csv, overview.png, report.html, summary.json;
    for a scene with a CRS also detections.geojson (WGS84) and detections.gpkg
    (native CRS), for one without a CRS detections_pixels.json (pixel space,
    which a GIS cannot misplace) instead; roc.svg with ground truth. Several
    inputs also write OUT/batch_summary.csv.
    """
    named = {
        "n_components": rank,
        "lam": lam,
        "beta": beta,
        "max_iter": max_iter,
        "tol": tol,
        "random_state": seed,
        "scorer": scorer,
        "inner": inner,
        "outer": outer,
    }
    with _guard(), _naming_flags(named):
        _check_flags(named)
        if (scheduler is not None or out_of_core) and method != "rednmf":
            raise InputError(
                "--scheduler and --out-of-core apply to --method rednmf only; drop them for "
                f"{method}"
            )
        from rednmf.inputs import expand_inputs

        files = expand_inputs(paths)
        if len(files) == 1 and not (files[0].exists() or files[0].is_symlink()):  # fast
            raise InputError(f"file not found: {files[0]}; check the path")
        named["engine"] = _engine_option(scheduler, out_of_core)
        from rednmf.options import RunOptions

        options = RunOptions(
            method=method,
            params=_collect_params(named, param),
            threshold=threshold,
            contamination=contamination,
            far=far,
            data_var=data_var,
            gt_var=gt_var,
            gt=gt,
            mask=mask,
            min_area=min_area,
            exclude_border=exclude_border,
            lazy=True if out_of_core else None,
            report=not no_report,
            wait=wait,
        )
        from rednmf.pipeline import detect_batch, detect_scene

        show = not as_json and _stderr_is_tty()
        if len(files) == 1 and not Path(paths[0]).is_dir():
            stem = files[0].stem
            with _progress(show, method, stem, options.detector_params) as callback:
                summary = detect_scene(files[0], out, options, on_wait=_waiting, callback=callback)
            _print_notes(summary)
            if verbose:
                _print_history(summary)
            _show_summary(summary, as_json)
            return
        rows = detect_batch(
            files, out, options, on_wait=_waiting, on_scene=_scene_progress, explain=_as_flags
        )
        failed = [r for r in rows if r["status"] != "ok"]
        if as_json:
            _echo_json(_batch_json(rows, Path(out), n_scenes=len(rows), n_failed=len(failed)))
        else:
            _print_batch(rows, Path(out))
        if failed:
            raise typer.Exit(1)


@contextlib.contextmanager
def _progress(show: bool, method: str, stem: str, params: dict[str, Any]) -> Iterator[Any]:
    """A progress bar for iterative detectors on a terminal; yields the fit callback."""
    if not show:
        yield None
        return
    from rich.console import Console

    from rednmf.detectors.registry import get_detector

    detector = get_detector(method, **params)
    steps = getattr(detector, "total_steps", None)  # deep detectors: training steps
    total = steps() if callable(steps) else detector.get_params().get("max_iter")
    console = Console(stderr=True)
    if not total:
        with console.status(f"fitting {method} on {stem} ...", spinner="dots"):
            yield None
        return
    bar, callback = _progress_bar(console, f"{method} on {stem}", int(total))
    with bar:
        yield callback


def _waiting(out: Path) -> None:
    """``--wait``: say that another run holds ``out``, once, before waiting for it."""
    sys.stderr.write(
        f"waiting: another rednmf run is writing to {out}; this run starts after it\n"
    )
    sys.stderr.flush()


def _scene_progress(index: int, total: int, path: Path, row: dict[str, Any] | None) -> None:
    """Progress across the scenes of a batch, one line per scene on stderr."""
    if row is None:
        sys.stderr.write(f"[{index + 1}/{total}] {path} ...\n")
    elif row["status"] == "ok":
        s = row["summary"]
        auc = "" if s["auc"] is None else f", AUC {s['auc']:.4f}"
        sys.stderr.write(
            f"[{index + 1}/{total}] {path.name}: {s['n_detections']} detection(s){auc}, "
            f"{row['seconds']:.1f} s\n"
        )
        for note in s["warnings"]:
            sys.stderr.write(f"warning: {path.name}: {note}\n")
    else:
        sys.stderr.write(f"[{index + 1}/{total}] {path.name}: error: {row['error']}\n")
    sys.stderr.flush()


def _batch_record(row: dict[str, Any]) -> dict[str, Any]:
    """One scene of a batch for ``--json``: its summary (or its error row), with ``status``."""
    if row.get("summary") is not None:
        return {"status": row["status"], **row["summary"]}
    return {k: v for k, v in row.items() if k != "summary"}


def _batch_json(rows: list[dict[str, Any]], out: Path, **counts: int) -> dict[str, Any]:
    """The output folder, ``counts``, its ``batch_summary.csv`` and each scene's record."""
    return {
        "out": str(out.resolve()),
        **counts,
        "batch_summary": str(out.resolve() / "batch_summary.csv"),
        "scenes": [_batch_record(r) for r in rows],
    }


#: Whether this command has printed its JSON line (reset by :func:`main`).
_json_printed = [False]


def _echo_json(obj: dict[str, Any]) -> None:
    """Print ``obj`` as one JSON line (``--json``); a signal acts once it is printed and
    noted as printed (never twice after an interruption)."""
    from rednmf._signals import deferred
    from rednmf.io.writers import jsonable

    line = json.dumps(jsonable(obj), allow_nan=False)
    with deferred():
        _echo(line)
        _json_printed[0] = True


def _show_summary(summary: dict[str, Any], as_json: bool) -> None:
    """A single run's summary: one JSON line (``--json``) or the text of :func:`_print_summary`."""
    if as_json:
        _echo_json(summary)
    else:
        _print_summary(summary)


def _print_notes(summary: dict[str, Any]) -> None:
    for note in summary["warnings"]:
        sys.stderr.write(f"warning: {note}\n")


def _print_summary(summary: dict[str, Any]) -> None:
    rows, cols, bands = summary["shape"]
    gt_note = f" (gt: {summary['gt_var']})" if summary["gt_var"] else " (no ground truth)"
    auc = summary["auc"]
    n_iter = summary["n_iter"]
    fit = summary["seconds"]["fit"]
    _echo(f"scene      {summary['scene']}  {rows}x{cols}x{bands}{gt_note}")
    _echo(f"method     {summary['method']}")
    _echo(f"AUC        {'n/a' if auc is None else f'{auc:.4f}'}")
    _echo(f"time       {fit:.2f} s fit" + ("" if n_iter is None else f", {n_iter} iterations"))
    if summary["nodata_pixels"]:
        _echo(f"no-data    {summary['nodata_pixels']} pixel(s) scored NaN")
    _echo(f"threshold  {summary['threshold']:.6g} ({summary['threshold_rule']})")
    _echo(f"detections {summary['n_detections']}")
    _echo(f"folder     {summary['run_dir']}")
    keys = ("report", "overview", "geojson", "gpkg", "pixels_json", "csv", "scores_tif", "summary")
    for key in keys:
        if key in summary["files"]:
            _echo(f"{key.ljust(10)} {Path(summary['files'][key]).name}")


def _print_batch(rows: list[dict[str, Any]], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rednmf detect: {len(rows)} scene(s) into {out}")
    for col in ("scene", "status", "AUC", "detections", "seconds"):
        table.add_column(col, justify="left" if col in ("scene", "status") else "right")
    for r in rows:
        ok = r["status"] == "ok"
        table.add_row(
            r["scene"],
            "ok" if ok else "error",
            "-" if not ok or r.get("auc") is None else f"{r['auc']:.4f}",
            "-" if not ok else str(r["n_detections"]),
            f"{r['seconds']:.1f}",
        )
    Console(width=max(100, Console().width)).print(table)
    n_failed = sum(r["status"] != "ok" for r in rows)
    _echo(f"summary    {out / 'batch_summary.csv'}")
    if n_failed:
        _echo(f"failed     {n_failed} of {len(rows)} scene(s)")


def _demo_synthetic(out: Path, seed: int, as_json: bool) -> None:
    from rednmf.pipeline import detect_synthetic

    show = not as_json and _stderr_is_tty()
    with _progress(show, "rednmf", "a synthetic scene", {"random_state": seed}) as callback:
        summary = detect_synthetic(out, seed=seed, callback=callback)
    _print_notes(summary)
    _show_summary(summary, as_json)


def _demo_folder(data: Path, out: Path, seed: int, as_json: bool) -> None:
    from rednmf.datasets import list_scenes
    from rednmf.options import RunOptions
    from rednmf.pipeline import detect_batch

    if not data.is_dir():
        raise InputError(f"--data {data} is not a directory; pass the folder of .mat scenes")
    scenes = list_scenes(data)
    if not scenes:
        raise InputError(f"no .mat file in {data}; pass the folder of .mat scenes")
    rows = detect_batch(
        scenes,
        out,
        RunOptions(params={"random_state": seed}),
        on_scene=None if as_json else _scene_progress,
        explain=_as_flags,
    )
    aucs = [r["auc"] for r in rows if r["status"] == "ok" and r["auc"] is not None]
    mean_auc = sum(aucs) / len(aucs) if aucs else None
    if as_json:
        record = {"data": str(data), "method": "rednmf", **_batch_json(rows, Path(out))}
        _echo_json({**record, "mean_auc": mean_auc})
        return
    _print_batch(rows, Path(out))
    _echo(
        f"mean AUC   {'n/a' if mean_auc is None else f'{mean_auc:.4f}'}"
        f"  ({len(aucs)} of {len(rows)} scenes)"
    )


@app.command()
def demo(
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Folder of .mat scenes; default: a synthetic scene."),
    ] = None,
    out: OutDir = Path("rednmf-out"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    as_json: Annotated[
        bool, _flag("--json", help="Print one JSON object as the last line.")
    ] = False,
) -> None:
    """Run REDNMF with its defaults on a synthetic scene, or on every .mat scene of --data.

    The same pipeline as detect: one run folder per scene in OUT (synthetic_rednmf/ for the
    synthetic scene) with the summary, overview, HTML report and the other outputs; with
    --data also OUT/batch_summary.csv.
    """
    with _guard():
        if data is None:
            _demo_synthetic(out, seed, as_json)
        else:
            _demo_folder(data, out, seed, as_json)


@app.command()
def methods() -> None:
    """List the available detection methods."""
    from rednmf.detectors.registry import list_methods

    entries = list_methods()
    width = max(len(name) for name, _ in entries)
    for name, description in entries:
        _echo(f"{name.ljust(width)}  {description}")


@app.command()
def bench(
    experiments: Annotated[
        list[str] | None,
        typer.Argument(
            help="Experiments to run (default all): table2, noise, grid, ablation, "
            "convergence, runtime, synthetic, roc3d.",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Folder of .mat scenes (default: the benchmark folder)."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Results folder (not detect's rednmf-out).")
    ] = Path("rednmf-bench"),
    quick: Annotated[
        bool,
        _flag(
            "--quick",
            help="Smoke test: abu-airport-1 cropped to 64x64, a small synthetic scene, "
            "20 iterations, the cheap methods (unless --methods names others).",
        ),
    ] = False,
    methods: Annotated[
        list[str] | None,
        typer.Option("--methods", help="Restrict to these methods (repeatable or comma list)."),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", help="Worker processes (default: one per CPU)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run the fits on a Dask cluster: its scheduler address, tcp://HOST:8786.",
        ),
    ] = None,
    deep: Annotated[
        bool,
        typer.Option("--deep", help="Include MSNet and BSDM (torch; minutes per scene on a CPU)."),
    ] = False,
) -> None:
    """Reproduce the paper's experiments: CSVs, figures, report.md and report.html in --out."""
    with _guard():
        from rednmf.datasets import data_dir
        from rednmf.experiments import default_jobs, make_context, run_bench

        folder = data
        if folder is None:
            folder = data_dir()
            if not folder.is_dir():
                if not quick:
                    raise InputError(f"benchmark folder {folder} not found; pass --data DIR")
                sys.stderr.write(
                    f"warning: benchmark folder {folder} not found: the quick run uses the "
                    "synthetic scene only; pass --data DIR for the real one\n"
                )
                folder = None  # quick mode falls back to the synthetic scene
        names = [m.strip().lower() for item in methods or () for m in item.split(",")]
        _kept_on_interrupt.append(
            f"the fits finished before it are cached in {out / 'cache'}, and a rerun resumes "
            "from them"
        )
        ctx = make_context(
            out, folder, quick=quick, methods=[n for n in names if n] or None, deep=deep
        )
        report = run_bench(
            ctx,
            experiments or None,
            n_jobs=default_jobs() if jobs is None else jobs,
            scheduler=scheduler,
        )
        _echo(f"report: {report}")


def _scene_facts(scene: Any) -> dict[str, Any]:
    """What the reader found, as a JSON-friendly dict (used by ``info``)."""
    import numpy as np

    from rednmf.io.geotiff import describe_crs

    cube = scene.cube
    facts: dict[str, Any] = {
        "path": str(scene.path),
        "format": scene.format,
        "shape": list(scene.shape),
        "dtype": str(cube.dtype),
        "variables": scene.variables,
        "data_var": scene.data_var,
        "gt_var": scene.gt_var,
    }
    finite = None
    if cube.size:
        if cube.dtype.kind == "f":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lo, hi = np.nanmin(cube), np.nanmax(cube)
            finite = [float(lo), float(hi)]
            facts["n_nan"] = int(np.count_nonzero(np.isnan(cube)))
            facts["n_inf"] = int(np.count_nonzero(np.isinf(cube)))
        else:
            finite = [float(cube.min()), float(cube.max())]
    facts["value_range"] = finite
    wl = scene.wavelengths
    facts["wavelengths"] = None if wl is None else [float(wl[0]), float(wl[-1]), int(wl.size)]
    facts["wavelength_units"] = scene.wavelength_units
    facts["bad_bands"] = [int(b) for b in scene.bad_bands]
    facts["all_nan_bands"] = [int(b) for b in scene.all_nan_bands()]
    facts["nodata"] = scene.nodata
    facts["mask_band"] = scene.masked
    facts["scaled"] = scene.scaled
    facts["nodata_pixels"] = int(scene.nodata_mask().sum())
    facts["crs"] = None if scene.crs is None else describe_crs(scene.crs)
    facts["transform"] = None if scene.transform is None else list(scene.transform)
    if scene.gt is not None:
        facts["gt_anomaly_pixels"] = int(scene.gt.sum())
    return facts


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="Scene file (any format 'detect' reads).")],
    data_var: DataVar = None,
    gt_var: GtVar = None,
    as_json: Annotated[bool, _flag("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print what the reader finds in a scene file: shape, dtype, values, bands, no-data, CRS."""
    with _guard():
        from rednmf.io import read_scene
        from rednmf.io.scene import list_variables
        from rednmf.pipeline import noted

        notes: list[str] = []
        try:
            with noted(notes):
                scene = read_scene(path, data_var=data_var, gt_var=gt_var, lazy=False)
        except InputError:
            with contextlib.suppress(InputError):  # show what the file holds, then the error
                found = list_variables(path)
                if found and not as_json:
                    _echo("variables    " + ", ".join(f"{k} ({v})" for k, v in found.items()))
            raise
        facts = _scene_facts(scene)
        facts["warnings"] = notes
        if as_json:
            _echo_json(facts)
            return
        _print_notes(facts)
        rows, cols, bands = scene.shape
        _echo(f"file         {facts['path']}")
        _echo(f"format       {facts['format']}")
        _echo(f"shape        {rows} rows x {cols} cols x {bands} bands")
        stored = scene.variables.get(scene.data_var or "", "") or next(
            iter(scene.variables.values()), ""
        )
        stored_dtype = stored.split()[-1] if stored else facts["dtype"]
        kept = "" if stored_dtype == facts["dtype"] else f" (stored as {stored_dtype})"
        _echo(f"dtype        {facts['dtype']}{kept}")
        vr = facts["value_range"]
        scaled = " (the bands' scale and offset applied)" if scene.scaled else ""
        _echo(f"values       {'n/a' if vr is None else f'{vr[0]:g} .. {vr[1]:g}'}{scaled}")
        if facts.get("n_inf"):
            _echo(f"infinite     {facts['n_inf']} value(s) (detect will refuse them)")
        _echo("variables    " + ", ".join(f"{k} ({v})" for k, v in scene.variables.items()))
        if scene.data_var:
            _echo(f"cube         {scene.data_var}")
        gt_text = "none"
        if scene.gt is not None:
            gt_text = f"{scene.gt_var} ({facts['gt_anomaly_pixels']} anomaly pixels)"
        _echo(f"ground truth {gt_text}")
        wl = facts["wavelengths"]
        units = f" {scene.wavelength_units}" if scene.wavelength_units else ""
        wl_text = "none" if wl is None else f"{wl[0]:g} .. {wl[1]:g}{units} ({wl[2]} bands)"
        _echo(f"wavelengths  {wl_text}")
        bad = facts["bad_bands"]
        _echo(f"bad bands    {'none' if not bad else f'{len(bad)} dropped: {bad}'}")
        if facts["all_nan_bands"]:
            nan = facts["all_nan_bands"]
            _echo(f"all-NaN      {len(nan)} band(s), dropped by detect: {nan}")
        nd = "none" if scene.nodata is None else f"{scene.nodata:g}"
        nd += ", mask band" if scene.masked else ""
        _echo(f"no-data      value {nd}, {facts['nodata_pixels']} pixel(s) with NaN/no-data")
        _echo(f"crs          {facts['crs'] or 'none'}")
        t = facts["transform"]
        if t is not None:
            _echo(f"transform    origin ({t[2]:.12g}, {t[5]:.12g}), {_pixel_size(t)}")


def _pixel_size(t: Sequence[float]) -> str:
    """``pixel A x E`` of a north-up transform ``(a, b, c, d, e, f)``; a rotated grid's side
    lengths and its rotation, and the angle between its axes when they are not square."""
    import math

    a, b, _, d, e, _ = t[:6]
    if b == 0 and d == 0:
        return f"pixel {a:.12g} x {e:.12g}"
    angle = math.degrees(math.atan2(d, a))
    col, row = math.hypot(a, d), math.hypot(b, e)
    text = f"pixel {col:.12g} x {row:.12g}, rotated {angle:.6g}°"
    between = math.degrees(math.acos(max(-1.0, min(1.0, abs(a * b + d * e) / (col * row)))))
    if abs(between - 90) > 1e-6:
        text += f", sheared: axes {between:.6g}° apart"
    return text


# -- entry point ------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 on a user error (one line ``error: ...`` on stderr).
    """
    from rednmf._signals import handling, signals_received

    signals_received(clear=True)
    _kept_on_interrupt.clear()
    if "rednmf.io.writers" in sys.modules:
        from rednmf.io.writers import published

        published(clear=True)
    show_warning = warnings.showwarning
    warnings.showwarning = _show_warning
    as_json = "--json" in (sys.argv[1:] if argv is None else argv)
    _json_printed[0] = False
    guard = handling(signal.SIGINT, signal.SIGTERM)  # both -> Interrupted while the command runs
    code: int | None = None
    try:
        with guard:
            try:
                code = _main(argv)
                # a signal noted but swallowed where Python could not raise it (the
                # handler's hook hides it): answered as if it had been raised
                if received := signals_received(clear=True):
                    code = _report_interruption(signal.Signals(received[0]), as_json)
            except BaseException as exc:
                # A library's clean-up (a ``finally`` or ``__exit__``) can fail while a
                # signal unwinds it, and its error then replaces the interruption: look down
                # the chain. A compiled library can also swallow the interruption and raise
                # its own error with no chain at all: a signal received during the run is
                # the cause then.
                cause = _interruption(exc)
                received = signals_received(clear=True)
                if cause is None and not received:
                    raise
                signum = getattr(cause, "signum", received[0] if received else signal.SIGINT)
                code = _report_interruption(signal.Signals(signum), as_json)
            finally:
                warnings.showwarning = show_warning
    except Interrupted as late:
        # A signal as the handlers were put back: if the command had finished, its results
        # and its message are final (as after it, rednmf._signals.ignore_after_exit).
        guard.restore()
        signals_received(clear=True)
        if code is None:
            code = _report_interruption(signal.Signals(late.signum), as_json)
    return code


def _report_interruption(sig: signal.Signals, as_json: bool = False) -> int:
    """Write the one line of an interrupted command; return its exit status.

    A single run published before the signal is complete: with ``--json`` its
    summary is printed from disk, as the run would have printed it.
    """
    code, message, run = _interrupted_message(sig)
    if as_json and run is not None and not _json_printed[0]:
        _echo_json(json.loads((run / f"{run.name}_summary.json").read_text()))
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    return code


def _show_warning(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    """A warning no run recorded in its notes: one line ``warning: ...``, no source line."""
    sys.stderr.write(f"warning: {one_line(message)}\n")


def _interrupted_message(sig: signal.Signals) -> tuple[int, str, Path | None]:
    """Exit status and message after ``sig`` stopped the command: what is on disk.

    A single run whose folder was published before the signal is complete: exit 0
    with a warning (and the folder, third). A batch: 128 + signal, naming the run
    folders published and the ``batch_summary.csv`` that lists them. Nothing
    published: 128 + signal.
    """
    done: list[Path] = []
    if "rednmf.io.writers" in sys.modules:  # else nothing can have been published
        from rednmf.io.writers import published

        done = published(clear=True)
    runs = [p for p in done if p.name != "batch_summary.csv"]
    batch = [p for p in done if p.name == "batch_summary.csv"]
    stopped = f"interrupted ({sig.name})"
    if batch:
        names = ", ".join(p.name for p in runs) or "none"
        return (
            128 + int(sig),
            (
                f"error: {stopped}; {len(runs)} run folder(s) published before it, complete "
                f"({names}); {batch[-1]} lists every scene and which were not run"
            ),
            None,
        )
    if runs:
        return (
            0,
            f"warning: {stopped} after the run was published; {runs[-1]} is complete",
            runs[-1],
        )
    if _kept_on_interrupt:
        return (
            128 + int(sig),
            f"error: {stopped}; this run published nothing and earlier results are "
            f"unchanged; {_kept_on_interrupt[-1]}",
            None,
        )
    return (
        128 + int(sig),
        (f"error: {stopped}; this run left nothing behind and earlier results are unchanged"),
        None,
    )


#: What a command keeps on disk when a signal stops it before it publishes (``bench``: the
#: cache of finished fits), for :func:`_interrupted_message`.
_kept_on_interrupt: list[str] = []


def _interruption(exc: BaseException | None) -> BaseException | None:
    """The SIGINT/SIGTERM interruption that ``exc`` is, or arose while handling, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Interrupted | KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__context__
    return None


def _flags_as_flags(command: Any) -> Any:
    """Show ``--help`` (created by click per context) as a flag, like the other booleans."""
    commands = [command, *getattr(command, "commands", {}).values()]
    for cmd in commands:
        original = cmd.get_help_option

        def get_help_option(ctx: Any, _original: Any = original) -> Any:
            option = _original(ctx)
            if option is not None:
                option.metavar = ""
            return option

        cmd.get_help_option = get_help_option
    return command


def _main(argv: Sequence[str] | None) -> int:
    command = _flags_as_flags(typer.main.get_command(app))
    try:
        rv = command.main(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name="rednmf",
            standalone_mode=False,
        )
    except InputError as exc:
        _fail(str(exc))
        return EXIT_USAGE
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        message = exc.format_message()
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare ``rednmf``: show the help
            sys.stderr.write(message.rstrip() + "\n")
        else:
            _fail(message)
        return EXIT_USAGE
    except typer.Abort:
        sys.stderr.write("error: aborted\n")
        return 130
    except typer.Exit as exc:  # pragma: no cover - normally returned by click
        return int(exc.exit_code)
    return rv if isinstance(rv, int) else 0
