"""Figures of the measures against the generalization gap and against network size."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..families import measures_with_role
from .style import (HIGHLIGHT, TARGET_LABELS, _best_measure, _converged, _family_palette, _label, _log_axis,
                    _log_if_wide, _panel_message, _placeholder, _save, _value_palette, measure_labels)


def _tau_text(summary: pd.DataFrame, measure: str, target: str) -> str:
    """"τ 0.26 [0.03, 0.52], 32 models": ``measure``'s tau_a against ``target`` with its
    bootstrap interval and model count from summary.csv, or "" without a row."""
    row = summary[(summary["measure"] == measure) & (summary["target"] == f"gen.{target}")]
    if row.empty:
        return ""
    row = row.iloc[0]
    return f"τ {row['tau_a']:.2f} [{row['tau_a_low']:.2f}, {row['tau_a_high']:.2f}], {int(row['n_used'])} models"


def prunability_vs_gap(table: pd.DataFrame, summary: pd.DataFrame, target: str, axes: list[str], path) -> None:
    """Prunability against the generalization target, one point per converged model, the
    first two of ``axes`` as colour and marker; prunability's tau (summary.csv) in the title."""
    if "measure.prunability" not in table:
        return _placeholder(path, "prunability was not computed (measures.families lacks pruning)")
    used = _converged(table)
    hue = f"hp.{axes[0]}" if axes else None
    style = f"hp.{axes[1]}" if len(axes) > 1 else None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    sns.scatterplot(data=used, x="measure.prunability", y=f"gen.{target}", hue=hue, style=style, s=70, ax=ax, palette="deep" if hue else None)
    ax.set_xlabel("prunability (smallest kept fraction within the loss tolerance)")
    ax.set_ylabel(TARGET_LABELS[target])
    excluded = len(table) - len(used)
    tau = _tau_text(summary, "prunability", target)
    ax.set_title(f"{len(used)} converged models" + (f" ({excluded} not converged, not shown)" if excluded else "")
                 + (f"\nprunability's {tau}" if tau else ""), fontsize=10)
    _save(fig, path)


def measures_vs_gap(table: pd.DataFrame, summary: pd.DataFrame, info: pd.DataFrame, target: str, path) -> None:
    """Small multiples: prunability, kappa, the norms and the flatness measure with the
    largest tau (_best_measure) and effective dimensionality against ``target``, one dot
    per converged model, each panel titled with the measure's tau and bootstrap interval
    from summary.csv (so the same models and resamples as the tau figure)."""
    rows = summary[summary["target"] == f"gen.{target}"]

    def best(role):
        return _best_measure(rows, measures_with_role(info, role))

    panels = (("", "prunability"), ("", "kept_count"), ("best norms measure: ", best("norm")),
              ("best flatness measure: ", best("flatness")), ("", "effective_dimensionality"))
    labels = measure_labels(info)
    palette = _family_palette(info)
    family = dict(zip(info["name"], info["family"]))
    used = _converged(table)
    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    for ax, (role, measure) in zip(axes.flat, panels):
        if measure is None or f"measure.{measure}" not in table:
            ax.set_title(f"{role}{_label(labels, measure) if measure else 'none'}", fontsize=9)
            _panel_message(ax, "not computed in this study")
            continue
        x = used[f"measure.{measure}"].to_numpy(dtype=float)
        ax.scatter(x, used[f"gen.{target}"], s=22, color=palette.get(family.get(measure), "C0"), alpha=0.8)
        _log_if_wide(ax, x)
        ax.set_title(f"{role}{_label(labels, measure)}\n{_tau_text(summary, measure, target)}", fontsize=9,
                     fontweight="bold" if measure == HIGHLIGHT else "normal")
        ax.set_xlabel(_label(labels, measure), fontsize=8)
        ax.set_ylabel(TARGET_LABELS[target], fontsize=8)
        ax.grid(alpha=0.3)
    axes.flat[-1].axis("off")
    fig.suptitle(f"The main measures against the {TARGET_LABELS[target]} ({len(used)} converged models); "
                 "τ with its bootstrap percentile interval", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


SIZE_AXES = ("width", "depth")


def _size_column(table: pd.DataFrame) -> tuple[str, str]:
    """The size on the x axis: |P|, the prunable Conv/Linear weight count, or, for results
    from before train.n_prunable was recorded, every parameter (said in the label)."""
    if "train.n_prunable" in table and np.isfinite(table["train.n_prunable"].to_numpy(dtype=float)).any():
        return "train.n_prunable", "|P| (prunable Conv/Linear weights)"
    return "train.n_parameters", "all parameters (|P| not recorded in these results)"


def _colour_axis(table: pd.DataFrame, varied: str) -> str | None:
    """The hp column that colours the lines of the panels in which ``varied`` varies: the
    other size axis if it varies, else the first other varying hp column, else None."""
    others = [f"hp.{a}" for a in SIZE_AXES if f"hp.{a}" != varied]
    others += [c for c in table.columns if c.startswith("hp.") and c not in (varied, *others)]
    return next((c for c in others if c in table and table[c].nunique(dropna=False) > 1), None)


def _size_panel(ax, table: pd.DataFrame, varied: str, size: str, measure: str, palette: dict, colour: str | None) -> bool:
    """One line per setting of every hp column but ``varied``: ``measure`` against ``size``
    over the converged models with both finite, in increasing size. False (and the reason
    written in the panel) if there is nothing to draw."""
    axis = varied.removeprefix("hp.")
    if varied not in table or table[varied].nunique(dropna=True) < 2:
        _panel_message(ax, f"the grid has no {axis} axis with two or more values")
        return False
    if measure not in table:
        _panel_message(ax, f"{measure.removeprefix('measure.')} was not computed")
        return False
    converged = table["is.converged"].eq(True).to_numpy(dtype=bool)
    finite = np.isfinite(table[size].to_numpy(dtype=float)) & np.isfinite(table[measure].to_numpy(dtype=float))
    used = table[converged & finite]
    if used.empty:
        _panel_message(ax, "no converged model with a finite value")
        return False
    others = [c for c in table.columns if c.startswith("hp.") and c != varied]
    groups = used.groupby(others, dropna=False, sort=True) if others else [((), used)]
    for _, group in groups:
        group = group.sort_values(size)
        line_colour = palette[group[colour].iloc[0]] if colour else "C0"
        ax.plot(group[size], group[measure], "-o", color=line_colour, linewidth=0.8, markersize=3, alpha=0.6)
    _log_axis(ax, "x")
    if (used[measure] > 0).all() and measure == "measure.kept_count":
        _log_axis(ax, "y")  # kappa spans the size range: compare slopes, not offsets
    return True


def size_scaling(table: pd.DataFrame, path) -> None:
    """Prunability and the kept count kappa against network size |P| (claim K4).

    Rows: models that differ only in width, then only in depth (one line per setting of
    every other hyperparameter, so each line is one width or depth sweep; lines coloured
    by the other size axis, or by the first other varying axis). Columns: prunability,
    kappa. Converged models with finite values only; a row whose axis has fewer than two
    values in the grid says so."""
    if "measure.prunability" not in table:
        return _placeholder(path, "prunability was not computed (measures.families lacks pruning)")
    size, size_label = _size_column(table)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), squeeze=False)
    columns = (("measure.prunability", "prunability (kept fraction)"), ("measure.kept_count", "κ, kept weight count"))
    for row, axis in enumerate(SIZE_AXES):
        varied = f"hp.{axis}"
        colour = _colour_axis(table, varied)
        palette = _value_palette(table[colour]) if colour else {}
        for col, (measure, label) in enumerate(columns):
            ax = axes[row, col]
            ax.set_title(f"models that differ only in {axis}: {label.split(' (')[0]}", fontsize=9)
            if _size_panel(ax, table, varied, size, measure, palette, colour):
                ax.set_xlabel(size_label, fontsize=8)
                ax.set_ylabel(label, fontsize=8)
                ax.grid(alpha=0.3, which="both", linewidth=0.5)
        drawn = [ax for ax in axes[row] if ax.get_lines()]
        if colour and drawn:
            handles = [plt.Line2D([], [], color=c, marker="o", markersize=3, linewidth=0.8, label=str(v))
                       for v, c in palette.items()]
            drawn[-1].legend(handles=handles, title=colour.removeprefix("hp."), fontsize=7, title_fontsize=7,
                             loc="best", ncol=1 + len(handles) // 6)
    fig.suptitle("Prunability and κ against network size (K4: prunability should not grow with size); "
                 "one line per setting of the other hyperparameters", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
