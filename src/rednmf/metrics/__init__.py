"""Detection metrics: pixel-level ROC curve and AUC, Chang's 3D ROC areas."""

from rednmf.metrics.roc import roc_auc, roc_auc_by_target_size, roc_curve, roc_curve_auc
from rednmf.metrics.roc3d import roc3d_areas, roc3d_curve

__all__ = [
    "roc_auc",
    "roc_auc_by_target_size",
    "roc_curve",
    "roc_curve_auc",
    "roc3d_areas",
    "roc3d_curve",
]
