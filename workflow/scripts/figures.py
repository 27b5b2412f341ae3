"""Rule figures: the report's figures from the table, the statistics and the curves."""

import pandas as pd

from prunability import plots
from prunability.io import redirect_output

redirect_output(snakemake.log[0])
p = snakemake.params
target = p.figures["target"]
read = {name: pd.read_csv(path) for name, path in snakemake.input.items()}
out = snakemake.output
plots.claims_figure(read["claims"], p.level, out.claims)
plots.tau_intervals(read["summary"], read["measure_info"], target, out.tau_psi, read["replicates"], read["seed_oracle"])
plots.psi_heatmap(read["granulated"], read["summary"], read["measure_info"], target, out.psi_heatmap)
plots.cmi_bars(read["cmi"], target, out.cmi)
plots.prediction_mi_heatmaps(read["mi"], read["measure_info"], p.main_target, out.prediction_mi)
plots.tolerance_sensitivity(read["sensitivity"], target, p.rel_tol, out.tolerance_sensitivity)
plots.prunability_vs_gap(read["table"], target, p.axes, out.prunability_vs_gap)
plots.pruning_curves(read["curves"], read["table"], p.figures["curve_models"], out.pruning_curves)
plots.size_scaling(read["table"], out.size_scaling)
print(f"wrote {', '.join(out)}")
