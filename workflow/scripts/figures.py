"""Rule figures: the report's figures from the table, the statistics and the curves."""

import pandas as pd

from prunability import plots
from prunability.io import redirect_output

redirect_output(snakemake.log[0])
settings = snakemake.params.figures
table = pd.read_csv(snakemake.input.table)
summary = pd.read_csv(snakemake.input.summary)
curves = pd.read_csv(snakemake.input.curves)
out = snakemake.output
plots.tau_psi_bars(summary, settings["target"], out.tau_psi)
plots.prunability_vs_gap(table, settings["target"], snakemake.params.axes, out.prunability_vs_gap)
plots.pruning_curves(curves, table, settings["curve_models"], out.pruning_curves)
print(f"wrote {', '.join(out)}")
