"""The paper's reported numbers (``paper_results.json``) and the name mappings to ours."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

__all__ = ["PAPER_METHOD", "PAPER_SCENE", "paper_results", "paper_scene"]

#: our registry name -> the method's name in the paper's tables
PAPER_METHOD: dict[str, str] = {
    "rednmf": "REDNMF",
    "nmf": "NMF",
    "l1nmf": "L1NMF",
    "rnmf": "RNMF",
    "ewnmf": "EWNMF",
    "lsunrsorad": "LSUNRSORAD",
    "lsad-cr-idw": "LSAD-CR-IDW",
    "msnet": "MSNet",
    "bsdm": "BSDM",
}

#: our scene (file stem prefix) -> the column of Tables 2 and 3 (Table 4 spells two differently)
PAPER_SCENE: dict[str, str] = {
    "abu-airport-1": "Airport-1",
    "abu-airport-4": "Airport-4",
    "abu-beach-1": "Beach-1",
    "abu-beach-3": "Beach-3",
    "abu-beach-4": "Beach-4",
    "abu-urban-1": "Urban-1",
    "abu-urban-3": "Urban-3",
    "aviris-1-sunlight": "AVIRIS-sun",
    "aviris-1": "AVIRIS",
    "pavia": "Pavia",
    "synthetic": "Salinas",
}

_TABLE4_SPELLING = {"AVIRIS-sun": "AVIRIS-sunlight", "Salinas": "Saliens"}


@functools.cache
def paper_results() -> dict[str, Any]:
    """The transcribed tables: ``table2_auc``, ``table3_auc_noise``, ``table4_seconds``,
    ``synthetic_auc`` (method -> scene -> value; Table 3 keyed by sigma first)."""
    text = resources.files("rednmf.experiments").joinpath("paper_results.json").read_text("utf-8")
    return json.loads(text)


def paper_scene(scene: str, table: str = "table2") -> str | None:
    """The paper's column name for one of our scenes, or ``None``."""
    for prefix, name in PAPER_SCENE.items():
        if scene == prefix or scene.startswith(prefix + "_") or scene.startswith(prefix + "-"):
            if scene.startswith("aviris-1-sunlight") and prefix == "aviris-1":
                continue
            return _TABLE4_SPELLING.get(name, name) if table == "table4" else name
    return None


def paper_value(table: str, method: str, scene: str, sigma: str | None = None) -> float | None:
    """The paper's number for (our) ``method`` on (our) ``scene``, or ``None``."""
    data = paper_results()
    name = PAPER_METHOD.get(method, method)
    if table == "synthetic":
        return data["synthetic_auc"].get(name)
    column = paper_scene(scene, table)
    if column is None:
        return None
    rows = {
        "table2": data["table2_auc"],
        "table3": data["table3_auc_noise"].get(sigma or "", {}),
        "table4": data["table4_seconds"],
    }[table]
    return rows.get(name, {}).get(column)
