"""A hyperspectral scene read from disk: the cube, its ground truth and where it came from.

:func:`read_scene` picks the cube and the ground truth among a file's
variables:

* the cube is the unique 3-D numeric variable (``--data-var`` otherwise);
* the ground truth is the unique 2-D numeric variable whose shape equals the
  cube's ``(rows, cols)`` (``--gt-var`` otherwise); ``None`` when there is none.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rednmf.exceptions import InputError
from rednmf.io.mat import check_file, is_numeric, load_mat, load_npy, load_npz

__all__ = ["Scene", "read_scene", "select_variables"]

_SUFFIXES = (".mat", ".npy", ".npz")


@dataclass
class Scene:
    """A hyperspectral scene.

    Attributes
    ----------
    cube : numpy.ndarray of shape (rows, cols, bands)
        The data, in the dtype it was stored with.
    gt : numpy.ndarray of shape (rows, cols) or None
        Ground truth as a boolean map (True = anomaly), or None.
    name : str
        Short name, the file's stem.
    path : pathlib.Path or None
        The file the scene was read from.
    variables : dict
        ``{name: description}`` of every variable in the file, e.g.
        ``{"data": "100x100x205 uint16"}``, for messages and reports.
    data_var, gt_var : str or None
        The variables chosen as cube and ground truth.
    """

    cube: np.ndarray
    gt: np.ndarray | None
    name: str
    path: Path | None = None
    variables: dict[str, str] = field(default_factory=dict)
    data_var: str | None = None
    gt_var: str | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(rows, cols, bands)`` of the cube."""
        rows, cols, bands = self.cube.shape
        return int(rows), int(cols), int(bands)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        shape = "x".join(str(n) for n in value.shape) or "scalar"
        return f"{shape} {value.dtype}"
    return str(value)


def _listing(variables: dict[str, object], names: Sequence[str] | None = None) -> str:
    names = list(variables) if names is None else list(names)
    if not names:
        return "none"
    return ", ".join(f"{n} ({_describe(variables[n])})" for n in names)


def select_variables(
    variables: dict[str, object],
    *,
    source: str,
    data_var: str | None = None,
    gt_var: str | None = None,
    prefer_gt: Sequence[str] = (),
) -> tuple[str, str | None]:
    """Choose the cube and ground-truth variables of a file.

    Parameters
    ----------
    variables : dict
        ``{name: value}`` as returned by :func:`rednmf.io.mat.load_mat`.
    source : str
        The file name, used in messages.
    data_var, gt_var : str, optional
        Explicit choices; they must exist.
    prefer_gt : sequence of str
        When several ground-truth candidates exist and ``gt_var`` is not
        given, the first candidate whose lower-cased name is in this list is
        taken instead of raising.

    Returns
    -------
    (str, str or None)
        The cube's and the ground truth's variable names.

    Raises
    ------
    InputError
        If a named variable is missing or unsuitable, or the choice is ambiguous.
    """
    numeric = {n: v for n, v in variables.items() if is_numeric(v)}

    if data_var is not None:
        if data_var not in variables:
            raise InputError(
                f"variable {data_var!r} not found in {source}; "
                f"available: {_listing(variables)}; pass --data-var with one of these"
            )
        value = variables[data_var]
        if not (is_numeric(value) and value.ndim == 3):
            raise InputError(
                f"variable {data_var!r} in {source} is {_describe(value)}, not a 3-D numeric "
                "cube (rows, cols, bands); pass --data-var with a 3-D variable"
            )
        cube_name = data_var
    else:
        cubes = [n for n, v in numeric.items() if v.ndim == 3]
        if not cubes:
            raise InputError(
                f"no 3-D numeric variable (rows, cols, bands) in {source}; "
                f"found: {_listing(variables)}; save the cube as a 3-D array"
            )
        if len(cubes) > 1:
            raise InputError(
                f"{source} holds several 3-D variables: {_listing(variables, cubes)}; "
                "pass --data-var NAME to choose the cube"
            )
        cube_name = cubes[0]

    rows, cols = numeric[cube_name].shape[:2]

    if gt_var is not None:
        if gt_var not in variables:
            raise InputError(
                f"variable {gt_var!r} not found in {source}; "
                f"available: {_listing(variables)}; pass --gt-var with one of these"
            )
        value = variables[gt_var]
        if not (is_numeric(value) and value.shape == (rows, cols)):
            raise InputError(
                f"ground truth {gt_var!r} in {source} is {_describe(value)}, but the cube is "
                f"{rows}x{cols}; pass --gt-var with a {rows}x{cols} variable"
            )
        return cube_name, gt_var

    gts = [n for n, v in numeric.items() if n != cube_name and v.shape == (rows, cols)]
    if len(gts) > 1:
        preferred = [n for p in prefer_gt for n in gts if n.lower() == p.lower()]
        if preferred:
            return cube_name, preferred[0]
        raise InputError(
            f"{source} holds several {rows}x{cols} variables that could be the ground truth: "
            f"{_listing(variables, gts)}; pass --gt-var NAME to choose one"
        )
    return cube_name, (gts[0] if gts else None)


def read_scene(
    path: str | os.PathLike[str],
    data_var: str | None = None,
    gt_var: str | None = None,
    *,
    prefer_gt: Sequence[str] = (),
) -> Scene:
    """Read a hyperspectral scene from a ``.mat``, ``.npz`` or ``.npy`` file.

    Parameters
    ----------
    path : str or path-like
        A MATLAB file (v5 or v7.3), a ``.npz`` archive, or a ``.npy`` file
        holding the 3-D cube alone.
    data_var : str, optional
        Name of the cube variable; needed only when the file holds several
        3-D arrays.
    gt_var : str, optional
        Name of the ground-truth variable; needed only when several 2-D
        arrays match the cube's ``(rows, cols)``.
    prefer_gt : sequence of str, optional
        Names (case-insensitive) that settle an ambiguous ground truth, e.g.
        ``("map", "gt", "groundtruth")``; by default an ambiguity raises.

    Returns
    -------
    Scene
        The cube as stored (any numeric dtype) and the ground truth as a
        boolean map (nonzero = anomaly) or None.

    Raises
    ------
    InputError
        If the file cannot be read or the variables are missing or ambiguous;
        the message is one line naming the problem and the fix.
    """
    p = check_file(path)
    suffix = p.suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputError(
            f"unsupported file type {p.suffix or '(no extension)'!r} for {p}; "
            "pass a .mat, .npz or .npy file"
        )

    if suffix == ".npy":
        if data_var is not None or gt_var is not None:
            raise InputError(
                f"{p.name} is a .npy file holding one array; --data-var and --gt-var "
                "apply to .mat and .npz files only"
            )
        arr = load_npy(p)
        if not (is_numeric(arr) and arr.ndim == 3):
            raise InputError(
                f"{p.name} holds a {_describe(arr)} array; a .npy scene must be a 3-D "
                "numeric cube (rows, cols, bands)"
            )
        return Scene(
            cube=arr,
            gt=None,
            name=p.stem,
            path=p,
            variables={"array": _describe(arr)},
            data_var=None,
        )

    variables = load_npz(p) if suffix == ".npz" else load_mat(p)
    cube_name, gt_name = select_variables(
        variables, source=p.name, data_var=data_var, gt_var=gt_var, prefer_gt=prefer_gt
    )
    cube = variables[cube_name]
    assert isinstance(cube, np.ndarray)
    gt = None
    if gt_name is not None:
        gt_arr = variables[gt_name]
        assert isinstance(gt_arr, np.ndarray)
        if np.iscomplexobj(gt_arr) or not np.all(np.isfinite(gt_arr)):
            raise InputError(
                f"ground truth {gt_name!r} in {p.name} holds complex, NaN or infinite values; "
                "it must be a 0/1 map"
            )
        gt = np.asarray(gt_arr != 0)
    return Scene(
        cube=cube,
        gt=gt,
        name=p.stem,
        path=p,
        variables={n: _describe(v) for n, v in variables.items()},
        data_var=cube_name,
        gt_var=gt_name,
    )
