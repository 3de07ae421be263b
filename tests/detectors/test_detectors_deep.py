"""The deep baselines MSNet and BSDM: each network piece against an independent check,
the detector contract, determinism under a seed, and planted anomalies found with a
tiny schedule (each fit here takes a second or less; the default schedules take
minutes per scene and run in ``benchmarks/deep_table.py``, not here).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage

torch = pytest.importorskip("torch")

from rednmf.datasets import make_scene  # noqa: E402
from rednmf.detectors import _deep  # noqa: E402
from rednmf.detectors.bsdm import BSDM, build_denoiser, diffusion_coefficients  # noqa: E402
from rednmf.detectors.msnet import (  # noqa: E402
    LOG_TEMPLATE,
    WORK_PER_BAND,
    MSNet,
    build_msnet,
    msnet_loss,
    opbs,
    zscore_bands,
)
from rednmf.detectors.registry import DEEP_METHODS, get_detector, list_methods  # noqa: E402
from rednmf.exceptions import InputError  # noqa: E402
from rednmf.metrics import roc_auc  # noqa: E402

#: Tiny schedules: a second or less each on one core.
TINY = {
    "msnet": {"n_bands": 16, "epochs": 30, "rounds": 2},
    "bsdm": {"epochs": 40, "embed": 16, "hidden": (32, 16, 8)},
}


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    return make_scene(rows=32, cols=32, bands=30, n_endmembers=3, n_targets=6, random_state=0)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- registry and the missing-torch message ----------------------------------------


def test_registered_with_torch_in_the_description():
    names = dict(list_methods())
    assert set(DEEP_METHODS) == {"msnet", "bsdm"}
    for name in DEEP_METHODS:
        assert "torch" in names[name]
    assert isinstance(get_detector("msnet"), MSNet)
    assert isinstance(get_detector("bsdm"), BSDM)


@pytest.mark.parametrize("method", DEEP_METHODS)
def test_without_torch_one_line_names_the_install(monkeypatch, scene, method):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(InputError) as info:
        get_detector(method, **TINY[method]).fit(scene[0])
    message = str(info.value)
    assert "\n" not in message
    assert "pip install 'rednmf[torch]'" in message


def test_cuda_without_a_gpu_is_an_input_error(scene):
    if torch.cuda.is_available():  # pragma: no cover - GPU machines
        pytest.skip("a GPU is present")
    with pytest.raises(InputError, match="no CUDA GPU"):
        MSNet(**TINY["msnet"], device="cuda").fit(scene[0])


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("msnet", {"epochs": 0}),
        ("msnet", {"lam": -1.0}),
        ("msnet", {"n_bands": 0}),
        ("msnet", {"device": 3}),
        ("bsdm", {"t": 1000}),
        ("bsdm", {"embed": 15}),
        ("bsdm", {"hidden": (8, 8)}),
        ("bsdm", {"lr": 0.0}),
        ("bsdm", {"random_state": -1}),
    ],
)
def test_bad_parameters(scene, method, params):
    with pytest.raises(InputError):
        get_detector(method, **params).fit(scene[0])


# -- MSNet pieces --------------------------------------------------------------------


def test_opbs_matches_pivoted_qr():
    """After the first band (largest variance), OPBS is greedy Gram-Schmidt: the order of
    column-pivoted QR on the bands with the first projected out."""
    rng = np.random.default_rng(3)
    x = rng.random((200, 12)) @ rng.random((12, 25)) + 0.01 * rng.random((200, 25))
    first = int(np.argmax(x.var(axis=0)))
    q = x[:, first] / np.linalg.norm(x[:, first])
    rest = np.delete(np.arange(25), first)
    resid = x[:, rest] - np.outer(q, q @ x[:, rest])
    _, _, piv = scipy.linalg.qr(resid, pivoting=True, mode="economic")
    expected = np.sort(np.r_[first, rest[piv[:7]]])
    np.testing.assert_array_equal(opbs(x, 8), expected)


def test_opbs_skips_duplicate_bands():
    rng = np.random.default_rng(0)
    base = rng.random((100, 4))
    x = np.hstack([base, base])  # every band twice: the residual of a copy is zero
    chosen = opbs(x, 4)
    assert len({i % 4 for i in chosen}) == 4


def test_band_moments_by_blocks(monkeypatch):
    """Mean, variance and Gram matrix read by blocks (forced small) equal NumPy's on the whole."""
    from rednmf.detectors import msnet

    monkeypatch.setattr(msnet, "_MOMENT_BLOCK", 7)
    rng = np.random.default_rng(4)
    x = (rng.random((50, 6)) * 100 + 1000).astype(np.float32)
    mean, var, gram = msnet.band_moments(x, gram=True)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(var, x64.var(axis=0), rtol=1e-10)
    np.testing.assert_allclose(gram, x64.T @ x64, rtol=1e-13)
    assert msnet.band_moments(x)[2] is None


def test_zscore_bands():
    rng = np.random.default_rng(1)
    cube = rng.random((6, 7, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -3.0]
    cube[:, :, 2] = 4.0  # constant band -> 0, no division by zero
    z = zscore_bands(cube)
    np.testing.assert_allclose(z[:, :, :2].mean(axis=(0, 1)), 0.0, atol=1e-6)
    np.testing.assert_allclose(z[:, :, :2].std(axis=(0, 1)), 1.0, atol=1e-6)
    assert np.all(z[:, :, 2] == 0.0)


def test_msnet_parameter_count():
    """Per layer: encoder 3x3 convs b->16->b and a 1x1 conv; decoder two 1x1 convs."""
    b, h = 64, 16
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    per_layer = conv(b, h, 3) + conv(h, b, 3) + conv(b, b, 1) + 2 * conv(b, b, 1)
    assert n_params(build_msnet(b, (20, 20), n_layers=3)) == 3 * per_layer == 92976


def receptive_field(n_layers: int) -> tuple[int, int]:
    """Rows and columns of input pixels that move the reconstruction at the centre."""
    torch.manual_seed(0)
    net = build_msnet(3, (32, 32), n_layers=n_layers).double()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    net(x)[0][0, :, 16, 16].sum().backward()
    hit = (x.grad[0].abs().sum(dim=0) > 0).numpy()
    rows, cols = np.nonzero(hit)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def test_msnet_receptive_field():
    """One layer is two 3x3 convs (5x5); each coarser layer widens it."""
    assert receptive_field(1) == (5, 5)
    widths = [receptive_field(n)[0] for n in (1, 2, 3)]
    assert widths[0] < widths[1] < widths[2] <= 32


def test_msnet_outputs_one_map_per_layer():
    net = build_msnet(4, (12, 10), n_layers=3)
    out = net(torch.zeros(1, 4, 12, 10))
    assert len(out) == 3 and all(o.shape == (1, 4, 12, 10) for o in out)


def test_msnet_loss_against_numpy():
    """One layer (no resizing), so the multiscale term is the plain squared error; the
    anomaly term is the 5x5 LoG with mirror padding (scipy), weighted by the separator."""
    rng = np.random.default_rng(2)
    b, r, c = 3, 9, 8
    x = rng.standard_normal((b, r, c))
    y = rng.standard_normal((b, r, c))
    m = rng.random((r, c))
    lam = 0.3
    got = msnet_loss(
        torch.from_numpy(x)[None], [torch.from_numpy(y)[None]], torch.from_numpy(m), lam
    )
    err = ((x - y) ** 2).sum(axis=0)
    log = np.stack([scipy.ndimage.correlate(y[k], LOG_TEMPLATE, mode="mirror") for k in range(b)])
    br = ((1 - m) ** 2 * err).sum() / (1 - m).sum()
    anomaly = (m**2 * (log**2).sum(axis=0)).sum() / (m.sum() + 1e-6)
    expected = (br + lam * anomaly + err.sum() / (r * c)) / b
    np.testing.assert_allclose(float(got), expected, rtol=1e-6)


def test_log_template_ignores_flat_images():
    assert LOG_TEMPLATE.sum() == 0.0


# -- BSDM pieces ---------------------------------------------------------------------


def test_diffusion_coefficients_against_a_loop():
    T, t = 1000, 500
    betas = [1e-4 + (0.02 - 1e-4) * i / (T - 1) for i in range(T)]
    alpha_bar = 1.0
    for i in range(t + 1):
        alpha_bar *= 1.0 - betas[i]
    gamma = 0.0
    for i in range(t):
        prod = 1.0
        for j in range(i, t):
            prod *= 1.0 - betas[j]
        gamma += (betas[i] * prod) ** 0.5
    root, g = diffusion_coefficients(T, t)
    assert root == pytest.approx(alpha_bar**0.5, rel=1e-12)
    assert g == pytest.approx(gamma, rel=1e-12)


def test_denoiser_parameter_count():
    """The reference network for 205 bands (embed 128, hidden 200/100/50), counted layer
    by layer: Linear(i, o) has i*o + o weights, LayerNorm(n) 2n."""
    lin = lambda i, o: i * o + o  # noqa: E731
    bands, e, t = 205, 128, 512

    def block(i, w, o):
        skip = 0 if i == o else lin(i, o)
        return 2 * i + lin(i, w) + lin(w, o) + lin(t, o) + 2 * o + lin(o, o) + skip

    expected = (
        lin(e, t) + lin(t, t)  # time embedding
        + lin(2 * bands, t) + lin(t, e)  # shift embedding
        + lin(bands, e)  # spectral embedding
        + block(e, 200, 100) + block(100, 200, 50)
        + 2 * block(50, 100, 50)
        + block(50, 200, 100) + block(100, 200, e)
        + lin(e, bands)
    )  # fmt: skip
    assert n_params(build_denoiser(bands)) == expected


def test_denoiser_is_per_pixel():
    """No spatial mixing: permuting the pixels permutes the output the same way."""
    torch.manual_seed(0)
    net = build_denoiser(9, 8, (6, 5, 4)).double()
    x = torch.rand(30, 9, dtype=torch.float64)
    t = torch.full((1,), 500.0)
    perm = torch.randperm(30)
    torch.testing.assert_close(net(x, t)[perm], net(x[perm], t))


def test_shift_embedding_equals_the_repeated_input():
    """The band-summed weights give the reference's Linear on [mean]*b + [std]*b,
    in value and in gradient."""
    torch.manual_seed(1)
    net = build_denoiser(7, 8, (5, 4, 3)).double()
    x = torch.rand(20, 7, dtype=torch.float64)
    rep = torch.cat(
        [x.mean(1, keepdim=True).expand(-1, 7), x.std(1, keepdim=True).expand(-1, 7)], dim=1
    )
    net.shift(rep).sum().backward()
    grad_ref = net.shift[0].weight.grad.clone()
    net.zero_grad()
    net.shift_embedding(x).sum().backward()
    torch.testing.assert_close(net.shift(rep), net.shift_embedding(x))
    torch.testing.assert_close(net.shift[0].weight.grad, grad_ref)


# -- the contract --------------------------------------------------------------------


@pytest.mark.parametrize("method", DEEP_METHODS)
def test_contract_progress_and_planted_anomalies(scene, method):
    cube, gt = scene
    steps: list[tuple[int, float]] = []
    det = get_detector(method, **TINY[method])
    assert det.fit(cube, callback=lambda i, loss: steps.append((i, loss))) is det
    assert det.decision_scores_.shape == gt.shape
    assert np.isfinite(det.decision_scores_).all()
    assert det.labels_.shape == gt.shape and set(np.unique(det.labels_)) <= {0, 1}
    assert det.labels_.sum() == (det.decision_scores_ > det.threshold_).sum()
    assert [i for i, _ in steps] == list(range(1, det.total_steps() + 1))
    assert [loss for _, loss in steps] == det.loss_history_
    assert det.device_ == "cpu"
    assert roc_auc(det.decision_scores_, gt) > 0.95


def test_msnet_trains_and_separates(scene):
    """The loss falls during the first round; the separator (rounds > 1) is used."""
    cube, gt = scene
    det = MSNet(**TINY["msnet"]).fit(cube)
    first = det.loss_history_[: det.epochs]
    assert first[-1] < 0.6 * first[0]  # 2.16 -> 1.13 measured
    assert len(det.round_scores_) == 2
    assert len(det.bands_selected_) == 16
    np.testing.assert_array_equal(det.decision_scores_, det.round_scores_[-1])


def test_bsdm_suppresses_the_background(scene):
    """After suppression the anomalies stand further from the background (global RX of
    the suppressed scene, mean anomaly score over mean background score, grows)."""
    from rednmf.scoring.global_rx import global_rx

    cube, gt = scene
    det = BSDM(**TINY["bsdm"]).fit(cube)
    assert det.loss_history_[-1] < det.loss_history_[0]
    assert det.suppressed_.shape == cube.shape
    before = global_rx(cube)
    after = det.decision_scores_
    ratio = lambda s: s[gt > 0].mean() / s[gt == 0].mean()  # noqa: E731
    assert ratio(after) > ratio(before)


@pytest.mark.parametrize("method", DEEP_METHODS)
def test_same_seed_same_map_and_global_rng_untouched(scene, method):
    cube, _ = scene
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = get_detector(method, **TINY[method], random_state=7).fit(cube).decision_scores_
    torch.testing.assert_close(torch.rand(3), expected_next)  # caller's stream unchanged
    b = get_detector(method, **TINY[method], random_state=7).fit(cube).decision_scores_
    c = get_detector(method, **TINY[method], random_state=8).fit(cube).decision_scores_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not torch.are_deterministic_algorithms_enabled()  # restored


def test_nodata_pixels_scored_nan(scene):
    cube, _ = scene
    holed = cube.astype(np.float64).copy()
    holed[0, :3] = np.nan
    det = BSDM(**TINY["bsdm"]).fit(holed)
    assert np.isnan(det.decision_scores_[0, :3]).all()
    assert np.isfinite(det.decision_scores_[1:]).all()


def test_resolve_device():
    assert _deep.resolve_device("cpu").type == "cpu"
    with pytest.raises(InputError, match="not a torch device"):
        _deep.resolve_device("tpu:x")


# -- rednmf bench --------------------------------------------------------------------


def test_table2_leaves_deep_methods_out_unless_asked(tmp_path):
    from rednmf.experiments import make_context, table2

    full = table2.methods(make_context(tmp_path, None))
    assert not set(DEEP_METHODS) & set(full) and "rednmf" in full
    assert set(DEEP_METHODS) <= set(table2.methods(make_context(tmp_path, None, deep=True)))
    named = table2.methods(make_context(tmp_path, None, methods=["msnet", "grx"]))
    assert named == ["grx", "msnet"]
    quick = make_context(tmp_path, None, quick=True, deep=True)
    assert set(DEEP_METHODS) <= set(table2.methods(quick))
    assert dict(quick.params("bsdm"))["epochs"] == quick.max_iter  # short schedule


def test_bench_quick_deep_through_the_cli(tmp_path, capsys, monkeypatch):
    import csv

    from rednmf import cli

    monkeypatch.setenv("REDNMF_DATA", str(tmp_path / "no-scenes"))  # the synthetic scene only
    out = tmp_path / "out"
    args = ["bench", "table2", "--quick", "--deep", "--methods", "grx,msnet,bsdm"]
    code = cli.main([*args, "--out", str(out), "--jobs", "1"])
    assert code == 0, capsys.readouterr().err
    with (out / "table2.csv").open() as fh:
        rows = {r["method"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"grx", "msnet", "bsdm"}
    for m in DEEP_METHODS:
        assert 0.5 < float(rows[m]["auc"]) <= 1.0
        assert rows[m]["paper_auc"] == ""  # the paper has no synthetic-small column
    report = (out / "report.md").read_text()
    assert "Not in this run" not in report


# -- tiles: scenes over the memory budget --------------------------------------------


def test_plan_tiles_partitions_the_scene_in_aligned_windows():
    from rednmf.detectors._tiles import plan_tiles

    assert [t.whole for t in plan_tiles((30, 27), 10, whole_values=8100)] == [True]
    for per_pixel, tile_values in [(10, 4000), (10, 2000), (1, 100)]:
        tiles = plan_tiles(
            (30, 27), per_pixel, halo=4, align=4, whole_values=1, tile_values=tile_values
        )
        owner = np.zeros((30, 27), dtype=int)
        for tile in tiles:
            owner[tile.core] += 1
            (r0, r1), (c0, c1) = tile.rows, tile.cols
            assert r0 % 4 == 0 and c0 % 4 == 0 and not tile.whole
            assert (r1 - r0) * (c1 - c0) * per_pixel <= max(tile_values, 12 * 12 * per_pixel)
            a, b = tile.core_rows
            assert r0 == max(0, a - 4) and r1 == min(30, b + 4)
            np.testing.assert_array_equal(
                np.zeros((30, 27))[tile.window][tile.core_in_window].shape,
                np.zeros((30, 27))[tile.core].shape,
            )
        np.testing.assert_array_equal(owner, 1)  # the cores partition the scene


@pytest.fixture
def tiny_tiles(monkeypatch):
    """Every scene over the budget, and tiles of a few hundred working values."""
    from rednmf.detectors import _tiles

    monkeypatch.setattr(_tiles, "WHOLE_SCENE_VALUES", 1)
    monkeypatch.setattr(_tiles, "TILE_VALUES", 20_000)


def test_bsdm_by_tiles_equals_the_whole_scene(scene, tiny_tiles, monkeypatch):
    """Training on strips of one row (32 tiles, the loss summed over them) and suppressing
    strip by strip give the whole-scene fit up to float rounding (40 Adam steps and 10
    reverse steps amplify it: 1e-6 of the largest suppressed value and 2e-5 of the largest
    score measured), the planted anomalies, and the same map again."""
    from rednmf.detectors import _tiles
    from rednmf.detectors.bsdm import work_per_pixel

    cube, gt = scene
    monkeypatch.setattr(_tiles, "TILE_VALUES", 32 * work_per_pixel(30, 16, (32, 16, 8)))
    tiled = BSDM(**TINY["bsdm"]).fit(cube)
    monkeypatch.setattr(_tiles, "WHOLE_SCENE_VALUES", 2**40)
    whole = BSDM(**TINY["bsdm"]).fit(cube)
    assert (tiled.n_tiles_, whole.n_tiles_) == (32, 1)
    np.testing.assert_allclose(tiled.loss_history_, whole.loss_history_, rtol=1e-5)
    # K = 10 reverse steps, each dividing by sqrt(alpha_bar) = 0.28: values up to 6e6 here
    big = np.abs(whole.suppressed_).max()
    np.testing.assert_allclose(tiled.suppressed_, whole.suppressed_, atol=1e-5 * big)
    scale = whole.decision_scores_.max()
    np.testing.assert_allclose(tiled.decision_scores_, whole.decision_scores_, atol=1e-4 * scale)
    assert roc_auc(tiled.decision_scores_, gt) > 0.95
    again = BSDM(**TINY["bsdm"])
    monkeypatch.setattr(_tiles, "WHOLE_SCENE_VALUES", 1)
    np.testing.assert_array_equal(again.fit(cube).decision_scores_, tiled.decision_scores_)


@pytest.mark.parametrize(("n_layers", "shape"), [(3, (70, 66)), (2, (41, 38))])
def test_msnet_tiles_give_the_whole_scene_outputs_loss_and_gradient(n_layers, shape):
    """In float64, on scenes whose sides are not multiples of the coarsest pooling: every
    output of the network on each tile's core equals the whole scene's, and the tiles'
    shares of the loss and of its gradient sum to the whole scene's (halo = the
    detector's: the receptive radius rounded up to the alignment)."""
    from rednmf.detectors._tiles import plan_tiles
    from rednmf.detectors.msnet import receptive_radius

    torch.manual_seed(0)
    rows, cols = shape
    align = 2 ** (n_layers - 1)
    halo = -(-receptive_radius(n_layers) // align) * align
    tiles = plan_tiles(shape, 1, halo=halo, align=align, whole_values=1, tile_values=40**2)
    cores = {tuple(t.core_rows) for t in tiles}
    assert len(tiles) >= 3 and len(cores) >= 3 and all(not t.whole for t in tiles)
    net = build_msnet(3, shape, n_layers=n_layers).double()
    x = torch.randn(1, 3, rows, cols, dtype=torch.float64)
    sep = torch.rand(rows, cols, dtype=torch.float64)
    outputs = net(x)
    loss = msnet_loss(x, outputs, sep, 0.3)
    params = list(net.parameters())  # the last encoder's side branch is unused: zeros
    grad = lambda f: torch.autograd.grad(f, params, allow_unused=True, materialize_grads=True)  # noqa: E731
    grads = grad(loss)
    total = 0.0
    summed = [torch.zeros_like(g) for g in grads]
    for tile in tiles:
        win = x[(..., *tile.window)]
        parts = net(win, tile)
        for whole_out, part in zip(outputs, parts, strict=True):
            torch.testing.assert_close(
                part[(..., *tile.core_in_window)],
                whole_out[(..., *tile.core)],
                rtol=1e-12,
                atol=1e-12,
            )
        share = msnet_loss(win, parts, sep, 0.3, tile)
        total = total + float(share.detach())
        for acc, g in zip(summed, grad(share), strict=True):
            acc += g
    assert total == pytest.approx(float(loss.detach()), rel=1e-12)
    for acc, g in zip(summed, grads, strict=True):
        torch.testing.assert_close(acc, g, rtol=1e-9, atol=1e-12)


def test_msnet_by_tiles_equals_the_whole_scene(scene, tiny_tiles, monkeypatch):
    """The fit on two tiles (the loss's shares summed) is the whole-scene fit up to float
    rounding, and finds the planted anomalies; the band standardisation of the windows
    uses the scene's moments."""
    from rednmf.detectors import _tiles

    cube, gt = scene
    # strips of 16 rows, windows with a halo of 24 rows (clipped to the scene): 2 tiles
    monkeypatch.setattr(_tiles, "TILE_VALUES", (16 + 2 * 24) * 32 * WORK_PER_BAND * 16)
    tiled = MSNet(**TINY["msnet"]).fit(cube)
    monkeypatch.setattr(_tiles, "WHOLE_SCENE_VALUES", 2**40)
    whole = MSNet(**TINY["msnet"]).fit(cube)
    assert (tiled.n_tiles_, whole.n_tiles_) == (2, 1)
    np.testing.assert_array_equal(tiled.bands_selected_, whole.bands_selected_)
    np.testing.assert_allclose(tiled.loss_history_, whole.loss_history_, rtol=1e-5)
    scale = whole.decision_scores_.max()
    np.testing.assert_allclose(tiled.decision_scores_, whole.decision_scores_, atol=1e-4 * scale)
    assert roc_auc(tiled.decision_scores_, gt) > 0.95
