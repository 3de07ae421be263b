"""The options of a detect run, validated once: :class:`RunOptions`.

The command line builds one :class:`RunOptions` from its flags and hands it to
:func:`rednmf.pipeline.detect_scene` or :func:`rednmf.pipeline.detect_batch`;
from Python the same fields are keyword arguments of those functions. Every
field is checked in ``__post_init__``, before any file is read: the cheap
checks first (the method's name, exclusive options, the threshold rule, the
detection filters), then the detector's parameters, when any are given, by
scikit-learn itself (:func:`rednmf.detectors.registry.check_params`), which
imports the detector's module and with it scikit-learn; the defaults need no
check, so without parameters an error in the data is found by the read first.
Importing this module imports neither NumPy nor scikit-learn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rednmf.detectors.registry import check_method
from rednmf.exceptions import InputError

__all__ = ["RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    """What a detect run does, apart from its input and output folder.

    Parameters
    ----------
    method : str, default 'rednmf'
        A registered detector (:func:`rednmf.list_methods`).
    params : mapping, optional
        Constructor parameters of the detector (a copy is kept).
    threshold, contamination, far : float, optional
        At most one threshold rule (:func:`rednmf.thresholding.choose_threshold`);
        default: the detector's ``contamination`` (0.01 unless ``params`` sets it),
        whose ``threshold_`` is then the run's threshold. ``contamination`` sets
        that parameter (:attr:`detector_params`).
    data_var, gt_var : str, optional
        Variables of the scene file, when ambiguous.
    gt, mask : str, optional
        ``FILE`` or ``FILE:VAR`` of a separate ground truth / valid-pixel mask
        (``gt`` and ``gt_var`` are exclusive).
    min_area : int, default 1
        Drop detections smaller than this many pixels.
    exclude_border : int, default 0
        Drop detections that touch a band of this many pixels along the image edge.
    lazy : bool or None
        Passed to :func:`rednmf.io.read_scene` (True for ``--out-of-core``).
    report : bool, default True
        Write the HTML report.
    wait : bool, default False
        Wait for another run holding the output folder instead of refusing.

    Raises
    ------
    InputError
        With one line, on the first option that is not valid.
    """

    method: str = "rednmf"
    params: Mapping[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    contamination: float | None = None
    far: float | None = None
    data_var: str | None = None
    gt_var: str | None = None
    gt: str | None = None
    mask: str | None = None
    min_area: int = 1
    exclude_border: int = 0
    lazy: bool | None = None
    report: bool = True
    wait: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params or {}))
        check_method(self.method)
        if self.gt is not None and self.gt_var is not None:
            raise InputError("--gt and --gt-var are exclusive; use --gt FILE:VAR")
        from rednmf._validation import check_int
        from rednmf.thresholding import check_threshold_rule

        check_threshold_rule(self.threshold, self.contamination, self.far)
        if "contamination" in self.params and (self.threshold is not None or self.far is not None):
            rule = "--threshold" if self.threshold is not None else "--far"
            raise InputError(
                f"{rule} and --param contamination={self.params['contamination']} are "
                "exclusive; give one threshold rule"
            )
        check_int("--min-area", self.min_area, low=1)
        check_int("--exclude-border", self.exclude_border, low=0)
        if self.params:  # the defaults are valid (tests/detectors/test_sklearn_api.py)
            from rednmf.detectors.registry import check_params  # imports scikit-learn

            check_params(self.method, self.detector_params)

    @property
    def detector_params(self) -> dict[str, Any]:
        """``params`` with ``contamination`` as the detector's ``contamination``.

        The detector's ``threshold_`` is then the run's threshold under that rule:
        one threshold source.

        Raises
        ------
        InputError
            If both give a contamination, and different ones.
        """
        merged = dict(self.params)
        if self.contamination is not None:
            if merged.get("contamination", self.contamination) != self.contamination:
                raise InputError(
                    f"--contamination {self.contamination:g} and --param contamination="
                    f"{merged['contamination']} disagree; give one"
                )
            merged["contamination"] = self.contamination
        return merged

    @classmethod
    def of(cls, options: RunOptions | None = None, **fields: Any) -> RunOptions:
        """``options`` with ``fields`` replaced, or new options from ``fields``.

        The keyword arguments of :func:`rednmf.pipeline.detect_scene` go through
        here: ``detect_scene(path, out, method="lrx", far=1e-3)`` and
        ``detect_scene(path, out, RunOptions(method="lrx", far=1e-3))`` are the
        same run. Options given and not replaced are not validated again.

        Raises
        ------
        TypeError
            If a keyword is not a field.
        InputError
            If the options are not valid.
        """
        if options is None:
            return cls(**fields)
        return dataclasses.replace(options, **fields) if fields else options
