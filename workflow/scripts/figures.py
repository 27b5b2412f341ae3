"""Rule figures: the report's figures from the table, the statistics and the curves."""

import pandas as pd

from prunability.figures import answer, measures, pruning_curves
from prunability.figures import training as training_figures
from prunability.io import redirect_output

redirect_output(snakemake.log[0])
p = snakemake.params
target = p.figures["target"]
read = {name: pd.read_csv(path) for name, path in snakemake.input.items() if name != "training_curves"}
# every model's curve.csv, in the order of the grid's cells, with the model's name
training = pd.concat([pd.read_csv(path).assign(model=cell) for path, cell in zip(snakemake.input.training_curves, p.cells)],
                     ignore_index=True)
out = snakemake.output
answer.claims_figure(read["claims"], p.level, out.claims)
measures.prunability_vs_gap(read["table"], read["summary"], target, p.axes, out.prunability_vs_gap)
answer.tau_intervals(read["summary"], read["measure_info"], target, out.tau_psi, read["replicates"], read["seed_oracle"],
                     p.thresholds["tau_threshold"])
answer.psi_heatmap(read["granulated"], read["summary"], read["measure_info"], target, out.psi_heatmap)
measures.measures_vs_gap(read["table"], read["summary"], read["measure_info"], target, out.measures_vs_gap)
answer.prediction_mi_bars(read["mi"], read["measure_info"], p.main_target, p.thresholds["mi_threshold"], out.prediction_mi)
measures.size_scaling(read["table"], out.size_scaling)
answer.cmi_bars(read["cmi"], read["summary"], read["measure_info"], target, out.cmi)
answer.tolerance_sensitivity(read["sensitivity"], target, p.rel_tol, out.tolerance_sensitivity)
pruning_curves.pruning_curves(read["curves"], read["table"], target, p.figures["curve_models"], out.pruning_curves)
pruning_curves.pruning_curves_all(read["curves"], read["table"], target, out.pruning_curves_all)
training_figures.training_curves(training, read["table"], p.axes, p.stopping, p.ce_target, out.training_curves)
training_figures.gap_by_axis(read["table"], target, p.axes, out.gap_by_axis)
training_figures.measure_costs(read["costs"], out.measure_costs)
print(f"wrote {', '.join(out)}")
