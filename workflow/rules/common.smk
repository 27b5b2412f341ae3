# Configuration, the grid of models, and paths shared by every rule.

import os
from pathlib import Path

from snakemake.utils import Paramspace, validate

# Jobs import the library from src/, also inside per-rule conda envs where the
# package itself is not installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(Path(workflow.basedir) / "src"), os.environ.get("PYTHONPATH")) if p
)

from prunability.config import cell_hyperparameters, check_config, full_factorial

# Unknown keys and bad values stop the run here, before any job, naming the key;
# defaults from the schema are filled in.
validate(config, "../schemas/config.schema.yaml")
check_config(config)

RESULTS = f"results/{config['study']}"
MODELS = f"{RESULTS}/models"
MEASURES = f"{RESULTS}/measures"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"

# One model per row; paths like models/depth~2/width~1/batchnorm~True/dropout~0.0/
GRID = Paramspace(full_factorial(config["grid"]))
CELL = GRID.wildcard_pattern
CELLS = list(GRID.instance_patterns)


wildcard_constraints:
    **{axis: "[^/]+" for axis in config["grid"]},


def cell_hp(wildcards):
    """All hyperparameters of the cell named by the wildcards."""
    return cell_hyperparameters(config, GRID.instance(wildcards))


def measure_outputs():
    return expand(
        f"{MEASURES}/{{cell}}/{{family}}.json",
        cell=CELLS,
        family=config["measures"]["families"],
    )
