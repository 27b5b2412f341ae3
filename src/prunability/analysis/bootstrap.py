"""Bootstrap intervals (``bootstrap_counts``, ``bootstrap_tau_psi``,
``bootstrap_intervals``): models are resampled with replacement; a resample that
holds model k c_k times weights each pair (k, l), k != l, by c_k c_l and leaves out
the pairs of copies of one model, which carry no order (so with every c_k = 1 the
statistics are exactly tau_a and Psi). Percentile intervals.

The one resampling every interval of the package uses: the summary tables, the
tolerance sensitivity, the claims, the double-descent sweep and the stability
correlations draw ``bootstrap_counts`` and read ``percentile_interval``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ._checks import _as_float_array, _paired
from .rows import _measure_target_pairs


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
