"""The descriptions an archive carries: every measure's from the measure registry, every
column of the table, and the DATASHEET.md written from the archive's own files."""

from __future__ import annotations

import json

import pandas as pd

from .layout import HASH_DIGITS

KUHN = "Kuhn, Lyle, Gomez, Rothfuss, Gal (2021), Robustness to Pruning Predicts Generalization in Deep Neural Networks, https://arxiv.org/abs/2103.06002"


def measure_descriptions(families: list[str], settings: dict[str, dict]) -> pd.DataFrame:
    """name, family, orientation, equation, description of every measure of ``families``
    under their ``settings``, from the measure registry."""
    from ..measures import instances_of

    rows = [
        {"name": name, "family": family, "orientation": m.orientation, "equation": m.equation, "description": m.description}
        for family in families
        for name, m, _ in instances_of(family, settings[family])
    ]
    return pd.DataFrame(rows, columns=["name", "family", "orientation", "equation", "description"])


GEN = {
    "gen.train_acc": "accuracy on the training split (eval mode, no augmentation)",
    "gen.test_acc": "accuracy on the test split",
    "gen.train_loss": "mean cross-entropy on the training split (eval mode, no augmentation)",
    "gen.test_loss": "mean cross-entropy on the test split",
    "gen.acc_gap": "generalization gap in accuracy: train acc - test acc",
    "gen.loss_gap": "generalization gap in loss: test loss - train loss",
    "gen.test_error": "1 - test acc",
}
TRAIN = {
    "train.epochs": "epochs trained",
    "train.steps": "optimizer steps taken",
    "train.steps_to_ce_0.1": "steps until the training cross-entropy first fell below 0.1 (checked at epoch ends; empty if never)",
    "train.steps_to_ce_0.01": "steps until the training cross-entropy first fell below 0.01 (empty if never)",
    "train.wall_time_s": "training wall time in seconds",
    "train.n_parameters": "number of parameters",
    "train.n_prunable": "number of prunable Conv/Linear weights |P|",
}
IS = {
    "is.converged": "reached the cross-entropy target (train.ce_target; with train.stopping budget: trained every epoch without diverging)",
    "is.diverged": "the training loss became non-finite",
    "is.finite": "every gen.* and measure.* value of the row is finite",
}


def column_descriptions(columns: list[str], measures: pd.DataFrame) -> pd.DataFrame:
    """column, description of every table column: measures from the registry, the rest
    by name or by prefix."""
    by_measure = measures.set_index("name")
    rows = []
    for column in columns:
        prefix, _, name = column.partition(".")
        if column == "model":
            text = "the model's grid cell, its folder under models/ and measures/ (axis~value/...)"
        elif column in GEN or column in TRAIN or column in IS:
            text = {**GEN, **TRAIN, **IS}[column]
        elif prefix == "hp":
            text = f"hyperparameter {name} of the model (a grid axis or the configuration's fixed value)"
        elif prefix == "measure" and name in by_measure.index:
            m = by_measure.loc[name]
            equation = f", Jiang et al. 2020 eq. {m.equation}" if isinstance(m.equation, str) and m.equation else ""
            text = f"{m.description} ({m.family} family, orientation {int(m.orientation):+d}{equation})"
        else:
            text = "(not described by this version of the package)"
        rows.append({"column": column, "description": text})
    return pd.DataFrame(rows, columns=["column", "description"])


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return "" if value is None or (isinstance(value, float) and value != value) else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _settings(section: dict) -> str:
    return "\n".join(f"- `{key}`: `{json.dumps(value)}`" for key, value in section.items())


def datasheet(info: dict, config: dict, table: pd.DataFrame, columns: pd.DataFrame, measures: pd.DataFrame,
              split: dict, platform: dict | None, train_platform: bool) -> str:
    """DATASHEET.md of an archive (in the spirit of Gebru et al. 2021, Datasheets for
    Datasets, https://arxiv.org/abs/1803.09010), written from its own files."""
    study, version = info["study"], info["version"]
    name = f"{study}-{version}"
    cell = info["cells"][0]
    family = "norms" if "norms" in info["families"] else info["families"][0]
    grid = "\n".join(f"- `{axis}`: {', '.join(f'`{v}`' for v in values)}" for axis, values in config["grid"].items())
    fixed = {k: v for k, v in config["hyperparameters"].items() if k not in config["grid"]}
    noise = split.get("label_noise") or {}
    if platform is not None:
        shown = {k: v for k, v in platform.items() if not isinstance(v, (dict, list))}
        where = "`platform.json` records the machine and software the study ran on" + (
            ":\n\n" + _settings(shown) if shown else "."
        )
    else:
        where = "The study recorded no `platform.json`."
    if train_platform:
        where += " Each model's `train.json` records the platform it was trained on (its `platform` key)."
    return f"""# {name}

A population of {len(table)} trained networks with {len(measures)} generalization measures each
(families {", ".join(f"`{f}`" for f in measures["family"].unique())}), exported from the study `{study}` by prunability {info["package_version"]}, the Snakemake reproduction of
{KUHN}.

- Version `{version}`: the package version and the first {HASH_DIGITS} hex digits of the SHA-256 of
  the MANIFEST lines of every file but DATASHEET.md, export.json and MANIFEST. The same files
  give the same version; check with
  `grep -v -e '  DATASHEET.md$' -e '  export.json$' MANIFEST | sha256sum`.
- Check every file: `sha256sum -c MANIFEST` in this folder.
- Models: {int(table["is.converged"].sum())} converged, {int(table["is.diverged"].sum())} diverged,
  {int(table["is.finite"].sum())} with every value finite.

## Files

- `table.csv`: one row per model; its columns are described below (also in `columns.csv`).
- `measures.csv`: every measure's name, family, orientation (+1: a larger value predicts a
  larger generalization gap), equation number in Jiang et al. 2020 (Fantastic Generalization
  Measures and Where to Find Them, https://arxiv.org/abs/1912.02178) and description.
- `models/<cell>/`: `init.pt` and `final.pt` (PyTorch state_dicts of plain tensors),
  `train.json` (hyperparameters, convergence, steps, losses and accuracies, device),
  `curve.csv` (per-epoch train/test loss and accuracy).
- `measures/<cell>/<family>.json`: each family's values, orientation, settings, errors,
  timings and details (e.g. every pruning-curve evaluation).
- `split/`: the data split without its images: `train.csv` and `test.csv` (index, label,
  SHA-256 of each image), `split.json` (source, classes, shape, normalisation statistics,
  hashes of the whole tensors), `label_noise.csv` (training labels replaced by label noise).
- `config.yaml`: the study's resolved configuration, every default filled in.

## The data

{split["source"]}: {split["n_train"]} training and {split["n_test"]} test images of shape
{split["image_shape"]} ({split["dtype"]}), {len(split["classes"])} classes; label noise: fraction
{noise.get("fraction", 0.0)}, {noise.get("n_noisy", 0)} training labels replaced. The images are not
in the archive: rebuild them from the source with the configuration's `data` section
(`prunability.data.build_split`) and check them against the hashes (below).

## How the models were trained

Architecture `{config["model"]["arch"]}` (model settings:
{", ".join(f"`{k}`: `{json.dumps(v)}`" for k, v in config["model"].items())}), one model per cell of
the full-factorial grid:

{grid}

Fixed hyperparameters:

{_settings(fixed)}

Training (the configuration's `train` section): each model trains until its training
cross-entropy (eval mode, whole training split, checked after every epoch) is below
`ce_target`, or for `max_epochs` epochs (`stopping: budget`: every model for `max_epochs`).

{_settings(config["train"])}

Device: `{config["device"]}`. {where}

## The columns of table.csv

{_markdown_table(columns)}

## Loading a model

With the package at version {info["package_version"]} installed (`pip install -e .` in a checkout of
it), from the archive alone:

```python
from prunability.export import StudyArchive

archive = StudyArchive("{name}.tar.gz")  # checks every file against MANIFEST
model = archive.model("{cell}")  # final weights, eval mode; "init" for the initialisation
row = archive.table.set_index("model").loc["{cell}"]
```

`prunability.export.load_model("{name}.tar.gz", "{cell}")` does the same in one call.
To recompute a measure, rebuild the split from its source and check it against the
archive, then run the family as the workflow did:

```python
import torch
from prunability.data import build_split
from prunability.measures import compute_family
from prunability.numerics import configure_numerics
from prunability.train import DeviceData

record = archive.measures("{cell}", "{family}")
config = archive.config
configure_numerics(config["train"]["deterministic"], config["measures"]["fp32_precision"])  # as the measure jobs
torch.set_num_threads(1)
split = archive.check_split(build_split(archive.config["data"]))  # cifar10: archive=<cifar-10-python.tar.gz>
data = DeviceData.from_split(split, "cpu")
values = compute_family("{family}", model, archive.model("{cell}", "init"), data, record["settings"])["values"]
```
"""
