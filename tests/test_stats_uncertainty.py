"""Tests for the grid-completeness, bootstrap and prediction-MI parts of prunability.stats.

Every statistic is checked against a value worked out by hand in a comment, plus
property tests against explicit pair-by-pair reference loops written here.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prunability import stats
from prunability.stats import (
    bootstrap_counts,
    bootstrap_intervals,
    bootstrap_tau_psi,
    cmi_careful,
    cmi_jiang,
    cmi_tables,
    flag_partial_grid,
    granulated_kendall,
    grid_completeness,
    kendall_tau_a,
    percentile_interval,
    prediction_mi,
    prediction_mi_table,
    summary_tables,
    tolerance_sensitivity,
    weighted_group_taus,
    weighted_pair_counts,
)

LOG2_3 = math.log2(3)


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


def _entropy(counter: Counter) -> float:
    total = sum(counter.values())
    return -sum(c / total * math.log2(c / total) for c in counter.values() if c > 0)


def _reference_prediction_mi(other, base, target, weights=None):
    """prediction_mi by an explicit loop: list every ordered pair of copies of two
    different models (copy k repeated c_k times), count the sign triples, and form
    I(O; B) / H(B) and I(O; T | B) / H(T | B) from plain entropies."""
    n = len(base)
    weights = [1] * n if weights is None else [int(w) for w in weights]
    copies = [k for k in range(n) for _ in range(weights[k])]
    triples = Counter()
    for a in range(len(copies)):
        for b in range(len(copies)):
            k, l = copies[a], copies[b]
            if k == l:
                continue
            triples[(_sign(base[k] - base[l]), _sign(other[k] - other[l]), _sign(target[k] - target[l]))] += 1
    total = sum(triples.values())
    if total == 0:
        return float("nan"), float("nan")
    b_ = Counter()
    o_ = Counter()
    bo = Counter()
    for (vb, vo, _), c in triples.items():
        b_[vb] += c
        o_[vo] += c
        bo[(vb, vo)] += c
    hb = _entropy(b_)
    mi = (hb + _entropy(o_) - _entropy(bo)) / hb if hb > 0 else float("nan")
    i_given = h_given = 0.0
    for vb, cb in b_.items():
        ot = Counter()
        o = Counter()
        t = Counter()
        for (wb, vo, vt), c in triples.items():
            if wb == vb:
                ot[(vo, vt)] += c
                o[vo] += c
                t[vt] += c
        p = cb / total
        i_given += p * (_entropy(o) + _entropy(t) - _entropy(ot))
        h_given += p * _entropy(t)
    cmi = i_given / h_given if h_given > 0 else float("nan")
    return mi, cmi


def _same(a: float, b: float, tol: float = 1e-9) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


# --------------------------------------------------------------------------- grid_completeness


def test_grid_completeness_complete_grid_is_empty():
    table = pd.DataFrame(
        {"model": ["a", "b", "c", "d"], "hp.x": [1, 1, 2, 2], "hp.y": [1, 2, 1, 2], "is.converged": [True] * 4}
    )
    out = grid_completeness(table, ["a", "b", "c", "d"], ["hp.x", "hp.y"])
    assert out.empty
    assert list(out.columns) == ["model", "status"]


def test_grid_completeness_every_problem():
    # grid a, b, c, d (x, y) = (1,1), (1,2), (2,1), (2,2)
    #   a: fine; b: not converged; c: present; d: missing (no row);
    #   e: not a grid cell (unexpected) and it sits on c's cell (2, 1) -> c and e duplicate;
    #   f: converged flag NA -> not converged, also unexpected
    table = pd.DataFrame(
        {
            "model": ["a", "b", "c", "e", "f"],
            "hp.x": [1, 1, 2, 2, 3],
            "hp.y": [1, 2, 1, 1, 3],
            "is.converged": pd.array([True, False, True, True, pd.NA], dtype="boolean"),
        }
    )
    out = grid_completeness(table, ["a", "b", "c", "d"], ["hp.x", "hp.y"])
    expected = [
        ("d", "missing"),
        ("b", "not converged"),
        ("f", "not converged"),
        ("c", "duplicate"),
        ("e", "duplicate"),
        ("e", "unexpected"),
        ("f", "unexpected"),
    ]
    assert list(out.itertuples(index=False, name=None)) == expected


def test_grid_completeness_without_axes_checks_no_duplicates():
    # two rows on the same (absent) axes values are not flagged when no axes are given
    table = pd.DataFrame({"model": ["a", "b"], "hp.x": [1, 1], "is.converged": [True, True]})
    assert grid_completeness(table, ["a", "b"], []).empty
    dup = grid_completeness(table, ["a", "b"], ["hp.x"])
    assert list(dup.itertuples(index=False, name=None)) == [("a", "duplicate"), ("b", "duplicate")]


# --------------------------------------------------------------------------- flag_partial_grid


def _summary_frame():
    return pd.DataFrame(
        {
            "measure": ["m1", "m2", "m3"],
            "n_used": [4, 3, 5],
            "tau_a": [0.1, 0.2, 0.3],
            "Psi": [0.4, 0.5, 0.6],
            "Psi_low": [0.3, 0.4, 0.5],
        }
    )


def test_flag_partial_grid_by_hand():
    # n_cells = 4, no duplicates: missing = 4 - n_used clipped at 0
    #   m1: 4 - 4 = 0 -> full; m2: 4 - 3 = 1 -> partial; m3: 4 - 5 = -1 -> 0 -> full
    frame = _summary_frame()
    out = flag_partial_grid(frame, 4, 0, False, ["Psi", "Psi_low"])
    assert out["grid_cells_missing"].tolist() == [0, 1, 0]
    assert out["full_grid"].tolist() == [True, False, True]
    # without require_full_grid nothing is blanked, and the input is not modified
    assert out["Psi"].tolist() == [0.4, 0.5, 0.6]
    assert "full_grid" not in frame.columns


def test_flag_partial_grid_with_duplicates():
    # n_cells = 4, one duplicate row: missing = 4 - n_used + 1
    #   m1: 4 - 4 + 1 = 1; m2: 4 - 3 + 1 = 2; m3: 4 - 5 + 1 = 0
    # a duplicate makes every row partial (full_grid False) even with 0 cells missing
    out = flag_partial_grid(_summary_frame(), 4, 1, False, ["Psi"])
    assert out["grid_cells_missing"].tolist() == [1, 2, 0]
    assert out["full_grid"].tolist() == [False, False, False]


def test_flag_partial_grid_require_full_grid_blanks_named_columns_on_partial_rows_only():
    out = flag_partial_grid(_summary_frame(), 4, 0, True, ["Psi", "Psi_low"])
    # only m2 (row 1) is partial: its Psi and Psi_low become NaN, its tau_a stays
    assert out.loc[[0, 2], "Psi"].tolist() == [0.4, 0.6]
    assert out.loc[[0, 2], "Psi_low"].tolist() == [0.3, 0.5]
    assert math.isnan(out.loc[1, "Psi"]) and math.isnan(out.loc[1, "Psi_low"])
    assert out["tau_a"].tolist() == [0.1, 0.2, 0.3]
    assert out["n_used"].tolist() == [4, 3, 5]


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
        rows = stats._nanmean(values, axis=1)
        cols = stats._nanmean(values, axis=0)
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


# --------------------------------------------------------------------------- weighted_pair_counts


CODES = np.array([[1, 0, 2], [2, 1, 0], [0, 2, 2]])


def test_weighted_pair_counts_unweighted_by_hand():
    # off-diagonal entries: (0,1)=0 (0,2)=2 (1,0)=2 (1,2)=0 (2,0)=0 (2,1)=2
    #   -> code 0: 3, code 1: 0 (the 1s on the diagonal are excluded), code 2: 3; code 3: 0
    # the diagonal (1, 1, 2) would add 2 to code 1 and 1 to code 2
    out = weighted_pair_counts(CODES, 4)
    assert out.tolist() == [3.0, 0.0, 3.0, 0.0]


def test_weighted_pair_counts_weighted_by_hand():
    # row (1,1,1): as unweighted -> [3, 0, 3]
    # row (2,1,0): weights c_k c_l: (0,1) 2 code 0, (1,0) 2 code 2, pairs with model 2 weigh 0
    #   -> [2, 0, 2]
    # row (1,1,3): (0,1) 1 c0, (0,2) 3 c2, (1,0) 1 c2, (1,2) 3 c0, (2,0) 3 c0, (2,1) 3 c2
    #   -> code 0: 1 + 3 + 3 = 7, code 2: 3 + 1 + 3 = 7 (diagonal would add c_k^2: 1 + 1 to
    #   code 1, 9 to code 2)
    out = weighted_pair_counts(CODES, 3, [[1, 1, 1], [2, 1, 0], [1, 1, 3]])
    assert out.shape == (3, 3)
    assert out.tolist() == [[3.0, 0.0, 3.0], [2.0, 0.0, 2.0], [7.0, 0.0, 7.0]]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.integers(0, 3), min_size=n, max_size=n), min_size=n, max_size=n),
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
)))
def test_prop_weighted_pair_counts_matches_expanded_loop(data):
    codes, c = np.array(data[0]), data[1]
    n = len(c)
    assert np.array_equal(weighted_pair_counts(codes, 4, np.ones((1, n)))[0], weighted_pair_counts(codes, 4))
    expected = np.zeros(4)
    for k in range(n):
        for l in range(n):
            if k != l:
                expected[codes[k, l]] += c[k] * c[l]
    out = weighted_pair_counts(codes, 4, [c])[0]
    assert np.array_equal(out, expected)
    assert out.sum() == sum(c) ** 2 - sum(v * v for v in c)


# --------------------------------------------------------------------------- prediction_mi


def test_prediction_mi_identical_monotone_reversed():
    base = [0.3, 1.0, -2.0, 5.0, 0.3]  # a tie included
    target = [1.0, 2.0, 3.0, 4.0, 5.0]
    # other = base: V_other = V_base, I = H(V_base) -> 1
    assert prediction_mi(base, base, target)["mi"] == pytest.approx(1.0)
    # strictly increasing transform keeps every sign -> 1
    assert prediction_mi(np.exp(base) + 7, base, target)["mi"] == pytest.approx(1.0)
    # reversed order: V_other = -V_base, a bijection of the values -> still 1
    assert prediction_mi(-np.array(base), base, target)["mi"] == pytest.approx(1.0)


def test_prediction_mi_constant_other_is_zero():
    # V_other = 0 on every pair: I(V_other; V_base) = 0; I(V_other; V_t | V_base) = 0
    out = prediction_mi([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0], [4.0, 1.0, 3.0, 2.0])
    assert out["mi"] == 0.0
    assert out["cmi_given_base"] == 0.0


def test_prediction_mi_constant_base_is_nan():
    # H(V_base) = 0 -> mi NaN; H(V_t | V_base) = H(V_t) > 0 so cmi is defined: other = target -> 1
    out = prediction_mi([1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [1.0, 2.0, 3.0])
    assert math.isnan(out["mi"])
    assert out["cmi_given_base"] == pytest.approx(1.0)


def test_prediction_mi_three_models_by_hand():
    # base B = [1, 2, 3], other O = [1, 1, 2], target T = [3, 1, 2]; the 6 ordered pairs:
    #   pair   V_B  V_O  V_T
    #   (0,1)  -1    0   +1
    #   (0,2)  -1   -1   +1
    #   (1,2)  -1   -1   -1
    #   (1,0)  +1    0   -1
    #   (2,0)  +1   +1   -1
    #   (2,1)  +1   +1   +1
    # joint (V_B rows -1, 0, +1; V_O columns -1, 0, +1):
    #   [[2, 1, 0],
    #    [0, 0, 0],
    #    [0, 1, 2]]
    # H(V_B) = H(1/2, 1/2) = 1; H(V_O) = H(1/3, 1/3, 1/3) = log2 3;
    # H(V_B, V_O) = 2 (1/3) log2 3 + 2 (1/6) log2 6 = log2 3 + 1/3
    # I = 1 + log2 3 - log2 3 - 1/3 = 2/3; mi = (2/3) / 1 = 2/3
    # given V_B = -1 (p 1/2): (V_O, V_T) = (0,+1), (-1,+1), (-1,-1)
    #   H(V_T) = H(2/3, 1/3) = log2 3 - 2/3; H(V_O) the same; H(V_O, V_T) = log2 3
    #   I = 2 (log2 3 - 2/3) - log2 3 = log2 3 - 4/3
    # given V_B = +1: (0,-1), (+1,-1), (+1,+1): the mirror image, same I and H
    # cmi = (log2 3 - 4/3) / (log2 3 - 2/3) = 0.251629 / 0.918296 = 0.274017
    out = prediction_mi([1.0, 1.0, 2.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0])
    assert out["mi"] == pytest.approx(2 / 3)
    expected = (LOG2_3 - 4 / 3) / (LOG2_3 - 2 / 3)
    assert expected == pytest.approx(0.274017, abs=1e-6)
    assert out["cmi_given_base"] == pytest.approx(expected)
    # the roles swapped: base A = [1, 1, 2] has V_A = 0, 0, -1, -1, +1, +1 -> H = log2 3, so
    # mi = (2/3) / log2 3. Given V_A = 0: pairs (0,1), (1,0): V_O = -1, +1 and V_T = +1, -1
    #   -> I = H(V_T) = 1; given V_A = -1: (0,2), (1,2): V_O = -1, -1 constant -> I = 0,
    #   H(V_T) = 1; V_A = +1 the same. cmi = (1/3 * 1) / (1/3 + 1/3 + 1/3) = 1/3
    out = prediction_mi([1.0, 2.0, 3.0], [1.0, 1.0, 2.0], [3.0, 1.0, 2.0])
    assert out["mi"] == pytest.approx((2 / 3) / LOG2_3)
    assert out["cmi_given_base"] == pytest.approx(1 / 3)


def test_prediction_mi_other_is_target():
    # other = target: I(V_T; V_T | V_B) = H(V_T | V_B) -> 1 whenever H(V_T | V_B) > 0.
    # base [1,2,3], target [3,1,2]: given V_B = -1 the V_T are +1, +1, -1 -> H > 0
    out = prediction_mi([3.0, 1.0, 2.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0])
    assert out["cmi_given_base"] == pytest.approx(1.0)
    # target = base: H(V_T | V_B) = 0 -> NaN
    assert math.isnan(prediction_mi([3.0, 1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])["cmi_given_base"])


def test_prediction_mi_with_counts():
    # row 0 all ones -> the unweighted values of the hand case (2/3, 0.274017)
    # row 1 (2, 0, 1): models 0 and 2 only, weight 2 per ordered pair:
    #   (0,2): V_B -1, V_O -1, V_T +1;  (2,0): +1, +1, -1
    #   V_O determines V_B: mi = 1; given V_B, V_T is constant: H = 0 -> cmi NaN
    # row 2 (3, 0, 0): no pair of distinct models -> both NaN
    counts = np.array([[1, 1, 1], [2, 0, 1], [3, 0, 0]])
    out = prediction_mi([1.0, 1.0, 2.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0], counts=counts)
    assert isinstance(out["mi"], np.ndarray) and out["mi"].shape == (3,)
    assert out["mi"][0] == pytest.approx(2 / 3)
    assert out["cmi_given_base"][0] == pytest.approx((LOG2_3 - 4 / 3) / (LOG2_3 - 2 / 3))
    assert out["mi"][1] == pytest.approx(1.0)
    assert math.isnan(out["cmi_given_base"][1])
    assert math.isnan(out["mi"][2]) and math.isnan(out["cmi_given_base"][2])


@st.composite
def mi_inputs(draw):
    n = draw(st.integers(2, 6))
    ints = st.integers(-2, 2)
    other = draw(st.lists(ints, min_size=n, max_size=n))
    base = draw(st.lists(ints, min_size=n, max_size=n))
    target = draw(st.lists(ints, min_size=n, max_size=n))
    counts = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    return [np.array(v, float) for v in (other, base, target)] + [np.array(counts)]


@settings(max_examples=50, deadline=None)
@given(mi_inputs())
def test_prop_prediction_mi_matches_pair_loop(data):
    other, base, target, counts = data
    out = prediction_mi(other, base, target)
    mi, cmi = _reference_prediction_mi(other, base, target)
    assert _same(out["mi"], mi) and _same(out["cmi_given_base"], cmi)
    weighted = prediction_mi(other, base, target, counts=np.stack([np.ones(len(base)), counts]))
    assert _same(weighted["mi"][0], out["mi"]) and _same(weighted["cmi_given_base"][0], out["cmi_given_base"])
    mi_w, cmi_w = _reference_prediction_mi(other, base, target, counts)
    assert _same(weighted["mi"][1], mi_w) and _same(weighted["cmi_given_base"][1], cmi_w)


@settings(max_examples=50, deadline=None)
@given(mi_inputs())
def test_prop_prediction_mi_orientation_invariant_and_bounded(data):
    other, base, target, _ = data
    out = prediction_mi(other, base, target)
    for flipped in (prediction_mi(-other, base, target), prediction_mi(other, -base, target),
                    prediction_mi(other ** 3 + other, base, target)):
        assert _same(flipped["mi"], out["mi"]) and _same(flipped["cmi_given_base"], out["cmi_given_base"])
    for v in out.values():
        assert math.isnan(v) or -1e-12 <= v <= 1 + 1e-12


# --------------------------------------------------------------------------- prediction_mi_table


def test_prediction_mi_table_by_hand():
    # m0..m2 usable for both measures (a = [1, 1, 2], b = [1, 2, 3], gap [3, 1, 2]);
    # m3 not converged (values that would change everything); m4 converged, a finite, b NaN
    table = pd.DataFrame(
        {
            "model": ["m0", "m1", "m2", "m3", "m4"],
            "is.converged": [True, True, True, False, True],
            "measure.a": [1.0, 1.0, 2.0, 50.0, 0.0],
            "measure.b": [1.0, 2.0, 3.0, -50.0, np.nan],
            "gen.acc_gap": [3.0, 1.0, 2.0, 50.0, 9.0],
        }
    )
    out = prediction_mi_table(table, ["a", "b"], "gen.acc_gap")
    assert list(out.columns) == ["base", "other", "n_used", "mi", "cmi_given_base"]
    assert list(zip(out["base"], out["other"])) == [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")]
    # (a, a): m0, m1, m2, m4 (m3 unconverged) -> 4; every pair needing b drops m4 -> 3
    assert out["n_used"].tolist() == [4, 3, 3, 3]
    # diagonal: identical non-constant measures -> mi = 1
    assert out.loc[0, "mi"] == pytest.approx(1.0) and out.loc[3, "mi"] == pytest.approx(1.0)
    # off-diagonal: the 3-model hand case of test_prediction_mi_three_models_by_hand
    #   base b, other a: mi = 2/3, cmi = (log2 3 - 4/3) / (log2 3 - 2/3)
    #   base a, other b: mi = (2/3) / log2 3, cmi = 1/3
    assert out.loc[2, "mi"] == pytest.approx(2 / 3)
    assert out.loc[2, "cmi_given_base"] == pytest.approx((LOG2_3 - 4 / 3) / (LOG2_3 - 2 / 3))
    assert out.loc[1, "mi"] == pytest.approx((2 / 3) / LOG2_3)
    assert out.loc[1, "cmi_given_base"] == pytest.approx(1 / 3)


def test_prediction_mi_table_names_missing_measure():
    table = pd.DataFrame({"is.converged": [True], "measure.a": [1.0], "gen.acc_gap": [0.1]})
    with pytest.raises(KeyError, match="measure.nope"):
        prediction_mi_table(table, ["a", "nope"], "gen.acc_gap")


# --------------------------------------------------------------------------- cmi_tables

# The cube of test_stats.py: full 2 x 2 x 2 grid, gap = 10 h3 + 2 h1 + h2, measure = h3.
# By hand there: Jiang's score for (h1, h2) = (10 H(1/4) + 6 I_s) / (16 H(1/4)) = 0.681650,
# 0 for every pair containing h3, so CMI = 0; careful (h1, h2) = 0.647873, (h3,) = 0.
H14 = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
I_S_TRUE = 0.5 * math.log2(0.5 / 0.5625) + 0.5 * math.log2(4 / 3)
CUBE_VALUES = {"hp.h1": [0, 1], "hp.h2": [0, 1], "hp.h3": [0, 1]}


def _cube_table() -> pd.DataFrame:
    hp = pd.DataFrame(list(itertools.product([0, 1], [0, 1], [0, 1])), columns=list(CUBE_VALUES))
    table = hp.assign(
        model=[f"c{k}" for k in range(8)],
        **{"is.converged": True, "gen.acc_gap": (10 * hp["hp.h3"] + 2 * hp["hp.h1"] + hp["hp.h2"]).astype(float),
           "measure.h3": hp["hp.h3"].astype(float)},
    )
    table["measure.perfect"] = table["gen.acc_gap"]
    # two extra rows that must not count: an unconverged model and one with a NaN measure,
    # both placed on existing cells with values that would change every score
    extra = pd.DataFrame(
        {"hp.h1": [0, 1], "hp.h2": [0, 1], "hp.h3": [1, 0], "model": ["bad1", "bad2"],
         "is.converged": [False, True], "gen.acc_gap": [-100.0, -100.0],
         "measure.h3": [100.0, np.nan], "measure.perfect": [100.0, np.nan]}
    )
    return pd.concat([table, extra], ignore_index=True)


def test_cmi_tables_by_hand():
    rows, scores = cmi_tables(_cube_table(), {"h3": 1, "perfect": 1}, ["gen.acc_gap"], CUBE_VALUES)
    assert list(rows.columns) == ["measure", "target", "n_used", "cmi_jiang", "jiang_min_pair",
                                  "jiang_empty_cells", "cmi_careful", "careful_min_set"]
    r = rows.set_index("measure").loc["h3"]
    # bad1 unconverged and bad2 NaN: 8 of the 10 rows used, full cube, no empty cell
    assert r["n_used"] == 8 and r["jiang_empty_cells"] == 0
    assert r["cmi_jiang"] == 0.0 and r["cmi_careful"] == 0.0
    # the first minimal score in iteration order: Jiang (h1, h2) 0.68, (h1, h3) 0 -> "hp.h1 & hp.h3";
    # careful: (), (h1,), (h2,) positive, (h3,) 0 -> "hp.h3"
    assert r["jiang_min_pair"] == "hp.h1 & hp.h3"
    assert r["careful_min_set"] == "hp.h3"
    s = scores[scores["measure"] == "h3"].set_index(["variant", "conditioning"])["score"]
    assert s[("jiang", "hp.h1 & hp.h2")] == pytest.approx((10 * H14 + 6 * I_S_TRUE) / (16 * H14))
    assert s[("jiang", "hp.h2 & hp.h1")] == pytest.approx(0.681650, abs=1e-6)
    assert s[("careful", "hp.h1 & hp.h2")] == pytest.approx((8 + 24 * H14 + 24 * I_S_TRUE) / (8 + 48 * H14))
    assert s[("careful", "hp.h3")] == 0.0
    # a perfect measure: I = H in every cell -> 1
    p = rows.set_index("measure").loc["perfect"]
    assert p["cmi_jiang"] == pytest.approx(1.0) and p["cmi_careful"] == pytest.approx(1.0)


def test_cmi_tables_equal_direct_calls_on_usable_rows():
    table = _cube_table()
    rng = np.random.default_rng(0)
    table["measure.noisy"] = rng.normal(size=len(table))
    table.loc[table["model"] == "bad2", "measure.noisy"] = np.nan
    rows, scores = cmi_tables(table, {"noisy": -1}, ["gen.acc_gap"], CUBE_VALUES, max_set_size=2)
    used = table.iloc[:8]  # the usable rows (bad1, bad2 excluded)
    oriented = -used["measure.noisy"].to_numpy()
    jiang = cmi_jiang(oriented, used["gen.acc_gap"].to_numpy(), used, CUBE_VALUES)
    careful = cmi_careful(oriented, used["gen.acc_gap"].to_numpy(), used, CUBE_VALUES, 2)
    assert rows.loc[0, "n_used"] == 8
    assert rows.loc[0, "cmi_jiang"] == jiang["cmi"]
    assert rows.loc[0, "cmi_careful"] == careful["cmi"]
    # the orientation is applied: the un-oriented measure gives a different Jiang score table
    plain = cmi_jiang(-oriented, used["gen.acc_gap"].to_numpy(), used, CUBE_VALUES)
    assert plain["scores"] != jiang["scores"]
    s = scores.set_index(["variant", "conditioning"])["score"]
    for (h1, h2), v in jiang["scores"].items():
        assert s[("jiang", f"{h1} & {h2}")] == v
    for subset, v in careful["scores"].items():
        assert s[("careful", " & ".join(subset) or "(none)")] == v


@pytest.mark.parametrize("max_set_size,n_careful", [(0, 1), (1, 4), (2, 7), (3, 8)])
def test_cmi_tables_scores_one_row_per_conditioning_set(max_set_size, n_careful):
    # 3 axes: Jiang uses the 3 * 2 = 6 ordered pairs of distinct axes;
    # careful uses all subsets of size <= k: sum_{j <= k} C(3, j) = 1, 4, 7, 8
    _, scores = cmi_tables(_cube_table(), {"h3": 1}, ["gen.acc_gap"], CUBE_VALUES, max_set_size)
    assert list(scores.columns) == ["measure", "target", "variant", "conditioning", "score"]
    jiang = scores[scores["variant"] == "jiang"]["conditioning"].tolist()
    careful = scores[scores["variant"] == "careful"]["conditioning"].tolist()
    assert sorted(jiang) == sorted(f"{a} & {b}" for a, b in itertools.permutations(CUBE_VALUES, 2))
    assert len(careful) == n_careful and len(set(careful)) == n_careful
    assert careful[0] == "(none)"
    if max_set_size >= 1:
        assert careful[1:4] == ["hp.h1", "hp.h2", "hp.h3"]


def test_cmi_tables_several_targets_and_measures():
    table = _cube_table()
    table["gen.loss_gap"] = -table["gen.acc_gap"]
    rows, scores = cmi_tables(table, {"h3": 1, "perfect": 1}, ["gen.acc_gap", "gen.loss_gap"], CUBE_VALUES, 1)
    assert list(zip(rows["measure"], rows["target"])) == [
        ("h3", "gen.acc_gap"), ("h3", "gen.loss_gap"), ("perfect", "gen.acc_gap"), ("perfect", "gen.loss_gap")
    ]
    # per pair: 6 Jiang + 4 careful rows
    assert len(scores) == 4 * (6 + 4)


# --------------------------------------------------------------------------- tolerance_sensitivity


def _tolerance_inputs():
    # as in test_stats.py: three converged models with gaps 1 < 2 < 3 on one axis
    table = pd.DataFrame(
        {
            "model": ["a", "b", "c"],
            "hp.width": [1, 2, 3],
            "gen.acc_gap": [1.0, 2.0, 3.0],
            "is.converged": [True, True, True],
        }
    )
    by_tolerance = pd.DataFrame(
        {
            "model": ["a", "b", "c"] * 3,
            "rel_tol": [0.1] * 3 + [0.5] * 3 + [1.0] * 3,
            "prunability": [0.2, 0.5, 0.9, 0.2, 0.9, 0.5, 0.9, 0.5, 0.2],
        }
    )
    return table, by_tolerance


def test_tolerance_sensitivity_without_counts_has_no_interval_columns():
    table, by_tolerance = _tolerance_inputs()
    out = tolerance_sensitivity(table, by_tolerance, ["gen.acc_gap"], ["hp.width"])
    assert not {"tau_a_low", "tau_a_high", "Psi_low", "Psi_high"} & set(out.columns)


def test_tolerance_sensitivity_with_counts_by_hand():
    # resamples over (a, b, c): (1,1,1), (2,1,0), (0,0,3)
    # rel_tol 0.1, prunability (0.2, 0.5, 0.9) ordered like the gap: tau 1, 1, NaN -> (1, 1)
    # rel_tol 1.0, (0.9, 0.5, 0.2): -1, -1, NaN -> (-1, -1)
    # rel_tol 0.5, (0.2, 0.9, 0.5): (a,b) c, (a,c) c, (b,c) d
    #   (1,1,1): (1 + 1 - 1) / 3 = 1/3; (2,1,0): only (a,b), c -> 1; (0,0,3): NaN
    #   level 0.5 over [1/3, 1]: quantiles 0.25, 0.75 -> 1/3 + (2/3)(1/4) = 1/2,
    #   1/3 + (2/3)(3/4) = 5/6
    # one axis with distinct values: one group of all models, so Psi = tau in every resample
    table, by_tolerance = _tolerance_inputs()
    counts = np.array([[1, 1, 1], [2, 1, 0], [0, 0, 3]])
    out = tolerance_sensitivity(table, by_tolerance, ["gen.acc_gap"], ["hp.width"], counts=counts, level=0.5)
    out = out.set_index("rel_tol")
    cols = ["tau_a_low", "tau_a_high", "Psi_low", "Psi_high"]
    assert out.loc[0.1, cols].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert out.loc[1.0, cols].tolist() == [-1.0, -1.0, -1.0, -1.0]
    assert out.loc[0.5, cols].tolist() == pytest.approx([0.5, 5 / 6, 0.5, 5 / 6])
    # the point estimates are unchanged by the bootstrap
    assert out.loc[0.5, "tau_a"] == pytest.approx(1 / 3)
    assert list(out["measure"]) == ["prunability@rel_tol=0.1", "prunability@rel_tol=0.5", "prunability@rel_tol=1"]


def test_tolerance_sensitivity_level_changes_interval():
    # same as above at level 1.0: (min, max) = (1/3, 1) at rel_tol 0.5
    table, by_tolerance = _tolerance_inputs()
    counts = np.array([[1, 1, 1], [2, 1, 0], [0, 0, 3]])
    out = tolerance_sensitivity(table, by_tolerance, ["gen.acc_gap"], ["hp.width"], counts=counts, level=1.0)
    r = out.set_index("rel_tol").loc[0.5]
    assert (r["tau_a_low"], r["tau_a_high"]) == (pytest.approx(1 / 3), pytest.approx(1.0))


def test_duplicate_cells_counts_extra_converged_rows_only():
    # cells (1, a) x3 [two converged copies -> 1 extra; the unconverged one is not counted],
    # (2, b) x2 [both converged -> 1 extra], (3, c) x1 -> 2 extra converged rows
    table = pd.DataFrame(
        {
            "hp.width": [1, 1, 1, 2, 2, 3],
            "hp.depth": ["a", "a", "a", "b", "b", "c"],
            "is.converged": [True, True, False, True, True, True],
        }
    )
    assert stats.duplicate_cells(table, ["hp.width", "hp.depth"]) == 2
    # on one axis only, (1), (2), (3) repeat the same way
    assert stats.duplicate_cells(table, ["hp.width"]) == 2
    assert stats.duplicate_cells(table.iloc[[0, 3, 5]], ["hp.width", "hp.depth"]) == 0
