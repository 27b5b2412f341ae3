"""Checks of the workflow's files that need no run: lint, formatting, conda envs,
presets against the schema, and the schema's own completeness."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
PRESETS = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]
# conda-forge names of the project's pip dependencies
CONDA_NAMES = {"pytorch": "torch"}


def rules_with(directive: str) -> dict[str, str]:
    """rule name -> the text of the given directive's first value, for every rule."""
    found = {}
    for path in RULE_FILES:
        for block in re.split(r"^rule ", path.read_text(), flags=re.MULTILINE)[1:]:
            name = block.split(":", 1)[0].strip()
            match = re.search(rf"^    {directive}:\n\s+(.+)$", block, re.MULTILINE)
            found[name] = match.group(1).strip() if match else None
    return found


def test_snakemake_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_snakefmt_formatting():
    snakefmt = Path(sys.executable).with_name("snakefmt")
    result = subprocess.run([str(snakefmt), "--check", "Snakefile", "workflow"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_rule_has_a_log_and_an_existing_conda_env():
    conda = rules_with("conda")
    logs = rules_with("log")
    assert len(conda) >= 8
    for rule, env in conda.items():
        assert env is not None, f"rule {rule} has no conda env"
        assert logs[rule] is not None, f"rule {rule} has no log"
        assert (REPO / "workflow" / "rules" / env.strip('"')).resolve().is_file(), f"{rule}: {env} missing"


def test_train_and_measure_rules_have_benchmarks():
    benchmarks = rules_with("benchmark")
    for rule, benchmark in benchmarks.items():
        if rule == "train_model" or rule.startswith("measure_"):
            assert benchmark is not None, rule


def _pip_requirements() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!~ ]", d)[0].lower(): d for d in deps}


@pytest.mark.parametrize("env", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_conda_env_is_pinned_and_matches_the_dependencies(env):
    spec = yaml.safe_load(env.read_text())
    assert "conda-forge" in spec["channels"]
    requirements = _pip_requirements()
    for dependency in spec["dependencies"]:
        name, _, version = dependency.partition("=")
        assert re.fullmatch(r"\d+(\.\d+)*", version), f"{env.name}: {dependency} is not pinned"
        if name != "python":
            assert CONDA_NAMES.get(name, name) in requirements, f"{env.name}: {name} is not a project dependency"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_presets_satisfy_the_schema(preset):
    config = yaml.safe_load(preset.read_text())
    validate(config, str(SCHEMA))  # raises on an unknown key or bad value
    assert config["grid"], preset


def _walk(schema: dict, path: str = ""):
    for key, sub in schema.get("properties", {}).items():
        yield f"{path}{key}", sub
        yield from _walk(sub, f"{path}{key}.")


def test_every_config_key_is_documented_with_a_default():
    schema = yaml.safe_load(SCHEMA.read_text())
    for key, sub in _walk(schema):
        described = "description" in sub or "$ref" in sub or "$ref" in str(sub.get("items", ""))
        assert described, f"{key} has no description"
        top = key.split(".")[0]
        if top not in ("study", "grid") and not key.startswith(("grid.",)):
            assert "default" in sub, f"{key} has no default"
