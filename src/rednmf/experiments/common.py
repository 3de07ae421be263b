"""What every experiment shares: scenes, jobs, the run context and the work of one job.

A :class:`Job` is one unit of work (one fit of one method on one scene, or one
convergence trace); it is hashed with everything its result depends on into a
cache key (:meth:`Job.spec`). :func:`execute` does the work of one job and is
what the worker processes run.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rednmf import __version__
from rednmf.datasets import list_scenes, load_benchmark, make_scene
from rednmf.detectors.registry import DEEP_METHODS, METHODS, get_detector, method_params
from rednmf.exceptions import InputError
from rednmf.io.mat import file_sha256
from rednmf.metrics import roc_auc

__all__ = [
    "SYNTHETIC_SCENES",
    "Context",
    "Job",
    "convergence_trace",
    "execute",
    "load_scene",
    "scene_spec",
]

#: Synthetic scenes by name: keyword arguments of :func:`rednmf.datasets.make_scene`.
#: ``synthetic`` follows the Salinas-synthetic protocol of the paper (Sec. 5.2.1):
#: 120 x 120 x 204, targets implanted at known abundances, from strong to weak.
SYNTHETIC_SCENES: dict[str, dict[str, Any]] = {
    "synthetic": {
        "rows": 120,
        "cols": 120,
        "bands": 204,
        "n_endmembers": 5,
        "n_targets": 30,
        "target_size": (1, 1, 2),
        "abundances": (1.0, 0.8, 0.6, 0.4, 0.3, 0.2),
        "noise": 0.005,
        "random_state": 0,
    },
    "synthetic-small": {
        "rows": 40,
        "cols": 40,
        "bands": 50,
        "n_endmembers": 3,
        "n_targets": 8,
        "abundances": (1.0, 0.6, 0.4, 0.2),
        "noise": 0.005,
        "random_state": 0,
    },
    # targets of four sizes, from one pixel to larger than the local guard window (9 x 9);
    # benchmarks/planted_sizes.py adds noise and varies random_state
    "planted-sizes": {
        "rows": 120,
        "cols": 120,
        "bands": 60,
        "n_targets": 8,
        "target_size": (1, 3, 7, 15),
        "abundances": (0.6, 0.4),
        "noise": 0.0,
        "random_state": 0,
    },
}


@dataclass(frozen=True)
class Context:
    """Settings of one ``rednmf bench`` run, handed to every experiment.

    Attributes
    ----------
    out : Path
        Results folder (CSV, figures, ``report.md``; the cache in ``out/cache``).
    data_dir : Path or None
        Folder of the real ``.mat`` scenes; ``None`` when there is none.
    quick : bool
        Small subset: few scenes, iterations and draws.
    methods : tuple of str or None
        The user's ``--methods``; ``None`` = each experiment's own list.
    real_scenes : tuple of str
        Real scene names (file stems) the experiments run on.
    crop : int or None
        Keep only the top-left ``crop x crop`` pixels of real scenes (quick mode).
    max_iter : int or None
        Iteration cap of the factorisations (quick mode), else their defaults;
        also the cap on the training epochs of the deep detectors.
    deep : bool
        Include the deep detectors (:data:`~rednmf.detectors.registry.DEEP_METHODS`)
        in the experiments that run every method.
    """

    out: Path
    data_dir: Path | None
    quick: bool = False
    methods: tuple[str, ...] | None = None
    real_scenes: tuple[str, ...] = ()
    crop: int | None = None
    max_iter: int | None = None
    deep: bool = False

    @property
    def synthetic(self) -> str:
        """Name of the synthetic scene of this run."""
        return "synthetic-small" if self.quick else "synthetic"

    def pick(self, default: Sequence[str]) -> list[str]:
        """``default`` restricted to ``--methods`` (in the order of ``default``)."""
        if self.methods is None:
            return list(default)
        return [m for m in default if m in self.methods]

    def every_method(self) -> list[str]:
        """Every registered method; the deep ones only with ``deep`` or named in ``methods``."""
        named = self.methods or ()
        return [m for m in METHODS if self.deep or m not in DEEP_METHODS or m in named]

    def params(self, method: str, **extra: Any) -> tuple[tuple[str, Any], ...]:
        """Parameter overrides of ``method``: ``extra`` plus the quick-mode iteration cap."""
        params = dict(extra)
        if self.max_iter is not None:
            for cap in ("max_iter", "epochs"):
                if cap in method_params(method):
                    params.setdefault(cap, self.max_iter)
        return tuple(sorted(params.items()))

    def real(self, wanted: Sequence[str] | None = None) -> list[str]:
        """Real scenes of this run, optionally restricted to names starting with ``wanted``."""
        if wanted is None:
            return list(self.real_scenes)
        return [s for s in self.real_scenes if any(s.startswith(w) for w in wanted)]


@dataclass(frozen=True)
class Job:
    """One unit of work.

    Attributes
    ----------
    experiment : str
        The experiment that asked for it (not part of the cache key, so that
        experiments share identical fits).
    scene : str
        Real scene stem or a key of :data:`SYNTHETIC_SCENES`.
    method : str
        Registered detector name.
    params : tuple of (str, value)
        Overrides of the method's defaults.
    label : str
        Row label in the experiment's tables (a variant name); not in the key.
    noise : float
        Standard deviation of Gaussian noise added to the min-max scaled cube.
    seed : int
        Seed of the noise draw.
    repeat : int
        Repetition index (runtime medians).
    kind : {'fit', 'convergence'}
        A detector fit, or a per-iteration trace of the factorisation.
    """

    experiment: str
    scene: str
    method: str
    params: tuple[tuple[str, Any], ...] = ()
    label: str = ""
    noise: float = 0.0
    seed: int = 0
    repeat: int = 0
    kind: str = "fit"

    def spec(self, ctx: Context) -> dict[str, Any]:
        """Everything the result depends on: full parameters, scene identity, version."""
        full = get_detector(self.method, **dict(self.params)).get_params()
        return {
            "kind": self.kind,
            "method": self.method,
            "params": full,
            "scene": scene_spec(self.scene, ctx.data_dir, ctx.crop),
            "noise": self.noise,
            "seed": self.seed if self.noise else 0,
            "repeat": self.repeat,
            "version": __version__,
        }


def scene_spec(name: str, data_dir: Path | None, crop: int | None) -> dict[str, Any]:
    """Identity of a scene for the cache key: generator settings, or the file's content.

    A file is named by its SHA-256, so that a scene rewritten in place (a
    corrected truth, another file of the same name) is fitted again, not served
    from the cache.
    """
    if name in SYNTHETIC_SCENES:
        return {"name": name, "make_scene": SYNTHETIC_SCENES[name]}
    path = _scene_path(name, data_dir)
    stat = path.stat()
    return {"name": name, "sha256": _content(path, stat.st_size, stat.st_mtime_ns), "crop": crop}


@functools.lru_cache(maxsize=64)
def _content(path: Path, size: int, mtime_ns: int) -> str:
    """:func:`~rednmf.io.mat.file_sha256` of ``path``, once per size and modification time."""
    return file_sha256(path)


def _scene_path(name: str, data_dir: Path | None) -> Path:
    if data_dir is None:
        raise InputError(f"scene {name!r} needs the data folder; pass --data")
    path = Path(data_dir) / f"{name}.mat"
    if not path.is_file():
        names = ", ".join(p.stem for p in list_scenes(data_dir))
        raise InputError(f"no scene {name!r} in {data_dir}; available: {names}")
    return path


def load_scene(
    name: str, data_dir: Path | None, crop: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(cube, gt)`` of a real or synthetic scene (cached per process by content; do not
    modify)."""
    spec = scene_spec(name, data_dir, crop)
    return _load(name, None if name in SYNTHETIC_SCENES else data_dir, crop, spec.get("sha256"))


@functools.lru_cache(maxsize=4)
def _load(
    name: str, data_dir: Path | None, crop: int | None, sha256: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`load_scene`, cached by the file's content (``sha256``), not by its name."""
    if name in SYNTHETIC_SCENES:
        cube, gt = make_scene(**SYNTHETIC_SCENES[name])
        return cube, gt
    with warnings.catch_warnings():  # bench has no --gt-var: the truth is the preferred one
        warnings.filterwarnings("ignore", message=".*could be the ground truth")
        cube, gt = load_benchmark(_scene_path(name, data_dir))
    if crop is not None:
        cube, gt = cube[:crop, :crop], gt[:crop, :crop]
    return cube, gt


def noisy_cube(cube: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """The paper's Sec. 5.3 protocol: ``X + N(0, sigma^2)`` on the min-max normalised cube."""
    x = np.asarray(cube, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return x + np.random.default_rng(seed).normal(0.0, sigma, size=x.shape)


def convergence_trace(
    method: str, params: dict[str, Any], cube: np.ndarray
) -> dict[str, np.ndarray]:
    """Relative reconstruction error and objective of a factorisation, per iteration.

    One fit of the detector (``get_detector(method, **params).fit(cube)``,
    with its own scaling and initialisation) with a fit callback that records,
    after every iteration ``t``, the objective and the relative error of the
    iterate it is handed (:class:`rednmf.solvers._driver.Iterate`):
    ``||X - W_t H_t - S_t||_F / ||X||_F`` on the scaled data, ``S = 0`` for a
    method without one. The whole-matrix solvers hand ``W_t, H_t, S_t``
    themselves (the norm is taken in the working dtype); REDNMF's block engine
    hands the fit term ``||X - W_t H_t - S_t||_F^2``, accumulated in float64.

    Returns
    -------
    dict
        ``rel_error[t]`` and ``objective[t]``, each of length the iterations
        run (``max_iter`` with ``tol = 0``).

    Raises
    ------
    InputError
        If the method reports no iteration (it is not iterative).
    """
    rel: list[float] = []
    obj: list[float] = []
    norm_x: list[float] = []

    def record(iteration: int, objective: float, state: Any) -> None:
        if state is None:
            return
        if not norm_x:
            norm_x.append(float(np.linalg.norm(state.X)))
        rel.append(state.residual_norm() / norm_x[0])
        obj.append(float(objective))

    get_detector(method, **params).fit(cube, callback=record)
    if not obj:
        raise InputError(f"no convergence trace for method {method!r}: it does not iterate")
    return {"rel_error": np.asarray(rel), "objective": np.asarray(obj)}


def execute(job: Job, ctx: Context) -> dict[str, Any]:
    """Do the work of one job and return its record (NumPy arrays go to the cache's npz)."""
    cube, gt = load_scene(job.scene, ctx.data_dir, ctx.crop)
    if job.noise:
        cube = noisy_cube(cube, job.noise, job.seed)
    params = dict(job.params)
    record: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at a capped max_iter, etc.
        start = time.perf_counter()
        if job.kind == "convergence":
            record.update(convergence_trace(job.method, params, cube))
        else:
            det = get_detector(job.method, **params).fit(cube)
            scores = det.decision_scores_
            record["scores"] = scores.astype(np.float32)
            record["auc"] = roc_auc(scores, gt)
            n_iter = getattr(det, "n_iter_", None)
            record["n_iter"] = None if n_iter is None else int(n_iter)
        record["seconds"] = time.perf_counter() - start
    return record
