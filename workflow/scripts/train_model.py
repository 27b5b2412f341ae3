"""Rule train_model: train the cells of one job, each resuming from its checkpoint if one exists."""

from pathlib import Path

import pandas as pd
import torch

from prunability.grid import cell_hyperparameters, parse_cell
from prunability.data import load_split
from prunability.gpu_slots import device_for_job
from prunability.io import redirect_output, save_csv, save_json, save_torch
from prunability.train import train_model

redirect_output(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

p = snakemake.params
# On a GPU, hold one of resources.jobs_per_gpu slots for the job's life (gpu_slot keeps
# it) and run on its cuda:<index>; on the CPU, the configured device as it is. Read from
# the config, not params, so that changing it reruns nothing.
device, gpu_slot = device_for_job(p.device, snakemake.config["resources"]["jobs_per_gpu"], owner=snakemake.log[0])
out = snakemake.output
checkpointing = {k: v for k, v in snakemake.config["train"].items() if k.startswith("checkpoint_")}
train_cfg = dict(p.train, **checkpointing, device=device)
split = load_split(snakemake.input.split)
cells = [Path(path).parent.relative_to(p.models).as_posix() for path in out.summary]
checkpoints = [Path(p.checkpoints) / cell / "in_progress.pt" for cell in cells]
for i, cell in enumerate(cells):
    print(f"[{i + 1}/{len(cells)}] {cell}")
    hp = cell_hyperparameters(p.hyperparameters, parse_cell(cell))
    result = train_model(hp, p.model, train_cfg, split, checkpoints[i], log=print)
    save_torch(out.init[i], result.init_state)
    save_torch(out.final[i], result.final_state)
    save_csv(out.curve[i], pd.DataFrame(result.curve))
    save_json(out.summary[i], result.summary)
# Only now, with every output of the job in place, are the checkpoints obsolete: until
# then a killed job's rerun finds the finished cells there and does not train them again.
for checkpoint in checkpoints:
    checkpoint.unlink(missing_ok=True)
