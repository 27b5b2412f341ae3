"""Figures of the answer's statistics: the claims table, tau with its intervals, the
granulated psi, conditional and prediction mutual information, tolerance sensitivity."""

from __future__ import annotations

import textwrap

import matplotlib
import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..families import baseline_measures
from .style import (HIGHLIGHT, TARGET_LABELS, VERDICT_COLOURS, _by_family, _family_palette, _highlight_row,
                    _measure_ticks, _placeholder, _save, measure_labels)


def _oracle_pairs(oracle: pd.DataFrame | None, target: str) -> pd.DataFrame:
    """The seed oracle's rows of one pair of replicates each (not the mean row) for ``target``."""
    if oracle is None or oracle.empty:
        return pd.DataFrame(columns=["tau_a", "Psi"])
    return oracle[(oracle["target"] == f"gen.{target}") & (oracle["pair"].astype(str) != "mean")]


def tau_intervals(summary: pd.DataFrame, info: pd.DataFrame, target: str, path,
                  replicates: pd.DataFrame | None = None, oracle: pd.DataFrame | None = None,
                  tau_threshold: float | None = None) -> None:
    """Kendall tau (tau-a) and granulated Psi per measure with bootstrap intervals, sorted by tau.

    Measures carry their readable names and Jiang et al.'s equation numbers; prunability's
    row is shaded and its name bold. ``tau_threshold`` (statistics.claims.tau_threshold)
    is drawn as a dotted vertical line on both panels: the claims' line between a poor
    and a high correlation. With a replicate axis (non-empty ``replicates`` and
    ``oracle``, as replicates.csv and seed_oracle.csv): each seed's own tau / Psi as
    small ticks on the measure's row, and the seed oracle (mean over pairs of seeds;
    band: min to max with more than one pair) as a dashed vertical line, the level of
    agreement seed noise leaves."""
    rows = summary[summary["target"] == f"gen.{target}"].sort_values("tau_a", ascending=True)
    if rows.empty:
        return _placeholder(path, f"no statistics for target {target}")
    family = dict(zip(info["name"], info["family"]))
    palette = _family_palette(info)
    per_seed = (replicates[replicates["target"] == f"gen.{target}"] if replicates is not None
                else pd.DataFrame(columns=["measure", "tau_a", "Psi"]))
    oracle_pairs = _oracle_pairs(oracle, target)
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.22 * len(rows) + 1.8), sharey=True)
    y = np.arange(len(rows))
    oracle_label = []
    for ax, column, label, symbol in ((axes[0], "tau_a", "Kendall τ (tau-a)", "τ"), (axes[1], "Psi", "granulated Ψ", "Ψ")):
        for yi, row in zip(y, rows.itertuples()):
            colour = palette.get(family.get(row.measure), "grey")
            value, low, high = getattr(row, column), getattr(row, f"{column}_low"), getattr(row, f"{column}_high")
            if row.measure == HIGHLIGHT:
                _highlight_row(ax, yi)
            ax.plot([low, high], [yi, yi], color=colour, linewidth=1.5, alpha=0.7)
            ax.plot(value, yi, "o", color=colour, markersize=4)
            seeds = per_seed.loc[per_seed["measure"] == row.measure, column].to_numpy(dtype=float)
            seeds = seeds[np.isfinite(seeds)]
            if seeds.size:  # each replicate's own statistic: the spread seed noise gives
                ax.scatter(seeds, np.full(seeds.size, yi), marker="D", s=14, linewidths=1.0, facecolors="none",
                           edgecolors=colour)
        oracle_values = oracle_pairs[column].to_numpy(dtype=float)
        oracle_values = oracle_values[np.isfinite(oracle_values)]
        if oracle_values.size:
            ax.axvline(oracle_values.mean(), color="black", linestyle="--", linewidth=1)
            if oracle_values.size > 1:
                ax.axvspan(oracle_values.min(), oracle_values.max(), color="grey", alpha=0.15, linewidth=0,
                           gid="seed oracle")
            oracle_label.append(f"{symbol} {oracle_values.mean():.2f}")
        if tau_threshold is not None:
            ax.axvline(tau_threshold, color="C3", linestyle=":", linewidth=1.2)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlim(-1, 1)
        ax.set_xlabel(f"{label}  (right = ranks the models as their generalization)")
        ax.grid(axis="x", alpha=0.3)
    _measure_ticks(axes[0], rows["measure"].tolist(), measure_labels(info))
    axes[0].set_ylim(-0.7, len(rows) - 0.3)
    partial = int((~rows["full_grid"].astype(bool)).sum()) if "full_grid" in rows else 0
    if partial:
        axes[1].set_title(f"partial grid for {partial} of {len(rows)} measures", fontsize=8)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="-", label=f) for f, c in palette.items()]
    axes[1].legend(handles=handles, loc="lower right", fontsize=7, title="family", title_fontsize=7)
    line_handles = []
    if tau_threshold is not None:
        line_handles.append(plt.Line2D([], [], color="C3", linestyle=":", linewidth=1.2,
                                       label=f"claims threshold {tau_threshold:g}"))
    if oracle_label:
        pairs = len(oracle_pairs)
        line_handles.append(plt.Line2D([], [], color="black", linestyle="--", linewidth=1,
                                       label=f"seed oracle ({', '.join(oracle_label)}"
                                             + (f"; mean and range of {pairs} pairs)" if pairs > 1 else ")")))
    if not per_seed.empty:
        line_handles.append(plt.Line2D([], [], color="grey", marker="D", markerfacecolor="none", linestyle="none",
                                       markersize=4, label="each seed's own value"))
    if line_handles:
        axes[0].legend(handles=line_handles, loc="upper left", fontsize=7)
    n = int(rows["n_used"].max())
    fig.suptitle(f"Rank correlation with the {TARGET_LABELS[target]}, {n} models; "
                 "bars: bootstrap percentile intervals; prunability shaded", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def psi_heatmap(granulated: pd.DataFrame, summary: pd.DataFrame, info: pd.DataFrame, target: str, path) -> None:
    """Per-axis psi_i (and Psi) of every measure: which hyperparameter's effect each measure tracks."""
    rows = granulated[granulated["target"] == f"gen.{target}"]
    if rows.empty:
        return _placeholder(path, "granulated Kendall needs a grid axis with more than one value")
    wide = rows.pivot(index="measure", columns="axis", values="psi")
    wide = wide[rows["axis"].unique()].rename(columns=lambda a: a.removeprefix("hp."))
    wide["Ψ (mean)"] = summary[summary["target"] == f"gen.{target}"].set_index("measure")["Psi"]
    wide = wide.loc[[m for m in _by_family(info) if m in wide.index]].round(12) + 0.0  # no "-0.00"
    fig, ax = plt.subplots(figsize=(1.1 * wide.shape[1] + 3.5, 0.22 * len(wide) + 1.5))
    sns.heatmap(wide, ax=ax, cmap="RdBu_r", vmin=-1, vmax=1, center=0, annot=True, fmt=".2f",
                annot_kws={"fontsize": 6}, cbar_kws={"label": "ψ (mean τ within groups where only the axis varies)"})
    ax.axvline(wide.shape[1] - 1, color="black", linewidth=2)
    _measure_ticks(ax, wide.index.tolist(), measure_labels(info), offset=0.5)
    ax.set_xlabel("grid axis")
    ax.set_ylabel("")
    ax.set_title(f"Granulated Kendall per axis against the {TARGET_LABELS[target]}", fontsize=10)
    _save(fig, path)


CMI_VARIANTS = {"cmi_jiang": "Jiang et al. (PGDL code)", "cmi_careful": "careful variant"}


def cmi_bars(cmi: pd.DataFrame, summary: pd.DataFrame, info: pd.DataFrame, target: str, path) -> None:
    """Conditional mutual information per measure (Jiang's algorithm and the careful
    variant), signed by the measure's Kendall tau against the same target: sign(tau) x CMI.
    CMI has no direction (a measure that ranks the models in reverse scores as high as one
    that ranks them in order); the sign says which: right = the expected direction, left =
    reversed. A measure without a tau counts as positive. Sorted by the signed Jiang value
    (the careful one when no measure has a Jiang value); a variant without values is left out."""
    rows = cmi[cmi["target"] == f"gen.{target}"]
    if rows.empty or rows[list(CMI_VARIANTS)].isna().all().all():
        return _placeholder(path, "no conditional mutual information (it conditions on pairs of grid axes)")
    tau = summary[summary["target"] == f"gen.{target}"].set_index("measure")["tau_a"]
    sign = np.where(rows["measure"].map(tau).to_numpy(dtype=float) < 0, -1.0, 1.0)
    signed = rows.assign(**{column: sign * rows[column] for column in CMI_VARIANTS})
    # Jiang's algorithm conditions on pairs of axes: a grid with one axis has the careful variant only
    variants = [column for column in CMI_VARIANTS if signed[column].notna().any()]
    order = signed.sort_values(variants[0], ascending=False)["measure"].tolist()
    long = signed.melt(id_vars=["measure"], value_vars=variants, var_name="variant", value_name="cmi")
    long["variant"] = long["variant"].map(CMI_VARIANTS)
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(order) + 1.5))
    if HIGHLIGHT in order:
        _highlight_row(ax, order.index(HIGHLIGHT))
    sns.barplot(data=long, y="measure", x="cmi", hue="variant", order=order, ax=ax, orient="h")
    _measure_ticks(ax, order, measure_labels(info))
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("sign(τ) × normalised CMI  (right: ranks as the generalization does; left: in reverse)")
    ax.set_ylabel("")
    ax.legend(loc="lower right", title=None, fontsize=8)
    ax.set_title(f"CMI between the signs of measure and {TARGET_LABELS[target]} differences, "
                 "signed by the measure's τ", fontsize=10)
    _save(fig, path)


def prediction_mi_bars(mi: pd.DataFrame, info: pd.DataFrame, target: str, mi_threshold: float, path) -> None:
    """Claim K6: how much of each baseline's ranking information prunability's predictions
    repeat, I(V_prunability; V_baseline) / H(V_baseline), one bar per baseline (every
    measure outside the pruning family), sorted, with their median (the claims table's K6
    statistic) and ``mi_threshold``; beside it, what prunability still tells about the
    sign of the ``target`` difference once the baseline's prediction is known,
    I(V_prunability; V_gap | V_baseline) / H(V_gap | V_baseline)."""
    baselines = set(baseline_measures(info))
    rows = mi[(mi["other"] == HIGHLIGHT) & mi["base"].isin(baselines)]
    if rows.empty:
        return _placeholder(path, "no mutual information between prunability and a baseline measure "
                                  "(needs the pruning family and another family)")
    rows = rows.sort_values("mi", ascending=False, na_position="last")
    family = dict(zip(info["name"], info["family"]))
    palette = _family_palette(info)
    colours = [palette[family[base]] for base in rows["base"]]
    y = np.arange(len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.2 * len(rows) + 2), sharey=True)
    panels = ((axes[0], "mi", "I(V_prunability; V_baseline) / H(V_baseline)"),
              (axes[1], "cmi_given_base", "I(V_prunability; V_gap | V_baseline) / H(V_gap | V_baseline)"))
    for ax, column, label in panels:
        ax.barh(y, rows[column], color=colours)
        ax.set_xlabel(label, fontsize=8)
        ax.set_xlim(left=0)
        ax.grid(axis="x", alpha=0.3)
    median = float(np.nanmedian(rows["mi"])) if rows["mi"].notna().any() else float("nan")
    axes[0].axvline(median, color="black", linestyle="--", linewidth=1)
    axes[0].axvline(mi_threshold, color="C3", linestyle=":", linewidth=1.2)
    _measure_ticks(axes[0], rows["base"].tolist(), measure_labels(info))
    axes[0].set_ylim(len(rows) - 0.5, -0.5)  # the largest at the top
    families = [f for f in palette if f in set(family[base] for base in rows["base"])]
    handles = [plt.Line2D([], [], color="black", linestyle="--", linewidth=1, label=f"median over baselines {median:.2f}"),
               plt.Line2D([], [], color="C3", linestyle=":", linewidth=1.2, label=f"claims threshold {mi_threshold:g}"),
               *(matplotlib.patches.Patch(color=palette[f], label=f"{f} family") for f in families)]
    axes[0].legend(handles=handles, loc="lower right", fontsize=7)  # the shortest bars are at the bottom
    n = int(rows["n_used"].max())
    fig.suptitle(f"K6: prunability's predictions against each of {len(rows)} baselines' (signs of differences over "
                 f"pairs of {n} models; gap = {TARGET_LABELS[target]})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) if isinstance(text, str) else ""


def claims_figure(claims: pd.DataFrame, level: float, path) -> None:
    """The claims table as a figure: claim, statistic, value with interval, verdict."""
    def value(row):
        if not np.isfinite(row.value):
            return "—"
        interval = f" [{row.ci_low:.2f}, {row.ci_high:.2f}]" if np.isfinite(row.ci_low) else ""
        return f"{row.value:.2f}{interval}"

    cells = [[row.claim, _wrap(row.statement, 48), _wrap(row.statistic, 36), value(row), _wrap(row.verdict, 14), _wrap(row.note, 34)]
             for row in claims.itertuples()]
    heights = [max(c.count("\n") for c in cells_row) + 1 for cells_row in cells]
    fig, ax = plt.subplots(figsize=(15, 0.3 * sum(heights) + 1.2))
    ax.axis("off")
    columns = ["claim", "statement", "statistic", f"value [{100 * level:g}% interval]", "verdict", "note"]
    table = ax.table(cellText=cells, colLabels=columns, loc="upper center", cellLoc="left",
                     colWidths=[0.04, 0.29, 0.22, 0.13, 0.09, 0.21])
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    for (r, c), cell in table.get_celld().items():
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_height(0.35 / (0.3 * sum(heights) + 1.2))
            continue
        cell.set_height(0.3 * heights[r - 1] / (0.3 * sum(heights) + 1.2))
        if c == 4:
            cell.set_facecolor(VERDICT_COLOURS.get(claims["verdict"].iloc[r - 1], "white"))
    ax.set_title("The claims of Kuhn et al. 2021 (abstract) tested in this study", fontsize=10)
    _save(fig, path)


def tolerance_sensitivity(sensitivity: pd.DataFrame, target: str, rel_tol: float, path) -> None:
    """tau and Psi of prunability against the relative tolerance, with bootstrap intervals."""
    rows = sensitivity[sensitivity["target"] == f"gen.{target}"].sort_values("rel_tol")
    if rows.empty:
        return _placeholder(path, "no pruning curves (measures.families lacks pruning)")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for column, label, colour in (("tau_a", "Kendall τ", "C0"), ("Psi", "granulated Ψ", "C1")):
        ax.plot(rows["rel_tol"], rows[column], "o-", color=colour, label=label)
        ax.fill_between(rows["rel_tol"], rows[f"{column}_low"], rows[f"{column}_high"], color=colour, alpha=0.15)
    ax.axvline(rel_tol, color="grey", linestyle="--", linewidth=1, label=f"configured ε = {rel_tol:g}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_ylim(-1, 1)
    ax.set_xlabel("relative tolerance ε (loss ≤ (1 + ε) × unpruned loss)")
    ax.set_ylabel(f"correlation with the {TARGET_LABELS[target]}")
    ax.legend(fontsize=8)
    ax.set_title("Prunability's predictive power against the tolerance (from the stored curves)", fontsize=10)
    _save(fig, path)
