"""Figures of the prune-potential study (Liebenwein et al. 2021; optional), from the
prune_potential family's JSON details (no torch): one record per model."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .style import _placeholder, _save


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
