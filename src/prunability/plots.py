"""Figures of the report (seaborn on the Agg backend), each from the tidy tables."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .analysis.bootstrap import percentile_interval  # noqa: E402
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


def _converged(table: pd.DataFrame) -> pd.DataFrame:
    """The models that reached the training target (is.converged true)."""
    return table[table["is.converged"].eq(True)]


def _panel_message(ax, message: str) -> None:
    """Say in the panel, instead of drawing, why there is nothing to draw."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=8, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _value_palette(values) -> dict:
    """A viridis colour for each distinct value of ``values``, in sorted order."""
    values = sorted(pd.unique(pd.Series(values).dropna()))
    return dict(zip(values, sns.color_palette("viridis", len(values))))


def _first_varying_axis(table: pd.DataFrame, axes: list[str]) -> str | None:
    """The hp column of the first of ``axes`` with more than one value in ``table``."""
    return next((f"hp.{a}" for a in axes if f"hp.{a}" in table and table[f"hp.{a}"].nunique() > 1), None)


def _log_if_wide(ax, values: np.ndarray, which: str = "x", ratio: float = 100.0) -> None:
    """A log scale when every value is positive and they span more than ``ratio``."""
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() > ratio * values.min():
        getattr(ax, f"set_{which}scale")("log")


def _log_axis(ax, which: str, plain: bool = False) -> None:
    """A log scale on ``which`` ("x" or "y"), labelled 1, 2, 5 per decade: a grid spans
    about a decade of sizes, too little for labels at powers of ten only (within half a
    decade at every integer multiple, over more than three at powers of ten only: call it
    after drawing). Labels in
    engineering notation (50 k, 100 k), or with ``plain`` as plain numbers (0.01, 0.02)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    low, high = sorted(getattr(ax, f"get_{which}lim")())
    decades = np.log10(high / low) if low > 0 else np.inf
    subs = np.arange(1.0, 10.0) if decades < 0.5 else (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
    axis.set_major_locator(matplotlib.ticker.LogLocator(subs=subs))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}") if plain
                             else matplotlib.ticker.EngFormatter())
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


FAMILY_ORDER = ["pruning", "norms", "flatness", "hessian", "optimization"]
VERDICT_COLOURS = {"supported": "#c7e9c0", "not supported": "#fcbba1", "not tested in this study": "#e0e0e0"}


# Readable words for the abbreviations in the registry's snake_case measure names.
NAME_WORDS = {"prod": "product", "spec": "spectral", "fro": "Frobenius", "pacbayes": "PAC-Bayes",
              "mag": "magnitude-aware", "dist": "distance", "orig": "origin", "fft": "(FFT)", "acc": "accuracy",
              "bn": "BN", "ce": "CE", "grad": "gradient", "l2": "L2", "hessian": "Hessian", "param": "parameter"}
# Whole names a word-by-word reading would leave unclear.
NAME_OVERRIDES = {"kept_count": "κ (kept count)", "params": "parameter count"}


def measure_label(name: str, equation=None) -> str:
    """A measure's readable name, with Jiang et al.'s equation number when it has one:
    ("log_prod_of_spec_over_margin", "31") -> "log product of spectral over margin (eq. 31)".
    The FFT variants ("31 (FFT)") say FFT in the name and keep the number."""
    label = NAME_OVERRIDES.get(name) or " ".join(NAME_WORDS.get(word, word) for word in name.split("_"))
    if isinstance(equation, str) and equation.strip():
        label += f" (eq. {equation.split()[0]})"
    elif isinstance(equation, (int, float)) and np.isfinite(equation):
        label += f" (eq. {equation:g})"  # a column of plain numbers reads back from CSV as floats
    return label


def measure_labels(info: pd.DataFrame) -> dict:
    """name -> measure_label for every measure of measure_info (its equation column may be absent)."""
    equations = info.get("equation", pd.Series(None, index=info.index, dtype=object))
    return {name: measure_label(name, equation) for name, equation in zip(info["name"], equations)}


def _label(labels: dict, name: str) -> str:
    """The readable label of ``name`` (from measure_labels), without an equation number for a
    measure measure_info lacks."""
    return labels.get(name) or measure_label(name)


def _ordered_families(families) -> list[str]:
    """The distinct ``families``: those of FAMILY_ORDER in its order, then the others sorted."""
    families = set(families)
    return [f for f in FAMILY_ORDER if f in families] + sorted(families - set(FAMILY_ORDER))


def _family_palette(info: pd.DataFrame) -> dict:
    families = _ordered_families(info["family"])
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


HIGHLIGHT = "prunability"  # the paper's measure: highlighted wherever measures are listed
HIGHLIGHT_COLOUR = "#fff3b0"


def _highlight_row(ax, y: float) -> None:
    """A shaded band behind row ``y`` (gid "highlight"): the paper's measure among the others."""
    ax.axhspan(y - 0.5, y + 0.5, color=HIGHLIGHT_COLOUR, zorder=0, linewidth=0, gid="highlight")


def _measure_ticks(ax, names: list[str], labels: dict, offset: float = 0.0, fontsize: float = 7) -> None:
    """Readable measure names as y tick labels at offset + 0, 1, ... (a heatmap's rows are
    centred on 0.5, 1.5, ...); the highlighted measure in bold."""
    ax.set_yticks(np.arange(len(names)) + offset, [_label(labels, n) for n in names], fontsize=fontsize)
    for tick, name in zip(ax.get_yticklabels(), names):
        if name == HIGHLIGHT:
            tick.set_fontweight("bold")


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
    baselines = set(info.loc[info["family"] != "pruning", "name"])
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


# The two curves of each pruning panel: the search's own ranking and one random mask.
PRUNING_CURVES = {"magnitude": ("global magnitude pruning", "C0", "-"), "random_seed_0": ("random mask (seed 0)", "C3", "--")}
TOLERANCE_COLOUR = "C1"


def _pruning_panel(ax, model_curves: pd.DataFrame, prunability: float, title: str) -> None:
    """One model's training loss (log) against the kept fraction: the curves of
    PRUNING_CURVES, the loss tolerance (solid orange) and the prunability (dotted black)."""
    for curve, (_, colour, style) in PRUNING_CURVES.items():
        rows = model_curves[model_curves["curve"] == curve].sort_values("alpha")
        ax.plot(rows["alpha"], rows["loss"], style, color=colour, linewidth=1.2)
    ax.axhline(model_curves["bound"].iloc[0], color=TOLERANCE_COLOUR, linewidth=1.5, zorder=3)
    if np.isfinite(prunability):
        ax.axvline(prunability, color="black", linestyle=":", linewidth=1.2)
    _log_axis(ax, "y", plain=True)  # kept fractions stay linear: the curves stop where the loosest criterion fails
    ax.set_title(title, fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, which="both", linewidth=0.5)


def _pruning_grid(curves: pd.DataFrame, table: pd.DataFrame, target: str, models: list, columns: int, title: str,
                  path) -> None:
    """One _pruning_panel per model of ``models`` (in that order), ``columns`` per row;
    each panel's title gives the model's hyperparameters, prunability and ``target``."""
    by_model = table.set_index("model")
    rows = -(-len(models) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.5 * rows + 0.8), squeeze=False,
                             layout="constrained")
    for ax, model in zip(axes.flat, models):
        prunability, gap = by_model.loc[model, "measure.prunability"], by_model.loc[model, f"gen.{target}"]
        _pruning_panel(ax, curves[curves["model"] == model], prunability,
                       f"{_two_lines(model)}\nprunability {prunability:.3f}, {target} {gap:.3g}")
    lowest = curves.loc[curves["model"].isin(models), "alpha"].min()
    for ax in axes.flat[:len(models)]:
        ax.set_xlim(lowest - 0.02, 1.02)  # one kept-fraction range for every panel, so they compare at a glance
    for ax in axes.flat[len(models):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colour, linestyle=style, label=label)
               for label, colour, style in PRUNING_CURVES.values()]
    handles += [plt.Line2D([], [], color=TOLERANCE_COLOUR, linewidth=1.5, label="loss tolerance (1 + ε) L₀ + δ"),
                plt.Line2D([], [], color="black", linestyle=":", label="prunability: the smallest kept fraction "
                                                                      "from which every larger one is within it")]
    fig.supxlabel("kept fraction α of the prunable weights", fontsize=9)
    fig.supylabel("training loss (log)", fontsize=9)
    # the title heads the legend: constrained layout leaves no room for a suptitle above an outside legend
    fig.legend(handles=handles, loc="outside upper center", ncol=2, fontsize=8, title=title, title_fontsize=10,
               frameon=False)
    _save(fig, path)


def _curves_and_prunability(curves: pd.DataFrame, table: pd.DataFrame) -> pd.Series | str:
    """Prunability of the converged models with a finite value and a stored magnitude
    curve (model -> value), or the reason there is nothing to draw."""
    if curves.empty or "measure.prunability" not in table:
        return "no pruning curves (measures.families lacks pruning)"
    used = _converged(table)
    used = used[used["model"].isin(curves["model"])]
    prunability = used.set_index("model")["measure.prunability"].dropna()
    return prunability if not prunability.empty else "no converged model has a finite prunability and a stored pruning curve"


def pruning_curves(curves: pd.DataFrame, table: pd.DataFrame, target: str, n_models: int, path) -> None:
    """Training loss against kept fraction (global magnitude pruning and one random mask)
    for ``n_models`` converged models spread over the range of prunability (pick_spread)."""
    prunability = _curves_and_prunability(curves, table)
    if isinstance(prunability, str):
        return _placeholder(path, prunability)
    models = pick_spread(prunability, n_models)
    _pruning_grid(curves, table, target, models, min(3, len(models)),
                  f"Pruning curves of {len(models)} of {len(prunability)} models, spread over the range of prunability",
                  path)


def pruning_curves_all(curves: pd.DataFrame, table: pd.DataFrame, target: str, path) -> None:
    """The pruning curves of every converged model with a prunability, most prunable first."""
    prunability = _curves_and_prunability(curves, table)
    if isinstance(prunability, str):
        return _placeholder(path, prunability)
    models = prunability.sort_values(kind="stable").index.tolist()
    _pruning_grid(curves, table, target, models, min(6, len(models)),
                  f"Pruning curves of all {len(models)} converged models, in increasing prunability", path)


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


def measures_vs_gap(table: pd.DataFrame, summary: pd.DataFrame, info: pd.DataFrame, target: str, path) -> None:
    """Small multiples: prunability, kappa, the norms and the flatness measure with the
    largest tau (_best_measure) and effective dimensionality against ``target``, one dot
    per converged model, each panel titled with the measure's tau and bootstrap interval
    from summary.csv (so the same models and resamples as the tau figure)."""
    rows = summary[summary["target"] == f"gen.{target}"]

    def best(family):
        return _best_measure(rows, info.loc[info["family"] == family, "name"])

    panels = (("", "prunability"), ("", "kept_count"), ("best norms measure: ", best("norms")),
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


def _best_measure(correlations: pd.DataFrame, measures) -> str | None:
    """The measure of ``measures`` with the largest finite tau_a in ``correlations`` (rows
    of one target) among those with a value for the most models (a measure undefined for
    some models, such as the steps to a CE the small ones never reach, is not compared
    on fewer models); None if none has a tau."""
    rows = correlations[correlations["measure"].isin(set(measures))].dropna(subset=["tau_a"])
    rows = rows[rows["n_used"] == rows["n_used"].max()]
    return None if rows.empty else rows.sort_values("tau_a", ascending=False, kind="stable")["measure"].iloc[0]


def _best_baseline(correlations: pd.DataFrame, info: pd.DataFrame, target: str) -> str | None:
    """The measure outside the pruning family with the largest tau_a against ``target`` (_best_measure)."""
    return _best_measure(correlations[correlations["target"] == target], info.loc[info["family"] != "pruning", "name"])


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


# --------------------------------------------------------------------------- prune potential (Liebenwein et al. 2021)
# Read from the prune_potential family's JSON details (no torch): one record per model.


def prune_potential_frame(records: list[dict]) -> pd.DataFrame:
    """One row per model and distribution: model (index), distribution ("train", "test" or
    "<corruption>/s<severity>"), corruption ("clean" for train and test), severity (0 for
    them) and prune_potential."""
    rows = []
    for i, record in enumerate(records):
        for key, value in record["details"].get("prune_potentials", {}).items():
            corruption, _, severity = key.partition("/s")
            rows.append(dict(model=i, distribution=key, corruption=corruption if severity else "clean",
                             severity=int(severity) if severity else 0, split=key if not severity else "test",
                             prune_potential=value))
    return pd.DataFrame(rows, columns=["model", "distribution", "corruption", "severity", "split", "prune_potential"])


def prune_potential_summary(frame: pd.DataFrame, resamples: int, level: float, seed: int) -> pd.DataFrame:
    """Per distribution: models, mean prune potential with a percentile-bootstrap interval of
    the mean (models resampled), standard deviation, min, median and max across models.
    The models are drawn by index from one generator the distributions share, not with
    bootstrap_counts: other draws would move every published interval."""
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in frame.groupby("distribution", sort=False):
        values = group["prune_potential"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        low = high = float("nan")
        if len(values):
            means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
            low, high = percentile_interval(means, level)
        first = group.iloc[0]
        rows.append(dict(distribution=key, corruption=first["corruption"], severity=first["severity"], models=len(values),
                         mean=values.mean() if len(values) else float("nan"), mean_low=low, mean_high=high,
                         std=values.std(ddof=1) if len(values) > 1 else float("nan"),
                         min=values.min() if len(values) else float("nan"),
                         median=np.median(values) if len(values) else float("nan"),
                         max=values.max() if len(values) else float("nan")))
    return pd.DataFrame(rows)


def prune_potential_by_distribution(frame: pd.DataFrame, delta: float, path) -> None:
    """Prune potential of every model on the clean training and test sets (left) and on
    each corrupted test set (right: one box per corruption and severity); every model a
    dot, the clean-test median a dashed line across both panels."""
    if frame.empty:
        _placeholder(path, "no prune potential computed")
        return
    clean = frame[frame["severity"].eq(0)].assign(set=lambda f: f["split"].map({"train": "train", "test": "test"}))
    shifted = frame[frame["severity"].gt(0)].assign(
        corruption=lambda f: f["corruption"].str.replace("_", " "), severity=lambda f: "severity " + f["severity"].astype(str))
    order = list(pd.unique(shifted["corruption"]))
    hue_order = [f"severity {s}" for s in sorted(frame.loc[frame["severity"].gt(0), "severity"].unique())]
    palette = dict(zip(hue_order, sns.color_palette("rocket_r", len(hue_order) + 1)[1:]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(9, 1.25 * len(order) + 3), 4.6), sharey=True,
                                      gridspec_kw={"width_ratios": [1.6, max(len(order), 1)]})
    clean_palette = {"train": "#8c8c8c", "test": "#4c72b0"}
    for plot, extra in ((sns.boxplot, dict(fliersize=0, linewidth=0.8, boxprops=dict(alpha=0.6))),
                        (sns.stripplot, dict(size=2.5, alpha=0.8, legend=False))):
        plot(data=clean, x="set", y="prune_potential", hue="set", order=["train", "test"], palette=clean_palette,
             ax=left, **extra)
        if not shifted.empty:
            plot(data=shifted, x="corruption", y="prune_potential", hue="severity", order=order, hue_order=hue_order,
                 palette=palette, ax=right, **({"dodge": True} if plot is sns.stripplot else {}), **extra)
    median = clean.loc[clean["set"].eq("test"), "prune_potential"].median()
    for ax in (left, right):
        ax.axhline(median, color="#4c72b0", linestyle="--", linewidth=0.9)
        ax.set_xlabel("")
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    left.set_title("clean", fontsize=9)
    right.set_title("corrupted test sets (dashed: median on the clean test set)", fontsize=9)
    right.tick_params(axis="x", rotation=20)
    left.set_ylabel(f"prune potential (δ = {100 * delta:g}%)")
    left.set_ylim(-0.02, 1.0)
    if right.get_legend() is not None:
        right.legend(fontsize=7, ncol=len(hue_order), loc="upper right", frameon=False)
    n = frame["model"].nunique()
    fig.suptitle(f"Prune potential per distribution ({n} models; global magnitude pruning, no retraining)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _mean_band(ax, x, curves: np.ndarray, color, label: str, marker: str | None = None) -> None:
    """The mean of ``curves`` (models x points) with a band of ± one standard deviation."""
    mean, std = np.nanmean(curves, axis=0), np.nanstd(curves, axis=0)
    ax.plot(x, mean, color=color, linewidth=1.4, label=label, marker=marker, markersize=4)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.18, linewidth=0)


def excess_error_curves(records: list[dict], fit_max: float, path) -> None:
    """Excess error against prune ratio: mean over the corruptions of each severity (left)
    and each corruption at the highest severity (right); mean across models ± one
    standard deviation, the slope's fit range shaded."""
    records = [r for r in records if r["details"].get("excess_error")]
    if not records:
        _placeholder(path, "no excess error computed")
        return
    ratios = np.asarray(records[0]["details"]["prune_ratios"])
    keys = records[0]["details"]["excess_error"].keys()
    severities = sorted(int(k.split("/s")[1]) for k in keys if k.startswith("mean/"))
    top = severities[-1]
    corruptions = [k.split("/s")[0] for k in keys if not k.startswith("mean/") and k.endswith(f"/s{top}")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))  # own y scales: the per-corruption curves reach further
    colours = sns.color_palette("rocket_r", len(severities) + 1)[1:]
    for colour, s in zip(colours, severities):
        curves = np.array([r["details"]["excess_error"][f"mean/s{s}"] for r in records])
        _mean_band(left, ratios, curves, colour, f"severity {s}")
    for colour, c in zip(sns.color_palette("tab10", len(corruptions)), corruptions):
        curves = np.array([r["details"]["excess_error"][f"{c}/s{top}"] for r in records])
        _mean_band(right, ratios, curves, colour, c.replace("_", " "))
    for ax, title in ((left, "mean over the corruptions, per severity"), (right, f"per corruption, severity {top}")):
        ax.axhline(0, color="black", linewidth=0.6)
        ax.axvspan(0, fit_max, color="grey", alpha=0.08, linewidth=0)
        ax.set_xlabel("prune ratio (share of Conv/Linear weights removed)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
        ax.set_ylabel("excess error (pruned − unpruned shift penalty)")
    fig.suptitle(f"Excess error against prune ratio ({len(records)} models; mean ± 1 sd; "
                 f"slope fitted over the shaded range r ≤ {fit_max:g})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def noise_agreement(records: list[dict], path) -> None:
    """The input-noise test: top-1 agreement with the unpruned net against eps for the net
    pruned to its clean-test prune potential and to fixed prune ratios (left); the
    commensurate prune ratio against eps (right). Mean across models ± one sd."""
    records = [r for r in records if r["details"].get("noise")]
    if not records:
        _placeholder(path, "no input-noise test computed (measures.prune_potential.noise_eps is empty)")
        return
    eps = np.asarray(records[0]["details"]["noise"]["eps"])
    ratios = list(records[0]["details"]["prune_ratios"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    at_potential = np.array([np.asarray(r["details"]["noise"]["agreement"])[ratios.index(r["details"]["prune_potentials"]["test"])]
                             for r in records])
    _mean_band(left, eps, at_potential, "C3", "at its clean-test prune potential", marker="o")
    fixed = sorted({min(ratios, key=lambda r: abs(r - target)) for target in (0.5, 0.7, 0.9)})
    for colour, ratio in zip(sns.color_palette("crest", len(fixed)), fixed):
        curves = np.array([np.asarray(r["details"]["noise"]["agreement"])[ratios.index(ratio)] for r in records])
        _mean_band(left, eps, curves, colour, f"at prune ratio {ratio:g}", marker="o")
    left.set_ylabel("top-1 agreement with the unpruned net")
    left.set_title("functional similarity under uniform input noise", fontsize=9)
    commensurate = np.array([r["details"]["noise"]["commensurate_prune_ratio"] for r in records])
    _mean_band(right, eps, commensurate, "C0", "commensurate prune ratio under noise", marker="o")
    clean = np.mean([r["details"]["prune_potentials"]["test"] for r in records])
    right.axhline(clean, color="grey", linestyle="--", linewidth=1, label=f"clean-test prune potential (mean {clean:.2f})")
    right.set_ylabel("prune ratio")
    right.set_title("prune potential of the noisy accuracy", fontsize=9)
    for ax in (left, right):
        ax.set_xlabel("ε (uniform noise half-width, normalised input)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    noise = records[0]["details"]["noise"]
    fig.suptitle(f"Input-noise test ({len(records)} models; {noise['images']} images × {noise['samples']} draws per ε; "
                 "mean ± 1 sd)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


# --------------------------------------------------------------------------- generalization stability (Bartoldson et al. 2020)

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
