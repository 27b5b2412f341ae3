"""Tests of the seed noise floor in prunability.analysis.replicates: tau and Psi within
each replicate, their spread across replicates, and the seed oracle, against values
computed by hand.

The hand-made study: 2 seeds x a 2 x 2 grid (width 1, 2 x depth 2, 3). The cells, in the
order c1..c4 = (1, 2), (1, 3), (2, 2), (2, 3), have the gaps

    seed 0: g0 = [0.1, 0.2, 0.3, 0.4]
    seed 1: g1 = [0.2, 0.1, 0.3, 0.4]   (c1 and c2 swapped)

and in both seeds the measure m = [1, 2, 3, 4] (orientation +1), so m ranks seed 0
exactly and seed 1 as well as g0 ranks g1.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prunability.analysis.ranking import summary_tables
from prunability.analysis.replicates import (
    ORACLE_COLUMNS,
    REPLICATE_COLUMNS,
    SPREAD_COLUMNS,
    active_replicate_axis,
    replicate_spread,
    replicate_tables,
    seed_noise_floor,
    seed_oracle,
)
from prunability.analysis.rows import CONVERGED_COL
from prunability.grid import statistics_axes

CELLS = list(itertools.product((1, 2), (2, 3)))  # (width, depth) of c1..c4
GAPS = {0: [0.1, 0.2, 0.3, 0.4], 1: [0.2, 0.1, 0.3, 0.4], 2: [0.1, 0.2, 0.3, 0.4]}
MEASURE = [1.0, 2.0, 3.0, 4.0]
AXES = ["hp.width", "hp.depth"]
TARGET = "gen.acc_gap"
GRID = {"width": [1, 2], "depth": [2, 3], "seed": [0, 1]}
ORIENTATIONS = {"m": 1, "m_reversed": -1}


def make_table(seeds=(0, 1), unconverged=()) -> pd.DataFrame:
    """One row per (seed, cell); ``unconverged`` lists (seed, cell index) pairs."""
    rows = []
    for seed in seeds:
        for k, (width, depth) in enumerate(CELLS):
            rows.append({
                "model": f"width~{width}/depth~{depth}/seed~{seed}",
                "hp.width": width, "hp.depth": depth, "hp.seed": seed,
                TARGET: GAPS[seed][k],
                "measure.m": MEASURE[k],
                "measure.m_reversed": -MEASURE[k],  # orientation -1: the same statistics as m
                CONVERGED_COL: (seed, k) not in unconverged,
            })
    return pd.DataFrame(rows)


def replicates(table, require_full_grid=False):
    return replicate_tables(table, ORIENTATIONS, [TARGET], AXES, "hp.seed", [*AXES, "hp.seed"], 4,
                                  require_full_grid)


def oracle(table, n_cells=4, require_full_grid=False):
    return seed_oracle(table, [TARGET], "hp.seed", AXES, AXES, n_cells, require_full_grid)


# ------------------------------------------------------------------ which axis, which axes


def test_default_axes_leave_out_the_replicate_axis_and_single_values():
    grid = {"width": [1, 2], "seed": [0, 1], "lr": [0.1], "depth": [2, 3, 4]}
    assert statistics_axes(grid, None, "seed") == ["width", "depth"]
    assert statistics_axes(grid, None, None) == ["width", "seed", "depth"]
    assert statistics_axes(grid, [], "seed") == ["width", "depth"]  # empty as null, as before
    assert statistics_axes(grid, ["seed", "width"], "seed") == ["seed", "width"]


def test_active_replicate_axis():
    grid = {"width": [1, 2], "seed": [0, 1], "lr": [0.1]}
    assert active_replicate_axis(grid, ["width"], "seed") == "seed"
    assert active_replicate_axis(grid, ["width", "seed"], "seed") is None  # a hyperparameter here
    assert active_replicate_axis(grid, ["width"], "lr") is None  # one value
    assert active_replicate_axis(grid, ["width"], "dropout") is None  # not a grid axis
    assert active_replicate_axis(grid, ["width"], None) is None


# ------------------------------------------------------------------ within each replicate


def test_replicate_tables_by_hand():
    # seed 0: m and g0 in the same order: tau 1, and in every group of granulated Kendall: Psi 1.
    # seed 1: of the 6 pairs only (c1, c2) is discordant (m up, g1 0.2 -> 0.1 down):
    #   tau = (5 - 1) / 6 = 2/3.
    #   psi_width (groups of one depth): depth 2 = {c1, c3}: m 1 < 3, g 0.2 < 0.3: +1;
    #   depth 3 = {c2, c4}: 2 < 4, 0.1 < 0.4: +1; psi_width = 1.
    #   psi_depth (groups of one width): width 1 = {c1, c2}: -1; width 2 = {c3, c4}: +1; psi_depth = 0.
    #   Psi = (1 + 0) / 2 = 1/2.
    result = replicates(make_table())
    assert list(result.columns) == REPLICATE_COLUMNS
    # measure by measure (in the order of the orientations), replicate by replicate
    assert list(result["measure"]) == ["m", "m", "m_reversed", "m_reversed"]
    assert list(result["replicate"]) == [0, 1, 0, 1]
    for measure in ORIENTATIONS:  # m_reversed = -m with orientation -1: the same values
        rows = result[result["measure"] == measure]
        assert list(rows["n_used"]) == [4, 4]
        assert list(rows["tau_a"]) == pytest.approx([1.0, 2 / 3])
        assert list(rows["Psi"]) == pytest.approx([1.0, 0.5])
        assert rows["full_grid"].all() and (rows["grid_cells_missing"] == 0).all()


def test_replicate_tables_agree_with_summary_tables_on_each_seed():
    table = make_table()
    result = replicates(table)
    for seed in (0, 1):
        summary, _ = summary_tables(table[table["hp.seed"] == seed], ORIENTATIONS, [TARGET], AXES)
        rows = result[result["replicate"] == seed]
        np.testing.assert_allclose(rows[["tau_a", "Psi"]].to_numpy(float), summary[["tau_a", "Psi"]].to_numpy(float))


def test_replicate_tables_partial_replicate():
    # seed 1's c4 did not converge: c1, c2, c3 with m = 1, 2, 3 and g1 = 0.2, 0.1, 0.3:
    # (c1, c2) discordant, (c1, c3) and (c2, c3) concordant: tau = (2 - 1) / 3 = 1/3.
    # psi_width: depth 2 = {c1, c3}: +1; depth 3 = {c2} skipped: psi_width = 1.
    # psi_depth: width 1 = {c1, c2}: -1; width 2 = {c3} skipped: psi_depth = -1. Psi = 0.
    table = make_table(unconverged=[(1, 3)])
    result = replicates(table)
    seed1 = result[(result["measure"] == "m") & (result["replicate"] == 1)].iloc[0]
    assert seed1["n_used"] == 3 and seed1["grid_cells_missing"] == 1 and not seed1["full_grid"]
    assert seed1["tau_a"] == pytest.approx(1 / 3)
    assert seed1["Psi"] == pytest.approx(0.0)
    # with require_full_grid the partial replicate has no Psi; the full one keeps it
    required = replicates(table, require_full_grid=True)
    m = required[required["measure"] == "m"]
    assert m["Psi"].iloc[0] == 1.0 and math.isnan(m["Psi"].iloc[1])
    assert m["tau_a"].iloc[1] == pytest.approx(1 / 3)


def test_replicate_spread_by_hand():
    # tau: 1 and 2/3: mean 5/6, sample sd |1 - 2/3| / sqrt(2) = 1 / (3 sqrt 2), min 2/3, max 1.
    # Psi: 1 and 1/2: mean 3/4, sd (1/2) / sqrt(2), min 1/2, max 1.
    spread = replicate_spread(replicates(make_table()))
    assert list(spread.columns) == SPREAD_COLUMNS
    assert list(spread["measure"]) == ["m", "m_reversed"]
    for _, row in spread.iterrows():
        assert row["tau_a_n"] == 2 and row["Psi_n"] == 2
        assert (row["tau_a_mean"], row["tau_a_sd"], row["tau_a_min"], row["tau_a_max"]) == pytest.approx(
            (5 / 6, 1 / (3 * math.sqrt(2)), 2 / 3, 1.0))
        assert (row["Psi_mean"], row["Psi_sd"], row["Psi_min"], row["Psi_max"]) == pytest.approx(
            (3 / 4, 0.5 / math.sqrt(2), 0.5, 1.0))


def test_replicate_spread_skips_nan_and_one_replicate_has_no_sd():
    per_replicate = pd.DataFrame({"measure": "m", "target": TARGET, "replicate": [0, 1, 2],
                                  "tau_a": [0.2, np.nan, 0.6], "Psi": [np.nan, np.nan, 0.4]})
    row = replicate_spread(per_replicate).iloc[0]
    # tau over 0.2 and 0.6: mean 0.4, sd sqrt(((0.2)^2 + (0.2)^2) / 1) = 0.2 sqrt 2
    assert row["tau_a_n"] == 2
    assert (row["tau_a_mean"], row["tau_a_sd"]) == pytest.approx((0.4, 0.2 * math.sqrt(2)))
    assert row["Psi_n"] == 1 and row["Psi_mean"] == pytest.approx(0.4) and math.isnan(row["Psi_sd"])
    assert row["Psi_min"] == row["Psi_max"] == pytest.approx(0.4)


# ------------------------------------------------------------------------- the seed oracle


def test_seed_oracle_by_hand():
    # g0 against g1 cell by cell: the same pairs as m against g1 above: tau 2/3, Psi 1/2.
    result = oracle(make_table())
    assert list(result.columns) == ORACLE_COLUMNS
    assert len(result) == 1  # one pair, no mean row
    row = result.iloc[0]
    assert (row["target"], row["pair"], row["replicate_a"], row["replicate_b"]) == (TARGET, "0 vs 1", 0, 1)
    assert (row["n_used"], row["n_excluded"], row["full_grid"]) == (4, 0, True)
    assert row["tau_a"] == pytest.approx(2 / 3)
    assert row["Psi"] == pytest.approx(0.5)


@pytest.mark.parametrize("how", ["unconverged", "nan target", "missing row"])
def test_seed_oracle_uses_cells_usable_in_both(how):
    # c4 unusable in seed 1: cells c1, c2, c3 with g0 = 0.1, 0.2, 0.3 and g1 = 0.2, 0.1, 0.3:
    # tau = 1/3 and Psi = (1 + (-1)) / 2 = 0, as in test_replicate_tables_partial_replicate.
    table = make_table()
    c4_seed1 = (table["hp.seed"] == 1) & (table["hp.width"] == 2) & (table["hp.depth"] == 3)
    if how == "unconverged":
        table.loc[c4_seed1, CONVERGED_COL] = False
    elif how == "nan target":
        table.loc[c4_seed1, TARGET] = np.nan
    else:
        table = table[~c4_seed1]
    row = oracle(table).iloc[0]
    assert (row["n_used"], row["n_excluded"], row["full_grid"]) == (3, 1, False)
    assert row["tau_a"] == pytest.approx(1 / 3)
    assert row["Psi"] == pytest.approx(0.0)
    required = oracle(table, require_full_grid=True).iloc[0]
    assert required["tau_a"] == pytest.approx(1 / 3) and math.isnan(required["Psi"])


def test_seed_oracle_leaves_out_a_duplicated_cell():
    # a second row for c1 in seed 0: c1 has no single value there, so c2, c3, c4 are used:
    # g0 = 0.2, 0.3, 0.4 and g1 = 0.1, 0.3, 0.4: all 3 pairs concordant, tau 1.
    table = make_table()
    table = pd.concat([table, table.iloc[[0]].assign(**{TARGET: 0.9})], ignore_index=True)
    row = oracle(table).iloc[0]
    assert (row["n_used"], row["n_excluded"]) == (3, 1)
    assert row["tau_a"] == pytest.approx(1.0)


def test_seed_oracle_three_replicates():
    # g2 = g0: (0, 1) and (1, 2): tau 2/3, Psi 1/2, as above; (0, 2): tau 1, Psi 1.
    # mean: tau (2/3 + 1 + 2/3) / 3 = 7/9, Psi (1/2 + 1 + 1/2) / 3 = 2/3.
    result = oracle(make_table(seeds=(0, 1, 2)))
    assert list(result["pair"]) == ["0 vs 1", "0 vs 2", "1 vs 2", "mean"]
    assert list(result["tau_a"]) == pytest.approx([2 / 3, 1.0, 2 / 3, 7 / 9])
    assert list(result["Psi"]) == pytest.approx([0.5, 1.0, 0.5, 2 / 3])
    mean = result.iloc[3]
    assert math.isnan(mean["replicate_a"]) and math.isnan(mean["n_used"])


def test_seed_oracle_every_target():
    table = make_table()
    table["gen.loss_gap"] = -table[TARGET]  # a reversed target ranks the cells alike: same tau
    result = seed_oracle(table, [TARGET, "gen.loss_gap"], "hp.seed", AXES, AXES, 4)
    assert list(result["target"]) == [TARGET, "gen.loss_gap"]
    assert list(result["tau_a"]) == pytest.approx([2 / 3, 2 / 3])


def test_seed_oracle_grid_of_the_replicate_axis_alone():
    # one cell per replicate: one matched pair of models, which has no tau (n < 2)
    table = make_table().drop_duplicates("hp.seed")
    row = seed_oracle(table, [TARGET], "hp.seed", [], [], 1).iloc[0]
    assert row["n_used"] == 1 and math.isnan(row["tau_a"]) and math.isnan(row["Psi"])


@settings(max_examples=40, deadline=None)
@given(
    gaps=st.lists(st.integers(-1000, 1000), min_size=4, max_size=4, unique=True),
    scale=st.integers(1, 100),
    shift=st.integers(-500, 500),
)
def test_seed_oracle_is_one_under_a_monotone_map(gaps, scale, shift):
    """Seed 1's targets an increasing function of seed 0's (distinct integers, so the map
    x -> scale x^3 + shift is exact and keeps them distinct): tau = Psi = 1."""
    table = make_table()
    gaps = np.asarray(gaps, dtype=float)
    table.loc[table["hp.seed"] == 0, TARGET] = gaps
    table.loc[table["hp.seed"] == 1, TARGET] = scale * gaps**3 + shift
    row = oracle(table).iloc[0]
    assert row["tau_a"] == pytest.approx(1.0) and row["Psi"] == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_results_do_not_depend_on_row_order(seed):
    table = make_table(seeds=(0, 1, 2), unconverged=[(2, 0)])
    shuffled = table.sample(frac=1.0, random_state=np.random.RandomState(seed))
    pd.testing.assert_frame_equal(oracle(shuffled), oracle(table))
    pd.testing.assert_frame_equal(replicates(shuffled), replicates(table))


# ------------------------------------------------------------------- from the configuration


def test_seed_noise_floor_with_a_seed_axis():
    axis, per_replicate, spread, oracle_frame = seed_noise_floor(
        make_table(), ORIENTATIONS, [TARGET], GRID, ["width", "depth"], "seed")
    assert axis == "seed"
    pd.testing.assert_frame_equal(per_replicate, replicates(make_table()))
    pd.testing.assert_frame_equal(spread, replicate_spread(per_replicate))
    pd.testing.assert_frame_equal(oracle_frame, oracle(make_table()))


@pytest.mark.parametrize("grid, axes, replicate_axis", [
    ({"width": [1, 2], "depth": [2, 3]}, ["width", "depth"], "seed"),  # no seed axis
    ({"width": [1, 2], "depth": [2, 3], "seed": [0]}, ["width", "depth"], "seed"),  # one seed
    (GRID, ["width", "depth", "seed"], "seed"),  # seed is a hyperparameter of granulated Kendall
    (GRID, ["width", "depth"], None),  # switched off
])
def test_seed_noise_floor_without_a_replicate_axis(grid, axes, replicate_axis, tmp_path):
    """Empty tables with their columns, which survive the CSV round trip the figures rule reads."""
    table = make_table() if "seed" in grid else make_table(seeds=(0,))
    axis, per_replicate, spread, oracle_frame = seed_noise_floor(
        table, ORIENTATIONS, [TARGET], grid, axes, replicate_axis)
    assert axis is None
    for frame, columns in ((per_replicate, REPLICATE_COLUMNS), (spread, SPREAD_COLUMNS),
                           (oracle_frame, ORACLE_COLUMNS)):
        assert frame.empty and list(frame.columns) == columns
        frame.to_csv(tmp_path / "frame.csv", index=False)
        read = pd.read_csv(tmp_path / "frame.csv")
        assert read.empty and list(read.columns) == columns
