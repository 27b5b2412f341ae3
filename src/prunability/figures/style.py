"""The shared helpers of the report's figures: saving, placeholders, palettes, log axes,
readable measure names and their ordering by family."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from ..families import family_order
from ..io import atomic_path

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


FAMILY_ORDER = family_order()  # as the families declare it
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


def _best_measure(correlations: pd.DataFrame, measures) -> str | None:
    """The measure of ``measures`` with the largest finite tau_a in ``correlations`` (rows
    of one target) among those with a value for the most models (a measure undefined for
    some models, such as the steps to a CE the small ones never reach, is not compared
    on fewer models); None if none has a tau."""
    rows = correlations[correlations["measure"].isin(set(measures))].dropna(subset=["tau_a"])
    rows = rows[rows["n_used"] == rows["n_used"].max()]
    return None if rows.empty else rows.sort_values("tau_a", ascending=False, kind="stable")["measure"].iloc[0]
