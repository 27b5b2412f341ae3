"""Tests for prunability.double_descent: the sweep statistics on hand-made tables.

Hand-computed cases use small tables whose correlations are worked out in the comments;
the weighted (bootstrap) forms are checked against scipy on the expanded sample each
resample stands for.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from prunability import double_descent
from prunability.analysis.bootstrap import bootstrap_counts, percentile_interval
from prunability.double_descent import (
    SWEEP_COLUMNS,
    interpolation_threshold,
    peak,
    sweep_correlations,
    sweep_means,
    weighted_pearson,
    weighted_ranks,
    weighted_spearman,
)


def sweep_table(**columns) -> pd.DataFrame:
    """Four widths, one model each: test loss 0.5, 1.0, 0.8, 0.6 (peak at width 2)."""
    table = pd.DataFrame({
        "model": ["w1", "w2", "w4", "w8"],
        "hp.width": [1, 2, 4, 8],
        "gen.test_loss": [0.5, 1.0, 0.8, 0.6],
        "gen.test_error": [0.1, 0.3, 0.2, 0.2],
        "gen.train_acc": [0.8, 1.0, 1.0, 1.0],
        "measure.prunability": [0.6, 0.9, 0.8, 0.7],
        "measure.params": [10.0, 20.0, 40.0, 80.0],
        "is.converged": [True, True, True, True],
    })
    for name, values in columns.items():
        table[name] = values
    return table


# ------------------------------------------------------------------ weighted correlations


def test_pearson_spearman_by_hand():
    # x = 1, 2, 3; y = 1, 3, 2: deviations (-1, 0, 1) and (-1, 1, 0), so
    # r = sum dx dy / sqrt(sum dx^2 sum dy^2) = 1 / sqrt(2 * 2) = 0.5; the values are their
    # own ranks, so rho = 0.5 too
    x, y = [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]
    assert weighted_pearson(x, y, np.ones((1, 3)))[0] == pytest.approx(0.5)
    assert weighted_spearman(x, y, np.ones((1, 3)))[0] == pytest.approx(0.5)
    # counts (2, 1, 0): the sample 1, 1, 2 against 1, 1, 3: mean x 4/3, mean y 5/3,
    # dx (-1/3, -1/3, 2/3), dy (-2/3, -2/3, 4/3) = 2 dx: r = 1
    assert weighted_pearson(x, y, [[2, 1, 0]])[0] == pytest.approx(1.0)


def test_weighted_ranks_are_mid_ranks_of_the_expanded_sample():
    # counts (2, 1, 1) of x = 1, 1, 2: the sample 1, 1, 1, 2 has mid-ranks 2, 2, 2, 4
    assert weighted_ranks([1.0, 1.0, 2.0], [[2, 1, 1]]).tolist() == [[2.0, 2.0, 4.0]]
    # a model not drawn still gets the rank it would share: x = 3 above the sample 1, 2
    assert weighted_ranks([1.0, 2.0, 3.0], [[1, 1, 0]]).tolist() == [[1.0, 2.0, 2.5]]


def test_constant_input_gives_nan():
    assert math.isnan(weighted_pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], np.ones((1, 3)))[0])
    assert math.isnan(weighted_spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0], np.ones((1, 3)))[0])
    # a resample that draws one model only
    assert math.isnan(weighted_pearson([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], [[3, 0, 0]])[0])


def test_equal_values_whose_rounded_mean_differs_from_them_are_constant():
    # the weighted mean of 88.4, 88.4, 88.4 is not exactly 88.4 in floating point, which
    # left sxx a tiny positive and r a meaningless +-1 or 0; the drawn values are equal
    x, y = [88.4, 88.4, 97.25], [0.9537037, 0.95, 0.95]
    assert np.isnan(weighted_pearson(x, y, [[2, 1, 0], [0, 2, 1]])).all()
    assert np.isnan(weighted_spearman(x, y, [[2, 1, 0], [0, 2, 1]])).all()
    assert not np.isnan(weighted_pearson(x, y, [[1, 1, 1]])).any()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_weighted_forms_equal_scipy_on_the_expanded_sample(data):
    n = data.draw(st.integers(2, 8))
    values = st.lists(st.integers(0, 5).map(float), min_size=n, max_size=n)  # ties on purpose
    x, y = np.array(data.draw(values)), np.array(data.draw(values))
    counts = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    expanded = np.repeat(np.arange(n), counts)
    ex, ey = x[expanded], y[expanded]
    r, rho = weighted_pearson(x, y, counts[None])[0], weighted_spearman(x, y, counts[None])[0]
    if expanded.size < 2 or np.ptp(ex) == 0 or np.ptp(ey) == 0:
        assert math.isnan(r) and math.isnan(rho)
    else:
        assert r == pytest.approx(scipy.stats.pearsonr(ex, ey).statistic, abs=1e-12)
        assert rho == pytest.approx(scipy.stats.spearmanr(ex, ey).statistic, abs=1e-12)


# ---------------------------------------------------------------------- sweep statistics


def test_sweep_correlations_by_hand():
    table = sweep_table()
    counts = bootstrap_counts(4, 200, 0)
    result = sweep_correlations(table, {"prunability": 1, "params": -1}, ["gen.test_loss"], counts, 0.9)
    assert list(result.columns) == SWEEP_COLUMNS
    prun = result.set_index("measure").loc["prunability"]
    # prunability 0.6, 0.9, 0.8, 0.7 has the test loss's ranks 1, 4, 3, 2: tau = rho = 1
    assert (prun["n_used"], prun["tau_a"], prun["tau_b"], prun["spearman_rho"]) == (4, 1.0, 1.0, 1.0)
    # r: dx = (-0.15, 0.15, 0.05, -0.05), dy = (-0.225, 0.275, 0.075, -0.125) around the
    # means 0.75 and 0.725; sum dx dy = 0.085, sum dx^2 = 0.05, sum dy^2 = 0.1475
    assert prun["pearson_r"] == pytest.approx(0.085 / math.sqrt(0.05 * 0.1475))
    params = result.set_index("measure").loc["params"]
    # -params ranks 4, 3, 2, 1 against the loss's 1, 4, 3, 2: pairs (w1, each) discordant,
    # (w2, w4), (w2, w8), (w4, w8) concordant: tau = (3 - 3) / 6 = 0; rho = 1 - 6 sum d^2 /
    # (n (n^2 - 1)) with d = (3, -1, -1, -1): 1 - 6 * 12 / 60 = -0.2
    assert params["tau_a"] == pytest.approx(0.0)
    assert params["spearman_rho"] == pytest.approx(-0.2)
    for name in ("tau_a", "spearman_rho", "pearson_r"):
        assert params[f"{name}_low"] <= params[f"{name}_high"]
        # intervals are percentiles of the same resamples' values
        x = -table["measure.params"].to_numpy()
        y = table["gen.test_loss"].to_numpy()
        values = double_descent._correlations(x, y, counts)[name]
        assert (params[f"{name}_low"], params[f"{name}_high"]) == percentile_interval(values, 0.9)


def test_sweep_correlations_use_converged_finite_models_only():
    table = sweep_table(**{"is.converged": [True, True, True, False],
                           "measure.params": [10.0, np.nan, 40.0, 80.0]})
    counts = bootstrap_counts(4, 50, 0)
    result = sweep_correlations(table, {"prunability": 1, "params": 1}, ["gen.test_loss", "gen.test_error"], counts, 0.95)
    assert len(result) == 4
    by = result.set_index(["measure", "target"])
    assert by.loc[("prunability", "gen.test_loss"), "n_used"] == 3
    assert by.loc[("params", "gen.test_loss"), "n_used"] == 2
    # params 10, 40 against loss 0.5, 0.8 (w1, w4): concordant, tau 1, r 1
    assert by.loc[("params", "gen.test_loss"), "tau_a"] == 1.0
    assert by.loc[("params", "gen.test_loss"), "pearson_r"] == pytest.approx(1.0)
    # a measure with fewer than two usable models has no correlation, and says so with NaN
    table["measure.undefined"] = [np.nan, np.nan, 1.0, np.nan]
    table["is.converged"] = True
    result = sweep_correlations(table, {"undefined": 1}, ["gen.test_loss"], counts, 0.95).iloc[0]
    assert result["n_used"] == 1
    assert result[SWEEP_COLUMNS[3:]].isna().all()
    with pytest.raises(ValueError, match="counts has 3 columns for a table of 4 models"):
        sweep_correlations(table, {"prunability": 1}, ["gen.test_loss"], counts[:, :3], 0.95)


def test_sweep_means_threshold_and_peak_over_seeds():
    # two seeds per width; seed 1 of width 2 has not fit its labels (train acc 0.9)
    table = pd.DataFrame({
        "hp.width": [1, 1, 2, 2, 4, 4],
        "hp.seed": [0, 1, 0, 1, 0, 1],
        "gen.train_acc": [0.7, 0.8, 1.0, 0.9, 1.0, 1.0],
        "gen.test_loss": [0.4, 0.6, 1.1, 0.9, 0.7, 0.7],
        "gen.test_error": [0.1] * 6,
        "is.converged": [True, True, True, True, True, False],
    })
    means = sweep_means(table, "width")
    assert means["hp.width"].tolist() == [1, 2, 4]
    assert means["train_error_mean"].tolist() == pytest.approx([0.25, 0.05, 0.0])
    assert means["gen.test_loss_mean"].tolist() == pytest.approx([0.5, 1.0, 0.7])
    assert means["gen.test_loss_count"].tolist() == [2, 2, 1]  # the unconverged model is left out
    assert (means["gen.test_loss_min"].tolist(), means["gen.test_loss_max"].tolist()) == ([0.4, 0.9, 0.7], [0.6, 1.1, 0.7])
    assert "measure.prunability_mean" not in means  # columns the table lacks are skipped
    assert interpolation_threshold(means, "width", 0.01) == 4
    assert interpolation_threshold(means, "width", 0.05) == 2
    assert interpolation_threshold(means, "width", 0.0) == 4
    assert interpolation_threshold(means.iloc[:2], "width", 0.01) is None
    assert peak(means, "width") == {"value": pytest.approx(1.0), "at": 2, "inside": True}
    # the maximum at an end of the sweep is no double-descent peak
    assert peak(means.iloc[1:], "width")["inside"] is False
