"""``rednmf bench --quick`` end to end: every experiment, outputs, cache, parallel jobs."""

from __future__ import annotations

import csv
import html
import warnings
from pathlib import Path

import numpy as np
import pytest

from rednmf.cli import main
from rednmf.detectors.registry import get_detector
from rednmf.exceptions import InputError
from rednmf.experiments import EXPERIMENTS, make_context, run_bench, table2
from rednmf.experiments.cache import job_key
from rednmf.experiments.common import convergence_trace, load_scene
from rednmf.experiments.paper import paper_results, paper_value
from rednmf.solvers.rnmf import rnmf_solve

CSVS = [f"{name}.csv" for name in EXPERIMENTS]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _check_outputs(out: Path) -> str:
    for name in CSVS:
        assert (out / name).is_file(), name
        assert _rows(out / name), f"{name} is empty"
    for folder in EXPERIMENTS:
        if folder in ("noise", "runtime"):
            continue  # tables only
        assert list((out / "figures" / folder).glob("*.png")), folder
    report = (out / "report.md").read_text(encoding="utf-8")
    for module in EXPERIMENTS.values():
        assert f"## {module.TITLE}" in report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert html.escape(report) in page  # the same text, beside report.md
    figures = list((out / "figures").rglob("*.png"))
    assert page.count("src='data:image/png;base64,") == len(figures) > 0
    assert "http://" not in page and "https://" not in page
    return report


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A quick run on the synthetic scene only (no data folder)."""
    out = tmp_path_factory.mktemp("bench-synthetic")
    lines: list[str] = []
    run_bench(make_context(out, None, quick=True), log=lines.append)
    return out, lines


def test_quick_synthetic_every_experiment(synthetic_run: tuple[Path, list[str]]) -> None:
    out, lines = synthetic_run
    report = _check_outputs(out)
    assert "QUICK run" in report
    assert "synthetic-small" in report
    assert lines[0].startswith("bench: ") and "0 from the cache" in lines[0]
    table2 = _rows(out / "table2.csv")
    assert {r["scene"] for r in table2} == {"synthetic-small"}
    assert all(0.0 <= float(r["auc"]) <= 1.0 for r in table2)
    grid = _rows(out / "grid.csv")
    assert {r["lam_mode"] for r in grid} == {get_detector("rednmf").get_params()["lam_mode"]}
    conv = _rows(out / "convergence.csv")
    assert {r["method"] for r in conv} == {"nmf", "l1nmf", "rnmf", "rednmf"}
    assert max(int(r["iteration"]) for r in conv) == 20


def test_rerun_hits_the_cache(synthetic_run: tuple[Path, list[str]]) -> None:
    out, _ = synthetic_run
    before = (out / "table2.csv").read_text(encoding="utf-8")
    lines: list[str] = []
    run_bench(make_context(out, None, quick=True), ["table2", "noise"], log=lines.append)
    assert "0 to run" in lines[0]
    assert (out / "table2.csv").read_text(encoding="utf-8") == before
    # an interrupted run: a lost record is recomputed, the others are reused
    ctx = make_context(out, None, quick=True)
    key = job_key(table2.jobs(ctx)[0].spec(ctx))
    (out / "cache" / f"{key}.json").unlink()
    lines.clear()
    run_bench(ctx, ["table2", "noise"], log=lines.append, progress=False)
    assert "1 to run" in lines[0]
    aucs = [(r["method"], r["auc"]) for r in _rows(out / "table2.csv")]
    assert aucs == [(r["method"], r["auc"]) for r in csv.DictReader(before.splitlines())]


def test_jobs_in_parallel_give_the_same_numbers(
    synthetic_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    out, _ = synthetic_run
    run_bench(make_context(tmp_path, None, quick=True), ["table2"], n_jobs=2, log=lambda _: None)
    seq = {r["method"]: r["auc"] for r in _rows(out / "table2.csv")}
    par = {r["method"]: r["auc"] for r in _rows(tmp_path / "table2.csv")}
    assert par == seq


def test_cli_quick_with_real_data(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = ["bench", "--quick", "--data", str(data_dir), "--out", str(out)]
    assert main(args) == 0
    report = _check_outputs(out)
    assert "abu-airport-1" in report
    # Table 2 shows the paper's number beside ours
    assert f"({paper_value('table2', 'rednmf', 'abu-airport-1'):.4f}, " in report
    scenes = {r["scene"] for r in _rows(out / "ablation.csv")}
    assert scenes == {"abu-airport-1", "synthetic-small"}
    # rerun of one experiment with a method subset: everything from the cache
    assert main([*args, "table2", "--methods", "rednmf,grx"]) == 0
    assert {r["method"] for r in _rows(out / "table2.csv")} == {"rednmf", "grx"}


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nope", "--quick", "--out", str(tmp_path)]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert main(["bench", "--quick", "--methods", "xyz", "--out", str(tmp_path)]) == 2
    assert "unknown method" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["nmf", "l1nmf", "rnmf", "rednmf"])
def test_convergence_trace_is_one_uninterrupted_fit(method: str) -> None:
    cube, _ = load_scene("synthetic-small", None)
    params = {"max_iter": 12, "tol": 0.0}
    trace = convergence_trace(method, params, cube)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = get_detector(method, **params).fit(cube)
    np.testing.assert_array_equal(trace["objective"], det.objective_)
    assert trace["rel_error"].shape == (12,) and np.all(trace["rel_error"] > 0)
    # the last relative error is that of the fitted factors
    X = det._data_matrix(cube)[0]
    if method == "rnmf":  # RNMF keeps no S: the solver's own, from the same start
        W0, H0, _ = det._initial_factors(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            S = rnmf_solve(X, W0, H0, lam=det.lam, **params).S
    else:
        S = det.anomaly(cube).reshape(-1, X.shape[0]).T if hasattr(det, "anomaly") else None
    R = X - det.components_ @ det.coefficients_
    if S is not None:
        R = R - S
    want = np.linalg.norm(R.astype(np.float64)) / np.linalg.norm(X.astype(np.float64))
    assert trace["rel_error"][-1] == pytest.approx(want, rel=1e-5)


def test_convergence_trace_of_a_method_without_iterations_is_refused() -> None:
    cube, _ = load_scene("synthetic-small", None)
    with pytest.raises(InputError, match="does not iterate"):
        convergence_trace("grx", {}, cube)


def test_paper_numbers_transcribed() -> None:
    data = paper_results()
    assert data["table2_auc"]["REDNMF"]["Avg"] == 0.9696
    assert data["table2_auc"]["L1NMF"]["Beach-4"] == 0.9842
    assert data["table3_auc_noise"]["0.10"]["RNMF"]["Beach-4"] == 0.5174
    assert data["table4_seconds"]["REDNMF"]["Saliens"] == 14.1642
    assert data["synthetic_auc"]["REDNMF"] == 0.9910
    assert paper_value("table2", "rnmf", "aviris-1-sunlight_gcl") == 0.9794
    assert paper_value("table4", "nmf", "pavia-centre-100_lzw") == 10.5725


def test_long_jobs_are_planned_first(tmp_path: Path) -> None:
    """The ordering heuristic: more iterations, slower methods and larger scenes cost more."""
    from rednmf.experiments import default_jobs, expected_cost
    from rednmf.experiments.common import Job

    ctx = make_context(tmp_path, None, quick=True)
    fit = Job("table2", ctx.synthetic, "rednmf", ())
    longer = Job("convergence", ctx.synthetic, "rednmf", (("max_iter", 500),), kind="convergence")
    assert expected_cost(longer, ctx) == pytest.approx(5 * expected_cost(fit, ctx))
    assert expected_cost(Job("table2", ctx.synthetic, "ewnmf", ()), ctx) > expected_cost(fit, ctx)
    assert expected_cost(Job("table2", ctx.synthetic, "grx", ()), ctx) < expected_cost(fit, ctx)
    assert default_jobs() >= 1


def test_bench_on_a_dask_cluster_gives_the_same_numbers(
    synthetic_run: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """`--scheduler`: the fits run on Dask workers; results equal the local run's."""
    distributed = pytest.importorskip("distributed")
    out, _ = synthetic_run
    with (
        # Worker processes, as on a real cluster: threads of one process would share one
        # BLAS thread setting, which each fit's threadpool_limits(1) sets and restores
        # under the other's feet (and BLAS rounding changes with its thread count).
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        run_bench(
            make_context(tmp_path, None, quick=True),
            ["table2"],
            scheduler=client,
            log=lambda _: None,
        )
    seq = {r["method"]: r["auc"] for r in _rows(out / "table2.csv")}
    dist = {r["method"]: r["auc"] for r in _rows(tmp_path / "table2.csv")}
    assert dist == seq
    assert len(list((tmp_path / "cache").glob("*.json"))) == len(seq)


def test_bench_cli_unreachable_scheduler_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    import rednmf.engines.dask as dask_engine

    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", 1)
    code = main(["bench", "table2", "--quick", "--out", str(tmp_path / "o"),
                 "--scheduler", "tcp://127.0.0.1:9"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: cannot reach the Dask scheduler"), err
    assert [line for line in lines if line.startswith("error:")] == lines[-1:]
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "report.md").exists()


def test_quick_mode_runs_the_methods_it_is_given(tmp_path):
    """--quick limits the methods to the cheap ones unless --methods names others: a method
    named is run, not dropped without a word."""
    from rednmf.experiments import synthetic, table2

    ctx = make_context(tmp_path, None, quick=True, methods=["crd", "grx"])
    assert table2.methods(ctx) == synthetic.methods(ctx) == ["grx", "crd"]
    assert [j.method for j in table2.jobs(ctx)] == ["grx", "crd"]
    quick = make_context(tmp_path, None, quick=True)
    assert table2.methods(quick) == list(table2.QUICK_METHODS)


def _toy_data(folder: Path, gt_row: int) -> Path:
    """A data folder with one small scene whose truth marks row ``gt_row`` (same file size)."""
    import scipy.io

    folder.mkdir(exist_ok=True)
    cube = np.random.default_rng(0).random((30, 30, 12))
    cube[5, 5] += 3.0  # one strong anomaly
    gt = np.zeros((30, 30), dtype=np.uint8)
    gt[5, 5] = 1
    gt[gt_row, 20] = 1
    scipy.io.savemat(folder / "toy-scene.mat", {"data": cube, "map": gt})
    return folder


def test_a_scene_rewritten_in_place_is_fitted_again(tmp_path: Path) -> None:
    """The cache names a scene by its content: same name, same size, other truth -> refit."""
    data = _toy_data(tmp_path / "data", gt_row=5)
    lines: list[str] = []
    ctx = make_context(tmp_path / "out", data, methods=["grx"])
    run_bench(ctx, ["table2"], log=lines.append, progress=False)
    first = {r["scene"]: r["auc"] for r in _rows(tmp_path / "out" / "table2.csv")}
    size = (data / "toy-scene.mat").stat().st_size
    _toy_data(data, gt_row=25)
    assert (data / "toy-scene.mat").stat().st_size == size
    lines.clear()
    run_bench(make_context(tmp_path / "out", data, methods=["grx"]), ["table2"], log=lines.append)
    assert "1 jobs, 0 from the cache, 1 to run" in lines[0]
    second = {r["scene"]: r["auc"] for r in _rows(tmp_path / "out" / "table2.csv")}
    assert second["toy-scene"] != first["toy-scene"]


def test_an_interrupted_summary_leaves_the_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables, figures and report are published together, after the last summary."""
    out = tmp_path / "out"
    run_bench(make_context(out, None, quick=True), ["table2", "noise"], progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and "cache" not in p.parts}

    def interrupted(*args: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(EXPERIMENTS["noise"], "summarise", interrupted)
    ctx = make_context(out, None, quick=True, methods=["grx", "rednmf"])  # other table2 rows
    with pytest.raises(KeyboardInterrupt):
        run_bench(ctx, ["table2", "noise"], progress=False)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and "cache" not in p.parts}
    assert after == before
    assert not list(out.glob(".bench-*"))


def test_data_folders_without_the_scenes_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no .mat scene in"):
        make_context(tmp_path / "o", empty)
    other = _toy_data(tmp_path / "other", gt_row=5)
    with pytest.raises(InputError, match="--quick runs on abu-airport-1.mat"):
        make_context(tmp_path / "o", other, quick=True)


def test_deep_fits_in_this_process_use_one_torch_thread() -> None:
    """As in the worker processes: torch rounds with its thread count."""
    torch = pytest.importorskip("torch")
    from rednmf.experiments import _one_torch_thread
    from rednmf.experiments.common import Job

    was = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with _one_torch_thread([Job("table2", "synthetic", "msnet")]):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with _one_torch_thread([Job("table2", "synthetic", "grx")]):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(was)


def test_an_interrupt_ends_the_worker_processes(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the command ends its workers, none is left."""
    import os
    import signal
    import subprocess
    import sys
    import time

    psutil = pytest.importorskip("psutil")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rednmf", "bench", "--quick", "--jobs", "2", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "REDNMF_DATA": str(tmp_path / "none")},
    )
    try:
        workers: list[psutil.Process] = []
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) >= 2, "the worker processes never started"
        time.sleep(0.5)  # the fits under way
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode in (0, 130), err
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers left running: {alive}"
    if proc.returncode == 130:
        assert b"this run published nothing and earlier results are unchanged" in err
        assert b"cache" in err


def test_the_mean_is_compared_with_the_paper_on_the_scenes_it_has(
    data_dir: Path, tmp_path: Path
) -> None:
    """A scene the paper lacks enters our mean, not the comparison with the paper's."""
    data = _toy_data(tmp_path / "data", gt_row=5)
    (data / "abu-airport-1.mat").symlink_to(data_dir / "abu-airport-1.mat")
    out = tmp_path / "out"
    run_bench(make_context(out, data, methods=["nmf"]), ["table2"], progress=False)
    auc = {r["scene"]: float(r["auc"]) for r in _rows(out / "table2.csv")}
    report = (out / "report.md").read_text(encoding="utf-8")
    row = next(line for line in report.splitlines() if line.startswith("| nmf |"))
    mean = row.split("|")[-2].strip()
    paper = paper_value("table2", "nmf", "abu-airport-1")
    both = auc["abu-airport-1"]
    expect = (
        f"{(both + auc['toy-scene']) / 2:.4f}; on the paper's 1: "
        f"{both:.4f} ({paper:.4f}, {both - paper:+.4f})"
    )
    assert mean == expect
