"""The platform a job computed on: the machine and the software, as far as they decide
its numbers.

On one machine a study is bit-identical run to run (deterministic kernels, fixed seeds,
one thread per job). Across machines the same float32 arithmetic can round differently:
torch's own CPU kernels dispatch to the widest vector ISA the CPU has (AVX-512 or AVX2,
``cpu_capability``), oneDNN (convolutions) and MKL (matrix products) pick their kernels
and blockings by ISA and cache sizes, and a GPU's kernels by its model and the
CUDA/cuDNN versions. So every training and measure record carries ``platform``
(``describe()``), and the study lists the distinct platforms with the cells that ran on
each (``study_platforms()``, results/<study>/platform.json). docs/reproducibility.md
says what the record is for and what it costs to make two machines agree.

``describe()`` imports torch only when called: ``study_platforms()`` runs in the
analysis jobs, which have no torch.
"""

from __future__ import annotations

import functools
import json
import os
import platform as _stdlib_platform
import re
import sys

__all__ = ["describe", "study_platforms", "ISA_FLAGS", "ENV_PREFIXES"]

# /proc/cpuinfo flags that select kernels in torch (ATen), oneDNN and MKL
ISA_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni")
ISA_PREFIXES = ("avx512", "amx")
# environment variables that cap or steer those kernels and their threads
ENV_PREFIXES = ("ONEDNN_", "DNNL_", "MKL_", "OMP_", "KMP_", "GOMP_", "ATEN_", "CUBLAS_", "CUDNN_",
                "NVIDIA_TF32_", "TORCH_ALLOW_TF32_", "TORCH_CUDNN_")


def _cpuinfo() -> tuple[str | None, list[str]]:
    """The CPU's model name and its kernel-relevant ISA flags, from /proc/cpuinfo (Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return None, []
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    present = set(flags.group(1).split()) if flags else set()
    wanted = sorted(f for f in present if f in ISA_FLAGS or f.startswith(ISA_PREFIXES))
    return (model.group(1).strip() if model else None), wanted


def _config_version(config: str, pattern: str) -> str | None:
    found = re.search(pattern, config)
    return found.group(1) if found else None


@functools.lru_cache(maxsize=None)
def _static() -> dict:
    """What cannot change within a process: the machine, the OS, the builds."""
    import numpy
    import torch

    cpu_model, flags = _cpuinfo()
    config = torch.__config__.show()
    uname = _stdlib_platform.uname()
    return {
        "cpu_model": cpu_model or _stdlib_platform.processor() or None,
        "cpu_flags": flags,
        "machine": uname.machine,
        "logical_cpus": os.cpu_count(),
        "os": uname.system,
        "kernel": uname.release,
        "python": _stdlib_platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        # the vector ISA torch's own CPU kernels (reductions, elementwise, norms) run
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "onednn_version": _config_version(config, r"MKL-DNN v([\w.]+)"),
        "mkl": torch.backends.mkl.is_available(),
        "mkl_version": _config_version(config, r"Math Kernel Library Version ([\w.]+)"),
        "blas": _config_version(config, r"BLAS_INFO=(\w+)"),
        "openmp": torch.backends.openmp.is_available(),
        "cuda_build": torch.version.cuda,
    }


def _nvidia_driver() -> str | None:
    try:
        with open("/proc/driver/nvidia/version") as f:
            found = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", f.read())
    except OSError:
        return None
    return found.group(1) if found else None


def _cuda(device) -> dict:
    import torch

    if device is None or torch.device(device).type != "cuda" or not torch.cuda.is_available():
        return {"cuda_device": None}
    device = torch.device(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    properties = torch.cuda.get_device_properties(index)
    return {
        "cuda_device": properties.name,
        "cuda_compute_capability": f"{properties.major}.{properties.minor}",
        "cuda_driver": _nvidia_driver(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }


def describe(device=None) -> dict:
    """The platform this process computes on, as a JSON-able dict: CPU model and ISA
    flags, logical CPUs, OS and kernel, Python, torch and numpy versions, torch's thread
    count, the CPU capability torch dispatches to, oneDNN/MKL presence and versions,
    the GPU (name, compute capability, driver, cuDNN) when ``device`` is a CUDA device,
    and the environment variables that steer the kernels (``ENV_PREFIXES``).

    Reads state only; it sets nothing torch computes with."""
    import torch

    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}
    return {
        **_static(),
        "torch_threads": torch.get_num_threads(),
        "device_type": None if device is None else torch.device(device).type,
        **_cuda(device),
        "env": env,
    }


def _key(platform: dict) -> str:
    return json.dumps(platform, sort_keys=True, default=str)


def study_platforms(cells: list[str], summaries: list[dict], records: list[list[dict]]) -> dict:
    """The distinct platforms of a study's train.json (``summaries``) and measure JSONs
    (``records``, per cell its families), each with the cells that ran on it and which
    of their jobs (``train`` or a family): the contents of results/<study>/platform.json.
    Records written before platforms were recorded are counted under ``unrecorded``."""
    found: dict[str, dict] = {}
    unrecorded: list[str] = []
    for cell, summary, recs in zip(cells, summaries, records):
        jobs = [("train", summary)] + [(rec.get("family", "?"), rec) for rec in recs]
        for job, record in jobs:
            platform = record.get("platform")
            if platform is None:
                unrecorded.append(f"{cell}:{job}")
                continue
            entry = found.setdefault(_key(platform), {"platform": platform, "cells": {}})
            entry["cells"].setdefault(cell, []).append(job)
    platforms = sorted(found.values(), key=lambda e: -len(e["cells"]))
    return {
        "n_platforms": len(platforms),
        "n_models": len(cells),
        "n_unrecorded": len(unrecorded),
        "platforms": platforms,
        "unrecorded": unrecorded,
    }


if __name__ == "__main__":  # python -m prunability.platform: this machine, as a job records it
    json.dump(describe(), sys.stdout, indent=2)
    print()
