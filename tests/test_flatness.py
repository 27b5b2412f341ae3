"""Tests for the "flatness" family (src/prunability/measures/flatness.py).

Every expected value is computed by hand or in closed form (derivations in the
comments). The workhorse is a *one-hot linear problem*: a bias-free Linear(n, 2) on
inputs x_j = e_j (n examples, n input positions, uint8 images of shape (1, 1, n)),
labels y_j = j mod 2 and weights

    W[y_j, j] = +a_j / 2,    W[1 - y_j, j] = -a_j / 2,

so the logits of example j are exactly column j of W, its logit gap (correct minus
wrong) is a_j > 0, and the training accuracy is 1. Every weight belongs to exactly
one example, so perturbations of different columns act on different examples
independently:

- isotropic Gaussian noise of std sigma on every weight: the gap becomes
  a_j + N(0, 2 sigma^2), so example j is misclassified with probability
  Phi(-a_j / (sigma sqrt 2)), independently of the other examples;
- magnitude-aware noise of variance sigma'^2 w^2 + eps^2: the gap noise has variance
  2 (sigma'^2 (a_j/2)^2 + eps^2) = sigma'^2 a_j^2 / 2 + 2 eps^2;
- the box |u| <= b: the worst case lowers the correct logit by b and raises the wrong
  one by b (cross-entropy gradient has sign - on the correct-class weight and + on the
  wrong-class weight, whatever u), so example j flips iff a_j - 2 b_j < 0.
"""

from __future__ import annotations

import copy
import json
import math
from statistics import NormalDist

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from prunability.measures import FAMILIES, MEASURES, compute_family, measures_of
from prunability.measures.flatness import (
    FlatnessContext,
    Perturbed,
    mag_pacbayes_bound,
    pacbayes_bound,
    search_scale,
    worst_case_perturbation,
)
from prunability.train import DeviceData, evaluate
from conftest import make_data, quiet

PHI = NormalDist().cdf
Z = NormalDist().inv_cdf  # Z(1 - p) is the upper p-quantile: Phi(-Z(1 - p)) = p

FLATNESS_MEASURES = {
    "pacbayes_init",
    "pacbayes_orig",
    "pacbayes_flatness",
    "pacbayes_mag_init",
    "pacbayes_mag_orig",
    "pacbayes_mag_flatness",
    "sharpness_flatness",
    "sharpness_mag_flatness",
}
SEARCHES = ("sigma", "sigma_mag", "alpha", "alpha_mag")


# =========================================================================== helpers


def flat_settings(**kw) -> dict:
    s = {
        "fold_bn": False,
        "target_drop": 0.1,
        "drop_tol": 0.01,
        "scale_max": 2.0,
        "search_iterations": 15,
        "mc_draws": 10,
        "mag_eps": 1e-3,
        "restarts": 1,
        "ascent_steps": 10,  # 10 steps of 0.25 box: any start reaches a corner in 8
        "ascent_step_size": 0.25,
        "ascent_batch_size": 4096,  # >= n: every example in every ascent step
        "seed": 0,
        "eval_batch_size": 4096,
    }
    s.update(kw)
    return s


def one_hot_problem(gaps, init_value: float | None = None):
    """The one-hot linear problem of the module docstring with logit gaps ``gaps``.
    Returns (model, init model, data); the init model has every weight = init_value
    (default: a copy of the model)."""
    gaps = torch.as_tensor(gaps, dtype=torch.float64)
    n = len(gaps)
    j = torch.arange(n)
    y = j % 2
    w = torch.zeros(2, n, dtype=torch.float64)
    w[y, j] = gaps / 2
    w[1 - y, j] = -gaps / 2
    model = nn.Sequential(nn.Flatten(), nn.Linear(n, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(w)
    init = copy.deepcopy(model)
    if init_value is not None:
        with torch.no_grad():
            init[1].weight.fill_(init_value)
    x = torch.zeros(n, 1, 1, n, dtype=torch.uint8)
    x[j, 0, 0, j] = 1
    return model.eval(), init.eval(), make_data(x, y, 2)


def state_equal(a: nn.Module, b_state: dict) -> bool:
    return all(torch.equal(v, b_state[k]) for k, v in a.state_dict().items()) and set(a.state_dict()) == set(b_state)


# Equal gaps. sigma* with Phi(-a / (sigma* sqrt 2)) = 0.1 is a / (sqrt 2 z), z = Z(0.9)
# = 1.28155. a is chosen so that sigma* = 0.5625 = 9/16, a point the bisection on
# [0, 2] visits: the closed-form trace is
#   s = 1      drop Phi(-a/(1 sqrt 2))      = Phi(-0.7209) = 0.2355 > 0.11 -> upper = 1
#   s = 0.5    drop Phi(-a/(0.5 sqrt 2))    = Phi(-1.4417) = 0.0747 < 0.09 -> lower = 0.5
#   s = 0.75   drop Phi(-0.9611)            = 0.1683                      -> upper = 0.75
#   s = 0.625  drop Phi(-1.1534)            = 0.1244                      -> upper = 0.625
#   s = 0.5625 drop 0.1000: hit.
# n = 500 examples and mc_draws = 40: the Monte-Carlo estimate of a drop averages
# mc_draws * n = 20000 independent Bernoulli(p) draws
# (sd <= sqrt(0.25 / 20000) = 0.0035, and 0.0024 near p = 0.125), and every decision
# above is at least 0.0144 (6 sd) away from the tolerance band, so the trace is exact.
N_EQUAL = 500
MC_EQUAL = 40
Z90 = Z(0.9)
SIGMA_STAR = 0.5625
A_EQUAL = SIGMA_STAR * math.sqrt(2) * Z90  # 1.01945
# Magnitude-aware: gap noise variance s'^2 a^2 / 2 + 2 eps^2, drop Phi(-a / sqrt(that)),
# so s'* = sqrt(2 / z^2 - 4 eps^2 / a^2). eps is chosen so that s'* = 0.75:
#   4 eps^2 / a^2 = 2 / z^2 - 0.5625  ->  eps = 0.41262. Trace:
#   s' = 1    sd sqrt(a^2/2 + 2 eps^2)        = 0.92744, drop Phi(-1.0992) = 0.1358 -> upper
#   s' = 0.5  sd sqrt(0.25 a^2/2 + 2 eps^2)   = 0.68587, drop Phi(-1.4864) = 0.0686 -> lower
#   s' = 0.75 drop 0.1000: hit.
SIGMA_MAG_STAR = 0.75
EPS_EQUAL = A_EQUAL * math.sqrt(2 / Z90**2 - SIGMA_MAG_STAR**2) / 2  # 0.41262
INIT_VALUE = 0.1


def sigma_for_drop(p: float, a: float) -> float:
    """Isotropic: the sigma with Phi(-a / (sigma sqrt 2)) = p."""
    return a / (math.sqrt(2) * Z(1 - p))


def sigma_mag_for_drop(p: float, a: float, eps: float) -> float:
    """Magnitude-aware: the sigma' with Phi(-a / sqrt(sigma'^2 a^2 / 2 + 2 eps^2)) = p."""
    return math.sqrt(2 / Z(1 - p) ** 2 - 4 * eps**2 / a**2)


def fresh_drop(w: torch.Tensor, std: torch.Tensor, draws: int, seed: int) -> float:
    """Accuracy drop of the one-hot problem (W = w, 2 x n, base accuracy 1) under
    independent Gaussian noise of per-entry std ``std``, re-estimated with fresh
    noise (``draws`` draws, a generator unrelated to the library's seeds). With
    x_j = e_j the logits of example j are column j of W + noise."""
    n = w.shape[1]
    y = torch.arange(n) % 2
    g = torch.Generator().manual_seed(seed)
    noisy = w + std * torch.randn(draws, 2, n, generator=g)
    correct = noisy.argmax(1) == y  # (draws, n)
    return 1.0 - correct.double().mean().item()


# Spread gaps for the deterministic worst-case searches: n = 210, a_j = 0.5 + (j + 1/sqrt 2) h,
# h = 0.0075 (an irrational offset, so no a_j / 2 equals a dyadic bisection point and no
# flip is a float tie). The drop is the flipped fraction k / 210; |k/210 - 0.1| < 0.01 iff
# 18.9 < k < 23.1 iff k in {19, ..., 23} (k = 18, 24 are 0.0143 away: no float ambiguity).
N_SPREAD = 210
H_SPREAD = 0.0075
SPREAD_GAPS = [0.5 + (j + 0.5**0.5) * H_SPREAD for j in range(N_SPREAD)]
EPS_SPREAD = 0.1


def spread_settings(**kw) -> dict:
    return flat_settings(**{"mag_eps": EPS_SPREAD, **kw})


# =========================================================================== 1. search_scale


def test_search_scale_linear_drop_trace_by_hand():
    # drop(s) = s / 2, target 0.1 +- 0.01 (hit region s in (0.18, 0.22)), [0, 2]:
    #   s = 1      drop 0.5    > 0.1 -> upper = 1
    #   s = 0.5    drop 0.25   > 0.1 -> upper = 0.5
    #   s = 0.25   drop 0.125  (|0.025| >= 0.01) > 0.1 -> upper = 0.25
    #   s = 0.125  drop 0.0625 < 0.1 -> lower = 0.125
    #   s = 0.1875 drop 0.09375, |-0.00625| < 0.01: hit after 5 of 15 iterations.
    calls = []

    def drop(s):
        calls.append(s)
        return s / 2

    r = search_scale(drop, 0.1, 0.01, 2.0, 15)
    assert r.hit_target is True
    assert r.scale == 0.1875
    assert [h["scale"] for h in r.history] == [1.0, 0.5, 0.25, 0.125, 0.1875]
    assert [h["drop"] for h in r.history] == [0.5, 0.25, 0.125, 0.0625, 0.09375]
    assert calls == [h["scale"] for h in r.history]  # one evaluation per step, no more
    assert abs(drop(r.scale) - 0.1) < 0.01


def test_search_scale_step_drop_never_hits_and_converges_to_the_step():
    # drop jumps from 0 to 0.5 at s = 0.3: never within 0.01 of 0.1. Every step halves the
    # bracket around 0.3, so after 15 steps the last scale is within 2 / 2^15 of 0.3.
    r = search_scale(lambda s: 0.0 if s < 0.3 else 0.5, 0.1, 0.01, 2.0, 15)
    assert r.hit_target is False
    assert len(r.history) == 15
    assert r.scale == r.history[-1]["scale"]
    assert abs(r.scale - 0.3) <= 2.0 / 2**15


@pytest.mark.parametrize("iterations", [1, 4, 15])
def test_search_scale_unreachable_targets(iterations):
    # Drop always too small (max 2/100 = 0.02 < 0.5 - 0.01): lower = s every step, so the
    # scales are 2 - 2^(1-k), k = 1..iterations, and the last one is returned.
    r = search_scale(lambda s: s / 100, 0.5, 0.01, 2.0, iterations)
    assert r.hit_target is False
    assert [h["scale"] for h in r.history] == [2 - 2.0 ** (1 - k) for k in range(1, iterations + 1)]
    assert r.scale == 2 - 2.0 ** (1 - iterations)
    # Drop always too large (1 > target): upper = s, scales 2^(1-k).
    r = search_scale(lambda s: 1.0, 0.1, 0.01, 2.0, iterations)
    assert r.hit_target is False
    assert [h["scale"] for h in r.history] == [2.0 ** (1 - k) for k in range(1, iterations + 1)]
    assert r.scale == 2.0 ** (1 - iterations)


@settings(max_examples=200, deadline=None)
@given(
    c=st.floats(0.05, 50.0),
    power=st.sampled_from([0.5, 1.0, 2.0]),
    target=st.floats(0.01, 0.9),
    tol=st.floats(1e-4, 0.05),
    scale_max=st.floats(0.1, 10.0),
    iterations=st.integers(1, 30),
)
def test_search_scale_bisection_invariants(c, power, target, tol, scale_max, iterations):
    # Monotone drop(s) = c s^p. Dziugaite et al. 2020's rule: the first scale is scale_max / 2, then
    # upper = s when drop > target, else lower = s, next scale the midpoint; stop at the
    # first |drop - target| < tol or after ``iterations`` steps.
    def drop(s):
        return c * s**power

    r = search_scale(drop, target, tol, scale_max, iterations)
    assert 1 <= len(r.history) <= iterations
    assert r.history[0]["scale"] == scale_max / 2
    lo, hi = 0.0, scale_max
    for k, h in enumerate(r.history):
        assert h["scale"] == 0.5 * (lo + hi)
        assert h["drop"] == drop(h["scale"])
        within = abs(h["drop"] - target) < tol
        assert within == (r.hit_target and k == len(r.history) - 1)  # stops at the first hit only
        if h["drop"] > target:
            hi = h["scale"]
        else:
            lo = h["scale"]
    assert r.scale == r.history[-1]["scale"]
    if not r.hit_target:
        assert len(r.history) == iterations
    # Closed form: the hit region is (s_lo, s_hi) with c s^p = target -+ tol. While no hit,
    # the bracket contains it, so after k misses scale_max / 2^k >= s_hi - s_lo. Hence a
    # region inside [0, scale_max] wider than scale_max / 2^iterations is always hit.
    s_lo = (max(target - tol, 0.0) / c) ** (1 / power)
    s_hi = ((target + tol) / c) ** (1 / power)
    if s_hi < scale_max and (s_hi - s_lo) > 1.01 * scale_max / 2**iterations:
        assert r.hit_target
    if r.hit_target:
        assert abs(drop(r.scale) - target) < tol


# =========================================================================== 2. bounds by hand


def test_pacbayes_bound_by_hand():
    # ||(3, 4)||^2 = 25; 25 / (4 * 0.5^2) = 25; log(100 / 0.5) = log 200; + 10
    ref = torch.tensor([3.0, 4.0])
    assert pacbayes_bound(ref, 0.5, 100) == pytest.approx(25 + math.log(200) + 10, rel=1e-12)
    # shape does not matter, only the entries: a 2x2 tensor with norm^2 = 1 + 4 + 9 + 16 = 30
    ref2 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert pacbayes_bound(ref2, 2.0, 10) == pytest.approx(30 / 16 + math.log(5) + 10, rel=1e-12)


def test_mag_pacbayes_bound_by_hand():
    # reference (3, 4, 0): ||ref||^2 = 25, omega = reference.numel() = 3 (the zero counts);
    # distance (1, 2, 0.5) enters only the denominators; sigma = 0.5, eps = 0.1, m = 100:
    #   numerator   = 0.01 + (0.25 + 1) * 25 / 3 = 10.426666...
    #   denominator = 0.01 + 0.25 * (1, 4, 0.25) = (0.26, 1.01, 0.0725)
    #   bound = 1/4 * sum log(num / den_i) + log(100 / 0.5) + 10
    ref = torch.tensor([3.0, 4.0, 0.0])
    dist = torch.tensor([1.0, 2.0, 0.5])
    num = 0.01 + 1.25 * 25 / 3
    expected = 0.25 * sum(math.log(num / d) for d in (0.26, 1.01, 0.0725)) + math.log(200) + 10
    assert mag_pacbayes_bound(ref, dist, 0.5, 100, 0.1) == pytest.approx(expected, rel=1e-12)
    # omega = 2 (dropping the zero entry) or the distance in the numerator would differ:
    wrong_omega = 0.25 * sum(math.log((0.01 + 1.25 * 25 / 2) / d) for d in (0.26, 1.01, 0.0725)) + math.log(200) + 10
    assert abs(expected - wrong_omega) > 0.1
    # swapping reference and distance changes the value (distance only in the denominator)
    num_swapped = 0.01 + 1.25 * (1 + 4 + 0.25) / 3
    swapped = 0.25 * sum(math.log(num_swapped / (0.01 + 0.25 * r**2)) for r in (3.0, 4.0, 0.0)) + math.log(200) + 10
    assert mag_pacbayes_bound(dist, ref, 0.5, 100, 0.1) == pytest.approx(swapped, rel=1e-12)


vectors = st.lists(st.floats(-5, 5).filter(lambda v: abs(v) > 1e-3), min_size=1, max_size=20)


@settings(max_examples=100, deadline=None)
@given(ref=vectors, sigma=st.floats(0.01, 5), m=st.integers(1, 10**6), c=st.floats(0.1, 10))
def test_pacbayes_bound_scaling(ref, sigma, m, c):
    # (c r, c sigma): ||c r||^2 / (4 c^2 sigma^2) is unchanged, log(m / (c sigma)) = log(m / sigma) - log c.
    r = torch.tensor(ref, dtype=torch.float64)
    assert pacbayes_bound(c * r, c * sigma, m) == pytest.approx(pacbayes_bound(r, sigma, m) - math.log(c), rel=1e-9, abs=1e-9)
    assert pacbayes_bound(r, sigma, m) >= math.log(m / sigma) + 10


@settings(max_examples=100, deadline=None)
@given(ref=vectors, sigma=st.floats(0.05, 5), m=st.integers(1, 10**6), c=st.floats(0.1, 10), data=st.data())
def test_mag_pacbayes_bound_scale_invariant_without_eps(ref, sigma, m, c, data):
    # eps = 0: num / den_i = (sigma^2 + 1) ||r||^2 / (omega sigma^2 d_i^2), unchanged by r, d -> c r, c d.
    dist = data.draw(st.lists(st.floats(-5, 5).filter(lambda v: abs(v) > 1e-3), min_size=len(ref), max_size=len(ref)))
    r, d = torch.tensor(ref, dtype=torch.float64), torch.tensor(dist, dtype=torch.float64)
    base = mag_pacbayes_bound(r, d, sigma, m, 0.0)
    assert mag_pacbayes_bound(c * r, c * d, sigma, m, 0.0) == pytest.approx(base, rel=1e-9, abs=1e-9)
    # and with r = d (the "init" variant) and a single entry: 1/4 log((sigma^2 + 1) / sigma^2)
    one = torch.tensor([ref[0]], dtype=torch.float64)
    assert mag_pacbayes_bound(one, one, sigma, m, 0.0) == pytest.approx(
        0.25 * math.log((sigma**2 + 1) / sigma**2) + math.log(m / sigma) + 10, rel=1e-9
    )


# =========================================================================== 3. PAC-Bayes sigma in closed form


@pytest.fixture(scope="module")
def equal_problem():
    model, init, data = one_hot_problem([A_EQUAL] * N_EQUAL, init_value=INIT_VALUE)
    return model, init, data


@pytest.fixture(scope="module")
def equal_ctx(equal_problem):
    model, init, data = equal_problem
    return FlatnessContext(model, init, data, flat_settings(mag_eps=EPS_EQUAL, mc_draws=MC_EQUAL), quiet, {})


def test_pacbayes_sigma_hits_target_in_closed_form(equal_problem, equal_ctx):
    model, _, _ = equal_problem
    ctx = equal_ctx
    assert ctx.base_acc == 1.0
    r = ctx.sigma
    assert r.hit_target is True
    # the closed-form bisection trace (see SIGMA_STAR)
    assert [h["scale"] for h in r.history] == [1.0, 0.5, 0.75, 0.625, 0.5625]
    assert r.scale == SIGMA_STAR
    # every estimated drop agrees with Phi(-a / (s sqrt 2)) to within 5 MC sd
    # (sd = sqrt(p (1 - p) / (mc_draws n)))
    for h in r.history:
        p = PHI(-A_EQUAL / (h["scale"] * math.sqrt(2)))
        assert abs(h["drop"] - p) < 5 * math.sqrt(p * (1 - p) / (MC_EQUAL * N_EQUAL)), h
    # (a) fresh independent noise (2000 draws of n = 500: sd 0.0003) at the returned sigma
    w = model[1].weight.detach()
    fresh = fresh_drop(w, torch.tensor(r.scale), 2000, seed=12345)
    assert abs(fresh - 0.1) < 0.01
    assert fresh == pytest.approx(PHI(-A_EQUAL / (r.scale * math.sqrt(2))), abs=0.0015)
    # (b) closed-form interval [sigma(0.09), sigma(0.11)], widened by 0.005 in drop for MC error
    assert sigma_for_drop(0.085, A_EQUAL) <= r.scale <= sigma_for_drop(0.115, A_EQUAL)
    # sigma is not the std = sigma^2 of Dziugaite et al. 2020's code: with std sigma^2 = 0.316 the drop would be
    # Phi(-1.0195 / (0.3164 sqrt 2)) = Phi(-2.278) = 0.0114, far from the target.
    assert fresh_drop(w, torch.tensor(r.scale**2), 50, seed=1) < 0.02


def test_pacbayes_measures_from_sigma_by_hand(equal_ctx):
    ctx = equal_ctx
    sigma, m, d, a = ctx.sigma.scale, N_EQUAL, N_EQUAL, A_EQUAL
    assert MEASURES["pacbayes_flatness"].fn(ctx) == pytest.approx(1 / sigma**2, rel=1e-12)
    assert MEASURES["pacbayes_flatness"].fn(ctx) == pytest.approx(1 / 0.5625**2, rel=1e-12)
    # ||w||^2 = 2 d (a/2)^2 = d a^2 / 2;  ||w - w0||^2 = d ((a/2 - 0.1)^2 + (a/2 + 0.1)^2) = d (a^2/2 + 0.02)
    w_sq = d * a**2 / 2
    dist_sq = d * (a**2 / 2 + 2 * INIT_VALUE**2)
    tail = math.log(m / sigma) + 10
    assert MEASURES["pacbayes_orig"].fn(ctx) == pytest.approx(w_sq / (4 * sigma**2) + tail, rel=1e-5)
    assert MEASURES["pacbayes_init"].fn(ctx) == pytest.approx(dist_sq / (4 * sigma**2) + tail, rel=1e-5)


def test_pacbayes_mag_sigma_hits_target_in_closed_form(equal_problem, equal_ctx):
    model, _, _ = equal_problem
    ctx, a, eps = equal_ctx, A_EQUAL, EPS_EQUAL
    r = ctx.sigma_mag
    assert r.hit_target is True
    assert [h["scale"] for h in r.history] == [1.0, 0.5, 0.75]  # closed-form trace (see SIGMA_MAG_STAR)
    assert r.scale == SIGMA_MAG_STAR
    for h in r.history:
        p = PHI(-a / math.sqrt(h["scale"] ** 2 * a**2 / 2 + 2 * eps**2))
        assert abs(h["drop"] - p) < 5 * math.sqrt(p * (1 - p) / (MC_EQUAL * N_EQUAL)), h
    w = model[1].weight.detach()
    fresh = fresh_drop(w, torch.sqrt(r.scale**2 * w**2 + eps**2), 2000, seed=54321)
    assert abs(fresh - 0.1) < 0.01
    assert sigma_mag_for_drop(0.085, a, eps) <= r.scale <= sigma_mag_for_drop(0.115, a, eps)
    # the measures: 1 / sigma'^2 and the magnitude-aware bounds with omega = 2d weights.
    # |w_i| = a/2 for every i: ||w||^2 / omega = a^2 / 4; distances w_i - 0.1 are
    # a/2 - 0.1 (d of them) and -a/2 - 0.1 (d of them);
    # reference w - w0 for the init bound: ||w - w0||^2 / omega = (a^2/2 + 0.02) / 2.
    s, d, m = r.scale, N_EQUAL, N_EQUAL
    assert MEASURES["pacbayes_mag_flatness"].fn(ctx) == pytest.approx(1 / s**2, rel=1e-12)
    tail = math.log(m / s) + 10

    def bound(mean_sq_ref):
        num = eps**2 + (s**2 + 1) * mean_sq_ref
        dens = [eps**2 + s**2 * (a / 2 - INIT_VALUE) ** 2, eps**2 + s**2 * (a / 2 + INIT_VALUE) ** 2]
        return 0.25 * d * sum(math.log(num / den) for den in dens) + tail

    assert MEASURES["pacbayes_mag_orig"].fn(ctx) == pytest.approx(bound(a**2 / 4), rel=1e-5)
    assert MEASURES["pacbayes_mag_init"].fn(ctx) == pytest.approx(bound((a**2 / 2 + 2 * INIT_VALUE**2) / 2), rel=1e-5)


# =========================================================================== 4. worst-case sharpness


def full_loss(model, data) -> float:
    with torch.no_grad():
        return F.cross_entropy(model(data.normalize(data.x_train)), data.y_train).item()


def test_worst_case_perturbation_reaches_the_corner_and_increases_the_loss():
    model, _, data = one_hot_problem(SPREAD_GAPS)
    n = N_SPREAD
    unperturbed = full_loss(model, data)
    p = Perturbed(model)
    b = 0.3
    box = [torch.full_like(w, b) for w in p.original]
    g = torch.Generator().manual_seed(7)
    u, losses = worst_case_perturbation(p, box, data, steps=10, step_size=0.25, batch_size=n, generator=g)
    assert len(losses) == 11
    (u,) = u
    j, y = torch.arange(n), torch.arange(n) % 2
    # corner: -b on the correct-class weight, +b on the wrong-class weight of every example
    assert torch.equal(u[y, j], torch.full((n,), -b))
    assert torch.equal(u[1 - y, j], torch.full((n,), b))
    # loss at the corner in closed form: mean_j log(1 + exp(-(a_j - 2b)))
    a = torch.tensor(SPREAD_GAPS, dtype=torch.float64)
    corner_loss = torch.log1p(torch.exp(-(a - 2 * b))).mean().item()
    assert losses[-1] == pytest.approx(corner_loss, rel=1e-5)
    assert losses[-1] > losses[0] and losses[-1] > unperturbed  # ascent, not descent
    # the model is left at w + u
    assert torch.allclose(model[1].weight, p.original[0] + u)
    p.restore()
    assert torch.equal(model[1].weight, p.original[0])


def test_worst_case_perturbation_magnitude_box_corner():
    # box |u| <= alpha' |w| + eps: corner -(alpha' a_j/2 + eps) / +(alpha' a_j/2 + eps)
    model, _, data = one_hot_problem(SPREAD_GAPS)
    p = Perturbed(model)
    alpha, eps = 0.5, 0.1
    box = [alpha * w.abs() + eps for w in p.original]
    (u,), losses = worst_case_perturbation(p, box, data, 10, 0.25, N_SPREAD, torch.Generator().manual_seed(0))
    j, y = torch.arange(N_SPREAD), torch.arange(N_SPREAD) % 2
    assert torch.equal(u[y, j], -box[0][y, j]) and torch.equal(u[1 - y, j], box[0][1 - y, j])
    # convex loss, sign ascent: non-decreasing (see the property test); at the corner the
    # loss only changes by float summation order over the reshuffled batch
    assert all(after >= before - 1e-6 for before, after in zip(losses, losses[1:]))
    assert losses[-1] > losses[0]


def test_worst_case_perturbation_draws_a_fresh_minibatch_every_step():
    # One-hot problem, n = 6, minibatches of 2, step size 2 (one step from anywhere in the
    # box lands on the corner, by the clamp). Column j only moves in a step whose batch
    # holds example j (its gradient is 0 otherwise: x_i[j] = 0 for i != j). With a fresh
    # batch every step, 40 steps visit every example (P(some example never drawn) <=
    # 6 (4/6)^40 ~ 6e-7; the seed fixes it anyway): every column ends at the corner. With
    # one batch for all steps only 2 columns would; the other 4 would stay at their
    # uniform random start, which is a corner with probability 0.
    gaps = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    model, _, data = one_hot_problem(gaps)
    p = Perturbed(model)
    b = 0.2
    (u,), _ = worst_case_perturbation(p, [torch.full_like(p.original[0], b)], data, 40, 2.0, 2, torch.Generator().manual_seed(3))
    j, y = torch.arange(6), torch.arange(6) % 2
    assert torch.equal(u[y, j], torch.full((6,), -b)) and torch.equal(u[1 - y, j], torch.full((6,), b))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(1, 12),
    d_in=st.integers(1, 5),
    k=st.integers(2, 4),
    steps=st.integers(1, 6),
    step_size=st.floats(0.01, 1.0),
    box_scale=st.floats(0.0, 2.0),
    batch_frac=st.floats(0.0, 1.0),
)
def test_worst_case_perturbation_properties(seed, n, d_in, k, steps, step_size, box_scale, batch_frac):
    # A linear classifier with bias: the cross-entropy is convex in (W, b), so for a
    # step d with g . d >= 0 (a signed-gradient step, clamped towards the same side),
    # L(x + d) >= L(x) + g . d >= L(x): with the full batch the losses never decrease.
    # Whatever the batch, u stays in the box.
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(d_in, k))
    with torch.no_grad():
        for q in model.parameters():
            q.copy_(torch.randn(q.shape, generator=gen))
    x = torch.randint(0, 3, (n, 1, 1, d_in), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, k, (n,), generator=gen)
    data = make_data(x, y, k)
    p = Perturbed(model)
    box = [box_scale * torch.rand(w.shape, generator=gen) for w in p.original]  # per-entry box
    batch = max(1, round(batch_frac * n))
    u, losses = worst_case_perturbation(p, box, data, steps, step_size, batch, torch.Generator().manual_seed(seed))
    assert len(losses) == steps + 1
    for ui, b in zip(u, box):
        assert (ui.abs() <= b).all()
    # full batch: same mean loss the library computed
    _, losses_full = worst_case_perturbation(p, box, data, steps, step_size, n, torch.Generator().manual_seed(seed))
    for before, after in zip(losses_full, losses_full[1:]):
        assert after >= before - 1e-5 * (1 + abs(before))
    assert losses_full[-1] == pytest.approx(full_loss(model, data), rel=1e-5, abs=1e-6)


@pytest.fixture(scope="module")
def spread_ctx():
    model, init, data = one_hot_problem(SPREAD_GAPS)
    return FlatnessContext(model, init, data, spread_settings(), quiet, {})


def flipped_fraction(flip) -> float:
    return sum(1 for aj in SPREAD_GAPS if flip(aj)) / N_SPREAD


def test_sharpness_alpha_closed_form(spread_ctx):
    ctx, a = spread_ctx, SPREAD_GAPS
    assert ctx.base_acc == 1.0
    r = ctx.alpha
    # drop(alpha) = #{j : a_j < 2 alpha} / n, deterministic: every history entry by hand
    for h in r.history:
        assert h["drop"] == pytest.approx(flipped_fraction(lambda aj: aj < 2 * h["scale"]), abs=1e-12), h
    assert r.hit_target is True
    assert abs(r.history[-1]["drop"] - 0.1) < 0.01
    # hit iff 19 <= #flipped <= 23 iff a_18 < 2 alpha <= a_23 (a sorted)
    assert a[18] / 2 < r.scale <= a[23] / 2
    assert MEASURES["sharpness_flatness"].fn(ctx) == pytest.approx(1 / r.scale**2, rel=1e-12)


def test_sharpness_mag_alpha_closed_form(spread_ctx):
    ctx, a, eps = spread_ctx, SPREAD_GAPS, EPS_SPREAD
    r = ctx.alpha_mag
    # box alpha' a_j/2 + eps: flip iff a_j - 2 (alpha' a_j / 2 + eps) < 0 iff a_j (1 - alpha') < 2 eps
    for h in r.history:
        s = h["scale"]
        margins = [abs(aj * (1 - s) - 2 * eps) for aj in a]
        if min(margins) > 1e-5:  # no float near-tie at this scale
            assert h["drop"] == pytest.approx(flipped_fraction(lambda aj: aj * (1 - s) < 2 * eps), abs=1e-12), h
    assert r.hit_target is True
    assert abs(r.history[-1]["drop"] - 0.1) < 0.01
    # 19 <= #flipped <= 23 iff a_18 < 2 eps / (1 - alpha') <= a_23
    assert 1 - 2 * eps / a[18] < r.scale <= 1 - 2 * eps / a[23]
    assert MEASURES["sharpness_mag_flatness"].fn(ctx) == pytest.approx(1 / r.scale**2, rel=1e-12)


def test_searches_restore_the_model(spread_ctx):
    ctx = spread_ctx
    for name in SEARCHES:
        getattr(ctx, name)
    for q, w in zip(ctx.model.parameters(), ctx.perturbed.original):
        assert torch.equal(q, w)
    assert ctx._accuracy() == ctx.base_acc == 1.0


# =========================================================================== 5. orientation


def test_flatness_measures_are_oriented_plus_one():
    assert "flatness" in FAMILIES
    assert {m.name for m in measures_of("flatness")} == FLATNESS_MEASURES
    for name in FLATNESS_MEASURES:
        assert MEASURES[name].orientation == +1, name
    assert {n: MEASURES[n].equation for n in FLATNESS_MEASURES} == {
        "pacbayes_init": "48",
        "pacbayes_orig": "49",
        "pacbayes_flatness": "53",
        "pacbayes_mag_init": "56",
        "pacbayes_mag_orig": "57",
        "pacbayes_mag_flatness": "61",
        "sharpness_flatness": None,
        "sharpness_mag_flatness": None,
    }


def test_flatter_model_has_smaller_pacbayes_flatness(equal_ctx):
    # Gaps 2a instead of a: sigma* = 2a / (sqrt 2 z) doubles (trace 1, 1.5, 1.25, 1.125: the
    # a-trace times 2 after the first step), so 1/sigma^2 is 4x smaller. The magnitude-aware
    # sigma'* = sqrt(2/z^2 - 4 eps^2 / a^2) grows with a when eps > 0 (the fixed eps is a
    # smaller fraction of the larger noise): its closed-form intervals are disjoint.
    model, init, data = one_hot_problem([2 * A_EQUAL] * N_EQUAL)
    wide = FlatnessContext(model, init, data, flat_settings(mag_eps=EPS_EQUAL, mc_draws=MC_EQUAL), quiet, {})
    sharp = equal_ctx
    assert wide.sigma.hit_target and sharp.sigma.hit_target
    # common random numbers: the 2a model at 2s sees exactly twice the a model's noise at s,
    # so its drops are the a model's at s/2 and the trace is 1, 1.5, 1.25, 1.125 = 2 * 0.5625
    assert [h["scale"] for h in wide.sigma.history] == [1.0, 1.5, 1.25, 1.125]
    assert wide.sigma.scale == 2 * sharp.sigma.scale
    assert sigma_for_drop(0.085, 2 * A_EQUAL) <= wide.sigma.scale <= sigma_for_drop(0.115, 2 * A_EQUAL)
    assert MEASURES["pacbayes_flatness"].fn(wide) < MEASURES["pacbayes_flatness"].fn(sharp)
    assert wide.sigma_mag.hit_target
    lo, hi = sigma_mag_for_drop(0.085, 2 * A_EQUAL, EPS_EQUAL), sigma_mag_for_drop(0.115, 2 * A_EQUAL, EPS_EQUAL)
    assert lo <= wide.sigma_mag.scale <= hi
    assert sigma_mag_for_drop(0.115, A_EQUAL, EPS_EQUAL) < lo  # disjoint intervals
    assert MEASURES["pacbayes_mag_flatness"].fn(wide) < MEASURES["pacbayes_mag_flatness"].fn(sharp)


def test_flatter_model_has_smaller_sharpness(spread_ctx):
    # Gaps 2 a_j: flip iff 2 a_j < 2 alpha, alpha in (a_18, a_23] = (0.6375.., 0.6750..],
    # disjoint from (a_18/2, a_23/2] for the gaps a_j: the wider margins need a larger box.
    model, init, data = one_hot_problem([2 * aj for aj in SPREAD_GAPS])
    wide = FlatnessContext(model, init, data, spread_settings(), quiet, {})
    assert wide.alpha.hit_target
    assert SPREAD_GAPS[18] < wide.alpha.scale <= SPREAD_GAPS[23]
    assert MEASURES["sharpness_flatness"].fn(wide) < MEASURES["sharpness_flatness"].fn(spread_ctx)


def test_magnitude_aware_measures_are_scale_invariant_without_eps():
    # With eps = 0 the magnitude-aware noise (std sigma' |w|) and box (alpha' |w|) scale with
    # the weights: for W -> 2W every perturbed weight is exactly doubled (power-of-two
    # scaling is exact in float), so the logits double, the predictions (and the signs of
    # the cross-entropy gradient) are the same, and every drop of both searches is
    # bit-identical. sigma' and alpha' (and 1/sigma'^2, 1/alpha'^2) are therefore invariant
    # to rescaling a linear classifier: "flatter" in the a vs 2a sense does NOT lower them.
    # The isotropic ones are not invariant (sigma and alpha change).
    s = spread_settings(mag_eps=0.0)
    m1, i1, d1 = one_hot_problem(SPREAD_GAPS)
    m2, i2, d2 = one_hot_problem([2 * aj for aj in SPREAD_GAPS])
    c1 = FlatnessContext(m1, i1, d1, s, quiet, {})
    c2 = FlatnessContext(m2, i2, d2, s, quiet, {})
    assert c1.sigma_mag.history == c2.sigma_mag.history
    assert c1.alpha_mag.history == c2.alpha_mag.history
    for name in ("pacbayes_mag_flatness", "sharpness_mag_flatness"):
        assert MEASURES[name].fn(c1) == MEASURES[name].fn(c2)
    # eps = 0, box alpha'|w|: flip iff a_j (1 - alpha') < 0 iff alpha' > 1 for every j at
    # once (drop 0 -> 1): the target is never hit and the search closes in on 1.
    assert c1.alpha_mag.hit_target is False and abs(c1.alpha_mag.scale - 1) <= 2 / 2**15
    assert MEASURES["sharpness_flatness"].fn(c1) != MEASURES["sharpness_flatness"].fn(c2)


# =========================================================================== 6. reproducibility


def test_compute_family_is_reproducible_and_leaves_the_model_alone():
    model, init, data = one_hot_problem(SPREAD_GAPS, init_value=INIT_VALUE)
    before, before_init = copy.deepcopy(model.state_dict()), copy.deepcopy(init.state_dict())
    s = spread_settings()
    r1 = compute_family("flatness", model, init, data, s, quiet)
    r2 = compute_family("flatness", model, init, data, s, quiet)
    assert r1["errors"] == {} and r2["errors"] == {}
    assert r1["values"] == r2["values"]
    assert r1["details"] == r2["details"]
    assert state_equal(model, before) and state_equal(init, before_init)
    # another seed: other noise draws, so other Monte-Carlo drops (the first scale is
    # always scale_max / 2)
    r3 = compute_family("flatness", model, init, data, spread_settings(seed=1), quiet)
    h1, h3 = r1["details"]["histories"]["sigma"], r3["details"]["histories"]["sigma"]
    assert h1[0]["scale"] == h3[0]["scale"] == 1.0
    assert h1 != h3
    assert h1[0]["drop"] != h3[0]["drop"]
    # the worst-case drops are the deterministic corner (ascent reaches it from any start)
    assert r1["details"]["histories"]["alpha"] == r3["details"]["histories"]["alpha"]


# =========================================================================== 7. BatchNorm folding


def conv_bn_net(seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, bias=False),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Conv2d(3, 2, 1),
        nn.BatchNorm2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    with torch.no_grad():
        for q in net.parameters():
            q.copy_(torch.randn(q.shape, generator=g))
        for bn in (net[1], net[4]):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=g))
            bn.running_var.copy_(0.2 + 2 * torch.rand(bn.num_features, generator=g))
    return net.eval()


def folded_weights_by_hand(net: nn.Module) -> torch.Tensor:
    # W' = gamma / sqrt(var + eps) * W per output channel
    out = []
    for conv, bn in ((net[0], net[1]), (net[3], net[4])):
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        out.append((conv.weight * s.view(-1, 1, 1, 1)).detach().flatten())
    return torch.cat(out)


def test_fold_bn_same_base_accuracy_and_weight_only_bounds():
    net, init = conv_bn_net(0), conv_bn_net(1)
    g = torch.Generator().manual_seed(2)
    n = 64
    x = torch.randint(0, 4, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    data0 = make_data(x, torch.zeros(n, dtype=torch.long), 2)
    with torch.no_grad():
        pred = net(data0.normalize(x)).argmax(1)
    y = pred.clone()
    y[:16] = 1 - y[:16]  # 2 classes: exactly 16 of 64 wrong -> accuracy 0.75
    data = make_data(x, y, 2)
    assert evaluate(net, data, "train", 64)[1] == 0.75
    before = copy.deepcopy(net.state_dict())
    s = flat_settings(fold_bn=True, search_iterations=6, mc_draws=3, ascent_steps=3)
    ctx = FlatnessContext(net, init, data, s, quiet, {})
    unfolded = FlatnessContext(net, init, data, flat_settings(fold_bn=False), quiet, {})
    assert ctx.base_acc == unfolded.base_acc == 0.75
    assert not any(isinstance(mod, nn.BatchNorm2d) for mod in ctx.model.modules())
    # the bounds' vector: Conv weights only, folded: omega = 3*1*3*3 + 2*3*1*1 = 33
    w = folded_weights_by_hand(net)
    assert ctx.weights.numel() == 33
    assert torch.allclose(ctx.weights, w, rtol=1e-6, atol=1e-7)
    assert torch.allclose(ctx.distance, w - folded_weights_by_hand(init), rtol=1e-6, atol=1e-6)
    # noise goes on every parameter of the folded net: 27 + 3 (folded bias) + 6 + 2 = 38
    assert sum(q.numel() for q in ctx.perturbed.params) == 38
    sigma, sigma_mag, eps = ctx.sigma.scale, ctx.sigma_mag.scale, s["mag_eps"]
    w64, d64 = w.double(), (w - folded_weights_by_hand(init)).double()
    assert MEASURES["pacbayes_orig"].fn(ctx) == pytest.approx(
        (w64**2).sum().item() / (4 * sigma**2) + math.log(n / sigma) + 10, rel=1e-5
    )
    num = eps**2 + (sigma_mag**2 + 1) * (w64**2).sum().item() / 33
    expected_mag = 0.25 * torch.log(num / (eps**2 + sigma_mag**2 * d64**2)).sum().item() + math.log(n / sigma_mag) + 10
    assert MEASURES["pacbayes_mag_orig"].fn(ctx) == pytest.approx(expected_mag, rel=1e-5)
    # the whole family runs on it
    rec = compute_family("flatness", net, init, data, s, quiet)
    assert rec["errors"] == {}
    assert all(math.isfinite(v) for v in rec["values"].values())
    assert rec["details"]["base_train_acc"] == 0.75
    assert state_equal(net, before)


# =========================================================================== 8. the record


def test_family_record_is_complete_and_json_able():
    model, init, data = one_hot_problem(SPREAD_GAPS, init_value=INIT_VALUE)
    s = spread_settings()
    rec = compute_family("flatness", model, init, data, s, quiet)
    assert rec["family"] == "flatness"
    assert rec["errors"] == {}
    assert set(rec["values"]) == FLATNESS_MEASURES
    assert all(math.isfinite(v) for v in rec["values"].values())
    assert rec["orientation"] == {name: 1 for name in FLATNESS_MEASURES}
    det = rec["details"]
    assert set(det) == {"base_train_acc", "scales", "hit_target", "histories"}
    assert det["base_train_acc"] == 1.0
    for key in ("scales", "hit_target", "histories"):
        assert set(det[key]) == set(SEARCHES)
    for name in SEARCHES:
        hist = det["histories"][name]
        assert 1 <= len(hist) <= s["search_iterations"]
        assert det["scales"][name] == hist[-1]["scale"]
        assert hist[0]["scale"] == s["scale_max"] / 2
        assert det["hit_target"][name] == (abs(hist[-1]["drop"] - 0.1) < 0.01)
        assert all(set(h) == {"scale", "drop"} for h in hist)
    assert all(det["hit_target"].values())  # all four reach the target on this problem
    v = rec["values"]
    assert v["pacbayes_flatness"] == pytest.approx(1 / det["scales"]["sigma"] ** 2)
    assert v["pacbayes_mag_flatness"] == pytest.approx(1 / det["scales"]["sigma_mag"] ** 2)
    assert v["sharpness_flatness"] == pytest.approx(1 / det["scales"]["alpha"] ** 2)
    assert v["sharpness_mag_flatness"] == pytest.approx(1 / det["scales"]["alpha_mag"] ** 2)
    text = json.dumps(rec)
    assert json.loads(text)["values"] == rec["values"]
