"""Double descent (Nakkiran et al. 2020; claim K5 of Kuhn et al. 2021): a sweep of one
size axis (width) trained on noisy labels, where the test loss rises near the interpolation threshold and falls
again. Every measure is correlated with the test loss and the test error across the
sweep by Kendall tau, Spearman rho and Pearson r, with percentile bootstrap intervals
over the same resamples of models as the other statistics.

Measures are oriented (``orientation * value``, as in the rest of the package), so a
positive correlation means the measure ranks models the way it claims to: for
prunability, a model that keeps more of its weights has the larger test loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .analysis._checks import _as_float_array, _check_orientation, _paired
from .analysis.bootstrap import percentile_interval, weighted_group_taus
from .analysis.ranking import kendall_tau_b
from .analysis.rows import CONVERGED_COL, MEASURE_PREFIX, usable

SWEEP_COLUMNS = [
    "measure", "target", "n_used",
    "tau_a", "tau_a_low", "tau_a_high", "tau_b",
    "spearman_rho", "spearman_rho_low", "spearman_rho_high",
    "pearson_r", "pearson_r_low", "pearson_r_high",
]
# The per-sweep-value quantities of the double-descent figure (training error is on the
# labels the model was trained on, noisy ones included).
CURVE_COLUMNS = {
    "train_error": "training error (noisy labels)",
    "gen.test_error": "test error",
    "gen.test_loss": "test loss",
    "measure.prunability": "prunability",
    "measure.kept_count": "κ, kept weight count",
    "train.n_prunable": "|P|, prunable weights",
    "measure.effective_dimensionality": "effective dimensionality",
}


def _pearson_rows(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson r of the rows of x and y (resamples x n) with weights w (resamples x n);
    NaN where either is constant over the drawn models (or none is drawn)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        total = w.sum(axis=1, keepdims=True)
        dx = x - (w * x).sum(axis=1, keepdims=True) / total
        dy = y - (w * y).sum(axis=1, keepdims=True) / total
        sxy, sxx, syy = (w * dx * dy).sum(axis=1), (w * dx * dx).sum(axis=1), (w * dy * dy).sum(axis=1)
        # Constant is decided on the drawn values themselves: the rounded mean of equal
        # values (88.4 three times) can differ from them and leave sxx a tiny positive.
        drawn = w > 0
        varies = [np.where(drawn, v, -np.inf).max(axis=1) > np.where(drawn, v, np.inf).min(axis=1) for v in (x, y)]
        return np.where(varies[0] & varies[1] & (sxx > 0) & (syy > 0), sxy / np.sqrt(sxx * syy), np.nan)


def weighted_pearson(x, y, counts) -> np.ndarray:
    """Pearson r of (x, y) in each resample: row b of ``counts`` (resamples x n) says how
    often each pair is drawn, so the value is r of the expanded sample. NaN where x or y
    is constant in the resample. All counts 1 give the plain Pearson r."""
    x, y = _paired(x, y)
    w = np.atleast_2d(np.asarray(counts, dtype=float))
    return _pearson_rows(np.broadcast_to(x, w.shape), np.broadcast_to(y, w.shape), w)


def weighted_ranks(x, counts) -> np.ndarray:
    """Mid-ranks (1-based, ties averaged) of each model's value within each resample's
    expanded sample: (resamples x n). A model drawn c times has the rank its c copies
    share."""
    x = _as_float_array(x)
    w = np.atleast_2d(np.asarray(counts, dtype=float))
    below = (x[None, :] < x[:, None]).astype(float)  # below[i, j]: x_j < x_i
    equal = (x[None, :] == x[:, None]).astype(float)
    return w @ below.T + (w @ equal.T + 1.0) / 2.0


def weighted_spearman(x, y, counts) -> np.ndarray:
    """Spearman rho (Pearson r of mid-ranks) of the expanded sample of each resample."""
    x, y = _paired(x, y)
    w = np.atleast_2d(np.asarray(counts, dtype=float))
    return _pearson_rows(weighted_ranks(x, w), weighted_ranks(y, w), w)


def _correlations(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """tau_a, Spearman rho and Pearson r of each resample of (x, y)."""
    return {
        "tau_a": weighted_group_taus(x, y, np.zeros(x.size, dtype=np.int64), counts)[:, 0],
        "spearman_rho": weighted_spearman(x, y, counts),
        "pearson_r": weighted_pearson(x, y, counts),
    }


def sweep_correlations(
    table: pd.DataFrame,
    orientations: Mapping[str, int],
    targets: Sequence[str],
    counts: np.ndarray,
    level: float,
) -> pd.DataFrame:
    """Kendall tau (tau-a, and tau-b), Spearman rho and Pearson r of every oriented
    measure with every target (columns such as ``gen.test_loss``) across the models of
    ``table``, with ``level`` percentile intervals over the resamples ``counts``
    (resamples x len(table)). Each pair uses its usable models (converged, both values
    finite) of every resample. Columns ``SWEEP_COLUMNS``."""
    if counts.shape[1] != len(table):
        raise ValueError(f"counts has {counts.shape[1]} columns for a table of {len(table)} models")
    ones = np.ones((1, len(table)))
    rows = []
    for measure, orientation in orientations.items():
        for target in targets:
            mask, _ = usable(table, MEASURE_PREFIX + measure, target)
            x = _check_orientation(orientation) * table[MEASURE_PREFIX + measure].to_numpy(dtype=float)[mask]
            y = table[target].to_numpy(dtype=float)[mask]
            row = {"measure": measure, "target": target, "n_used": int(mask.sum()), "tau_b": kendall_tau_b(x, y)}
            if x.size < 2:  # no pair to correlate (e.g. a measure undefined for every model)
                rows.append(row)
                continue
            point, resampled = _correlations(x, y, ones[:, mask]), _correlations(x, y, counts[:, mask])
            for name in point:
                row[name] = float(point[name][0])
                row[f"{name}_low"], row[f"{name}_high"] = percentile_interval(resampled[name], level)
            rows.append(row)
    return pd.DataFrame(rows).reindex(columns=SWEEP_COLUMNS)


def with_train_error(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a ``train_error`` column (1 - training accuracy, on the labels trained on)."""
    return table.assign(train_error=1.0 - table["gen.train_acc"].astype(float))


def sweep_means(table: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Mean, min, max and count of each ``CURVE_COLUMNS`` quantity over the converged
    models at each value of the sweep axis ``axis`` (a grid axis name), in sweep order."""
    used = with_train_error(table[table[CONVERGED_COL].eq(True)])
    columns = [c for c in CURVE_COLUMNS if c in used]
    grouped = used.groupby(f"hp.{axis}", sort=True)[columns]
    frame = grouped.agg(["mean", "min", "max", "count"])
    frame.columns = [f"{column}_{statistic}" for column, statistic in frame.columns]
    return frame.reset_index()


def interpolation_threshold(means: pd.DataFrame, axis: str, max_train_error: float):
    """The smallest value of the sweep axis whose mean training error (``sweep_means``)
    is at most ``max_train_error``: where the models first fit their (noisy) training
    labels. None if no value does."""
    fitted = means[means["train_error_mean"] <= max_train_error]
    return None if fitted.empty else fitted[f"hp.{axis}"].min()


def peak(means: pd.DataFrame, axis: str, column: str = "gen.test_loss") -> dict:
    """Where the mean of ``column`` is largest across the sweep, and whether that maximum
    lies strictly inside it (the signature of double descent): keys value, at, inside."""
    values = means[f"{column}_mean"].to_numpy(dtype=float)
    if not np.isfinite(values).any():
        return {"value": np.nan, "at": None, "inside": False}
    i = int(np.nanargmax(values))
    return {"value": float(values[i]), "at": means[f"hp.{axis}"].iloc[i], "inside": 0 < i < len(values) - 1}
