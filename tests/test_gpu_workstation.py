"""A workstation with several GPUs: the overlay configs/overlays/gpu-workstation.yaml
given after a preset, and the profile profiles/gpu-workstation.

- README's command, dry-run exactly as written: the merged configuration validates,
  every training and measure job declares gpu=1 and no other job a GPU;
- the overlay merges key by key into every preset (Snakemake's own merge of several
  --configfile files), so a preset's other ``resources`` keys survive, checked on the
  jobs of a preset that groups cells (resources.axes_within_job);
- a target before --configfile or after -- (--configfile takes every file after it);
- the profile's settings, and --resources on the command line replacing its gpu=1.

Every run is a dry run (-n) on a private copy of the workflow: nothing needs a GPU.
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_workflow, job_counts, snakemake

OVERLAY = "configs/overlays/gpu-workstation.yaml"
PROFILE = "profiles/gpu-workstation"
GPU_RULES = re.compile(r"train_model|measure_\w+")


def readme_command() -> list[str]:
    """The workstation command of README.md (its continuation lines joined), as argv."""
    lines = (REPO / "README.md").read_text().splitlines()
    for start, line in enumerate(lines):
        if not line.strip().startswith("snakemake "):
            continue
        command = []
        for line in lines[start:]:
            command.append(line.strip().rstrip("\\"))
            if not line.rstrip().endswith("\\"):
                break
        if OVERLAY in " ".join(command):
            return shlex.split(" ".join(command))
    raise AssertionError(f"README.md has no snakemake command with {OVERLAY}")


def job_resources(dry_run_output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run lists."""
    jobs, rule = [], None
    for line in dry_run_output.splitlines():
        if match := re.match(r"\s*(?:local)?rule (\w+):", line):
            rule = match.group(1)
        elif (match := re.match(r"\s*resources: (.*)", line)) and rule:
            jobs.append((rule, dict(item.split("=", 1) for item in match.group(1).split(", "))))
            rule = None
    return jobs


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("workstation"))


def merged(*configfiles: Path) -> dict:
    """The configuration Snakemake builds from several --configfile files (before the
    schema's defaults)."""
    from snakemake.settings.types import ConfigSettings

    return ConfigSettings(configfiles=[Path(p) for p in configfiles]).overwrite_config


def test_readme_command_dry_runs_with_gpu_jobs(root):
    argv = readme_command()
    assert argv == [
        "snakemake", "--profile", PROFILE, "--resources", "gpu=8",
        "--configfile", "configs/paper-nin-cifar10.yaml", OVERLAY,
    ]
    result = snakemake(root, "-n", *argv[1:])  # fails the test on an invalid configuration
    assert "invalid configuration" not in result.stdout + result.stderr
    counts = job_counts(result.stdout)
    assert counts["train_model"] == 216 and counts["measure_norms"] == 216
    jobs = job_resources(result.stdout)
    assert sum(1 for rule, _ in jobs if GPU_RULES.fullmatch(rule)) == counts["train_model"] * 6  # training + 5 families
    for rule, resources in jobs:
        assert resources.get("gpu") == ("1" if GPU_RULES.fullmatch(rule) else None), (rule, resources)


@pytest.mark.parametrize("preset", ["config.yaml", *sorted(p.name for p in (REPO / "configs").glob("*.yaml"))])
def test_overlay_merges_into_every_preset_key_by_key(preset):
    source = REPO / preset if preset == "config.yaml" else REPO / "configs" / preset
    own = yaml.safe_load(source.read_text())
    overlay = yaml.safe_load((REPO / OVERLAY).read_text())
    expected = copy.deepcopy(own)
    expected["device"] = "cuda"
    expected["resources"] = {**own.get("resources", {}), "gpus_per_job": 1, "jobs_per_gpu": overlay["resources"]["jobs_per_gpu"]}
    assert merged(source, REPO / OVERLAY) == expected
    assert set(overlay) == {"device", "resources"}  # nothing else of a preset is touched


def test_preset_resources_survive_the_overlay(root):
    # digits-2seeds runs 64 cells in 8 training jobs (resources.axes_within_job): had the
    # overlay replaced the preset's resources section, there would be 64.
    assert yaml.safe_load((root / "configs/digits-2seeds.yaml").read_text())["resources"]["axes_within_job"]
    out = snakemake(root, "-n", "--profile", PROFILE, "--resources", "gpu=4", "--configfile", "configs/digits-2seeds.yaml", OVERLAY).stdout
    assert job_counts(out)["train_model"] == 8
    gpu = {rule: r.get("gpu") for rule, r in job_resources(out) if GPU_RULES.fullmatch(rule)}
    assert set(gpu.values()) == {"1"} and "train_model" in gpu


def test_target_before_configfile_or_after_double_dash(root):
    files = ["--configfile", "configs/paper-nin-cifar10.yaml", OVERLAY]
    before = job_counts(snakemake(root, "-n", "train_all", "--profile", PROFILE, *files).stdout)
    after = job_counts(snakemake(root, "-n", "--profile", PROFILE, *files, "--", "train_all").stdout)
    assert before == after
    assert before["train_model"] == 216 and "measure_norms" not in before
    # without --, the target is read as a third configuration file
    wrong = snakemake(root, "-n", "--profile", PROFILE, *files, "train_all", check=False)
    assert wrong.returncode != 0 and "No such file or directory: 'train_all'" in wrong.stdout + wrong.stderr


def test_profile_settings_and_command_line_resources(root, monkeypatch):
    from snakemake.cli import parse_args

    monkeypatch.chdir(root)
    files = ["--configfile", "configs/paper-nin-cifar10.yaml", OVERLAY]
    _, args = parse_args(["-n", "--profile", PROFILE, *files])
    assert args.resources["gpu"].value == 1  # the profile's value: one GPU job at a time
    assert args.retries == 1 and args.keep_going and args.rerun_incomplete  # the last two from profiles/default
    _, args = parse_args(["-n", "--profile", PROFILE, "--resources", "gpu=8", *files])
    assert args.resources["gpu"].value == 8
