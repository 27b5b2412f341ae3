"""Rank correlations between complexity measures and generalization.

The input is the tidy table of ``rows``: one row per trained model.

Every measure has an *orientation* (+1 if a larger value predicts a larger
generalization gap, -1 otherwise). All statistics here use the oriented value
``orientation * value``, so a good measure has a positive correlation with the
gap whatever its natural direction.

Statistics (Jiang et al. 2020, "Fantastic Generalization Measures and Where to
Find Them", section 4 / appendix; Kuhn et al. 2021 use the same ones):

- Kendall's tau in Jiang's form, without tie correction (``kendall_tau_a``)::

      tau(x, y) = 1 / (n (n - 1)) * sum_{i != j} sign(x_i - x_j) * sign(y_i - y_j)

  which equals (n_c - n_d) / (n choose 2) with n_c / n_d the numbers of
  concordant / discordant pairs; tied pairs count zero.
- Kendall's tau-b, the tie-corrected form (``kendall_tau_b``)::

      tau_b = (n_c - n_d) / sqrt((n0 - n1) (n0 - n2)),  n0 = n (n - 1) / 2,

  n1 / n2 the numbers of pairs tied in x / in y (scipy's ``kendalltau``).
- Jiang's granulated Kendall coefficient (``granulated_kendall``): for each
  hyperparameter axis i, with Theta_{-i} the set of combinations of the other
  axes' values and m_i its size::

      psi_i = 1 / m_i * sum_{theta in Theta_{-i}} tau({(mu(theta_i, theta), g(theta_i, theta))
                                                      : theta_i in Theta_i})

      Psi = 1 / |axes| * sum_i psi_i

  i.e. psi_i is the mean Kendall tau over groups of models in which only axis
  i varies, and Psi the mean of psi_i over the axes.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

from ._checks import _as_float_array, _check_orientation, _paired, _require_columns
from .bootstrap import bootstrap_intervals
from .rows import CONVERGED_COL, MEASURE_PREFIX, _measure_target_pairs

SUMMARY_COLUMNS = [
    "measure",
    "target",
    "orientation",
    "n_used",
    "excluded_unconverged",
    "excluded_nonfinite",
    "tau_a",
    "tau_b",
    "Psi",
]
GRANULATED_COLUMNS = ["measure", "target", "axis", "psi", "groups_used", "groups_skipped"]

# Rows of the n x n sign matrix processed at once by kendall_tau_a (bounds memory
# to _TAU_BLOCK * n entries; n ~ 3000 models gives ~1.5 M entries per block).
_TAU_BLOCK = 512


# ------------------------------------------------------------------ rank correlations


def kendall_tau_a(x, y) -> float:
    """Kendall's tau in Jiang et al. (2020)'s form, without tie correction.

    tau = 1 / (n (n - 1)) * sum_{i != j} sign(x_i - x_j) * sign(y_i - y_j)
        = (n_c - n_d) / (n (n - 1) / 2).

    A pair tied in x or in y contributes 0 (sign(0) = 0), so ties pull tau
    towards 0 and tau = 0 when either variable is constant. NaN if n < 2.
    The double sum is evaluated exactly, in integers, in blocks of rows
    (O(n^2) time, O(block * n) memory). Inputs are expected finite (a NaN
    anywhere makes the result NaN); ``usable`` selects such rows.
    """
    x, y = _paired(x, y)
    n = x.size
    if n < 2:
        return float("nan")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return float("nan")
    total = 0
    for start in range(0, n, _TAU_BLOCK):
        stop = min(start + _TAU_BLOCK, n)
        sx = np.sign(x[start:stop, None] - x[None, :]).astype(np.int8)
        sy = np.sign(y[start:stop, None] - y[None, :]).astype(np.int8)
        # diagonal i == j contributes sign(0) * sign(0) = 0
        total += int(np.sum(sx.astype(np.int64) * sy))
    return total / (n * (n - 1))


def kendall_tau_b(x, y) -> float:
    """Kendall's tau-b (tie-corrected), via ``scipy.stats.kendalltau(variant="b")``.

    tau_b = (n_c - n_d) / sqrt((n0 - n1) (n0 - n2)), n0 = n (n - 1) / 2,
    n1 = sum over tie groups in x of t (t - 1) / 2, n2 likewise in y.
    Equal to ``kendall_tau_a`` when neither x nor y has ties. NaN if n < 2 or
    if scipy returns NaN (e.g. x or y constant).
    """
    x, y = _paired(x, y)
    if x.size < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input / small sample warnings
        result = _scipy_stats.kendalltau(x, y, variant="b")
    value = float(result.statistic)
    return value if math.isfinite(value) else float("nan")


# -------------------------------------------------------------- granulated Kendall


def granulated_kendall(
    table: pd.DataFrame,
    measure_col: str,
    target_col: str,
    axes: Sequence[str],
    orientation: int = +1,
) -> dict:
    """Jiang et al. (2020)'s granulated Kendall coefficient.

    For each axis i in ``axes`` (column names such as ``"hp.depth"``) the rows
    are grouped by the values of all *other* axes in ``axes`` (so only axis i
    varies within a group) and

        psi_i = mean over groups g of kendall_tau_a(orientation * measure_g, target_g),
        Psi   = mean of psi_i over the axes whose psi_i is finite.

    Groups with fewer than 2 rows (one model: a cell of the grid is missing,
    e.g. because its neighbour did not converge) have no tau; they are skipped
    and counted in ``groups_skipped``. Groups are the combinations of the other
    axes that occur in ``table`` (a combination with no row at all is not seen
    and not counted). If no group of axis i has 2 rows, psi_i is NaN. With a
    single axis the one group is the whole table. If ``axes`` is empty, Psi is NaN.

    ``table`` must already be filtered with ``usable``; non-finite measure or
    target values raise ValueError rather than being dropped silently.

    Returns ``{"psi": {axis: float}, "Psi": float, "groups_used": {axis: int},
    "groups_skipped": {axis: int}}``.
    """
    orientation = _check_orientation(orientation)
    axes = list(axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes must be distinct, got {axes}")
    _require_columns(table, [measure_col, target_col, *axes], "columns")
    measure = orientation * _as_float_array(table[measure_col])
    target = _as_float_array(table[target_col])
    if not (np.all(np.isfinite(measure)) and np.all(np.isfinite(target))):
        raise ValueError(
            f"non-finite values in {measure_col!r} or {target_col!r}: "
            "filter the table with usable() first"
        )

    psi: dict[str, float] = {}
    used: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for axis in axes:
        others = [a for a in axes if a != axis]
        if others:
            # .indices gives each group's row *positions* (not index labels)
            groups = table.groupby(others, dropna=False, sort=True).indices
            positions = list(groups.values())
        else:
            positions = [np.arange(len(table))] if len(table) else []
        taus = []
        n_skipped = 0
        for pos in positions:
            if len(pos) < 2:
                n_skipped += 1
                continue
            taus.append(kendall_tau_a(measure[pos], target[pos]))
        psi[axis] = float(np.mean(taus)) if taus else float("nan")
        used[axis] = len(taus)
        skipped[axis] = n_skipped

    finite_psi = [v for v in psi.values() if math.isfinite(v)]
    Psi = float(np.mean(finite_psi)) if finite_psi else float("nan")
    return {"psi": psi, "Psi": Psi, "groups_used": used, "groups_skipped": skipped}


# -------------------------------------------------------------------- summary tables


def summary_tables(
    table: pd.DataFrame,
    orientations: Mapping[str, int],
    targets: Sequence[str],
    axes: Sequence[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All statistics for every (measure, target) pair.

    ``orientations`` maps measure names *without* the ``measure.`` prefix to +1
    or -1; ``targets`` are full column names (``"gen.acc_gap"``); ``axes`` are
    hyperparameter columns (``"hp.depth"``). For each pair the rows selected by
    ``usable`` give tau_a and tau_b of (orientation * measure, target) over all
    used models, and the granulated Kendall coefficient over ``axes``.

    Returns ``(summary_df, granulated_df)`` with columns ``SUMMARY_COLUMNS``
    (one row per measure and target) and ``GRANULATED_COLUMNS`` (one row per
    measure, target and axis), in the order of ``orientations``, ``targets``
    and ``axes``. Raises KeyError naming any measure, target, axis or
    ``is.converged`` column missing from ``table``.
    """
    missing_measures = [m for m in orientations if MEASURE_PREFIX + m not in table.columns]
    if missing_measures:
        raise KeyError(f"measures missing from the table: {missing_measures}")
    _require_columns(table, list(targets), "targets")
    _require_columns(table, list(axes), "axes")
    _require_columns(table, [CONVERGED_COL], "columns")

    summary_rows = []
    granulated_rows = []
    for name, orientation, target_col, _, counts, rows, oriented, target in _measure_target_pairs(table, orientations, targets):
        gran = granulated_kendall(rows, MEASURE_PREFIX + name, target_col, axes, orientation)
        summary_rows.append(
            {
                "measure": name,
                "target": target_col,
                "orientation": orientation,
                **counts,
                "tau_a": kendall_tau_a(oriented, target),
                "tau_b": kendall_tau_b(oriented, target),
                "Psi": gran["Psi"],
            }
        )
        for axis in axes:
            granulated_rows.append(
                {
                    "measure": name,
                    "target": target_col,
                    "axis": axis,
                    "psi": gran["psi"][axis],
                    "groups_used": gran["groups_used"][axis],
                    "groups_skipped": gran["groups_skipped"][axis],
                }
            )
    summary = pd.DataFrame(summary_rows, columns=SUMMARY_COLUMNS)
    granulated = pd.DataFrame(granulated_rows, columns=GRANULATED_COLUMNS)
    return summary, granulated


def tolerance_sensitivity(
    table: pd.DataFrame,
    by_tolerance: pd.DataFrame,
    targets: Sequence[str],
    axes: Sequence[str],
    counts: np.ndarray | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """tau and Psi of prunability at each tolerance: ``by_tolerance`` has columns model,
    rel_tol, prunability (``table.prunability_by_tolerance``); the other columns are
    those of ``summary_tables`` for a measure named ``prunability@rel_tol=<t>``, plus
    rel_tol, and with ``counts`` (resamples over the rows of ``table``) those of
    ``bootstrap_intervals``."""
    wide = by_tolerance.pivot(index="model", columns="rel_tol", values="prunability")
    names = {t: f"prunability@rel_tol={t:g}" for t in wide.columns}
    wide = wide.rename(columns={t: MEASURE_PREFIX + name for t, name in names.items()})
    joined = table.join(wide, on="model")
    orientations = {name: +1 for name in names.values()}
    summary, _ = summary_tables(joined, orientations, targets, axes)
    if counts is not None:
        summary = summary.merge(bootstrap_intervals(joined, orientations, targets, axes, counts, level), on=["measure", "target"])
    rel_tol = {name: t for t, name in names.items()}
    summary.insert(1, "rel_tol", summary["measure"].map(rel_tol).astype(float))
    return summary
