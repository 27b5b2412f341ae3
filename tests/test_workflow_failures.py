"""Errors of the run end to end: they fail the job loudly, before any job where they
can be seen in advance, and lose nothing already computed."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import copy_workflow, load_preset, snakemake, write_config

pytestmark = pytest.mark.workflow

# Two cells per measure job (batchnorm on and off), one family.
STUDY = load_preset("smoke")
STUDY.update(study="oom", grid={"depth": [1], "batchnorm": [True, False]})
STUDY["model"]["base_width"] = 8
STUDY["train"].update(max_epochs=3)
STUDY["resources"] = {"axes_within_job": ["batchnorm"]}
STUDY["measures"] = {"families": ["norms"]}
CELLS = ("depth~1/batchnorm~True", "depth~1/batchnorm~False")

# Appended to the private copy's norms module: while the marker file exists, the second
# model a job measures runs out of GPU memory, as it would on a full device.
OUT_OF_MEMORY = '''

_calls = []
_measure_params = params


@register("norms", "params", orientation=+1, equation="20")
def _params_out_of_memory(ctx):
    """Parameter count (out of memory on the second model while the marker exists)."""
    import os

    _calls.append(1)
    if os.path.exists("OUT_OF_MEMORY") and len(_calls) == 2:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    return _measure_params(ctx)
'''


def test_out_of_memory_fails_the_job_and_a_rerun_takes_back_the_measured_cell(tmp_path):
    root = copy_workflow(tmp_path / "wf")
    norms = root / "src" / "prunability" / "measures" / "norms.py"
    source = norms.read_text()
    assert '@register("norms", "params"' in source
    norms.write_text(source.replace('@register("norms", "params"', '@register("norms", "params_unused"', 1) + OUT_OF_MEMORY)
    write_config(root / "oom.yaml", STUDY)
    (root / "OUT_OF_MEMORY").touch()

    failed = snakemake(root, "measures_all", "--cores", "1", "--configfile", "oom.yaml", check=False)
    results = root / "results" / "oom"
    assert failed.returncode != 0
    log = (results / "logs" / "measure_norms" / "depth~1.log").read_text()
    assert "OutOfMemoryError: CUDA out of memory" in log and "error of the run, not a property of the model" in log
    # Snakemake removed the failed job's outputs; the cell measured before the error is kept
    assert not list((results / "measures").rglob("norms.json"))
    kept = sorted((results / "checkpoints" / "measures").rglob("norms.json"))
    assert len(kept) == 1

    (root / "OUT_OF_MEMORY").unlink()
    snakemake(root, "--unlock", "--configfile", "oom.yaml")
    snakemake(root, "measures_all", "--cores", "1", "--configfile", "oom.yaml")
    log = (results / "logs" / "measure_norms" / "depth~1.log").read_text()
    assert log.count("taken back from") == 1
    assert not list((results / "checkpoints" / "measures").rglob("norms.json"))
    records = {cell: json.loads((results / "measures" / cell / "norms.json").read_text()) for cell in CELLS}
    assert all(r["errors"] == {} for r in records.values())

    # the record taken back equals one measured afresh
    snakemake(root, "measures_all", "--cores", "1", "--configfile", "oom.yaml", "--forcerun", "measure_norms")
    for cell in CELLS:
        fresh = json.loads((results / "measures" / cell / "norms.json").read_text())
        assert fresh["values"] == records[cell]["values"]
        assert fresh["numerics"] == records[cell]["numerics"]
        assert fresh["numerics"]["fp32_precision"]["cudnn.conv"] == "ieee"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_stops_a_local_run_before_any_job(tmp_path):
    root = copy_workflow(tmp_path / "wf")
    write_config(root / "cuda.yaml", {**STUDY, "study": "cuda", "device": "cuda"})
    assert snakemake(root, "-n", "--configfile", "cuda.yaml").returncode == 0  # planning a GPU run is fine
    result = snakemake(root, "--cores", "1", "--configfile", "cuda.yaml", check=False)
    assert result.returncode != 0
    assert "device is 'cuda' in the configuration and 2 jobs would run on it, but torch" in result.stdout + result.stderr
    assert "--config device=cpu" in result.stdout + result.stderr
    assert not (root / "results" / "cuda").exists()
