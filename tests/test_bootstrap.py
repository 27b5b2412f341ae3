"""Tests for prunability.analysis.bootstrap.

Every statistic is checked against a value worked out by hand in a comment, plus
property tests against explicit pair-by-pair reference loops written here.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prunability.analysis.bootstrap import (
    _nanmean,
    bootstrap_counts,
    bootstrap_intervals,
    bootstrap_tau_psi,
    percentile_interval,
    weighted_group_taus,
)
from prunability.analysis.ranking import granulated_kendall, kendall_tau_a, summary_tables

# --------------------------------------------------------------------------- reference helpers


def _sign(v: float) -> int:
    v = float(v)
    return int(v > 0) - int(v < 0)


def _expanded_pair_tau(x, y, groups, counts, group):
    """Weighted tau of one group by an explicit loop over the expanded resample: every
    model k appears c_k times; all ordered pairs of copies of two *different* models of
    the group are listed and their sign products averaged. NaN if there is no such pair."""
    copies = [k for k in range(len(x)) for _ in range(int(counts[k])) if groups[k] == group]
    total = n_pairs = 0
    for a in range(len(copies)):
        for b in range(len(copies)):
            k, l = copies[a], copies[b]
            if a == b or k == l:  # the same copy, or two copies of one model
                continue
            total += _sign(x[k] - x[l]) * _sign(y[k] - y[l])
            n_pairs += 1
    return total / n_pairs if n_pairs else float("nan")


def _same(a: float, b: float, tol: float = 1e-9) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


# --------------------------------------------------------------------------- bootstrap_counts


def test_bootstrap_counts_shape_sums_and_seed():
    c = bootstrap_counts(7, 50, seed=3)
    assert c.shape == (50, 7)
    assert np.issubdtype(c.dtype, np.integer)
    assert (c >= 0).all()
    assert (c.sum(axis=1) == 7).all()  # each resample draws n models
    assert np.array_equal(c, bootstrap_counts(7, 50, seed=3))
    assert not np.array_equal(c, bootstrap_counts(7, 50, seed=4))
    # a single model: every resample draws it once
    assert np.array_equal(bootstrap_counts(1, 4, seed=0), np.ones((4, 1)))


@pytest.mark.parametrize("n,r", [(0, 10), (-1, 10), (5, 0)])
def test_bootstrap_counts_rejects_empty(n, r):
    with pytest.raises(ValueError):
        bootstrap_counts(n, r, seed=0)


# --------------------------------------------------------------------------- weighted_group_taus


def test_weighted_group_taus_by_hand():
    # one group, x = [1, 2, 3], y = [1, 3, 2]: unordered pairs and signs s_kl
    #   (0,1): x up, y up -> +1; (0,2): up, up -> +1; (1,2): x up, y down -> -1
    # counts (1,1,1): weights 1,1,1 -> (1 + 1 - 1) / 3 = 1/3 (= kendall_tau_a)
    # counts (2,1,0): weights c_k c_l = 2, 0, 0 -> (2 * +1) / 2 = 1
    # counts (1,1,2): weights 1, 2, 2 -> (1 + 2 - 2) / (1 + 2 + 2) = 1/5
    # counts (3,0,0): only copies of model 0 -> no pair -> NaN
    x, y = [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]
    counts = np.array([[1, 1, 1], [2, 1, 0], [1, 1, 2], [3, 0, 0]])
    out = weighted_group_taus(x, y, [0, 0, 0], counts)
    assert out.shape == (4, 1)
    assert out[0, 0] == pytest.approx(1 / 3)
    assert out[1, 0] == pytest.approx(1.0)
    assert out[2, 0] == pytest.approx(1 / 5)
    assert math.isnan(out[3, 0])


def test_weighted_group_taus_two_groups_by_hand():
    # groups: g0 = {0, 1, 2}, g1 = {3, 4}; x = [1,2,3,4,5], y = [1,3,2,5,4]
    #   g0 pairs as above: s = +1, +1, -1 for (0,1), (0,2), (1,2)
    #   g1 pair (3,4): x up, y down -> -1; pairs across groups are ignored
    # counts (1,3,1, 2,2): g0 weights 3, 1, 3 -> (3 + 1 - 3) / 7 = 1/7; g1 weight 4 -> -1
    # counts (0,2,0, 1,0): g0 one distinct model -> NaN; g1 one distinct model -> NaN
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    y = [1.0, 3.0, 2.0, 5.0, 4.0]
    out = weighted_group_taus(x, y, [0, 0, 0, 1, 1], [[1, 3, 1, 2, 2], [0, 2, 0, 1, 0]])
    assert out[0, 0] == pytest.approx(1 / 7)
    assert out[0, 1] == pytest.approx(-1.0)
    assert np.isnan(out[1]).all()


def test_weighted_group_taus_ones_is_kendall_tau_a_per_group():
    # group 0 = {0, 2, 4}: x 1, 3, 5 / y 2, 2, 1: (0,2) tied y -> 0, (0,4) d, (2,4) d -> -2/3
    # group 1 = {1, 3}: x 2, 4 / y 7, 9 -> +1; a group of one model ({5}) -> NaN
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [2.0, 7.0, 2.0, 9.0, 1.0, 0.0]
    out = weighted_group_taus(x, y, [0, 1, 0, 1, 0, 2], np.ones((1, 6)))[0]
    assert out[0] == pytest.approx(-2 / 3)
    assert out[0] == kendall_tau_a([1, 3, 5], [2, 2, 1])
    assert out[1] == 1.0
    assert math.isnan(out[2])


@st.composite
def weighted_groups(draw):
    n = draw(st.integers(2, 7))
    ints = st.integers(-3, 3)
    x = draw(st.lists(ints, min_size=n, max_size=n))
    y = draw(st.lists(ints, min_size=n, max_size=n))
    n_groups = draw(st.integers(1, 3))
    groups = draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n))
    counts = draw(st.lists(st.lists(st.integers(0, 3), min_size=n, max_size=n), min_size=1, max_size=3))
    return np.array(x, float), np.array(y, float), np.array(groups), np.array(counts)


@settings(max_examples=50, deadline=None)
@given(weighted_groups())
def test_prop_weighted_group_taus_is_tau_of_expanded_resample(data):
    x, y, groups, counts = data
    out = weighted_group_taus(x, y, groups, counts)
    assert out.shape == (len(counts), groups.max() + 1)
    for r in range(len(counts)):
        for g in range(groups.max() + 1):
            expected = _expanded_pair_tau(x, y, groups, counts[r], g)
            assert _same(out[r, g], expected), (r, g, out[r, g], expected)
            # the same through kendall_tau_a of the expanded group: copy pairs add 0 to
            # its numerator, so rescale its denominator N (N - 1) to N (N - 1) - sum c (c - 1)
            members = [k for k in range(len(x)) if groups[k] == g]
            idx = np.repeat(members, counts[r, members]).astype(int)
            c = counts[r, members]
            n_pairs = idx.size * (idx.size - 1) - int((c * (c - 1)).sum())
            if n_pairs > 0:
                rescaled = kendall_tau_a(x[idx], y[idx]) * idx.size * (idx.size - 1) / n_pairs
                assert out[r, g] == pytest.approx(rescaled, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(weighted_groups())
def test_prop_weighted_group_taus_ones_equals_tau_a(data):
    x, y, groups, _ = data
    out = weighted_group_taus(x, y, groups, np.ones((1, len(x))))[0]
    for g in range(groups.max() + 1):
        pos = groups == g
        expected = kendall_tau_a(x[pos], y[pos])  # NaN for fewer than 2 models
        assert _same(out[g], expected, 1e-12)


# --------------------------------------------------------------------------- _nanmean


def test_nanmean_by_hand():
    # rows: [1, nan, 3] -> (1 + 3) / 2 = 2; all NaN -> NaN; [inf, 2, 4] -> inf ignored -> 3
    values = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [np.inf, 2.0, 4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "no warning" for the all-NaN row
        rows = _nanmean(values, axis=1)
        cols = _nanmean(values, axis=0)
    assert rows[0] == 2.0 and math.isnan(rows[1]) and rows[2] == 3.0
    # columns: [1, nan, inf] -> 1; [nan, nan, 2] -> 2; [3, nan, 4] -> 3.5
    assert cols.tolist() == [1.0, 2.0, 3.5]


# --------------------------------------------------------------------------- bootstrap_tau_psi


def grid_2x3() -> pd.DataFrame:
    # depth {1, 2} x width {1, 2, 3}; m0..m5 in (depth, width) order
    return pd.DataFrame(
        {
            "model": [f"m{k}" for k in range(6)],
            "hp.depth": [1, 1, 1, 2, 2, 2],
            "hp.width": [1, 2, 3, 1, 2, 3],
            "is.converged": [True] * 6,
            "measure.x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "gen.acc_gap": [1.0, 3.0, 2.0, 4.0, 6.0, 5.0],
        }
    )


AXES = ["hp.depth", "hp.width"]


def test_bootstrap_tau_psi_ones_reproduces_summary_tables():
    # counts all 1, by hand: measure 1..6, target 1,3,2,4,6,5
    #   overall: 15 pairs, discordant (m1,m2) and (m4,m5) -> tau = (13 - 2) / 15 = 11/15
    #   width axis (fixed depth): {m0,m1,m2} 1/3, {m3,m4,m5} 1/3 -> psi_width = 1/3
    #   depth axis (fixed width): {m0,m3}, {m1,m4}, {m2,m5} all concordant -> psi_depth = 1
    #   Psi = (1 + 1/3) / 2 = 2/3
    table = grid_2x3()
    tau, Psi = bootstrap_tau_psi(table["measure.x"], table["gen.acc_gap"], table, AXES, np.ones((1, 6)))
    assert tau.shape == Psi.shape == (1,)
    assert tau[0] == pytest.approx(11 / 15)
    assert Psi[0] == pytest.approx(2 / 3)
    summary, _ = summary_tables(table, {"x": 1}, ["gen.acc_gap"], AXES)
    assert tau[0] == summary.loc[0, "tau_a"]
    assert Psi[0] == pytest.approx(summary.loc[0, "Psi"], abs=1e-15)


def test_bootstrap_tau_psi_weighted_by_hand():
    # grid_2x3 with counts (1,1,2, 1,1,1): sum c = 7, sum c^2 = 9
    #   tau: all pairs weight c_k c_l, total (49 - 9) / 2 = 20; discordant (m1,m2) weight 2
    #        and (m4,m5) weight 1 -> (17 - 3) / 20 = 7/10
    #   width, depth=1 {m0,m1,m2}: (0,1) c w1, (0,2) c w2, (1,2) d w2 -> (1 + 2 - 2) / 5 = 1/5
    #          depth=2 {m3,m4,m5}: weights 1 -> 1/3;  psi_width = (1/5 + 1/3) / 2 = 4/15
    #   depth: every pair concordant -> psi_depth = 1;  Psi = (1 + 4/15) / 2 = 19/30
    # counts (0,2,2, 0,0,2): tau: (m1,m2) d w4, (m1,m5) c w4, (m2,m5) c w4 -> (8 - 4)/12 = 1/3
    #   width, depth=1 {m1,m2} -> -1; depth=2 {m5} only -> NaN; psi_width = -1
    #   depth, width=1 none; width=2 {m1} NaN; width=3 {m2,m5} c -> 1; psi_depth = 1; Psi = 0
    # counts (6,0,0, 0,0,0): one model -> tau NaN, Psi NaN
    table = grid_2x3()
    counts = np.array([[1, 1, 2, 1, 1, 1], [0, 2, 2, 0, 0, 2], [6, 0, 0, 0, 0, 0]])
    tau, Psi = bootstrap_tau_psi(table["measure.x"].to_numpy(), table["gen.acc_gap"].to_numpy(), table, AXES, counts)
    assert tau[0] == pytest.approx(7 / 10)
    assert Psi[0] == pytest.approx(19 / 30)
    assert tau[1] == pytest.approx(1 / 3)
    assert Psi[1] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(tau[2]) and math.isnan(Psi[2])


def test_bootstrap_tau_psi_no_axes_and_single_axis():
    # no axes: Psi NaN for every resample; one axis: the group is all models, Psi = tau
    table = grid_2x3()
    tau, Psi = bootstrap_tau_psi(table["measure.x"], table["gen.acc_gap"], table, [], np.ones((2, 6)))
    assert np.isnan(Psi).all() and tau.tolist() == pytest.approx([11 / 15] * 2)
    tau, Psi = bootstrap_tau_psi(table["measure.x"], table["gen.acc_gap"], table, ["hp.width"], np.ones((1, 6)))
    assert Psi[0] == pytest.approx(11 / 15)


@st.composite
def grid_tables(draw):
    # a full 2 x k grid (k = 2 or 3) with small-integer measures and targets (ties likely),
    # maybe with one cell removed (a partial grid)
    k = draw(st.integers(2, 3))
    cells = list(itertools.product([1, 2], range(k)))
    n = len(cells)
    ints = st.integers(0, 3)
    table = pd.DataFrame(cells, columns=AXES)
    table["is.converged"] = True
    table["measure.x"] = draw(st.lists(ints, min_size=n, max_size=n))
    table["gen.acc_gap"] = draw(st.lists(ints, min_size=n, max_size=n))
    table["measure.x"] = table["measure.x"].astype(float)
    table["gen.acc_gap"] = table["gen.acc_gap"].astype(float)
    drop = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    if drop is not None:
        table = table.drop(index=drop).reset_index(drop=True)
    return table


@settings(max_examples=50, deadline=None)
@given(grid_tables())
def test_prop_bootstrap_tau_psi_ones_equals_tau_a_and_granulated(table):
    tau, Psi = bootstrap_tau_psi(table["measure.x"], table["gen.acc_gap"], table, AXES, np.ones((1, len(table))))
    assert tau[0] == kendall_tau_a(table["measure.x"], table["gen.acc_gap"])
    expected = granulated_kendall(table, "measure.x", "gen.acc_gap", AXES)["Psi"]
    assert _same(Psi[0], expected, 1e-12)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_bootstrap_tau_psi_nan_hyperparameter_like_granulated():
    # hp.b = [1, 1, NaN, NaN]: axis a groups {0, 1} (b = 1) and {2, 3} (b = NaN)
    #   measure 1,2,3,4 / target 1,2,4,3: {0,1} c -> 1; {2,3} d -> -1; psi_a = 0
    #   axis b groups by a: {0, 2} (a = 1) c -> 1; {1, 3} (a = 2) c -> 1; psi_b = 1
    #   Psi = 1/2 (as granulated_kendall returns)
    hp = pd.DataFrame({"hp.a": [1, 2, 1, 2], "hp.b": [1.0, 1.0, np.nan, np.nan]})
    m, g = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 4.0, 3.0])
    table = hp.assign(**{"measure.m": m, "gen.g": g})
    assert granulated_kendall(table, "measure.m", "gen.g", ["hp.a", "hp.b"])["Psi"] == pytest.approx(0.5)
    _, Psi = bootstrap_tau_psi(m, g, hp, ["hp.a", "hp.b"], np.ones((1, 4)))
    assert Psi[0] == pytest.approx(0.5)


# --------------------------------------------------------------------------- percentile_interval


def test_percentile_interval_known_quantiles():
    # values 0..100 (101 points), level 0.9: quantiles 0.05 and 0.95 at positions
    # 0.05 * 100 = 5 and 0.95 * 100 = 95 -> (5, 95) exactly
    assert percentile_interval(np.arange(101), 0.9) == (pytest.approx(5.0), pytest.approx(95.0))
    # values [0, 10], level 0.5: quantiles 0.25, 0.75 -> linear interpolation (2.5, 7.5)
    assert percentile_interval([0.0, 10.0], 0.5) == (pytest.approx(2.5), pytest.approx(7.5))
    # level 1: (min, max)
    assert percentile_interval([3.0, -1.0, 2.0], 1.0) == (-1.0, 3.0)


def test_percentile_interval_ignores_nonfinite():
    # [nan, 0, inf, 10, nan] -> finite [0, 10]; level 0.5 -> (2.5, 7.5)
    low, high = percentile_interval([np.nan, 0.0, np.inf, 10.0, np.nan], 0.5)
    assert (low, high) == (pytest.approx(2.5), pytest.approx(7.5))
    assert all(math.isnan(v) for v in percentile_interval([np.nan, np.nan], 0.95))
    assert all(math.isnan(v) for v in percentile_interval([], 0.95))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6) | st.just(float("nan")), min_size=1, max_size=20),
    st.floats(0.0, 1.0),
)
def test_prop_percentile_interval_ordered_and_within_range(values, level):
    low, high = percentile_interval(values, level)
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        assert math.isnan(low) and math.isnan(high)
    else:
        assert min(finite) <= low <= high <= max(finite)


# --------------------------------------------------------------------------- bootstrap_intervals


def test_bootstrap_intervals_perfectly_monotone_is_exactly_one():
    # measure.x = gap (all distinct): every resample with two distinct models has tau = 1
    # and every finite psi = 1, so the percentile interval is exactly (1, 1); with
    # orientation -1 the oriented measure is -gap: (-1, -1)
    table = grid_2x3().assign(**{"measure.x": [1.0, 3.0, 2.0, 4.0, 6.0, 5.0]})
    counts = bootstrap_counts(6, 200, seed=1)
    out = bootstrap_intervals(table, {"x": 1}, ["gen.acc_gap"], AXES, counts, 0.95)
    assert list(out.columns) == ["measure", "target", "tau_a_low", "tau_a_high", "Psi_low", "Psi_high"]
    assert out.iloc[0][["tau_a_low", "tau_a_high", "Psi_low", "Psi_high"]].tolist() == [1.0] * 4
    out = bootstrap_intervals(table, {"x": -1}, ["gen.acc_gap"], AXES, counts, 0.95)
    assert out.iloc[0][["tau_a_low", "tau_a_high", "Psi_low", "Psi_high"]].tolist() == [-1.0] * 4


def test_bootstrap_intervals_uses_usable_rows_by_hand():
    # grid_2x3 with measure.x NaN for m5: the usable rows are m0..m4 (measure 1..5, target
    # 1,3,2,4,6). Level 1 gives (min, max) over the resamples.
    # resample ones: 10 pairs, discordant only (m1,m2) -> tau = (9 - 1)/10 = 4/5
    #   width: {m0,m1,m2} 1/3, {m3,m4} 1 -> 2/3; depth: {m0,m3} 1, {m1,m4} 1, {m2} NaN -> 1
    #   Psi = (1 + 2/3) / 2 = 5/6
    # resample (1,1,2,1,1, 5): the 5 on m5 is dropped; over m0..m4 sum c = 6, sum c^2 = 8
    #   -> total weight (36 - 8)/2 = 14, discordant (m1,m2) weight 2 -> (12 - 2)/14 = 5/7
    #   width: {m0,m1,m2} (1,1,2) -> 1/5, {m3,m4} 1 -> 3/5; depth 1; Psi = (1 + 3/5)/2 = 4/5
    # tau interval (5/7, 4/5); Psi interval (4/5, 5/6)
    table = grid_2x3()
    table.loc[5, "measure.x"] = np.nan
    counts = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 2, 1, 1, 5]])
    r = bootstrap_intervals(table, {"x": 1}, ["gen.acc_gap"], AXES, counts, 1.0).iloc[0]
    assert (r["tau_a_low"], r["tau_a_high"]) == (pytest.approx(5 / 7), pytest.approx(4 / 5))
    assert (r["Psi_low"], r["Psi_high"]) == (pytest.approx(4 / 5), pytest.approx(5 / 6))


def test_bootstrap_intervals_excludes_unconverged_and_covers_all_pairs():
    # an unconverged 7th model with values that would reverse every pair is ignored:
    # measure = gap on the converged models -> (1, 1). Two targets x two measures -> 4 rows.
    table = pd.concat(
        [
            grid_2x3().assign(**{"measure.x": [1.0, 3.0, 2.0, 4.0, 6.0, 5.0], "measure.y": [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]}),
            pd.DataFrame({"model": ["bad"], "hp.depth": [2], "hp.width": [3], "is.converged": [False],
                          "measure.x": [100.0], "measure.y": [100.0], "gen.acc_gap": [-100.0]}),
        ],
        ignore_index=True,
    )
    table["gen.loss_gap"] = table["gen.acc_gap"]
    counts = bootstrap_counts(7, 100, seed=0)
    out = bootstrap_intervals(table, {"x": 1, "y": 1}, ["gen.acc_gap", "gen.loss_gap"], AXES, counts, 0.9)
    assert list(zip(out["measure"], out["target"])) == [
        ("x", "gen.acc_gap"), ("x", "gen.loss_gap"), ("y", "gen.acc_gap"), ("y", "gen.loss_gap")
    ]
    assert out.loc[0, ["tau_a_low", "tau_a_high", "Psi_low", "Psi_high"]].tolist() == [1.0] * 4
    # measure.y (6..1) against gap (1,3,2,4,6,5) is mostly discordant: interval below 0
    assert out.loc[2, "tau_a_high"] < 0


def test_bootstrap_intervals_rejects_wrong_number_of_columns():
    with pytest.raises(ValueError, match="columns"):
        bootstrap_intervals(grid_2x3(), {"x": 1}, ["gen.acc_gap"], AXES, np.ones((3, 5)), 0.95)


def test_bootstrap_intervals_measure_without_usable_rows_is_nan():
    table = grid_2x3().assign(**{"measure.x": np.nan})
    out = bootstrap_intervals(table, {"x": 1}, ["gen.acc_gap"], AXES, np.ones((2, 6), dtype=int), 0.9)
    assert out.iloc[0][["tau_a_low", "tau_a_high", "Psi_low", "Psi_high"]].isna().all()
