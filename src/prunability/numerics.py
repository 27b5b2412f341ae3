"""The arithmetic a job runs with: deterministic kernels or not, and the precision of
float32 matrix products and convolutions.

Both are process-wide torch settings, so every training and measure job sets them at
its start from the configuration (``train.deterministic``, ``train.fp32_precision``,
``measures.fp32_precision``) instead of inheriting torch's defaults, and records what
was in force in its output JSON.

- ``ieee``: full float32 everywhere.
- ``tf32``: TensorFloat-32 (a 10-bit mantissa, about 5e-4 relative rounding per
  operand) for CUDA matrix products and cuDNN convolutions on Ampere and later GPUs;
  the CPU stays at full float32, so CPU results are the same under either setting.

Only the current API (``fp32_precision``) is used: torch refuses to report the legacy
``allow_tf32`` flags once it is set, and a mix of the two is an error.
"""

from __future__ import annotations

import os

import torch

FP32_PRECISIONS = ("ieee", "tf32")


def set_determinism(deterministic: bool) -> None:
    """Deterministic kernels, or (when determinism is not asked for) cuDNN's autotuner,
    which times the convolution algorithms once per shape and keeps the fastest. Either
    call undoes the other, so a process can switch."""
    if deterministic:
        # cuBLAS reads it when CUDA starts; set before any CUDA work of the process
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        # warn_only: an operation with no deterministic kernel warns in the job's log
        # (naming it) instead of failing a job that has run for hours
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = True
        torch.use_deterministic_algorithms(False)


def set_fp32_precision(precision: str) -> None:
    """Full float32 (``ieee``) everywhere, or TF32 for CUDA matmuls and convolutions."""
    if precision not in FP32_PRECISIONS:
        raise ValueError(f"fp32_precision must be one of {FP32_PRECISIONS}, not {precision!r}")
    # each backend by name: the generic torch.backends.fp32_precision does not reset one
    # that was set on its own
    backends = torch.backends
    backends.fp32_precision = "ieee"
    backends.mkldnn.matmul.fp32_precision = backends.mkldnn.conv.fp32_precision = "ieee"  # the CPU's oneDNN
    backends.cuda.matmul.fp32_precision = precision
    backends.cudnn.conv.fp32_precision = backends.cudnn.rnn.fp32_precision = precision


def numerics_in_force() -> dict:
    """What this process computes with, as read back from torch (for the output JSON)."""
    backends = torch.backends
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": backends.cudnn.deterministic,
        "cudnn_benchmark": backends.cudnn.benchmark,
        "fp32_precision": {
            "cuda.matmul": backends.cuda.matmul.fp32_precision,
            "cudnn.conv": backends.cudnn.conv.fp32_precision,
            "cudnn.rnn": backends.cudnn.rnn.fp32_precision,
            "mkldnn.matmul": backends.mkldnn.matmul.fp32_precision,
            "mkldnn.conv": backends.mkldnn.conv.fp32_precision,
        },
    }


def configure_numerics(deterministic: bool, fp32_precision: str) -> dict:
    """Set both for this process; return what is in force."""
    set_determinism(deterministic)
    set_fp32_precision(fp32_precision)
    return numerics_in_force()


def cuda_unavailable() -> str | None:
    """Why this process cannot run on CUDA, or None if it can."""
    if torch.cuda.is_available():
        return None
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    return f"torch {torch.__version__} ({build}) finds no CUDA device on this machine"
