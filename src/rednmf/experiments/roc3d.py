"""Figs 2 and 4: Chang's 3D ROC and its derived areas per method and scene.

Uses the fits of Table 2 and of the synthetic experiment (shared through the
cache); the areas are those of :func:`rednmf.metrics.roc3d_areas`.
"""

from __future__ import annotations

from typing import Any

from rednmf.experiments import synthetic, table2
from rednmf.experiments.common import Context, Job, load_scene
from rednmf.experiments.figures import save_roc3d
from rednmf.experiments.report import markdown_table
from rednmf.io.writers import write_csv
from rednmf.metrics import roc3d_areas, roc3d_curve

NAME = "roc3d"
TITLE = "Figs 2 and 4 - 3D ROC"
AREAS = (
    "AUC_DF",
    "AUC_Dtau",
    "AUC_Ftau",
    "AUC_TD",
    "AUC_BS",
    "AUC_TDBS",
    "AUC_SNPR",
    "AUC_ODP",
    "AUC_ODP_alt",
)


def jobs(ctx: Context) -> list[Job]:
    """The fits of Table 2 and of the synthetic experiment."""
    return [
        Job(NAME, j.scene, j.method, j.params, label=j.label)
        for j in [*table2.jobs(ctx), *synthetic.jobs(ctx)]
    ]


def summarise(ctx: Context, results: list[tuple[Job, dict[str, Any]]]) -> str:
    """Write ``roc3d.csv`` and one 3D ROC figure per scene; return mean areas per method."""
    rows, curves = [], {}
    for j, r in results:
        _, gt = load_scene(j.scene, ctx.data_dir, ctx.crop)
        rows.append({"scene": j.scene, "method": j.method, **roc3d_areas(r["scores"], gt)})
        curves.setdefault(j.scene, {})[j.method] = roc3d_curve(r["scores"], gt, n_thresholds=501)
    write_csv(ctx.out / "roc3d.csv", rows, ["scene", "method", *AREAS])
    for s, c in curves.items():
        save_roc3d(ctx.out / "figures" / NAME / f"{s}_roc3d.png", c, title=s)
    ms = list(dict.fromkeys(r["method"] for r in rows))

    def cell(m: str, a: str) -> str:
        v = [r[a] for r in rows if r["method"] == m]
        return f"{sum(v) / len(v):.4f}"

    return "\n".join(
        [
            "Mean over the scenes of Table 2 and the synthetic scene; per scene in roc3d.csv. "
            "AUC_ODP = AUC(D,F) + AUC(D,tau) - AUC(F,tau); AUC_ODP_alt = AUC(D,tau) + 1 - "
            "AUC(F,tau). The paper shows the 3D ROC curves (Figs 2, 4) without these areas.",
            "",
            markdown_table(ms, list(AREAS), cell, "method"),
        ]
    )
