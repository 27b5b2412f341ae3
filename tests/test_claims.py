"""Tests for prunability.claims: the claims table K1-K6 on small hand-built studies.

Every study here is a full 2 x 2 x 2 grid of 8 models, model k = 4a + 2b + c with
hp.width = (8, 16)[a], hp.depth = (2, 4)[b], hp.lr = (0.1, 0.01)[c], and generalization
gap gen.acc_gap = 0.01 (k + 1), so a measure equal to k + 1 ranks the models exactly as
the gap does (tau_a = 1). The summary is built as the workflow's statistics rule builds
it (summary_tables + bootstrap_intervals merged on measure/target, then
flag_partial_grid). Expected values are derived by hand in comments, and bootstrap
intervals are checked against an independent pair-by-pair loop over the same resamples.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from prunability import claims
from prunability.analysis.bootstrap import bootstrap_counts, bootstrap_intervals
from prunability.analysis.completeness import flag_partial_grid
from prunability.analysis.ranking import summary_tables
from prunability.analysis.rows import CONVERGED_COL, MEASURE_PREFIX
from prunability.claims import (
    COLUMNS,
    NOT_SUPPORTED,
    NOT_TESTED,
    SUPPORTED,
    claims_table,
    norm_measures,
    verdict_above,
    verdict_below,
)

TARGET = "gen.acc_gap"
AXES = ["hp.width", "hp.depth", "hp.lr"]
N = 8
RESAMPLES = 200
LEVEL = 0.95
TAU_THRESHOLD = 0.5
MI_THRESHOLD = 0.5

INCREASING = np.arange(1.0, 9.0)  # k + 1: the gap's order, tau 1
DECREASING = -INCREASING  # tau -1
# one discordant pair (6, 7) of the C(8, 2) = 28: tau = (27 - 1) / 28 = 13/14
ONE_SWAP = np.array([1.0, 2, 3, 4, 5, 6, 8, 7])
# four discordant pairs (0,1), (2,3), (4,5), (6,7): tau = (24 - 4) / 28 = 5/7
FOUR_SWAPS = np.array([2.0, 1, 4, 3, 6, 5, 8, 7])
# 0 for a = 0, 1 for a = 1: the 16 pairs across a are concordant, the 12 within a tied:
# tau = 16/28 = 4/7
STEP_A = np.array([0.0, 0, 0, 0, 1, 1, 1, 1])
# only the last model differs: its 7 pairs are concordant, the 21 others tied: tau = 7/28 = 1/4
LAST_ONLY = np.array([0.0, 0, 0, 0, 0, 0, 0, 1])
CONSTANT = np.full(N, 3.0)  # tau 0

# name, family, orientation
INFO_ROWS = [
    ("prunability", "pruning", 1),
    ("kept_count", "pruning", 1),
    ("params", "norms", 1),
    ("l2", "norms", 1),
    ("log_prod_of_spec_over_margin", "norms", 1),
    ("pacbayes_flatness", "flatness", 1),
    ("steps_to_ce_0.1", "optimization", 1),
]

DEFAULT_MEASURES = {
    "prunability": INCREASING,  # tau 1
    "kept_count": np.array([10.0, 20, 30, 400, 15, 25, 35, 45]),
    "params": FOUR_SWAPS,  # tau 5/7
    "l2": ONE_SWAP,  # tau 13/14
    "log_prod_of_spec_over_margin": INCREASING,  # tau 1, but a margin measure
    "pacbayes_flatness": STEP_A,  # tau 4/7
    "steps_to_ce_0.1": LAST_ONLY,  # tau 1/4
}


# --------------------------------------------------------------------------- helpers


def make_table(converged=None, n_prunable=None, n_parameters=None, **measures) -> pd.DataFrame:
    """The 8-model grid with the default measures, overridden by ``measures``."""
    grid = list(itertools.product([0, 1], repeat=3))  # (a, b, c) in the order k = 4a + 2b + c
    table = pd.DataFrame(
        {
            "model": [f"m{k}" for k in range(N)],
            "hp.width": [(8, 16)[a] for a, _, _ in grid],
            "hp.depth": [(2, 4)[b] for _, b, _ in grid],
            "hp.lr": [(0.1, 0.01)[c] for _, _, c in grid],
            TARGET: 0.01 * INCREASING,
            "gen.loss_gap": 0.01 * DECREASING,
        }
    )
    values = {**DEFAULT_MEASURES, **measures}
    for name, column in values.items():
        table[MEASURE_PREFIX + name] = np.asarray(column, dtype=float)
    # |P|: 100 prunable weights for width 8 (a = 0), 200 for width 16 (a = 1)
    table["train.n_prunable"] = STEP_A * 100 + 100 if n_prunable is None else np.asarray(n_prunable, dtype=float)
    # all parameters: |P| plus 10 (k + 1) BatchNorm and bias entries, in the order of k (so
    # tau(all parameters, k + 1) = 1, which tells K4's statistic from tau(|P|, k + 1) = 4/7)
    table["train.n_parameters"] = (table["train.n_prunable"] + 10 * INCREASING if n_parameters is None
                                   else np.asarray(n_parameters, dtype=float))
    table[CONVERGED_COL] = [True] * N if converged is None else list(converged)
    return table


def make_info(rows=INFO_ROWS) -> pd.DataFrame:
    return pd.DataFrame(
        [{"name": n, "family": f, "orientation": o, "equation": "", "description": f"{n} ({f})"} for n, f, o in rows],
        columns=["name", "family", "orientation", "equation", "description"],
    )


def build_summary(table, info, counts, targets=(TARGET,), n_cells=N, n_duplicates=0, require_full_grid=False):
    """As workflow/scripts/statistics.py builds the summary the claims rule reads."""
    orientations = dict(zip(info["name"], info["orientation"]))
    summary, _ = summary_tables(table, orientations, list(targets), AXES)
    intervals = bootstrap_intervals(table, orientations, list(targets), AXES, counts, LEVEL)
    summary = summary.merge(intervals, on=["measure", "target"])
    return flag_partial_grid(summary, n_cells, n_duplicates, require_full_grid, ["Psi", "Psi_low", "Psi_high"])


def run(table=None, info=None, target=TARGET, tau_threshold=TAU_THRESHOLD, mi_threshold=MI_THRESHOLD,
        require_full_grid=False, n_cells=N, seed=0):
    """(claims table, summary, counts) of a study."""
    table = make_table() if table is None else table
    info = make_info() if info is None else info
    counts = bootstrap_counts(len(table), RESAMPLES, seed)
    summary = build_summary(table, info, counts, targets=(TARGET, "gen.loss_gap"), n_cells=n_cells,
                            require_full_grid=require_full_grid)
    result = claims_table(table, info, summary, target, counts, LEVEL, tau_threshold, mi_threshold)
    return result, summary, counts


def rows_of(result: pd.DataFrame, claim: str) -> list[pd.Series]:
    return [r for _, r in result[result["claim"] == claim].iterrows()]


def row_of(result: pd.DataFrame, claim: str, index: int = 0) -> pd.Series:
    return rows_of(result, claim)[index]


def summary_row(summary: pd.DataFrame, measure: str, target: str = TARGET) -> pd.Series:
    return summary[(summary["measure"] == measure) & (summary["target"] == target)].iloc[0]


def loop_tau(x, y, c) -> float:
    """Weighted tau of one resample, pair by pair: sum_{k != l} c_k c_l s_kl / sum_{k != l} c_k c_l."""
    num = den = 0.0
    for k in range(len(x)):
        for l in range(len(x)):
            if k != l:
                w = c[k] * c[l]
                num += w * np.sign(x[k] - x[l]) * np.sign(y[k] - y[l])
                den += w
    return num / den if den > 0 else float("nan")


def loop_mi(other, base, c=None) -> float:
    """I(V_other; V_base) / H(V_base) over ordered pairs k != l weighted by c_k c_l, in bits,
    from an explicit joint count table; NaN where H(V_base) = 0."""
    n = len(other)
    c = np.ones(n) if c is None else c
    joint = Counter()
    for k in range(n):
        for l in range(n):
            if k != l and c[k] * c[l] > 0:
                joint[(np.sign(base[k] - base[l]), np.sign(other[k] - other[l]))] += c[k] * c[l]
    total = sum(joint.values())

    def entropy(counter):
        return -sum(v / total * math.log2(v / total) for v in counter.values() if v > 0)

    h_base = entropy(Counter({b: sum(v for (bb, _), v in joint.items() if bb == b) for b, _ in joint}))
    h_other = entropy(Counter({o: sum(v for (_, oo), v in joint.items() if oo == o) for _, o in joint}))
    if h_base <= 0:
        return float("nan")
    return (h_base + h_other - entropy(joint)) / h_base


def quantiles(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    low, high = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(low), float(high)


def partial_grid_cells(note: str) -> int:
    """The number of missing cells a K3 Psi partial-grid note reports (wording aside)."""
    assert note.startswith("partial grid"), note
    numbers = re.findall(r"\d+", note)
    assert len(numbers) == 1, note
    return int(numbers[0])


def entropy_bits(p) -> float:
    return -sum(q * math.log2(q) for q in p if q > 0)


# ------------------------------------------------------------------- verdict helpers


def test_verdict_above_is_strict():
    assert verdict_above((0.6, 0.9), 0.5) == SUPPORTED
    assert verdict_above((0.5, 0.9), 0.5) == NOT_SUPPORTED  # lower end at the threshold
    assert verdict_above((0.4, 0.9), 0.5) == NOT_SUPPORTED  # straddles
    assert verdict_above((0.1, 0.4), 0.5) == NOT_SUPPORTED


def test_verdict_below_is_strict():
    assert verdict_below((0.1, 0.4), 0.5) == SUPPORTED
    assert verdict_below((0.1, 0.5), 0.5) == NOT_SUPPORTED  # upper end at the threshold
    assert verdict_below((0.1, 0.9), 0.5) == NOT_SUPPORTED  # straddles
    assert verdict_below((0.6, 0.9), 0.5) == NOT_SUPPORTED


@pytest.mark.parametrize("verdict", [verdict_above, verdict_below])
def test_nan_interval_is_not_supported(verdict):
    assert verdict((float("nan"), float("nan")), 0.5) == NOT_SUPPORTED
    assert verdict((float("nan"), float("nan")), -10.0) == NOT_SUPPORTED


# ------------------------------------------------------------------------ norm measures


def test_norm_measures_drop_margin_and_other_families():
    info = make_info(INFO_ROWS + [("inverse_margin", "norms", 1), ("path_norm", "norms", 1)])
    # norms: params, l2, log_prod_of_spec_over_margin, inverse_margin, path_norm, minus "margin"
    assert norm_measures(info) == ["params", "l2", "path_norm"]


def test_norm_measures_empty():
    assert norm_measures(make_info([("prunability", "pruning", 1), ("m_margin", "norms", 1)])) == []


# ------------------------------------------------------------------------- table shape


def test_every_row_has_all_columns_and_a_known_verdict():
    result, _, _ = run()
    assert list(result.columns) == COLUMNS
    # K1 1, K2 1, K3 2 (tau, Psi), K4 1, K5 1, K6 2 (difference, MI)
    assert list(result["claim"]) == ["K1", "K2", "K3", "K3", "K4", "K5", "K6", "K6"]
    assert set(result["verdict"]) <= {SUPPORTED, NOT_SUPPORTED, NOT_TESTED}
    assert result[["claim", "statement", "statistic", "verdict", "rule"]].notna().all().all()
    for _, r in result.iterrows():
        assert r["statement"] == claims.STATEMENTS[r["claim"]]
        assert isinstance(r["note"], str)
    # the tested rows have a value and an interval that contains it (all by-hand values
    # of this default study are inside their bootstrap range)
    tested = result[result["verdict"] != NOT_TESTED]
    assert len(tested) == 6
    assert tested[["value", "ci_low", "ci_high"]].notna().all().all()
    assert (tested["ci_low"] <= tested["ci_high"]).all()
    assert "95%" in result.loc[0, "rule"] and "0.5" in result.loc[0, "rule"]


def test_missing_families_give_rows_with_all_columns():
    info = make_info([("steps_to_ce_0.1", "optimization", 1)])
    result, _, _ = run(info=info)
    assert list(result.columns) == COLUMNS
    assert list(result["claim"]) == ["K1", "K2", "K3", "K3", "K4", "K5", "K6", "K6"]
    # nothing but one optimization measure: K1, K2, K3, K4, K5, K6 all untested
    assert (result["verdict"] == NOT_TESTED).all()
    assert result["value"].isna().all() and result["ci_low"].isna().all() and result["ci_high"].isna().all()


# ------------------------------------------------------------------------------------ K1


def test_k1_picks_best_norm_measure_and_excludes_margin():
    result, summary, counts = run()
    k1 = row_of(result, "K1")
    # candidates params (5/7) and l2 (13/14); log_prod_of_spec_over_margin (tau 1) is a
    # margin measure and must not be picked
    assert "l2" in k1["statistic"] and "margin" not in k1["statistic"]
    assert k1["value"] == pytest.approx(13 / 14)
    assert (k1["ci_low"], k1["ci_high"]) == (summary_row(summary, "l2")["tau_a_low"], summary_row(summary, "l2")["tau_a_high"])
    expected = quantiles([loop_tau(ONE_SWAP, INCREASING, c) for c in counts])
    assert (k1["ci_low"], k1["ci_high"]) == pytest.approx(expected)
    assert k1["verdict"] == (SUPPORTED if k1["ci_high"] < TAU_THRESHOLD else NOT_SUPPORTED)
    assert k1["note"] == "best of 2 count/norm measures by tau"


def test_k1_perfectly_monotone_norm_measure_is_not_supported():
    # l2 ranks the models exactly as the gap: tau 1 and, in every resample with two distinct
    # models, every pair concordant, so the interval is (1, 1)
    result, _, _ = run(table=make_table(l2=INCREASING), tau_threshold=0.9)
    k1 = row_of(result, "K1")
    assert "(l2)" in k1["statistic"]
    assert (k1["value"], k1["ci_low"], k1["ci_high"]) == (1.0, 1.0, 1.0)
    assert k1["verdict"] == NOT_SUPPORTED
    # even at a threshold of 1 itself (1 < 1 is false)
    result, _, _ = run(table=make_table(l2=INCREASING), tau_threshold=1.0)
    assert row_of(result, "K1")["verdict"] == NOT_SUPPORTED


def test_k1_anti_correlated_norm_measures_are_supported():
    # l2 = -(k+1): tau -1; params = -ONE_SWAP: tau -13/14 (the larger, so the best);
    # the margin measure keeps tau 1 and must not be picked
    result, _, counts = run(table=make_table(l2=DECREASING, params=-ONE_SWAP))
    k1 = row_of(result, "K1")
    assert "(params)" in k1["statistic"]
    assert k1["value"] == pytest.approx(-13 / 14)
    expected = quantiles([loop_tau(-ONE_SWAP, INCREASING, c) for c in counts])
    assert (k1["ci_low"], k1["ci_high"]) == pytest.approx(expected)
    assert k1["ci_high"] < TAU_THRESHOLD
    assert k1["verdict"] == SUPPORTED


def test_k1_threshold_is_strict_on_a_degenerate_interval():
    # every norm measure constant: tau 0 in every resample, interval (0, 0)
    table = make_table(l2=CONSTANT, params=CONSTANT)
    result, _, _ = run(table=table, tau_threshold=0.0)
    k1 = row_of(result, "K1")
    assert (k1["value"], k1["ci_low"], k1["ci_high"]) == (0.0, 0.0, 0.0)
    assert k1["verdict"] == NOT_SUPPORTED  # 0 < 0 is false
    result, _, _ = run(table=table, tau_threshold=0.01)
    assert row_of(result, "K1")["verdict"] == SUPPORTED


def test_k1_uses_the_requested_target():
    # against gen.loss_gap = -(k+1)/100 the signs flip: params -5/7, l2 -13/14 -> best params
    result, _, _ = run(target="gen.loss_gap")
    k1 = row_of(result, "K1")
    assert "(params)" in k1["statistic"]
    assert k1["value"] == pytest.approx(-5 / 7)


def test_k1_not_tested_without_norm_measures():
    rows = [r for r in INFO_ROWS if r[0] not in ("params", "l2")]  # only the margin measure is left
    result, _, _ = run(info=make_info(rows))
    k1 = row_of(result, "K1")
    assert k1["verdict"] == NOT_TESTED
    assert math.isnan(k1["value"])
    assert k1["note"] == "the norms family was not computed"


# ------------------------------------------------------------------------------- K2, K5


def test_k2_is_a_definition():
    result, _, _ = run()
    k2 = row_of(result, "K2")
    assert k2["verdict"] == NOT_TESTED
    assert "measure.prunability" in k2["note"]
    assert math.isnan(k2["value"])


def test_k5_is_not_tested_without_a_sweep():
    for table in (make_table(), make_table(prunability=ONE_SWAP)):
        result, _, _ = run(table=table)
        k5 = rows_of(result, "K5")
        assert len(k5) == 1
        assert k5[0]["verdict"] == NOT_TESTED
        assert k5[0]["note"] == "not a double-descent study (double_descent.sweep_axis is null)"
        assert math.isnan(k5[0]["value"])


def k5_row(table, sweep_axis="width", info=None, tau_threshold=TAU_THRESHOLD):
    info = make_info() if info is None else info
    counts = bootstrap_counts(len(table), RESAMPLES, 0)
    summary = build_summary(table, info, counts)
    result = claims_table(table, info, summary, TARGET, counts, LEVEL, tau_threshold, MI_THRESHOLD, sweep_axis)
    return row_of(result, "K5"), counts


def test_k5_is_tau_of_prunability_with_the_test_loss_across_the_sweep():
    # test loss rises then falls over k; prunability ranks it with one discordant pair
    # (models 3 and 4, loss 0.9 < 1.0 but prunability 0.95 > 0.9): tau_a = (27 - 1) / 28
    table = make_table(prunability=[0.5, 0.6, 0.7, 0.95, 0.9, 0.8, 0.65, 0.55])
    table["gen.test_loss"] = [0.5, 0.6, 0.7, 0.9, 1.0, 0.8, 0.65, 0.55]
    k5, counts = k5_row(table)
    assert k5["value"] == pytest.approx(26 / 28)
    x, y = table["measure.prunability"].to_numpy(), table["gen.test_loss"].to_numpy()
    low, high = quantiles([loop_tau(x, y, c) for c in counts])
    assert (k5["ci_low"], k5["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert k5["verdict"] == (SUPPORTED if low > TAU_THRESHOLD else NOT_SUPPORTED)
    assert k5["statistic"] == "tau(prunability, test loss) across the width sweep"
    assert k5["note"].startswith("8 models over 2 values of width; Spearman rho ")
    # a threshold above the interval's lower end: not supported
    assert k5_row(table, tau_threshold=low)[0]["verdict"] == NOT_SUPPORTED


def test_k5_excludes_unconverged_models_and_needs_prunability():
    table = make_table(converged=[True] * 7 + [False], prunability=INCREASING)
    table["gen.test_loss"] = DECREASING
    k5, _ = k5_row(table)
    assert k5["value"] == pytest.approx(-1.0)  # 7 converged models, perfectly reversed
    assert k5["note"].startswith("7 models over 2 values of width")
    assert k5["verdict"] == NOT_SUPPORTED
    no_pruning = make_info([r for r in INFO_ROWS if r[1] != "pruning"])
    k5, _ = k5_row(table, info=no_pruning)
    assert (k5["verdict"], k5["note"]) == (NOT_TESTED, "the pruning family was not computed")


# ------------------------------------------------------------------------------------ K3


def test_k3_perfectly_monotone_prunability_is_supported():
    result, summary, _ = run()
    tau, psi = rows_of(result, "K3")
    # tau 1 and every group tau 1, so Psi 1; every resample's tau and Psi 1 too
    assert (tau["value"], tau["ci_low"], tau["ci_high"]) == (1.0, 1.0, 1.0)
    assert (psi["value"], psi["ci_low"], psi["ci_high"]) == (1.0, 1.0, 1.0)
    assert tau["verdict"] == SUPPORTED and psi["verdict"] == SUPPORTED
    assert tau["note"] == "" and psi["note"] == ""
    assert tau["statistic"] == "tau of prunability" and psi["statistic"] == "Psi of prunability"


def test_k3_values_equal_tau_and_psi_from_the_summary():
    # prunability = ONE_SWAP (models 6 and 7 swapped): tau_a = 13/14.
    # Psi by hand: axis lr (groups {k, k+1} per (a, b)): three groups concordant, the
    # group {6, 7} discordant -> psi = (3 - 1)/4 = 1/2; axis width (groups {k, k+4}):
    # {2, 6}: 3 < 8, {3, 7}: 4 < 7, all concordant -> 1; axis depth (groups {k, k+2}):
    # {4, 6}: 5 < 8, {5, 7}: 6 < 7 -> 1. Psi = (1/2 + 1 + 1)/3 = 5/6.
    result, summary, counts = run(table=make_table(prunability=ONE_SWAP))
    tau, psi = rows_of(result, "K3")
    s = summary_row(summary, "prunability")
    assert tau["value"] == pytest.approx(13 / 14) and s["tau_a"] == pytest.approx(13 / 14)
    assert psi["value"] == pytest.approx(5 / 6) and s["Psi"] == pytest.approx(5 / 6)
    assert (tau["ci_low"], tau["ci_high"]) == (s["tau_a_low"], s["tau_a_high"])
    assert (psi["ci_low"], psi["ci_high"]) == (s["Psi_low"], s["Psi_high"])
    assert (tau["ci_low"], tau["ci_high"]) == pytest.approx(quantiles([loop_tau(ONE_SWAP, INCREASING, c) for c in counts]))
    for r in (tau, psi):
        assert r["verdict"] == (SUPPORTED if r["ci_low"] > TAU_THRESHOLD else NOT_SUPPORTED)


def test_k3_anti_monotone_prunability_is_not_supported():
    result, _, _ = run(table=make_table(prunability=DECREASING))
    tau, psi = rows_of(result, "K3")
    assert (tau["value"], tau["ci_low"], tau["ci_high"]) == (-1.0, -1.0, -1.0)
    assert psi["value"] == -1.0
    assert tau["verdict"] == NOT_SUPPORTED and psi["verdict"] == NOT_SUPPORTED


def test_k3_partial_grid_note_for_an_unconverged_model():
    # model 7 did not converge: 7 of 8 cells usable -> grid_cells_missing 1, full_grid False.
    # The other 7 models still rank exactly as the gap: tau 1 and Psi 1.
    table = make_table(converged=[True] * 7 + [False])
    result, summary, _ = run(table=table)
    tau, psi = rows_of(result, "K3")
    assert not summary_row(summary, "prunability")["full_grid"]
    assert tau["value"] == 1.0 and psi["value"] == 1.0
    assert tau["note"] == ""
    assert partial_grid_cells(psi["note"]) == 1
    assert psi["verdict"] == SUPPORTED


def test_k3_partial_grid_note_for_a_dropped_model():
    # two models missing from the table altogether (the grid has 8 cells): 2 cells missing
    table = make_table().iloc[:6].reset_index(drop=True)
    result, _, _ = run(table=table)
    tau, psi = rows_of(result, "K3")
    assert partial_grid_cells(psi["note"]) == 2
    assert tau["note"] == ""


def test_k3_psi_not_tested_when_a_full_grid_is_required():
    table = make_table(converged=[True] * 7 + [False])
    result, _, _ = run(table=table, require_full_grid=True)
    tau, psi = rows_of(result, "K3")
    assert tau["verdict"] == SUPPORTED
    assert psi["verdict"] == NOT_TESTED
    assert math.isnan(psi["value"]) and math.isnan(psi["ci_low"]) and math.isnan(psi["ci_high"])
    assert partial_grid_cells(psi["note"]) == 1


def test_k3_not_tested_without_the_pruning_family():
    info = make_info([r for r in INFO_ROWS if r[1] != "pruning"])
    result, _, _ = run(info=info)
    for r in rows_of(result, "K3"):
        assert r["verdict"] == NOT_TESTED
        assert r["note"] == "the pruning family was not computed"
    assert row_of(result, "K2")["note"] == "the pruning family was not computed"


# ------------------------------------------------------------------------------------ K4


def test_k4_value_by_hand():
    # size 100 for models 0-3, 200 for 4-7; prunability = k + 1. The 16 pairs across the
    # widths are concordant, the 12 within a width tied in size: tau = 16/28 = 4/7.
    # kept_count = [10, 20, 30, 400 | 15, 25, 35, 45]: across the widths, 10 < all four
    # (4 c), 20: 15 < 20 (1 d, 3 c), 30: 15, 25 < 30 (2 d, 2 c), 400 > all (4 d):
    # c = 9, d = 7, tau = 2/28 = 1/14 = 0.0714...
    result, _, counts = run()
    k4 = row_of(result, "K4")
    assert k4["statistic"] == "tau(|P|, prunability)"
    assert "|P| = the number of prunable Conv/Linear weights" in k4["rule"]
    assert k4["value"] == pytest.approx(4 / 7)
    assert k4["note"] == "tau(|P|, kept count kappa) = 0.071"
    size = STEP_A * 100 + 100
    expected = quantiles([loop_tau(size, INCREASING, c) for c in counts])
    assert (k4["ci_low"], k4["ci_high"]) == pytest.approx(expected)
    assert k4["verdict"] == (SUPPORTED if k4["ci_high"] < TAU_THRESHOLD else NOT_SUPPORTED)


def test_k4_uses_raw_prunability_and_the_prunable_count():
    # |P| = 10 (k + 1), prunability = -(k + 1): tau -1 in every resample -> (-1, -1), supported
    result, _, _ = run(table=make_table(prunability=DECREASING, n_prunable=10 * INCREASING))
    k4 = row_of(result, "K4")
    assert (k4["value"], k4["ci_low"], k4["ci_high"]) == (-1.0, -1.0, -1.0)
    assert k4["verdict"] == SUPPORTED
    # size and prunability in the same order: (1, 1), not supported;
    # kept_count = k + 1 too: tau(size, kept) = 1
    result, _, _ = run(table=make_table(kept_count=INCREASING, n_prunable=10 * INCREASING))
    k4 = row_of(result, "K4")
    assert (k4["value"], k4["ci_low"], k4["ci_high"]) == (1.0, 1.0, 1.0)
    assert k4["verdict"] == NOT_SUPPORTED
    assert k4["note"] == "tau(|P|, kept count kappa) = 1.000"


@pytest.mark.parametrize("old_results", ["no column", "all NaN"])
def test_k4_falls_back_to_all_parameters_in_old_results(old_results):
    # Results from before |P| was recorded: all parameters, 10 (k + 1) + |P|, increase with k,
    # as prunability = k + 1 does: tau 1 (where |P| would give 4/7).
    # kept_count = [10, 20, 30, 400, 15, 25, 35, 45] against k: concordant pairs (i < j,
    # kept_j > kept_i) from 10: 7; 20: 5 (1 d, 15); 30: 3 (2 d, 15 and 25); 400: 0 (4 d);
    # 15: 3; 25: 2; 35: 1. c = 21, d = 7: tau = 14/28 = 0.5.
    table = make_table()
    if old_results == "no column":
        table = table.drop(columns="train.n_prunable")
    else:
        table["train.n_prunable"] = np.nan
    result, _, _ = run(table=table)
    k4 = row_of(result, "K4")
    assert k4["statistic"] == "tau(parameter count, prunability)"
    assert k4["value"] == pytest.approx(1.0)
    assert k4["note"].startswith("tau(parameter count, kept count kappa) = 0.500; train.n_prunable not recorded")
    assert "all parameters" in k4["note"]


def test_k4_prefers_the_prunable_count_when_some_models_lack_it():
    # |P| NaN for model 7 only (not all NaN): |P| is used, model 7 left out. Over models
    # 0-6 the 4 x 3 = 12 pairs across the widths are concordant of C(7, 2) = 21: tau 4/7.
    table = make_table()
    table.loc[7, "train.n_prunable"] = np.nan
    k4 = row_of(run(table=table)[0], "K4")
    assert k4["statistic"] == "tau(|P|, prunability)"
    assert k4["value"] == pytest.approx(4 / 7)


def test_k4_not_tested_without_any_size():
    table = make_table().drop(columns=["train.n_prunable", "train.n_parameters"])
    k4 = row_of(run(table=table)[0], "K4")
    assert k4["verdict"] == NOT_TESTED and math.isnan(k4["value"])
    assert "records no model size" in k4["note"]


def test_k4_excludes_unconverged_models():
    # model 7 unconverged with prunability 0. Over models 0-6: 4 x 3 = 12 pairs across the
    # widths, all concordant, of C(7, 2) = 21: tau = 12/21 = 4/7. Were model 7 counted,
    # its 4 pairs with the width-8 models would be discordant: (12 - 4)/28 = 2/7.
    prunability = INCREASING.copy()
    prunability[7] = 0.0
    table = make_table(prunability=prunability, converged=[True] * 7 + [False])
    result, _, counts = run(table=table)
    k4 = row_of(result, "K4")
    assert k4["value"] == pytest.approx(4 / 7)
    size = STEP_A * 100 + 100
    expected = quantiles([loop_tau(size[:7], prunability[:7], c[:7]) for c in counts])
    assert (k4["ci_low"], k4["ci_high"]) == pytest.approx(expected)


def test_k4_not_tested_when_every_model_has_the_same_size():
    result, _, _ = run(table=make_table(n_prunable=np.full(N, 1234.0)))
    k4 = row_of(result, "K4")
    assert k4["verdict"] == NOT_TESTED
    assert k4["note"] == "every model used has the same size"
    assert math.isnan(k4["value"])


def test_k4_not_tested_when_every_used_model_has_the_same_size():
    # the converged models all have |P| = 100; only the unconverged model 7 has 200
    table = make_table(n_prunable=[100.0] * 7 + [200.0], converged=[True] * 7 + [False])
    result, _, _ = run(table=table)
    assert row_of(result, "K4")["verdict"] == NOT_TESTED


def test_k4_not_tested_without_the_pruning_family():
    info = make_info([r for r in INFO_ROWS if r[1] != "pruning"])
    result, _, _ = run(info=info)
    k4 = row_of(result, "K4")
    assert k4["verdict"] == NOT_TESTED
    assert k4["note"] == "the pruning family was not computed"


# ------------------------------------------------------------------ K6: tau difference


def test_k6_difference_by_hand():
    # prunability k + 1: tau 1. Flatness: pacbayes_flatness = STEP_A (tau 4/7) and
    # sharpness_flatness = -(k + 1) (tau -1): the best is pacbayes_flatness.
    # difference = 1 - 4/7 = 3/7
    info = make_info(INFO_ROWS + [("sharpness_flatness", "flatness", 1)])
    table = make_table(sharpness_flatness=DECREASING)
    result, _, counts = run(table=table, info=info)
    diff = row_of(result, "K6", 0)
    assert diff["statistic"] == "tau(prunability) - tau(pacbayes_flatness)"
    assert diff["value"] == pytest.approx(3 / 7)
    expected = quantiles([loop_tau(INCREASING, INCREASING, c) - loop_tau(STEP_A, INCREASING, c) for c in counts])
    assert (diff["ci_low"], diff["ci_high"]) == pytest.approx(expected)
    assert diff["verdict"] == (SUPPORTED if diff["ci_low"] > 0 else NOT_SUPPORTED)
    assert diff["note"] == "the same models and resamples for both measures"


def test_k6_difference_of_two_is_supported():
    # prunability tau 1 and the only flatness measure tau -1 in every resample: the
    # difference is 2 in every resample, interval (2, 2)
    result, _, _ = run(table=make_table(pacbayes_flatness=DECREASING))
    diff = row_of(result, "K6", 0)
    assert (diff["value"], diff["ci_low"], diff["ci_high"]) == (2.0, 2.0, 2.0)
    assert diff["verdict"] == SUPPORTED


def test_k6_difference_respects_orientation():
    # pacbayes_flatness has orientation -1 and raw values -(k + 1): oriented tau 1, so it is
    # the best flatness measure (above sharpness_flatness's 4/7) and the difference with
    # prunability (tau 1) is 0 in every resample: interval (0, 0), not above 0
    rows = [r if r[0] != "pacbayes_flatness" else ("pacbayes_flatness", "flatness", -1) for r in INFO_ROWS]
    info = make_info(rows + [("sharpness_flatness", "flatness", 1)])
    table = make_table(pacbayes_flatness=DECREASING, sharpness_flatness=STEP_A)
    result, _, _ = run(table=table, info=info)
    diff = row_of(result, "K6", 0)
    assert diff["statistic"] == "tau(prunability) - tau(pacbayes_flatness)"
    assert (diff["value"], diff["ci_low"], diff["ci_high"]) == (0.0, 0.0, 0.0)
    assert diff["verdict"] == NOT_SUPPORTED


def test_k6_difference_not_tested_without_flatness():
    info = make_info([r for r in INFO_ROWS if r[1] != "flatness"])
    result, _, _ = run(info=info)
    diff, mi = rows_of(result, "K6")
    assert diff["verdict"] == NOT_TESTED
    assert diff["note"] == "needs the pruning and flatness families"
    assert math.isnan(diff["value"])
    assert mi["verdict"] != NOT_TESTED  # norms and optimization baselines remain


# --------------------------------------------------------------------- K6: median MI


def test_k6_mi_closed_forms_of_the_independent_loop():
    # the reference implementation used below, on cases worked out by hand
    assert loop_mi(INCREASING, INCREASING) == pytest.approx(1.0)  # V_other = V_base
    assert loop_mi(INCREASING, DECREASING) == pytest.approx(1.0)  # V_other = -V_base
    assert math.isnan(loop_mi(INCREASING, CONSTANT))  # H(V_base) = 0
    assert loop_mi(CONSTANT, INCREASING) == 0.0  # V_other constant
    # base STEP_A: of the 56 ordered pairs, V_base = +1 on 16 (then V_other = +1), -1 on 16
    # (V_other = -1) and 0 on 24 (V_other +-1, 12 each): I = H(V_other) - H(V_other | V_base)
    # = 1 - 24/56 = 4/7 bits, H(V_base) = H(2/7, 2/7, 3/7)
    assert loop_mi(INCREASING, STEP_A) == pytest.approx((4 / 7) / entropy_bits([2 / 7, 2 / 7, 3 / 7]))
    # base LAST_ONLY: V_base = +-1 on 7 pairs each (V_other determined), 0 on 42 (V_other
    # +-1, 21 each): I = 1 - 42/56 = 1/4, H(V_base) = H(1/8, 1/8, 3/4)
    assert loop_mi(INCREASING, LAST_ONLY) == pytest.approx(0.25 / entropy_bits([1 / 8, 1 / 8, 3 / 4]))


def test_k6_mi_median_over_baselines():
    # baselines (every family but pruning): params = -(k+1) -> 1, l2 = k+1 -> 1,
    # margin constant -> NaN (dropped), pacbayes_flatness = STEP_A -> (4/7)/H(2/7,2/7,3/7)
    # = 0.367, steps_to_ce_0.1 = LAST_ONLY -> (1/4)/H(1/8,1/8,3/4) = 0.236.
    # median of {0.236, 0.367, 1, 1} = (0.367 + 1)/2 = 0.684.
    # kept_count (pruning family, MI 1 with prunability) must not count: with it the median
    # of {0.236, 0.367, 1, 1, 1} would be 1.
    table = make_table(params=DECREASING, l2=INCREASING, log_prod_of_spec_over_margin=CONSTANT,
                       kept_count=INCREASING)
    result, _, counts = run(table=table)
    mi = row_of(result, "K6", 1)
    mi_step = (4 / 7) / entropy_bits([2 / 7, 2 / 7, 3 / 7])
    expected = (mi_step + 1.0) / 2
    assert mi["value"] == pytest.approx(expected)
    assert mi["value"] == pytest.approx(0.6836, abs=1e-4)
    assert mi["note"] == "5 baselines (every family but pruning)"
    # the interval: the median over baselines of each resample's weighted MI
    bases = [DECREASING, INCREASING, CONSTANT, STEP_A, LAST_ONLY]
    per_resample = [np.nanmedian([loop_mi(INCREASING, b, c) for b in bases]) for c in counts]
    assert (mi["ci_low"], mi["ci_high"]) == pytest.approx(quantiles(per_resample))
    assert mi["verdict"] == (SUPPORTED if mi["ci_high"] < MI_THRESHOLD else NOT_SUPPORTED)


def test_k6_mi_of_a_constant_prunability_is_zero_and_supported():
    # prunability constant: V_prunability = 0 on every pair, so I = 0 for every baseline
    # with H(V_base) > 0, in every resample: value 0, interval (0, 0), below 0.5
    result, _, _ = run(table=make_table(prunability=CONSTANT))
    mi = row_of(result, "K6", 1)
    assert (mi["value"], mi["ci_low"], mi["ci_high"]) == (0.0, 0.0, 0.0)
    assert mi["verdict"] == SUPPORTED
    result, _, _ = run(table=make_table(prunability=CONSTANT), mi_threshold=0.0)
    assert row_of(result, "K6", 1)["verdict"] == NOT_SUPPORTED  # 0 < 0 is false


def test_k6_mi_identical_baselines_not_supported():
    # every non-pruning baseline ranks as prunability (or its reverse): MI 1 everywhere
    table = make_table(params=DECREASING, l2=INCREASING, pacbayes_flatness=INCREASING,
                       **{"steps_to_ce_0.1": 2 * INCREASING})
    result, _, _ = run(table=table)
    mi = row_of(result, "K6", 1)
    assert mi["value"] == pytest.approx(1.0)
    assert mi["ci_low"] == pytest.approx(1.0) and mi["ci_high"] == pytest.approx(1.0)
    assert mi["verdict"] == NOT_SUPPORTED


def test_k6_not_tested_without_pruning_or_baselines():
    # only the pruning family: no baseline, no flatness
    info = make_info([r for r in INFO_ROWS if r[1] == "pruning"])
    result, _, _ = run(info=info)
    diff, mi = rows_of(result, "K6")
    assert diff["verdict"] == NOT_TESTED and mi["verdict"] == NOT_TESTED
    assert mi["note"] == "needs the pruning family and a baseline family"
    assert row_of(result, "K1")["verdict"] == NOT_TESTED
    assert rows_of(result, "K3")[0]["verdict"] != NOT_TESTED  # prunability itself is tested
    # no pruning family: both K6 rows untested as well
    info = make_info([r for r in INFO_ROWS if r[1] != "pruning"])
    result, _, _ = run(info=info)
    diff, mi = rows_of(result, "K6")
    assert diff["verdict"] == NOT_TESTED and mi["verdict"] == NOT_TESTED
    assert row_of(result, "K1")["verdict"] != NOT_TESTED


def test_every_claim_has_a_registered_test_in_order():
    from prunability.claims import CLAIM_TESTS, STATEMENTS, claim_test

    assert [claim for claim, _ in CLAIM_TESTS] == ["K1", "K2", "K3", "K4", "K5", "K6", "K6"]
    assert {claim for claim, _ in CLAIM_TESTS} == set(STATEMENTS)
    with pytest.raises(ValueError, match="unknown claim 'K9'"):
        claim_test("K9")
