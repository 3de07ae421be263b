"""Table 4: median seconds per method and scene (a full ``fit``: scaling, solver, scoring).

Repeat 0 is the Table 2 fit itself (shared through the cache); the others are
new runs with the same parameters. The machine is written in the report.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from rednmf.experiments.common import Context, Job
from rednmf.experiments.paper import paper_value
from rednmf.experiments.report import format_machine, machine_info, markdown_table, versus
from rednmf.experiments.table2 import methods, scenes
from rednmf.io.writers import write_csv

NAME = "runtime"
TITLE = "Table 4 - run time"
REPEATS = 3


def _scenes(ctx: Context) -> list[str]:
    return list(dict.fromkeys([*scenes(ctx), ctx.synthetic]))


def jobs(ctx: Context) -> list[Job]:
    """``REPEATS`` fits (1 in quick mode) per method and scene."""
    n = 1 if ctx.quick else REPEATS
    return [
        Job(NAME, s, m, ctx.params(m), label=m, repeat=k)
        for s in _scenes(ctx)
        for m in methods(ctx)
        for k in range(n)
    ]


def summarise(ctx: Context, results: list[tuple[Job, dict[str, Any]]]) -> str:
    """Write ``runtime.csv`` (every repeat) and return the median table."""
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    rows = []
    for j, r in results:
        times[j.method, j.scene].append(r["seconds"])
        rows.append(
            {"scene": j.scene, "method": j.method, "repeat": j.repeat, "seconds": r["seconds"]}
        )
    write_csv(ctx.out / "runtime.csv", rows, ["scene", "method", "repeat", "seconds"])

    def cell(m: str, s: str) -> str:
        t = times.get((m, s))
        return versus(float(np.median(t)) if t else None, paper_value("table4", m, s), 2)

    return "\n".join(
        [
            f"Machine: {format_machine(machine_info())}.",
            "",
            "Cells: our median seconds (paper's mean seconds on its RTX 4060 laptop, difference). "
            "Times are wall-clock under whatever else ran on the machine; the paper's came from a "
            "different machine and, for some methods, a GPU. With --jobs > 1 fits share the CPUs, "
            "so time Table 4 with --jobs 1 on an idle machine.",
            "",
            markdown_table(methods(ctx), _scenes(ctx), cell, "method"),
        ]
    )
