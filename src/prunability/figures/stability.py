"""Figures of the generalization-stability study (Bartoldson et al. 2020; optional)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .style import _placeholder, _save


_STABILITY_GROUPS = ["smallest", "largest", "random", "magnitude", "noise-zero", "noise-gaussian", "baseline"]
_STABILITY_COLOURS = dict(zip(_STABILITY_GROUPS, ["C0", "C3", "C2", "C4", "C1", "C5", "0.35"]))
_STABILITY_LABELS = {"smallest": "Prune_S (smallest filters)", "largest": "Prune_L (largest filters)",
                     "random": "Prune_R (random filters)", "magnitude": "unstructured magnitude",
                     "noise-zero": "noise control: zeroed", "noise-gaussian": "noise control: Gaussian",
                     "baseline": "unpruned baseline"}
_PERIOD_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def _correlation_text(correlations: pd.DataFrame, y: str) -> str:
    """'τ_b = .. [..] · r = .. [..] (n runs, <set>)' for the pruning set, or all runs."""
    rows = correlations[correlations["y"] == y]
    if rows.empty:
        return "fewer than 2 runs: no correlation"
    row = rows.iloc[0]
    if not np.isfinite(row["kendall_tau_b"]):
        return f"{row['runs']} runs (n = {row['n']}): no correlation (a constant quantity)"
    return (f"Kendall τ_b = {row['kendall_tau_b']:.2f} [{row['kendall_tau_b_low']:.2f}, {row['kendall_tau_b_high']:.2f}]"
            f",  Pearson r = {row['pearson_r']:.2f} [{row['pearson_r_low']:.2f}, {row['pearson_r_high']:.2f}]"
            f"\n({row['runs']} runs, n = {row['n']})")


def stability_vs_accuracy(runs: pd.DataFrame, correlations: pd.DataFrame, path) -> None:
    """Bartoldson et al.'s Fig. 2: each run's mean stability against its best test
    accuracy after pruning (left) and the gap at that epoch (right); colour = target (or
    noise control, baseline), marker = retrain period. Titles: τ_b and r with intervals."""
    if runs.empty:
        _placeholder(path, "no generalization-stability runs")
        return
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5.2))
    periods = sorted(runs["retrain_period"].dropna().unique())
    markers = {period: _PERIOD_MARKERS[i % len(_PERIOD_MARKERS)] for i, period in enumerate(periods)}
    for ax, (y, label) in zip(axes, [("best_test_acc", "best test accuracy after pruning (%)"),
                                     ("gap_at_best", "train − test accuracy at that epoch (%)")]):
        for group in [g for g in _STABILITY_GROUPS if g in set(runs["group"])]:
            for period, part in runs[runs["group"] == group].groupby(runs["retrain_period"].fillna(-1)):
                baseline = group == "baseline"
                ax.scatter(part["mean_stability"], 100 * part[y], s=150 if baseline else 46, alpha=0.85,
                           color=_STABILITY_COLOURS[group], marker="*" if baseline else markers[period],
                           edgecolor="white", linewidth=0.5, zorder=3 if baseline else 2)
        ax.set_xlabel("mean stability of the run's pruning events (%)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.set_title(_correlation_text(correlations, y), fontsize=9)
    handles = [matplotlib.lines.Line2D([], [], linestyle="", marker="*" if g == "baseline" else "o",
                                       markersize=11 if g == "baseline" else 7, color=_STABILITY_COLOURS[g],
                                       label=_STABILITY_LABELS[g]) for g in _STABILITY_GROUPS if g in set(runs["group"])]
    handles += [matplotlib.lines.Line2D([], [], linestyle="", marker=markers[p], color="0.3",
                                        label=f"retrain period {p:g}") for p in periods]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Generalization-stability tradeoff: {len(runs)} runs (Bartoldson et al. 2020, Fig. 2 style)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    _save(fig, path)


def stability_curves(epochs: pd.DataFrame, runs: pd.DataFrame, path) -> None:
    """Test accuracy over epochs of one seed's runs: one panel per target (or noise
    control), one line per retrain period, the unpruned baseline dashed in every panel;
    every pruning event is a vertical stroke from the test accuracy just before it to
    just after it."""
    if runs.empty:
        _placeholder(path, "no generalization-stability runs")
        return
    seed = runs["seed"].min()
    shown = runs[runs["seed"] == seed]
    groups = [g for g in _STABILITY_GROUPS if g in set(shown["group"]) and g != "baseline"] or ["baseline"]
    periods = sorted(shown["retrain_period"].dropna().unique())
    palette = dict(zip(periods, sns.color_palette("viridis", max(len(periods), 2))[::-1]))
    columns = min(len(groups), 4)
    rows = -(-len(groups) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 3.5 * rows), sharex=True, sharey=True,
                             squeeze=False)
    baseline = shown[shown["kind"] == "baseline"]
    for ax, group in zip(axes.flat, groups):
        for _, run in baseline.iterrows():
            log = epochs[epochs["run"] == run["run"]]
            ax.plot(log["epoch"], 100 * log["test_acc"], "--", color="0.4", linewidth=1.0, label="unpruned baseline")
        for _, run in shown[(shown["group"] == group) & (shown["kind"] != "baseline")].iterrows():
            log = epochs[epochs["run"] == run["run"]]
            colour = palette[run["retrain_period"]]
            ax.plot(log["epoch"], 100 * log["test_acc"], color=colour, linewidth=1.2,
                    label=f"period {run['retrain_period']:g}: mean stability {run['mean_stability']:.1f}%")
            events = log[log["pruned_epoch"].astype(bool)]
            ax.vlines(events["epoch"], 100 * events["test_acc"], 100 * events["pre_prune_test_acc"], color=colour,
                      linewidth=1.0, alpha=0.7)
        ax.set_title(_STABILITY_LABELS[group], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("test accuracy (%)")
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    low = 100 * np.nanpercentile(epochs["test_acc"], 2)
    axes[0][0].set_ylim(max(0.0, low - 5), 100.5)
    fig.suptitle(f"Test accuracy during training (seed {seed}); vertical strokes: the drop at each pruning event",
                 fontsize=11)
    fig.tight_layout()
    _save(fig, path)
