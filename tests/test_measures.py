"""Tests for the measure registry and the "norms" and "pruning" families.

Every expected value is computed by hand or in closed form on small networks whose
weights are chosen so the answer is known (derivations in the comments).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re

import pytest
import torch
from torch import nn

from prunability.io import InputFileError
from prunability.measures import FAMILIES, MEASURES, RunError, compute_family, instances_of, is_run_error, measures_of, register
from prunability.measures.norms import margins
from prunability.models import fold_batchnorm
from prunability.pruning import kept_count, prunable_weights, random_ranks, robust_answer, sweep_alphas
from prunability.train import DeviceData, evaluate
from conftest import make_data, quiet

NORM_SETTINGS = {"fold_bn": True, "margin_quantile": 0.1, "eval_batch_size": 64}


def pruning_settings(rel_tol=0.0, abs_tol=0.0, **kw):
    s = {
        "rel_tol": rel_tol,
        "abs_tol": abs_tol,
        "alpha_min": 1e-3,
        "resolution": 1e-3,
        "random_seeds": 2,
        "acc_tol": 0.0,
        "rel_tol_sweep": [],
        "instability_fractions": [0.5],
        "eval_batch_size": 256,
    }
    s.update(kw)
    return s


# =========================================================================== registry

JIANG_EQUATIONS = {
    "params": "20",
    "inverse_margin": "22",
    "log_prod_of_spec": "32",
    "log_sum_of_spec": "35",
    "log_prod_of_fro": "37",
    "log_sum_of_fro": "39",
    "fro_dist": "40",
    "param_norm": "42",
    "path_norm": "44",
}
PRUNING_MEASURES = {
    "prunability",
    "prunability_acc",
    "prunability_layerwise",
    "prunability_bn_folded",
    "prunability_random",
    "kept_count",
    "instability_train_{:g}",
    "instability_test_{:g}",
}


def test_registry_is_consistent():
    assert set(FAMILIES) == {"pruning", "norms", "flatness", "hessian", "optimization", "prune_potential"}
    assert MEASURES, "no measure registered"
    for name, m in MEASURES.items():
        assert m.name == name
        assert m.family in FAMILIES, name
        assert m.orientation in (+1, -1), name
        assert MEASURES[name].orientation == m.orientation
        assert callable(m.fn)
        assert m.description, f"{name} has no docstring"
    for family in FAMILIES:
        assert all(m.family == family for m in measures_of(family))


def test_norms_carry_jiang_equation_numbers():
    norms = {m.name: m for m in measures_of("norms")}
    for name, eq in JIANG_EQUATIONS.items():
        assert name in norms, name
        assert norms[name].equation == eq, name
    assert PRUNING_MEASURES <= {m.name for m in measures_of("pruning")}


def test_current_orientations_are_plus_one():
    # Every current measure predicts a larger generalization gap when it is larger.
    for name in [*JIANG_EQUATIONS, *PRUNING_MEASURES]:
        assert MEASURES[name].orientation == +1, name


def test_template_measures_expand_over_their_setting():
    names = [name for name, _, _ in instances_of("pruning", pruning_settings(instability_fractions=[0.5, 0.25]))]
    assert [n for n in names if n.startswith("instability")] == [
        "instability_train_0.5",
        "instability_train_0.25",
        "instability_test_0.5",
        "instability_test_0.25",
    ]
    assert not any(n.startswith("instability") for n, _, _ in instances_of("pruning", pruning_settings(instability_fractions=[])))


def test_register_rejects_bad_orientation_and_duplicates():
    before = dict(MEASURES)
    with pytest.raises(ValueError):
        register("norms", "some_new_measure", orientation=0)
    with pytest.raises(ValueError):
        register("norms", "params")(lambda ctx: 0.0)
    assert MEASURES == before  # nothing was added or replaced


def test_compute_family_unknown_family():
    with pytest.raises(KeyError):
        compute_family("no_such_family", nn.Linear(1, 1), nn.Linear(1, 1), None, {}, quiet)


# =========================================================================== norms: closed form
#
# Diagonal linear network f(x) = B relu(diag(a) x), d = 3, K = 2, no biases:
#   a = (1, 2, 3)              A = diag(a): ||A||_F^2 = 1 + 4 + 9 = 14, sigma_max(A)^2 = 9
#   B = [[1, 1, 0], [0, 0, 2]] rows orthogonal with norms sqrt 2 and 2:
#                              sigma_max(B)^2 = 4, ||B||_F^2 = 1 + 1 + 4 = 6
# Init: A0 = I, B0 = [[1, 0, 0], [0, 0, 1]].

A_DIAG = [1.0, 2.0, 3.0]
B = [[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]
B0 = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


def diag_net(a, b, bn: nn.Module | None = None) -> nn.Module:
    d, k = len(a), len(b)
    layers = [nn.Flatten(), nn.Linear(d, d, bias=False)]
    if bn is not None:
        layers.append(bn)
    layers += [nn.ReLU(), nn.Linear(d, k, bias=False)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        net[1].weight.copy_(torch.diag(torch.tensor(a)))
        net[-1].weight.copy_(torch.tensor(b))
    return net.eval()


def diag_data(n: int = 8, d: int = 3, k: int = 2) -> DeviceData:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (n, 1, 1, d), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % k
    return make_data(x, y, k)


@pytest.mark.parametrize("fold_bn", [True, False])
def test_norms_closed_form_on_diagonal_network(fold_bn):
    model, init = diag_net(A_DIAG, B), diag_net([1.0, 1.0, 1.0], B0)
    rec = compute_family("norms", model, init, diag_data(), {**NORM_SETTINGS, "fold_bn": fold_bn}, quiet)
    v = rec["values"]
    assert rec["errors"] == {}
    assert v["params"] == 3 * 3 + 2 * 3  # d*d + K*d = 15
    assert v["param_norm"] == pytest.approx(14 + 6)
    assert v["log_prod_of_spec"] == pytest.approx(math.log(9) + math.log(4))  # log 36
    assert v["log_sum_of_spec"] == pytest.approx(math.log(2) + 0.5 * math.log(36))  # log 12
    assert v["log_sum_of_spec"] == pytest.approx(math.log(12))
    assert v["log_prod_of_fro"] == pytest.approx(math.log(14) + math.log(6))  # log 84
    assert v["log_sum_of_fro"] == pytest.approx(math.log(2) + 0.5 * math.log(84))
    # fro_dist: A - I = diag(0, 1, 2) -> 5;  B - B0 = [[0, 1, 0], [0, 0, 1]] -> 2
    assert v["fro_dist"] == pytest.approx(5 + 2)
    # path_norm: squared weights on the all-ones input: relu(a^2) = (1, 4, 9);
    # B^2 = [[1, 1, 0], [0, 0, 4]] -> outputs (1 + 4, 4 * 9) = (5, 36), sum 41.
    assert v["path_norm"] == pytest.approx(41)
    assert math.isfinite(v["inverse_margin"]) and v["inverse_margin"] > 0
    assert rec["orientation"] == {m.name: m.orientation for m in measures_of("norms")}
    assert rec["equation"]["path_norm"] == "44"
    json.dumps(rec)


def _bn1d() -> nn.BatchNorm1d:
    # s = gamma / sqrt(var + eps) with eps = 0: gamma = (2, 3, 1), var = (4, 1, 0.25) -> s = (1, 3, 2)
    bn = nn.BatchNorm1d(3, eps=0.0)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.0, 3.0, 1.0]))
        bn.bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
        bn.running_mean.copy_(torch.tensor([1.0, 0.0, -1.0]))
        bn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    return bn


def test_norms_with_batchnorm_folded_closed_form():
    # Folded first layer: diag(s * a) = diag(1, 6, 6); bias b' = s (0 - mu) + beta = (-1, 1, 2).
    model = diag_net(A_DIAG, B, bn=_bn1d())
    # init BN: gamma = (1, 2, 1), var = 1, eps = 0 -> s = (1, 2, 1): folded init diag(1, 2, 1)
    init_bn = nn.BatchNorm1d(3, eps=0.0)
    with torch.no_grad():
        init_bn.weight.copy_(torch.tensor([1.0, 2.0, 1.0]))
        init_bn.running_mean.fill_(0.5)
    init = diag_net([1.0, 1.0, 1.0], B0, bn=init_bn)
    rec = compute_family("norms", model, init, diag_data(), NORM_SETTINGS, quiet)
    v = rec["values"]
    assert rec["errors"] == {}
    assert v["params"] == 15  # BN parameters are not weights
    assert v["param_norm"] == pytest.approx(1 + 36 + 36 + 6)  # 79
    assert v["log_prod_of_spec"] == pytest.approx(math.log(36) + math.log(4))
    assert v["log_prod_of_fro"] == pytest.approx(math.log(73) + math.log(6))
    # fro_dist between FOLDED weights: diag(1, 6, 6) - diag(1, 2, 1) = diag(0, 4, 5) -> 41;
    # B - B0 -> 2
    assert v["fro_dist"] == pytest.approx(43)
    # path_norm: squared weights and squared folded bias on ones: (1, 36, 36) + (1, 1, 4) =
    # (2, 37, 40); B^2 gives (2 + 37, 4 * 40) = (39, 160); sum 199.
    assert v["path_norm"] == pytest.approx(199)
    # Without folding the BN is ignored by the weight norms: back to sum a^2 + ||B||_F^2 = 20.
    unfolded = compute_family("norms", model, init, diag_data(), {**NORM_SETTINGS, "fold_bn": False}, quiet)
    assert unfolded["values"]["param_norm"] == pytest.approx(20)


def test_param_norm_orders_two_models():
    # Doubling every weight multiplies param_norm by 4 and the spectral/Frobenius products
    # of the d = 2 layers by 4^2 (log + 2 log 4): the larger model ranks larger.
    small, big = diag_net(A_DIAG, B), diag_net([2 * a for a in A_DIAG], [[2 * b for b in r] for r in B])
    init = diag_net([1.0, 1.0, 1.0], B0)
    vs = compute_family("norms", small, init, diag_data(), NORM_SETTINGS, quiet)["values"]
    vb = compute_family("norms", big, init, diag_data(), NORM_SETTINGS, quiet)["values"]
    assert vb["param_norm"] == pytest.approx(4 * vs["param_norm"])
    assert vb["log_prod_of_spec"] == pytest.approx(vs["log_prod_of_spec"] + 2 * math.log(4))
    assert vb["log_prod_of_fro"] == pytest.approx(vs["log_prod_of_fro"] + 2 * math.log(4))
    # path norm: two squared layers scale by 4 each -> 16x
    assert vb["path_norm"] == pytest.approx(16 * vs["path_norm"])
    assert vb["param_norm"] * MEASURES["param_norm"].orientation > vs["param_norm"] * MEASURES["param_norm"].orientation


# =========================================================================== inverse margin
#
# Linear model (no bias) on one-hot inputs: example i has x = e_i, so its logits are the
# i-th column of W. Column i: correct class y_i = i % 3 gets i/4 - 1, the other two classes
# get 0.5 and -2. Margin_i = (i/4 - 1) - max(0.5, -2) = i/4 - 1.5, i = 0..19:
# sorted margins -1.5, -1.25, -1.0, -0.75, -0.5, ...


def margin_problem(m: int = 20):
    k = 3
    w = torch.zeros(k, m)
    y = torch.arange(m) % k
    for i in range(m):
        others = [c for c in range(k) if c != int(y[i])]
        w[y[i], i] = i / 4 - 1
        w[others[0], i] = 0.5
        w[others[1], i] = -2.0
    x = torch.eye(m, dtype=torch.uint8).view(m, 1, 1, m)
    perm = torch.randperm(m, generator=torch.Generator().manual_seed(1))  # examples in shuffled order
    model = nn.Sequential(nn.Flatten(), nn.Linear(m, k, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(w)
    return model.eval(), make_data(x[perm], y[perm], k), (torch.arange(m, dtype=torch.float64) / 4 - 1.5)[perm]


def test_margins_by_hand():
    model, data, expected = margin_problem()
    got = margins(model, data, batch_size=7)  # batches of 7 do not divide 20
    assert torch.allclose(got, expected)


@pytest.mark.parametrize(
    "quantile, expected_gamma",
    [
        (0.1, 1.25),  # k = floor(20 * 0.1) = 2: second smallest margin -1.25, gamma = |-1.25|
        (0.25, 0.5),  # k = 5: -0.5
        (0.01, 1.5),  # k = max(1, floor(0.2)) = 1: smallest margin -1.5
        (0.12, 1.25),  # k = floor(2.4) = 2 (not 3)
        (0.5, 0.75),  # k = 10: 10th smallest is i = 9: 9/4 - 1.5 = 0.75 (a positive margin)
    ],
)
def test_inverse_margin_known_margin(quantile, expected_gamma):
    model, data, _ = margin_problem()
    settings = {**NORM_SETTINGS, "margin_quantile": quantile, "eval_batch_size": 7}
    rec = compute_family("norms", model, copy.deepcopy(model), data, settings, quiet)
    assert rec["values"]["inverse_margin"] == pytest.approx(1.0 / expected_gamma**2)


# =========================================================================== BN folding


def conv_bn_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3, eps=1e-3),
        nn.ReLU(),
        nn.Conv2d(3, 4, 3, bias=False),
        nn.BatchNorm2d(4),
    )
    with torch.no_grad():
        for bn in (net[1], net[4]):
            bn.weight.uniform_(-2.0, 2.0)  # including negative scales
            bn.bias.uniform_(-1.0, 1.0)
            bn.running_mean.uniform_(-1.0, 1.0)
            bn.running_var.uniform_(0.2, 3.0)
    return net.eval()


def test_fold_batchnorm_preserves_function_and_removes_bn():
    net = conv_bn_net()
    original = copy.deepcopy(net.state_dict())
    folded = fold_batchnorm(net)
    x = torch.randn(5, 2, 6, 6)
    with torch.no_grad():
        assert torch.allclose(folded(x), net(x), atol=1e-5, rtol=1e-4)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert not folded.training
    # the input model is not modified
    for k, v in net.state_dict().items():
        assert torch.equal(v, original[k])
    # W' = gamma / sqrt(var + eps) * W, per output channel; b' = s (b - mu) + beta
    bn = net[1]
    s = bn.weight[2] / torch.sqrt(bn.running_var[2] + bn.eps)
    assert folded[0].weight[2, 1, 0, 2].item() == pytest.approx((s * net[0].weight[2, 1, 0, 2]).item(), rel=1e-6)
    assert folded[0].bias[2].item() == pytest.approx((s * (net[0].bias[2] - bn.running_mean[2]) + bn.bias[2]).item(), rel=1e-6)
    # second conv had no bias: b' = -s mu + beta
    bn = net[4]
    s = bn.weight[1] / torch.sqrt(bn.running_var[1] + bn.eps)
    assert folded[3].weight[1, 2, 1, 1].item() == pytest.approx((s * net[3].weight[1, 2, 1, 1]).item(), rel=1e-6)
    assert folded[3].bias[1].item() == pytest.approx((-s * bn.running_mean[1] + bn.bias[1]).item(), rel=1e-6)


def test_fold_batchnorm_in_nested_containers():
    net = nn.Sequential(conv_bn_net(), nn.Sequential(nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2), nn.ReLU())).eval()
    with torch.no_grad():
        net[1][1].running_var.fill_(2.0)
        net[1][1].running_mean.fill_(0.3)
    x = torch.randn(3, 2, 7, 7)
    folded = fold_batchnorm(net)
    with torch.no_grad():
        assert torch.allclose(folded(x), net(x), atol=1e-5, rtol=1e-4)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())


@pytest.mark.parametrize(
    "net",
    [
        nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.BatchNorm2d(2)),  # BN after a ReLU
        nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 2, 1)),  # BN first in its container
    ],
)
def test_fold_batchnorm_rejects_bn_not_after_conv(net):
    with pytest.raises(ValueError):
        fold_batchnorm(net)


# =========================================================================== pruning family
#
# Linear model W (K x D, no bias) on inputs that are one-hot on the first r positions:
# positions r..D-1 are always zero, so their K (D - r) weights never affect the logits
# (0 * w = 0 exactly, the float logits are bit-identical) and pruning them leaves the
# training loss exactly unchanged. The relevant weights are W[y_j, j] = 1.5 and
# W[c, j] = -1 (c != y_j) for j < r; the irrelevant ones have |w| <= 0.5, so global
# magnitude pruning removes all irrelevant weights before any relevant one. Removing any
# relevant weight strictly raises the loss of example j (correct logit 1.5 -> 0, or a
# wrong logit -1 -> 0). With rel_tol = abs_tol = 0 a kept count k passes iff k >= R = K r,
# i.e. iff alpha > (R - 1) / P with P = K D. The sweep 1, 0.999, ... is exact, so
# prunability is the smallest sweep point above (R - 1) / P: sweep_answer(R, P).


def sweep_answer(count: int, total: int, h: float = 1e-3) -> float:
    """The smallest point of the sweep 1, 1 - h, ... that keeps at least ``count`` of ``total`` weights."""
    return min(a for a in sweep_alphas(h, h) if kept_count(a, total) >= count)


def linear_problem(d: int, r: int, k: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.full((k, d), -1.0)
    y = torch.arange(r) % k
    for j in range(r):
        w[y[j], j] = 1.5
    irrelevant = torch.empty(k, d - r).uniform_(0.05, 0.5, generator=g)
    signs = torch.randint(0, 2, (k, d - r), generator=g) * 2 - 1
    w[:, r:] = irrelevant * signs
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, k, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(w)
    x = torch.zeros(r, 1, 1, d, dtype=torch.uint8)
    x[torch.arange(r), 0, 0, torch.arange(r)] = 1
    return model.eval(), make_data(x, y, k)


def random_answer(model, seed: int, r: int) -> float:
    """Closed form for one random-mask search: with ranks from ``random_ranks`` the kept
    count k passes iff every relevant weight (columns < r) has rank < k, i.e. iff
    k >= m = 1 + max relevant rank."""
    ranks = random_ranks(prunable_weights(model), seed)["1.weight"]
    return sweep_answer(int(ranks[:, :r].max()) + 1, ranks.numel())


def test_pruning_family_on_irrelevant_weights():
    d, r, k = 10, 4, 3  # P = 30, R = 12
    model, data = linear_problem(d, r, k)
    before = copy.deepcopy(model.state_dict())
    settings = pruning_settings()
    rec = compute_family("pruning", model, copy.deepcopy(model), data, settings, quiet)
    v, det = rec["values"], rec["details"]
    assert rec["errors"] == {}
    p, big_r = 30, 12
    # the smallest sweep point above 11/30 = 0.3667: exactly the 12 relevant weights are kept
    assert v["prunability"] == sweep_answer(big_r, p) == 0.367
    assert v["kept_count"] == big_r == kept_count(v["prunability"], p)
    # random masks: closed form per seed, then the mean
    assert det["random_alphas"] == [random_answer(model, s, r) for s in range(2)]
    assert v["prunability_random"] == pytest.approx(sum(det["random_alphas"]) / 2)
    assert 0 < v["prunability_random"] <= 1
    assert v["prunability_random"] >= v["prunability"]  # a random mask must also keep all 12
    # details
    base_loss, base_acc = evaluate(model, data, "train", 256)
    assert det["base_train_loss"] == pytest.approx(base_loss) and det["base_train_acc"] == 1.0
    assert det["loss_bound"] == pytest.approx(base_loss)  # rel_tol = abs_tol = 0
    assert det["prunable_weights"] == p and det["at_lower_limit"] == {"loss": False, "acc": False}
    # no BatchNorm: the BN-folded ranking is the magnitude ranking, not searched again
    assert set(det["curves"]) == {"magnitude", "layerwise", "random_seed_0", "random_seed_1"}
    assert v["prunability_bn_folded"] == v["prunability"]
    for curve in det["curves"].values():
        # one point per kept count, from all 30 kept down, at the smallest sweep point of each
        assert [c["kept"] for c in curve] == list(range(30, 30 - len(curve), -1))
        assert [c["alpha"] for c in curve] == [sweep_answer(c["kept"], p) for c in curve]
    for name, curve in det["curves"].items():
        passing = [c["loss"] <= det["loss_bound"] for c in curve]
        if name == "magnitude":  # on until the accuracy criterion has failed too
            assert passing.index(False) < len(curve) - 1 and curve[-1]["acc"] < 1.0
        else:  # stopped at the first failure
            assert passing == [True] * (len(curve) - 1) + [False]
    for c in det["curves"]["magnitude"]:  # passes iff all 12 relevant weights are kept
        assert (c["loss"] <= det["loss_bound"]) == (c["kept"] >= big_r)
        if c["kept"] >= big_r:
            assert c["loss"] == base_loss  # irrelevant weights only: bit-identical loss
    json.dumps(rec)
    # the searches restore the model
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])


def test_pruning_family_exact_on_the_sweep():
    # P = 10 * 200 = 2000 > 1/resolution: 2 weights per sweep step. R = 10 * 37 = 370:
    # prunability = 370/2000 = 0.185 exactly, a sweep point.
    d, r, k = 200, 37, 10
    model, data = linear_problem(d, r, k, seed=3)
    rec = compute_family("pruning", model, copy.deepcopy(model), data, pruning_settings(random_seeds=1), quiet)
    v = rec["values"]
    assert v["prunability"] == 0.185 and v["kept_count"] == 370
    assert v["prunability_random"] == random_answer(model, 0, r)
    # a coarser sweep: 0.19 is its smallest point that keeps all 370 (0.18 keeps 360)
    v = compute_family("pruning", model, copy.deepcopy(model), data, pruning_settings(random_seeds=1, resolution=0.01), quiet)["values"]
    assert v["prunability"] == 0.19 and v["kept_count"] == 380


def test_pruning_family_tolerance_large_is_at_lower_limit():
    # abs_tol huge: every sweep point passes, the answer is the smallest one, 1e-3.
    model, data = linear_problem(10, 4, 3)
    rec = compute_family("pruning", model, copy.deepcopy(model), data, pruning_settings(abs_tol=1e6), quiet)
    assert rec["details"]["at_lower_limit"]["loss"] is True
    assert rec["values"]["prunability"] == 1e-3
    assert rec["values"]["kept_count"] == kept_count(1e-3, 30) == 1
    assert rec["values"]["prunability_random"] == 1e-3


def test_prunability_orders_two_models():
    # Same architecture (D = 10, K = 3, P = 30); 2 relevant inputs instead of 4 means 6
    # instead of 12 relevant weights: prunability in (5/30, 6/30] < (11/30, 12/30].
    few = compute_family("pruning", *_pair(10, 2, 3), pruning_settings(), quiet)["values"]
    many = compute_family("pruning", *_pair(10, 4, 3), pruning_settings(), quiet)["values"]
    assert 5 / 30 < few["prunability"] <= 6 / 30 + 1e-12
    assert few["prunability"] < many["prunability"]
    assert few["kept_count"] == 6 and many["kept_count"] == 12
    # the variants keep the order: one layer, so layerwise and BN-folded rankings are the
    # global one; the accuracy criterion needs the 1.5 weights of 2 vs 4 examples (see
    # below: kept 2 vs 4); a random mask must keep the relevant weights, and those of the
    # 2-input model are a subset of the 4-input model's, with the same seeded ranks.
    for name in ("prunability_layerwise", "prunability_bn_folded", "prunability_acc"):
        assert few[name] < many[name], name
    assert kept_count(few["prunability_acc"], 30) == 2
    assert few["prunability_random"] <= many["prunability_random"]


def _pair(d, r, k):
    model, data = linear_problem(d, r, k)
    return model, copy.deepcopy(model), data


# In linear_problem(10, 4, 3) (P = 30), y = (0, 1, 2, 0) and magnitude order is: the four
# correct-class weights 1.5 (flat indices 0, 11, 22, 3; ties keep index order: 0, 3, 11, 22),
# then the eight wrong-class weights -1, then the irrelevant ones. Example j stays correct
# as long as its 1.5 is kept (1.5 > every other logit, 0 or -1). Once it is pruned, and
# all -1 weights already are, its logits are all 0 and argmax picks class 0.


def test_prunability_acc_closed_form():
    # Accuracy stays 1 while the four 1.5 weights are kept (k >= 4); at k = 3 the weight of
    # example 2 (index 22, last of the ties) goes and example 2 (class 2) becomes wrong:
    # with acc_tol = 0 the kept count is exactly 4, far below the loss criterion's 12.
    model, data = linear_problem(10, 4, 3)
    rec = compute_family("pruning", model, copy.deepcopy(model), data, pruning_settings(acc_tol=0.0), quiet)
    v = rec["values"]
    assert 3 / 30 < v["prunability_acc"] <= 4 / 30 + 1e-12
    assert kept_count(v["prunability_acc"], 30) == 4
    assert v["prunability_acc"] < v["prunability"]
    # acc_tol = 0.25 tolerates example 2; k = 2 also loses example 3 (index 3): acc 1/2
    loose = compute_family("pruning", model, copy.deepcopy(model), data, pruning_settings(acc_tol=0.25), quiet)["values"]
    assert kept_count(loose["prunability_acc"], 30) == 3


def test_instability_closed_form():
    # alpha = 0.5 keeps 15 >= 12 relevant weights: accuracy 1, instability 0. alpha = 0.1
    # keeps 3: example 2 is lost (accuracy 3/4), instability (1 - 3/4) / 1 = 1/4; train and
    # test sets are the same data here, so both splits agree.
    model, data = linear_problem(10, 4, 3)
    settings = pruning_settings(instability_fractions=[0.5, 0.1])
    v = compute_family("pruning", model, copy.deepcopy(model), data, settings, quiet)["values"]
    assert v["instability_train_0.5"] == v["instability_test_0.5"] == 0.0
    assert v["instability_train_0.1"] == v["instability_test_0.1"] == pytest.approx(0.25)
    assert MEASURES["instability_train_{:g}"].orientation == MEASURES["instability_test_{:g}"].orientation == +1


def test_instability_orders_two_models():
    # With 2 relevant examples (y = 0, 1; weights 1.5 at indices 0 and 11) alpha = 0.1 keeps
    # 3 weights, both 1.5s among them: nothing is lost. With 4 it loses 1/4 (test above).
    few = compute_family("pruning", *_pair(10, 2, 3), pruning_settings(instability_fractions=[0.1]), quiet)["values"]
    many = compute_family("pruning", *_pair(10, 4, 3), pruning_settings(instability_fractions=[0.1]), quiet)["values"]
    assert few["instability_train_0.1"] == 0.0 < many["instability_train_0.1"]


def test_layerwise_equals_global_for_one_layer():
    # One weight tensor: the layerwise ranking is the global magnitude ranking, so the
    # search sees the same curve.
    model, data = linear_problem(10, 4, 3)
    rec = compute_family("pruning", model, copy.deepcopy(model), data, pruning_settings(), quiet)
    assert rec["values"]["prunability_layerwise"] == rec["values"]["prunability"]
    layer, glob = rec["details"]["curves"]["layerwise"], rec["details"]["curves"]["magnitude"]
    glob_loss = {c["alpha"]: c["loss"] for c in glob}
    assert all(c["alpha"] in glob_loss and c["loss"] == glob_loss[c["alpha"]] for c in layer)


def test_bn_folded_ranking_is_the_folded_models_magnitude_ranking():
    # Zeroing raw entry (i, j) zeroes folded entry s_i W_ij and leaves biases alone, so
    # pruning the raw model with the folded ranking is pruning the folded model by its own
    # magnitudes: prunability_bn_folded(model) = prunability(fold_batchnorm(model)).
    # BN scales the rows so the raw and folded orders differ.
    model, data = linear_problem(10, 4, 3)
    net = nn.Sequential(model[0], model[1], nn.BatchNorm1d(3)).eval()
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor([0.2, 1.0, 5.0]))
        net[2].running_var.fill_(1.0 - net[2].eps)  # sqrt(var + eps) = 1: s = gamma
    settings = pruning_settings(rel_tol=0.05)
    raw = compute_family("pruning", net, copy.deepcopy(net), data, settings, quiet)
    folded = compute_family("pruning", fold_batchnorm(net), fold_batchnorm(net), data, settings, quiet)
    assert "bn_folded" in raw["details"]["curves"]
    assert raw["values"]["prunability_bn_folded"] == pytest.approx(folded["values"]["prunability"])
    assert raw["values"]["prunability_bn_folded"] != raw["values"]["prunability"]


# =========================================================================== failures


@pytest.mark.parametrize("family", ["norms", "pruning"])
def test_nan_weight_gives_nan_everywhere(family):
    model, data = linear_problem(10, 4, 3)
    init = copy.deepcopy(model)
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    settings = NORM_SETTINGS if family == "norms" else pruning_settings()
    rec = compute_family(family, model, init, data, settings, quiet)
    names = {name for name, _, _ in instances_of(family, settings)}
    assert set(rec["values"]) == names
    assert all(math.isnan(x) for x in rec["values"].values())
    assert set(rec["errors"]) == names and all(rec["errors"].values())
    assert rec["details"] == {}


def test_raising_measure_is_recorded_and_others_continue(monkeypatch):
    def boom(ctx):
        raise RuntimeError("deliberate failure in log_prod_of_spec")

    monkeypatch.setitem(MEASURES, "log_prod_of_spec", dataclasses.replace(MEASURES["log_prod_of_spec"], fn=boom))
    model, init = diag_net(A_DIAG, B), diag_net([1.0, 1.0, 1.0], B0)
    rec = compute_family("norms", model, init, diag_data(), NORM_SETTINGS, quiet)
    assert math.isnan(rec["values"]["log_prod_of_spec"])
    assert set(rec["errors"]) == {"log_prod_of_spec"}
    assert "deliberate failure" in rec["errors"]["log_prod_of_spec"]
    others = {k: x for k, x in rec["values"].items() if k != "log_prod_of_spec"}
    assert others and all(math.isfinite(x) for x in others.values())
    assert rec["values"]["param_norm"] == pytest.approx(20)


def test_raising_measure_restored_after_monkeypatch():
    # (runs after the test above in file order) the registry holds the real function again
    rec = compute_family("norms", diag_net(A_DIAG, B), diag_net([1.0, 1.0, 1.0], B0), diag_data(), NORM_SETTINGS, quiet)
    assert rec["values"]["log_prod_of_spec"] == pytest.approx(math.log(36))


RUN_FAILURES = [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    MemoryError(),
    RuntimeError("CUDA error: device-side assert triggered"),
    RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR"),
    RuntimeError("CUDA driver error: unknown error"),
    FileNotFoundError(2, "No such file or directory", "results/s/data/corruptions.npz"),
    InputFileError("corruptions.npz: not a readable file of corrupted sets"),
] + ([torch.AcceleratorError("CUDA error: an illegal memory access was encountered")] if hasattr(torch, "AcceleratorError") else [])
MODEL_FAILURES = [RuntimeError("the matrix is singular"), ValueError("undefined for this model"), ZeroDivisionError()]


def raising(error):
    def fn(*args, **kwargs):
        raise error

    return fn


@pytest.mark.parametrize("error", RUN_FAILURES, ids=lambda e: type(e).__name__ + ":" + str(e)[:20])
@pytest.mark.parametrize("where", ["measure", "set-up"])
def test_an_error_of_the_run_fails_the_family_naming_its_cause(monkeypatch, error, where):
    if where == "measure":
        monkeypatch.setitem(MEASURES, "log_prod_of_spec", dataclasses.replace(MEASURES["log_prod_of_spec"], fn=raising(error)))
    else:
        monkeypatch.setitem(FAMILIES, "norms", raising(error))
    logged = []
    with pytest.raises(RunError, match=re.escape(type(error).__name__)) as info:
        compute_family("norms", diag_net(A_DIAG, B), diag_net([1.0, 1.0, 1.0], B0), diag_data(), NORM_SETTINGS, logged.append)
    assert info.value.__cause__ is error
    assert ("log_prod_of_spec" if where == "measure" else "setting up the norms family") in str(info.value)
    assert "error of the run" in str(info.value)
    assert not any("recorded as NaN" in line for line in logged)


def test_an_interrupt_goes_on_up_as_it_is(monkeypatch):
    monkeypatch.setitem(MEASURES, "log_prod_of_spec", dataclasses.replace(MEASURES["log_prod_of_spec"], fn=raising(KeyboardInterrupt())))
    with pytest.raises(KeyboardInterrupt):
        compute_family("norms", diag_net(A_DIAG, B), diag_net([1.0, 1.0, 1.0], B0), diag_data(), NORM_SETTINGS, quiet)


@pytest.mark.parametrize("error", MODEL_FAILURES, ids=lambda e: type(e).__name__)
def test_an_error_of_the_model_is_nan_with_its_cause(monkeypatch, error):
    monkeypatch.setitem(FAMILIES, "norms", raising(error))
    rec = compute_family("norms", diag_net(A_DIAG, B), diag_net([1.0, 1.0, 1.0], B0), diag_data(), NORM_SETTINGS, quiet)
    assert rec["values"] and all(math.isnan(x) for x in rec["values"].values())
    assert all(type(error).__name__ in trace for trace in rec["errors"].values())


def test_run_errors_are_told_from_model_errors():
    assert all(is_run_error(e) for e in RUN_FAILURES + [KeyboardInterrupt(), SystemExit()])
    assert not any(is_run_error(e) for e in MODEL_FAILURES)


def test_kept_count_is_nan_when_prunability_is_nan():
    # BUG (src/prunability/pruning.py, search_prunability, line ~159: the early return
    # ``SearchResult(float("nan"), total, total, False, curve)`` when even the unpruned model
    # fails the criterion): prunability is NaN but the measure kept_count (kappa, "the
    # number of weights kept at the prunability fraction") reports |P| = total, a finite
    # value that statistics would treat as "not prunable at all" instead of missing.
    # Here the weights are finite (so compute_family runs the searches) but the logits
    # overflow to inf and the unpruned training loss is NaN.
    model, data = linear_problem(4, 2, 2)
    with torch.no_grad():
        model[1].weight.fill_(3e38)  # finite float32 (max ~3.4e38)
        model[1].weight[1] = -3e38
    # inputs all 2: logits = (+-2 * 3e38 * 4) overflow to (+inf, -inf) -> cross-entropy NaN
    data = make_data(torch.full_like(data.x_train, 2), data.y_train, 2)
    base_loss, _ = evaluate(model, data, "train", 256)
    assert not math.isfinite(base_loss)
    rec = compute_family("pruning", model, copy.deepcopy(model), data, pruning_settings(), quiet)
    assert math.isnan(rec["values"]["prunability"])
    assert math.isnan(rec["values"]["prunability_random"])
    assert math.isnan(rec["values"]["kept_count"]), f"kept_count = {rec['values']['kept_count']} for a NaN prunability"


# =========================================================================== brute force on a trained model


@pytest.fixture(scope="module")
def trained_mlp():
    """A small MLP (64 -> 32 -> 10, |P| = 2368) trained on 400 digits: a real, bumpy pruning curve."""
    from prunability.data import digits_split

    split = digits_split(0.3, 0)
    data = DeviceData.from_split({**split, "x_train": split["x_train"][:400], "y_train": split["y_train"][:400]}, "cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = data.normalize(data.x_train), data.y_train
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval(), data


@pytest.mark.parametrize("resolution", [0.01, 0.001])
def test_prunability_equals_brute_force_on_every_sweep_point(trained_mlp, resolution):
    # Evaluate the pruned model at *every* point of the sweep, apply the robust rule,
    # and compare with the family's answers: global magnitude for three tolerances and
    # the accuracy criterion, and the layerwise ranking.
    from prunability.pruning import Pruner, accuracy_criterion, layerwise_magnitude_ranks, loss_criterion, magnitude_ranks

    model, data = trained_mlp
    settings = pruning_settings(rel_tol=0.1, acc_tol=0.01, rel_tol_sweep=[0.5, 1.0], resolution=resolution,
                                random_seeds=1, eval_batch_size=512)
    record = compute_family("pruning", model, copy.deepcopy(model), data, settings, quiet)
    base_loss, base_acc = evaluate(model, data, "train", 512)

    def brute_force(ranks):
        pruner = Pruner(model, ranks)
        points = []
        for alpha in sweep_alphas(resolution, 1e-3):
            pruner.prune_to(alpha)
            loss, acc = evaluate(model, data, "train", 512)
            points.append(dict(alpha=alpha, loss=loss, acc=acc))
        pruner.restore()
        return points

    magnitude = brute_force(magnitude_ranks(prunable_weights(model)))
    answers = record["details"]["magnitude_alphas"]
    for name, passes in [("loss", loss_criterion(base_loss, 0.1, 0.0)), ("rel_tol=0.5", loss_criterion(base_loss, 0.5, 0.0)),
                         ("rel_tol=1", loss_criterion(base_loss, 1.0, 0.0)), ("acc", accuracy_criterion(base_acc, 0.01))]:
        assert answers[name] == robust_answer(magnitude, passes)[0], name
    layerwise = brute_force(layerwise_magnitude_ranks(prunable_weights(model)))
    assert record["values"]["prunability_layerwise"] == robust_answer(layerwise, loss_criterion(base_loss, 0.1, 0.0))[0]
    # the loss is not monotone in alpha (removing weights sometimes lowers it), so the
    # comparison is not vacuous
    losses = [p["loss"] for p in magnitude]
    assert any(below < above for above, below in zip(losses, losses[1:]))
