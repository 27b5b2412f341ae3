"""The grid of a study: its full-factorial cells, the hyperparameters of one cell, the
cell paths Paramspace writes and how a job's cells are grouped. Read by the Snakefile
(no torch, no pandas at import)."""

from __future__ import annotations

import itertools


def full_factorial(grid: dict[str, list]) -> pd.DataFrame:
    """One row per combination of the grid's values, columns in the grid's order."""
    import pandas as pd  # here, not at the top: the rest needs no pandas

    axes = list(grid)
    return pd.DataFrame(list(itertools.product(*(grid[a] for a in axes))), columns=axes)


def native(value):
    """numpy scalars (from pandas / Paramspace) as plain Python values, for JSON and torch."""
    return value.item() if hasattr(value, "item") else value


def cell_hyperparameters(fixed: dict, instance: dict) -> dict:
    """Every hyperparameter of one grid cell: the fixed values (config's
    ``hyperparameters``), overridden by the cell's axes."""
    hp = dict(fixed)
    hp.update({k: native(v) for k, v in instance.items()})
    # Keep integer-valued axes integral ("width~2" must give the same model as width: 2).
    for key in ("depth", "batch_size", "seed"):
        if isinstance(hp[key], float) and hp[key].is_integer():
            hp[key] = int(hp[key])
    return hp


def statistics_axes(grid: dict[str, list], axes: list[str] | None, replicate_axis: str | None) -> list[str]:
    """The hyperparameters of granulated Kendall and CMI: ``statistics.axes`` if set, else
    every grid axis with more than one value except the replicate axis (repeated runs
    of one setting, such as seeds, are not a hyperparameter)."""
    if axes:
        return list(axes)
    return [axis for axis, values in grid.items() if len(values) > 1 and axis != replicate_axis]


def parse_cell(cell: str) -> dict:
    """The axis values written in a cell path such as ``depth~2/lr~0.01/batchnorm~True``.

    Values are read back as bool, int, float or text (the way Paramspace wrote them),
    so a job can tell its cells' hyperparameters from its output paths alone.
    """
    values = {}
    for segment in cell.split("/"):
        axis, sep, text = segment.partition("~")
        if not sep or not axis:
            raise ValueError(f"cell path segment {segment!r} is not axis~value (in {cell!r})")
        values[axis] = _parse_value(text)
    return values


def _parse_value(text: str):
    if text in ("True", "False"):
        return text == "True"
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return text


def job_cell_patterns(cells: list[str], axes_within_job: list[str]) -> list[str]:
    """The cells of one job as patterns: the axes outside ``axes_within_job`` become
    wildcards ``axis~{axis}``; one pattern per combination of the within-job axes."""
    patterns = []
    for cell in cells:
        segments = []
        for segment in cell.split("/"):
            axis = segment.partition("~")[0]
            segments.append(segment if axis in axes_within_job else f"{axis}~{{{axis}}}")
        patterns.append("/".join(segments))
    return list(dict.fromkeys(patterns))
