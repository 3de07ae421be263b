"""Detectors by short name, for the command line and benchmarks.

Adding a method is one line in :data:`METHODS`: its short name, the import
path ``"module:Class"`` of a :class:`~rednmf.detectors._base.BaseDetector`
subclass, and a one-line description. Modules are imported only when a
method is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rednmf.exceptions import InputError, one_line

if TYPE_CHECKING:  # the base class imports scikit-learn: only when a method is asked for
    from rednmf.detectors._base import BaseDetector

__all__ = [
    "DEEP_METHODS",
    "METHODS",
    "check_method",
    "check_params",
    "get_detector",
    "get_detector_class",
    "list_methods",
    "method_params",
    "unknown_params_message",
]

#: short name -> (import path "module:Class", one-line description)
METHODS: dict[str, tuple[str, str]] = {
    "rednmf": (
        "rednmf.detectors.rednmf:REDNMF",
        "Robust asymmetric encoder-decoder NMF with a sparse anomaly term (Moradi et al. 2026)",
    ),
    "nmf": ("rednmf.detectors.nmf:NMF", "Lee-Seung NMF, scored by the residual X - WH"),
    "rnmf": ("rednmf.detectors.nmf:RNMF", "Robust NMF X ~ WH + S, sparse S (Zhang et al. 2011)"),
    "l1nmf": ("rednmf.detectors.nmf:L1NMF", "NMF with an L1 loss, reweighted MU; residual score"),
    "ewnmf": ("rednmf.detectors.nmf:EWNMF", "Entropy-weighted NMF (Wei et al. 2022)"),
    "grx": ("rednmf.detectors.rx:GRX", "Global RX: Mahalanobis distance to the scene statistics"),
    "lrx": ("rednmf.detectors.rx:LRX", "Local dual-window RX on a PCA projection (box filters)"),
    "msrx": (
        "rednmf.detectors.rx:MSRX",
        "Multi-scale RX: REDNMF's scorer on the raw cube (local + global, pooled; Fisher)",
    ),
    "crd": ("rednmf.detectors.cr:CRD", "Collaborative representation detector (Li & Du 2015)"),
    "lsunrsorad": ("rednmf.detectors.cr:LSUNRSORAD", "Local-sum NRS, outlier removal (Tan 2019)"),
    "lsad-cr-idw": ("rednmf.detectors.cr:LSADCRIDW", "Local-sum CR, inverse-distance (Tan 2019)"),
    "msnet": (
        "rednmf.detectors.msnet:MSNet",
        "Multiscale CNN, separation training, reconstruction error (Liu 2024; needs torch)",
    ),
    "bsdm": (
        "rednmf.detectors.bsdm:BSDM",
        "Background suppression diffusion model, then global RX (Ma 2025; needs torch)",
    ),
}

#: The methods that train a network (torch, minutes per scene on a CPU): left out of
#: ``rednmf bench`` unless asked for (``--deep`` or ``--methods``).
DEEP_METHODS: tuple[str, ...] = ("msnet", "bsdm")


def list_methods() -> list[tuple[str, str]]:
    """Return ``(name, description)`` of every registered method, sorted by name."""
    return [(name, METHODS[name][1]) for name in sorted(METHODS)]


def check_method(name: str) -> str:
    """Return the registered name of ``name`` (case and spaces ignored), importing nothing.

    Raises
    ------
    InputError
        If ``name`` is not registered.
    """
    key = str(name).strip().lower()
    if key not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise InputError(f"unknown method {name!r}; known methods: {known}")
    return key


def get_detector_class(name: str) -> type[BaseDetector]:
    """Import and return the detector class registered as ``name``.

    Raises
    ------
    InputError
        If ``name`` is not registered.
    """
    module_name, _, class_name = METHODS[check_method(name)][0].partition(":")
    from rednmf.detectors._base import BaseDetector  # scikit-learn: after the name's check

    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, BaseDetector)):  # pragma: no cover
        raise TypeError(f"{module_name}:{class_name} is not a BaseDetector subclass")
    return cls


def method_params(name: str) -> list[str]:
    """Return the constructor parameter names of the method ``name``."""
    return get_detector_class(name)._get_param_names()


def unknown_params_message(
    name: str, unknown: list[str], valid: list[str], renamed: dict[str, str]
) -> str:
    """The one-line error for parameters that the method ``name`` does not have.

    Names the old spelling's new name where a parameter was renamed, and lists
    the valid parameters.
    """
    names = ", ".join(repr(u) for u in unknown)
    moved = [f"{u!r} is now {renamed[u]!r}" for u in unknown if u in renamed]
    hint = f" ({'; '.join(moved)})" if moved else ""
    return f"method {name!r} has no parameter {names}{hint}; valid parameters: {', '.join(valid)}"


def get_detector(name: str, **params: Any) -> BaseDetector:
    """Build the detector registered as ``name`` with the given parameters.

    Parameters
    ----------
    name : str
        Short name, see :func:`list_methods` (case-insensitive).
    **params
        Constructor parameters; unset ones keep the method's defaults. A
        method with a ``scorer`` (:mod:`rednmf.scoring.scorers`) also takes
        the scorer's parameters, as ``scorer__inner=7`` or, where the method
        has no parameter of that name, as ``inner=7`` (the command line's
        ``--inner``/``--outer`` and ``--param``). Their values are validated
        by the detector's ``fit`` (or :func:`check_params`).

    Returns
    -------
    BaseDetector
        An unfitted detector.

    Raises
    ------
    InputError
        If the method is unknown or a parameter is not one of the method's
        (or of its scorer's).
    """
    cls = get_detector_class(name)
    valid = cls._get_param_names()
    detector = cls(**{k: v for k, v in params.items() if k in valid})
    rest = {k: v for k, v in params.items() if k not in valid}
    if not rest:
        return detector
    scorer = detector._scorer() if "scorer" in valid else None
    scorer_names = [] if scorer is None else sorted(scorer.get_params())
    nested, unknown = {}, []
    for key, value in rest.items():
        sub = key.removeprefix("scorer__")
        if key.startswith("engine__") and "engine" in valid:
            nested[key] = value
        elif sub in scorer_names:
            nested[f"scorer__{sub}"] = value
        else:
            unknown.append(key)
    if unknown and scorer is not None and all(_scorer_parameter(k) for k in unknown):
        names = ", ".join(repr(k) for k in sorted(unknown))
        takes = ", ".join(scorer_names) or "none"
        raise InputError(
            f"the scorer {scorer!r} of method {name!r} has no parameter {names} (its "
            f"parameters: {takes}); drop them or choose a scorer that has them"
        )
    if unknown:
        shown = valid + [f"scorer__{k}" for k in scorer_names]
        raise InputError(unknown_params_message(name, sorted(unknown), shown, cls.renamed_params))
    try:
        return detector.set_params(**nested)
    except ValueError as exc:  # scikit-learn's word for a nested name the object lacks
        raise InputError(f"method {name!r}: {one_line(exc)}") from exc


def _scorer_parameter(key: str) -> bool:
    """Whether ``key`` (or ``scorer__key``) names a parameter of some scorer class."""
    from rednmf.scoring.scorers import SCORER_CLASSES

    sub = key.removeprefix("scorer__")
    return any(sub in c._get_param_names() for c in SCORER_CLASSES.values())


def check_params(name: str, params: dict[str, Any] | None) -> BaseDetector:
    """Build the detector ``name`` and check its parameters as its ``fit`` will.

    scikit-learn's own validation of the class's ``_parameter_constraints``
    (:meth:`rednmf.detectors._base.BaseDetector._validate_params`), then the
    checks that tie parameters together (a dual window: odd sides, ``outer >
    inner``); what needs the scene (the window inside it) waits for ``fit``.
    Imports the detector's module, and with it scikit-learn.

    Returns
    -------
    BaseDetector
        The unfitted detector.

    Raises
    ------
    InputError
        With one line: an unknown method or parameter, or a value outside the
        declared constraints (scikit-learn's message).
    """
    detector = get_detector(name, **dict(params or {}))
    detector._validate_params()
    return detector
