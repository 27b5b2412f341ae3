"""Shared helpers: small data sets for measure tests, a private copy of the workflow,
and running snakemake in it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from prunability.train import DeviceData

REPO = Path(__file__).resolve().parents[1]
# What a fresh clone needs to run the workflow (results/ and .snakemake/ stay behind).
WORKFLOW_FILES = ("Snakefile", "config.yaml", "configs", "workflow", "envs", "profiles", "src")


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow whose studies run on the CPU, as in CI, also on a
    machine with a GPU (where ``device: auto`` would pick it)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    for path in [dest / "config.yaml", *sorted((dest / "configs").glob("*.yaml"))]:
        pin_to_cpu(path)
    return dest


def pin_to_cpu(path: Path) -> None:
    """``device: cpu`` in a configuration file that says auto or nothing (a preset that
    says cuda keeps it: the tests only dry-run those, or set the device themselves)."""
    text = path.read_text()
    device = (yaml.safe_load(text) or {}).get("device")
    if device is None:
        path.write_text(text.rstrip("\n") + "\ndevice: cpu\n")
    elif device == "auto":
        path.write_text(re.sub(r"(?m)^device: *auto\b", "device: cpu", text))


def job_counts(dry_run_output: str) -> dict[str, int]:
    """A dry run's job table: rule -> count (and "total"); empty when nothing is to do."""
    counts = {}
    for line in dry_run_output.split("Job stats:")[1].splitlines()[3:] if "Job stats:" in dry_run_output else []:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


# Imported first by every Python process that has its folder on PYTHONPATH: torch and
# scikit-learn cannot be imported there, as in envs/analysis.yaml.
_WITHOUT_TORCH = """
import sys


class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "sklearn"):
            raise ImportError(f"{name} is not in the analysis environment")


sys.meta_path.insert(0, Blocked())
"""


@pytest.fixture
def without_torch(tmp_path_factory) -> dict:
    """Environment variables for ``snakemake(..., env=...)`` under which no job can
    import torch or scikit-learn (the analysis jobs' conda environment has neither)."""
    folder = tmp_path_factory.mktemp("without_torch")
    (folder / "sitecustomize.py").write_text(_WITHOUT_TORCH)
    return {"PYTHONPATH": str(folder)}


_WITHOUT_PACKAGES = """
import sys

BLOCKED = {packages!r}


class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked in this test (not installed on the machine it stands for)")


sys.meta_path.insert(0, Blocked())
"""


@pytest.fixture
def without_packages(tmp_path_factory):
    """A function: top-level package names -> environment variables (for a subprocess)
    under which Python cannot import any of them, e.g. a stock CUDA image without
    snakemake or jsonschema."""

    def env(*packages: str) -> dict:
        folder = tmp_path_factory.mktemp("without_packages")
        (folder / "sitecustomize.py").write_text(_WITHOUT_PACKAGES.format(packages=tuple(packages)))
        return {"PYTHONPATH": str(folder)}

    return env


def snakemake(cwd: Path, *args: str, timeout: int = 600, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake (from this interpreter's environment) in ``cwd``; ``env`` adds
    environment variables."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed (rc {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def write_config(path: Path, config: dict) -> Path:
    """A test's configuration file, on the CPU unless it names a device."""
    path.write_text(yaml.safe_dump({"device": "cpu", **config}, sort_keys=False))
    return path


def load_preset(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())


def quiet(_msg: str) -> None:
    """A log function that drops every line."""


def make_data(x: torch.Tensor, y: torch.Tensor, num_classes: int, mean=0.0, std=1.0, dtype=torch.float32) -> DeviceData:
    """Train = test = (x, y), normalised by a scalar ``mean`` and ``std`` (by default 0 and
    1, so normalize(x) = x.float()). With dtype float64 normalize() returns float64, so a
    ``.double()`` model runs entirely in double precision."""
    c = x.shape[1]
    return DeviceData(
        x_train=x,
        y_train=y,
        x_test=x,
        y_test=y,
        mean=torch.full((c,), float(mean), dtype=dtype).view(1, c, 1, 1),
        std=torch.full((c,), float(std), dtype=dtype).view(1, c, 1, 1),
        num_classes=num_classes,
    )
