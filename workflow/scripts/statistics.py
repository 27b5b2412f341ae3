"""Rule statistics: tau, granulated Kendall and their bootstrap intervals of every measure
against every target; the grid's completeness; prunability's sensitivity to the tolerance;
and, when the grid has a replicate axis (statistics.replicate_axis, e.g. seed), the seed
noise floor: tau and Psi within each replicate, their spread, and the seed oracle."""

import pandas as pd

from prunability.analysis.bootstrap import bootstrap_counts, bootstrap_intervals
from prunability.analysis.completeness import duplicate_cells, flag_partial_grid, grid_completeness
from prunability.analysis.ranking import summary_tables, tolerance_sensitivity
from prunability.analysis.replicates import seed_noise_floor
from prunability.io import redirect_output, save_csv
from prunability.table import prunability_by_tolerance

redirect_output(snakemake.log[0])
p = snakemake.params
table = pd.read_csv(snakemake.input.table)
info = pd.read_csv(snakemake.input.measure_info)
orientations = dict(zip(info["name"], info["orientation"]))
targets = [f"gen.{t}" for t in p.targets]
axes = [f"hp.{a}" for a in p.axes]

# Which cells of the grid the statistics lack, listed before anything is computed.
grid_axes = [f"hp.{a}" for a in p.grid_axes]
completeness = grid_completeness(table, p.cells, grid_axes)
n_duplicates = duplicate_cells(table, grid_axes)
if completeness.empty:
    print(f"grid complete: {len(p.cells)} cells, one converged model each")
else:
    print(f"grid incomplete ({len(p.cells)} cells); Psi is computed on a partial grid"
          + (" and set to NaN (require_full_grid)" if p.require_full_grid else " and flagged (full_grid = False)"))
    print(completeness.to_string(index=False))
save_csv(snakemake.output.completeness, completeness)

summary, granulated = summary_tables(table, orientations, targets, axes)
counts = bootstrap_counts(len(table), p.bootstrap["resamples"], p.bootstrap["seed"])
intervals = bootstrap_intervals(table, orientations, targets, axes, counts, p.bootstrap["level"])
summary = summary.merge(intervals, on=["measure", "target"])
summary = flag_partial_grid(summary, len(p.cells), n_duplicates, p.require_full_grid, ["Psi", "Psi_low", "Psi_high"])
if p.require_full_grid:
    granulated = granulated.merge(summary[["measure", "target", "full_grid"]], on=["measure", "target"])
    granulated.loc[~granulated.pop("full_grid"), "psi"] = float("nan")

unconverged = int((~table["is.converged"].astype(bool)).sum())
print(f"{len(table)} models; {unconverged} not converged, excluded from every statistic")
nonfinite = summary[summary["excluded_nonfinite"] > 0]
for row in nonfinite.itertuples():
    print(f"  {row.measure} vs {row.target}: {row.excluded_nonfinite} more excluded for non-finite values")
level = f"{100 * p.bootstrap['level']:g}%"
print(f"{level} intervals from {p.bootstrap['resamples']} bootstrap resamples of the models (seed {p.bootstrap['seed']})")
columns = ["measure", "target", "n_used", "tau_a", "tau_a_low", "tau_a_high", "tau_b", "Psi", "Psi_low", "Psi_high", "full_grid"]
with pd.option_context("display.width", 250, "display.max_columns", 20):
    print(summary[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
save_csv(snakemake.output.summary, summary)
save_csv(snakemake.output.granulated, granulated)

# How tau and Psi of prunability move with the tolerance, from the stored curves.
by_tolerance = prunability_by_tolerance(pd.read_csv(snakemake.input.curves), p.rel_tols, p.abs_tol)
sensitivity = tolerance_sensitivity(table, by_tolerance, targets, axes, counts, p.bootstrap["level"])
sensitivity = flag_partial_grid(sensitivity, len(p.cells), n_duplicates, p.require_full_grid, ["Psi", "Psi_low", "Psi_high"])
print("prunability against the tolerance rel_tol (abs_tol fixed):")
print(sensitivity[["rel_tol", "target", "n_used", "tau_a", "tau_a_low", "tau_a_high", "Psi"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
save_csv(snakemake.output.sensitivity, sensitivity)

# The seed noise floor: how much tau and Psi move between repeated runs of the same grid,
# and how well one run's targets rank another's (the seed oracle).
replicate, per_replicate, spread, oracle = seed_noise_floor(
    table, orientations, targets, p.grid, p.axes, p.replicate_axis, p.require_full_grid)
if replicate is None:
    print(f"no replicate axis (statistics.replicate_axis = {p.replicate_axis!r} is not a grid axis with two or more "
          "values outside statistics.axes): replicates.csv, replicate_spread.csv and seed_oracle.csv are empty")
else:
    print(f"replicate axis {replicate} ({len(p.grid[replicate])} values); spread of tau and Psi over the replicates:")
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(spread.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("seed oracle (tau and Psi between the targets of two replicates, cell by cell):")
    print(oracle.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
save_csv(snakemake.output.replicates, per_replicate)
save_csv(snakemake.output.replicate_spread, spread)
save_csv(snakemake.output.seed_oracle, oracle)
