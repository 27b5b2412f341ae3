"""The rows that enter the statistics.

The input is the tidy table written by ``collect_table``: one row per trained
model, with hyperparameter columns ``hp.<axis>``, generalization targets
``gen.<name>`` (e.g. ``gen.acc_gap``), measures ``measure.<name>`` and the flag
``is.converged``.

Rows used (``usable``): a model counts only if it converged (``is.converged``
is True) and both its measure and its target are finite.

``_measure_target_pairs`` walks every (measure, target) pair with its usable rows:
the summary tables, the bootstrap intervals and the CMI tables share it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ._checks import _as_float_array, _check_orientation, _require_columns

CONVERGED_COL = "is.converged"
MEASURE_PREFIX = "measure."


def usable(table: pd.DataFrame, measure_col: str, target_col: str) -> tuple[np.ndarray, dict]:
    """Rows that enter the statistics for one (measure, target) pair.

    A row is used iff ``is.converged`` is True and both ``table[measure_col]``
    and ``table[target_col]`` are finite (not NaN, not +-inf). Returns the
    boolean mask and the counts ``{"n_used", "excluded_unconverged",
    "excluded_nonfinite"}``; a row both unconverged and non-finite is counted
    as unconverged only, so the three counts add up to ``len(table)``.
    A missing ``is.converged`` value (NA) counts as not converged.
    """
    _require_columns(table, [CONVERGED_COL, measure_col, target_col], "columns")
    converged = table[CONVERGED_COL].eq(True).fillna(False).to_numpy(dtype=bool)
    finite = np.isfinite(_as_float_array(table[measure_col])) & np.isfinite(
        _as_float_array(table[target_col])
    )
    mask = converged & finite
    counts = {
        "n_used": int(mask.sum()),
        "excluded_unconverged": int((~converged).sum()),
        "excluded_nonfinite": int((converged & ~finite).sum()),
    }
    return mask, counts


def _measure_target_pairs(table: pd.DataFrame, orientations: Mapping[str, int], targets: Sequence[str]):
    """For every (measure, target) pair: name, orientation, target column, ``usable``
    mask and counts, the usable rows, and their oriented measure and target arrays."""
    for name, orientation in orientations.items():
        orientation = _check_orientation(orientation)
        measure_col = MEASURE_PREFIX + name
        for target_col in targets:
            mask, counts = usable(table, measure_col, target_col)
            rows = table.loc[mask]
            oriented = orientation * _as_float_array(rows[measure_col])
            yield name, orientation, target_col, mask, counts, rows, oriented, _as_float_array(rows[target_col])
