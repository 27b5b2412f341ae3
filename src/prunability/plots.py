"""Figures of the report (seaborn on the Agg backend), each from the tidy tables."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .double_descent import CURVE_COLUMNS, with_train_error  # noqa: E402
from .io import atomic_path  # noqa: E402

TARGET_LABELS = {
    "acc_gap": "accuracy gap (train − test)",
    "loss_gap": "loss gap (test − train)",
    "test_error": "test error",
    "test_loss": "test loss",
}


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
    plt.close(fig)


def _placeholder(path, message: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    _save(fig, path)


FAMILY_ORDER = ["pruning", "norms", "flatness", "hessian", "optimization"]
VERDICT_COLOURS = {"supported": "#c7e9c0", "not supported": "#fcbba1", "not tested in this study": "#e0e0e0"}


def _family_palette(info: pd.DataFrame) -> dict:
    families = [f for f in FAMILY_ORDER if f in set(info["family"])] + sorted(set(info["family"]) - set(FAMILY_ORDER))
    return dict(zip(families, sns.color_palette("deep", len(families))))


def _by_family(info: pd.DataFrame) -> list[str]:
    """Measure names grouped by family (in FAMILY_ORDER), registry order within a family."""
    rank = {f: i for i, f in enumerate(FAMILY_ORDER)}
    ordered = info.assign(_rank=info["family"].map(rank).fillna(len(rank)), _pos=range(len(info)))
    return ordered.sort_values(["_rank", "_pos"])["name"].tolist()


def _oracle_pairs(oracle: pd.DataFrame | None, target: str) -> pd.DataFrame:
    """The seed oracle's rows of one pair of replicates each (not the mean row) for ``target``."""
    if oracle is None or oracle.empty:
        return pd.DataFrame(columns=["tau_a", "Psi"])
    return oracle[(oracle["target"] == f"gen.{target}") & (oracle["pair"].astype(str) != "mean")]


def tau_intervals(summary: pd.DataFrame, info: pd.DataFrame, target: str, path,
                  replicates: pd.DataFrame | None = None, oracle: pd.DataFrame | None = None) -> None:
    """Kendall tau (tau-a) and granulated Psi per measure with bootstrap intervals, sorted by tau.

    With a replicate axis (non-empty ``replicates`` and ``oracle``, as replicates.csv and
    seed_oracle.csv): each seed's own tau / Psi as small ticks on the measure's row, and
    the seed oracle (mean over pairs of seeds; band: min to max with more than one pair)
    as a dashed vertical line, the level of agreement seed noise leaves."""
    rows = summary[summary["target"] == f"gen.{target}"].sort_values("tau_a", ascending=True)
    if rows.empty:
        return _placeholder(path, f"no statistics for target {target}")
    family = dict(zip(info["name"], info["family"]))
    palette = _family_palette(info)
    per_seed = (replicates[replicates["target"] == f"gen.{target}"] if replicates is not None
                else pd.DataFrame(columns=["measure", "tau_a", "Psi"]))
    oracle_pairs = _oracle_pairs(oracle, target)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.22 * len(rows) + 1.8), sharey=True)
    y = np.arange(len(rows))
    oracle_label = []
    for ax, column, label, symbol in ((axes[0], "tau_a", "Kendall τ (tau-a)", "τ"), (axes[1], "Psi", "granulated Ψ", "Ψ")):
        for yi, row in zip(y, rows.itertuples()):
            colour = palette.get(family.get(row.measure), "grey")
            value, low, high = getattr(row, column), getattr(row, f"{column}_low"), getattr(row, f"{column}_high")
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
                ax.axvspan(oracle_values.min(), oracle_values.max(), color="grey", alpha=0.15, linewidth=0)
            oracle_label.append(f"{symbol} {oracle_values.mean():.2f}")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlim(-1, 1)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, rows["measure"], fontsize=7)
    axes[0].set_ylim(-0.7, len(rows) - 0.3)
    partial = int((~rows["full_grid"].astype(bool)).sum()) if "full_grid" in rows else 0
    if partial:
        axes[1].set_title(f"partial grid for {partial} of {len(rows)} measures", fontsize=8)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="-", label=f) for f, c in palette.items()]
    axes[1].legend(handles=handles, loc="lower right", fontsize=7, title="family", title_fontsize=7)
    seed_handles = []
    if oracle_label:
        pairs = len(oracle_pairs)
        seed_handles.append(plt.Line2D([], [], color="black", linestyle="--", linewidth=1,
                                       label=f"seed oracle ({', '.join(oracle_label)}"
                                             + (f"; mean and range of {pairs} pairs)" if pairs > 1 else ")")))
    if not per_seed.empty:
        seed_handles.append(plt.Line2D([], [], color="grey", marker="D", markerfacecolor="none", linestyle="none",
                                       markersize=4, label="each seed's own value"))
    if seed_handles:
        axes[0].legend(handles=seed_handles, loc="upper left", fontsize=7)
    n = int(rows["n_used"].max())
    fig.suptitle(f"Rank correlation with the {TARGET_LABELS[target]}, {n} models; "
                 "bars: bootstrap percentile intervals (larger = better predictor)", fontsize=10)
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
    ax.set_xlabel("grid axis")
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"Granulated Kendall per axis against the {TARGET_LABELS[target]}", fontsize=10)
    _save(fig, path)


def cmi_bars(cmi: pd.DataFrame, target: str, path) -> None:
    """Conditional mutual information per measure: Jiang's algorithm and the careful variant."""
    rows = cmi[cmi["target"] == f"gen.{target}"]
    if rows.empty or rows[["cmi_jiang", "cmi_careful"]].isna().all().all():
        return _placeholder(path, "no conditional mutual information (it conditions on pairs of grid axes)")
    order = rows.sort_values("cmi_jiang", ascending=False)["measure"].tolist()
    long = rows.melt(id_vars=["measure"], value_vars=["cmi_jiang", "cmi_careful"], var_name="variant", value_name="cmi")
    long["variant"] = long["variant"].map({"cmi_jiang": "Jiang et al. (PGDL code)", "cmi_careful": "careful variant"})
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(order) + 1.5))
    sns.barplot(data=long, y="measure", x="cmi", hue="variant", order=order, ax=ax, orient="h")
    ax.set_xlabel("normalised conditional mutual information (larger = better predictor)")
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(loc="lower right", title=None, fontsize=8)
    ax.set_title(f"CMI between the signs of measure and {TARGET_LABELS[target]} differences", fontsize=10)
    _save(fig, path)


def prediction_mi_heatmaps(mi: pd.DataFrame, info: pd.DataFrame, target: str, path) -> None:
    """Measure x measure mutual information between predictions, unconditional and given the row's measure."""
    if mi.empty:
        return _placeholder(path, "no measures")
    order = [m for m in _by_family(info) if m in set(mi["base"])]
    size = 0.16 * len(order) + 2.5
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 2, size))
    panels = (("mi", "I(V_col; V_row) / H(V_row)"), ("cmi_given_base", f"I(V_col; V_gap | V_row) / H(V_gap | V_row)"))
    for ax, (column, title) in zip(axes, panels):
        wide = mi.pivot(index="base", columns="other", values=column).loc[order, order]
        sns.heatmap(wide, ax=ax, cmap="viridis", vmin=0, vmax=1, square=True, xticklabels=True, yticklabels=True,
                    cbar_kws={"shrink": 0.6})
        ax.tick_params(labelsize=5)
        ax.set_xlabel("measure (col)")
        ax.set_ylabel("baseline (row)")
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"Mutual information between measures' predictions (signs of differences over model pairs; "
                 f"gap = {TARGET_LABELS[target]})", fontsize=10)
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
    ax.set_title("The paper's claims (papers.md §1.2) tested in this study", fontsize=10)
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


def prunability_vs_gap(table: pd.DataFrame, target: str, axes: list[str], path) -> None:
    """Prunability against the generalization target, one point per converged model."""
    if "measure.prunability" not in table:
        return _placeholder(path, "prunability was not computed (measures.families lacks pruning)")
    used = table[table["is.converged"].astype(bool)]
    hue = f"hp.{axes[0]}" if axes else None
    style = f"hp.{axes[1]}" if len(axes) > 1 else None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    sns.scatterplot(data=used, x="measure.prunability", y=f"gen.{target}", hue=hue, style=style, s=70, ax=ax, palette="deep" if hue else None)
    ax.set_xlabel("prunability (smallest kept fraction within the loss tolerance)")
    ax.set_ylabel(TARGET_LABELS[target])
    excluded = len(table) - len(used)
    ax.set_title(f"{len(used)} converged models" + (f" ({excluded} not converged, not shown)" if excluded else ""))
    _save(fig, path)


def _two_lines(model: str) -> str:
    """depth~2/width~1/batchnorm~True/dropout~0.0 -> 'depth=2, width=1' / 'batchnorm=True, dropout=0.0'."""
    parts = [p.replace("~", "=") for p in model.split("/")]
    half = (len(parts) + 1) // 2
    return ", ".join(parts[:half]) + "\n" + ", ".join(parts[half:])


def pick_spread(values: pd.Series, n: int) -> list:
    """Index labels of up to n entries spread over the range of ``values`` (quantiles)."""
    values = values.dropna().sort_values()
    if values.empty:
        return []
    positions = np.unique(np.round(np.linspace(0, len(values) - 1, min(n, len(values)))).astype(int))
    return list(values.index[positions])


def pruning_curves(curves: pd.DataFrame, table: pd.DataFrame, n_models: int, path) -> None:
    """Training loss against kept fraction (magnitude and one random mask) for a few models."""
    if curves.empty or "measure.prunability" not in table:
        return _placeholder(path, "no pruning curves (measures.families lacks pruning)")
    by_model = table.set_index("model")["measure.prunability"]
    models = pick_spread(by_model[by_model.index.isin(curves["model"])], n_models)
    if not models:
        return _placeholder(path, "no model has a finite prunability and a stored pruning curve")
    data = curves[curves["model"].isin(models) & curves["curve"].isin(["magnitude", "random_seed_0"])].copy()
    data = data.sort_values(["model", "curve", "alpha"])
    data["mask"] = data["curve"].map({"magnitude": "global magnitude", "random_seed_0": "random (seed 0)"})
    grid = sns.FacetGrid(data, col="model", col_order=models, col_wrap=min(3, len(models)), height=2.8, aspect=1.2, sharey=False)
    grid.map_dataframe(sns.lineplot, x="alpha", y="loss", hue="mask", style="mask", palette=["C0", "C3"])
    for ax, model in zip(grid.axes.flat, models):
        rows = data[data["model"] == model]
        ax.set_yscale("log")  # kept fractions stay linear: the curves stop where the loosest criterion fails
        ax.axhline(rows["bound"].iloc[0], color="grey", linestyle=":", linewidth=1)
        ax.axvline(by_model[model], color="C0", linestyle="--", linewidth=1)
        ax.set_title(_two_lines(model), fontsize=8)
    grid.set_axis_labels("kept fraction α", "training loss")
    grid.figure.subplots_adjust(hspace=0.45)
    grid.add_legend(title=None)
    grid.figure.suptitle("Pruning curves: dotted = loss tolerance, dashed = prunability", y=1.04)
    _save(grid.figure, path)


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
    def say(message):
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=8, wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])
        return False

    axis = varied.removeprefix("hp.")
    if varied not in table or table[varied].nunique(dropna=True) < 2:
        return say(f"the grid has no {axis} axis with two or more values")
    if measure not in table:
        return say(f"{measure.removeprefix('measure.')} was not computed")
    converged = table["is.converged"].eq(True).to_numpy(dtype=bool)
    finite = np.isfinite(table[size].to_numpy(dtype=float)) & np.isfinite(table[measure].to_numpy(dtype=float))
    used = table[converged & finite]
    if used.empty:
        return say("no converged model with a finite value")
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


def _log_axis(ax, which: str) -> None:
    """A log scale on ``which`` ("x" or "y"), labelled 1, 2, 5 per decade in engineering
    notation (50 k, 100 k): a grid spans about a decade of sizes, too little for labels at
    powers of ten only."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(matplotlib.ticker.EngFormatter())
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


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
        values = sorted(table[colour].dropna().unique()) if colour else []
        palette = dict(zip(values, sns.color_palette("viridis", len(values))))
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


def double_descent_curves(table: pd.DataFrame, means: pd.DataFrame, axis: str, threshold, path) -> None:
    """The double-descent sweep: each ``double_descent.CURVE_COLUMNS`` quantity against the
    sweep axis (log scale), every converged model a dot and the mean per value a line, the
    interpolation threshold (``threshold``, None if no value reaches it) a dashed line."""
    used = with_train_error(table[table["is.converged"].eq(True)])
    x = f"hp.{axis}"
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.4))
    for ax, (column, label) in zip(axes.flat, CURVE_COLUMNS.items()):
        ax.set_title(label, fontsize=9)
        if f"{column}_mean" not in means or not np.isfinite(means[f"{column}_mean"].to_numpy(dtype=float)).any():
            ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
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
    """The measure outside the pruning family with the largest finite tau_a against
    ``target`` among those with a value for the most models (a measure undefined for
    some models, such as the steps to a CE the small ones never reach, is not compared
    on fewer models)."""
    baselines = set(info.loc[info["family"] != "pruning", "name"])
    rows = correlations[correlations["measure"].isin(baselines) & (correlations["target"] == target)].dropna(subset=["tau_a"])
    rows = rows[rows["n_used"] == rows["n_used"].max()]
    return None if rows.empty else rows.sort_values("tau_a", ascending=False, kind="stable")["measure"].iloc[0]


def double_descent_scatter(table: pd.DataFrame, correlations: pd.DataFrame, info: pd.DataFrame, axis: str, path,
                           target: str = "gen.test_loss") -> None:
    """Prunability and the best baseline (largest tau against the target across the sweep)
    against the test loss, one dot per converged model coloured by the sweep value, with
    tau, rho and r and their bootstrap intervals in the titles."""
    measures = [m for m in ("prunability", _best_baseline(correlations, info, target)) if m is not None]
    measures = [m for m in measures if f"measure.{m}" in table and target in table]
    if not measures:
        return _placeholder(path, "neither prunability nor a baseline was computed")
    used = table[table["is.converged"].eq(True)]
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
