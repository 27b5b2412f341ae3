"""prunability.sensitivity: a family remeasured on a subset of a study's models with
other settings, and Kendall's tau before and after (the workflow run is in
tests/test_workflow.py, on its end-to-end study)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from prunability.sensitivity import parse_setting, spread_subset, tau_change
from prunability.config import ConfigError


def test_spread_subset_takes_the_ends_and_spreads_between():
    models = [f"m{i}" for i in range(10)]
    assert spread_subset(models, 3) == ["m0", "m4", "m9"]  # linspace(0, 9, 3) = 0, 4.5, 9 -> 0, 4 (half to even), 9
    assert spread_subset(models, 2) == ["m0", "m9"]
    assert spread_subset(models, 10) == models and spread_subset(models, 50) == models


def test_tau_change_by_hand():
    cells = ["a", "b", "c", "d"]
    target = pd.Series([1.0, 2.0, 3.0, 4.0], index=cells)
    before = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [4.0, 3.0, 2.0, 1.0]}, index=cells)
    # x: one pair (c, d) swapped -> 5 concordant, 1 discordant of 6: tau 4/6
    after = pd.DataFrame({"x": [1.0, 2.0, 4.0, 3.0], "y": [4.0, 3.0, 2.0, np.nan]}, index=cells)
    result = tau_change(before, after, target, {"y": -1}).set_index("measure")
    assert result.loc["x", "tau_study"] == 1.0 and result.loc["x", "tau_new"] == pytest.approx(4 / 6)
    assert result.loc["x", "tau_change"] == pytest.approx(-2 / 6)
    assert result.loc["x", "largest_value_change"] == 1.0
    # y: orientation -1 turns a falling measure into a predictor; the NaN model is left out of both
    assert result.loc["y", "n_models"] == 3
    assert result.loc["y", "tau_study"] == 1.0 and result.loc["y", "tau_new"] == 1.0 and result.loc["y", "tau_change"] == 0.0


def test_tau_change_of_a_measure_with_no_finite_value_is_nan():
    cells = ["a", "b"]
    result = tau_change(pd.DataFrame({"x": [1.0, 2.0]}, index=cells), pd.DataFrame({"x": [np.nan, np.nan]}, index=cells),
                        pd.Series([1.0, 2.0], index=cells), {})
    assert result.loc[0, "n_models"] == 0 and math.isnan(result.loc[0, "tau_new"])


def test_parse_setting():
    assert parse_setting("resolution=0.001") == ("resolution", 0.001)
    assert parse_setting("rel_tol_sweep=[0.01, 0.1]") == ("rel_tol_sweep", [0.01, 0.1])
    assert parse_setting("fold_bn=false") == ("fold_bn", False)
    with pytest.raises(ConfigError, match="key=value"):
        parse_setting("resolution")
