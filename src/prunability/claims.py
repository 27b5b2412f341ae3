"""The paper's claims K1-K6 (paraphrased from the abstract of Kuhn et al. 2021, arXiv v1),
each tested by one statistic with a verdict.

A verdict needs the whole bootstrap interval on one side of a threshold:

- ``supported``: the interval lies where the claim says (e.g. tau's lower end above
  ``tau_threshold`` for "highly predictive");
- ``not supported``: it does not, which includes an interval straddling the
  threshold (the study cannot tell);
- ``not tested in this study``: the study lacks what the test needs (a family that
  was not computed, a setting that is not part of the study, or a definition).

The thresholds are ours (the paper gives no numbers) and are config settings:
``tau_threshold`` separates a "poor" from a "high" rank correlation, ``mi_threshold``
bounds a "low" normalised mutual information.

Each test is one function registered with ``claim_test(<claim>)``; ``claims_table``
runs them in turn.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from . import double_descent
from .analysis.bootstrap import percentile_interval, weighted_group_taus
from .analysis.information import prediction_mi
from .analysis.rows import CONVERGED_COL, MEASURE_PREFIX
from .families import baseline_measures, measures_with_role

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
NOT_TESTED = "not tested in this study"

COLUMNS = ["claim", "statement", "statistic", "value", "ci_low", "ci_high", "verdict", "rule", "note"]

STATEMENTS = {
    "K1": "Simplicity measures built on parameter counts or norms fail for overparameterized nets.",
    "K2": "Prunability is the smallest fraction of parameters that can be kept under pruning without hurting the training loss.",
    "K3": "Prunability is highly predictive of generalization across a large set of CNNs.",
    "K4": "Unlike existing pruning-based measures, prunability does not grow with network size.",
    "K5": "In a double-descent setting, prunability correlates highly with the test loss.",
    "K6": "Prunability's success is not explained by margin, flatness or optimization speed: "
    "it predicts better than the flatness measures and shares little information with the baselines.",
}


def _row(claim: str, statistic: str, rule: str, value=np.nan, interval=(np.nan, np.nan), verdict=NOT_TESTED, note="") -> dict:
    return {"claim": claim, "statement": STATEMENTS[claim], "statistic": statistic, "value": value,
            "ci_low": interval[0], "ci_high": interval[1], "verdict": verdict, "rule": rule, "note": note}


def verdict_above(interval: tuple[float, float], threshold: float) -> str:
    """supported iff the whole interval is above ``threshold``."""
    return SUPPORTED if interval[0] > threshold else NOT_SUPPORTED


def verdict_below(interval: tuple[float, float], threshold: float) -> str:
    """supported iff the whole interval is below ``threshold``."""
    return SUPPORTED if interval[1] < threshold else NOT_SUPPORTED


def norm_measures(info: pd.DataFrame) -> list[str]:
    """The count- and norm-based measures of K1: the norms family without the
    margin-normalised ones (margin is a K6 baseline, not a norm)."""
    return [name for name in measures_with_role(info, "norm") if "margin" not in name]


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def prunable_count(table: pd.DataFrame) -> tuple[np.ndarray | None, str, str]:
    """The size K4 is about, per model: (values, name, note).

    |P|, the count of prunable Conv/Linear weights (``train.n_prunable``), is what
    prunability is a fraction of. Results from before it was recorded lack it (or hold
    only NaN): then every parameter (``train.n_parameters``, BatchNorm and biases
    included) stands in, and the note says so. Neither column: no values."""
    if "train.n_prunable" in table and np.isfinite(table["train.n_prunable"].to_numpy(dtype=float)).any():
        return table["train.n_prunable"].to_numpy(dtype=float), "|P|", ""
    if "train.n_parameters" in table:
        return (table["train.n_parameters"].to_numpy(dtype=float), "parameter count",
                "train.n_prunable not recorded in these results: all parameters (BatchNorm and biases included) "
                "stand in for |P|")
    return None, "|P|", "the table records no model size (train.n_prunable, train.n_parameters)"


def _summary_row(summary: pd.DataFrame, measure: str, target: str) -> pd.Series:
    return summary[(summary["measure"] == measure) & (summary["target"] == target)].iloc[0]


def _best(summary: pd.DataFrame, measures: list[str], target: str) -> str | None:
    """The measure of ``measures`` with the largest finite tau_a against ``target``."""
    rows = summary[summary["measure"].isin(measures) & (summary["target"] == target)].dropna(subset=["tau_a"])
    return None if rows.empty else rows.sort_values("tau_a", ascending=False)["measure"].iloc[0]


def _oriented(table: pd.DataFrame, info: pd.DataFrame, measure: str) -> np.ndarray:
    orientation = int(info.set_index("name").loc[measure, "orientation"])
    return orientation * table[MEASURE_PREFIX + measure].to_numpy(dtype=float)


def _used(table: pd.DataFrame, *columns: np.ndarray) -> np.ndarray:
    """Converged models with every one of ``columns`` finite."""
    mask = table[CONVERGED_COL].eq(True).to_numpy(dtype=bool, copy=True)
    for column in columns:
        mask &= np.isfinite(column)
    return mask


def _bootstrap_tau(table: pd.DataFrame, x: np.ndarray, y: np.ndarray, counts: np.ndarray, mask=None) -> np.ndarray:
    """tau_a of (x, y) in every resample, over ``mask`` (default: converged models with both finite)."""
    mask = _used(table, x, y) if mask is None else mask
    if not mask.any():
        return np.full(len(counts), np.nan)
    return weighted_group_taus(x[mask], y[mask], np.zeros(int(mask.sum()), dtype=np.int64), counts[:, mask])[:, 0]


@dataclass(frozen=True)
class ClaimInputs:
    """What every claim's test reads. ``summary`` is the statistics rule's summary (tau_a,
    Psi, their intervals and ``full_grid``); ``target`` a column name such as
    ``"gen.acc_gap"``; ``counts`` the bootstrap resamples over the rows of ``table`` that
    gave the summary's intervals; ``sweep_axis`` the grid axis of a double-descent sweep
    (None: K5 is not tested)."""

    table: pd.DataFrame
    info: pd.DataFrame
    summary: pd.DataFrame
    target: str
    counts: np.ndarray
    level: float
    tau_threshold: float
    mi_threshold: float
    sweep_axis: str | None = None

    @property
    def pct(self) -> str:
        return f"{100 * self.level:g}%"

    @property
    def ones(self) -> np.ndarray:
        """The one "resample" that is the data itself."""
        return np.ones((1, len(self.table)))

    @property
    def has_prunability(self) -> bool:
        return "prunability" in set(self.info["name"])

    def summarised(self, measures) -> list[str]:
        """``measures`` that the summary has rows for."""
        return [m for m in measures if m in set(self.summary["measure"])]


# The claims' tests in the order of the table, each ``fn(ClaimInputs) -> list of rows``.
CLAIM_TESTS: list[tuple[str, Callable[[ClaimInputs], list[dict]]]] = []


def claim_test(claim: str):
    """Register ``fn(ClaimInputs) -> list[dict]`` (rows made by ``_row``) as a test of ``claim``."""
    if claim not in STATEMENTS:
        raise ValueError(f"unknown claim {claim!r}; known: {sorted(STATEMENTS)}")

    def decorator(fn):
        CLAIM_TESTS.append((claim, fn))
        return fn

    return decorator


@claim_test("K1")
def best_norm_measure_ranks_poorly(c: ClaimInputs) -> list[dict]:
    """The best count or norm measure still ranks poorly."""
    candidates = c.summarised(norm_measures(c.info))
    best = _best(c.summary, candidates, c.target)
    rule = f"supported iff the {c.pct} interval of the best count/norm measure's tau lies below {c.tau_threshold:g}"
    if best is None:
        return [_row("K1", "max tau over count/norm measures", rule, note="the norms family was not computed")]
    r = _summary_row(c.summary, best, c.target)
    interval = (r["tau_a_low"], r["tau_a_high"])
    return [_row("K1", f"tau of the best count/norm measure ({best})", rule, r["tau_a"], interval,
                 verdict_below(interval, c.tau_threshold), f"best of {len(candidates)} count/norm measures by tau")]


@claim_test("K2")
def prunability_is_defined(c: ClaimInputs) -> list[dict]:
    """A definition: the package implements it."""
    return [_row("K2", "definition", "a definition, not an empirical claim",
                 note="implemented as measure.prunability (prunability.measures.pruning)" if c.has_prunability
                 else "the pruning family was not computed")]


@claim_test("K3")
def prunability_predicts_the_target(c: ClaimInputs) -> list[dict]:
    """Prunability predicts the target, by tau and by Psi."""
    rows = []
    for statistic, column in (("tau", "tau_a"), ("Psi", "Psi")):
        rule = f"supported iff the {c.pct} interval of prunability's {statistic} lies above {c.tau_threshold:g}"
        if not c.has_prunability:
            rows.append(_row("K3", f"{statistic} of prunability", rule, note="the pruning family was not computed"))
            continue
        r = _summary_row(c.summary, "prunability", c.target)
        interval = (r[f"{column}_low"], r[f"{column}_high"])
        note = "" if column == "tau_a" or r["full_grid"] else f"partial grid: cells without a usable model: {int(r['grid_cells_missing'])}"
        verdict = verdict_above(interval, c.tau_threshold) if math.isfinite(r[column]) else NOT_TESTED
        rows.append(_row("K3", f"{statistic} of prunability", rule, r[column], interval, verdict, note))
    return rows


@claim_test("K4")
def prunability_does_not_grow_with_size(c: ClaimInputs) -> list[dict]:
    """Prunability does not grow with the network's size |P| (the kept count does)."""
    table = c.table
    size, size_name, size_note = prunable_count(table)
    statistic = f"tau({size_name}, prunability)"
    rule = f"supported iff the {c.pct} interval of {statistic} lies below {c.tau_threshold:g}" + (
        "; |P| = the number of prunable Conv/Linear weights" if size_name == "|P|" else "")
    if not c.has_prunability:
        return [_row("K4", statistic, rule, note="the pruning family was not computed")]
    if size is None:
        return [_row("K4", statistic, rule, note=size_note)]
    prunability = table["measure.prunability"].to_numpy(dtype=float)
    if np.unique(size[_used(table, size, prunability)]).size < 2:
        return [_row("K4", statistic, rule, note=_join("every model used has the same size", size_note))]
    value = float(_bootstrap_tau(table, size, prunability, c.ones)[0])
    interval = percentile_interval(_bootstrap_tau(table, size, prunability, c.counts), c.level)
    kept_note = ""
    if "measure.kept_count" in table:
        kept = table["measure.kept_count"].to_numpy(dtype=float)
        kept_note = f"tau({size_name}, kept count kappa) = {float(_bootstrap_tau(table, size, kept, c.ones)[0]):.3f}"
    return [_row("K4", statistic, rule, value, interval, verdict_below(interval, c.tau_threshold),
                 _join(kept_note, size_note))]


@claim_test("K5")
def prunability_tracks_the_test_loss_across_a_sweep(c: ClaimInputs) -> list[dict]:
    """Across a double-descent sweep, prunability ranks the models by their test loss."""
    table, sweep_axis = c.table, c.sweep_axis
    statistic = f"tau(prunability, test loss) across the {sweep_axis or 'width'} sweep"
    rule = f"supported iff the {c.pct} interval of {statistic} lies above {c.tau_threshold:g}"
    if sweep_axis is None:
        return [_row("K5", statistic, rule, note="not a double-descent study (double_descent.sweep_axis is null)")]
    if not c.has_prunability:
        return [_row("K5", statistic, rule, note="the pruning family was not computed")]
    orientation = int(c.info.set_index("name").loc["prunability", "orientation"])
    r = double_descent.sweep_correlations(table, {"prunability": orientation}, ["gen.test_loss"], c.counts, c.level).iloc[0]
    interval = (r["tau_a_low"], r["tau_a_high"])
    used = _used(table, table["measure.prunability"].to_numpy(dtype=float), table["gen.test_loss"].to_numpy(dtype=float))
    values = table.loc[used, f"hp.{sweep_axis}"]
    note = (f"{r['n_used']} models over {values.nunique()} values of {sweep_axis}; "
            f"Spearman rho {r['spearman_rho']:.3f} [{r['spearman_rho_low']:.3f}, {r['spearman_rho_high']:.3f}], "
            f"Pearson r {r['pearson_r']:.3f} [{r['pearson_r_low']:.3f}, {r['pearson_r_high']:.3f}]")
    verdict = verdict_above(interval, c.tau_threshold) if math.isfinite(r["tau_a"]) else NOT_TESTED
    return [_row("K5", statistic, rule, r["tau_a"], interval, verdict, note)]


@claim_test("K6")
def prunability_beats_the_best_flatness_measure(c: ClaimInputs) -> list[dict]:
    """Better than the best flatness measure, by a paired bootstrap of the tau difference."""
    table = c.table
    best = _best(c.summary, c.summarised(measures_with_role(c.info, "flatness")), c.target)
    rule = f"supported iff the {c.pct} interval of tau(prunability) - tau(best flatness measure) lies above 0"
    if not c.has_prunability or best is None:
        return [_row("K6", "tau(prunability) - tau(best flatness measure)", rule,
                     note="needs the pruning and flatness families")]
    gap = table[c.target].to_numpy(dtype=float)
    ours, theirs = _oriented(table, c.info, "prunability"), _oriented(table, c.info, best)
    both = _used(table, ours, theirs, gap)  # the same models for both taus

    def difference(counts):
        return _bootstrap_tau(table, ours, gap, counts, both) - _bootstrap_tau(table, theirs, gap, counts, both)

    interval = percentile_interval(difference(c.counts), c.level)
    return [_row("K6", f"tau(prunability) - tau({best})", rule, float(difference(c.ones)[0]), interval,
                 verdict_above(interval, 0.0), "the same models and resamples for both measures")]


@claim_test("K6")
def prunability_shares_little_information_with_the_baselines(c: ClaimInputs) -> list[dict]:
    """Prunability's predictions share little information with the baselines' predictions."""
    table = c.table
    baselines = c.summarised(baseline_measures(c.info))
    rule = (f"supported iff the {c.pct} interval of the median over baselines of "
            f"I(V_prunability; V_baseline) / H(V_baseline) lies below {c.mi_threshold:g}")
    if not c.has_prunability or not baselines:
        return [_row("K6", "median MI with the baselines' predictions", rule, note="needs the pruning family and a baseline family")]

    def median_mi(counts):
        values = []
        x, g = table["measure.prunability"].to_numpy(dtype=float), table[c.target].to_numpy(dtype=float)
        for base in baselines:
            b = table[MEASURE_PREFIX + base].to_numpy(dtype=float)
            mask = _used(table, x, b, g)
            values.append(prediction_mi(x[mask], b[mask], g[mask], counts[:, mask])["mi"])
        values = np.stack(values, axis=1)
        # a constant baseline has no entropy to share (NaN) and is left out of the median
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(values, axis=1)

    interval = percentile_interval(median_mi(c.counts), c.level)
    return [_row("K6", "median over baselines of I(V_prunability; V_baseline) / H(V_baseline)", rule,
                 float(median_mi(c.ones)[0]), interval, verdict_below(interval, c.mi_threshold),
                 f"{len(baselines)} baselines (every family but pruning)")]


def claims_table(
    table: pd.DataFrame,
    info: pd.DataFrame,
    summary: pd.DataFrame,
    target: str,
    counts: np.ndarray,
    level: float,
    tau_threshold: float,
    mi_threshold: float,
    sweep_axis: str | None = None,
) -> pd.DataFrame:
    """One row per tested statistic of K1-K6 (columns ``COLUMNS``), from every registered
    claim test in turn (arguments: ``ClaimInputs``)."""
    inputs = ClaimInputs(table, info, summary, target, counts, level, tau_threshold, mi_threshold, sweep_axis)
    return pd.DataFrame([row for _, test in CLAIM_TESTS for row in test(inputs)], columns=COLUMNS)
