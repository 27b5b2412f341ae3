"""Tests for ``prunability.table``: generalization targets, one model's row, the
measure descriptions and the long-format pruning curves, from hand-made records."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from prunability.table import (
    COST_COLUMNS,
    CURVE_COLUMNS,
    build_tables,
    generalization,
    measure_info,
    model_row,
    prunability_by_tolerance,
    pruning_curves,
)

HP = {"depth": 2, "width": 1, "batchnorm": True, "dropout": 0.0, "lr": 0.01, "seed": 0}


def summary(train_acc=0.75, test_acc=0.5, train_loss=0.25, test_loss=1.5, **extra) -> dict:
    s = {
        "hyperparameters": dict(HP),
        "train_acc": train_acc,
        "test_acc": test_acc,
        "train_loss": train_loss,
        "test_loss": test_loss,
        "converged": True,
        "diverged": False,
        "epochs": 12,
        "steps": 240,
        "steps_to_ce_0.1": 100,
        "steps_to_ce_0.01": None,
        "wall_time_s": 3.5,
        "n_parameters": 1234,
        "n_prunable": 1000,
    }
    s.update(extra)
    return s


def pruning_record(prunability=0.125, random=0.5, base=0.02, bound=0.022) -> dict:
    return {
        "family": "pruning",
        "wall_time_s": 0.7,
        "values": {"prunability": prunability, "random_prunability": random},
        "orientation": {"prunability": 1, "random_prunability": 1},
        "equation": {"prunability": "", "random_prunability": ""},
        "description": {"prunability": "magnitude pruning", "random_prunability": "random pruning"},
        "details": {
            "base_train_loss": base,
            "base_train_acc": 1.0,
            "loss_bound": bound,
            "curves": {
                "magnitude": [
                    dict(alpha=1.0, kept=100, loss=base, acc=1.0),
                    dict(alpha=0.1, kept=10, loss=0.5, acc=0.8),
                ],
                "random_seed_0": [dict(alpha=0.5, kept=50, loss=0.021, acc=0.99)],
            },
        },
    }


def norms_record(frob=12.0, spectral=3.0) -> dict:
    return {
        "family": "norms",
        "wall_time_s": 0.35,
        "values": {"frobenius": frob, "spectral": spectral},
        "orientation": {"frobenius": -1, "spectral": -1},
        "equation": {"frobenius": "(44)", "spectral": "(42)"},
        "description": {"frobenius": "product of Frobenius norms", "spectral": "product of spectral norms"},
        "details": {},
    }


# --------------------------------------------------------------------------- generalization


def test_generalization_by_hand():
    gen = generalization(summary(train_acc=0.75, test_acc=0.5, train_loss=0.25, test_loss=1.5))
    assert gen == {
        "gen.train_acc": 0.75,
        "gen.test_acc": 0.5,
        "gen.train_loss": 0.25,
        "gen.test_loss": 1.5,
        "gen.acc_gap": 0.25,  # 0.75 - 0.5
        "gen.loss_gap": 1.25,  # 1.5 - 0.25
        "gen.test_error": 0.5,  # 1 - 0.5
    }


def test_generalization_signs():
    # a test accuracy above the training accuracy gives a negative gap (no abs())
    gen = generalization(summary(train_acc=0.5, test_acc=0.625, train_loss=2.0, test_loss=1.0))
    assert gen["gen.acc_gap"] == -0.125 and gen["gen.loss_gap"] == -1.0 and gen["gen.test_error"] == 0.375


# --------------------------------------------------------------------------- model_row


def test_model_row_columns_and_values():
    row = model_row("depth~2/width~1", summary(), [pruning_record(), norms_record()])
    assert row["model"] == "depth~2/width~1"
    assert {k: v for k, v in row.items() if k.startswith("hp.")} == {f"hp.{k}": v for k, v in HP.items()}
    assert row["gen.acc_gap"] == 0.25 and row["gen.loss_gap"] == 1.25 and row["gen.test_error"] == 0.5
    assert row["measure.prunability"] == 0.125 and row["measure.random_prunability"] == 0.5
    assert row["measure.frobenius"] == 12.0 and row["measure.spectral"] == 3.0
    assert row["train.epochs"] == 12 and row["train.steps"] == 240
    assert row["train.steps_to_ce_0.1"] == 100 and row["train.steps_to_ce_0.01"] is None
    assert row["train.wall_time_s"] == 3.5 and row["train.n_parameters"] == 1234 and row["train.n_prunable"] == 1000
    assert row["is.converged"] is True and row["is.diverged"] is False and row["is.finite"] is True
    # nothing else: model + 6 hp + 7 gen + 4 measures + 7 train + 3 is
    assert len(row) == 1 + 6 + 7 + 4 + 7 + 3
    # a steps_to value of None does not make the row non-finite (train.* is not checked)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), None])
def test_is_finite_false_with_one_bad_measure(bad):
    row = model_row("m", summary(), [pruning_record(), norms_record(spectral=bad)])
    assert row["is.finite"] is False
    assert model_row("m", summary(), [pruning_record(), norms_record()])["is.finite"] is True


def test_is_finite_false_with_a_non_finite_generalization_value():
    row = model_row("m", summary(train_loss=float("nan"), test_loss=float("nan"), diverged=True, converged=False), [])
    assert row["is.finite"] is False and row["is.diverged"] is True and row["is.converged"] is False
    assert math.isnan(row["gen.loss_gap"])


def test_is_flags_are_python_bools():
    row = model_row("m", summary(converged=1, diverged=0), [])
    assert row["is.converged"] is True and row["is.diverged"] is False


# --------------------------------------------------------------------------- measure_info


def test_measure_info_rows():
    info = measure_info([pruning_record(), norms_record()])
    assert list(info.columns) == ["name", "family", "orientation", "equation", "description"]
    assert info.to_dict("records") == [
        {"name": "prunability", "family": "pruning", "orientation": 1, "equation": "", "description": "magnitude pruning"},
        {"name": "random_prunability", "family": "pruning", "orientation": 1, "equation": "", "description": "random pruning"},
        {"name": "frobenius", "family": "norms", "orientation": -1, "equation": "(44)", "description": "product of Frobenius norms"},
        {"name": "spectral", "family": "norms", "orientation": -1, "equation": "(42)", "description": "product of spectral norms"},
    ]


def test_measure_info_deduplicates_repeated_models():
    info = measure_info([pruning_record(), norms_record(), pruning_record(prunability=0.3), norms_record()])
    assert list(info["name"]) == ["prunability", "random_prunability", "frobenius", "spectral"]
    assert measure_info([]).empty and list(measure_info([]).columns) == ["name", "family", "orientation", "equation", "description"]


# --------------------------------------------------------------------------- pruning_curves


def test_pruning_curves_long_format():
    rows = pruning_curves("cell-a", pruning_record(base=0.02, bound=0.022))
    assert len(rows) == 3
    assert rows[0] == dict(model="cell-a", curve="magnitude", alpha=1.0, kept=100, loss=0.02, acc=1.0,
                           base_loss=0.02, base_acc=1.0, bound=0.022)
    assert [r["curve"] for r in rows] == ["magnitude", "magnitude", "random_seed_0"]
    assert [r["alpha"] for r in rows] == [1.0, 0.1, 0.5]
    assert all(r["base_loss"] == 0.02 and r["bound"] == 0.022 for r in rows)
    assert all(set(r) == set(CURVE_COLUMNS) for r in rows)


def test_pruning_curves_without_details():
    assert pruning_curves("m", norms_record()) == []
    record = norms_record()
    del record["details"]
    assert pruning_curves("m", record) == []


# --------------------------------------------------------------------------- build_tables


def test_build_tables_two_models():
    cells = ["depth~1", "depth~2"]
    summaries = [summary(train_acc=1.0, test_acc=0.9), summary(train_acc=0.875, test_acc=0.5, diverged=True)]
    records = [
        [pruning_record(prunability=0.1, base=0.01, bound=0.011), norms_record(frob=1.0)],
        [pruning_record(prunability=0.2, base=0.03, bound=0.033), norms_record(frob=2.0, spectral=float("nan"))],
    ]
    table, info, curves, costs = build_tables(cells, summaries, records)
    assert isinstance(table, pd.DataFrame) and list(table["model"]) == cells
    assert table["gen.acc_gap"].tolist() == pytest.approx([0.1, 0.375])
    assert table["gen.test_error"].tolist() == pytest.approx([0.1, 0.5])
    assert table["measure.prunability"].tolist() == [0.1, 0.2]
    assert table["measure.frobenius"].tolist() == [1.0, 2.0]
    assert table["is.finite"].tolist() == [True, False]
    assert table["is.diverged"].tolist() == [False, True]
    assert len(info) == 4 and set(info["family"]) == {"pruning", "norms"}
    # curves: 3 points per model, only from the pruning records
    assert list(curves.columns) == CURVE_COLUMNS
    assert len(curves) == 6
    assert curves["model"].tolist() == ["depth~1"] * 3 + ["depth~2"] * 3
    assert curves.groupby("model")["base_loss"].unique().map(list).to_dict() == {"depth~1": [0.01], "depth~2": [0.03]}
    assert curves.groupby("model")["bound"].unique().map(list).to_dict() == {"depth~1": [0.011], "depth~2": [0.033]}
    # costs: one row per model and family, in-process time over the training loop's
    assert list(costs.columns) == COST_COLUMNS and len(costs) == 4
    assert costs["family"].tolist() == ["pruning", "norms"] * 2
    assert costs["measure_time_s"].tolist() == [0.7, 0.35] * 2
    assert costs["fraction_of_training"].tolist() == pytest.approx([0.2, 0.1] * 2)  # 0.7 / 3.5, 0.35 / 3.5


def test_build_tables_ignores_curves_of_other_families():
    odd = norms_record()
    odd["details"] = pruning_record()["details"]  # a non-pruning family with curve-like details
    table, info, curves, _ = build_tables(["m"], [summary()], [[odd]])
    assert len(curves) == 0 and list(curves.columns) == CURVE_COLUMNS
    assert len(table) == 1 and list(info["name"]) == ["frobenius", "spectral"]


# --------------------------------------------------------------------------- prunability_by_tolerance


def test_prunability_by_tolerance_from_stored_curves():
    # Model a: base loss 1; magnitude curve losses 1 (alpha 1), 1.04 (0.8), 1.3 (0.5), 1.0 (0.3,
    # a lucky point under a failure), 3 (0.1). rel_tol 0.05 -> bound 1.05: 1 and 0.8 pass, 0.5
    # fails -> 0.8; rel_tol 0.5 -> bound 1.5: down to 0.3 pass, 0.1 fails -> 0.3;
    # rel_tol 0 -> only alpha 1 (1.04 > 1). Model b's random curve is ignored.
    def point(alpha, loss):
        return dict(alpha=alpha, kept=0, loss=loss, acc=1.0, base_loss=1.0, base_acc=1.0, bound=1.1)

    rows = [dict(model="a", curve="magnitude", **point(a, l)) for a, l in [(1.0, 1.0), (0.8, 1.04), (0.5, 1.3), (0.3, 1.0), (0.1, 3.0)]]
    rows += [dict(model="b", curve="magnitude", **point(1.0, 2.0)), dict(model="b", curve="random_seed_0", **point(0.01, 0.0))]
    curves = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    out = prunability_by_tolerance(curves, [0.0, 0.05, 0.5], abs_tol=0.0)
    got = {(r.model, r.rel_tol): r.prunability for r in out.itertuples()}
    assert got[("a", 0.0)] == 1.0 and got[("a", 0.05)] == 0.8 and got[("a", 0.5)] == 0.3
    # b: base loss 1 but alpha = 1 has loss 2: even the unpruned point fails -> NaN; an
    # absolute tolerance of 1 lets it pass
    assert math.isnan(got[("b", 0.5)])
    assert prunability_by_tolerance(curves, [0.0], abs_tol=1.0).set_index("model").loc["b", "prunability"] == 1.0
