"""Seed noise floor (``replicate_tables``, ``replicate_spread``, ``seed_oracle``), when
the grid has a replicate axis (``active_replicate_axis``: ``statistics.replicate_axis``,
e.g. seed, in the grid with at least two values and not a granulated-Kendall axis):
tau_a and Psi within each replicate and their spread across replicates; and the
seed oracle, tau_a and Psi between the targets of two replicates matched cell by cell
(same values of every other grid axis), the most a perfect predictor of one
replicate's target can reach against another's.
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ._checks import _as_float_array, _require_columns
from .completeness import duplicate_cells, flag_partial_grid
from .ranking import granulated_kendall, kendall_tau_a, summary_tables
from .rows import CONVERGED_COL


REPLICATE_COLUMNS = ["measure", "target", "replicate", "n_used", "tau_a", "Psi", "grid_cells_missing", "full_grid"]
SPREAD_COLUMNS = ["measure", "target"] + [
    f"{statistic}_{summary}" for statistic in ("tau_a", "Psi") for summary in ("n", "mean", "sd", "min", "max")
]
ORACLE_COLUMNS = ["target", "pair", "replicate_a", "replicate_b", "n_used", "n_excluded", "full_grid", "tau_a", "Psi"]


def active_replicate_axis(grid: Mapping[str, Sequence], axes: Sequence[str], replicate_axis: str | None) -> str | None:
    """The axis of repeated runs the seed noise floor is computed over, or None.

    ``statistics.replicate_axis`` applies only if that axis is in the grid with at least
    two values and is not one of the statistics ``axes`` (a hyperparameter of granulated
    Kendall is not a replicate). Names without ``hp.``."""
    if replicate_axis is None or replicate_axis in axes or len(grid.get(replicate_axis, ())) < 2:
        return None
    return replicate_axis


def _in_pair_order(frame: pd.DataFrame, orientations: Mapping[str, int], targets: Sequence[str]) -> pd.DataFrame:
    """``frame`` sorted by measure (in the order of ``orientations``), then target (in the
    order of ``targets``), keeping the order of rows within a pair."""
    rank = {name: i for i, name in enumerate([*orientations, *targets])}
    return frame.sort_values(["measure", "target"], key=lambda column: column.map(rank), kind="stable")


def replicate_tables(
    table: pd.DataFrame,
    orientations: Mapping[str, int],
    targets: Sequence[str],
    axes: Sequence[str],
    replicate_col: str,
    grid_axes: Sequence[str],
    n_cells: int,
    require_full_grid: bool = False,
) -> pd.DataFrame:
    """tau_a and Psi of every (measure, target) pair within each replicate.

    A replicate is the set of rows with one value of ``replicate_col`` (e.g. ``hp.seed``):
    the grid over the other axes, trained once. Within it, tau_a and Psi (over ``axes``)
    are exactly ``summary_tables``' statistics on that replicate's ``usable`` rows, and
    ``flag_partial_grid`` against its ``n_cells`` cells (duplicates: rows with the same
    values on ``grid_axes``) adds ``grid_cells_missing`` and ``full_grid`` (and with
    ``require_full_grid`` leaves Psi NaN on a partial replicate). Columns
    ``REPLICATE_COLUMNS``, one row per measure, target and replicate, replicates in
    increasing order.
    """
    frames = []
    for value, rows in table.groupby(replicate_col, sort=True):
        summary, _ = summary_tables(rows, orientations, targets, axes)
        summary = flag_partial_grid(summary, n_cells, duplicate_cells(rows, grid_axes), require_full_grid, ["Psi"])
        frames.append(summary.assign(replicate=value)[REPLICATE_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=REPLICATE_COLUMNS)
    return _in_pair_order(pd.concat(frames, ignore_index=True), orientations, targets).reset_index(drop=True)


def _spread(values) -> dict:
    """n, mean, sample standard deviation (ddof 1), min and max of the finite ``values``."""
    values = _as_float_array(values)
    values = values[np.isfinite(values)]
    n = int(values.size)
    return {
        "n": n,
        "mean": float(values.mean()) if n else float("nan"),
        "sd": float(values.std(ddof=1)) if n > 1 else float("nan"),
        "min": float(values.min()) if n else float("nan"),
        "max": float(values.max()) if n else float("nan"),
    }


def replicate_spread(per_replicate: pd.DataFrame) -> pd.DataFrame:
    """How tau_a and Psi vary across replicates: for every (measure, target) pair of
    ``replicate_tables``' frame, the number of replicates with a finite value and the
    mean, sample standard deviation (ddof 1; NaN with one replicate), min and max over
    them. Columns ``SPREAD_COLUMNS``, pairs in the order they first occur."""
    rows = []
    for (measure, target), group in per_replicate.groupby(["measure", "target"], sort=False):
        row = {"measure": measure, "target": target}
        for statistic in ("tau_a", "Psi"):
            row.update({f"{statistic}_{k}": v for k, v in _spread(group[statistic]).items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=SPREAD_COLUMNS)


def oracle_pair(
    table: pd.DataFrame,
    target_col: str,
    replicate_col: str,
    replicate_a,
    replicate_b,
    cell_axes: Sequence[str],
    axes: Sequence[str],
) -> dict:
    """The seed oracle of one pair of replicates: how well replicate a's target predicts
    replicate b's, cell by cell.

    The rows of each replicate are matched on ``cell_axes`` (every grid axis but the
    replicate axis, e.g. ``["hp.width", "hp.depth"]``). A cell is used iff it has exactly
    one row in each replicate and both converged with a finite target; then

        tau_a = kendall_tau_a(g_a, g_b) over the used cells,
        Psi   = granulated_kendall over ``axes`` of (g_a, g_b) on the used cells,

    both symmetric in a and b. Returns {"n_used", "tau_a", "Psi"}.
    """
    keys = list(cell_axes)
    _require_columns(table, [CONVERGED_COL, target_col, replicate_col, *keys, *axes], "columns")
    converged = table[CONVERGED_COL].eq(True).fillna(False).to_numpy(dtype=bool)
    target = _as_float_array(table[target_col])
    frame = table[keys].assign(_g=target, _ok=converged & np.isfinite(target))
    used = []
    for value in (replicate_a, replicate_b):
        rows = frame[(table[replicate_col] == value).to_numpy(dtype=bool)]
        # a cell with two rows in one replicate has no single value to compare
        single = (~rows.duplicated(subset=keys, keep=False)).to_numpy() if keys else np.full(len(rows), len(rows) == 1)
        used.append(rows[single & rows["_ok"].to_numpy(dtype=bool)].drop(columns="_ok"))
    if keys:
        matched = used[0].merge(used[1], on=keys, suffixes=("_a", "_b"))
    else:  # the grid is the replicate axis alone: one cell
        matched = used[0].merge(used[1], how="cross", suffixes=("_a", "_b"))
    Psi = granulated_kendall(matched, "_g_a", "_g_b", axes)["Psi"] if len(matched) else float("nan")
    return {"n_used": len(matched), "tau_a": kendall_tau_a(matched["_g_a"], matched["_g_b"]), "Psi": Psi}


def seed_oracle(
    table: pd.DataFrame,
    targets: Sequence[str],
    replicate_col: str,
    cell_axes: Sequence[str],
    axes: Sequence[str],
    n_cells: int,
    require_full_grid: bool = False,
) -> pd.DataFrame:
    """The seed oracle (cf. Jiang et al.'s noisy oracle) of every target.

    For every pair of replicates (values of ``replicate_col`` in the table, in
    increasing order), ``oracle_pair``; ``n_excluded`` = ``n_cells`` (the cells of one
    replicate's grid) minus the cells used, ``full_grid`` = none excluded, and with
    ``require_full_grid`` Psi is NaN on a partial pair. With more than one pair, a row
    ``pair = "mean"`` holds the mean of the pairs' finite tau_a and Psi (no replicates,
    no counts). A perfect predictor of one replicate's target reaches no more than
    this against another's: it is the noise floor of any tau and Psi. Columns
    ``ORACLE_COLUMNS``.
    """
    replicates = sorted(table[replicate_col].dropna().unique())
    rows = []
    for target_col in targets:
        pairs = []
        for a, b in itertools.combinations(replicates, 2):
            result = oracle_pair(table, target_col, replicate_col, a, b, cell_axes, axes)
            full_grid = result["n_used"] == n_cells
            if require_full_grid and not full_grid:
                result["Psi"] = float("nan")
            pairs.append({"target": target_col, "pair": f"{a} vs {b}", "replicate_a": a, "replicate_b": b,
                          "n_excluded": n_cells - result["n_used"], "full_grid": full_grid, **result})
        rows += pairs
        if len(pairs) > 1:
            rows.append({"target": target_col, "pair": "mean",
                         "tau_a": _spread([p["tau_a"] for p in pairs])["mean"],
                         "Psi": _spread([p["Psi"] for p in pairs])["mean"]})
    return pd.DataFrame(rows, columns=ORACLE_COLUMNS)


def seed_noise_floor(
    table: pd.DataFrame,
    orientations: Mapping[str, int],
    targets: Sequence[str],
    grid: Mapping[str, Sequence],
    axes: Sequence[str],
    replicate_axis: str | None,
    require_full_grid: bool = False,
) -> tuple[str | None, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Everything the statistics rule reports about seed noise, from the configuration:
    ``grid`` (axis -> values), the statistics ``axes`` and ``statistics.replicate_axis``
    (names without ``hp.``). Returns (the active replicate axis or None,
    ``replicate_tables``, ``replicate_spread``, ``seed_oracle``); without an active
    replicate axis the three frames are empty, with their columns."""
    replicate = active_replicate_axis(grid, axes, replicate_axis)
    if replicate is None:
        empty = pd.DataFrame(columns=REPLICATE_COLUMNS)
        return None, empty, replicate_spread(empty), pd.DataFrame(columns=ORACLE_COLUMNS)
    replicate_col = f"hp.{replicate}"
    hp_axes = [f"hp.{a}" for a in axes]
    cell_axes = [f"hp.{a}" for a in grid if a != replicate]
    # the grid is full factorial: every replicate has the product of the other axes' sizes
    n_cells = math.prod(len(values) for axis, values in grid.items() if axis != replicate)
    per_replicate = replicate_tables(table, orientations, targets, hp_axes, replicate_col,
                                     [*cell_axes, replicate_col], n_cells, require_full_grid)
    oracle = seed_oracle(table, targets, replicate_col, cell_axes, hp_axes, n_cells, require_full_grid)
    return replicate, per_replicate, replicate_spread(per_replicate), oracle
