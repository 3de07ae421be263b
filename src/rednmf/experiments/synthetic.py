"""Sec. 5.2.1 (Figs 2-3): the Salinas-synthetic protocol on our generator.

Salinas itself is not public here, so :func:`rednmf.datasets.make_scene`
stands in: a 120 x 120 x 204 low-rank background with targets implanted at
known abundances (``a * t + (1 - a) * b``, a from 1.0 down to 0.2;
:data:`rednmf.experiments.common.SYNTHETIC_SCENES`). AUC per method overall
and per abundance (the targets of one abundance against the background).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rednmf.datasets import make_scene
from rednmf.experiments.common import SYNTHETIC_SCENES, Context, Job
from rednmf.experiments.paper import PAPER_METHOD, paper_results, paper_value
from rednmf.experiments.report import markdown_table, versus
from rednmf.experiments.table2 import QUICK_METHODS, scene_figures
from rednmf.io.writers import write_csv
from rednmf.metrics import roc_auc

NAME = "synthetic"
TITLE = "Sec. 5.2.1 - synthetic scene"


def methods(ctx: Context) -> list[str]:
    """Every registered method, or ``--methods`` (quick: the cheap ones unless ``--methods``
    names others; the deep ones with ``--deep``)."""
    return ctx.pick(QUICK_METHODS if ctx.quick and ctx.methods is None else ctx.every_method())


def jobs(ctx: Context) -> list[Job]:
    """One fit per method on the synthetic scene."""
    return [Job(NAME, ctx.synthetic, m, ctx.params(m), label=m) for m in methods(ctx)]


def summarise(ctx: Context, results: list[tuple[Job, dict[str, Any]]]) -> str:
    """Write ``synthetic.csv`` and figures; return AUC overall and per abundance."""
    _, gt, truth = make_scene(**SYNTHETIC_SCENES[ctx.synthetic], return_truth=True)
    levels = sorted({float(a) for a in np.unique(truth.abundance) if a > 0}, reverse=True)
    back = gt == 0
    rows, got = [], {}
    for j, r in results:
        row: dict[str, Any] = {
            "method": j.method,
            "auc": r["auc"],
            "paper_auc": paper_value("synthetic", j.method, j.scene),
        }
        for a in levels:
            keep = back | np.isclose(truth.abundance, a)
            row[f"auc_a{a:g}"] = roc_auc(r["scores"][keep], gt[keep])
        rows.append(row)
        got[j.method] = (r, row)
    write_csv(
        ctx.out / "synthetic.csv",
        rows,
        ["method", "auc", "paper_auc", *[f"auc_a{a:g}" for a in levels]],
    )
    scene_figures(ctx, NAME, ctx.synthetic, {m: v[0] for m, v in got.items()}, ctx.synthetic)
    cols = ["AUC", *[f"a = {a:g}" for a in levels]]

    def cell(m: str, c: str) -> str:
        row = got[m][1]
        if c == "AUC":
            return versus(row["auc"], row["paper_auc"])
        return f"{row['auc_a' + c.removeprefix('a = ')]:.4f}"

    ms = [m for m in methods(ctx) if m in got]
    paper_only = {
        k: v
        for k, v in paper_results()["synthetic_auc"].items()
        if k not in {PAPER_METHOD.get(m) for m in ms}
    }
    return "\n".join(
        [
            f"Scene: {ctx.synthetic} ({SYNTHETIC_SCENES[ctx.synthetic]}). Cells: AUC (paper's AUC "
            "on Salinas-synthetic, difference); per abundance: that abundance's targets against "
            "the background. Our generator is not Salinas, so the paper's numbers are context, "
            "not a target.",
            "",
            markdown_table(ms, cols, cell, "method"),
            "",
            "Paper only: " + ", ".join(f"{k} {v:.4f}" for k, v in paper_only.items()),
        ]
    )
