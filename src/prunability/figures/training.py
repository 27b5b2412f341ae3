"""Figures of the training runs: the training curves, the gap along each axis, measure costs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .style import (TARGET_LABELS, _converged, _first_varying_axis, _log_axis, _ordered_families, _placeholder,
                    _save, _value_palette)


# The panels of training_curves: curve.csv column, panel title, log scale.
TRAINING_PANELS = (("train_loss", "training loss", True), ("test_loss", "test loss", True),
                   ("train_acc", "training accuracy", False), ("test_acc", "test accuracy", False))
ACCURACY_FLOOR_PERCENTILE = 5  # the accuracy panels start here (or lower): the first epochs would squash the rest


def _accuracy_floor(curves: pd.DataFrame, column: str) -> float:
    """Where an accuracy panel's axis starts: the ACCURACY_FLOOR_PERCENTILE-th percentile
    of every epoch's value, or the lowest last-epoch value if that is lower (every model's
    final accuracy stays in view)."""
    final = curves.sort_values("epoch").groupby("model")[column].last()
    return float(np.nanmin([np.nanpercentile(curves[column].to_numpy(dtype=float), ACCURACY_FLOOR_PERCENTILE),
                            final.min()]))


def training_curves(curves: pd.DataFrame, table: pd.DataFrame, axes: list[str], stopping: str, ce_target: float,
                    path) -> None:
    """Training and test loss and accuracy per epoch (curve.csv of every model, with a
    ``model`` column), one line per model coloured by the first of ``axes`` that varies.
    Models that did not converge (table is.converged false) are drawn black and dashed,
    and counted; with ``stopping`` "ce_target" the target is drawn on the training loss."""
    if curves.empty:
        return _placeholder(path, "no training curves (every curve.csv is empty)")
    colour = _first_varying_axis(table, axes)
    palette = _value_palette(table[colour]) if colour else {}
    colour_of = table.set_index("model")[colour] if colour else pd.Series(dtype=float)
    unconverged = set(table.loc[table["is.converged"].eq(False), "model"])
    fig, panels = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    for ax, (column, title, log) in zip(panels.flat, TRAINING_PANELS):
        for model, rows in curves.groupby("model", sort=True):
            if model in unconverged:
                ax.plot(rows["epoch"], rows[column], "--", color="black", linewidth=1.2, zorder=3)
            else:
                ax.plot(rows["epoch"], rows[column], color=palette.get(colour_of.get(model), "C0"), linewidth=0.8,
                        alpha=0.7)
        if log:
            _log_axis(ax, "y", plain=True)
        else:
            floor = _accuracy_floor(curves, column)
            ax.set_ylim(floor - 0.05 * (1 - floor), 1 + 0.05 * (1 - floor))
            title += " (axis cut below: the first epochs leave it)"
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both", linewidth=0.5)
    for ax in panels[1]:
        ax.set_xlabel("epoch")
    handles = [plt.Line2D([], [], color=c, label=str(v)) for v, c in palette.items()]
    if unconverged:
        handles.append(plt.Line2D([], [], color="black", linestyle="--", label=f"not converged ({len(unconverged)})"))
    if stopping == "ce_target":
        panels[0, 0].axhline(ce_target, color="C3", linestyle=":", linewidth=1.5)
        handles.append(plt.Line2D([], [], color="C3", linestyle=":", linewidth=1.5, label=f"CE target {ce_target:g}"))
    n = curves["model"].nunique()
    rule = f"until training CE < {ce_target:g}" if stopping == "ce_target" else "for a fixed budget"
    fig.suptitle(f"Training curves of {n} models (trained {rule}): {n - len(unconverged)} converged, "
                 f"{len(unconverged)} not", fontsize=10)
    fig.tight_layout()
    if handles:  # beside the panels, where it covers no curve
        fig.legend(handles=handles, title=colour.removeprefix("hp.") if colour else None, fontsize=8,
                   title_fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    _save(fig, path)


def _spread(n: int, width: float = 0.3) -> np.ndarray:
    """n horizontal offsets spread evenly over [-width / 2, width / 2] (a deterministic jitter)."""
    return np.linspace(-width / 2, width / 2, n) if n > 1 else np.zeros(n)


def gap_by_axis(table: pd.DataFrame, target: str, axes: list[str], path) -> None:
    """``target`` against each value of each grid axis in ``axes``: every converged model a
    dot (spread sideways), the mean per value a black line."""
    axes = [a for a in axes if f"hp.{a}" in table]
    if not axes:
        return _placeholder(path, "the grid has no axis with more than one value")
    used = _converged(table)
    used = used[np.isfinite(used[f"gen.{target}"].to_numpy(dtype=float))]
    values_of = {axis: sorted(used[f"hp.{axis}"].unique()) for axis in axes}
    widths = [max(3, 0.55 * len(values)) for values in values_of.values()]  # room for every value's label
    fig, panels = plt.subplots(1, len(axes), figsize=(sum(widths) + 1, 3.8), sharey=True, squeeze=False,
                               gridspec_kw={"width_ratios": widths})
    for ax, (axis, values) in zip(panels[0], values_of.items()):
        means = []
        for position, value in enumerate(values):
            gaps = used.loc[used[f"hp.{axis}"] == value, f"gen.{target}"].to_numpy(dtype=float)
            ax.scatter(position + _spread(len(gaps)), gaps, s=14, color="C0", alpha=0.6, linewidths=0)
            means.append(gaps.mean())
        ax.plot(range(len(values)), means, "-o", color="black", markersize=4, linewidth=1.2)
        ax.set_xticks(range(len(values)), [f"{v:g}" if isinstance(v, float) else str(v) for v in values])
        ax.set_xlabel(axis)
        ax.grid(axis="y", alpha=0.3)
    panels[0, 0].set_ylabel(TARGET_LABELS[target])
    excluded = len(table) - len(used)
    fig.suptitle(f"The {TARGET_LABELS[target]} across the grid: {len(used)} converged models"
                 + (f" ({excluded} not converged or without a value, not shown)" if excluded else "")
                 + "; black: the mean per value", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def measure_costs(costs: pd.DataFrame, path) -> None:
    """What measuring costs (measure_costs.csv): each family's in-process seconds summed
    over the models beside the training's, and, per model, each family's time as a
    fraction of that model's training time."""
    if costs.empty:
        return _placeholder(path, "no measure costs (no measure family ran)")
    families = _ordered_families(costs["family"])
    totals = costs.groupby("family")["measure_time_s"].sum().reindex(families)
    training = costs.drop_duplicates("model")["train_time_s"].sum()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(families) + 2.2), sharey=True)
    names = ["training", *families, "all families"]
    seconds = [training, *totals, totals.sum()]
    colours = ["grey", *sns.color_palette("deep", len(families)), "black"]
    left.barh(range(len(names)), seconds, color=colours)
    for y, (name, value) in enumerate(zip(names, seconds)):
        share = f" ({value / training:.0%} of training)" if name != "training" and training > 0 else ""
        left.text(value, y, f" {value:.1f} s{share}", va="center", fontsize=7)
    left.set_xlim(0, 1.45 * max(seconds) or 1)
    left.set_xlabel("seconds, summed over the models")
    per_model = costs[costs["fraction_of_training"] > 0]  # a log axis: a zero time has no place on it
    boxes = right.boxplot([per_model.loc[per_model["family"] == f, "fraction_of_training"] for f in families],
                          positions=range(1, len(families) + 1), orientation="horizontal", widths=0.6,
                          patch_artist=True, flierprops={"markersize": 2}, medianprops={"color": "black"})
    for box, colour in zip(boxes["boxes"], colours[1:]):
        box.set_facecolor(colour)
    left.set_yticks(range(len(names)), names)  # after the boxes, which label the shared axis their own way
    left.set_ylim(len(names) - 0.5, -0.5)
    right.set_xscale("log")
    right.axvline(1, color="black", linewidth=0.8)
    right.set_xlabel("per model: measuring time / training time (log; 1 = as long as training)")
    right.set_ylabel("")
    fig.suptitle(f"Measure cost per family over {costs['model'].nunique()} models (in-process time, "
                 "without Python and torch start-up)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
