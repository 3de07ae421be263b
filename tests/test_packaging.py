"""pyproject.toml's ranges against the two version sets CI installs (requirements/)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + sum(extras.values(), [])]


def _pins(name: str) -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def test_every_range_is_lower_bounded_and_none_is_pinned():
    for req in _requirements():
        operators = {spec.operator for spec in req.specifier}
        assert ">=" in operators, f"{req}: no lower bound"
        assert not operators & {"==", "===", "~="}, f"{req}: pinned"


def test_oldest_set_is_exactly_the_lower_bounds():
    lower = {
        canonicalize_name(req.name): Version(spec.version)
        for req in _requirements()
        for spec in req.specifier
        if spec.operator == ">="
    }
    assert _pins("oldest.txt") == lower


def test_lock_satisfies_every_range():
    lock = _pins("lock.txt")
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} missing from requirements/lock.txt"
        assert req.specifier.contains(lock[name], prereleases=True), (req, lock[name])
    assert "rednmf" not in lock
