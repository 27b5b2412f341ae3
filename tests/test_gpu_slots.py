"""The GPU slot allocator, on the CPU with fake GPU ids: distinct GPUs for
concurrent jobs, k jobs per GPU, waiting while full, a killed holder's slot freed by
the kernel, and no lock at all on a CPU run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch

from prunability import gpu_slots
from prunability.gpu_slots import GpuSlotTimeout, acquire_slot, device_for_job

SRC = Path(__file__).resolve().parents[1] / "src"


def hold(lock_dir, gpus, jobs_per_gpu=1, owner="test", **kwargs):
    return acquire_slot(gpus, jobs_per_gpu, lock_dir, owner, poll_s=0.01, log=lambda line: None, **kwargs)


def test_concurrent_holders_get_distinct_gpus_and_a_full_set_times_out(tmp_path):
    slots = [hold(tmp_path, ["0", "1", "2"]) for _ in range(3)]
    assert [s.device for s in slots] == ["cuda:0", "cuda:1", "cuda:2"]
    with pytest.raises(GpuSlotTimeout, match="GPU 1 slot 0: pid"):
        hold(tmp_path, ["0", "1", "2"], timeout_s=0)


def test_k_holders_per_gpu_filled_evenly(tmp_path):
    slots = [hold(tmp_path, ["0", "1"], jobs_per_gpu=2) for _ in range(4)]
    # spread first (one job per GPU), then the second slot of each
    assert [(s.gpu_id, s.slot) for s in slots] == [("0", 0), ("1", 0), ("0", 1), ("1", 1)]
    with pytest.raises(GpuSlotTimeout):
        hold(tmp_path, ["0", "1"], jobs_per_gpu=2, timeout_s=0)


def test_a_released_slot_goes_to_the_least_loaded_gpu(tmp_path):
    gpu0_first, gpu1, gpu0_second = (hold(tmp_path, ["0", "1"], jobs_per_gpu=2) for _ in range(3))
    gpu1.release()
    # GPU 0 still runs two jobs, GPU 1 none: the next job goes to GPU 1
    gpu1_again = hold(tmp_path, ["0", "1"], jobs_per_gpu=2)
    assert gpu1_again.gpu_id == "1"
    gpu0_first.release()
    # one job on each GPU now: a tie goes to the lowest id
    assert hold(tmp_path, ["0", "1"], jobs_per_gpu=2).device == "cuda:0"


def test_waits_while_full_with_progress_lines_then_gets_the_freed_slot(tmp_path):
    first = hold(tmp_path, ["7"], owner="the first job")
    lines, waiting = [], threading.Event()

    def log(line):
        lines.append(line)
        waiting.set()

    result = {}
    waiter = threading.Thread(target=lambda: result.update(slot=acquire_slot(
        ["7"], 1, tmp_path, "second", timeout_s=10, poll_s=0.01, progress_every_s=0.05, log=log)))
    waiter.start()
    assert waiting.wait(5), "no progress line while waiting"
    assert "slot" not in result
    first.release()
    waiter.join(10)
    assert result["slot"].gpu_id == "7"
    assert "waiting for a GPU slot" in lines[0] and "the first job" in lines[0]


def test_the_slot_of_a_sigkilled_holder_is_freed(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from prunability.gpu_slots import acquire_slot
            slot = acquire_slot(["0"], 1, {str(tmp_path)!r}, "child job")
            print("held", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(GpuSlotTimeout, match=f"pid {child.pid} .*child job"):
            hold(tmp_path, ["0"], timeout_s=0)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert hold(tmp_path, ["0"], timeout_s=0).gpu_id == "0"


@pytest.mark.parametrize("device", ["cpu", "auto", "cuda"])
def test_a_run_without_cuda_takes_no_lock(tmp_path, monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    lock_dir = tmp_path / "locks"
    # the configured device comes back unchanged: auto resolves to the CPU as before,
    # cuda to resolve_device's error naming the cause
    assert device_for_job(device, 1, "job", lock_dir=lock_dir) == (device, None)
    assert not lock_dir.exists()


def test_with_cuda_jobs_use_the_index_of_their_gpu_in_cuda_visible_devices(tmp_path, monkeypatch):
    current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    first = device_for_job("auto", 1, "job a", lock_dir=tmp_path, log=lambda line: None)
    second = device_for_job("cuda", 1, "job b", lock_dir=tmp_path, log=lambda line: None)
    assert (first[0], second[0]) == ("cuda:0", "cuda:1")
    assert current == [0, 1]
    assert sorted(p.name for p in tmp_path.glob("gpu-*")) == ["gpu-3.slot-0.lock", "gpu-5.slot-0.lock"]


def test_visible_gpus():
    assert gpu_slots.visible_gpus(2, {}) == ["0", "1"]
    assert gpu_slots.visible_gpus(2, {"CUDA_VISIBLE_DEVICES": "4, 6"}) == ["4", "6"]
    assert gpu_slots.visible_gpus(1, {"CUDA_VISIBLE_DEVICES": "4,x"}) == ["4"]  # CUDA stops at an invalid entry
    assert gpu_slots.slot_path(Path("d"), "MIG-1/2", 0).name == "gpu-MIG-1_2.slot-0.lock"


def test_lock_dir_is_per_user_per_slurm_job_or_given(monkeypatch):
    machine_wide = gpu_slots.default_lock_dir({})
    assert machine_wide.name == f"prunability-gpu-slots-{os.getuid()}"
    assert gpu_slots.default_lock_dir({"SLURM_JOB_ID": "42"}) == machine_wide / "slurm-job-42"
    assert gpu_slots.default_lock_dir({gpu_slots.LOCK_DIR_ENV: "/x/y"}) == Path("/x/y")


def test_timeout_from_env():
    assert gpu_slots.timeout_from_env({}) is None
    assert gpu_slots.timeout_from_env({gpu_slots.TIMEOUT_ENV: "90"}) == 90.0
    with pytest.raises(ValueError, match=gpu_slots.TIMEOUT_ENV):
        gpu_slots.timeout_from_env({gpu_slots.TIMEOUT_ENV: "soon"})
