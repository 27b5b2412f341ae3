"""Rule prediction_mutual_information: how much every two measures' predictions overlap."""

import pandas as pd

from prunability.analysis.information import prediction_mi_table
from prunability.io import redirect_output, save_csv

redirect_output(snakemake.log[0])
table = pd.read_csv(snakemake.input.table)
measures = pd.read_csv(snakemake.input.measure_info)["name"].tolist()
mi = prediction_mi_table(table, measures, f"gen.{snakemake.params.target}")
save_csv(snakemake.output.mi, mi)
if "prunability" in measures:
    rows = mi[(mi["other"] == "prunability") & (mi["base"] != "prunability")].sort_values("mi")
    print(f"prunability's predictions against each measure's ({snakemake.params.target}):")
    print(rows.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
