"""Fig 9: relative reconstruction error ``||X - WH - S||_F / ||X||_F`` per iteration.

For NMF, L1NMF, RNMF and REDNMF over 500 iterations (``tol = 0``), with each
method's default parameters; ``S = 0`` for NMF and L1NMF. The objective of each
method is recorded as well. Each trace is one fit of the detector with a fit
callback that reads every iterate (:func:`rednmf.experiments.common.convergence_trace`).
"""

from __future__ import annotations

from typing import Any

from rednmf.experiments.common import Context, Job
from rednmf.experiments.figures import save_convergence
from rednmf.experiments.report import markdown_table
from rednmf.io.writers import write_csv

NAME = "convergence"
TITLE = "Fig 9 - convergence"
METHODS = ("nmf", "l1nmf", "rnmf", "rednmf")
ITERATIONS = 500
SCENES = ("abu-airport-1",)


def _scenes(ctx: Context) -> list[str]:
    return [*ctx.real(SCENES), ctx.synthetic]


def jobs(ctx: Context) -> list[Job]:
    """One trace per method and scene (the paper does not name its scene)."""
    n = ctx.max_iter if ctx.quick and ctx.max_iter else ITERATIONS
    return [
        Job(NAME, s, m, ctx.params(m, max_iter=n, tol=0.0), label=m, kind="convergence")
        for s in _scenes(ctx)
        for m in ctx.pick(METHODS)
    ]


def summarise(ctx: Context, results: list[tuple[Job, dict[str, Any]]]) -> str:
    """Write ``convergence.csv`` (one row per iteration) and the curves."""
    rows, final = [], {}
    for j, r in results:
        for t, (e, o) in enumerate(zip(r["rel_error"], r["objective"], strict=True), start=1):
            rows.append(
                {
                    "scene": j.scene,
                    "method": j.method,
                    "iteration": t,
                    "rel_error": float(e),
                    "objective": float(o),
                }
            )
        final[j.scene, j.method] = r
    write_csv(
        ctx.out / "convergence.csv",
        rows,
        ["scene", "method", "iteration", "rel_error", "objective"],
    )
    sc = list(dict.fromkeys(s for s, _ in final))
    ms = list(dict.fromkeys(m for _, m in final))
    for s in sc:
        folder = ctx.out / "figures" / NAME
        traces = {m: final[s, m]["rel_error"] for m in ms if (s, m) in final}
        save_convergence(
            folder / f"{s}_rel_error.png", traces, ylabel="||X - WH - S||_F / ||X||_F", title=s
        )
        objs = {m: final[s, m]["objective"] for m in ms if (s, m) in final}
        save_convergence(folder / f"{s}_objective.png", objs, ylabel="objective", title=s)

    def cell(m: str, s: str) -> str:
        r = final.get((s, m))
        if r is None:
            return "-"
        e = r["rel_error"]
        return f"{e[min(9, e.size - 1)]:.4f} / {e[-1]:.4f} ({r['seconds']:.1f} s)"

    return "\n".join(
        [
            "Relative reconstruction error after 10 iterations / after the last one (time of the "
            "traced run). Each method's objective is in convergence.csv; the paper gives Fig 9 "
            "without numbers (it reports NMF lowest, L1NMF stagnating highest, RNMF and REDNMF "
            "between). Curves: figures/convergence/.",
            "",
            markdown_table(ms, sc, cell, "method"),
        ]
    )
