"""Rule collect_table: gather train.json and every measure JSON into one tidy table, and the
platforms they were computed on into platform.json."""

from prunability.io import load_json, redirect_output, save_csv, save_json
from prunability.platform import study_platforms
from prunability.table import build_tables

redirect_output(snakemake.log[0])
p = snakemake.params
# Each input list follows the order of p.cells.
summaries = [load_json(path) for path in snakemake.input.train]
records = [[load_json(snakemake.input[family][i]) for family in p.families] for i in range(len(p.cells))]
table, info, curves, costs = build_tables(p.cells, summaries, records)
save_csv(snakemake.output.table, table)
save_csv(snakemake.output.measure_info, info)
save_csv(snakemake.output.curves, curves)
save_csv(snakemake.output.costs, costs)
platforms = study_platforms(p.cells, summaries, records)
save_json(snakemake.output.platform, platforms)
print(
    f"{len(table)} models, {len(info)} measures; converged: {int(table['is.converged'].sum())}, "
    f"diverged: {int(table['is.diverged'].sum())}, all values finite: {int(table['is.finite'].sum())}"
)
per_family = costs.groupby("family")[["measure_time_s", "train_time_s"]].sum()
for family, row in per_family.iterrows():
    print(f"  {family}: {row.measure_time_s:.1f} s in all, {row.measure_time_s / row.train_time_s:.1%} of training time")
print(f"{platforms['n_platforms']} platform(s) in platform.json; {platforms['n_unrecorded']} records without one")
for entry in platforms["platforms"]:
    where = entry["platform"]
    print(f"  {where['cpu_model']} ({where['cpu_capability']}), torch {where['torch']}, {where['torch_threads']} thread(s)"
          + (f", {where['cuda_device']}" if where.get("cuda_device") else "") + f": {len(entry['cells'])} models")
