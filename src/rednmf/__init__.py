"""rednmf: hyperspectral anomaly detection with REDNMF and its baselines.

The public names::

    from rednmf import REDNMF, make_scene, read_scene, roc_auc

    cube, gt = make_scene(random_state=0)          # (rows, cols, bands), (rows, cols)
    det = REDNMF().fit(cube)                       # the paper's model, measured defaults
    print(roc_auc(det.decision_scores_, gt))
"""

from rednmf.datasets import make_scene
from rednmf.detectors.rednmf import REDNMF
from rednmf.detectors.registry import get_detector, list_methods
from rednmf.exceptions import ConvergenceWarning, InputError
from rednmf.io import read_scene
from rednmf.metrics import roc_auc

__version__ = "0.1.0"

__all__ = [
    "REDNMF",
    "ConvergenceWarning",
    "InputError",
    "get_detector",
    "list_methods",
    "make_scene",
    "read_scene",
    "roc_auc",
    "__version__",
]
