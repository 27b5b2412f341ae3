"""Rules measure_<family>: every measure of one family for each trained model of one job."""

import torch

from prunability.data import load_split
from prunability.io import load_json, redirect_output, save_json
from prunability.measures import compute_family
from prunability.train import DeviceData, load_model, resolve_device

redirect_output(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

p = snakemake.params
inp = snakemake.input
data = DeviceData.from_split(load_split(inp.split), resolve_device(p.device))
for i, output in enumerate(snakemake.output):
    summary = load_json(inp.summary[i])
    hp = summary["hyperparameters"]
    print(f"[{i + 1}/{len(snakemake.output)}] {output}")
    model = load_model(hp, p.model, data, inp.final[i])
    init_model = load_model(hp, p.model, data, inp.init[i])
    record = compute_family(p.family, model, init_model, data, p.settings, log=print, summary=summary)
    record["hyperparameters"] = hp
    save_json(output, record)
    print(f"{p.family}: {len(record['values'])} measures in {record['wall_time_s']:.2f} s")
