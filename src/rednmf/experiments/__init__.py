"""``rednmf bench``: the paper's experiments (Sec. 5), one module each, one runner.

Each experiment module has ``NAME``, ``TITLE``, ``jobs(ctx) -> list[Job]`` and
``summarise(ctx, results) -> str`` (writes its CSV and figures, returns its
section of ``report.md``). :func:`run_bench` collects the jobs of the asked
experiments, runs the ones not in the cache (identical jobs of different
experiments once; in ``n_jobs`` processes), then summarises every experiment
and writes ``report.md`` and ``report.html``: one self-contained, offline page with the
same text (its tables as HTML tables), every figure embedded, and the Table 2 score map of
every scene and method with a live threshold slider (:func:`rednmf.report.render_bench_report`).

Adding a method: register it in :data:`rednmf.detectors.registry.METHODS`
(it then appears in every experiment whose list is "all methods"). Adding a
scene: put its ``.mat`` file in the data folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from types import ModuleType
from typing import Any

from rednmf import __version__
from rednmf.detectors.registry import DEEP_METHODS, METHODS
from rednmf.exceptions import InputError
from rednmf.experiments import (
    ablation,
    convergence,
    grid,
    noise,
    roc3d,
    runtime,
    synthetic,
    table2,
)
from rednmf.experiments.cache import ResultCache, job_key
from rednmf.experiments.common import Context, Job, execute
from rednmf.experiments.report import format_machine, machine_info
from rednmf.io.writers import atomic_open

__all__ = ["EXPERIMENTS", "make_context", "run_bench"]

#: Experiment name -> module, in report order.
EXPERIMENTS: dict[str, ModuleType] = {
    m.NAME: m for m in (table2, noise, grid, ablation, convergence, runtime, synthetic, roc3d)
}

#: Quick mode: iteration cap, and the real scene used (cropped to QUICK_CROP x QUICK_CROP).
QUICK_MAX_ITER = 20
QUICK_SCENE = "abu-airport-1"
QUICK_CROP = 64


def make_context(
    out: Path,
    data_dir: Path | None,
    *,
    quick: bool = False,
    methods: Sequence[str] | None = None,
    deep: bool = False,
) -> Context:
    """Build the run settings: the real scenes of ``data_dir`` (quick: one, cropped)."""
    if methods:
        unknown = sorted(set(methods) - set(METHODS))
        if unknown:
            raise InputError(
                f"unknown method(s) {', '.join(unknown)}; known methods: {', '.join(METHODS)}"
            )
    scenes: list[str] = []
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise InputError(f"data folder {data_dir} not found; pass --data DIR")
        scenes = sorted(p.stem for p in Path(data_dir).glob("*.mat"))
        if not scenes:
            raise InputError(f"no .mat scene in {data_dir}; pass --data with the scenes")
        if quick:
            scenes = [s for s in scenes if s == QUICK_SCENE][:1]
            if not scenes:
                raise InputError(
                    f"--quick runs on {QUICK_SCENE}.mat, which {data_dir} does not hold; pass "
                    "--data with it, or drop --quick"
                )
    return Context(
        out=Path(out),
        data_dir=None if data_dir is None else Path(data_dir),
        quick=quick,
        methods=tuple(methods) if methods else None,
        real_scenes=tuple(scenes),
        crop=QUICK_CROP if quick else None,
        max_iter=QUICK_MAX_ITER if quick else None,
        deep=deep,
    )


def _init_worker() -> None:
    """Worker processes: one BLAS (and torch) thread each (the processes are the parallelism).

    A worker leaves SIGINT to the main process (a Ctrl-C reaches the whole
    process group), which ends the workers itself (:func:`_stop_workers`), and
    takes SIGTERM's default action (the command's handler, inherited by the
    fork, is not for it).
    """
    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threadpool_limits(1)
    if "torch" in sys.modules:  # inherited from the parent: its thread pool is set up
        sys.modules["torch"].set_num_threads(1)
    else:  # read by torch when a deep detector imports it
        os.environ["OMP_NUM_THREADS"] = "1"


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Drop a pool's queue and end its worker processes now: a fit that runs there is lost
    (finished ones are cached). ``shutdown(cancel_futures=True)`` only drops the queue, and
    before Python 3.14 the executor has no public way to end its workers, so their processes
    are read from it, before ``shutdown`` forgets them."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=5)


@contextlib.contextmanager
def _one_torch_thread(jobs: Iterable[Job]) -> Iterator[None]:
    """One torch thread while deep fits run in this process, as in the worker processes.

    torch rounds with its thread count: without this a deep method's AUC would
    depend on ``--jobs`` (and on how many fits were left to run).
    """
    if not any(job.method in DEEP_METHODS for job in jobs):
        yield
        return
    from rednmf.detectors._deep import import_torch

    torch = import_torch()
    was = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(was)


def _execute_pinned(job: Job, ctx: Context) -> dict[str, Any]:
    """One fit on a Dask worker, one BLAS (and torch) thread (the driver stores the result)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1), _one_torch_thread([job]):
        return execute(job, ctx)


def _work(job: Job, ctx: Context, key: str) -> dict[str, Any]:
    record = execute(job, ctx)
    ResultCache(ctx.out / "cache").store(key, record)
    return record


@contextlib.contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[str, int], None]]:
    """A rich progress bar on stderr; yields ``advance(description, step=1)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )
    with bar:
        task = bar.add_task("fits", total=total)

        def advance(text: str, step: int = 1) -> None:
            bar.update(task, advance=step, description=text)

        yield advance


def run_bench(
    ctx: Context,
    experiments: Sequence[str] | None = None,
    *,
    n_jobs: int = 1,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    scheduler: Any = None,
) -> Path:
    """Run experiments (default: all), write CSVs, figures and ``report.md``; return its path.

    Parameters
    ----------
    ctx : Context
        From :func:`make_context`.
    experiments : sequence of str, optional
        Names from :data:`EXPERIMENTS`.
    n_jobs : int
        Worker processes (jobs of different scenes and methods run in parallel).
    progress : bool, optional
        Show the progress bar; default when stderr is a terminal.
    log : callable, optional
        Receives one line per finished experiment (default: stderr).
    scheduler : str or distributed.Client, optional
        Run the fits on the workers of a Dask cluster instead (``tcp://HOST:PORT``
        or a client; ``n_jobs`` is then ignored). Each worker must see the data
        folder at the same path; results come back to this process, which caches
        them and writes the report.
    """
    names = list(experiments or EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise InputError(
            f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}"
        )
    if n_jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {n_jobs}")
    say = log or (lambda text: sys.stderr.write(text + "\n"))
    cache = ResultCache(ctx.out / "cache")
    planned = {n: EXPERIMENTS[n].jobs(ctx) for n in names}
    keys: dict[Job, str] = {}
    todo: dict[str, Job] = {}
    records: dict[str, dict[str, Any]] = {}
    for jobs in planned.values():
        for job in jobs:
            key = keys[job] = job_key(job.spec(ctx))
            if key in records or key in todo:
                continue
            hit = cache.load(key)
            if hit is not None:
                records[key] = hit
            else:
                todo[key] = job
    n_all = len(set(keys.values()))
    say(f"bench: {n_all} jobs, {n_all - len(todo)} from the cache, {len(todo)} to run")
    # Longest first, so that no long fit is left running alone at the end of a parallel run.
    todo = dict(sorted(todo.items(), key=lambda kv: -expected_cost(kv[1], ctx)))
    show = sys.stderr.isatty() if progress is None else progress
    with _progress(len(todo), show) as advance:
        if scheduler is not None and todo:
            _run_on_dask(scheduler, todo, ctx, cache, records, advance)
        elif n_jobs == 1 or len(todo) <= 1:
            from threadpoolctl import threadpool_limits

            # One BLAS thread, as in the worker processes and on Dask: BLAS rounds with its
            # thread count, and a result must not depend on where it was computed.
            with threadpool_limits(1), _one_torch_thread(todo.values()):
                for key, job in todo.items():
                    advance(f"{job.experiment} {job.scene} {job.label or job.method}", 0)
                    records[key] = _work(job, ctx, key)
                    advance(f"{job.experiment} {job.scene} {job.label or job.method}")
        else:
            pool = ProcessPoolExecutor(max_workers=n_jobs, initializer=_init_worker)
            try:
                futures: dict[Future[dict[str, Any]], str] = {
                    pool.submit(_work, job, ctx, key): key for key, job in todo.items()
                }
                for fut in as_completed(futures):
                    key = futures[fut]
                    records[key] = fut.result()
                    job = todo[key]
                    advance(f"done: {job.experiment} {job.scene} {job.label or job.method}")
            except BaseException:
                # interrupted or a fit failed: drop the queue and end the fits that run
                # (finished fits stay cached)
                _stop_workers(pool)
                raise
            pool.shutdown()
    with _staged(ctx) as staged:
        sections = []
        for name in names:
            results = [(job, records[keys[job]]) for job in planned[name]]
            module = EXPERIMENTS[name]
            if not results:
                sections.append(f"## {module.TITLE}\n\nNothing to run (no method or scene left).")
                continue
            sections.append(f"## {module.TITLE}\n\n{module.summarise(staged, results)}")
            say(f"bench: {name} done ({len(results)} results) -> {ctx.out / (name + '.csv')}")
        maps = (
            table2.score_maps(staged, [(job, records[keys[job]]) for job in planned["table2"]])
            if "table2" in names
            else []
        )
        _write_report(staged, names, sections, maps)
    return ctx.out / "report.md"


@contextlib.contextmanager
def _staged(ctx: Context) -> Iterator[Context]:
    """``ctx`` writing into a hidden folder of ``ctx.out``, published when the block ends.

    The tables, figures and report of a run are written there; when the block
    ends normally each file replaces its namesake in ``ctx.out`` (signals held
    meanwhile) and the report is recorded as published
    (:func:`rednmf.io.writers.mark_published`). When it raises (a failure, an
    interruption) the folder is removed: ``ctx.out`` holds what it held, and
    the cache the fits that had finished.
    """
    import shutil
    import tempfile

    from rednmf.io.writers import mark_published, signals_blocked

    ctx.out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".bench-", dir=ctx.out))
    try:
        yield dataclasses.replace(ctx, out=stage)
        files = sorted(p for p in stage.rglob("*") if p.is_file())
        with signals_blocked():
            for path in files:
                target = ctx.out / path.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
            mark_published(ctx.out / "report.md")
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _run_on_dask(
    scheduler: Any,
    todo: dict[str, Job],
    ctx: Context,
    cache: ResultCache,
    records: dict[str, dict[str, Any]],
    advance: Callable[..., None],
) -> None:
    """Submit every job to the Dask cluster, longest first; cache results as they come."""
    from distributed import as_completed as dask_as_completed

    from rednmf.engines.dask import dask_client

    with dask_client(scheduler) as client:
        futures = {
            client.submit(_execute_pinned, job, ctx, key=f"rednmf-bench-{key}", pure=False): key
            for key, job in todo.items()
        }
        try:
            for fut in dask_as_completed(list(futures)):
                key = futures[fut]
                records[key] = fut.result()
                cache.store(key, records[key])
                job = todo[key]
                advance(f"done: {job.experiment} {job.scene} {job.label or job.method}")
        except BaseException:
            client.cancel(list(futures))
            raise


def _write_report(
    ctx: Context, names: list[str], sections: list[str], maps: list[dict[str, Any]]
) -> Path:
    mode = (
        f"QUICK run (smoke test: {QUICK_SCENE} cropped to {QUICK_CROP}x{QUICK_CROP}, "
        f"max_iter={QUICK_MAX_ITER}, a subset of methods/sigmas/grid) - its numbers are not "
        "comparable with the paper's"
        if ctx.quick
        else "full run"
    )
    head = [
        "# rednmf bench report",
        "",
        f"- rednmf {__version__}, {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC, {mode}",
        f"- experiments: {', '.join(names)}",
        f"- data: {ctx.data_dir or 'none (synthetic scene only)'}; "
        f"real scenes: {', '.join(ctx.real_scenes) or 'none'}",
        f"- machine: {format_machine(machine_info())}",
        "- paper: Moradi et al. 2026, numbers in src/rednmf/experiments/paper_results.json",
        "",
    ]
    path = ctx.out / "report.md"
    text = "\n".join(head) + "\n" + "\n\n".join(sections) + "\n"
    with atomic_open(path, "w") as fh:
        fh.write(text)
    from rednmf.report import write_bench_report

    figures = sorted(ctx.out.rglob("*.png"))  # this run's (the staging folder's)
    write_bench_report(path.with_suffix(".html"), text, figures, "rednmf bench report", maps)
    return path


def default_jobs() -> int:
    """Every CPU of this process (at least 1): one single-threaded fit per CPU."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: Relative cost of one fit with the defaults on the same scene (seconds on a
#: 100 x 100 x 205 scene, one core; measured by the ``runtime`` experiment).
#: Only used to run long jobs first.
_METHOD_COST = {
    "grx": 0.2, "lrx": 0.2, "nmf": 2.0, "crd": 3.0, "rednmf": 5.0, "rnmf": 12.0,
    "lsunrsorad": 12.0, "lsad-cr-idw": 12.0, "l1nmf": 15.0, "ewnmf": 16.0,
}  # fmt: skip


def expected_cost(job: Job, ctx: Context) -> float:
    """A rough cost of ``job`` (method cost x scene size x iterations), for ordering only."""
    cost = _METHOD_COST.get(job.method, 5.0)
    params = dict(job.params)
    if "max_iter" in params:
        cost *= float(params["max_iter"]) / 100.0
    if ctx.data_dir is not None:
        path = Path(ctx.data_dir) / f"{job.scene}.mat"
        if path.is_file():
            cost *= path.stat().st_size / 8.2e6  # bytes of a 100 x 100 x 205 float64 scene
    return cost
