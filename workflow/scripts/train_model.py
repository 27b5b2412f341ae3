"""Rule train_model: train one grid cell, resuming from its checkpoint if one exists."""

from pathlib import Path

import pandas as pd
import torch

from prunability.data import load_split
from prunability.io import redirect_output, save_csv, save_json, save_torch
from prunability.train import train_model

redirect_output(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

p = snakemake.params
result = train_model(
    p.hp,
    p.model,
    dict(p.train, device=p.device),
    load_split(snakemake.input.split),
    p.checkpoint,
    log=print,
)
save_torch(snakemake.output.init, result.init_state)
save_torch(snakemake.output.final, result.final_state)
save_csv(snakemake.output.curve, pd.DataFrame(result.curve))
save_json(snakemake.output.summary, result.summary)
# Only now, with every output in place, is the in-progress checkpoint obsolete.
Path(p.checkpoint).unlink(missing_ok=True)
