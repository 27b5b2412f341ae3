"""The tidy table: one row per model, the only input of statistics and figures.

Columns (Dziugaite et al.'s convention):

- ``model``: the cell's path, e.g. ``depth~2/width~1/batchnorm~True/dropout~0.0``;
- ``hp.<name>``: every hyperparameter of the cell;
- ``gen.<name>``: train/test accuracy and loss, and the generalization targets
  ``acc_gap`` = train acc - test acc, ``loss_gap`` = test loss - train loss,
  ``test_error`` = 1 - test acc, ``test_loss``;
- ``measure.<name>``: every measure of every family;
- ``train.<name>``: epochs, steps, steps to CE 0.1 / 0.01, wall time, parameters;
- ``is.converged`` (reached the CE target), ``is.diverged``, ``is.finite`` (every
  gen and measure value finite).
"""

from __future__ import annotations

import math

import pandas as pd


def generalization(summary: dict) -> dict:
    train_acc, test_acc = summary["train_acc"], summary["test_acc"]
    train_loss, test_loss = summary["train_loss"], summary["test_loss"]
    return {
        "gen.train_acc": train_acc,
        "gen.test_acc": test_acc,
        "gen.train_loss": train_loss,
        "gen.test_loss": test_loss,
        "gen.acc_gap": train_acc - test_acc,
        "gen.loss_gap": test_loss - train_loss,
        "gen.test_error": 1.0 - test_acc,
    }


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def model_row(cell: str, summary: dict, records: list[dict]) -> dict:
    """One table row from a model's train.json and its measure-family records."""
    row = {"model": cell}
    row.update({f"hp.{k}": v for k, v in summary["hyperparameters"].items()})
    row.update(generalization(summary))
    for record in records:
        row.update({f"measure.{k}": v for k, v in record["values"].items()})
    for key in ("epochs", "steps", "steps_to_ce_0.1", "steps_to_ce_0.01", "wall_time_s", "n_parameters"):
        row[f"train.{key}"] = summary[key]
    row["is.converged"] = bool(summary["converged"])
    row["is.diverged"] = bool(summary["diverged"])
    row["is.finite"] = all(_finite(v) for k, v in row.items() if k.startswith(("gen.", "measure.")))
    return row


def measure_info(records: list[dict]) -> pd.DataFrame:
    """name, family, orientation, Jiang equation and description of every measure."""
    rows = {}
    for record in records:
        for name in record["values"]:
            rows[name] = {
                "name": name,
                "family": record["family"],
                "orientation": record["orientation"][name],
                "equation": record["equation"][name],
                "description": record["description"][name],
            }
    return pd.DataFrame(list(rows.values()), columns=["name", "family", "orientation", "equation", "description"])


CURVE_COLUMNS = ["model", "curve", "alpha", "kept", "loss", "acc", "passes", "stage", "base_loss", "bound"]


def pruning_curves(cell: str, record: dict) -> list[dict]:
    """Every evaluation of the pruning searches of one model, long format."""
    details = record.get("details", {})
    rows = []
    for name, curve in details.get("curves", {}).items():
        for point in curve:
            rows.append(dict(model=cell, curve=name, **point, base_loss=details["base_train_loss"], bound=details["loss_bound"]))
    return rows


def build_tables(cells: list[str], summaries: list[dict], records: list[list[dict]]):
    """(table, measure_info, pruning_curves) for the models ``cells``."""
    table = pd.DataFrame([model_row(c, s, r) for c, s, r in zip(cells, summaries, records)])
    flat = [rec for recs in records for rec in recs]
    curves = [row for c, recs in zip(cells, records) for rec in recs if rec["family"] == "pruning" for row in pruning_curves(c, rec)]
    return table, measure_info(flat), pd.DataFrame(curves, columns=CURVE_COLUMNS)
