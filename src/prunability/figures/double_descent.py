"""Figures of the double-descent study (optional): the sweep's curves and the scatter of
prunability and the best baseline against the test loss."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..double_descent import CURVE_COLUMNS, with_train_error
from ..families import baseline_measures
from .style import TARGET_LABELS, _best_measure, _converged, _log_axis, _panel_message, _placeholder, _save


def double_descent_curves(table: pd.DataFrame, means: pd.DataFrame, axis: str, threshold, path) -> None:
    """The double-descent sweep: each ``double_descent.CURVE_COLUMNS`` quantity against the
    sweep axis (log scale), every converged model a dot and the mean per value a line, the
    interpolation threshold (``threshold``, None if no value reaches it) a dashed line."""
    used = with_train_error(_converged(table))
    x = f"hp.{axis}"
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.4))
    for ax, (column, label) in zip(axes.flat, CURVE_COLUMNS.items()):
        ax.set_title(label, fontsize=9)
        if f"{column}_mean" not in means or not np.isfinite(means[f"{column}_mean"].to_numpy(dtype=float)).any():
            _panel_message(ax, "not computed")
            continue
        ax.scatter(used[x], used[column], s=10, color="grey", alpha=0.5, linewidths=0)
        ax.plot(means[x], means[f"{column}_mean"], "-o", color="C0", markersize=3, linewidth=1.2)
        if threshold is not None:
            ax.axvline(threshold, color="C3", linestyle="--", linewidth=1)
        _log_axis(ax, "x")
        if column in ("measure.kept_count", "train.n_prunable"):
            _log_axis(ax, "y")
        ax.set_xlabel(axis, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, which="both", linewidth=0.5)
    legend = axes.flat[-1]
    legend.axis("off")
    handles = [plt.Line2D([], [], color="grey", marker="o", linestyle="none", markersize=4, alpha=0.5, label="one model"),
               plt.Line2D([], [], color="C0", marker="o", markersize=3, label=f"mean over the models at each {axis}")]
    handles.append(plt.Line2D([], [], color="C3", linestyle="--", label=f"interpolation threshold ({axis} {threshold})")
                   if threshold is not None else
                   plt.Line2D([], [], color="none", label="no width reaches the interpolation threshold"))
    legend.legend(handles=handles, loc="center", fontsize=8)
    fig.suptitle(f"Double descent across {axis}: {len(used)} converged models of {len(table)}", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _best_baseline(correlations: pd.DataFrame, info: pd.DataFrame, target: str) -> str | None:
    """The baseline measure (outside the family under test) with the largest tau_a against ``target`` (_best_measure)."""
    return _best_measure(correlations[correlations["target"] == target], baseline_measures(info))


def double_descent_scatter(table: pd.DataFrame, correlations: pd.DataFrame, info: pd.DataFrame, axis: str, path,
                           target: str = "gen.test_loss") -> None:
    """Prunability and the best baseline (largest tau against the target across the sweep)
    against the test loss, one dot per converged model coloured by the sweep value, with
    tau, rho and r and their bootstrap intervals in the titles."""
    measures = [m for m in ("prunability", _best_baseline(correlations, info, target)) if m is not None]
    measures = [m for m in measures if f"measure.{m}" in table and target in table]
    if not measures:
        return _placeholder(path, "neither prunability nor a baseline was computed")
    used = _converged(table)
    values = sorted(used[f"hp.{axis}"].unique())
    norm = matplotlib.colors.LogNorm(min(values), max(values)) if min(values) > 0 else matplotlib.colors.Normalize()
    fig, axes = plt.subplots(1, len(measures), figsize=(5.6 * len(measures), 4.6), squeeze=False)
    orientation = dict(zip(info["name"], info["orientation"]))
    for ax, measure in zip(axes[0], measures):
        r = correlations[(correlations["measure"] == measure) & (correlations["target"] == target)].iloc[0]
        points = ax.scatter(used[f"measure.{measure}"], used[target], c=used[f"hp.{axis}"], cmap="viridis", norm=norm, s=28)
        role = "" if measure == "prunability" else "best baseline: "
        sign = "" if orientation.get(measure, 1) == 1 else " (orientation −1: statistics use −value)"
        ax.set_xlabel(f"{measure}{sign}", fontsize=9)
        ax.set_ylabel(TARGET_LABELS[target.removeprefix("gen.")])
        ax.set_title(f"{role}{measure} ({r.n_used} models)\n"
                     f"τ {r.tau_a:.2f} [{r.tau_a_low:.2f}, {r.tau_a_high:.2f}]   "
                     f"ρ {r.spearman_rho:.2f} [{r.spearman_rho_low:.2f}, {r.spearman_rho_high:.2f}]   "
                     f"r {r.pearson_r:.2f} [{r.pearson_r_low:.2f}, {r.pearson_r_high:.2f}]", fontsize=9)
        ax.grid(alpha=0.3)
    fig.colorbar(points, ax=list(axes[0]), label=axis)
    fig.suptitle(f"Across the {axis} sweep ({len(used)} converged models); bootstrap percentile intervals",
                 fontsize=10, y=1.03)
    _save(fig, path)
