"""Rule conditional_mutual_information: Jiang et al.'s CMI and the careful variant."""

import pandas as pd

from prunability.analysis.completeness import duplicate_cells, flag_partial_grid
from prunability.analysis.information import cmi_tables
from prunability.io import redirect_output, save_csv

redirect_output(snakemake.log[0])
p = snakemake.params
table = pd.read_csv(snakemake.input.table)
info = pd.read_csv(snakemake.input.measure_info)
orientations = dict(zip(info["name"], info["orientation"]))
targets = [f"gen.{t}" for t in p.targets]
values = {f"hp.{axis}": axis_values for axis, axis_values in p.values.items()}
if len(values) < 2:
    print(f"CMI conditions on pairs of grid axes; this grid varies {len(values)} axis: CMI is NaN")

cmi, scores = cmi_tables(table, orientations, targets, values, p.max_set_size)
n_duplicates = duplicate_cells(table, [f"hp.{a}" for a in p.grid_axes])
cmi = flag_partial_grid(cmi, len(p.cells), n_duplicates, p.require_full_grid, ["cmi_jiang", "cmi_careful"])
with pd.option_context("display.width", 250, "display.max_columns", 20):
    print(cmi.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
save_csv(snakemake.output.cmi, cmi)
save_csv(snakemake.output.scores, scores)
