"""Rules measure_<family>: every measure of one family for each trained model of one job."""

import json
from pathlib import Path

import torch

from prunability.data import load_split
from prunability.gpu_slots import device_for_job
from prunability.io import file_sha256, keep_result, kept_result, load_json, redirect_output, save_json
from prunability.measures import compute_family
from prunability.numerics import configure_numerics
from prunability.train import DeviceData, load_model, resolve_device

redirect_output(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

p = snakemake.params
numerics = configure_numerics(p.numerics["deterministic"], p.numerics["fp32_precision"])
# On a GPU, hold one of resources.jobs_per_gpu slots for the job's life (gpu_slot keeps
# it) and run on its cuda:<index>; on the CPU, the configured device as it is. Read from
# the config, not params, so that changing it reruns nothing.
device, gpu_slot = device_for_job(p.device, snakemake.config["resources"]["jobs_per_gpu"], owner=snakemake.log[0])
inp = snakemake.input
data = DeviceData.from_split(load_split(inp.split), resolve_device(device))
device_type = data.x_train.device.type  # cpu or cuda: a retry may run on another GPU of the machine
# Every cell's models are loaded before any is measured: a damaged file stops the job
# at once, with its name, rather than after hours of measuring the other cells.
summaries = [load_json(path) for path in inp.summary]
models = [
    (load_model(s["hyperparameters"], p.model, data, final), load_model(s["hyperparameters"], p.model, data, init))
    for s, final, init in zip(summaries, inp.final, inp.init)
]
# A job that fails (out of memory, say) loses its declared outputs, so each cell's record
# is also kept under checkpoints/ until the whole job is done: a rerun on the same models
# and settings takes it back instead of measuring the cell again.
kept = [Path(path) for path in p.kept]
for i, (output, summary, (model, init_model)) in enumerate(zip(snakemake.output, summaries, models)):
    hp = summary["hyperparameters"]
    print(f"[{i + 1}/{len(snakemake.output)}] {output}")
    fingerprint = json.dumps(
        {"settings": p.settings, "numerics": p.numerics, "model": p.model, "device": device_type,
         "files": [file_sha256(path) for path in (inp.final[i], inp.init[i], inp.split)]},
        sort_keys=True,
    )
    record = kept_result(kept[i], fingerprint)
    if record is not None:
        print(f"{p.family}: taken back from {kept[i]} (measured by an earlier attempt of this job)")
    else:
        record = compute_family(p.family, model, init_model, data, p.settings, log=print, summary=summary)
        record["hyperparameters"] = hp
        record["numerics"] = numerics
        keep_result(kept[i], fingerprint, record)
        print(f"{p.family}: {len(record['values'])} measures in {record['wall_time_s']:.2f} s")
    save_json(output, record)
for path in kept:
    path.unlink(missing_ok=True)
