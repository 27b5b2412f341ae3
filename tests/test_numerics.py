"""Tests for ``prunability.numerics``: determinism and the float32 precision a job sets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunability.numerics import (
    configure_numerics,
    cuda_unavailable,
    numerics_in_force,
    set_determinism,
    set_fp32_precision,
)


@pytest.fixture(autouse=True)
def restore_numerics():
    """These settings are process-wide: leave them as the tests found them."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
    set_fp32_precision("ieee")


def test_determinism_off_undoes_an_earlier_on():
    set_determinism(True)
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark
    set_determinism(False)
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark
    set_determinism(True)
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.benchmark


def test_tf32_applies_to_cuda_only_and_ieee_undoes_it():
    set_fp32_precision("tf32")
    precision = numerics_in_force()["fp32_precision"]
    assert precision == {"cuda.matmul": "tf32", "cudnn.conv": "tf32", "cudnn.rnn": "tf32",
                         "mkldnn.matmul": "ieee", "mkldnn.conv": "ieee"}
    set_fp32_precision("ieee")
    assert set(numerics_in_force()["fp32_precision"].values()) == {"ieee"}


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="fp32_precision must be one of"):
        set_fp32_precision("bf16")


def test_configure_reports_what_is_in_force():
    state = configure_numerics(False, "tf32")
    assert state["deterministic_algorithms"] is False and state["cudnn_benchmark"] is True
    assert state["fp32_precision"]["cudnn.conv"] == "tf32"
    assert configure_numerics(True, "ieee") == numerics_in_force()


def test_cpu_results_are_the_same_under_either_precision():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    x = torch.randn(16, 3, 8, 8)

    def outputs():
        net.zero_grad()
        y = net(x)
        y.square().sum().backward()
        return y.detach().clone(), [p.grad.clone() for p in net.parameters()]

    set_fp32_precision("ieee")
    y_ieee, g_ieee = outputs()
    set_fp32_precision("tf32")
    y_tf32, g_tf32 = outputs()
    assert torch.equal(y_ieee, y_tf32)
    assert all(torch.equal(a, b) for a, b in zip(g_ieee, g_tf32))


def test_cuda_unavailable_says_why():
    reason = cuda_unavailable()
    if torch.cuda.is_available():
        assert reason is None
    else:
        assert f"torch {torch.__version__}" in reason and "finds no CUDA device" in reason
