"""Rule stability_analysis: each run's mean stability and best post-pruning test accuracy,
Kendall tau and Pearson r across runs with bootstrap intervals, and the two figures."""

from pathlib import Path

import pandas as pd

from prunability.figures import stability as figures
from prunability.io import load_json, redirect_output, save_csv
from prunability.stability_analysis import correlations, run_group, run_outcome

redirect_output(snakemake.log[0])
p = snakemake.params
rows, logs = [], []
for summary_path, epochs_path in zip(snakemake.input.summaries, snakemake.input.epochs):
    name = Path(summary_path).parent.name
    run = p.runs[name]
    epochs = pd.read_csv(epochs_path)
    summary = load_json(summary_path)
    # the outcome from the per-epoch log, as the official analysis computes it from its logs
    rows.append({"run": name, "kind": run["kind"], "group": run_group(run), "target": run["target"],
                 "mode": run.get("mode"), "retrain_period": run["retrain_period"], "seed": run["seed"],
                 **run_outcome(epochs), "final_train_acc": float(epochs["train_acc"].iloc[-1]),
                 "wall_time_s": summary["wall_time_s"]})
    logs.append(epochs.assign(run=name))
runs = pd.DataFrame(rows)
epochs = pd.concat(logs, ignore_index=True)
table = correlations(runs, p.bootstrap)

with pd.option_context("display.width", 250, "display.max_columns", 30):
    print(f"{len(runs)} runs; total training time {runs['wall_time_s'].sum():.0f} s")
    print(runs.groupby(["group", "retrain_period"], dropna=False)[["mean_stability", "best_test_acc", "gap_at_best",
                                                                     "final_train_acc"]]
          .agg(["mean", "min", "max"]).to_string(float_format=lambda v: f"{v:.4f}"))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
save_csv(snakemake.output.runs, runs)
save_csv(snakemake.output.correlations, table)
figures.stability_vs_accuracy(runs, table, snakemake.output.scatter)
figures.stability_curves(epochs, runs, snakemake.output.curves)
