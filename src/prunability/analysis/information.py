"""Information between a measure, another measure and the generalization target.

- Conditional mutual information (``cmi_jiang``, ``cmi_careful``; Jiang et al. 2020 and
  the PGDL scoring code): how much the sign of a measure's difference between two
  models tells about the sign of their gap difference, once hyperparameters are held
  fixed; see those functions.
- Mutual information between two measures' predictions (``prediction_mi``): over
  ordered pairs of distinct models, V = sign(mu_i - mu_j) in {-1, 0, +1};
  ``mi`` = I(V_other; V_base) / H(V_base) and ``cmi_given_base`` =
  I(V_other; V_g | V_base) / H(V_g | V_base), V_g the sign of the target's difference.
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ._checks import _as_float_array, _paired, _require_columns
from .rows import CONVERGED_COL, MEASURE_PREFIX, _measure_target_pairs

# ------------------------------------------------------ mutual information between predictions


def _sign_codes(values: np.ndarray) -> np.ndarray:
    """n x n matrix of sign(v_i - v_j) + 1 in {0, 1, 2}."""
    return (np.sign(values[:, None] - values[None, :]) + 1).astype(np.int64)


def weighted_pair_counts(codes: np.ndarray, n_codes: int, counts=None) -> np.ndarray:
    """How many ordered pairs (k, l), k != l, carry each code 0 .. n_codes - 1 of the
    n x n matrix ``codes``: an array (n_codes,); with ``counts`` (resamples x n) each pair
    weighs c_k c_l, giving (resamples, n_codes)."""
    off_diagonal = ~np.eye(len(codes), dtype=bool)
    if counts is None:
        return np.bincount(codes[off_diagonal], minlength=n_codes).astype(float)
    counts = np.asarray(counts, dtype=float)
    result = np.empty((len(counts), n_codes))
    for code in range(n_codes):
        result[:, code] = (counts * (counts @ ((codes == code) & off_diagonal))).sum(axis=1)
    return result


def _normalised_mi(joint: np.ndarray) -> np.ndarray:
    """I(a; b) / H(a) of count tables ``joint[..., a, b]``; NaN where H(a) = 0."""
    h = _entropy_bits(joint.sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(h > 0, _mi_bits(joint) / h, np.nan)


def prediction_mi(other, base, target, counts=None) -> dict:
    """How much two measures' predictions overlap (claim K6 of Kuhn et al. 2021; which
    quantity the paper computes is not stated in its abstract, so both are given).

    Over ordered pairs of distinct models, V = sign(v_i - v_j) in {-1, 0, +1}:
    ``mi`` = I(V_other; V_base) / H(V_base), and ``cmi_given_base`` =
    I(V_other; V_target | V_base) / H(V_target | V_base), what ``other`` adds about the
    target once ``base`` is known. Both in [0, 1], NaN when the denominator is 0, and
    unchanged by a measure's orientation. With ``counts`` (resamples x n) each resample's
    values, as arrays.
    """
    other, base = _paired(other, base)
    _, target = _paired(other, target)
    code = (_sign_codes(base) * 3 + _sign_codes(other)) * 3 + _sign_codes(target)
    joint = weighted_pair_counts(code, 27, counts).reshape(-1, 3, 3, 3)  # [.., base, other, target]
    mi = _normalised_mi(joint.sum(axis=3))
    p_base = joint.sum(axis=(2, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        p_base = p_base / p_base.sum(axis=1, keepdims=True)
        mi_given = np.nansum(p_base * _mi_bits(joint), axis=1)
        h_given = np.nansum(p_base * _entropy_bits(joint.sum(axis=2)), axis=1)
        cmi = np.where(h_given > 0, mi_given / h_given, np.nan)
    if counts is None:
        return {"mi": float(mi[0]), "cmi_given_base": float(cmi[0])}
    return {"mi": mi, "cmi_given_base": cmi}


def prediction_mi_table(table: pd.DataFrame, measures: Sequence[str], target: str) -> pd.DataFrame:
    """``prediction_mi`` for every ordered pair of ``measures`` (names without the
    ``measure.`` prefix) against ``target`` (a column name), over the converged models
    with finite values of both measures and the target. Columns base, other, n_used,
    mi, cmi_given_base."""
    _require_columns(table, [CONVERGED_COL, target, *(MEASURE_PREFIX + m for m in measures)], "columns")
    converged = table[CONVERGED_COL].eq(True).fillna(False).to_numpy(dtype=bool)
    gap = _as_float_array(table[target])
    values = {m: _as_float_array(table[MEASURE_PREFIX + m]) for m in measures}
    rows = []
    for base in measures:
        for other in measures:
            mask = converged & np.isfinite(gap) & np.isfinite(values[base]) & np.isfinite(values[other])
            result = prediction_mi(values[other][mask], values[base][mask], gap[mask])
            rows.append({"base": base, "other": other, "n_used": int(mask.sum()), **result})
    return pd.DataFrame(rows, columns=["base", "other", "n_used", "mi", "cmi_given_base"])


# -------------------------------------------------------------------- conditional mutual information


def _entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of ``counts`` (0 log 0 = 0); NaN for an all-zero row."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / total
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total[..., 0] > 0, terms.sum(axis=-1), np.nan)


def _mi_bits(tables: np.ndarray) -> np.ndarray:
    """I(a; b) in bits of each count table ``tables[..., a, b]``: H(a) + H(b) - H(a, b)."""
    flat = tables.reshape(*tables.shape[:-2], tables.shape[-2] * tables.shape[-1])
    return _entropy_bits(tables.sum(axis=-1)) + _entropy_bits(tables.sum(axis=-2)) - _entropy_bits(flat)


def _pair_tables(measure, gap, hp: pd.DataFrame, values: Mapping[str, Sequence], axes: Sequence[str], self_pairs: bool) -> np.ndarray:
    """Counts T[cell, a, b] over ordered model pairs (i, j): a = [gap_i > gap_j],
    b = [mu_i > mu_j] (strict), cell = the joint values (v_i(h), v_j(h)) of every
    conditioning axis h in ``axes`` (all |Theta_h|^2 combinations, empty ones included)."""
    measure, gap = np.asarray(measure, dtype=float), np.asarray(gap, dtype=float)
    n = len(measure)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = np.ones((n, n), dtype=bool) if self_pairs else (i != j)
    i, j = i[keep], j[keep]
    cell = np.zeros(len(i), dtype=np.int64)
    n_cells = 1
    for axis in axes:
        index = {v: k for k, v in enumerate(values[axis])}
        code = hp[axis].map(index).to_numpy()
        if np.isnan(code.astype(float)).any():
            raise ValueError(f"{axis}: a model's value is not among the axis values {list(values[axis])}")
        k = len(values[axis])
        cell = (cell * k + code[i]) * k + code[j]
        n_cells *= k * k
    ab = 2 * (gap[i] > gap[j]) + (measure[i] > measure[j])
    counts = np.bincount(cell * 4 + ab, minlength=n_cells * 4)
    return counts.reshape(n_cells, 2, 2)


def cmi_jiang(measure, gap, hp: pd.DataFrame, values: Mapping[str, Sequence]) -> dict:
    """Conditional mutual information exactly as Jiang et al.'s PGDL scoring code computes it.

    Adapted from the scoring program of https://competitions.codalab.org/competitions/25301
    (Jiang et al. 2020, PGDL; docs/references.md).

    For every *ordered* pair of distinct axes (h1, h2): count ordered model pairs
    (i, j) *including i = j* in cells of the joint values of h1 and h2; per cell, the
    mutual information I_c between the gap sign a and the measure sign b (strict
    comparisons, so ties and i = j count as "not greater") and the entropy H_c of a,
    in bits; score = mean_c I_c / mean_c H_c, unweighted over all |Theta_h1|^2
    |Theta_h2|^2 cells. CMI = min over the pairs. ``measure`` should be oriented.
    Two differences from the scoring code, neither changing a full grid's value:
    an empty cell (partial grids) is skipped, where the code gets NaN, and 0 log 0
    is 0, where the code adds 1e-12 inside the logarithm.

    Returns {"cmi", "scores": {(h1, h2): score}, "empty_cells": {(h1, h2): count}}.
    """
    scores, empty = {}, {}
    for h1 in values:
        for h2 in values:
            if h1 == h2:
                continue
            tables = _pair_tables(measure, gap, hp, values, [h1, h2], self_pairs=True)
            filled = tables.reshape(len(tables), 4).sum(axis=1) > 0
            mi, h = _mi_bits(tables[filled]), _entropy_bits(tables[filled].sum(axis=2))
            scores[(h1, h2)] = float(mi.mean() / h.mean()) if filled.any() and h.mean() > 0 else float("nan")
            empty[(h1, h2)] = int((~filled).sum())
    finite = [v for v in scores.values() if math.isfinite(v)]
    return {"cmi": min(finite) if finite else float("nan"), "scores": scores, "empty_cells": empty}


def cmi_careful(measure, gap, hp: pd.DataFrame, values: Mapping[str, Sequence], max_set_size: int = 2) -> dict:
    """A careful variant of ``cmi_jiang``: the normalised conditional mutual information
    I(a; b | S) / H(a | S) over ordered pairs of *distinct* models, cells weighted by
    their number of pairs, minimised over every set S of at most ``max_set_size`` axes
    (the empty set included, so it is never above the unconditional value).

    Returns {"cmi", "scores": {S (a tuple of axes): score}}.
    """
    scores = {}
    axes = list(values)
    for size in range(max_set_size + 1):
        for subset in itertools.combinations(axes, size):
            tables = _pair_tables(measure, gap, hp, values, list(subset), self_pairs=False)
            weight = tables.reshape(len(tables), 4).sum(axis=1)
            filled = weight > 0
            p = weight[filled] / weight.sum()
            mi, h = _mi_bits(tables[filled]), _entropy_bits(tables[filled].sum(axis=2))
            conditional_h = float((p * h).sum())
            scores[subset] = float((p * mi).sum()) / conditional_h if conditional_h > 0 else float("nan")
    finite = [v for v in scores.values() if math.isfinite(v)]
    return {"cmi": min(finite) if finite else float("nan"), "scores": scores}


def cmi_tables(
    table: pd.DataFrame,
    orientations: Mapping[str, int],
    targets: Sequence[str],
    values: Mapping[str, Sequence],
    max_set_size: int = 2,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``cmi_jiang`` and ``cmi_careful`` of every (measure, target) pair over its
    ``usable`` rows; ``values`` maps each conditioning axis (``"hp.depth"``) to the
    grid's values. Returns (one row per pair: measure, target, n_used, cmi_jiang,
    jiang_min_pair, jiang_empty_cells, cmi_careful, careful_min_set; one row per pair
    and conditioning set: measure, target, variant, conditioning, score)."""
    rows, scores = [], []
    for name, _, target_col, _, counts, used, oriented, gap in _measure_target_pairs(table, orientations, targets):
        jiang = cmi_jiang(oriented, gap, used, values)
        careful = cmi_careful(oriented, gap, used, values, max_set_size)
        rows.append(
            {
                "measure": name,
                "target": target_col,
                "n_used": counts["n_used"],
                "cmi_jiang": jiang["cmi"],
                "jiang_min_pair": _argmin_label(jiang["scores"]),
                "jiang_empty_cells": sum(jiang["empty_cells"].values()),
                "cmi_careful": careful["cmi"],
                "careful_min_set": _argmin_label(careful["scores"]),
            }
        )
        for variant, result in (("jiang", jiang), ("careful", careful)):
            for conditioning, score in result["scores"].items():
                scores.append({"measure": name, "target": target_col, "variant": variant,
                               "conditioning": " & ".join(conditioning) or "(none)", "score": score})
    return pd.DataFrame(rows), pd.DataFrame(scores, columns=["measure", "target", "variant", "conditioning", "score"])


def _argmin_label(scores: Mapping[tuple, float]) -> str:
    """The conditioning set with the smallest finite score, as 'a & b' ('' if none)."""
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}
    if not finite:
        return ""
    return " & ".join(min(finite, key=finite.get)) or "(none)"
