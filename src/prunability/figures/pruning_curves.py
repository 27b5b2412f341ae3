"""Figures of the pruning curves: a spread of models, or every model."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import _converged, _log_axis, _placeholder, _save


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
