"""The generalization-stability tradeoff (Bartoldson et al. 2020): the
runs of a study, the bookkeeping of pruning instability, each run's outcome, and the
statistics across runs. No torch here: the analysis job runs in envs/analysis.yaml,
and the Snakefile plans the runs with it. The training side is prunability.stability.

Definitions (from the official code,
https://github.com/bbartoldson/GeneralizationStabilityTradeoff):

- instability of a pruning event = (a_before - a_after) / a_before, the test accuracy
  just before and just after the event, in the same epoch;
- stability (%) = 100 (1 - instability);
- a run's mean stability = the mean stability over its pruning epochs (epochs where at
  least one filter or weight was removed, or, in a noise control, targeted). A run
  that never prunes, or prunes only at the end of its first epoch (the official code's
  "at the start"), gets 100%;
- a run's outcome = its best test accuracy over the epochs from its last pruning epoch
  on (every epoch if it never pruned, or pruned only at the start), and its gap =
  train - test accuracy at that epoch (the first such epoch on a tie).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .analysis._checks import _paired
from .analysis.bootstrap import bootstrap_counts, percentile_interval, weighted_group_taus
from .analysis.ranking import kendall_tau_a, kendall_tau_b
from .double_descent import weighted_pearson

# Structured filter targets (Prune_S, Prune_L, Prune_R) and unstructured weight magnitude.
STRUCTURED_TARGETS = ("smallest", "largest", "random")
TARGETS = (*STRUCTURED_TARGETS, "magnitude")

# ------------------------------------------------------------------------ the runs


def plan_runs(settings: Mapping) -> dict[str, dict]:
    """Every run of a study, by name: the product targets x retrain_periods x seeds of
    pruning runs (``smallest-p4-s0``), the noise-control runs noise.modes x
    retrain_periods x seeds (``noise-zero-p4-s0``), and one unpruned baseline per seed
    (``baseline-s0``) when ``baseline`` is true. Each value holds what that run depends
    on: kind (prune, noise, baseline), target, retrain_period, seed, and for a noise
    run its mode."""
    runs: dict[str, dict] = {}
    for target, period, seed in itertools.product(settings["targets"], settings["retrain_periods"], settings["seeds"]):
        runs[f"{target}-p{period}-s{seed}"] = {"kind": "prune", "target": target, "retrain_period": period, "seed": seed}
    noise = settings["noise"]
    for mode, period, seed in itertools.product(noise["modes"], settings["retrain_periods"], settings["seeds"]):
        runs[f"noise-{mode}-p{period}-s{seed}"] = {
            "kind": "noise", "target": noise["target"], "mode": mode, "retrain_period": period, "seed": seed}
    if settings["baseline"]:
        for seed in settings["seeds"]:
            runs[f"baseline-s{seed}"] = {"kind": "baseline", "target": None, "retrain_period": None, "seed": seed}
    return runs


def run_group(run: Mapping) -> str:
    """What a run's dot is coloured by: its target, noise-<mode>, or baseline."""
    if run["kind"] == "noise":
        return f"noise-{run['mode']}"
    return run["target"] if run["kind"] == "prune" else "baseline"


# ------------------------------------------------------------------- bookkeeping


def instability(before: float, after: float) -> float:
    """(before - after) / before: the relative test-accuracy drop of one pruning event
    (negative when the accuracy rose). NaN when ``before`` is 0."""
    return (before - after) / before if before != 0 else float("nan")


def stability_percent(value: float) -> float:
    """Stability in percent, 100 (1 - instability)."""
    return 100.0 * (1.0 - value)


def last_pruning_epoch(epochs: pd.DataFrame) -> int:
    """The last epoch that pruned (``pruned_epoch`` true), or 0 when none did or only the
    first epoch did (the official code's "pruned at the start": such a run is treated as
    unpruned)."""
    pruned = epochs.loc[epochs["pruned_epoch"].astype(bool), "epoch"]
    last = int(pruned.max()) if len(pruned) else 0
    return last if last > 1 else 0


def mean_stability(epochs: pd.DataFrame) -> float:
    """Mean of ``stability`` over the pruning epochs; 100 when the run never pruned or
    pruned only at the start (``last_pruning_epoch`` 0)."""
    if last_pruning_epoch(epochs) == 0:
        return 100.0
    return float(epochs.loc[epochs["pruned_epoch"].astype(bool), "stability"].mean())


def run_outcome(epochs: pd.DataFrame) -> dict:
    """A run's summary from its per-epoch log (columns epoch, train_acc, test_acc,
    pruned_epoch, stability): mean stability, the number of pruning epochs, the last
    pruning epoch, and the best test accuracy from that epoch on with its epoch and gap
    (train - test accuracy there), and the final test accuracy."""
    last = last_pruning_epoch(epochs)
    after = epochs[epochs["epoch"] >= last]
    best = after.loc[after["test_acc"].idxmax()]  # idxmax: the first of equal maxima
    return {
        "mean_stability": mean_stability(epochs),
        "pruning_epochs": int(epochs["pruned_epoch"].astype(bool).sum()),
        "last_pruning_epoch": last,
        "best_test_acc": float(best["test_acc"]),
        "best_epoch": int(best["epoch"]),
        "gap_at_best": float(best["train_acc"] - best["test_acc"]),
        "final_test_acc": float(epochs["test_acc"].iloc[-1]),
    }


# ------------------------------------------------------------------- across runs

CORRELATION_COLUMNS = [
    "runs", "x", "y", "n",
    "kendall_tau_b", "kendall_tau_b_low", "kendall_tau_b_high",
    "kendall_tau_a", "kendall_tau_a_low", "kendall_tau_a_high",
    "pearson_r", "pearson_r_low", "pearson_r_high",
]


def correlation(x, y, counts: np.ndarray, level: float) -> dict:
    """Kendall tau-b (scipy's kendalltau, as the official Figure 2 script), Kendall tau-a
    (Jiang's form, as the rest of the package) and Pearson r of (x, y), each with a
    ``level`` percentile bootstrap interval over the resamples ``counts`` (resamples x n,
    from analysis.bootstrap.bootstrap_counts: how often each run is drawn). NaN with fewer than 2 runs."""
    x, y = _paired(x, y)
    row: dict = {"n": int(x.size)}
    if x.size < 2:
        return row
    counts = np.atleast_2d(counts)
    # tau-b of each resample on its expanded sample (copies of a run tie with each other)
    taus_b = [kendall_tau_b(np.repeat(x, c), np.repeat(y, c)) for c in counts]
    taus_a = weighted_group_taus(x, y, np.zeros(x.size, dtype=np.int64), counts)[:, 0]
    rs = weighted_pearson(x, y, counts)
    for name, point, resampled in (
        ("kendall_tau_b", kendall_tau_b(x, y), taus_b),
        ("kendall_tau_a", kendall_tau_a(x, y), taus_a),
        ("pearson_r", float(weighted_pearson(x, y, np.ones((1, x.size)))[0]), rs),
    ):
        row[name] = point
        row[f"{name}_low"], row[f"{name}_high"] = percentile_interval(resampled, level)
    return row


def correlations(runs: pd.DataFrame, bootstrap: Mapping) -> pd.DataFrame:
    """Mean stability against the best post-pruning test accuracy and against the gap at
    that epoch, across three sets of runs: ``pruning`` (pruning runs and baselines, as
    the paper's Figure 2), ``noise`` (noise controls and baselines) and ``all``. A set
    with fewer than 2 runs, or the same runs as one before it, is left out. Bootstrap
    resamples: ``bootstrap`` (resamples, seed, level) of the statistics section, drawn
    per set. Columns ``CORRELATION_COLUMNS``."""
    sets = {
        "pruning": runs["kind"].isin(["prune", "baseline"]),
        "noise": runs["kind"].isin(["noise", "baseline"]),
        "all": pd.Series(True, index=runs.index),
    }
    rows, seen = [], []
    for name, mask in sets.items():
        members = tuple(runs.index[mask])
        if len(members) < 2 or members in seen:
            continue
        seen.append(members)
        used = runs[mask]
        counts = bootstrap_counts(len(used), bootstrap["resamples"], bootstrap["seed"])
        for y in ("best_test_acc", "gap_at_best"):
            row = correlation(used["mean_stability"], used[y], counts, bootstrap["level"])
            rows.append({"runs": name, "x": "mean_stability", "y": y, **row})
    return pd.DataFrame(rows).reindex(columns=CORRELATION_COLUMNS)
