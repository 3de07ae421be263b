"""RunOptions: the options of a detect run, validated once, from the CLI to the pipeline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.io

from rednmf import cli
from rednmf.detectors import registry
from rednmf.exceptions import InputError
from rednmf.options import RunOptions
from rednmf.pipeline import detect_batch, detect_scene


def _scene(tmp_path, name="scene"):
    rng = np.random.default_rng(3)
    cube = rng.random((24, 24, 6))
    cube[5, 7] += 4.0  # one planted anomaly
    path = tmp_path / f"{name}.mat"
    scipy.io.savemat(path, {"data": cube})
    return path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "nosuch"}, "unknown method 'nosuch'"),
        ({"gt": "a.mat", "gt_var": "gt"}, "--gt and --gt-var are exclusive"),
        ({"threshold": 1.0, "far": 0.01}, "--threshold and --far are exclusive"),
        ({"contamination": 0.0}, "--contamination must be > 0.0"),
        ({"far": 0.7}, "--far must be <= 0.5"),
        ({"min_area": 0}, "--min-area must be >= 1"),
        ({"exclude_border": -1}, "--exclude-border must be >= 0"),
        ({"params": {"n_components": 0}}, "The 'n_components' parameter of REDNMF"),
        ({"method": "grx", "params": {"nosuch": 1}}, "has no parameter 'nosuch'"),
        (
            {"method": "grx", "contamination": 0.02, "params": {"contamination": 0.05}},
            "--contamination 0.02 and --param contamination=0.05 disagree",
        ),
        (
            {"method": "grx", "threshold": 400.0, "params": {"contamination": 0.05}},
            "--threshold and --param contamination=0.05 are exclusive",
        ),
        (
            {"method": "grx", "far": 1e-3, "params": {"contamination": 0.05}},
            "--far and --param contamination=0.05 are exclusive",
        ),
    ],
)
def test_bad_options_are_refused_when_built(fields, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        RunOptions(**fields)


def test_options_are_frozen_copied_and_replaced_with_a_new_check():
    params = {"n_components": 4}
    options = RunOptions(params=params, contamination=0.02)
    params["n_components"] = -1  # the caller's dict is not the options'
    assert options.params == {"n_components": 4}
    assert options.detector_params == {"n_components": 4, "contamination": 0.02}
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.method = "grx"  # type: ignore[misc]
    assert RunOptions.of(options) is options
    assert RunOptions.of(options, method="nmf").method == "nmf"
    with pytest.raises(InputError, match="--contamination and --far are exclusive"):
        RunOptions.of(options, far=0.01)
    with pytest.raises(TypeError):
        RunOptions.of(None, nosuch=1)


def test_an_options_object_and_keywords_are_the_same_run(tmp_path):
    path = _scene(tmp_path)
    by_keywords = detect_scene(path, tmp_path / "a", method="grx", far=0.01, min_area=2)
    options = RunOptions(method="grx", far=0.01, min_area=2)
    by_object = detect_scene(path, tmp_path / "b", options)
    replaced = detect_scene(path, tmp_path / "c", RunOptions(method="grx"), far=0.01, min_area=2)
    for other in (by_object, replaced):
        for key in ("threshold", "threshold_rule", "n_detections", "min_area", "params"):
            assert other[key] == by_keywords[key], key
        scores = np.load(other["files"]["scores_npy"])
        assert np.array_equal(scores, np.load(by_keywords["files"]["scores_npy"]))
    assert by_keywords["min_area"] == 2 and by_keywords["threshold_rule_name"] == "far"


def _count_checks(monkeypatch) -> list[str]:
    calls: list[str] = []
    check = registry.check_params

    def counted(name, params):
        calls.append(name)
        return check(name, params)

    monkeypatch.setattr(registry, "check_params", counted)
    return calls


def test_a_run_checks_its_parameters_once(tmp_path, monkeypatch):
    calls = _count_checks(monkeypatch)
    params = {"ridge": 0.02}
    detect_scene(_scene(tmp_path), tmp_path / "o", method="grx", params=params)
    assert calls == ["grx"]
    calls.clear()
    rows = detect_batch(
        [_scene(tmp_path, "a"), _scene(tmp_path, "b")],
        tmp_path / "batch",
        method="grx",
        params=params,
    )
    assert [r["status"] for r in rows] == ["ok", "ok"] and calls == ["grx"]
    calls.clear()
    argv = ["detect", str(_scene(tmp_path)), "--out", str(tmp_path / "cli"), "--method", "grx"]
    assert cli.main([*argv, "--param", "ridge=0.02", "--json"]) == 0
    assert calls == ["grx"]
    calls.clear()
    # no parameter given: the defaults are not checked again (they are valid by construction)
    detect_scene(_scene(tmp_path), tmp_path / "d", method="grx")
    assert calls == []
