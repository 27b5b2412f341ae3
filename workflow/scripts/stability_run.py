"""Rule stability_run: one run of the generalization-stability study (pruning during training)."""

import pandas as pd
import torch

from prunability.data import load_split
from prunability.gpu_slots import device_for_job
from prunability.io import redirect_output, save_csv, save_json
from prunability.stability import train_run

redirect_output(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
p = snakemake.params
# On a GPU, hold one of resources.jobs_per_gpu slots for the job's life, as train_model.
device, gpu_slot = device_for_job(p.device, snakemake.config["resources"]["jobs_per_gpu"], owner=snakemake.log[0])
result = train_run(dict(p.run), dict(p.settings), dict(p.model), dict(p.architecture),
                   load_split(snakemake.input.split), device, p.deterministic, log=print)
save_csv(snakemake.output.epochs, pd.DataFrame(result.epochs))
save_json(snakemake.output.summary, result.summary)
