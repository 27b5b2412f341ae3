"""Tests for prunability.analysis.ranking and the row filter of analysis.rows: every
statistic against a value computed by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prunability.analysis.ranking import (
    _TAU_BLOCK,
    GRANULATED_COLUMNS,
    SUMMARY_COLUMNS,
    granulated_kendall,
    kendall_tau_a,
    kendall_tau_b,
    summary_tables,
    tolerance_sensitivity,
)
from prunability.analysis.rows import usable

# ---------------------------------------------------------------------- kendall_tau_a


def test_tau_a_one_discordant_pair():
    # pairs (0,1): x up, y up -> concordant; (0,2): up, up -> c; (1,2): x up, y 3->2 down -> d
    # tau = (n_c - n_d) / C(3,2) = (2 - 1) / 3 = 1/3
    assert kendall_tau_a([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


def test_tau_a_with_ties_is_not_corrected():
    # x=[1,1,2], y=[1,2,3]: (0,1) tied in x -> 0; (0,2) c; (1,2) c
    # sum_{i != j} = 2 * (1 + 1) = 4; tau = 4 / (3 * 2) = 2/3  (tau_b would be 2/sqrt(2*3))
    assert kendall_tau_a([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 3)


def test_tau_a_all_ties_is_zero():
    # every pair tied in x -> every term sign(0) * ... = 0
    assert kendall_tau_a([5, 5, 5, 5], [1, 2, 3, 4]) == 0.0
    assert kendall_tau_a([1, 2, 3], [7, 7, 7]) == 0.0


def test_tau_a_perfect_orders():
    assert kendall_tau_a([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau_a([1, 2, 3, 4], [40, 30, 20, 10]) == -1.0


def test_tau_a_mixed_example():
    # x=[1,1,2,3,4], y=[3,1,2,2,5] (pairs listed in test_tau_b_closed_form): n_c=6, n_d=2
    # tau_a = (6 - 2) / C(5,2) = 4/10
    assert kendall_tau_a([1, 1, 2, 3, 4], [3, 1, 2, 2, 5]) == pytest.approx(0.4)


@pytest.mark.parametrize("x,y", [([], []), ([1.0], [2.0])])
def test_tau_a_nan_below_two(x, y):
    assert math.isnan(kendall_tau_a(x, y))


def test_tau_a_length_mismatch():
    with pytest.raises(ValueError):
        kendall_tau_a([1, 2, 3], [1, 2])


def test_tau_a_blocked_matches_pair_loop():
    # n larger than the block size exercises the blocked sum; compare with the
    # definition written as an explicit loop over pairs (ties included).
    rng = np.random.default_rng(0)
    n = _TAU_BLOCK + 37
    x = rng.integers(0, 20, n).astype(float)
    y = rng.integers(0, 20, n).astype(float)
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    expected = (sx * sy).sum() / (n * (n - 1))
    assert kendall_tau_a(x, y) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------- kendall_tau_b


def test_tau_b_closed_form():
    # x=[1,1,2,3,4], y=[3,1,2,2,5]
    # (0,1) tied x; (0,2) x up y down d; (0,3) up/down d; (0,4) up/up c;
    # (1,2) c; (1,3) c; (1,4) c; (2,3) tied y; (2,4) c; (3,4) c
    # n_c=6, n_d=2, n0=10, n1=1 (x: one tied pair), n2=1 (y: one tied pair)
    # tau_b = (6-2) / sqrt((10-1)(10-1)) = 4/9
    assert kendall_tau_b([1, 1, 2, 3, 4], [3, 1, 2, 2, 5]) == pytest.approx(4 / 9)


def test_tau_b_equals_tau_a_without_ties():
    x, y = [1, 2, 3], [1, 3, 2]
    # no ties: n1 = n2 = 0, so tau_b = (n_c - n_d) / n0 = 1/3 = tau_a
    assert kendall_tau_b(x, y) == pytest.approx(1 / 3)
    assert kendall_tau_b(x, y) == pytest.approx(kendall_tau_a(x, y))


def test_tau_b_nan_cases():
    assert math.isnan(kendall_tau_b([1.0], [2.0]))
    assert math.isnan(kendall_tau_b([], []))
    # constant x: n0 - n1 = 0, scipy returns nan
    assert math.isnan(kendall_tau_b([2, 2, 2], [1, 2, 3]))


# --------------------------------------------------------------------------- usable


def test_usable_counts():
    table = pd.DataFrame(
        {
            "is.converged": [True, False, True, True, False],
            "measure.m": [1.0, 2.0, np.nan, 4.0, np.nan],
            "gen.acc_gap": [0.1, 0.2, 0.3, np.inf, 0.5],
        }
    )
    mask, counts = usable(table, "measure.m", "gen.acc_gap")
    # row 0 used; row 1 unconverged; row 2 NaN measure; row 3 inf target;
    # row 4 unconverged AND NaN -> counted as unconverged only
    assert mask.tolist() == [True, False, False, False, False]
    assert counts == {"n_used": 1, "excluded_unconverged": 2, "excluded_nonfinite": 2}


def test_usable_one_unconverged_one_nan():
    table = pd.DataFrame(
        {
            "is.converged": [True, True, False, True],
            "measure.m": [0.5, np.nan, 0.7, 0.9],
            "gen.acc_gap": [0.1, 0.2, 0.3, 0.4],
        }
    )
    mask, counts = usable(table, "measure.m", "gen.acc_gap")
    assert mask.tolist() == [True, False, False, True]
    assert counts == {"n_used": 2, "excluded_unconverged": 1, "excluded_nonfinite": 1}


def test_usable_nullable_columns():
    # pandas NA in a nullable boolean / float column: NA converged -> unconverged, NA value -> non-finite
    table = pd.DataFrame(
        {
            "is.converged": pd.array([True, pd.NA, True], dtype="boolean"),
            "measure.m": pd.array([1.0, 2.0, pd.NA], dtype="Float64"),
            "gen.acc_gap": [0.1, 0.2, 0.3],
        }
    )
    mask, counts = usable(table, "measure.m", "gen.acc_gap")
    assert mask.tolist() == [True, False, False]
    assert counts == {"n_used": 1, "excluded_unconverged": 1, "excluded_nonfinite": 1}


# ---------------------------------------------------------------- granulated_kendall


def grid_2x3_missing_cell() -> pd.DataFrame:
    # depth in {1,2} x width in {1,2,4}; cell (depth=2, width=4) missing
    return pd.DataFrame(
        {
            "model": ["m1", "m2", "m3", "m4", "m5"],
            "hp.depth": [1, 1, 1, 2, 2],
            "hp.width": [1, 2, 4, 1, 2],
            "measure.m": [0.1, 0.2, 0.3, 0.5, 0.4],
            "gen.acc_gap": [0.30, 0.20, 0.25, 0.40, 0.50],
        }
    )


def test_granulated_by_hand():
    # axis depth (groups = fixed width):
    #   width=1 {m1,m4}: measure 0.1->0.5 up, target 0.30->0.40 up -> tau = +1
    #   width=2 {m2,m5}: measure 0.2->0.4 up, target 0.20->0.50 up -> tau = +1
    #   width=4 {m3}: one model -> skipped
    #   psi_depth = (1 + 1) / 2 = 1; used 2, skipped 1
    # axis width (groups = fixed depth):
    #   depth=1 {m1,m2,m3}: measures 0.1,0.2,0.3; targets 0.30,0.20,0.25
    #     (m1,m2) d, (m1,m3) d, (m2,m3) c -> tau = (1 - 2)/3 = -1/3
    #   depth=2 {m4,m5}: measure 0.5->0.4 down, target 0.40->0.50 up -> tau = -1
    #   psi_width = (-1/3 - 1)/2 = -2/3; used 2, skipped 0
    # Psi = (1 - 2/3) / 2 = 1/6
    out = granulated_kendall(grid_2x3_missing_cell(), "measure.m", "gen.acc_gap", ["hp.depth", "hp.width"])
    assert out["psi"]["hp.depth"] == pytest.approx(1.0)
    assert out["psi"]["hp.width"] == pytest.approx(-2 / 3)
    assert out["Psi"] == pytest.approx(1 / 6)
    assert out["groups_used"] == {"hp.depth": 2, "hp.width": 2}
    assert out["groups_skipped"] == {"hp.depth": 1, "hp.width": 0}


def test_granulated_orientation_flips_sign():
    # orientation -1 negates the measure, so every group's tau changes sign:
    # psi_depth = -1, psi_width = +2/3, Psi = -1/6
    out = granulated_kendall(
        grid_2x3_missing_cell(), "measure.m", "gen.acc_gap", ["hp.depth", "hp.width"], orientation=-1
    )
    assert out["psi"]["hp.depth"] == pytest.approx(-1.0)
    assert out["psi"]["hp.width"] == pytest.approx(2 / 3)
    assert out["Psi"] == pytest.approx(-1 / 6)


def test_granulated_ignores_index_labels():
    # a filtered table keeps its original (non-contiguous) index; groups must still be right
    table = grid_2x3_missing_cell()
    table.index = [10, 3, 7, 0, 42]
    out = granulated_kendall(table, "measure.m", "gen.acc_gap", ["hp.depth", "hp.width"])
    assert out["Psi"] == pytest.approx(1 / 6)


def test_granulated_single_axis_is_tau_a():
    # one axis: the only group is the whole table, psi = Psi = tau_a over all five rows
    # measures 0.1,0.2,0.3,0.5,0.4 / targets 0.30,0.20,0.25,0.40,0.50:
    # pairs (1,2)d (1,3)d (1,4)c (1,5)c (2,3)c (2,4)c (2,5)c (3,4)c (3,5)c (4,5)d
    # n_c = 7, n_d = 3 -> tau = 4/10
    out = granulated_kendall(grid_2x3_missing_cell(), "measure.m", "gen.acc_gap", ["hp.depth"])
    assert out["psi"] == {"hp.depth": pytest.approx(0.4)}
    assert out["Psi"] == pytest.approx(0.4)
    assert out["groups_used"] == {"hp.depth": 1}
    assert out["groups_skipped"] == {"hp.depth": 0}


def test_granulated_axis_with_no_usable_group_is_left_out_of_Psi():
    # only m1 and m4 (width=1, depth 1 and 2):
    #   depth: group width=1 {m1,m4} tau = +1 -> psi_depth = 1
    #   width: groups depth=1 {m1}, depth=2 {m4} both skipped -> psi_width = NaN
    # Psi = mean over finite psi = 1
    table = grid_2x3_missing_cell().iloc[[0, 3]]
    out = granulated_kendall(table, "measure.m", "gen.acc_gap", ["hp.depth", "hp.width"])
    assert out["psi"]["hp.depth"] == pytest.approx(1.0)
    assert math.isnan(out["psi"]["hp.width"])
    assert out["Psi"] == pytest.approx(1.0)
    assert out["groups_used"] == {"hp.depth": 1, "hp.width": 0}
    assert out["groups_skipped"] == {"hp.depth": 0, "hp.width": 2}


def test_granulated_empty_axes():
    out = granulated_kendall(grid_2x3_missing_cell(), "measure.m", "gen.acc_gap", [])
    assert out["psi"] == {}
    assert math.isnan(out["Psi"])


def test_granulated_rejects_unfiltered_rows_and_bad_orientation():
    table = grid_2x3_missing_cell()
    table.loc[0, "measure.m"] = np.nan
    with pytest.raises(ValueError, match="usable"):
        granulated_kendall(table, "measure.m", "gen.acc_gap", ["hp.depth"])
    with pytest.raises(ValueError):
        granulated_kendall(grid_2x3_missing_cell(), "measure.m", "gen.acc_gap", ["hp.depth"], orientation=2)


# ------------------------------------------------------------------- summary_tables


def three_models() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["a", "b", "c"],
            "hp.depth": [1, 2, 1],
            "hp.width": [1, 1, 2],
            "is.converged": [True, True, True],
            "measure.prunability": [0.2, 0.1, 0.4],
            "measure.other": [5.0, 3.0, np.nan],
            "gen.acc_gap": [0.10, 0.20, 0.05],
            "gen.loss_gap": [0.3, 0.1, 0.2],
        }
    )


def test_summary_tables_by_hand():
    summary, gran = summary_tables(
        three_models(),
        {"prunability": +1, "other": -1},
        ["gen.acc_gap", "gen.loss_gap"],
        ["hp.depth", "hp.width"],
    )
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(gran.columns) == GRANULATED_COLUMNS
    s = summary.set_index(["measure", "target"])
    g = gran.set_index(["measure", "target", "axis"])

    # prunability (+1) vs acc_gap: measure a .2, b .1, c .4; target a .10, b .20, c .05
    #   (a,b) m down t up d; (a,c) m up t down d; (b,c) m up t down d -> tau_a = tau_b = -1
    #   depth: width=1 {a,b} d -> -1; width=2 {c} skipped.  width: depth=1 {a,c} d -> -1; {b} skipped
    #   Psi = -1
    r = s.loc[("prunability", "gen.acc_gap")]
    assert r["orientation"] == 1
    assert (r["n_used"], r["excluded_unconverged"], r["excluded_nonfinite"]) == (3, 0, 0)
    assert r["tau_a"] == pytest.approx(-1.0)
    assert r["tau_b"] == pytest.approx(-1.0)
    assert r["Psi"] == pytest.approx(-1.0)
    assert g.loc[("prunability", "gen.acc_gap", "hp.depth"), "groups_skipped"] == 1

    # prunability (+1) vs loss_gap: target a .3, b .1, c .2
    #   (a,b) m down t down c; (a,c) m up t down d; (b,c) m up t up c -> tau_a = tau_b = 1/3
    #   depth: {a,b} c -> +1; width: {a,c} d -> -1; Psi = 0
    r = s.loc[("prunability", "gen.loss_gap")]
    assert r["tau_a"] == pytest.approx(1 / 3)
    assert r["tau_b"] == pytest.approx(1 / 3)
    assert r["Psi"] == pytest.approx(0.0, abs=1e-12)
    assert g.loc[("prunability", "gen.loss_gap", "hp.depth"), "psi"] == pytest.approx(1.0)
    assert g.loc[("prunability", "gen.loss_gap", "hp.width"), "psi"] == pytest.approx(-1.0)
    assert g.loc[("prunability", "gen.loss_gap", "hp.width"), "groups_used"] == 1
    assert g.loc[("prunability", "gen.loss_gap", "hp.width"), "groups_skipped"] == 1

    # other (-1): c is NaN -> used rows a, b; oriented a -5, b -3
    #   acc_gap: oriented up, target .10 -> .20 up -> c -> tau = +1
    #   depth: width=1 {a,b} -> +1 (used 1, skipped 0: no width=2 row remains)
    #   width: depth=1 {a}, depth=2 {b} both skipped -> psi NaN; Psi = 1
    r = s.loc[("other", "gen.acc_gap")]
    assert r["orientation"] == -1
    assert (r["n_used"], r["excluded_unconverged"], r["excluded_nonfinite"]) == (2, 0, 1)
    assert r["tau_a"] == pytest.approx(1.0)
    assert r["tau_b"] == pytest.approx(1.0)
    assert r["Psi"] == pytest.approx(1.0)
    w = g.loc[("other", "gen.acc_gap", "hp.width")]
    assert math.isnan(w["psi"])
    assert (w["groups_used"], w["groups_skipped"]) == (0, 2)
    d = g.loc[("other", "gen.acc_gap", "hp.depth")]
    assert (d["psi"], d["groups_used"], d["groups_skipped"]) == (pytest.approx(1.0), 1, 0)

    #   loss_gap: oriented up, target .3 -> .1 down -> d -> tau = -1, Psi = -1
    r = s.loc[("other", "gen.loss_gap")]
    assert r["tau_a"] == pytest.approx(-1.0)
    assert r["tau_b"] == pytest.approx(-1.0)
    assert r["Psi"] == pytest.approx(-1.0)

    assert len(summary) == 4  # 2 measures x 2 targets
    assert len(gran) == 8  # x 2 axes


def test_summary_tables_tied_target_tau_a_vs_tau_b():
    # target with a tie: a .3, b .3, c .1; prunability a .2, b .1, c .4 (orientation +1)
    #   (a,b) tied in target -> 0; (a,c) m up t down d; (b,c) m up t down d
    #   tau_a = (0 - 2) / 3 = -2/3
    #   tau_b = (0 - 2) / sqrt((3 - 0)(3 - 1)) = -2/sqrt(6)
    #   depth: width=1 {a,b} tied -> tau 0; width: depth=1 {a,c} d -> -1; Psi = -1/2
    table = three_models().assign(**{"gen.test_error": [0.3, 0.3, 0.1]})
    summary, gran = summary_tables(table, {"prunability": 1}, ["gen.test_error"], ["hp.depth", "hp.width"])
    r = summary.iloc[0]
    assert r["tau_a"] == pytest.approx(-2 / 3)
    assert r["tau_b"] == pytest.approx(-2 / math.sqrt(6))
    assert r["Psi"] == pytest.approx(-0.5)
    assert gran["psi"].tolist() == [pytest.approx(0.0), pytest.approx(-1.0)]


def test_summary_tables_excludes_unconverged():
    # add an unconverged model d that would otherwise reverse everything
    table = pd.concat(
        [
            three_models(),
            pd.DataFrame(
                {
                    "model": ["d"],
                    "hp.depth": [2],
                    "hp.width": [2],
                    "is.converged": [False],
                    "measure.prunability": [100.0],
                    "measure.other": [1.0],
                    "gen.acc_gap": [-100.0],
                    "gen.loss_gap": [0.0],
                }
            ),
        ],
        ignore_index=True,
    )
    summary, _ = summary_tables(table, {"prunability": 1}, ["gen.acc_gap"], ["hp.depth", "hp.width"])
    r = summary.iloc[0]
    assert (r["n_used"], r["excluded_unconverged"], r["excluded_nonfinite"]) == (3, 1, 0)
    # same as the three-model table by hand: tau_a = -1, Psi = -1
    assert r["tau_a"] == pytest.approx(-1.0)
    assert r["Psi"] == pytest.approx(-1.0)


def test_summary_tables_missing_measure_named():
    with pytest.raises(KeyError, match="nonexistent"):
        summary_tables(three_models(), {"prunability": 1, "nonexistent": 1}, ["gen.acc_gap"], ["hp.depth"])


# ------------------------------------------------------------------ property tests

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def paired_lists(draw, elements=finite, min_size=0, max_size=25):
    n = draw(st.integers(min_size, max_size))
    x = draw(st.lists(elements, min_size=n, max_size=n))
    y = draw(st.lists(elements, min_size=n, max_size=n))
    return np.array(x, dtype=float), np.array(y, dtype=float)


@settings(max_examples=150, deadline=None)
@given(paired_lists(min_size=2))
def test_prop_tau_a_bounded(xy):
    x, y = xy
    assert -1.0 <= kendall_tau_a(x, y) <= 1.0


@settings(max_examples=150, deadline=None)
@given(paired_lists(elements=st.integers(-3, 3), min_size=2))
def test_prop_tau_a_bounded_heavy_ties(xy):
    # small integer range: many ties, tau shrinks towards 0 but stays in [-1, 1]
    x, y = xy
    t = kendall_tau_a(x, y)
    assert -1.0 <= t <= 1.0
    # and at most |n_c - n_d| <= C(n,2) - (pairs tied in x)
    n = len(x)
    _, cnt = np.unique(x, return_counts=True)
    tied_x = int((cnt * (cnt - 1) // 2).sum())
    assert abs(t) <= (n * (n - 1) / 2 - tied_x) / (n * (n - 1) / 2) + 1e-12


@settings(max_examples=150, deadline=None)
@given(paired_lists(min_size=2))
def test_prop_tau_a_symmetric(xy):
    x, y = xy
    assert kendall_tau_a(x, y) == kendall_tau_a(y, x)


@settings(max_examples=150, deadline=None)
@given(paired_lists(min_size=2))
def test_prop_tau_a_antisymmetric_under_negation(xy):
    x, y = xy
    assert kendall_tau_a(-x, y) == -kendall_tau_a(x, y)


@settings(max_examples=150, deadline=None)
@given(paired_lists(elements=st.integers(-50, 50), min_size=2))
def test_prop_tau_a_invariant_under_increasing_transform(xy):
    # f(v) = v**3 + 2 v + 7 is strictly increasing and exact in float64 on |v| <= 50,
    # so it keeps every order and every tie
    x, y = xy
    fx = x**3 + 2 * x + 7
    assert kendall_tau_a(fx, y) == kendall_tau_a(x, y)
    assert kendall_tau_a(x, np.exp(y / 10)) == kendall_tau_a(x, y)


@st.composite
def untied_pairs(draw):
    x = draw(st.lists(st.integers(-1000, 1000), min_size=2, max_size=25, unique=True))
    y = draw(st.permutations(list(range(len(x)))))
    return np.array(x, dtype=float), np.array(y, dtype=float)


@settings(max_examples=150, deadline=None)
@given(untied_pairs())
def test_prop_tau_a_equals_tau_b_without_ties(xy):
    x, y = xy
    assert kendall_tau_a(x, y) == pytest.approx(kendall_tau_b(x, y), abs=1e-12)


# --------------------------------------------------------------------------- tolerance_sensitivity


def test_tolerance_sensitivity_by_hand():
    # Three converged models with gaps 1 < 2 < 3 on one axis. At rel_tol 0.1 prunability
    # (0.2, 0.5, 0.9) is ordered like the gap: all 3 pairs concordant, tau = 1; at rel_tol
    # 1.0 it is (0.9, 0.5, 0.2): all discordant, tau = -1. One axis whose 3 values all
    # differ: one group of 3, so Psi = psi = tau.
    table, _ = _tolerance_inputs()
    by_tolerance = pd.DataFrame(
        {
            "model": ["a", "b", "c", "c", "b", "a"],
            "rel_tol": [0.1, 0.1, 0.1, 1.0, 1.0, 1.0],
            "prunability": [0.2, 0.5, 0.9, 0.2, 0.5, 0.9],
        }
    )
    out = tolerance_sensitivity(table, by_tolerance, ["gen.acc_gap"], ["hp.width"]).set_index("rel_tol")
    assert out.loc[0.1, "tau_a"] == 1.0 and out.loc[1.0, "tau_a"] == -1.0
    assert out.loc[0.1, "Psi"] == 1.0 and out.loc[1.0, "Psi"] == -1.0
    assert list(out["measure"]) == ["prunability@rel_tol=0.1", "prunability@rel_tol=1"]
    assert (out["n_used"] == 3).all() and (out["orientation"] == 1).all()


def _tolerance_inputs():
    # as in test_tolerance_sensitivity_by_hand: three converged models with gaps 1 < 2 < 3 on one axis
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
