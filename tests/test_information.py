"""Tests for prunability.analysis.information: mutual information between predictions
and conditional mutual information.

Every statistic is checked against a value worked out by hand in a comment, plus
property tests against explicit pair-by-pair reference loops written here.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prunability.analysis.information import (
    cmi_careful,
    cmi_jiang,
    cmi_tables,
    prediction_mi,
    prediction_mi_table,
    weighted_pair_counts,
)

LOG2_3 = math.log2(3)


# --------------------------------------------------------------------------- reference helpers


def _sign(v: float) -> int:
    v = float(v)
    return int(v > 0) - int(v < 0)


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


# --------------------------------------------------------------------------- conditional mutual information
#
# Hand example: a full 2 x 2 x 2 grid over axes h1, h2, h3 (8 models), gap = 10 h3 + 2 h1 + h2
# (all distinct), measure mu = h3 (ties between models with equal h3).
# Conditioning on (h1, h2): each of the 16 cells (h1_i, h1_j, h2_i, h2_j) holds the 4 ordered
# pairs that differ in (h3_i, h3_j); b = [h3_i > h3_j] is true only for (1, 0).
# - 4 "diagonal" cells (same h1, h2 for i and j): a is true only for (1, 0) too (the pairs
#   (0, 0), (1, 1) are i = j): a = b, I = H(1/4) = 0.811278 bits.
# - 12 off-diagonal cells: a = [s or h3 differs in i's favour] with s = [2 h1_i + h2_i >
#   2 h1_j + h2_j]: for the 6 cells with s false a = b again (I = H = 0.811278); for the 6
#   with s true a = (T, T, T, F) on (0,0), (1,1), (1,0), (0,1) against b = (F, F, T, F):
#   counts (T,F) 2, (T,T) 1, (F,F) 1: I = 1/2 log2((1/2)/(9/16)) + 1/4 log2(4/3) * 2
#   = 0.122556, H(a) = H(3/4) = 0.811278.
# Jiang: score(h1, h2) = mean I / mean H = (10 * 0.811278 + 6 * 0.122556) / (16 * 0.811278)
#   = 0.681650. Conditioning on h3 fixes b in every cell: I = 0, so CMI = min = 0.
# Careful variant, S = {h1, h2}: no i = j pairs, so a diagonal cell holds (1, 0) and (0, 1)
#   only, with a = b: I = H = 1 bit, weight 2; off-diagonal cells weigh 4 (56 pairs):
#   (4*2*1 + 6*4*0.811278 + 6*4*0.122556) / (4*2*1 + 12*4*0.811278) = 0.647873.

H14 = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
I_S_TRUE = 0.5 * math.log2(0.5 / 0.5625) + 0.5 * math.log2(4 / 3)


def _cube():
    hp = pd.DataFrame(list(itertools.product([0, 1], [0, 1], [0, 1])), columns=["h1", "h2", "h3"])
    gap = (10 * hp["h3"] + 2 * hp["h1"] + hp["h2"]).to_numpy(float)
    return hp, gap, {"h1": [0, 1], "h2": [0, 1], "h3": [0, 1]}


def test_cmi_jiang_by_hand():
    hp, gap, values = _cube()
    out = cmi_jiang(hp["h3"].to_numpy(float), gap, hp, values)
    expected = (10 * H14 + 6 * I_S_TRUE) / (16 * H14)
    assert expected == pytest.approx(0.681650, abs=1e-6)
    assert out["scores"][("h1", "h2")] == pytest.approx(expected)
    assert out["scores"][("h2", "h1")] == pytest.approx(expected)  # ordered pairs, same table
    for pair in [("h1", "h3"), ("h3", "h1"), ("h2", "h3"), ("h3", "h2")]:
        assert out["scores"][pair] == 0.0
    assert out["cmi"] == 0.0 and len(out["scores"]) == 6
    assert all(v == 0 for v in out["empty_cells"].values())


def test_cmi_careful_by_hand():
    hp, gap, values = _cube()
    out = cmi_careful(hp["h3"].to_numpy(float), gap, hp, values)
    expected = (8 + 24 * H14 + 24 * I_S_TRUE) / (8 + 48 * H14)
    assert expected == pytest.approx(0.647873, abs=1e-6)
    assert out["scores"][("h1", "h2")] == pytest.approx(expected)
    assert out["scores"][("h3",)] == 0.0 and out["cmi"] == 0.0
    assert set(out["scores"]) == {(), ("h1",), ("h2",), ("h3",), ("h1", "h2"), ("h1", "h3"), ("h2", "h3")}


def _pgdl_reference(measure, gap, hp, values):
    """A literal, loop-by-loop rendering of the PGDL scoring code's algorithm (string
    keys, the 1e-12 in the entropy), as an independent check of the vectorised one."""

    def entropy(p):
        p = np.asarray(p, float) / np.sum(p)
        return -np.sum(p * np.log2(p + 1e-12))

    def mi(t):
        total, a0, a1 = t.sum(), t.sum(axis=1), t.sum(axis=0)
        out = 0.0
        for x in range(2):
            for y in range(2):
                joint = t[x, y] / total
                if joint > 0:
                    out += joint * np.log2(joint / ((a0[x] / total) * (a1[y] / total)))
        return out, entropy(a0)

    best = np.inf
    names = list(values)
    for h1 in names:
        for h2 in names:
            if h1 == h2:
                continue
            keys = [f"{v}|{w}|{x}|{y}" for v in values[h1] for w in values[h1] for x in values[h2] for y in values[h2]]
            table = {k: np.zeros((2, 2)) for k in keys}
            for i in range(len(gap)):
                for j in range(len(gap)):
                    key = f"{hp[h1].iloc[i]}|{hp[h1].iloc[j]}|{hp[h2].iloc[i]}|{hp[h2].iloc[j]}"
                    table[key][0 if gap[i] > gap[j] else 1, 0 if measure[i] > measure[j] else 1] += 1
            pairs = [mi(t) for t in table.values()]
            best = min(best, np.mean([p[0] for p in pairs]) / np.mean([p[1] for p in pairs]))
    return best


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), k=st.integers(2, 3))
def test_cmi_jiang_matches_a_literal_rendering(seed, k):
    # full grid of 2 x k x 2 models with random gaps and measures (ties possible in the measure)
    rng = np.random.default_rng(seed)
    values = {"a": [0, 1], "b": list(range(k)), "c": ["x", "y"]}
    hp = pd.DataFrame(list(itertools.product(*values.values())), columns=list(values))
    gap = rng.normal(size=len(hp))
    measure = rng.integers(0, 4, size=len(hp)).astype(float)
    assert cmi_jiang(measure, gap, hp, values)["cmi"] == pytest.approx(_pgdl_reference(measure, gap, hp, values), abs=1e-9)


@pytest.mark.parametrize("cmi", [cmi_jiang, cmi_careful])
def test_cmi_of_a_perfect_and_a_constant_measure(cmi):
    # mu = gap (distinct): a = b in every pair, I = H in every cell: 1. A constant measure: b is
    # always false, I = 0: 0.
    hp, gap, values = _cube()
    assert cmi(gap, gap, hp, values)["cmi"] == pytest.approx(1.0)
    assert cmi(np.zeros_like(gap), gap, hp, values)["cmi"] == 0.0


def test_cmi_partial_grid_skips_empty_cells_and_unknown_values_raise():
    hp, gap, values = _cube()
    keep = ~((hp["h1"] == 1) & (hp["h2"] == 1))  # drop two models: cells with (1, 1) go empty
    out = cmi_jiang(gap[keep], gap[keep], hp[keep].reset_index(drop=True), values)
    assert out["empty_cells"][("h1", "h2")] == 16 - 9  # 3 (h1, h2) combinations left: 3 x 3 cells
    assert out["cmi"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="h1"):
        cmi_jiang(gap, gap, hp, {**values, "h1": [0]})


# --------------------------------------------------------------------------- cmi_tables

# The cube above: full 2 x 2 x 2 grid, gap = 10 h3 + 2 h1 + h2, measure = h3.
# By hand there: Jiang's score for (h1, h2) = (10 H(1/4) + 6 I_s) / (16 H(1/4)) = 0.681650,
# 0 for every pair containing h3, so CMI = 0; careful (h1, h2) = 0.647873, (h3,) = 0.
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
