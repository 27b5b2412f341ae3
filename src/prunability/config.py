"""A study's configuration: read strictly, filled with the schema's defaults, and the
checks a JSON schema cannot express (the grid itself: ``prunability.grid``).

Used by the Snakefile before any job is scheduled, so a bad configuration stops
the run with a message naming the offending key.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

import yaml


class ConfigError(ValueError):
    """A configuration value that is invalid in combination with others."""


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader (no tags that build Python objects) that refuses a key given
    twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_config_file(path: str | Path) -> dict:
    """A configuration file read strictly: a syntax error, a tag or a key given twice
    raises ConfigError naming the file and line (Snakemake's own message names neither)."""
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.load(f, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: {error.problem or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: {error}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(config).__name__}")
    return config


# The files of the official CIFAR-10 python batches (named here, without torch, because
# the Snakefile lists a local folder's files as prepare_data's inputs).
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"
CIFAR10_FILES = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, CIFAR10_META_FILE)


def cifar10_batch_folder(folder: str | Path) -> Path:
    """The folder that holds the batch files: ``folder`` or its cifar-10-batches-py."""
    folder = Path(folder)
    return folder / CIFAR10_FOLDER if (folder / CIFAR10_FOLDER).is_dir() else folder


def cifar10_local_files(folder: str | Path) -> list[str]:
    """The files a split read from a local CIFAR-10 folder depends on: the batch files
    that exist and a SHA256SUMS beside them or one level up. A change to any of them
    makes the split stale."""
    batches = cifar10_batch_folder(folder)
    files = [batches / name for name in CIFAR10_FILES] + [batches / "SHA256SUMS", batches.parent / "SHA256SUMS"]
    return [str(f) for f in files if f.is_file()]


def config_error_message(error: BaseException) -> str:
    """'<key path>: <what is wrong>' for a schema ValidationError, also when it is
    wrapped in Snakemake's WorkflowError (found on the exception chain); otherwise
    the error's own message."""
    import jsonschema

    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, jsonschema.ValidationError):
            path = ".".join(str(p) for p in cause.absolute_path) or "(top level)"
            return f"{path}: {cause.message}"
        cause = cause.__cause__ or cause.__context__
    return str(error)


def non_finite_numbers(value, path: str = "") -> list[tuple[str, float]]:
    """(key path, value) of every NaN or infinite number in a nested configuration.
    YAML reads .nan and .inf as floats, and JSON Schema's ranges let them through."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [(path or "(top level)", value)]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    # key paths as in the schema's messages: grid.depth.0
    return [found for key, item in items for found in non_finite_numbers(item, f"{path}.{key}" if path else str(key))]


def check_whole_numbers(config: dict, schema_path: str | Path) -> None:
    """Raise ConfigError for a number written like 2.0 where the schema says integer.

    JSON Schema counts 2.0 as an integer, but the code does not (range(2.0) raises, a
    seed 1.0 names its files "seed~1.0"): the schema is checked again with "integer"
    meaning a Python int (jsonschema's own type-checker mechanism). Run after the
    schema validation, so every other error has been reported already."""
    import jsonschema

    def python_int(checker, instance) -> bool:
        return isinstance(instance, int) and not isinstance(instance, bool)

    base = jsonschema.validators.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    strict = jsonschema.validators.extend(base, type_checker=base.TYPE_CHECKER.redefine("integer", python_int))
    with open(schema_path, encoding="utf-8") as f:
        schema = yaml.safe_load(f)
    for error in strict(schema).iter_errors(config):
        if isinstance(error.instance, float):
            path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            raise ConfigError(f"{path}: {error.instance} is not a whole number (write {error.instance:g})")


def check_config(config: dict) -> None:
    """Cross-field checks after schema validation; raises ConfigError naming the key."""
    for path, value in non_finite_numbers(config)[:1]:
        raise ConfigError(f"{path}: {value} is not a finite number")
    data = config["data"]
    if data["source"] == "cifar10" and data["local_dir"] is not None:
        folder = Path(data["local_dir"])
        if not folder.is_dir():
            raise ConfigError(f"data.local_dir: folder {str(folder)!r} does not exist")
    if data["source"] != "cifar10" and data["local_dir"] is not None:
        raise ConfigError(f"data.local_dir is set but data.source is {data['source']!r} (it is read only for cifar10)")
    if config["figures"]["target"] not in config["statistics"]["targets"]:
        raise ConfigError(
            f"figures.target {config['figures']['target']!r} is not one of statistics.targets "
            f"{config['statistics']['targets']}"
        )
    unknown = [axis for axis in config["statistics"]["axes"] or [] if axis not in config["grid"]]
    if unknown:
        raise ConfigError(f"statistics.axes: {unknown} are not grid axes (the grid has {list(config['grid'])})")
    if config["statistics"]["main_target"] not in config["statistics"]["targets"]:
        raise ConfigError(
            f"statistics.main_target {config['statistics']['main_target']!r} is not one of statistics.targets "
            f"{config['statistics']['targets']}"
        )
    sweep = config["double_descent"]["sweep_axis"]
    if sweep is not None and len(config["grid"].get(sweep, [])) < 2:
        raise ConfigError(
            f"double_descent.sweep_axis: {sweep!r} is not a grid axis with two or more values "
            f"(the grid has {list(config['grid'])})"
        )
    if sweep is not None and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in config["grid"][sweep]):
        raise ConfigError(f"double_descent.sweep_axis: the values of grid.{sweep} must be numbers, got {config['grid'][sweep]}")
    if config["model"]["arch"] == "resnet18k" and "depth" in config["grid"]:
        raise ConfigError("grid.depth: model.arch resnet18k has a fixed depth (18 layers); vary width (k) instead")
    unknown = [axis for axis in config["resources"]["axes_within_job"] if axis not in config["grid"]]
    if unknown:
        raise ConfigError(f"resources.axes_within_job: {unknown} are not grid axes (the grid has {list(config['grid'])})")
    if config["data"]["source"] == "digits" and config["hyperparameters"]["augment"] and config["train"]["augment_flip"]:
        raise ConfigError("train.augment_flip: horizontal flips change the meaning of digits; turn it off for data.source digits")
    check_generalization_stability(config)
    check_prune_potential(config)


def check_generalization_stability(config: dict) -> None:
    """Cross-field checks of the generalization_stability section (when enabled)."""
    gs = config.get("generalization_stability")  # absent in a configuration that skipped the schema's defaults
    if not gs or not gs.get("enabled"):
        return
    if config["model"]["arch"] == "mlp":
        raise ConfigError("generalization_stability.enabled: model.arch mlp has no conv layers to prune; use nin or resnet18k")
    if not gs["targets"] and not gs["noise"]["modes"] and not gs["baseline"]:
        raise ConfigError("generalization_stability.targets: no runs (targets, noise.modes empty and baseline false)")
    epochs = gs["train"]["epochs"]
    for i, layer in enumerate(gs["layers"]):
        if layer["end_epoch"] < layer["start_epoch"]:
            raise ConfigError(f"generalization_stability.layers[{i}].end_epoch: {layer['end_epoch']} is before "
                              f"start_epoch {layer['start_epoch']}")
        if layer["end_epoch"] > epochs:
            raise ConfigError(f"generalization_stability.layers[{i}].end_epoch: {layer['end_epoch']} is after the "
                              f"last epoch (generalization_stability.train.epochs {epochs}); pruning must end in training")
    indices = [layer["index"] for layer in gs["layers"]]
    if len(set(indices)) != len(indices):
        raise ConfigError(f"generalization_stability.layers: an index is given twice ({indices})")
    milestones = gs["train"]["lr_milestones"]
    if milestones != sorted(milestones):
        raise ConfigError(f"generalization_stability.train.lr_milestones: {milestones} must be increasing")


def check_prune_potential(config: dict) -> None:
    """Checks of measures.prune_potential the schema cannot express, when the family is
    on: a prune-ratio grid with more than the unpruned net, a slope fitted to at least
    one ratio, and one measure name per noise_eps value (the names use {:g})."""
    if "prune_potential" not in config.get("measures", {}).get("families", []):  # absent without the schema's defaults
        return
    section = config["measures"]["prune_potential"]

    def stop(message: str):
        raise ConfigError(f"measures.prune_potential.{message}")

    if section["resolution"] > section["prune_ratio_max"] + 1e-9:
        stop(f"resolution: {section['resolution']} is above prune_ratio_max {section['prune_ratio_max']}: "
             "the grid would hold only the unpruned network (ratio 0)")
    if section["resolution"] > section["excess_error_max_prune_ratio"] + 1e-9:
        stop(f"excess_error_max_prune_ratio: {section['excess_error_max_prune_ratio']} is below the first "
             f"nonzero prune ratio (resolution {section['resolution']}): the slope would be fitted to no ratio")
    names = [f"{eps:g}" for eps in section["noise_eps"]]
    if len(set(names)) != len(names):
        stop(f"noise_eps: {section['noise_eps']} gives two values the same measure name "
             f"(noise_agreement_eps<{{:g}}>: {names})")


# The workflow's schema, in a source checkout (the package is installed editable from it).
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

# Keywords whose subschemas apply only when the validation of another part passes (or
# fails). Snakemake's default-filling validator sets defaults inside them as a side
# effect of that validation; filling without validating cannot know which, so a
# schema with a default under one of them is refused.
_CONDITIONAL_KEYWORDS = ("anyOf", "oneOf", "not", "if", "then", "else", "contains",
                         "unevaluatedProperties", "unevaluatedItems", "$dynamicRef")


def with_defaults(config: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """A copy of ``config`` with the schema's defaults filled in, as Snakemake's
    ``snakemake.utils.validate(config, schema, set_default=True)`` fills them, with
    PyYAML and the standard library only (no snakemake, no jsonschema). It checks
    nothing but what it needs to place the defaults (objects where the schema has
    properties): validate the result as the workflow does (jsonschema, check_config).

    Snakemake's rule (jsonschema's "properties" keyword, extended): wherever an object
    meets a ``properties`` keyword, every property whose own subschema has a
    ``default`` and that is missing from the object gets that default; then every
    property present is descended into with its subschema. So

    - a nested object with ``default: {}`` is inserted empty and filled recursively;
      an object given in part keeps its keys and gains the missing ones;
    - a key present with null stays null; where the key's schema has ``properties``
      (an object expected), null or any other non-object raises ConfigError naming the
      key: Snakemake's validate fails there too (a type error, or an AttributeError
      where the schema allows null);
    - the default is read from the property's subschema itself: a ``default`` beside
      a ``$ref`` counts, one inside the referenced ``$defs`` entry does not set the
      property (it is never applied to a missing key); ``$ref`` (to ``#/...`` in the
      same file), ``allOf``, ``additionalProperties``,
      ``patternProperties``, ``dependentSchemas``, ``prefixItems`` and ``items`` are
      descended as the validator descends them, so the objects of an array (a
      default array included) get their items' defaults;
    - keywords are applied in the schema's order, and the first default set for a key
      wins (``setdefault``).

    Defaults are copied, so the result shares no object with the schema or with
    ``config``, which is not changed. A default under a conditional keyword (anyOf,
    oneOf, not, if/then/else, contains, unevaluated*) raises NotImplementedError:
    Snakemake would set it only where that branch validates.
    """
    schema_path = Path(schema_path).resolve()
    documents: dict[Path, object] = {}

    def load(path: Path):
        if path not in documents:
            text = path.read_text(encoding="utf-8")
            try:  # Snakemake reads a schema as JSON first, then as YAML
                documents[path] = json.loads(text)
            except ValueError:
                documents[path] = yaml.safe_load(text)
        return documents[path]

    def resolve(ref: str, file: Path):
        target, _, fragment = ref.partition("#")
        if target or (fragment and not fragment.startswith("/")):
            raise NotImplementedError(f"{ref!r}: only JSON-pointer references within the schema file are supported")
        node = load(file)
        for token in fragment.split("/")[1:]:
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]
        return node, file

    def has_default(schema, file: Path, seen: set) -> bool:
        if isinstance(schema, list):
            return any(has_default(s, file, seen) for s in schema)
        if not isinstance(schema, dict):
            return False
        if "default" in schema:
            return True
        if isinstance(schema.get("$ref"), str) and (schema["$ref"], file) not in seen:
            seen.add((schema["$ref"], file))
            if has_default(*resolve(schema["$ref"], file), seen):
                return True
        return any(has_default(v, file, seen) for k, v in schema.items() if k != "$ref")

    def here(where: str, key) -> str:  # a key path as in the schema's messages: grid.depth.0
        return f"{where}.{key}" if where else str(key)

    def fill(instance, schema, file: Path, where: str) -> None:
        if not isinstance(schema, dict):  # a boolean schema: nothing to fill
            return
        for keyword, value in schema.items():  # jsonschema applies the keywords in this order
            if keyword == "properties":
                if not isinstance(instance, dict):
                    raise ConfigError(
                        f"{where or '(top level)'}: {instance!r} where the schema's properties apply, not an object "
                        "(Snakemake's validate fails on it too: a type error, or an AttributeError where the "
                        "schema allows it)")
                for name, sub in value.items():
                    if isinstance(sub, dict) and "default" in sub:
                        instance.setdefault(name, copy.deepcopy(sub["default"]))
                for name, sub in value.items():
                    if name in instance:
                        fill(instance[name], sub, file, here(where, name))
            elif keyword == "patternProperties" and isinstance(instance, dict):
                for pattern, sub in value.items():
                    for name in instance:
                        if re.search(pattern, name):
                            fill(instance[name], sub, file, here(where, name))
            elif keyword == "additionalProperties" and isinstance(instance, dict):
                patterns = list(schema.get("patternProperties", {}))
                for name in instance:
                    if name not in schema.get("properties", {}) and not any(re.search(p, name) for p in patterns):
                        fill(instance[name], value, file, here(where, name))
            elif keyword == "dependentSchemas" and isinstance(instance, dict):
                for name, sub in value.items():
                    if name in instance:
                        fill(instance, sub, file, where)
            elif keyword == "allOf":
                for sub in value:
                    fill(instance, sub, file, where)
            elif keyword == "$ref":
                fill(instance, *resolve(value, file), where)
            elif keyword == "prefixItems" and isinstance(instance, list):
                for i, (item, sub) in enumerate(zip(instance, value)):
                    fill(item, sub, file, here(where, i))
            elif keyword == "items" and isinstance(instance, list):
                first = len(schema.get("prefixItems", []))
                for i, item in enumerate(instance[first:], start=first):
                    fill(item, value, file, here(where, i))
            elif keyword in _CONDITIONAL_KEYWORDS and has_default(value, file, set()):
                raise NotImplementedError(
                    f"{schema_path}: a default under {keyword!r} is set by Snakemake only where that branch "
                    "validates; with_defaults fills defaults without validating")

    filled = copy.deepcopy(config)
    fill(filled, load(schema_path), schema_path, "")
    return filled


def filled_and_validated(config: dict, validate: Callable[[dict], None], schema_path: str | Path = SCHEMA_PATH) -> dict:
    """The configuration the workflow runs: ``with_defaults``, then ``validate`` (a
    schema validator: Snakemake's in the workflow, jsonschema's elsewhere) on the
    result, then the integer and cross-field checks. Where a section that must be an
    object is not one, ``validate(config)`` first names it as the schema does."""
    try:
        filled = with_defaults(config, schema_path)
    except ConfigError:
        validate(config)
        raise
    validate(filled)
    check_whole_numbers(filled, schema_path)
    check_config(filled)
    return filled


def schema_validate(config: dict) -> None:
    """The schema's check of a configuration by jsonschema, as Snakemake's validate does
    it (for the package's commands that run without Snakemake)."""
    import jsonschema

    with open(SCHEMA_PATH, encoding="utf-8") as f:
        jsonschema.Draft202012Validator(yaml.safe_load(f)).validate(config)


def merged(base: dict, update: dict) -> dict:
    """Snakemake's rule for several --configfile: later files update earlier ones key by key."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else copy.deepcopy(value)
    return out


def load_preset(paths: list[str | Path], validate: Callable[[dict], None] | None = None) -> dict:
    """The configuration of ``--configfile paths...``: the files merged as Snakemake merges
    them, the schema's defaults filled, and checked by ``validate`` when one is given."""
    config: dict = {}
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"configuration file {str(path)!r} does not exist")
        config = merged(config, load_config_file(path))
    return filled_and_validated(config, validate) if validate else with_defaults(config)


def main(argv: list[str] | None = None) -> int:
    """``python -m prunability.config FILE...``: read each configuration file strictly
    and check it as the workflow does (schema, defaults, cross-field checks), without
    starting Snakemake (the schema's defaults by ``with_defaults``, the schema by
    jsonschema, which checks the filled configuration as Snakemake's validate does).
    Prints "ok" or the problem per file; exit status 1 on any."""
    import sys

    failed = False
    for path in argv if argv is not None else sys.argv[1:]:
        try:
            filled_and_validated(load_config_file(path), schema_validate)
            print(f"{path}: ok")
        except Exception as error:  # report every file, then fail
            failed = True
            message = config_error_message(error)
            print(message if message.startswith(str(path)) else f"{path}: {message}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
