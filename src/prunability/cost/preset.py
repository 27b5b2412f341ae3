"""What the preset fixes: the sizes and shape of the data, the grid's cells, the cells
per job and the runs of the generalization-stability branch."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from ..config import SCHEMA_PATH
from ..grid import cell_hyperparameters

REPO = SCHEMA_PATH.parents[2]


def data_shape(config: dict, root: Path) -> tuple[int, int, tuple[int, int, int], int, str]:
    """(training images, test images, image shape, classes, where the sizes come from)."""
    data = config["data"]
    if data["source"] == "digits":
        n = 1797  # scikit-learn's digits; train_test_split holds out ceil(fraction * n)
        n_test = math.ceil(data["test_fraction"] * n)
        n_train, n_test, shape, how = n - n_test, n_test, (1, 8, 8), "scikit-learn digits"
    else:
        n_train, n_test, shape, how = 50_000, 10_000, (3, 32, 32), "CIFAR-10 (50000/10000)"
        if data["local_dir"]:
            from ..data import read_cifar10_folder

            folder = Path(data["local_dir"])
            try:
                split = read_cifar10_folder(folder if folder.is_absolute() else root / folder)
                n_train, n_test, how = len(split["y_train"]), len(split["y_test"]), f"read from {folder}"
            except Exception as error:  # a folder that is elsewhere on the cluster: full CIFAR-10 assumed
                how = f"{folder} not readable here ({type(error).__name__}); full CIFAR-10 assumed"
    n_train = min(n_train, data["max_train"] or n_train)
    n_test = min(n_test, data["max_test"] or n_test)
    return n_train, n_test, shape, 10, how


def grid_cells(config: dict) -> list[dict]:
    """Every cell's hyperparameters, in the grid's order."""
    grid = config["grid"]
    return [cell_hyperparameters(config["hyperparameters"], dict(zip(grid, values)))
            for values in itertools.product(*grid.values())]


def cells_per_job(config: dict) -> int:
    return math.prod(len(config["grid"][axis]) for axis in config["resources"]["axes_within_job"])


def stability_model(config: dict) -> tuple[dict, list[dict]]:
    """(hyperparameters, runs) of the generalization-stability branch (no runs when off)."""
    section = config["generalization_stability"]
    if not section["enabled"]:
        return {}, []
    from ..stability_analysis import plan_runs

    recipe = section["train"]
    hp = dict(config["hyperparameters"], optimizer=recipe["optimizer"], lr=recipe["lr"], batch_size=recipe["batch_size"])
    return hp, list(plan_runs(section).values())
