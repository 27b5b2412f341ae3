"""Rule double_descent: the sweep statistics of every measure, the mean curves per sweep
value with the interpolation threshold, and the sweep's two figures."""

import pandas as pd

from prunability import double_descent
from prunability.analysis.bootstrap import bootstrap_counts
from prunability.analysis.rows import CONVERGED_COL
from prunability.figures import double_descent as figures
from prunability.io import redirect_output, save_csv

redirect_output(snakemake.log[0])
p = snakemake.params
axis = p.settings["sweep_axis"]
table = pd.read_csv(snakemake.input.table)
info = pd.read_csv(snakemake.input.measure_info)
orientations = dict(zip(info["name"], info["orientation"]))
targets = [f"gen.{t}" for t in p.settings["targets"]]

means = double_descent.sweep_means(table, axis)
threshold = double_descent.interpolation_threshold(means, axis, p.settings["max_train_error"])
top = double_descent.peak(means, axis)
unconverged = int((~table[CONVERGED_COL].eq(True)).sum())
print(f"{len(table)} models over {table[f'hp.{axis}'].nunique()} values of {axis}; {unconverged} not converged (excluded)")
print(f"interpolation threshold ({axis} with mean training error <= {p.settings['max_train_error']:g}): {threshold}")
print(f"test loss peaks at {axis} {top['at']} ({top['value']:.4f}), "
      + ("strictly inside the sweep" if top["inside"] else "at an end of the sweep: no double-descent peak"))
with pd.option_context("display.width", 250, "display.max_columns", 40):
    print(means.filter(regex=f"^hp\\.|_mean$").to_string(index=False, float_format=lambda v: f"{v:.4g}"))

# The same resamples as the statistics and claims rules (same models, count and seed).
counts = bootstrap_counts(len(table), p.bootstrap["resamples"], p.bootstrap["seed"])
correlations = double_descent.sweep_correlations(table, orientations, targets, counts, p.bootstrap["level"])
with pd.option_context("display.width", 250, "display.max_columns", 20):
    print(correlations.sort_values(["target", "tau_a"], ascending=[True, False])
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
save_csv(snakemake.output.correlations, correlations)
save_csv(snakemake.output.means, means)
figures.double_descent_curves(table, means, axis, threshold, snakemake.output.curves)
figures.double_descent_scatter(table, correlations, info, axis, snakemake.output.scatter)
