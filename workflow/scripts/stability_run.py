"""Rule stability_run: one run of the generalization-stability study (pruning during training)."""

from pathlib import Path

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
# The checkpoint lies outside the declared outputs (Snakemake would delete it with a
# killed job's outputs), in results/<study>/checkpoints/stability/<run>/; when to
# checkpoint is read from the config, not params, so changing it reruns nothing.
checkpoint = (Path(snakemake.output.summary).parents[3] / "checkpoints" / "stability" / snakemake.wildcards.run
              / "in_progress.pt")
train_cfg = snakemake.config["train"]
result = train_run(dict(p.run), dict(p.settings), dict(p.model), dict(p.architecture),
                   load_split(snakemake.input.split), device, p.deterministic, log=print,
                   fp32_precision=p.fp32_precision, checkpoint=checkpoint,
                   checkpoint_every=train_cfg["checkpoint_every"],
                   checkpoint_min_interval_s=train_cfg["checkpoint_min_interval_s"])
save_csv(snakemake.output.epochs, pd.DataFrame(result.epochs))
save_json(snakemake.output.summary, result.summary)
checkpoint.unlink(missing_ok=True)  # only now, with the outputs in place
