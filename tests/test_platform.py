"""Tests for ``prunability.platform``: the platform record of a job and of a study."""

from __future__ import annotations

import json
import os
import platform as stdlib_platform
import subprocess
import sys

import numpy
import pytest
import torch
from torch import nn

from conftest import make_data, quiet
from prunability.data import digits_split, subsample
from prunability.measures import compute_family
from prunability.platform import ENV_PREFIXES, describe, study_platforms
from prunability.train import train_model

KEYS = {"cpu_model", "cpu_flags", "machine", "logical_cpus", "os", "kernel", "python", "torch", "numpy",
        "cpu_capability", "mkldnn", "onednn_version", "mkl", "mkl_version", "blas", "openmp", "cuda_build",
        "torch_threads", "device_type", "cuda_device", "env"}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_describe_is_json_and_fits_this_machine(one_thread):
    described = describe("cpu")
    assert KEYS <= set(described)
    assert json.loads(json.dumps(described)) == described  # JSON as it is: no tuples, no objects
    assert described["torch"] == torch.__version__ and described["numpy"] == numpy.__version__
    assert described["python"] == stdlib_platform.python_version()
    assert described["torch_threads"] == 1 and described["logical_cpus"] == os.cpu_count()
    assert described["device_type"] == "cpu" and described["cuda_device"] is None
    assert described["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert described["mkldnn"] == torch.backends.mkldnn.is_available()
    assert all(isinstance(flag, str) for flag in described["cpu_flags"])
    if sys.platform == "linux":
        assert described["os"] == "Linux" and described["kernel"] == stdlib_platform.release()
        cpuinfo = open("/proc/cpuinfo").read()
        assert described["cpu_model"] and described["cpu_model"] in cpuinfo
        if stdlib_platform.machine() == "x86_64":
            # the flags are the kernel-relevant subset of what the CPU reports
            reported = set(next(line for line in cpuinfo.splitlines() if line.startswith("flags")).split(":")[1].split())
            assert set(described["cpu_flags"]) <= reported
            assert ("avx2" in reported) == ("avx2" in described["cpu_flags"])
            assert {f for f in reported if f.startswith("avx512")} <= set(described["cpu_flags"])
            if "avx512f" in reported:  # torch dispatches to the widest ISA it finds, unless capped
                assert described["cpu_capability"] in ("AVX512", os.environ.get("ATEN_CPU_CAPABILITY", "").upper())
    if torch.backends.mkldnn.is_available():
        assert described["onednn_version"] and described["onednn_version"][0].isdigit()


def test_describe_records_the_kernel_environment(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.setenv("PRUNABILITY_UNRELATED", "x")
    env = describe()["env"]
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["MKL_CBWR"] == "COMPATIBLE"
    assert all(name.startswith(ENV_PREFIXES) for name in env)


def test_describe_in_a_fresh_process_reads_a_capped_capability():
    # ATEN_CPU_CAPABILITY is read once, at start-up: a capped process reports its cap
    code = "import json; from prunability.platform import describe; print(json.dumps(describe()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "ATEN_CPU_CAPABILITY": "default"}).stdout
    described = json.loads(out)
    assert described["cpu_capability"] == "DEFAULT" and described["env"]["ATEN_CPU_CAPABILITY"] == "default"


def test_training_and_measure_records_carry_the_platform_and_the_same_numbers(tmp_path, one_thread):
    split = subsample(digits_split(0.3, 0), 120, 40, 0)
    hp = dict(depth=1, width=1, batchnorm=False, dropout=0.0, lr=0.01, batch_size=64, weight_decay=0.0,
              optimizer="adam", augment=False, seed=0)
    cfg = dict(ce_target=0.01, max_epochs=2, eval_batch_size=1024, checkpoint_every=1, checkpoint_min_interval_s=0,
               device="cpu", deterministic=True, fp32_precision="ieee", augment_pad=1, augment_flip=False,
               stopping="ce_target")
    model_cfg = {"arch": "mlp", "base_width": 16, "head_relu": False}
    first = train_model(hp, model_cfg, cfg, split, tmp_path / "a.pt", log=quiet)
    second = train_model(hp, model_cfg, cfg, split, tmp_path / "b.pt", log=quiet)
    assert first.summary["platform"] == describe("cpu")
    assert all(torch.equal(first.final_state[k], second.final_state[k]) for k in first.final_state)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.randint(0, 255, (16, 1, 2, 2), dtype=torch.uint8), torch.randint(0, 3, (16,))
    settings = {"mode": "train", "seed": 0, "batch_size": 4}
    summary = {"steps_to_ce_0.1": 10, "steps_to_ce_0.01": 30}
    records = [compute_family("optimization", model, model, make_data(x, y, 3), settings, quiet, summary)
               for _ in range(2)]
    assert records[0]["errors"] == {} and records[0]["values"]["grad_noise"] > 0
    assert records[0]["platform"] == records[1]["platform"] == describe("cpu")
    assert json.dumps(records[0]["values"]) == json.dumps(records[1]["values"])


def test_study_platforms_groups_cells_by_platform():
    here, there = {"cpu_model": "A", "torch": "2.13.0"}, {"cpu_model": "B", "torch": "2.13.0"}
    cells = ["w~1", "w~2", "w~3"]
    summaries = [{"platform": here}, {"platform": there}, {}]  # the last written before platforms were recorded
    records = [[{"family": "norms", "platform": dict(here)}, {"family": "pruning", "platform": there}],
               [{"family": "norms", "platform": there}, {"family": "pruning", "platform": there}],
               [{"family": "norms", "platform": here}, {"family": "pruning"}]]
    study = study_platforms(cells, summaries, records)
    assert json.loads(json.dumps(study)) == study
    assert study["n_platforms"] == 2 and study["n_models"] == 3 and study["n_unrecorded"] == 2
    by_model = {entry["platform"]["cpu_model"]: entry["cells"] for entry in study["platforms"]}
    assert by_model == {"A": {"w~1": ["train", "norms"], "w~3": ["norms"]},
                        "B": {"w~1": ["pruning"], "w~2": ["train", "norms", "pruning"]}}
    assert study["unrecorded"] == ["w~3:train", "w~3:pruning"]
