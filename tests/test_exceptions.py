"""rednmf.exceptions: ConvergenceWarning is scikit-learn's, and importing the module is cheap."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import sklearn.exceptions

import rednmf
from rednmf import exceptions
from rednmf.detectors.registry import get_detector


def _fit_short(method: str = "nmf") -> None:
    cube = np.random.default_rng(0).random((12, 12, 6))
    get_detector(method, n_components=3, max_iter=2, tol=1e-12, random_state=0).fit(cube)


def test_a_filter_on_scikit_learns_class_catches_rednmfs_warning():
    assert issubclass(exceptions.ConvergenceWarning, sklearn.exceptions.ConvergenceWarning)
    assert rednmf.ConvergenceWarning is exceptions.ConvergenceWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit_short()
    kinds = [type(w.message) for w in caught]
    assert exceptions.ConvergenceWarning in kinds, kinds  # the fit does warn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=sklearn.exceptions.ConvergenceWarning)
        _fit_short()
    assert not [w for w in caught if isinstance(w.message, sklearn.exceptions.ConvergenceWarning)]


def test_the_warning_pickles_as_rednmfs_class():
    warning = exceptions.ConvergenceWarning("NMF stopped at max_iter=2")
    back = pickle.loads(pickle.dumps(warning))
    assert type(back) is exceptions.ConvergenceWarning and str(back) == str(warning)
    assert repr(exceptions.ConvergenceWarning) == "<class 'rednmf.exceptions.ConvergenceWarning'>"


def test_importing_the_module_does_not_import_scikit_learn():
    code = (
        "import sys\n"
        "import rednmf.exceptions as e\n"
        "print('sklearn' in sys.modules)\n"
        "from rednmf.exceptions import ConvergenceWarning\n"
        "print('sklearn' in sys.modules, ConvergenceWarning is e.ConvergenceWarning)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(exceptions.__file__).parents[1])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.stdout.split() == ["False", "True", "True"], res.stdout + res.stderr
