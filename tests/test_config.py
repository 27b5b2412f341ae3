"""Tests for ``prunability.grid`` (the factorial grid, a cell's hyperparameters, cell
paths) and ``prunability.config`` (the cross-field checks, error messages for schema
violations)."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from snakemake.utils import Paramspace
from snakemake.exceptions import WorkflowError

from prunability.config import (
    ConfigError,
    check_config,
    config_error_message,
    load_config_file,
    main as config_main,
    SCHEMA_PATH,
    with_defaults,
)
from prunability.grid import cell_hyperparameters, full_factorial, job_cell_patterns, parse_cell

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- full_factorial


def test_full_factorial_rows_columns_and_order():
    grid = {"depth": [2, 3], "width": [1, 2, 4], "batchnorm": [True, False]}
    frame = full_factorial(grid)
    assert len(frame) == 2 * 3 * 2
    assert list(frame.columns) == ["depth", "width", "batchnorm"]
    expected = [(d, w, b) for d in (2, 3) for w in (1, 2, 4) for b in (True, False)]  # first axis slowest
    assert [tuple(r) for r in frame.itertuples(index=False)] == expected
    assert list(frame["depth"][:6]) == [2] * 6 and list(frame["batchnorm"][:4]) == [True, False, True, False]


def test_full_factorial_column_order_follows_the_grid_not_the_alphabet():
    frame = full_factorial({"z": [1], "a": [0.5, 0.25]})
    assert list(frame.columns) == ["z", "a"]
    assert frame.to_dict("records") == [{"z": 1, "a": 0.5}, {"z": 1, "a": 0.25}]


def test_full_factorial_single_axis_and_empty_axis():
    assert full_factorial({"dropout": [0.0, 0.1, 0.2]})["dropout"].tolist() == [0.0, 0.1, 0.2]
    empty = full_factorial({"depth": [1, 2], "width": []})
    assert len(empty) == 0 and list(empty.columns) == ["depth", "width"]


# --------------------------------------------------------------------------- cell_hyperparameters


FIXED = {"optimizer": "adam", "lr": 0.01, "batch_size": 64, "weight_decay": 0.0, "augment": False, "seed": 0,
         "depth": 1, "width": 1, "batchnorm": True, "dropout": 0.0}


def test_cell_values_override_fixed_ones():
    config = {"hyperparameters": dict(FIXED)}
    before = copy.deepcopy(config)
    hp = cell_hyperparameters(config["hyperparameters"], {"depth": 3, "lr": 0.1, "dropout": 0.2})
    assert hp == {**FIXED, "depth": 3, "lr": 0.1, "dropout": 0.2}
    assert config == before  # the config is not modified


def test_numpy_scalars_become_python_types():
    config = {"hyperparameters": dict(FIXED)}
    row = full_factorial({"depth": [2], "width": [1.5], "batchnorm": [False], "dropout": [0.1]}).iloc[0]
    instance = dict(row)
    assert isinstance(instance["depth"], np.integer) and isinstance(instance["batchnorm"], np.bool_)
    hp = cell_hyperparameters(config["hyperparameters"], instance)
    assert hp["depth"] == 2 and type(hp["depth"]) is int
    assert hp["width"] == 1.5 and type(hp["width"]) is float
    assert hp["batchnorm"] is False and type(hp["batchnorm"]) is bool
    assert hp["dropout"] == 0.1 and type(hp["dropout"]) is float


def test_integral_floats_become_int_for_depth_batch_size_seed():
    config = {"hyperparameters": dict(FIXED)}
    hp = cell_hyperparameters(config["hyperparameters"], {"depth": np.float64(2.0), "batch_size": 128.0, "seed": np.float32(3.0),
                                       "width": 2.0, "lr": 1.0})
    for key, value in (("depth", 2), ("batch_size", 128), ("seed", 3)):
        assert hp[key] == value and type(hp[key]) is int, key
    # other axes keep their float type (only integer-valued axes are converted)
    assert type(hp["width"]) is float and type(hp["lr"]) is float
    # a non-integral float is left alone
    assert cell_hyperparameters(config["hyperparameters"], {"depth": 2.5})["depth"] == 2.5


# --------------------------------------------------------------------------- cell paths and jobs


def test_parse_cell_reads_back_what_paramspace_wrote():
    grid = {"depth": [2], "width": [1.5], "batchnorm": [False], "lr": [1e-05], "optimizer": ["momentum"], "dropout": [0.0]}
    (cell,) = Paramspace(full_factorial(grid)).instance_patterns
    assert cell == "depth~2/width~1.5/batchnorm~False/lr~1e-05/optimizer~momentum/dropout~0.0"
    values = parse_cell(cell)
    assert values == {"depth": 2, "width": 1.5, "batchnorm": False, "lr": 1e-05, "optimizer": "momentum", "dropout": 0.0}
    assert [type(values[k]) for k in ("depth", "width", "batchnorm", "dropout")] == [int, float, bool, float]
    assert cell_hyperparameters(FIXED, values) == {**FIXED, **values}


@pytest.mark.parametrize("cell", ["depth2", "depth~2/", "~2"])
def test_parse_cell_rejects_malformed_paths(cell):
    with pytest.raises(ValueError, match="axis~value"):
        parse_cell(cell)


def test_job_cell_patterns_group_cells_by_the_other_axes():
    grid = {"depth": [2, 3], "lr": [0.1, 0.01], "batch_size": [32, 128]}
    cells = list(Paramspace(full_factorial(grid)).instance_patterns)
    patterns = job_cell_patterns(cells, ["lr", "batch_size"])
    assert patterns == [
        "depth~{depth}/lr~0.1/batch_size~32",
        "depth~{depth}/lr~0.1/batch_size~128",
        "depth~{depth}/lr~0.01/batch_size~32",
        "depth~{depth}/lr~0.01/batch_size~128",
    ]
    # every cell belongs to exactly one job: the jobs (depth 2, 3) cover the grid once
    assert sorted(p.format(depth=d) for d in (2, 3) for p in patterns) == sorted(cells)
    assert job_cell_patterns(cells, []) == ["depth~{depth}/lr~{lr}/batch_size~{batch_size}"]
    assert job_cell_patterns(cells, list(grid)) == cells  # one job holds every cell


# --------------------------------------------------------------------------- check_config


def good_config(**data) -> dict:
    return {
        "data": {"source": "digits", "local_dir": None, **data},
        "hyperparameters": {"augment": True},
        "train": {"augment_flip": False},
        "grid": {"depth": [1, 2]},
        "statistics": {"targets": ["acc_gap", "loss_gap", "test_error", "test_loss"], "main_target": "acc_gap", "axes": None},
        "figures": {"target": "acc_gap"},
        "resources": {"axes_within_job": []},
        "model": {"arch": "nin"},
        "double_descent": {"sweep_axis": None},
    }


def test_good_configs_pass(tmp_path):
    check_config(good_config())
    check_config(good_config(source="cifar10", local_dir=str(tmp_path)))
    cifar_flip = good_config(source="cifar10")
    cifar_flip["train"]["augment_flip"] = True
    check_config(cifar_flip)
    no_augment = good_config()
    no_augment["hyperparameters"]["augment"] = False
    no_augment["train"]["augment_flip"] = True  # flips are off when augment is off
    check_config(no_augment)


def test_local_dir_missing_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"^data\.local_dir") as info:
        check_config(good_config(source="cifar10", local_dir=str(tmp_path / "missing")))
    assert "missing" in str(info.value)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=r"data\.local_dir"):
        check_config(good_config(source="cifar10", local_dir=str(a_file)))


def test_local_dir_with_digits(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.local_dir") as info:
        check_config(good_config(local_dir=str(tmp_path)))
    assert "digits" in str(info.value)


def test_figure_target_must_be_a_statistics_target():
    config = good_config()
    config["figures"]["target"] = "test_acc"
    with pytest.raises(ConfigError, match=r"figures\.target") as info:
        check_config(config)
    assert "test_acc" in str(info.value)


def test_main_target_must_be_a_statistics_target():
    config = good_config()
    config["statistics"].update(targets=["acc_gap"], main_target="test_loss")
    with pytest.raises(ConfigError, match=r"statistics\.main_target 'test_loss' is not one of statistics\.targets"):
        check_config(config)


def test_statistics_axes_must_be_grid_axes():
    config = good_config()
    config["statistics"]["axes"] = ["depth", "seed"]
    with pytest.raises(ConfigError, match=r"statistics\.axes: \['seed'\] are not grid axes"):
        check_config(config)


def test_axes_within_job_must_be_grid_axes():
    config = good_config()
    config["resources"]["axes_within_job"] = ["depth", "lr"]
    with pytest.raises(ConfigError, match=r"resources.axes_within_job: \['lr'\] are not grid axes"):
        check_config(config)


def test_resnet18k_has_no_depth_axis():
    config = good_config()
    config["model"]["arch"] = "resnet18k"
    with pytest.raises(ConfigError, match="grid.depth: model.arch resnet18k has a fixed depth"):
        check_config(config)
    config["grid"] = {"width": [1, 2]}
    check_config(config)


def test_double_descent_sweep_axis_must_be_a_numeric_grid_axis():
    config = good_config()
    config["double_descent"]["sweep_axis"] = "width"
    with pytest.raises(ConfigError, match=r"double_descent\.sweep_axis: 'width' is not a grid axis"):
        check_config(config)
    config["grid"] = {"width": [8]}
    with pytest.raises(ConfigError, match="two or more values"):
        check_config(config)
    config["grid"] = {"width": [8, 16], "batchnorm": [False, True]}
    check_config(config)
    config["double_descent"]["sweep_axis"] = "batchnorm"
    with pytest.raises(ConfigError, match=r"the values of grid\.batchnorm must be numbers"):
        check_config(config)


def test_augment_flip_with_digits():
    config = good_config()
    config["train"]["augment_flip"] = True
    with pytest.raises(ConfigError, match=r"train\.augment_flip"):
        check_config(config)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --------------------------------------------------------------------------- config_error_message


SCHEMA = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "number", "minimum": 0}}}}}


def validation_error() -> jsonschema.ValidationError:
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.validate({"a": {"b": -1}}, SCHEMA)
    return info.value


def test_message_of_a_validation_error():
    error = validation_error()
    message = config_error_message(error)
    assert message.startswith("a.b: ")
    assert message == f"a.b: {error.message}"
    assert "-1" in message


def test_message_at_top_level():
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.validate(5, SCHEMA)
    assert config_error_message(info.value).startswith("(top level): ")


def test_message_through_explicit_cause():
    error = validation_error()
    try:
        raise WorkflowError("x") from error
    except WorkflowError as wrapped:
        assert wrapped.__cause__ is error
        assert config_error_message(wrapped).startswith("a.b: ")


def test_message_through_implicit_context():
    try:
        try:
            jsonschema.validate({"a": {"b": -1}}, SCHEMA)
        except jsonschema.ValidationError:
            raise WorkflowError("config file invalid")
    except WorkflowError as wrapped:
        assert wrapped.__cause__ is None and wrapped.__context__ is not None
        assert config_error_message(wrapped).startswith("a.b: ")


def test_message_of_a_plain_error():
    assert config_error_message(ValueError("plain problem")) == "plain problem"
    try:
        try:
            raise KeyError("k")
        except KeyError:
            raise ValueError("outer")
    except ValueError as error:
        assert config_error_message(error) == "outer"  # no ValidationError on the chain


# --------------------------------------------------------------------------- reading a file strictly


@pytest.mark.parametrize("text, message", [
    ("study: x\ngrid:\n  depth: [1, 2\n", r"line 4, column 1: expected ',' or '\]'"),
    ("study: x\ngrid:\n  depth: [1]\ngrid:\n  width: [1]\n", r"line 4, column 1: key 'grid' given twice \(first on line 2\)"),
    ("grid:\n  depth: [1]\n  depth: [2]\n", r"line 3, column 3: key 'depth' given twice \(first on line 2\)"),
    ("study: !!python/object/apply:os.system ['touch pwned']\n", r"line 1, column 8: could not determine a constructor"),
    ("- a\n- b\n", r"expected a mapping of settings at the top level, got list"),
])
def test_load_config_file_names_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}(, | |: ).*{message}"):
        load_config_file(path)
    assert not (tmp_path / "pwned").exists()


def test_load_config_file_reads_a_good_file(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text("study: x\ngrid:\n  depth: [1, 2]\n  width: [1]\n")
    assert load_config_file(path) == {"study": "x", "grid": {"depth": [1, 2], "width": [1]}}


def test_the_command_line_check(tmp_path, capsys):
    good, bad, unknown = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "unknown.yaml"
    good.write_text("study: x\ngrid: {depth: [1, 2]}\n")
    bad.write_text("grid: {depth: [1]}\ngrid: {depth: [2]}\n")
    unknown.write_text("study: x\ngrid: {depth: [1]}\ntrain: {max_epoch: 3}\n")
    assert config_main([str(good)]) == 0
    assert config_main([str(good), str(bad), str(unknown)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == lines[1] == f"{good}: ok"
    assert lines[2] == f"{bad}, line 2, column 1: key 'grid' given twice (first on line 1)"
    assert lines[3] == f"{unknown}: train: Additional properties are not allowed ('max_epoch' was unexpected)"


def test_non_finite_numbers_are_found_anywhere_with_their_path():
    from prunability.config import non_finite_numbers

    config = {"a": 1.0, "b": {"c": [0.5, float("nan")], "d": float("-inf")}, "e": "nan", "f": [{"g": float("inf")}]}
    found = non_finite_numbers(config)
    assert [path for path, _ in found] == ["b.c.1", "b.d", "f.0.g"]
    assert non_finite_numbers({"a": 1, "b": [True, None, 2.5]}) == []


@pytest.mark.parametrize("change, message", [
    ({"train": {"max_epochs": 150.0}}, "train.max_epochs: 150.0 is not a whole number (write 150)"),
    ({"grid": {"depth": [1, 2.0]}}, "grid.depth.1: 2.0 is not a whole number (write 2)"),
    ({"hyperparameters": {"seed": 1.0}}, "hyperparameters.seed: 1.0 is not a whole number (write 1)"),
])
def test_a_float_where_the_schema_says_integer_names_the_key(change, message):
    # JSON Schema counts 2.0 as an integer; the code does not (range(2.0) raises)
    from snakemake.utils import validate

    from prunability.config import check_whole_numbers

    schema = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
    config = {"study": "s", "grid": {"depth": [1]}, **change}
    validate(config, str(schema))  # the schema alone lets it through
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_whole_numbers(config, schema)
    check_whole_numbers({"study": "s", "grid": {"depth": [1, 2]}, "train": {"max_epochs": 150, "ce_target": 0.5}}, schema)


# --------------------------------------------------------------------------- the schema's defaults without Snakemake

PRESETS = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]


def snakemake_filled(config: dict, schema: Path) -> dict:
    """Snakemake's own filling: validate(..., set_default=True) on a copy."""
    from snakemake.utils import validate

    filled = copy.deepcopy(config)
    validate(filled, str(schema), set_default=True)
    return filled


def assert_same_config(ours, theirs):
    """Equal values, the same JSON types (1 is not 1.0 or true) and the same key order at every level."""
    assert json.dumps(ours) == json.dumps(theirs)
    assert ours == theirs


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_with_defaults_fills_every_preset_as_snakemake_does(preset):
    config = load_config_file(preset)
    before = copy.deepcopy(config)
    ours = with_defaults(config, SCHEMA_PATH)
    assert_same_config(ours, snakemake_filled(config, SCHEMA_PATH))
    assert config == before  # the input is not changed
    assert "measures" in ours and "pruning" in ours["measures"]  # nested defaults filled


def test_with_defaults_copies_the_defaults():
    first, second = with_defaults({"study": "a", "grid": {"depth": [1]}}), with_defaults({"study": "b", "grid": {"depth": [1]}})
    first["measures"]["families"].append("prune_potential")
    first["generalization_stability"]["layers"][0]["index"] = 7
    assert second["measures"]["families"] == ["pruning", "norms", "flatness", "hessian", "optimization"]
    assert second["generalization_stability"]["layers"][0]["index"] == -4


# Schemas that exercise each part of Snakemake's rule; every case is compared with it.
_DEFS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "point": {"type": "object", "properties": {"x": {"type": "number", "default": 0}, "y": {"default": 1}}},
        "with_own_default": {"type": "object", "default": {"never": "set"}, "properties": {"z": {"default": 3}}},
        "number": {"type": "number", "default": 5},
    },
    "properties": {
        "ref_with_default": {"$ref": "#/$defs/point", "default": {}},  # inserted, then filled through the $ref
        "ref_without_default": {"$ref": "#/$defs/point"},  # filled only when present
        "default_only_in_defs": {"$ref": "#/$defs/with_own_default"},  # the $defs default is never applied
        "scalar_in_defs": {"$ref": "#/$defs/number"},
        "scalar": {"$ref": "#/$defs/number", "default": 2},
        "nullable": {"type": ["object", "null"], "default": {}, "properties": {"a": {"default": 1}}},
        "points": {"type": "array", "items": {"$ref": "#/$defs/point"}, "default": [{"x": 9}]},
        "pair": {"type": "array", "prefixItems": [{"properties": {"first": {"default": "f"}}}],
                 "items": {"properties": {"rest": {"default": "r"}}}},
        "nested": {"type": "object", "default": {},
                   "properties": {"inner": {"type": "object", "default": {}, "properties": {"deep": {"default": [1, 2]}}}}},
        "both": {"allOf": [{"properties": {"k": {"default": "first"}}}, {"properties": {"k": {"default": "second"}, "j": {"default": 0}}}]},
        "open": {"type": "object", "default": {"extra": {}}, "properties": {"known": {"default": 1}},
                 "patternProperties": {"^p_": {"properties": {"pp": {"default": "p"}}}},
                 "additionalProperties": {"properties": {"ap": {"default": "a"}}}},
        "dependent": {"type": "object", "default": {},
                      "dependentSchemas": {"trigger": {"properties": {"added": {"default": True}}}}},
    },
}


@pytest.mark.parametrize("config", [
    {},
    {"ref_without_default": {}, "ref_with_default": {"y": 7}},
    {"default_only_in_defs": {}, "scalar_in_defs": 1},
    {"ref_with_default": {"y": None}},  # a key present with null stays null
    {"nested": {"inner": {"deep": []}, "other": 1}},
    {"points": [{}, {"y": 2}, {"x": 1, "y": 3}]},
    {"points": []},
    {"pair": [{}, {}, {"rest": "given"}]},
    {"open": {"p_1": {}, "q": {}, "known": 2}},
    {"dependent": {"trigger": 1}},
], ids=str)
def test_with_defaults_follows_snakemakes_rule(tmp_path, config):
    schema = tmp_path / "schema.yaml"
    schema.write_text(yaml.safe_dump(_DEFS_SCHEMA, sort_keys=False))
    assert_same_config(with_defaults(config, schema), snakemake_filled(config, schema))


@pytest.mark.parametrize("config, where", [
    ({"nested": None}, "nested"),  # type object: Snakemake's validate reports a type error
    ({"nested": {"inner": 3}}, "nested.inner"),
    ({"nullable": None}, "nullable"),  # type [object, null]: Snakemake's validate fails with an AttributeError
    ({"points": [{}, "text"]}, "points.1"),
])
def test_with_defaults_stops_where_snakemake_stops(tmp_path, config, where):
    schema = tmp_path / "schema.yaml"
    schema.write_text(yaml.safe_dump(_DEFS_SCHEMA, sort_keys=False))
    with pytest.raises((WorkflowError, AttributeError)):
        snakemake_filled(config, schema)
    with pytest.raises(ConfigError, match=rf"^{re.escape(where)}: .* not an object"):
        with_defaults(config, schema)


def test_with_defaults_refuses_a_default_it_cannot_place(tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text(yaml.safe_dump({"type": "object", "anyOf": [
        {"properties": {"a": {"default": 1}}}, {"properties": {"b": {"default": 2}}}]}))
    with pytest.raises(NotImplementedError, match="anyOf"):
        with_defaults({}, schema)
    schema.write_text(yaml.safe_dump({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}}}))
    assert with_defaults({}, schema) == {"a": None}  # a conditional without defaults inside is harmless


def test_the_benchmark_settings_need_neither_snakemake_nor_jsonschema(without_packages):
    # what benchmarks/gpu_benchmark.py runs first, on a stock CUDA image: only torch, numpy, PyYAML
    code = """
import argparse, json, sys
for name in ("snakemake", "jsonschema", "pandas"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} could be imported: the blocker does not work")
sys.path.insert(0, "benchmarks")
import gpu_benchmark
args = argparse.Namespace(width=1.5, augment=True, base_width=None, epochs=2, device="cpu")
print(json.dumps(gpu_benchmark.paper_settings(args)))
"""
    env = {**os.environ, **without_packages("snakemake", "jsonschema", "pandas")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    hp, model, train = json.loads(result.stdout.splitlines()[-1])
    config = snakemake_filled(load_config_file(REPO / "configs" / "paper-nin-cifar10.yaml"), SCHEMA_PATH)
    assert model == config["model"]
    assert train == dict(config["train"], stopping="budget", max_epochs=2, device="cpu")
    first_cell = {axis: values[0] for axis, values in config["grid"].items()}
    assert hp == cell_hyperparameters(config["hyperparameters"], dict(first_cell, width=1.5, batchnorm=True, dropout=0.0,
                                                                      augment=True, weight_decay=0.0))


def test_the_command_line_check_needs_no_snakemake(without_packages, tmp_path):
    good, unknown, not_object = tmp_path / "good.yaml", tmp_path / "unknown.yaml", tmp_path / "not_object.yaml"
    good.write_text("study: x\ngrid: {depth: [1, 2]}\n")
    unknown.write_text("study: x\ngrid: {depth: [1]}\ntrain: {max_epoch: 3}\n")
    not_object.write_text("study: x\ngrid: {depth: [1]}\nmeasures: {pruning: null}\n")
    env = {**os.environ, **without_packages("snakemake")}
    files = [str(REPO / "config.yaml"), str(good), str(unknown), str(not_object)]
    result = subprocess.run([sys.executable, "-m", "prunability.config", *files],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{REPO / 'config.yaml'}: ok", f"{good}: ok",
        f"{unknown}: train: Additional properties are not allowed ('max_epoch' was unexpected)",
        f"{not_object}: measures.pruning: None is not of type 'object'"]
