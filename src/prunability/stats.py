"""Rank correlations between complexity measures and generalization.

The input is the tidy table written by ``collect_table``: one row per trained
model, with hyperparameter columns ``hp.<axis>``, generalization targets
``gen.<name>`` (e.g. ``gen.acc_gap``), measures ``measure.<name>`` and the flag
``is.converged``.

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

- Conditional mutual information (``cmi_jiang``, ``cmi_careful``; Jiang et al. 2020 and
  the PGDL scoring code): how much the sign of a measure's difference between two
  models tells about the sign of their gap difference, once hyperparameters are held
  fixed; see those functions.
- Mutual information between two measures' predictions (``prediction_mi``): over
  ordered pairs of distinct models, V = sign(mu_i - mu_j) in {-1, 0, +1};
  ``mi`` = I(V_other; V_base) / H(V_base) and ``cmi_given_base`` =
  I(V_other; V_g | V_base) / H(V_g | V_base), V_g the sign of the target's difference.
- Seed noise floor (``replicate_tables``, ``replicate_spread``, ``seed_oracle``), when
  the grid has a replicate axis (``active_replicate_axis``: ``statistics.replicate_axis``,
  e.g. seed, in the grid with at least two values and not a granulated-Kendall axis):
  tau_a and Psi within each replicate and their spread across replicates; and the
  seed oracle, tau_a and Psi between the targets of two replicates matched cell by cell
  (same values of every other grid axis), the most a perfect predictor of one
  replicate's target can reach against another's.
- Bootstrap intervals (``bootstrap_counts``, ``bootstrap_tau_psi``,
  ``bootstrap_intervals``): models are resampled with replacement; a resample that
  holds model k c_k times weights each pair (k, l), k != l, by c_k c_l and leaves out
  the pairs of copies of one model, which carry no order (so with every c_k = 1 the
  statistics are exactly tau_a and Psi). Percentile intervals.

Rows used (``usable``): a model counts only if it converged (``is.converged``
is True) and both its measure and its target are finite.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

CONVERGED_COL = "is.converged"
MEASURE_PREFIX = "measure."

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


# --------------------------------------------------------------------------- helpers


def _as_float_array(values) -> np.ndarray:
    """1-D float64 array; pandas NA / None become NaN."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float).reshape(-1)


def _paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = _as_float_array(x)
    y = _as_float_array(y)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    return x, y


def _check_orientation(orientation) -> int:
    if orientation not in (-1, 1) or isinstance(orientation, bool):
        raise ValueError(f"orientation must be +1 or -1, got {orientation!r}")
    return int(orientation)


def _require_columns(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"{what} missing from the table: {missing}")


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


# ------------------------------------------------------------------------ row filter


def usable(table: pd.DataFrame, measure_col: str, target_col: str) -> tuple[np.ndarray, dict]:
    """Rows that enter the statistics for one (measure, target) pair.

    A row is used iff ``is.converged`` is True and both ``table[measure_col]``
    and ``table[target_col]`` are finite (not NaN, not +-inf). Returns the
    boolean mask and the counts ``{"n_used", "excluded_unconverged",
    "excluded_nonfinite"}``; a row both unconverged and non-finite is counted
    as unconverged only, so the three counts add up to ``len(table)``.
    A missing ``is.converged`` value (NA) counts as not converged.
    """
    _require_columns(table, [CONVERGED_COL, measure_col, target_col], "columns")
    converged = table[CONVERGED_COL].eq(True).fillna(False).to_numpy(dtype=bool)
    finite = np.isfinite(_as_float_array(table[measure_col])) & np.isfinite(
        _as_float_array(table[target_col])
    )
    mask = converged & finite
    counts = {
        "n_used": int(mask.sum()),
        "excluded_unconverged": int((~converged).sum()),
        "excluded_nonfinite": int((converged & ~finite).sum()),
    }
    return mask, counts


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


def _measure_target_pairs(table: pd.DataFrame, orientations: Mapping[str, int], targets: Sequence[str]):
    """For every (measure, target) pair: name, orientation, target column, ``usable``
    mask and counts, the usable rows, and their oriented measure and target arrays."""
    for name, orientation in orientations.items():
        orientation = _check_orientation(orientation)
        measure_col = MEASURE_PREFIX + name
        for target_col in targets:
            mask, counts = usable(table, measure_col, target_col)
            rows = table.loc[mask]
            oriented = orientation * _as_float_array(rows[measure_col])
            yield name, orientation, target_col, mask, counts, rows, oriented, _as_float_array(rows[target_col])


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


# ------------------------------------------------------- seed replicates and the seed oracle


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


# ------------------------------------------------------------------ grid completeness


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


# -------------------------------------------------------------------------- bootstrap


def bootstrap_counts(n_models: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of ``n_models`` models is drawn in each resample of ``n_models``
    draws with replacement: an integer array of shape (resamples, n_models)."""
    if n_models < 1 or resamples < 1:
        raise ValueError(f"need at least one model and one resample, got {n_models} and {resamples}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_models, np.full(n_models, 1.0 / n_models), size=resamples)


def weighted_group_taus(x, y, groups, counts) -> np.ndarray:
    """Kendall tau-a within each group of models weighted by ``counts`` (resamples x n):
    an array (resamples, n_groups). ``groups`` labels each model 0 .. n_groups - 1.

        tau_g = sum_{k != l in g} c_k c_l s_kl / sum_{k != l in g} c_k c_l,
        s_kl = sign(x_k - x_l) sign(y_k - y_l),

    the tau-a of the resample without the pairs of two copies of one model. NaN for a
    group with fewer than two distinct models drawn. All counts 1 give kendall_tau_a.
    """
    x, y = _paired(x, y)
    groups = np.asarray(groups, dtype=np.int64)
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    n_groups = int(groups.max()) + 1 if groups.size else 0
    member = np.zeros((x.size, n_groups))
    member[np.arange(x.size), groups] = 1.0
    signs = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    signs *= groups[:, None] == groups[None, :]
    numerator = (counts * (counts @ signs)) @ member
    denominator = (counts @ member) ** 2 - (counts**2) @ member
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over the finite entries; NaN (no warning) where there are none."""
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    n = finite.sum(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, total / n, np.nan)


def bootstrap_tau_psi(measure, target, hp: pd.DataFrame, axes: Sequence[str], counts) -> tuple[np.ndarray, np.ndarray]:
    """tau_a and Psi (as ``granulated_kendall``) of each resample in ``counts``: two
    arrays of length resamples. ``measure`` (oriented), ``target`` and the rows of ``hp``
    (columns ``axes``) are the usable models, in the order of the columns of ``counts``."""
    measure, target = _paired(measure, target)
    counts = np.atleast_2d(counts)
    if measure.size == 0:  # no usable model: no statistic, as summary_tables
        return np.full(len(counts), np.nan), np.full(len(counts), np.nan)
    tau = weighted_group_taus(measure, target, np.zeros(measure.size, dtype=np.int64), counts)[:, 0]
    psi = []
    for axis in axes:
        others = [a for a in axes if a != axis]
        groups = (hp.groupby(others, sort=True, dropna=False).ngroup().to_numpy() if others
                  else np.zeros(len(hp), dtype=np.int64))
        psi.append(_nanmean(weighted_group_taus(measure, target, groups, counts), axis=1))
    Psi = _nanmean(np.stack(psi, axis=1), axis=1) if psi else np.full(len(tau), np.nan)
    return tau, Psi


def percentile_interval(values, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of the finite ``values`` (NaN if none)."""
    values = _as_float_array(values)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def bootstrap_intervals(
    table: pd.DataFrame,
    orientations: Mapping[str, int],
    targets: Sequence[str],
    axes: Sequence[str],
    counts: np.ndarray,
    level: float,
) -> pd.DataFrame:
    """Percentile intervals of tau_a and Psi for every (measure, target) pair, over the
    resamples ``counts`` (resamples x len(table), from ``bootstrap_counts``). Each pair
    uses its ``usable`` rows of every resample, so all pairs share the same resamples.
    Columns measure, target, tau_a_low, tau_a_high, Psi_low, Psi_high."""
    if counts.shape[1] != len(table):
        raise ValueError(f"counts has {counts.shape[1]} columns for a table of {len(table)} models")
    rows = []
    for name, _, target_col, mask, _, used, oriented, target in _measure_target_pairs(table, orientations, targets):
        tau, Psi = bootstrap_tau_psi(oriented, target, used, axes, counts[:, mask])
        tau_low, tau_high = percentile_interval(tau, level)
        psi_low, psi_high = percentile_interval(Psi, level)
        rows.append({"measure": name, "target": target_col, "tau_a_low": tau_low, "tau_a_high": tau_high,
                     "Psi_low": psi_low, "Psi_high": psi_high})
    return pd.DataFrame(rows, columns=["measure", "target", "tau_a_low", "tau_a_high", "Psi_low", "Psi_high"])


# ------------------------------------------------------ mutual information between predictions


def _sign_codes(values: np.ndarray) -> np.ndarray:
    """n x n matrix of sign(v_i - v_j) + 1 in {0, 1, 2}."""
    return (np.sign(values[:, None] - values[None, :]) + 1).astype(np.int64)


def weighted_pair_counts(codes: np.ndarray, n_codes: int, counts=None) -> np.ndarray:
    """How many ordered pairs (k, l), k != l, carry each code 0 .. n_codes - 1 of the
    n x n matrix ``codes``: an array (n_codes,); with ``counts`` (resamples x n) each pair
    weighs c_k c_l, giving (resamples, n_codes)."""
    off_diagonal = ~np.eye(len(codes), dtype=bool)
    if counts is None:
        return np.bincount(codes[off_diagonal], minlength=n_codes).astype(float)
    counts = np.asarray(counts, dtype=float)
    result = np.empty((len(counts), n_codes))
    for code in range(n_codes):
        result[:, code] = (counts * (counts @ ((codes == code) & off_diagonal))).sum(axis=1)
    return result


def _normalised_mi(joint: np.ndarray) -> np.ndarray:
    """I(a; b) / H(a) of count tables ``joint[..., a, b]``; NaN where H(a) = 0."""
    h = _entropy_bits(joint.sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(h > 0, _mi_bits(joint) / h, np.nan)


def prediction_mi(other, base, target, counts=None) -> dict:
    """How much two measures' predictions overlap (claim K6 of Kuhn et al. 2021; which
    quantity the paper computes is not stated in its abstract, so both are given).

    Over ordered pairs of distinct models, V = sign(v_i - v_j) in {-1, 0, +1}:
    ``mi`` = I(V_other; V_base) / H(V_base), and ``cmi_given_base`` =
    I(V_other; V_target | V_base) / H(V_target | V_base), what ``other`` adds about the
    target once ``base`` is known. Both in [0, 1], NaN when the denominator is 0, and
    unchanged by a measure's orientation. With ``counts`` (resamples x n) each resample's
    values, as arrays.
    """
    other, base = _paired(other, base)
    _, target = _paired(other, target)
    code = (_sign_codes(base) * 3 + _sign_codes(other)) * 3 + _sign_codes(target)
    joint = weighted_pair_counts(code, 27, counts).reshape(-1, 3, 3, 3)  # [.., base, other, target]
    mi = _normalised_mi(joint.sum(axis=3))
    p_base = joint.sum(axis=(2, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        p_base = p_base / p_base.sum(axis=1, keepdims=True)
        mi_given = np.nansum(p_base * _mi_bits(joint), axis=1)
        h_given = np.nansum(p_base * _entropy_bits(joint.sum(axis=2)), axis=1)
        cmi = np.where(h_given > 0, mi_given / h_given, np.nan)
    if counts is None:
        return {"mi": float(mi[0]), "cmi_given_base": float(cmi[0])}
    return {"mi": mi, "cmi_given_base": cmi}


def prediction_mi_table(table: pd.DataFrame, measures: Sequence[str], target: str) -> pd.DataFrame:
    """``prediction_mi`` for every ordered pair of ``measures`` (names without the
    ``measure.`` prefix) against ``target`` (a column name), over the converged models
    with finite values of both measures and the target. Columns base, other, n_used,
    mi, cmi_given_base."""
    _require_columns(table, [CONVERGED_COL, target, *(MEASURE_PREFIX + m for m in measures)], "columns")
    converged = table[CONVERGED_COL].eq(True).fillna(False).to_numpy(dtype=bool)
    gap = _as_float_array(table[target])
    values = {m: _as_float_array(table[MEASURE_PREFIX + m]) for m in measures}
    rows = []
    for base in measures:
        for other in measures:
            mask = converged & np.isfinite(gap) & np.isfinite(values[base]) & np.isfinite(values[other])
            result = prediction_mi(values[other][mask], values[base][mask], gap[mask])
            rows.append({"base": base, "other": other, "n_used": int(mask.sum()), **result})
    return pd.DataFrame(rows, columns=["base", "other", "n_used", "mi", "cmi_given_base"])


# -------------------------------------------------------------------- conditional mutual information


def _entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of ``counts`` (0 log 0 = 0); NaN for an all-zero row."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / total
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total[..., 0] > 0, terms.sum(axis=-1), np.nan)


def _mi_bits(tables: np.ndarray) -> np.ndarray:
    """I(a; b) in bits of each count table ``tables[..., a, b]``: H(a) + H(b) - H(a, b)."""
    flat = tables.reshape(*tables.shape[:-2], tables.shape[-2] * tables.shape[-1])
    return _entropy_bits(tables.sum(axis=-1)) + _entropy_bits(tables.sum(axis=-2)) - _entropy_bits(flat)


def _pair_tables(measure, gap, hp: pd.DataFrame, values: Mapping[str, Sequence], axes: Sequence[str], self_pairs: bool) -> np.ndarray:
    """Counts T[cell, a, b] over ordered model pairs (i, j): a = [gap_i > gap_j],
    b = [mu_i > mu_j] (strict), cell = the joint values (v_i(h), v_j(h)) of every
    conditioning axis h in ``axes`` (all |Theta_h|^2 combinations, empty ones included)."""
    measure, gap = np.asarray(measure, dtype=float), np.asarray(gap, dtype=float)
    n = len(measure)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = np.ones((n, n), dtype=bool) if self_pairs else (i != j)
    i, j = i[keep], j[keep]
    cell = np.zeros(len(i), dtype=np.int64)
    n_cells = 1
    for axis in axes:
        index = {v: k for k, v in enumerate(values[axis])}
        code = hp[axis].map(index).to_numpy()
        if np.isnan(code.astype(float)).any():
            raise ValueError(f"{axis}: a model's value is not among the axis values {list(values[axis])}")
        k = len(values[axis])
        cell = (cell * k + code[i]) * k + code[j]
        n_cells *= k * k
    ab = 2 * (gap[i] > gap[j]) + (measure[i] > measure[j])
    counts = np.bincount(cell * 4 + ab, minlength=n_cells * 4)
    return counts.reshape(n_cells, 2, 2)


def cmi_jiang(measure, gap, hp: pd.DataFrame, values: Mapping[str, Sequence]) -> dict:
    """Conditional mutual information exactly as Jiang et al.'s PGDL scoring code computes it.

    Adapted from the scoring program of https://competitions.codalab.org/competitions/25301
    (Jiang et al. 2020, PGDL; docs/references.md).

    For every *ordered* pair of distinct axes (h1, h2): count ordered model pairs
    (i, j) *including i = j* in cells of the joint values of h1 and h2; per cell, the
    mutual information I_c between the gap sign a and the measure sign b (strict
    comparisons, so ties and i = j count as "not greater") and the entropy H_c of a,
    in bits; score = mean_c I_c / mean_c H_c, unweighted over all |Theta_h1|^2
    |Theta_h2|^2 cells. CMI = min over the pairs. ``measure`` should be oriented.
    Two differences from the scoring code, neither changing a full grid's value:
    an empty cell (partial grids) is skipped, where the code gets NaN, and 0 log 0
    is 0, where the code adds 1e-12 inside the logarithm.

    Returns {"cmi", "scores": {(h1, h2): score}, "empty_cells": {(h1, h2): count}}.
    """
    scores, empty = {}, {}
    for h1 in values:
        for h2 in values:
            if h1 == h2:
                continue
            tables = _pair_tables(measure, gap, hp, values, [h1, h2], self_pairs=True)
            filled = tables.reshape(len(tables), 4).sum(axis=1) > 0
            mi, h = _mi_bits(tables[filled]), _entropy_bits(tables[filled].sum(axis=2))
            scores[(h1, h2)] = float(mi.mean() / h.mean()) if filled.any() and h.mean() > 0 else float("nan")
            empty[(h1, h2)] = int((~filled).sum())
    finite = [v for v in scores.values() if math.isfinite(v)]
    return {"cmi": min(finite) if finite else float("nan"), "scores": scores, "empty_cells": empty}


def cmi_careful(measure, gap, hp: pd.DataFrame, values: Mapping[str, Sequence], max_set_size: int = 2) -> dict:
    """A careful variant of ``cmi_jiang``: the normalised conditional mutual information
    I(a; b | S) / H(a | S) over ordered pairs of *distinct* models, cells weighted by
    their number of pairs, minimised over every set S of at most ``max_set_size`` axes
    (the empty set included, so it is never above the unconditional value).

    Returns {"cmi", "scores": {S (a tuple of axes): score}}.
    """
    scores = {}
    axes = list(values)
    for size in range(max_set_size + 1):
        for subset in itertools.combinations(axes, size):
            tables = _pair_tables(measure, gap, hp, values, list(subset), self_pairs=False)
            weight = tables.reshape(len(tables), 4).sum(axis=1)
            filled = weight > 0
            p = weight[filled] / weight.sum()
            mi, h = _mi_bits(tables[filled]), _entropy_bits(tables[filled].sum(axis=2))
            conditional_h = float((p * h).sum())
            scores[subset] = float((p * mi).sum()) / conditional_h if conditional_h > 0 else float("nan")
    finite = [v for v in scores.values() if math.isfinite(v)]
    return {"cmi": min(finite) if finite else float("nan"), "scores": scores}


def cmi_tables(
    table: pd.DataFrame,
    orientations: Mapping[str, int],
    targets: Sequence[str],
    values: Mapping[str, Sequence],
    max_set_size: int = 2,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``cmi_jiang`` and ``cmi_careful`` of every (measure, target) pair over its
    ``usable`` rows; ``values`` maps each conditioning axis (``"hp.depth"``) to the
    grid's values. Returns (one row per pair: measure, target, n_used, cmi_jiang,
    jiang_min_pair, jiang_empty_cells, cmi_careful, careful_min_set; one row per pair
    and conditioning set: measure, target, variant, conditioning, score)."""
    rows, scores = [], []
    for name, _, target_col, _, counts, used, oriented, gap in _measure_target_pairs(table, orientations, targets):
        jiang = cmi_jiang(oriented, gap, used, values)
        careful = cmi_careful(oriented, gap, used, values, max_set_size)
        rows.append(
            {
                "measure": name,
                "target": target_col,
                "n_used": counts["n_used"],
                "cmi_jiang": jiang["cmi"],
                "jiang_min_pair": _argmin_label(jiang["scores"]),
                "jiang_empty_cells": sum(jiang["empty_cells"].values()),
                "cmi_careful": careful["cmi"],
                "careful_min_set": _argmin_label(careful["scores"]),
            }
        )
        for variant, result in (("jiang", jiang), ("careful", careful)):
            for conditioning, score in result["scores"].items():
                scores.append({"measure": name, "target": target_col, "variant": variant,
                               "conditioning": " & ".join(conditioning) or "(none)", "score": score})
    return pd.DataFrame(rows), pd.DataFrame(scores, columns=["measure", "target", "variant", "conditioning", "score"])


def _argmin_label(scores: Mapping[tuple, float]) -> str:
    """The conditioning set with the smallest finite score, as 'a & b' ('' if none)."""
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}
    if not finite:
        return ""
    return " & ".join(min(finite, key=finite.get)) or "(none)"
