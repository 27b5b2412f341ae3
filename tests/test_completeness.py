"""Tests for prunability.analysis.completeness: the grid cells the statistics lack, the
partial-grid flags and the duplicate rows of a cell, against values worked out by hand.
"""

from __future__ import annotations

import math

import pandas as pd

from prunability.analysis.completeness import duplicate_cells, flag_partial_grid, grid_completeness

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
    assert duplicate_cells(table, ["hp.width", "hp.depth"]) == 2
    # on one axis only, (1), (2), (3) repeat the same way
    assert duplicate_cells(table, ["hp.width"]) == 2
    assert duplicate_cells(table.iloc[[0, 3, 5]], ["hp.width", "hp.depth"]) == 0
