"""Input checks shared by the analysis modules: float arrays (pandas NA as NaN),
paired arrays, orientations and required columns."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd


def _as_float_array(values) -> np.ndarray:
    """1-D float64 array; pandas NA / None become NaN."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float).reshape(-1)


def _paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = _as_float_array(x)
    y = _as_float_array(y)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    return x, y


def _check_orientation(orientation) -> int:
    if orientation not in (-1, 1) or isinstance(orientation, bool):
        raise ValueError(f"orientation must be +1 or -1, got {orientation!r}")
    return int(orientation)


def _require_columns(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"{what} missing from the table: {missing}")
