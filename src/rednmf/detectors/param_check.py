"""The parameter checks of every registered detector, without importing it.

A detector declares its parameters the scikit-learn way
(``_parameter_constraints``, checked in ``fit``), so checking them means
importing scikit-learn, about a second before the first line of output. The
command line wants to refuse ``--rank -1`` or ``--param lam=x`` at once. So
the declarations are also kept as plain data in
:mod:`rednmf.detectors._param_table`, generated from the classes by this
module (``python -m rednmf.detectors.param_check``; a test fails when the
table and the classes disagree), and :func:`check_params` applies them with
scikit-learn's semantics and its exact message:

* an unknown method or parameter (the message of
  :func:`rednmf.detectors.registry.get_detector`);
* a value outside the declared constraints (``Interval``, ``StrOptions``,
  ``Options``, ``'boolean'``, ``None``, ``'array-like'``, a class);
* a dual window (``dual_window``): odd sides, ``outer > inner``.

Passing here is not the last word: ``fit`` validates again with the classes
themselves (and the checks that need them, ``_check_params``).
"""

from __future__ import annotations

import copy
import importlib
import math
import numbers
from pathlib import Path
from typing import Any

from rednmf.detectors.registry import METHODS, _check_name, unknown_params_message
from rednmf.exceptions import InputError, one_line
from rednmf.scoring.windows import check_window_sides

__all__ = ["check_params", "render_table"]

#: Modules whose types are resolved by import to test ``isinstance`` (cheap and
#: abstract base classes such as ``numbers.Integral`` need it); other classes
#: are matched by name along the value's type's MRO, without importing them.
_IMPORTABLE = ("builtins", "numbers", "numpy")


def check_params(method: str, params: dict[str, Any] | None) -> None:
    """Check the parameters of ``method`` as its ``fit`` would, without importing it.

    Parameters
    ----------
    method : str
        A registered short name (:data:`rednmf.detectors.registry.METHODS`).
    params : dict or None
        Constructor parameters; the others keep their defaults.

    Raises
    ------
    InputError
        With one line: an unknown method or parameter, a value outside the
        method's declared constraints (scikit-learn's message), or window
        sides that do not make a dual window.
    """
    spec = _check_values(method, params)
    if spec["window"] is not None:
        params = params or {}
        inner = params.get("inner", spec["window"][0])
        outer = params.get("outer", spec["window"][1])
        check_window_sides(inner, outer)


def _check_values(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The method's name, the parameters' names and each value alone; the method's table entry."""
    from rednmf.detectors._param_table import TABLE

    spec = TABLE[_check_name(method)]
    params = dict(params or {})
    unknown = sorted(set(params) - set(spec["params"]))
    if unknown:
        raise InputError(
            unknown_params_message(
                method, unknown, spec["params"], spec["renamed"], spec["deprecated"]
            )
        )
    for key, value in params.items():
        constraints = spec["constraints"].get(key)
        if constraints is None or any(_satisfied(c, value) for c in constraints):
            continue
        shown = [c[-2] for c in constraints if not c[-1]]
        text = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
        raise InputError(
            one_line(
                f"The {key!r} parameter of {spec['class']} must be {text}. Got {value!r} instead."
            )
        )
    return spec


def _type(path: str) -> type | None:
    module, _, qualname = path.rpartition(".")
    if module.split(".")[0] not in _IMPORTABLE:
        return None
    return getattr(importlib.import_module(module), qualname)


def _is_instance(value: Any, path: str) -> bool:
    cls = _type(path)
    if cls is not None:
        return isinstance(value, cls)
    return any(f"{c.__module__}.{c.__qualname__}" == path for c in type(value).__mro__)


def _qualname(value: Any) -> str:
    return f"{value.__module__}.{value.__qualname__}" if isinstance(value, type) else ""


def _satisfied(constraint: list[Any] | tuple[Any, ...], value: Any) -> bool:
    """Whether ``value`` meets one encoded constraint (scikit-learn's ``is_satisfied_by``)."""
    kind = constraint[0]
    if kind == "interval":
        _, number, left, right, closed = constraint[:5]
        if number == "int":
            ok = isinstance(value, numbers.Integral)
        else:
            ok = isinstance(value, numbers.Real)
            if number == "real_not_int":
                ok = ok and not isinstance(value, numbers.Integral)
        if not ok or (not isinstance(value, numbers.Integral) and math.isnan(value)):
            return False
        lo = -math.inf if left is None else left
        hi = math.inf if right is None else right
        below = value < lo if closed in ("left", "both") else value <= lo
        above = value > hi if closed in ("right", "both") else value >= hi
        return not (below or above)
    if kind == "options":
        _, type_path, values = constraint[:3]
        if not _is_instance(value, type_path):
            return False
        if type_path == "builtins.type":
            return _qualname(value) in values
        try:
            return value in values
        except TypeError:  # unhashable or incomparable
            return False
    if kind == "instance":
        return _is_instance(value, constraint[1])
    if kind == "boolean":
        return isinstance(value, bool) or _is_instance(value, "numpy.bool")
    if kind == "none":
        return value is None
    if kind == "array-like":
        import numpy as np

        return (
            hasattr(value, "__len__") or hasattr(value, "shape") or hasattr(value, "__array__")
        ) and not np.isscalar(value)
    raise ValueError(f"unknown constraint kind {kind!r}")  # pragma: no cover


# -- the table, generated from the classes (imports scikit-learn) ----------------


def _encode(constraint: Any) -> tuple[Any, ...]:
    """One scikit-learn constraint as plain data: (kind, ..., description, hidden)."""
    from sklearn.utils import _param_validation as pv

    c = pv.make_constraint(constraint)
    shown = c
    if isinstance(c, pv.Options):  # described with its options sorted: a set has no order
        shown = copy.copy(c)
        key = _qualname if c.type is type else repr
        shown.options = sorted(c.options, key=key)
    tail = (str(shown), bool(c.hidden))
    if isinstance(c, pv.Interval):
        number = {numbers.Integral: "int", numbers.Real: "real"}.get(c.type, "real_not_int")
        return ("interval", number, c.left, c.right, c.closed, *tail)
    if isinstance(c, pv.Options):  # StrOptions too
        if c.type is type:
            values = sorted(_qualname(v) for v in c.options)
        else:
            values = sorted(c.options, key=repr)
        return ("options", _qualname(c.type), values, *tail)
    if isinstance(c, pv._Booleans):
        return ("boolean", *tail)
    if isinstance(c, pv._NoneConstraint):
        return ("none", *tail)
    if isinstance(c, pv._ArrayLikes):
        return ("array-like", *tail)
    if isinstance(c, pv._InstancesOf):
        return ("instance", _qualname(c.type), *tail)
    raise TypeError(f"no plain form for the constraint {c!r}; extend param_check._encode")


def _method_spec(method: str) -> dict[str, Any]:
    from rednmf.detectors.registry import get_detector_class

    cls = get_detector_class(method)
    names = cls._get_param_names()
    declared = cls._parameter_constraints
    constraints = {
        key: [_encode(c) for c in declared[key]]
        for key in names
        if key in declared and declared[key] != "no_validation"
    }
    defaults = cls().get_params(deep=False)
    window = (defaults["inner"], defaults["outer"]) if cls.dual_window else None
    return {
        "class": cls.__name__,
        "params": names,
        "renamed": dict(sorted(cls.renamed_params.items())),
        "deprecated": list(getattr(cls, "deprecated_params", ())),
        "window": window,
        "constraints": constraints,
    }


def render_table() -> str:
    """The source of :mod:`rednmf.detectors._param_table`, from the detector classes."""
    import pprint

    table = {m: _method_spec(m) for m in sorted(METHODS)}
    body = pprint.pformat(table, width=99, sort_dicts=False)
    return (
        '"""Parameters and constraints of the registered detectors, as plain data.\n\n'
        "Generated by ``python -m rednmf.detectors.param_check`` from the classes\n"
        "(:mod:`rednmf.detectors.param_check`); do not edit by hand.\n"
        '"""\n\n'
        "# fmt: off\n"
        f"TABLE = {body}\n"
    )


def main() -> None:
    """Write :mod:`rednmf.detectors._param_table` from the detector classes."""
    path = Path(__file__).with_name("_param_table.py")
    path.write_text(render_table())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
