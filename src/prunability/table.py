"""The tidy table: one row per model, the only input of statistics and figures.

Columns (Dziugaite et al.'s convention):

- ``model``: the cell's path, e.g. ``depth~2/width~1/batchnorm~True/dropout~0.0``;
- ``hp.<name>``: every hyperparameter of the cell;
- ``gen.<name>``: train/test accuracy and loss, and the generalization targets
  ``acc_gap`` = train acc - test acc, ``loss_gap`` = test loss - train loss,
  ``test_error`` = 1 - test acc, ``test_loss``;
- ``measure.<name>``: every measure of every family;
- ``train.<name>``: epochs, steps, steps to CE 0.1 / 0.01, wall time, all parameters
  (``n_parameters``) and the prunable Conv/Linear weights |P| (``n_prunable``);
- ``is.converged`` (reached the CE target), ``is.diverged``, ``is.finite`` (every
  gen and measure value finite).
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from .criteria import loss_criterion, robust_answer


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
    for key in ("epochs", "steps", "steps_to_ce_0.1", "steps_to_ce_0.01", "wall_time_s", "n_parameters", "n_prunable"):
        row[f"train.{key}"] = summary.get(key, float("nan"))
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


CURVE_COLUMNS = ["model", "curve", "alpha", "kept", "loss", "acc", "base_loss", "base_acc", "bound"]


def pruning_curves(cell: str, record: dict) -> list[dict]:
    """Every evaluation of the pruning searches of one model, long format."""
    details = record.get("details", {})
    rows = []
    for name, curve in details.get("curves", {}).items():
        for point in curve:
            rows.append(
                dict(
                    model=cell,
                    curve=name,
                    **point,
                    base_loss=details["base_train_loss"],
                    base_acc=details["base_train_acc"],
                    bound=details["loss_bound"],
                )
            )
    return rows


def prunability_by_tolerance(curves: pd.DataFrame, rel_tols: Sequence[float], abs_tol: float) -> pd.DataFrame:
    """Prunability of every model for each relative tolerance, recomputed from the stored
    global-magnitude curves with the search's own robust rule (no model re-evaluated).
    Columns: model, rel_tol, prunability."""
    rows = []
    for model, points in curves[curves["curve"] == "magnitude"].groupby("model", sort=False):
        base_loss = points["base_loss"].iloc[0]
        records = points[["alpha", "loss", "acc"]].to_dict("records")
        for rel_tol in rel_tols:
            alpha, _ = robust_answer(records, loss_criterion(base_loss, rel_tol, abs_tol))
            rows.append({"model": model, "rel_tol": rel_tol, "prunability": alpha})
    return pd.DataFrame(rows, columns=["model", "rel_tol", "prunability"])


COST_COLUMNS = ["model", "family", "measure_time_s", "train_time_s", "fraction_of_training"]


def measure_costs(cells: list[str], summaries: list[dict], records: list[list[dict]]) -> pd.DataFrame:
    """Each family's in-process time per model, and as a fraction of the model's training time."""
    rows = []
    for cell, summary, recs in zip(cells, summaries, records):
        train = summary["wall_time_s"]
        for rec in recs:
            seconds = rec["wall_time_s"]
            fraction = seconds / train if train > 0 else float("nan")
            rows.append(dict(model=cell, family=rec["family"], measure_time_s=seconds, train_time_s=train, fraction_of_training=fraction))
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def build_tables(cells: list[str], summaries: list[dict], records: list[list[dict]]):
    """(table, measure_info, pruning_curves, measure_costs) for the models ``cells``."""
    table = pd.DataFrame([model_row(c, s, r) for c, s, r in zip(cells, summaries, records)])
    flat = [rec for recs in records for rec in recs]
    curves = [row for c, recs in zip(cells, records) for rec in recs if rec["family"] == "pruning" for row in pruning_curves(c, rec)]
    return table, measure_info(flat), pd.DataFrame(curves, columns=CURVE_COLUMNS), measure_costs(cells, summaries, records)
