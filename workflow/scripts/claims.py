"""Rule claims: each of the paper's claims K1-K6 with its statistic, interval and verdict."""

import pandas as pd

from prunability import claims
from prunability.analysis.bootstrap import bootstrap_counts
from prunability.io import redirect_output, save_csv

redirect_output(snakemake.log[0])
p = snakemake.params
table = pd.read_csv(snakemake.input.table)
info = pd.read_csv(snakemake.input.measure_info)
summary = pd.read_csv(snakemake.input.summary)
# The statistics rule's resamples (same models, resample count and seed).
counts = bootstrap_counts(len(table), p.bootstrap["resamples"], p.bootstrap["seed"])
result = claims.claims_table(
    table, info, summary, f"gen.{p.target}", counts, p.bootstrap["level"],
    p.thresholds["tau_threshold"], p.thresholds["mi_threshold"], p.sweep_axis,
)
save_csv(snakemake.output.claims, result)
with pd.option_context("display.width", 250, "display.max_colwidth", 80):
    print(result.drop(columns=["statement", "rule"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
