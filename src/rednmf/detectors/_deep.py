"""What the deep detectors (MSNet, BSDM) share: torch import, device, seeds, training loop.

torch is an optional dependency (``pip install 'rednmf[torch]'``); it is imported
only when a deep detector is fitted, so the rest of the package works without it.

Reproducibility: :func:`seeded` runs a fit with torch's random generators forked
(the caller's global state is left as it was), seeded with the detector's
``random_state``, and with ``torch.use_deterministic_algorithms(True)``, so the
same seed gives the same score map on CPU. On CUDA a few kernels (the backward
pass of bilinear interpolation) have no deterministic version; there the
setting only warns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from rednmf.detectors._base import BaseDetector, at_least
from rednmf.exceptions import InputError
from rednmf.solvers._driver import FitCallback

__all__ = ["DeepDetector", "import_torch", "resolve_device", "seeded"]

#: The one-line fix printed when torch is missing.
INSTALL_HINT = "pip install 'rednmf[torch]'"


def import_torch() -> Any:
    """Return the ``torch`` module, or raise a one-line :class:`InputError` naming the fix."""
    try:
        import torch
    except ImportError as exc:
        raise InputError(f"the deep detectors (msnet, bsdm) need PyTorch; {INSTALL_HINT}") from exc
    return torch


def resolve_device(device: Any) -> Any:
    """``device`` as a ``torch.device``: ``None`` is CUDA when a GPU is present, else CPU.

    Raises
    ------
    InputError
        If the device string is invalid or the device is not available.
    """
    torch = import_torch()
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device={device!r} is not a torch device; pass 'cpu' or 'cuda'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r} but no CUDA GPU is available; pass device='cpu'")
    return dev


@contextmanager
def seeded(seed: int, device: Any) -> Iterator[Any]:
    """Seed torch with ``seed`` and make it deterministic, for the ``with`` block only.

    Yields the ``torch`` module. The global random state and the deterministic
    setting are restored on exit.
    """
    torch = import_torch()
    if device.type == "cuda":  # cuBLAS needs this set before its first call to be deterministic
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    devices = [device.index or 0] if device.type == "cuda" else []
    was = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    # torch.use_deterministic_algorithms also sets the flag of torch.compile's inductor,
    # whose import (SymPy and 800 modules) adds 70 MiB; nothing here is compiled.
    deterministic = getattr(torch._C, "_set_deterministic_algorithms", None)
    deterministic = deterministic or torch.use_deterministic_algorithms
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        deterministic(True, warn_only=device.type != "cpu")
        try:
            yield torch
        finally:
            deterministic(was, warn_only=was_warn)


class DeepDetector(BaseDetector):
    """Base of the detectors that train a torch network on the scene itself.

    A subclass sets ``random_state``, ``device`` and ``contamination`` in
    ``__init__``, implements :meth:`total_steps` and :meth:`_fit_torch`, and
    reports each optimisation step through the ``report(loss)`` it is handed
    (:meth:`_reporter`), which feeds the ``callback(step, loss, None)`` of
    :meth:`BaseDetector.fit` (the CLI's progress bar); nothing is set on the
    estimator for the fit's duration. Fitted attributes added here:
    ``loss_history_`` (the training loss of every step) and ``device_`` (the
    device used).
    """

    random_state: int
    device: Any

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "random_state": at_least(0),
        "device": "no_validation",  # checked by _check_params
    }

    def total_steps(self) -> int:
        """Number of optimisation steps of a fit (the length of the progress bar)."""
        raise NotImplementedError

    def _check_params(self) -> None:
        device = self.device
        if not (device is None or isinstance(device, str) or type(device).__module__ == "torch"):
            raise InputError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")

    def _reporter(self, callback: FitCallback | None) -> Callable[[float], None]:
        """The step function of a fit: records each training loss, reports it to ``callback``."""

        def step(loss: float) -> None:
            self.loss_history_.append(loss)
            if callback is not None:
                callback(len(self.loss_history_), loss, None)

        return step

    def _fit_scores(self, cube: np.ndarray, callback: FitCallback | None = None) -> np.ndarray:
        device = resolve_device(self.device)
        self.device_ = str(device)
        self.loss_history_: list[float] = []
        with seeded(int(self.random_state), device) as torch:
            cube = np.asarray(cube, dtype=np.float32)
            return self._fit_torch(torch, cube, device, self._reporter(callback))

    def _fit_torch(
        self, torch: Any, cube: np.ndarray, device: Any, report: Callable[[float], None]
    ) -> np.ndarray:
        """Train on ``cube`` (float32, ``(rows, cols, bands)``) and return the score map.

        ``report(loss)`` is called after each optimisation step.
        """
        raise NotImplementedError
