"""Detection metrics: pixel-level ROC curve and AUC."""

from rednmf.metrics.roc import roc_auc, roc_curve

__all__ = ["roc_auc", "roc_curve"]
