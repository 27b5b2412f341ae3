"""Grid completeness: the cells of the configured grid the statistics lack
(``grid_completeness``), the duplicate rows of a cell (``duplicate_cells``) and the
partial-grid flags of a per-measure frame (``flag_partial_grid``: with
``statistics.require_full_grid`` the statistics that need a full grid, Psi and CMI,
are left NaN on a partial one)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .rows import CONVERGED_COL


def grid_completeness(table: pd.DataFrame, expected_models: Sequence[str], axes: Sequence[str]) -> pd.DataFrame:
    """The grid cells the statistics lack: one row per problem, columns model, status.

    ``missing``: a cell of the configured grid with no row in ``table``;
    ``not converged``: its model did not reach the training target (excluded from
    every statistic); ``duplicate``: two rows with the same values on ``axes``
    (column names such as ``"hp.depth"``); ``unexpected``: a row that is not a cell of
    the grid. An empty frame means the grid is complete.
    """
    rows = [{"model": m, "status": "missing"} for m in expected_models if m not in set(table["model"])]
    converged = table[CONVERGED_COL].eq(True).fillna(False)
    rows += [{"model": m, "status": "not converged"} for m in table.loc[~converged, "model"]]
    if axes:
        duplicated = table.duplicated(subset=list(axes), keep=False)
        rows += [{"model": m, "status": "duplicate"} for m in table.loc[duplicated, "model"]]
    rows += [{"model": m, "status": "unexpected"} for m in table["model"] if m not in set(expected_models)]
    return pd.DataFrame(rows, columns=["model", "status"])


def duplicate_cells(table: pd.DataFrame, grid_axes: Sequence[str]) -> int:
    """Converged rows beyond the first with the same values on ``grid_axes`` (columns
    such as ``"hp.depth"``): the extra rows a partial-grid count must discount."""
    converged = table[CONVERGED_COL].eq(True).fillna(False).to_numpy(dtype=bool)
    return int(table.loc[converged].duplicated(subset=list(grid_axes)).sum())


def flag_partial_grid(
    frame: pd.DataFrame, n_cells: int, n_duplicates: int, require_full_grid: bool, columns: Sequence[str]
) -> pd.DataFrame:
    """Add ``grid_cells_missing`` (cells of the ``n_cells``-cell grid without a usable
    row, from the ``n_used`` column; ``n_duplicates`` = rows beyond the first of a cell)
    and ``full_grid`` to a per-measure frame; with ``require_full_grid`` the ``columns``
    that need a full grid (Psi, CMI) become NaN on a partial one."""
    frame = frame.copy()
    frame["grid_cells_missing"] = (n_cells - frame["n_used"] + n_duplicates).clip(lower=0)
    frame["full_grid"] = (frame["grid_cells_missing"] == 0) & (n_duplicates == 0)
    if require_full_grid:
        frame.loc[~frame["full_grid"], list(columns)] = np.nan
    return frame
