"""Rule prune_potential_figures: prune potential per distribution (table and figure),
excess error against prune ratio, and the input-noise test, from the prune_potential
family's JSONs of the converged models."""

from prunability.analysis.prune_potential import prune_potential_frame, prune_potential_summary
from prunability.figures import prune_potential
from prunability.io import load_json, redirect_output, save_csv

redirect_output(snakemake.log[0])
p = snakemake.params
records, skipped = [], 0
for path, train in zip(snakemake.input.measures, snakemake.input.train):
    if load_json(train).get("converged") is True:
        records.append(load_json(path))
    else:
        skipped += 1
print(f"{len(records)} converged models ({skipped} not converged, left out)")
frame = prune_potential_frame(records)
summary = prune_potential_summary(frame, p.bootstrap["resamples"], p.bootstrap["level"], p.bootstrap["seed"])
print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
save_csv(snakemake.output.summary, summary)
prune_potential.prune_potential_by_distribution(frame, p.settings["delta"], snakemake.output.by_distribution)
prune_potential.excess_error_curves(records, p.settings["excess_error_max_prune_ratio"], snakemake.output.excess_error)
prune_potential.noise_agreement(records, snakemake.output.noise)
