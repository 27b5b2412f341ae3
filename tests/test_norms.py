"""Tests for src/prunability/measures/norms.py beyond tests/test_measures.py:

- ``conv_spectral_norm`` against the explicit operator matrix of a stride-1 circular
  convolution, and against closed forms;
- ``circular_grids`` on the package's NiN;
- the 1x1 shortcut of ``conv_spectral_norm`` bit for bit against the per-frequency
  computation, and every norms measure of a NiN against values from before it;
- every spectral / over-margin measure (Jiang et al. 2020) and its
  ``_fft`` variant by hand on small networks with known weights and a known margin;
- registered equation numbers and orientations;
- orientation on two models whose order is known;
- BatchNorm folding on a Conv + BN net.

Every expected value is derived by hand in the comments (or computed from an explicit
operator matrix that the test builds itself and verifies).
"""

from __future__ import annotations

import cmath
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prunability.measures import MEASURES, compute_family, measures_of
from prunability.measures.norms import NormsContext, conv_spectral_norm, circular_grids
from prunability.models import build_model
from prunability.pruning import prunable_weights
from prunability.train import DeviceData
from conftest import make_data, quiet

NORM_SETTINGS = {"fold_bn": True, "margin_quantile": 0.1, "eval_batch_size": 64}

SPECTRAL = [  # the 8 spectral measures, each registered with and without "_fft"
    "log_spec_init_main",
    "log_spec_orig_main",
    "log_prod_of_spec_over_margin",
    "log_prod_of_spec",
    "fro_over_spec",
    "log_sum_of_spec_over_margin",
    "log_sum_of_spec",
    "dist_spec_init",
]
OVER_MARGIN = [  # every measure that divides by gamma^2
    "inverse_margin",
    "log_spec_init_main",
    "log_spec_orig_main",
    "log_prod_of_spec_over_margin",
    "log_sum_of_spec_over_margin",
    "log_spec_init_main_fft",
    "log_spec_orig_main_fft",
    "log_prod_of_spec_over_margin_fft",
    "log_sum_of_spec_over_margin_fft",
    "log_prod_of_fro_over_margin",
    "log_sum_of_fro_over_margin",
    "path_norm_over_margin",
]


def norms(model, init, data, **overrides) -> dict:
    rec = compute_family("norms", model, init, data, {**NORM_SETTINGS, **overrides}, quiet)
    assert rec["errors"] == {}, rec["errors"]
    return rec["values"]


def jiang(spec, fro, dist_fro, dist_spec, gamma2) -> dict:
    """The formulas of Jiang et al. 2020 (as Dziugaite et al. 2020's code computes them)
    from per-layer quantities derived by hand:
    spec = s_l = sigma_max(W_l)^2, fro = ||W_l||_F^2, dist_fro = ||W_l - W_l^0||_F^2,
    dist_spec = sigma_max(W_l - W_l^0)^2, gamma2 = gamma^2. Written independently of
    the library; the closed-form tests below check it against literal values."""
    d = len(spec)
    log_m2 = math.log(gamma2) if gamma2 > 0 else -math.inf
    lps = sum(math.log(s) for s in spec)  # (32)
    lpf = sum(math.log(f) for f in fro)  # (37)
    return {
        "log_prod_of_spec": lps,
        "log_prod_of_spec_over_margin": lps - log_m2,  # (31) = (32) - 2 log gamma
        "log_spec_init_main": lps - log_m2 + math.log(sum(df / s for df, s in zip(dist_fro, spec))),  # (29)
        "fro_over_spec": sum(f / s for f, s in zip(fro, spec)),  # (33)
        "log_spec_orig_main": lps - log_m2 + math.log(sum(f / s for f, s in zip(fro, spec))),  # (30)
        "log_sum_of_spec_over_margin": math.log(d) + (lps - log_m2) / d,  # (34)
        "log_sum_of_spec": math.log(d) + lps / d,  # (35)
        "dist_spec_init": sum(dist_spec),  # (41)
        "log_prod_of_fro_over_margin": lpf - log_m2,  # (36)
        "log_sum_of_fro_over_margin": math.log(d) + (lpf - log_m2) / d,  # (38)
        "fro_dist": sum(dist_fro),  # (40)
        "param_norm": sum(fro),  # (42)
        "l2": math.sqrt(sum(fro)),
        "l2_dist": math.sqrt(sum(dist_fro)),
    }


def assert_values(got: dict, expected: dict, rel=1e-9):
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=rel, abs=1e-12), name


# =========================================================================== explicit circular operators


def circular_operator(kernel: torch.Tensor, grid) -> torch.Tensor:
    """Matrix (out*h*w, in*h*w) of the stride-1 circular *cross-correlation* that
    F.conv2d computes, y[o,i,j] = sum_{c,a,b} k[o,c,a,b] x[c,(i+a) mod h,(j+b) mod w]:
    conv2d (no padding) on every one-hot input, extended circularly by tiling to
    (h + kh - 1, w + kw - 1) so the taps wrap around (also for a kernel larger than the
    grid, where F.pad(mode="circular") would refuse)."""
    out_c, in_c, kh, kw = kernel.shape
    h, w = grid
    n = in_c * h * w
    basis = torch.eye(n, dtype=kernel.dtype).view(n, in_c, h, w)
    reps_h, reps_w = -(-(h + kh - 1) // h), -(-(w + kw - 1) // w)
    tiled = basis.repeat(1, 1, reps_h, reps_w)[:, :, : h + kh - 1, : w + kw - 1]
    y = F.conv2d(tiled, kernel)  # (n, out, h, w): column n of the operator
    assert y.shape == (n, out_c, h, w)
    return y.reshape(n, -1).T


def loop_operator(kernel: torch.Tensor, grid, sign: int) -> torch.Tensor:
    """The same operator from the index formula: sign = +1 circular correlation
    (x[(i+a) mod h]), sign = -1 circular convolution (x[(i-a) mod h]), which is the one
    whose DFT is the kernel's DFT (Sedghi et al.)."""
    out_c, in_c, kh, kw = kernel.shape
    h, w = grid
    m = torch.zeros(out_c * h * w, in_c * h * w, dtype=kernel.dtype)
    for o in range(out_c):
        for c in range(in_c):
            for a in range(kh):
                for b in range(kw):
                    for i in range(h):
                        for j in range(w):
                            src = (c * h + (i + sign * a) % h) * w + (j + sign * b) % w
                            m[(o * h + i) * w + j, src] += kernel[o, c, a, b]
    return m


def sigma_max(matrix: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(matrix, ord=2).item()


def explicit_norm(kernel: torch.Tensor, grid) -> float:
    return sigma_max(circular_operator(kernel, grid))


def random_kernel(shape, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# (out, in, kh, kw, h, w): 3x3 and 1x1 kernels, square and non-square grids, a kernel
# larger than the grid (taps wrap), a non-square kernel.
CASES = [
    (3, 2, 3, 3, 4, 4),
    (2, 3, 3, 3, 5, 3),
    (4, 3, 3, 3, 8, 8),
    (1, 1, 3, 3, 8, 8),
    (2, 2, 1, 1, 4, 4),
    (3, 2, 1, 1, 5, 3),
    (2, 3, 3, 3, 2, 2),
    (2, 2, 5, 4, 3, 2),
    (3, 2, 2, 3, 4, 5),
]


@pytest.mark.parametrize("case", CASES[:2] + CASES[4:])
def test_explicit_operator_construction(case):
    # The conv2d-built matrix is exactly the correlation of the index formula, and it
    # has the same singular values as the circular *convolution* with the same kernel
    # (the DFT of the flipped kernel is the complex conjugate: conjugate per-frequency
    # matrices, identical singular values). So comparing conv_spectral_norm (DFT of the
    # kernel = convolution) with the conv2d-built operator is legitimate.
    out_c, in_c, kh, kw, h, w = case
    k = random_kernel((out_c, in_c, kh, kw), seed=sum(case))
    corr = circular_operator(k, (h, w))
    assert torch.allclose(corr, loop_operator(k, (h, w), +1), rtol=0, atol=1e-12)
    conv = loop_operator(k, (h, w), -1)
    if (kh > 1 and h > 2) or (kw > 1 and w > 2):  # (on a grid of size <= 2, i + a = i - a mod 2)
        assert not torch.allclose(corr, conv)  # really two different operators ...
    assert torch.allclose(torch.linalg.svdvals(corr), torch.linalg.svdvals(conv), rtol=1e-10, atol=1e-10)  # ... same spectrum
    # the operator commutes with circular shifts of the grid (it is a circular conv)
    x = random_kernel((1, in_c, h, w), seed=7)
    y = (corr @ x.reshape(-1)).view(out_c, h, w)
    y_shift = (corr @ torch.roll(x, shifts=(1, 2), dims=(2, 3)).reshape(-1)).view(out_c, h, w)
    assert torch.allclose(y_shift, torch.roll(y, shifts=(1, 2), dims=(1, 2)), atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_conv_spectral_norm_equals_explicit_operator(case):
    out_c, in_c, kh, kw, h, w = case
    k = random_kernel((out_c, in_c, kh, kw), seed=100 + sum(case))
    got = conv_spectral_norm(k, (h, w))
    assert got.dtype == torch.float64 and got.dim() == 0
    assert got.item() == pytest.approx(explicit_norm(k, (h, w)), rel=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    out_c=st.integers(1, 3),
    in_c=st.integers(1, 3),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)
def test_conv_spectral_norm_property_explicit_operator(out_c, in_c, kh, kw, h, w, seed):
    k = random_kernel((out_c, in_c, kh, kw), seed)
    assert conv_spectral_norm(k, (h, w)).item() == pytest.approx(explicit_norm(k, (h, w)), rel=1e-9, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    c=st.sampled_from([-3.0, -0.5, 0.25, 2.0, 7.0]),
    seed=st.integers(0, 2**31 - 1),
    grid=st.tuples(st.integers(1, 6), st.integers(1, 6)),
)
def test_conv_spectral_norm_is_absolutely_homogeneous(c, seed, grid):
    # ||c K|| = |c| ||K|| for any operator norm
    k = random_kernel((2, 3, 3, 3), seed)
    assert conv_spectral_norm(c * k, grid).item() == pytest.approx(abs(c) * conv_spectral_norm(k, grid).item(), rel=1e-12)


@pytest.mark.parametrize("grid", [(1, 1), (4, 4), (5, 3), (8, 8)])
def test_conv_spectral_norm_1x1_is_matrix_norm(grid):
    # A 1x1 kernel's DFT is the same (out, in) matrix at every frequency.
    # M = [[3, 0], [4, 5]], M^T M = [[25, 20], [20, 25]], eigenvalues 45 and 5: sqrt(45).
    k = torch.tensor([[3.0, 0.0], [4.0, 5.0]], dtype=torch.float64).view(2, 2, 1, 1)
    assert conv_spectral_norm(k, grid).item() == pytest.approx(math.sqrt(45), rel=1e-12)
    # and for a random non-square 1x1 kernel, sigma_max of its (out, in) matrix
    r = random_kernel((4, 3, 1, 1), seed=3)
    assert conv_spectral_norm(r, grid).item() == pytest.approx(sigma_max(r[:, :, 0, 0]), rel=1e-12)


@torch.no_grad()
def per_frequency_norm(kernel: torch.Tensor, grid) -> torch.Tensor:
    """Sedghi et al.'s computation for any kernel, kept here as the reference for the
    library's 1x1 shortcut: the kernel wrapped onto the grid, its 2-D DFT, the largest
    singular value over all h * w frequencies."""
    out_c, in_c, kh, kw = kernel.shape
    h, w = grid
    wrapped = torch.zeros(out_c, in_c, h, w, dtype=kernel.dtype)
    for i in range(kh):
        for j in range(kw):
            wrapped[:, :, i % h, j % w] += kernel[:, :, i, j]
    return torch.linalg.matrix_norm(torch.fft.fft2(wrapped).permute(2, 3, 0, 1), ord=2).max()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(1, 1), (2, 5), (7, 3), (16, 16), (10, 24), (40, 40)])
@pytest.mark.parametrize("grid", [(1, 1), (2, 2), (4, 4), (5, 3), (8, 8), (16, 16), (17, 34), (34, 34)])
def test_conv_spectral_norm_1x1_equals_per_frequency_bit_for_bit(dtype, shape, grid):
    # The shortcut takes one SVD of the (out, in) matrix; the DFT of a kernel that is
    # zero off tap (0, 0) is exactly that matrix at every frequency, so nothing but the
    # SVD's input order differs, and the value is the same to the last bit.
    k = random_kernel((*shape, 1, 1), seed=shape[0] * 97 + shape[1] * 13 + grid[0] * 7 + grid[1]).to(dtype)
    got, expected = conv_spectral_norm(k, grid), per_frequency_norm(k, grid)
    assert got.dtype == expected.dtype == dtype and got.dim() == 0
    assert torch.equal(got, expected), (got.item(), expected.item())


@settings(max_examples=60, deadline=None)
@given(
    out_c=st.integers(1, 12),
    in_c=st.integers(1, 12),
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    seed=st.integers(0, 2**31 - 1),
)
def test_conv_spectral_norm_1x1_property_per_frequency(out_c, in_c, h, w, scale, seed):
    k = scale * random_kernel((out_c, in_c, 1, 1), seed)
    assert torch.equal(conv_spectral_norm(k, (h, w)), per_frequency_norm(k, (h, w)))


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (3, 1), (1, "same")])
def test_conv_spectral_norm_1x1_strided_and_padded_layer(stride, padding):
    # A 1x1 layer's grid is its input size plus its zero padding (stride plays no part
    # in the grid or the value): the shortcut gives the per-frequency value on that
    # grid, and for a 1x1 conv it is the layer's exact operator norm, stride and zero
    # padding included (the layer applies M at a subset of the pixels, and zeros).
    n, c_in, c_out = 5, 3, 4
    conv = nn.Conv2d(c_in, c_out, 1, stride=stride, padding=padding, bias=False).double()
    grid = circular_grids(nn.Sequential(conv), torch.zeros(1, c_in, n, n, dtype=torch.float64))["0.weight"]
    pad = 1 if padding == 1 else 0
    assert grid == (n + 2 * pad, n + 2 * pad)
    k = conv.weight.detach()
    assert torch.equal(conv_spectral_norm(k, grid), per_frequency_norm(k, grid))
    basis = torch.eye(c_in * n * n, dtype=torch.float64).view(-1, c_in, n, n)
    layer = conv(basis).detach().reshape(c_in * n * n, -1).T  # the layer's operator matrix
    assert sigma_max(layer) == pytest.approx(conv_spectral_norm(k, grid).item(), rel=1e-12)


def test_conv_spectral_norm_2x2_by_hand():
    # k = [[1, -2], [3, 4]] on a 2x2 grid: DFT K(f1, f2) = sum k[a, b] (-1)^(f1 a + f2 b):
    #   (0,0): 1 - 2 + 3 + 4 = 6   (0,1): 1 + 2 + 3 - 4 = 2
    #   (1,0): 1 - 2 - 3 - 4 = -8  (1,1): 1 + 2 - 3 + 4 = 4        -> max |K| = 8
    # (the reshaped-matrix norm would be ||k||_F = sqrt(30) ~ 5.48)
    k = torch.tensor([[1.0, -2.0], [3.0, 4.0]], dtype=torch.float64).view(1, 1, 2, 2)
    assert conv_spectral_norm(k, (2, 2)).item() == pytest.approx(8.0, rel=1e-12)


def test_conv_spectral_norm_kernel_larger_than_grid_by_hand():
    # 3x3 kernel on a 2x2 grid: tap (a, b) lands on (a mod 2, b mod 2):
    #   k = [[1, 2, 0], [-3, 0, 1], [0, 1, 1]]
    #   wrapped w00 = k00 + k02 + k20 + k22 = 1 + 0 + 0 + 1 = 2,  w01 = k01 + k21 = 2 + 1 = 3,
    #           w10 = k10 + k12 = -3 + 1 = -2,                    w11 = k11 = 0
    #   DFT: (0,0) 2 + 3 - 2 + 0 = 3,  (0,1) 2 - 3 - 2 - 0 = -3,
    #        (1,0) 2 + 3 + 2 - 0 = 7,  (1,1) 2 - 3 + 2 + 0 = 1        -> 7
    k = torch.tensor([[1.0, 2.0, 0.0], [-3.0, 0.0, 1.0], [0.0, 1.0, 1.0]], dtype=torch.float64).view(1, 1, 3, 3)
    assert conv_spectral_norm(k, (2, 2)).item() == pytest.approx(7.0, rel=1e-12)
    assert explicit_norm(k, (2, 2)) == pytest.approx(7.0, rel=1e-12)  # the wrapped explicit operator agrees
    # multi-channel: the explicit circular operator with wrapped taps
    r = random_kernel((3, 2, 3, 3), seed=11)
    assert conv_spectral_norm(r, (2, 2)).item() == pytest.approx(explicit_norm(r, (2, 2)), rel=1e-10)
    # a 1-pixel grid: every tap wraps onto the pixel: the (out, in) matrix of tap sums
    assert conv_spectral_norm(r, (1, 1)).item() == pytest.approx(sigma_max(r.sum(dim=(2, 3))), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    seed=st.integers(0, 2**31 - 1),
)
def test_conv_spectral_norm_single_channel_closed_form(kh, kw, h, w, seed):
    # One channel: the operator is diagonalised by the 2-D DFT, its singular values are
    # |K(f1, f2)| = |sum_{a,b} k[a,b] exp(-2 pi i (f1 a / h + f2 b / w))| over the h*w
    # frequencies (the exponential is periodic, so taps beyond the grid wrap by themselves).
    k = random_kernel((1, 1, kh, kw), seed)
    kk = k[0, 0].tolist()
    best = max(
        abs(sum(kk[a][b] * cmath.exp(-2j * math.pi * (f1 * a / h + f2 * b / w)) for a in range(kh) for b in range(kw)))
        for f1 in range(h)
        for f2 in range(w)
    )
    assert conv_spectral_norm(k, (h, w)).item() == pytest.approx(best, rel=1e-10, abs=1e-12)


def test_fft_norm_on_the_padded_grid_bounds_the_zero_padded_conv():
    # Why circular_grids adds the padding. One channel, k[1, 0] = 1, k[1, 2] = -1 (a
    # horizontal difference) on a 2x2 input. On the bare 2x2 circular grid the two taps
    # wrap onto the same pixel and cancel (norm 0), yet the real layer (zero padding 1)
    # computes y[i, 0] = -x[i, 1], y[i, 1] = x[i, 0]: a signed permutation, norm 1 (stride 1
    # or 2). The zero-padded, strided conv is a restriction of the circular conv on the
    # padded 4x4 grid, whose norm is max over frequencies |e^{-2 pi i f/4 * 0} - e^{-2 pi i f/4 * 2}|
    # = max |1 - (-1)^f| = 2 >= 1.
    k = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    k[0, 0, 1, 0], k[0, 0, 1, 2] = 1.0, -1.0
    x = torch.eye(4, dtype=torch.float64).view(4, 1, 2, 2)
    assert conv_spectral_norm(k, (2, 2)).item() == pytest.approx(0.0, abs=1e-12)
    assert conv_spectral_norm(k, (4, 4)).item() == pytest.approx(2.0)
    for stride in (1, 2):
        layer = F.conv2d(x, k, stride=stride, padding=1).reshape(4, -1).T  # operator matrix
        assert sigma_max(layer) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(2, 6), stride=st.integers(1, 2), channels=st.integers(1, 3))
def test_fft_norm_on_the_padded_grid_is_an_upper_bound(seed, n, stride, channels):
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(channels, channels, 3, 3, generator=g, dtype=torch.float64)
    basis = torch.eye(channels * n * n, dtype=torch.float64).view(-1, channels, n, n)
    layer = F.conv2d(basis, k, stride=stride, padding=1).reshape(channels * n * n, -1).T
    conv = nn.Conv2d(channels, channels, 3, stride=stride, padding=1)
    grid = circular_grids(nn.Sequential(conv), torch.zeros(1, channels, n, n))["0.weight"]
    assert grid == (n + 2, n + 2)
    assert sigma_max(layer) <= conv_spectral_norm(k, grid).item() * (1 + 1e-9) + 1e-12


# =========================================================================== input grids on NiN


def nin(batchnorm: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(
        "nin", in_channels=3, num_classes=10, image_size=8, depth=3, width=1.0, batchnorm=batchnorm, dropout=0.0
    ).eval()


def nin_grids(batchnorm: bool, size) -> dict:
    # Block convs: 3x3 stride 2 padding 1 -> out = floor((n + 2 - 3) / 2) + 1 = floor((n - 1) / 2) + 1
    #   8 -> 4 -> 2 -> 1,  6 -> 3 -> 2 -> 1,  7 -> 4 -> 2 -> 1.
    # The two 1x1 convs of a block and the head run on the block's output grid.
    # The circular grid of a 3x3 conv adds its zero padding of 1 on both sides (+2).
    # Module indices: with BN [conv, bn, relu] x 3 -> convs 0, 3, 6; without [conv, relu] x 3 -> 0, 2, 4.
    idx = (0, 3, 6) if batchnorm else (0, 2, 4)
    h, w = size
    grids = {}
    for block in range(3):
        grids[f"blocks.{block}.{idx[0]}.weight"] = (h + 2, w + 2)
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        grids[f"blocks.{block}.{idx[1]}.weight"] = (h, w)
        grids[f"blocks.{block}.{idx[2]}.weight"] = (h, w)
    grids["head.0.weight"] = (h, w)
    return grids


def test_nin_grids_by_hand():
    # the expected tables themselves, written out for 8x8 with BN
    assert nin_grids(True, (8, 8)) == {
        "blocks.0.0.weight": (10, 10),
        "blocks.0.3.weight": (4, 4),
        "blocks.0.6.weight": (4, 4),
        "blocks.1.0.weight": (6, 6),
        "blocks.1.3.weight": (2, 2),
        "blocks.1.6.weight": (2, 2),
        "blocks.2.0.weight": (4, 4),
        "blocks.2.3.weight": (1, 1),
        "blocks.2.6.weight": (1, 1),
        "head.0.weight": (1, 1),
    }
    assert list(nin_grids(False, (8, 6)).values()) == [(10, 8), (4, 3), (4, 3), (6, 5), (2, 2), (2, 2), (4, 4), (1, 1), (1, 1), (1, 1)]


@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("size", [(8, 8), (8, 6), (7, 7)])
def test_circular_grids_on_nin(batchnorm, size):
    model = nin(batchnorm)
    before = copy.deepcopy(model.state_dict())
    grids = circular_grids(model, torch.randn(2, 3, *size))
    assert grids == nin_grids(batchnorm, size)
    assert set(grids) == set(prunable_weights(model))  # every weight of the NiN is a Conv2d
    # the hooks are gone and the model is untouched
    assert all(not m._forward_pre_hooks for m in model.modules())
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])


def test_circular_grids_removes_hooks_when_forward_fails():
    model = nin(False)
    with pytest.raises(RuntimeError):
        circular_grids(model, torch.randn(1, 4, 8, 8))  # 4 channels for a 3-channel NiN
    assert all(not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("fold_bn", [True, False])
def test_norms_context_grids_and_fft_spec_on_nin(fold_bn):
    model, init = nin(True, seed=0), nin(True, seed=1)
    x = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    data = make_data(x, torch.tensor([0, 1, 2]), 10)
    ctx = NormsContext(model, init, data, {**NORM_SETTINGS, "fold_bn": fold_bn}, quiet, {})
    assert ctx.grids == nin_grids(True, (8, 8))
    # per layer: a 1x1 conv has the same norm in both variants; a 3x3 conv's FFT value is
    # the explicit circular operator's on the recorded input grid
    for l, (name, k) in enumerate(ctx.kernels.items()):
        if k.shape[-1] == 1:
            assert ctx.spec_fft[l].item() == pytest.approx(ctx.spec[l].item(), rel=1e-10)
        else:
            assert ctx.spec_fft[l].item() == pytest.approx(explicit_norm(k, ctx.grids[name]) ** 2, rel=1e-9)
    assert [k.shape[-1] for k in ctx.kernels.values()] == [3, 1, 1] * 3 + [1]


def cifar_shaped_nin(batchnorm: bool):
    """A small NiN on CIFAR-shaped random data (3x32x32): grids 34, 16, 18, 8, 10, 4, 4."""
    torch.manual_seed(0)
    kw = dict(in_channels=3, num_classes=10, image_size=32, depth=3, width=1.5, batchnorm=batchnorm, dropout=0.0)
    model, init = build_model("nin", **kw).eval(), build_model("nin", **kw).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    return model, init, make_data(x, y, 10, mean=120.0, std=60.0)


# Every norms measure of cifar_shaped_nin(batchnorm=True), fold_bn, computed with the
# per-frequency conv_spectral_norm (before its 1x1 shortcut) on an x86-64 CPU with torch
# 2.13, where the shortcut reproduces each value bit for bit.
NIN_BEFORE_SHORTCUT = {
    "params": 3900.0,
    "inverse_margin": 4.909496278774237,
    "log_prod_of_fro_over_margin": 15.318472860290068,
    "log_prod_of_fro": 13.727301514627454,
    "log_sum_of_fro_over_margin": 3.8344323790230526,
    "log_sum_of_fro": 3.675315244456791,
    "fro_dist": 78.02663394289206,
    "param_norm": 39.58668452480319,
    "path_norm_over_margin": 2.1357710347244416,
    "path_norm": 0.43502854742109776,
    "l2": 6.291795016114494,
    "l2_dist": 8.833268587725161,
    "log_spec_init_main": 4.856670073625551,
    "log_spec_orig_main": 4.176594617427425,
    "log_prod_of_spec_over_margin": 0.31765811630805674,
    "log_prod_of_spec": -1.2735132293545575,
    "fro_over_spec": 47.41489885365598,
    "log_sum_of_spec_over_margin": 2.3343509046248516,
    "log_sum_of_spec": 2.17523377005859,
    "dist_spec_init": 18.603180052298292,
    "log_spec_init_main_fft": 7.814110213033534,
    "log_spec_orig_main_fft": 7.135225848211302,
    "log_prod_of_spec_over_margin_fft": 3.6305161682187794,
    "log_prod_of_spec_fft": 2.0393448225561652,
    "fro_over_spec_fft": 33.27178298581496,
    "log_sum_of_spec_over_margin_fft": 2.665636709815924,
    "log_sum_of_spec_fft": 2.5065195752496625,
    "dist_spec_init_fft": 25.687902057118237,
}


def test_nin_norms_unchanged_by_the_1x1_shortcut():
    # Weight-only measures: rel 1e-12, room for another machine's LAPACK rounding in the
    # double-precision SVDs (the weights themselves come from the seeded float32 init).
    # Measures of the margin or the path norm also carry the float32 forward pass, whose
    # convolution kernels differ between CPUs by ~1e-7 of a logit: rel 1e-5 there. The
    # bit-for-bit comparison is the next test, against the reference in the same run.
    values = norms(*cifar_shaped_nin(batchnorm=True))
    assert set(values) == set(NIN_BEFORE_SHORTCUT)
    for name, before in NIN_BEFORE_SHORTCUT.items():
        forward = name in OVER_MARGIN or name.startswith("path_norm")
        assert values[name] == pytest.approx(before, rel=1e-5 if forward else 1e-12), name


@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("fold_bn", [True, False])
def test_nin_norms_bit_identical_to_per_frequency(batchnorm, fold_bn, monkeypatch):
    model, init, data = cifar_shaped_nin(batchnorm)
    shortcut = norms(model, init, data, fold_bn=fold_bn)
    calls = []
    monkeypatch.setattr("prunability.measures.norms.conv_spectral_norm", lambda k, grid: calls.append(k.shape) or per_frequency_norm(k, grid))
    reference = norms(model, init, data, fold_bn=fold_bn)
    assert len(calls) == 2 * 10 and sum(shape[-1] == 1 for shape in calls) == 2 * 7  # W and W - W^0, 7 of 10 convs 1x1
    assert shortcut.keys() == reference.keys()
    assert {k: v for k, v in shortcut.items() if v != reference[k]} == {}

# =========================================================================== measures by hand: a Linear net
#
# f(x) = W2 relu(W1 x), no biases, d = 2 layers:
#   W1 = [[3, 0], [4, 5]]:  W1^T W1 = [[25, 20], [20, 25]], eigenvalues 45, 5  -> s1 = 45,
#                           ||W1||_F^2 = 9 + 16 + 25 = 50
#   W2 = [[2, 1], [-1, 2]]: orthogonal rows of norm sqrt 5                    -> s2 = 5, ||W2||_F^2 = 10
# init:
#   W1^0 = [[2, -1], [3, 5]]: D1 = W1 - W1^0 = [[1, 1], [1, 0]], ||D1||_F^2 = 3; symmetric
#          with eigenvalues (1 +- sqrt 5)/2 -> sigma_max(D1)^2 = ((1 + sqrt 5)/2)^2 = (3 + sqrt 5)/2
#   W2^0 = 2 I: D2 = [[0, 1], [-1, 0]] (a rotation): ||D2||_F^2 = 2, sigma_max(D2)^2 = 1
# data: x = c (1, 0): W1 x = c (3, 4) >= 0, logits W2 c (3, 4) = c (10, 5), label 0 ->
#   margin 5c; x = (0, 1): W1 x = (0, 5), logits (5, 10), label 1 -> margin 5.
#   Margins {5, 10, 15, 5}, m = 4, k = max(1, floor(0.4)) = 1 -> gamma = 5, 2 log gamma = log 25.
# path norm: W1^2 = [[9, 0], [16, 25]] on (1, 1) -> (9, 41); W2^2 = [[4, 1], [1, 4]] ->
#   (36 + 41, 9 + 164) = (77, 173): 250.

W1 = [[3.0, 0.0], [4.0, 5.0]]
W2 = [[2.0, 1.0], [-1.0, 2.0]]
W1_INIT = [[2.0, -1.0], [3.0, 5.0]]
W2_INIT = [[2.0, 0.0], [0.0, 2.0]]


def linear_net(w1, w2) -> nn.Module:
    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor(w1))
        net[3].weight.copy_(torch.tensor(w2))
    return net.eval()


def linear_data(scale: int = 1, zero: bool = False) -> DeviceData:
    x = torch.tensor([[1, 0], [2, 0], [3, 0], [0, 1]], dtype=torch.uint8) * scale
    if zero:
        x = torch.zeros_like(x)
    return make_data(x.view(4, 1, 1, 2), torch.tensor([0, 0, 0, 1]), 2)


def scaled(w, c):
    return [[c * v for v in row] for row in w]


LINEAR_EXPECTED = {
    # (31) log(45 * 5) - log 25 = log 9
    "log_prod_of_spec_over_margin": math.log(9),
    # (29) log 9 + log(3/45 + 2/5) = log 9 + log(7/15) = log(21/5)
    "log_spec_init_main": math.log(21 / 5),
    # (33) 50/45 + 10/5 = 28/9
    "fro_over_spec": 28 / 9,
    # (30) log 9 + log(28/9) = log 28
    "log_spec_orig_main": math.log(28),
    # (34) log 2 + (1/2) log 9 = log 6
    "log_sum_of_spec_over_margin": math.log(6),
    # (36) log(50 * 10) - log 25 = log 20
    "log_prod_of_fro_over_margin": math.log(20),
    # (38) log 2 + (1/2) log 20 = (1/2) log 80
    "log_sum_of_fro_over_margin": 0.5 * math.log(80),
    # (41) (3 + sqrt 5)/2 + 1 = (5 + sqrt 5)/2
    "dist_spec_init": (5 + math.sqrt(5)) / 2,
    # (43) 250 / 25
    "path_norm_over_margin": 10.0,
    # ||w||_2 = sqrt(50 + 10), ||w - w0||_2 = sqrt(3 + 2)
    "l2": math.sqrt(60),
    "l2_dist": math.sqrt(5),
}


@pytest.mark.parametrize("fold_bn", [True, False])
def test_measures_by_hand_on_linear_net(fold_bn):
    v = norms(linear_net(W1, W2), linear_net(W1_INIT, W2_INIT), linear_data(), fold_bn=fold_bn)
    assert v["inverse_margin"] == pytest.approx(1 / 25)  # gamma = 5, as derived
    assert_values(v, LINEAR_EXPECTED)
    # the independent formula helper reproduces the literal values (checks the helper)
    formulas = jiang([45, 5], [50, 10], [3, 2], [(3 + math.sqrt(5)) / 2, 1], 25)
    assert_values(formulas, {k: x for k, x in LINEAR_EXPECTED.items() if k in formulas})
    assert_values(v, formulas)
    # Linear layers only: the FFT variants are the reshaped-matrix ones
    for name in SPECTRAL:
        assert v[name + "_fft"] == pytest.approx(v[name], rel=1e-12), name


def test_model_at_its_initialisation():
    # W = W^0: every distance is 0, so fro_dist = dist_spec_init = l2_dist = 0 and (29)
    # takes log(sum_l 0 / s_l) = log 0 = -inf (recorded as -inf, not a failed measure).
    net = linear_net(W1, W2)
    v = norms(net, copy.deepcopy(net), linear_data())
    assert v["fro_dist"] == v["dist_spec_init"] == v["l2_dist"] == v["dist_spec_init_fft"] == 0.0
    assert v["log_spec_init_main"] == v["log_spec_init_main_fft"] == -math.inf


def test_zero_margin_makes_over_margin_measures_infinite():
    # x = 0: logits (0, 0) for every example, every margin 0, gamma = 0 -> 2 log gamma = -inf.
    v = norms(linear_net(W1, W2), linear_net(W1_INIT, W2_INIT), linear_data(zero=True))
    for name in OVER_MARGIN:
        assert v[name] == math.inf, name
    # the margin-free measures are unaffected (same values as with data)
    ref = norms(linear_net(W1, W2), linear_net(W1_INIT, W2_INIT), linear_data())
    for name in ["log_prod_of_spec", "fro_over_spec", "log_sum_of_spec", "dist_spec_init", "l2", "l2_dist", "path_norm"]:
        for n in (name, name + "_fft") if name in SPECTRAL else (name,):
            assert v[n] == pytest.approx(ref[n], rel=1e-12), n


@settings(max_examples=15, deadline=None)
@given(
    widths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    seed=st.integers(0, 2**31 - 1),
)
def test_fft_equals_reshaped_for_linear_nets(widths, seed):
    # MLP (Linear layers only, biases and ReLUs): every FFT variant equals its reshaped twin.
    torch.manual_seed(seed)
    dims = [3, *widths, 2]
    layers = [nn.Flatten()]
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1]).eval()
    init = copy.deepcopy(model)
    with torch.no_grad():
        for p in init.parameters():
            p.add_(torch.randn_like(p))
    g = torch.Generator().manual_seed(seed)
    data = make_data(torch.randint(0, 4, (5, 1, 1, 3), dtype=torch.uint8, generator=g), torch.arange(5) % 2, 2)
    rec = compute_family("norms", model, init, data, NORM_SETTINGS, quiet)
    for name in SPECTRAL:
        a, b = rec["values"][name], rec["values"][name + "_fft"]
        assert (a == b) if not math.isfinite(a) else b == pytest.approx(a, rel=1e-10), name


# =========================================================================== measures by hand: a conv net
#
# Conv2d(1 -> 2, 3x3, padding 1, no bias) -> ReLU -> Conv2d(2 -> 2, 1x1, no bias) -> mean pool.
# Layer 1: kernels K_a = ones(3, 3), K_b = -ones(3, 3).
#   reshaped (2, 9) matrix with rows 1 and -1: rank 1, s1 = ||W1||_F^2 = 18.
#   FFT on the 4x4 input grid: per frequency the (2, 1) matrix (K^(f), -K^(f)), norm^2 =
#   2 |K^(f)|^2, and |K^(f)| <= sum |k| = 9 with equality at f = 0: s1_fft = 2 * 81 = 162.
# Layer 2: M = [[3, 4], [4, -3]], orthogonal rows of norm 5: s2 = s2_fft = 25, ||M||_F^2 = 50.
# Init: K_a^0 = ones, K_b^0 = 0 -> D1 = (0, -ones): ||D1||_F^2 = 9 = sigma^2, FFT 81;
#       M^0 = [[3, 4], [4, -4]] -> D2 = [[0, 0], [0, 1]]: 1, 1, 1.
# Margin: a constant image v on 4x4, zero padding: the 3x3 window sums are v * (number of
#   in-grid taps): 4 corners x 4, 8 edge pixels x 6, 4 interior x 9 = 100 in all, mean 6.25 v.
#   Channel a = +, channel b = - (ReLU -> 0); logits = M[:, 0] 6.25 v = (18.75 v, 25 v);
#   label 1 -> margin 6.25 v. Images v = 4, 8, 12: margins 25, 50, 75; k = 1 -> gamma = 25.
# Path norm: squared kernels both ones -> both channels 6.25 on average over the all-ones
#   image, M^2 = [[9, 16], [16, 9]] -> (25 * 6.25, 25 * 6.25): 312.5.

ONES3 = torch.ones(3, 3)


def conv_net(k_a, k_b, m, bn: nn.Module | None = None) -> nn.Module:
    layers = [nn.Conv2d(1, 2, 3, padding=1, bias=False)]
    if bn is not None:
        layers.append(bn)
    layers += [nn.ReLU(), nn.Conv2d(2, 2, 1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        net[0].weight.copy_(torch.stack([k_a, k_b]).view(2, 1, 3, 3))
        net[-3].weight.copy_(torch.tensor(m).view(2, 2, 1, 1))
    return net.eval()


M = [[3.0, 4.0], [4.0, -3.0]]
M_INIT = [[3.0, 4.0], [4.0, -4.0]]


def conv_data() -> DeviceData:
    x = torch.tensor([4, 12, 8], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 1, 4, 4).contiguous()
    return make_data(x, torch.tensor([1, 1, 1]), 2)


def test_conv_net_layer_norms_by_hand():
    # the per-layer quantities claimed in the comment above, from the explicit operator
    k1 = torch.stack([ONES3, -ONES3]).view(2, 1, 3, 3).double()
    assert sigma_max(k1.reshape(2, -1)) ** 2 == pytest.approx(18)
    assert explicit_norm(k1, (4, 4)) ** 2 == pytest.approx(162)
    assert conv_spectral_norm(k1, (4, 4)).item() ** 2 == pytest.approx(162)
    d1 = torch.stack([torch.zeros(3, 3), -ONES3]).view(2, 1, 3, 3).double()
    assert explicit_norm(d1, (4, 4)) ** 2 == pytest.approx(81)
    with torch.no_grad():
        logits = conv_net(ONES3, -ONES3, M)(conv_data().x_train.float())
    assert torch.allclose(logits, torch.tensor([[75.0, 100.0], [225.0, 300.0], [150.0, 200.0]]))


def test_measures_by_hand_on_conv_net():
    v = norms(conv_net(ONES3, -ONES3, M), conv_net(ONES3, torch.zeros(3, 3), M_INIT), conv_data())
    assert v["inverse_margin"] == pytest.approx(1 / 625)
    reshaped = jiang([18, 25], [18, 50], [9, 1], [9, 1], 625)
    fft = jiang([162, 25], [18, 50], [9, 1], [81, 1], 625)
    # literal values for the reshaped / FFT variants:
    #   (32) log 450 / log 4050;  (31) log(450/625) = log(18/25) / log(4050/625) = log(162/25)
    #   (33) 18/18 + 50/25 = 3 / 18/162 + 2 = 19/9;  (30) log(18/25 * 3) / log(162/25 * 19/9)
    #   (29) sum dist_fro / s = 9/18 + 1/25 = 27/50 / 9/162 + 1/25 = 43/450:
    #        log(18/25 * 27/50) = log(243/625) / log(162/25 * 43/450) = log(387/625)
    #   (34) log 2 + (1/2) log(18/25) / log 2 + (1/2) log(162/25) = log(18 sqrt 2 / 5)
    #   (35) log 2 + (1/2) log 450 = log(30 sqrt 2) / log(90 sqrt 2);  (41) 9 + 1 = 10 / 81 + 1 = 82
    literal = {
        "log_prod_of_spec": (math.log(450), math.log(4050)),
        "log_prod_of_spec_over_margin": (math.log(18 / 25), math.log(162 / 25)),
        "fro_over_spec": (3.0, 19 / 9),
        "log_spec_orig_main": (math.log(54 / 25), math.log(342 / 25)),
        "log_spec_init_main": (math.log(243 / 625), math.log(387 / 625)),
        "log_sum_of_spec_over_margin": (math.log(2) + 0.5 * math.log(18 / 25), math.log(18 * math.sqrt(2) / 5)),
        "log_sum_of_spec": (math.log(30 * math.sqrt(2)), math.log(90 * math.sqrt(2))),
        "dist_spec_init": (10.0, 82.0),
    }
    for name, (a, b) in literal.items():
        assert reshaped[name] == pytest.approx(a, rel=1e-12), name
        assert fft[name] == pytest.approx(b, rel=1e-12), name
        assert v[name] == pytest.approx(a, rel=1e-9), name
        assert v[name + "_fft"] == pytest.approx(b, rel=1e-9), name
        assert v[name] != pytest.approx(v[name + "_fft"], rel=1e-3), name  # the variants differ
    # non-spectral over-margin measures: (36) log(18 * 50 / 625) = log(36/25); (38) log 2 + log(6/5)
    assert v["log_prod_of_fro_over_margin"] == pytest.approx(math.log(36 / 25))
    assert v["log_sum_of_fro_over_margin"] == pytest.approx(math.log(12 / 5))
    assert v["path_norm_over_margin"] == pytest.approx(312.5 / 625)
    assert v["l2"] == pytest.approx(math.sqrt(68)) and v["l2_dist"] == pytest.approx(math.sqrt(10))


def random_conv_pair(seed: int):
    torch.manual_seed(seed)

    def make():
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, 5, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(5, 3, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        ).eval()

    return make(), make()


def test_fft_measures_equal_formulas_with_explicit_operator_norms():
    # Random 3-layer conv net on a 5x3 grid (every conv stride 1, so every input grid is
    # 5x3; the 3x3 convs' circular grid adds their padding: 7x5). Expected values: the §1.6
    # formulas with s_l = sigma_max(explicit circular operator)^2 for the FFT variants, sigma_max(reshaped)^2 otherwise, and gamma from the
    # forward pass sorted by hand (m = 12, k = floor(1.2) = 1: the smallest margin).
    model, init = random_conv_pair(seed=5)
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 3, (12, 3, 5, 3), dtype=torch.uint8, generator=g)
    y = torch.arange(12) % 3
    data = make_data(x, y, 3)
    v = norms(model, init, data)

    with torch.no_grad():
        logits = model(x.float()).double()
    margins = []
    for i in range(12):
        others = [logits[i, c].item() for c in range(3) if c != y[i]]
        margins.append(logits[i, y[i]].item() - max(others))
    gamma = abs(sorted(margins)[0])
    assert v["inverse_margin"] == pytest.approx(1 / gamma**2, rel=1e-9)

    ks = [model[i].weight.detach().double() for i in (0, 2, 4)]
    k0s = [init[i].weight.detach().double() for i in (0, 2, 4)]
    fro = [(k**2).sum().item() for k in ks]
    dist_fro = [((k - k0) ** 2).sum().item() for k, k0 in zip(ks, k0s)]
    spec = [sigma_max(k.reshape(k.shape[0], -1)) ** 2 for k in ks]
    dist_spec = [sigma_max((k - k0).reshape(k.shape[0], -1)) ** 2 for k, k0 in zip(ks, k0s)]
    grids = [(7, 5), (7, 5), (5, 3)]
    spec_op = [explicit_norm(k, grid) ** 2 for k, grid in zip(ks, grids)]
    dist_op = [explicit_norm(k - k0, grid) ** 2 for k, k0, grid in zip(ks, k0s, grids)]
    assert spec_op[2] == pytest.approx(spec[2])  # the 1x1 layer: the same in both variants
    assert spec_op[0] > spec[0] * 1.01 and spec_op[1] > spec[1] * 1.01  # 3x3: not the same

    reshaped = jiang(spec, fro, dist_fro, dist_spec, gamma**2)
    fft = jiang(spec_op, fro, dist_fro, dist_op, gamma**2)
    for name in SPECTRAL:
        assert v[name] == pytest.approx(reshaped[name], rel=1e-8), name
        assert v[name + "_fft"] == pytest.approx(fft[name], rel=1e-8), name
        if name != "log_spec_init_main":  # (depends on the data; all others must differ clearly)
            assert v[name + "_fft"] != pytest.approx(v[name], rel=1e-4), name
    assert_values(v, {k: reshaped[k] for k in ("log_prod_of_fro_over_margin", "log_sum_of_fro_over_margin", "l2", "l2_dist")}, rel=1e-8)


# =========================================================================== registry


JIANG_EQUATIONS = {  # Jiang et al. 2020's equation numbers
    "log_spec_init_main": "29",
    "log_spec_orig_main": "30",
    "log_prod_of_spec_over_margin": "31",
    "log_prod_of_spec": "32",
    "fro_over_spec": "33",
    "log_sum_of_spec_over_margin": "34",
    "log_sum_of_spec": "35",
    "log_prod_of_fro_over_margin": "36",
    "log_prod_of_fro": "37",
    "log_sum_of_fro_over_margin": "38",
    "log_sum_of_fro": "39",
    "fro_dist": "40",
    "dist_spec_init": "41",
    "param_norm": "42",
    "path_norm_over_margin": "43",
    "path_norm": "44",
}


def test_equation_numbers_and_orientations():
    registered = {m.name: m for m in measures_of("norms")}
    for name, eq in JIANG_EQUATIONS.items():
        assert registered[name].equation == eq, name
        assert registered[name].family == "norms"
    assert sorted(int(e) for e in JIANG_EQUATIONS.values()) == list(range(29, 45))
    for name in SPECTRAL:
        assert registered[name + "_fft"].equation == f"{JIANG_EQUATIONS[name]} (FFT)", name
    assert registered["l2"].equation is None and registered["l2_dist"].equation is None
    expected_names = {*JIANG_EQUATIONS, *(n + "_fft" for n in SPECTRAL), "l2", "l2_dist", "params", "inverse_margin"}
    assert set(registered) == expected_names
    for name, m in registered.items():
        assert m.orientation == +1, name
        assert m.description, name
    assert "FFT" in MEASURES["log_prod_of_spec_fft"].description and "FFT" not in MEASURES["log_prod_of_spec"].description


# =========================================================================== orientation on ordered models


def test_doubling_the_weights():
    # Same data and init; W -> 2W. With no biases the net is 2-homogeneous per layer pair:
    # logits x4 -> gamma = 20, gamma^2 = 400 (was 25). s = (180, 20), ||.||_F^2 = (200, 40).
    small = norms(linear_net(W1, W2), linear_net(W1_INIT, W2_INIT), linear_data())
    big = norms(linear_net(scaled(W1, 2), scaled(W2, 2)), linear_net(W1_INIT, W2_INIT), linear_data())
    # Norm-based measures grow:
    #   (32) log 3600 = log 225 + log 16;  (35) log 2 + (1/2) log 3600 = log 120 (was log 30)
    #   (42) x4, l2 x2, path norm (44) x 2^2 * 2^2 = 16
    assert big["log_prod_of_spec"] == pytest.approx(small["log_prod_of_spec"] + math.log(16))
    assert big["log_sum_of_spec"] == pytest.approx(math.log(120)) and small["log_sum_of_spec"] == pytest.approx(math.log(30))
    assert big["param_norm"] == pytest.approx(4 * small["param_norm"]) and big["l2"] == pytest.approx(2 * small["l2"])
    assert big["path_norm"] == pytest.approx(16 * small["path_norm"])
    #   distances from the same init: 2 W1 - W1^0 = [[4, 1], [5, 5]]: ||.||_F^2 = 67,
    #   A^T A = [[41, 29], [29, 26]], trace 67, det (20 - 5)^2 = 225: sigma^2 = (67 + sqrt(67^2 - 900))/2;
    #   2 W2 - W2^0 = [[2, 2], [-2, 2]]: orthogonal rows of norm sqrt 8: 8 and 16.
    assert big["fro_dist"] == pytest.approx(67 + 16) and big["l2_dist"] == pytest.approx(math.sqrt(83))
    assert big["dist_spec_init"] == pytest.approx((67 + math.sqrt(3589)) / 2 + 8)
    #   (29): log 9 + log(67/180 + 16/20) = log 9 + log(211/180) = log(211/20) > log(21/5)
    assert big["log_spec_init_main"] == pytest.approx(math.log(211 / 20))
    for name in ["log_prod_of_spec", "log_sum_of_spec", "param_norm", "l2", "path_norm", "fro_dist", "l2_dist", "dist_spec_init", "log_spec_init_main", "log_prod_of_fro", "log_sum_of_fro"]:
        for n in (name, name + "_fft") if name in SPECTRAL else (name,):
            assert big[n] * MEASURES[n].orientation > small[n] * MEASURES[n].orientation, n
    # Scale-invariant ones do not move: prod s / gamma^2 = 3600/400 = 225/25 = 9;
    # ||W||_F^2 / s ratios; path norm / gamma^2 = 4000/400 = 250/25.
    for name in ["log_prod_of_spec_over_margin", "log_spec_orig_main", "log_sum_of_spec_over_margin", "fro_over_spec", "log_prod_of_fro_over_margin", "log_sum_of_fro_over_margin", "path_norm_over_margin"]:
        for n in (name, name + "_fft") if name in SPECTRAL else (name,):
            assert big[n] == pytest.approx(small[n], rel=1e-12), n
    assert big["inverse_margin"] == pytest.approx(small["inverse_margin"] / 16)


def test_doubling_the_margin():
    # Same weights, inputs x2: logits x2, gamma = 10 (was 5): every over-margin measure
    # falls, i.e. the model with the larger margin is predicted to generalize better
    # (orientation +1): (31) log(225/100) = log 9 - log 4; (34) log 2 + (1/2) log 2.25 = log 3;
    # (29) log(2.25 * 7/15) = log(21/20); (30) log(2.25 * 28/9) = log 7; (36) log(500/100) = log 5;
    # (38) log 2 + (1/2) log 5 = (1/2) log 20; (43) 250/100; (22) 1/100.
    narrow = norms(linear_net(W1, W2), linear_net(W1_INIT, W2_INIT), linear_data())
    wide = norms(linear_net(W1, W2), linear_net(W1_INIT, W2_INIT), linear_data(scale=2))
    expected = {
        "log_prod_of_spec_over_margin": math.log(9) - math.log(4),
        "log_sum_of_spec_over_margin": math.log(3),
        "log_spec_init_main": math.log(21 / 20),
        "log_spec_orig_main": math.log(7),
        "log_prod_of_fro_over_margin": math.log(5),
        "log_sum_of_fro_over_margin": 0.5 * math.log(20),
        "path_norm_over_margin": 2.5,
        "inverse_margin": 1 / 100,
    }
    assert_values(wide, expected)
    for name in SPECTRAL:
        if name in expected:
            assert wide[name + "_fft"] == pytest.approx(expected[name], rel=1e-9), name
    for name in OVER_MARGIN:
        assert wide[name] * MEASURES[name].orientation < narrow[name] * MEASURES[name].orientation, name
    # the margin-free measures do not see the data
    for name in ["log_prod_of_spec", "fro_over_spec", "log_sum_of_spec", "dist_spec_init", "path_norm", "l2"]:
        assert wide[name] == pytest.approx(narrow[name], rel=1e-12), name


@settings(max_examples=20, deadline=None)
@given(c1=st.integers(-3, 3), c2=st.integers(-3, 3))
def test_over_margin_spectral_measures_are_layer_rescaling_invariant(c1, c2):
    # W1 -> 2^c1 W1, W2 -> 2^c2 W2 (exact in float, ReLU is positively homogeneous):
    # logits and gamma scale by 2^(c1 + c2), prod_l s_l by 4^(c1 + c2): (31), (30), (33)
    # and (36) are unchanged; (32) shifts by (c1 + c2) log 4. Values from the by-hand net.
    v = norms(linear_net(scaled(W1, 2.0**c1), scaled(W2, 2.0**c2)), linear_net(W1_INIT, W2_INIT), linear_data())
    for name in ["log_prod_of_spec_over_margin", "log_spec_orig_main", "fro_over_spec", "log_prod_of_fro_over_margin"]:
        assert v[name] == pytest.approx(LINEAR_EXPECTED[name], rel=1e-12, abs=1e-12), name
        if name in SPECTRAL:
            assert v[name + "_fft"] == pytest.approx(LINEAR_EXPECTED[name], rel=1e-12, abs=1e-12), name
    assert v["log_prod_of_spec"] == pytest.approx(math.log(225) + (c1 + c2) * math.log(4), abs=1e-12)


# =========================================================================== BN folding
#
# The conv net above with BatchNorm2d(2, eps = 0) after the 3x3 conv: gamma = (4, 6),
# beta = 0, running mean 0, running var 4 -> s = gamma / sqrt(var) = (2, 3): BN(y) = s y.
# Folded layer 1: (2 ones, -3 ones): rank 1, s1 = ||.||_F^2 = 9 (4 + 9) = 117;
#   FFT: per frequency (2 K^, -3 K^), max 13 * 81 = 1053. Folded bias s (0 - 0) + 0 = 0.
# Init: kernels (ones, 0), default BN (gamma 1, var 1, eps 0 -> s = 1): folded (ones, 0).
#   Folded D1 = (ones, -3 ones): ||.||_F^2 = 90 = sigma^2 (rank 1), FFT 10 * 81 = 810.
#   Layer 2 as before: M, M^0 -> 25, 50 and D2: 1, 1, 1.
# Unfolded (BN ignored by the weights): the conv-net values (18, 162, 18; D1: 9, 9, 81).
# Margin (the same function either way): channel a = 2 v count, mean 12.5 v, b <= 0 -> 0;
#   logits (3, 4) * 12.5 v, margin 12.5 v; v = 4 -> gamma = 50, gamma^2 = 2500.
# Path norm, folded: squared kernels (4 ones, 9 ones), zero bias: channel means (25, 56.25);
#   M^2 = [[9, 16], [16, 9]] -> (225 + 900, 400 + 506.25) = (1125, 906.25): 2031.25.
# Path norm, unfolded: every *parameter* squared, BN buffers not: kernels (ones, ones), BN
#   gamma^2 / sqrt(var) = (16/2, 36/2) = (8, 18) -> twice the folded channels: 4062.5.


def conv_bn_pair():
    bn = nn.BatchNorm2d(2, eps=0.0)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([4.0, 6.0]))
        bn.running_var.fill_(4.0)
    init_bn = nn.BatchNorm2d(2, eps=0.0)
    model = conv_net(ONES3, -ONES3, M, bn=bn)
    init = conv_net(ONES3, torch.zeros(3, 3), M_INIT, bn=init_bn)
    return model, init


def test_fold_bn_true_uses_folded_weights():
    model, init = conv_bn_pair()
    v = norms(model, init, conv_data(), fold_bn=True)
    assert v["inverse_margin"] == pytest.approx(1 / 2500)
    reshaped = jiang([117, 25], [117, 50], [90, 1], [90, 1], 2500)
    fft = jiang([1053, 25], [117, 50], [90, 1], [810, 1], 2500)
    # a few literal checks of the helper on these numbers:
    #   (31) log(117 * 25 / 2500) = log 1.17, FFT log(1053 * 25 / 2500) = log 10.53
    #   (29) sum dist_fro / s = 90/117 + 1/25 = 10/13 + 1/25 = 263/325,
    #        FFT 90/1053 + 1/25 = 10/117 + 1/25 = (250 + 117)/2925 = 367/2925
    assert reshaped["log_prod_of_spec_over_margin"] == pytest.approx(math.log(1.17))
    assert fft["log_prod_of_spec_over_margin"] == pytest.approx(math.log(10.53))
    assert reshaped["log_spec_init_main"] == pytest.approx(math.log(1.17 * 263 / 325))
    assert fft["log_spec_init_main"] == pytest.approx(math.log(10.53 * 367 / 2925))
    assert reshaped["fro_dist"] == 91 and reshaped["param_norm"] == 167
    for name in SPECTRAL:
        assert v[name] == pytest.approx(reshaped[name], rel=1e-9), name
        assert v[name + "_fft"] == pytest.approx(fft[name], rel=1e-9), name
    assert_values(v, {k: reshaped[k] for k in ("log_prod_of_fro_over_margin", "log_sum_of_fro_over_margin", "fro_dist", "param_norm", "l2", "l2_dist")})
    assert v["path_norm"] == pytest.approx(2031.25)
    assert v["path_norm_over_margin"] == pytest.approx(2031.25 / 2500)


def test_fold_bn_false_ignores_bn_in_weights():
    model, init = conv_bn_pair()
    v = norms(model, init, conv_data(), fold_bn=False)
    assert v["inverse_margin"] == pytest.approx(1 / 2500)  # the network function is the same
    reshaped = jiang([18, 25], [18, 50], [9, 1], [9, 1], 2500)
    fft = jiang([162, 25], [18, 50], [9, 1], [81, 1], 2500)
    for name in SPECTRAL:
        assert v[name] == pytest.approx(reshaped[name], rel=1e-9), name
        assert v[name + "_fft"] == pytest.approx(fft[name], rel=1e-9), name
    assert_values(v, {k: reshaped[k] for k in ("log_prod_of_fro_over_margin", "log_sum_of_fro_over_margin", "fro_dist", "param_norm", "l2", "l2_dist")})
    assert v["path_norm"] == pytest.approx(4062.5)
    # and folding changes the values: e.g. (31) log(117 * 25) vs log(18 * 25) - log 2500
    folded = norms(model, init, conv_data(), fold_bn=True)
    assert folded["log_prod_of_spec_over_margin"] - v["log_prod_of_spec_over_margin"] == pytest.approx(math.log(117 / 18))
    # the input models are not modified by either path
    assert isinstance(model[1], nn.BatchNorm2d) and model[1].weight.tolist() == [4.0, 6.0]
