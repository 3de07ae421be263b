r"""BSDM: background suppression diffusion model.

J. Ma et al., "BSDM: Background suppression diffusion model for hyperspectral
anomaly detection," IEEE Trans. Circuits Syst. Video Technol. (2025) (ref.
[65] of the REDNMF paper). Written from the paper's description and the
authors' public PyTorch code (github.com/majitao-xd/BSDM-HAD), whose
``train.py`` settings are the defaults here.

The scene, min-max scaled to [0, 1] as a whole, is :math:`x_0`. A *pseudo
background noise* :math:`n \sim \mathcal N(\bar x, s_x^2)` (mean and standard
deviation of all values of :math:`x_0`) is drawn once. With the linear
schedule :math:`\beta_1..\beta_T` (:math:`10^{-4}` to :math:`0.02`,
:math:`T = 1000`), :math:`\alpha_i = 1 - \beta_i` and a fixed step :math:`t`,
the forward ("gamma") diffusion is

.. math::

    x_t = \sqrt{\bar\alpha_t}\, x_0 + \gamma_t\, n, \qquad
    \bar\alpha_t = \prod_{i \le t} \alpha_i, \qquad
    \gamma_t = \sum_{i < t} \sqrt{\beta_i \prod_{i \le j < t} \alpha_j}

(indices from 0 as in the reference code). A per-pixel denoising network
:math:`\epsilon_\theta(x, t)` (:func:`build_denoiser`: residual MLP blocks over
the spectrum with a sinusoidal time embedding and an embedding of each
pixel's spectral mean and standard deviation) is trained on the whole scene
to predict the noise, :math:`\min_\theta \|\epsilon_\theta(x_t, t) - n\|^2`,
by AdamW with cosine annealing. Background suppression applies the reverse
step to the *clean* scene ``K`` times,

.. math::

    x^{(k+1)} = \frac{x^{(k)} - \gamma_t\, \epsilon_\theta(x^{(k)}, t)}{\sqrt{\bar\alpha_t}},
    \qquad x^{(0)} = x_0,

which pulls the background, the distribution the network learned to
denoise, together while anomalies stay apart. Pixels are scored by global RX
on :math:`x^{(K)}` (:func:`rednmf.scoring.global_rx.global_rx`).

Large scenes (over :data:`~rednmf.detectors._tiles.WHOLE_SCENE_VALUES` working
values) are trained and suppressed by strips of pixels, the squared error summed
over them (the whole-scene gradient up to float rounding); the noise is drawn
whole, and its buffer holds the suppressed scene afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

from rednmf._validation import check_int
from rednmf.detectors._base import at_least, positive
from rednmf.detectors._deep import DeepDetector, import_torch
from rednmf.detectors._tiles import Tile, plan_tiles
from rednmf.exceptions import InputError
from rednmf.scoring.global_rx import global_rx

__all__ = ["BSDM", "build_denoiser", "diffusion_coefficients", "work_per_pixel"]


def diffusion_coefficients(T: int, t: int) -> tuple[float, float]:
    r"""``(sqrt(alpha_bar_t), gamma_t)`` of the linear schedule (module docstring).

    The schedule runs from ``1e-4`` to ``0.02`` scaled by ``1000 / T``, as in
    the improved-DDPM code the reference builds on.
    """
    scale = 1000.0 / T
    betas = np.linspace(scale * 1e-4, scale * 0.02, T, dtype=np.float64)
    alphas = 1.0 - betas
    alpha_bar = float(np.prod(alphas[: t + 1]))
    # prod_{j=i}^{t-1} alpha_j for i = 0..t-1: reversed cumulative products.
    tail = np.cumprod(alphas[:t][::-1])[::-1]
    gamma = float(np.sum(np.sqrt(betas[:t] * tail)))
    return math.sqrt(alpha_bar), gamma


def build_denoiser(
    bands: int, embed: int = 128, hidden: tuple[int, int, int] = (200, 100, 50)
) -> Any:
    """The BSDM denoising network for spectra of ``bands`` values.

    Maps ``(pixels, bands)`` spectra and a step ``t`` (a ``(1,)`` tensor) to
    the predicted noise, ``(pixels, bands)``. Every layer acts on one pixel's
    spectrum; there is no spatial mixing. With ``h = (h0, h1, h2)``:
    embedding ``bands -> embed``; blocks ``embed -> h1 -> h2`` (down), two
    ``h2 -> h2`` (middle), ``h2 -> h1 -> embed`` (up); output ``embed -> bands``.
    Each block is ``LayerNorm, tanh, Linear(in, width), tanh, Linear(width, out)``,
    plus the projected time embedding, then ``LayerNorm, tanh, Linear(out, out)``,
    plus a skip (identity, or a linear map when the widths differ); block widths
    ``h0`` (down and up) and ``h1`` (middle).
    """
    torch = import_torch()
    nn, functional = torch.nn, torch.nn.functional
    h0, h1, h2 = hidden
    t_dim = 4 * embed

    class Block(nn.Module):
        def __init__(self, n_in: int, width: int, n_out: int) -> None:
            super().__init__()
            self.inner = nn.Sequential(
                nn.LayerNorm(n_in), nn.Tanh(), nn.Linear(n_in, width), nn.Tanh(),
                nn.Linear(width, n_out),
            )  # fmt: skip
            self.time = nn.Sequential(nn.Tanh(), nn.Linear(t_dim, n_out))
            self.outer = nn.Sequential(nn.LayerNorm(n_out), nn.Tanh(), nn.Linear(n_out, n_out))
            self.skip = nn.Identity() if n_in == n_out else nn.Linear(n_in, n_out)

        def forward(self, h: Any, temb: Any) -> Any:
            return self.outer(self.inner(h) + self.time(temb)) + self.skip(h)

    class Denoiser(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.time = nn.Sequential(nn.Linear(embed, t_dim), nn.Tanh(), nn.Linear(t_dim, t_dim))
            # Pixel mean and std, each repeated over the bands (the reference's input layout).
            self.shift = nn.Sequential(
                nn.Linear(2 * bands, 4 * embed), nn.Tanh(), nn.Linear(4 * embed, embed)
            )
            self.embed = nn.Linear(bands, embed)
            self.blocks = nn.ModuleList(
                [
                    Block(embed, h0, h1),
                    Block(h1, h0, h2),
                    Block(h2, h1, h2),
                    Block(h2, h1, h2),
                    Block(h2, h0, h1),
                    Block(h1, h0, embed),
                ]
            )
            self.out = nn.Sequential(nn.Tanh(), nn.Linear(embed, bands))

        def shift_embedding(self, x: Any) -> Any:
            """The shift branch on ``[mean]*bands + [std]*bands`` of each pixel.

            The first layer's product with that repeated vector equals the
            product of ``[mean, std]`` with the two band-sums of its weight, in
            value and in gradient; computed that way it costs ``2`` instead of
            ``2 * bands`` multiplications per output.
            """
            first, rest = self.shift[0], self.shift[1:]
            w = first.weight.view(first.weight.shape[0], 2, bands).sum(dim=2)
            stats = torch.cat([x.mean(dim=1, keepdim=True), x.std(dim=1, keepdim=True)], dim=1)
            return rest(functional.linear(stats, w, first.bias))

        def forward(self, x: Any, t: Any) -> Any:
            half = embed // 2
            freqs = torch.exp(
                torch.arange(half, device=x.device, dtype=x.dtype) * (-math.log(10000.0) / half)
            )
            angles = t.to(x.dtype)[:, None] * freqs[None]
            temb = self.time(torch.cat([angles.sin(), angles.cos()], dim=1))
            h = self.embed(x) + self.shift_embedding(x)
            for block in self.blocks:
                h = block(h, temb)
            return self.out(h)

    return Denoiser()


class BSDM(DeepDetector):
    r"""BSDM (Ma et al., TCSVT 2025): background suppression diffusion model + global RX.

    See the module docstring for the model. Needs torch
    (``pip install 'rednmf[torch]'``).

    Parameters
    ----------
    epochs : int, default=500
        AdamW steps, each on the whole scene.
    lr : float, default=1e-4
        Initial learning rate, cosine-annealed to ``lr / 10`` over ``epochs``.
    T : int, default=1000
        Length of the diffusion schedule.
    t : int, default=500
        The fixed diffusion step of training and suppression, ``1 <= t < T``.
    K : int, default=10
        Reverse steps of the suppression.
    embed : int, default=128
        Width of the spectral embedding (the time embedding is ``4 * embed``).
    hidden : tuple of 3 ints, default=(200, 100, 50)
        Hidden widths of the denoising network (:func:`build_denoiser`).
    ridge : float, default=0.0
        Diagonal loading of the final global RX (relative to the mean band
        variance; a floor of ``1e-12`` always applies).
    random_state : int, default=0
        Seed of the network's initial weights and of the pseudo background noise.
    device : str or None, default=None
        Torch device; ``None`` is ``'cuda'`` when a GPU is present, else ``'cpu'``.
    contamination : float, default=0.01
        Fraction of pixels labelled anomalous in ``labels_``.

    Attributes
    ----------
    decision_scores_, threshold_, labels_ :
        See :class:`rednmf.detectors._base.BaseDetector`.
    suppressed_ : ndarray of shape (rows, cols, bands)
        The scene after background suppression, :math:`x^{(K)}` (float32).
    loss_history_ : list of float
        Training loss of every step.
    n_tiles_ : int
        The strips of pixels the scene was trained and suppressed in (1: the whole
        scene at once; more when the network would hold more than
        :data:`~rednmf.detectors._tiles.WHOLE_SCENE_VALUES` working values).

    References
    ----------
    J. Ma, W. Xie, Y. Li and L. Fang, "BSDM: Background suppression diffusion
    model for hyperspectral anomaly detection," IEEE Trans. Circuits Syst.
    Video Technol., 2025.
    """

    name = "bsdm"

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **DeepDetector._parameter_constraints,
        "epochs": at_least(1),
        "lr": positive("neither"),
        "T": at_least(2),
        "t": at_least(1),
        "K": at_least(0),
        "embed": at_least(2),
        "hidden": ["array-like"],
        "ridge": positive(),
    }

    def __init__(
        self,
        *,
        epochs: int = 500,
        lr: float = 1e-4,
        T: int = 1000,  # noqa: N803 - the paper's symbol
        t: int = 500,
        K: int = 10,  # noqa: N803 - the paper's symbol
        embed: int = 128,
        hidden: tuple[int, int, int] = (200, 100, 50),
        ridge: float = 0.0,
        random_state: int = 0,
        device: Any = None,
        contamination: float = 0.01,
    ) -> None:
        self.epochs = epochs
        self.lr = lr
        self.T = T
        self.t = t
        self.K = K
        self.embed = embed
        self.hidden = hidden
        self.ridge = ridge
        self.random_state = random_state
        self.device = device
        self.contamination = contamination

    def total_steps(self) -> int:
        """``epochs`` AdamW steps."""
        return int(self.epochs)

    def _check_params(self) -> None:
        check_int("t", self.t, low=1, high=int(self.T) - 1)
        if self.embed % 2:
            raise InputError(f"embed must be even (sine and cosine halves), got {self.embed}")
        if not isinstance(self.hidden, (tuple, list)) or len(self.hidden) != 3:
            raise InputError(f"hidden must be 3 widths, e.g. (200, 100, 50), got {self.hidden!r}")
        for h in self.hidden:
            check_int("hidden", h, low=1)
        super()._check_params()

    def _fit_torch(
        self, torch: Any, cube: np.ndarray, device: Any, report: Callable[[float], None]
    ) -> np.ndarray:
        rows, cols, bands = cube.shape
        hidden = tuple(int(h) for h in self.hidden)
        tiles = plan_tiles((rows, cols), work_per_pixel(bands, int(self.embed), hidden))
        self.n_tiles_ = len(tiles)
        lo, hi = float(cube.min()), float(cube.max())
        span = hi - lo if hi > lo else 1.0

        def scaled(tile: Tile) -> Any:  # x_0 of the tile's pixels, (pixels, bands)
            x0 = (cube[tile.window].reshape(-1, bands) - lo) / span
            return torch.from_numpy(np.ascontiguousarray(x0, dtype=np.float32)).to(device)

        whole = scaled(tiles[0]) if len(tiles) == 1 else None
        pixels = (lambda tile: whole) if whole is not None else scaled
        mean, std = _value_moments(whole, lambda: map(scaled, tiles))
        root_ab, gamma = diffusion_coefficients(int(self.T), int(self.t))
        net = build_denoiser(bands, int(self.embed), hidden).to(device)
        # The pseudo background noise; after training, the suppressed scene in its place.
        buffer = torch.normal(mean, std, size=(rows * cols, bands)).to(device)
        grid = buffer.view(rows, cols, bands)

        def at(tile: Tile) -> Any:  # the buffer's values at the tile's pixels
            return buffer if whole is not None else grid[tile.window].reshape(-1, bands)

        step = torch.full((1,), float(self.t), device=device)
        epochs, lr = int(self.epochs), float(self.lr)
        opt = torch.optim.AdamW(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, lr / 10)
        for _ in range(epochs):
            total = 0.0
            for tile in tiles:  # the mean squared error over all values, summed by tiles
                noise = at(tile)
                x_t = root_ab * pixels(tile) + gamma * noise
                loss = ((net(x_t, step) - noise) ** 2).sum() / buffer.numel()
                loss.backward()
                total += float(loss.detach())
            opt.step()
            opt.zero_grad()
            sched.step()
            report(total)
        with torch.no_grad():
            for tile in tiles:
                z = pixels(tile)
                for _ in range(int(self.K)):
                    z = (z - gamma * net(z, step)) / root_ab
                grid[tile.window] = z.view(grid[tile.window].shape)
        self.suppressed_ = grid.cpu().numpy()  # float32: global RX sums it in float64
        return global_rx(self.suppressed_, ridge=float(self.ridge))


def work_per_pixel(bands: int, embed: int, hidden: tuple[int, int, int]) -> int:
    """Working values per pixel of a training step of :func:`build_denoiser`, roughly.

    Each block keeps about two values per input and hidden unit and four per output
    unit for the backward pass; the spectral and shift embeddings ``5 * embed``; the
    input, the noise and the output ``3 * bands``. (Measured at 50 bands and the
    default widths: 15 KB a pixel, 3800 float32 values; this gives 5658.)
    """
    h0, h1, h2 = hidden
    blocks = [
        (embed, h0, h1),
        (h1, h0, h2),
        (h2, h1, h2),
        (h2, h1, h2),
        (h2, h0, h1),
        (h1, h0, embed),
    ]
    return 3 * bands + 5 * embed + sum(2 * i + 2 * w + 4 * o for i, w, o in blocks)


def _value_moments(whole: Any, parts: Callable[[], Iterator[Any]]) -> tuple[float, float]:
    """Mean and standard deviation (unbiased) of all values of the scaled scene.

    ``whole``: the scene as one tensor (its float32 statistics, as before tiling);
    or None: accumulated in float64 over the tensors of ``parts()``, in two passes.
    """
    if whole is not None:
        return float(whole.mean()), float(whole.std())
    count, total = 0, 0.0
    for part in parts():
        count += part.numel()
        total += float(part.double().sum())
    mean = total / count
    squares = sum(float(((part.double() - mean) ** 2).sum()) for part in parts())
    return mean, math.sqrt(squares / max(1, count - 1))
