# Configuration, the grid of models, and paths shared by every rule.

import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import Paramspace, validate

# Jobs import the library from src/, also inside per-rule conda envs where the
# package itself is not installed. The variable is set here for the jobs (every
# process that parses this file, cluster nodes included, sets it again); nothing
# is required from the user's environment.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p
        for p in (str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH"))
        if p
    )
)

from prunability.config import (
    cifar10_local_files,
    config_error_message,
    filled_and_validated,
    load_config_file,
)
from prunability.families import family_specs
from prunability.grid import full_factorial, job_cell_patterns, statistics_axes

# Unknown keys and bad values stop the run here, before any job, naming the key;
# defaults from the schema are filled in (by the function the benchmarks use too).
# Each configuration file is read again strictly first: a key given twice (which
# YAML lets the last win) names its line.
SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
try:
    for path in workflow.configfiles:
        load_config_file(path)
    config.update(
        filled_and_validated(
            config, lambda c: validate(c, str(SCHEMA), set_default=False), SCHEMA
        )
    )
except Exception as error:
    raise WorkflowError(
        f"invalid configuration: {config_error_message(error)}"
    ) from None

RESULTS = f"results/{config['study']}"
MODELS = f"{RESULTS}/models"
MEASURES = f"{RESULTS}/measures"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
STATS = f"{RESULTS}/stats"
CIFAR10_ARCHIVE = f"{config['data']['download_dir']}/cifar-10-python.tar.gz"
# The report's first page: the description of the study, and the page with its answer.
REPORT_DESCRIPTION = os.path.join(workflow.basedir, "workflow/report/workflow.rst")
REPORT_FRONT = f"{RESULTS}/report/front.rst"

# One model per row; paths like models/depth~2/width~1/batchnorm~True/dropout~0.0/
GRID = Paramspace(full_factorial(config["grid"]))
CELLS = list(GRID.instance_patterns)
# The hyperparameters of granulated Kendall and CMI.
AXES = statistics_axes(
    config["grid"], config["statistics"]["axes"], config["statistics"]["replicate_axis"]
)

# Jobs: a training job (and a job per measure family) handles every cell that shares
# the values of the axes outside resources.axes_within_job, so start-up is paid once
# per job. Those axes are the jobs' wildcards; JOB_CELLS holds one pattern per cell of
# a job, e.g. depth~{depth}/width~{width}/lr~0.1/batch_size~32.
JOB_CELLS = job_cell_patterns(CELLS, config["resources"]["axes_within_job"])
JOB = (
    "/".join(
        f"{axis}~{{{axis}}}"
        for axis in config["grid"]
        if axis not in config["resources"]["axes_within_job"]
    )
    or "all"
)


wildcard_constraints:
    **{axis: "[^/]+" for axis in config["grid"]},


def job_files(template):
    """``template`` (with ``{cell}``) for every cell of one job."""
    return [template.replace("{cell}", cell) for cell in JOB_CELLS]


def data_inputs(wildcards):
    """The downloaded archive, or the files of a local CIFAR-10 folder (so that a
    changed folder rebuilds the split)."""
    data = config["data"]
    if data["source"] != "cifar10":
        return {}
    if data["local_dir"] is None:
        return {"archive": CIFAR10_ARCHIVE}
    return {"local_files": cifar10_local_files(data["local_dir"])}


def family_outputs(family):
    """One family's JSON for every cell, in the order of CELLS."""
    return expand(f"{MEASURES}/{{cell}}/{family}.json", cell=CELLS)


def kept_measure_records(wildcards, output):
    """Where a measure job keeps each finished cell's record until all its outputs are
    written (Snakemake deletes a failed job's outputs): under checkpoints/, as training.
    """
    return [
        path.replace(f"{MEASURES}/", f"{RESULTS}/checkpoints/measures/", 1)
        for path in output
    ]


def measure_outputs():
    return expand(
        f"{MEASURES}/{{cell}}/{{family}}.json",
        cell=CELLS,
        family=config["measures"]["families"],
    )


# Cluster resources per job and attempt (a retry asks twice, three times as much), by
# the size of the data: digits, a CIFAR-10 subset (data.max_train), full CIFAR-10 (the
# GPU presets: not measured, a guess). README "On a SLURM cluster": sources, overrides.
DATA_SIZE = (
    "digits"
    if config["data"]["source"] == "digits"
    else "subset" if config["data"]["max_train"] else "full"
)
JOB_MEM_MB = {"digits": 1000, "subset": 2000, "full": 8000}[DATA_SIZE]
# minutes per cell of a job: training, the families of cost "sweep" (their FAMILY), those of "quick"
MINUTES_PER_CELL = {
    "train": {"digits": 2, "subset": 15, "full": 720},
    "sweep": {"digits": 2, "subset": 15, "full": 120},
    "quick": {"digits": 1, "subset": 2, "full": 60},
}


def job_mem_mb(wildcards, attempt):
    return attempt * JOB_MEM_MB


def job_runtime(kind):
    """The runtime resource (minutes) of a job of ``kind`` (a key of MINUTES_PER_CELL)."""
    minutes = 5 + len(JOB_CELLS) * MINUTES_PER_CELL[kind][DATA_SIZE]
    return lambda wildcards, attempt: attempt * minutes


# --- generalization stability (Bartoldson et al. 2020)
# The runs of the optional branch (none unless generalization_stability.enabled), by
# name such as smallest-p4-s0; each job's params hold only its own run's settings.
from prunability.stability_analysis import plan_runs

STABILITY = f"{RESULTS}/stability"
STABILITY_RUNS = (
    plan_runs(config["generalization_stability"])
    if config["generalization_stability"]["enabled"]
    else {}
)


def stability_run(wildcards):
    """The settings of one run of the branch (kind, target, retrain_period, seed, mode)."""
    if wildcards.run not in STABILITY_RUNS:
        raise WorkflowError(
            f"unknown generalization-stability run {wildcards.run!r}; the study has "
            f"{sorted(STABILITY_RUNS) or 'none (generalization_stability.enabled is false)'}"
        )
    return STABILITY_RUNS[wildcards.run]


def stability_runtime(wildcards, attempt):
    """Minutes of one run: one model's training, as train_model's per cell."""
    return attempt * (5 + MINUTES_PER_CELL["train"][DATA_SIZE])


def stability_settings(wildcards):
    """What of generalization_stability one run depends on: the training recipe, the
    layers and score unless it is a baseline, the noise settings if it is a control. A
    new seed or target adds runs and reruns none."""
    section = config["generalization_stability"]
    kind = stability_run(wildcards)["kind"]
    settings = {"train": section["train"]}
    if kind != "baseline":
        settings.update(layers=section["layers"], score=section["score"])
    if kind == "noise":
        settings["noise"] = {k: v for k, v in section["noise"].items() if k != "modes"}
    return settings


# --- what each measure family declares it needs (prunability.families)
FAMILY_SPECS = family_specs()


def family_input_files(family):
    """The extra input files a family declares, by name, under results/<study>/."""
    return {
        name: f"{RESULTS}/{path}"
        for name, path in FAMILY_SPECS[family]["inputs"].items()
    }


def family_settings(family):
    """A family's settings as its measure job gets them, with each extra input's path as
    ``<name>_file``."""
    files = {f"{name}_file": path for name, path in family_input_files(family).items()}
    return {**config["measures"][family], **files}
