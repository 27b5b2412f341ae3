"""Tests for ``prunability.pruning``: masks, rankings, the Pruner, and the search.

Every expected value is derived by hand or in closed form (see the comments);
property tests (hypothesis) cover the mask invariants over random weight dicts.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prunability.pruning import (
    Pruner,
    accuracy_criterion,
    kept_count,
    layerwise_magnitude_ranks,
    sweep_alphas,
    loss_criterion,
    magnitude_ranks,
    masks_from_ranks,
    prunable_weights,
    random_ranks,
    robust_answer,
    search_prunability,
    sparsity_report,
)

# --------------------------------------------------------------------------- strategies

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
alphas = st.floats(min_value=1e-6, max_value=1.0, exclude_min=False, allow_nan=False)


@st.composite
def weight_dicts(draw, ties: bool = False):
    """A dict of 1-4 tensors of random shapes. With ``ties``, values come from a
    set of 3 magnitudes (and both signs) so that most |w| are tied."""
    n = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i in range(n):
        shape = draw(shapes)
        if ties:
            levels = torch.tensor([0.0, 0.5, -0.5, 1.0, -1.0])
            idx = torch.randint(0, len(levels), shape, generator=g)
            out[f"layer{i}.weight"] = levels[idx]
        else:
            out[f"layer{i}.weight"] = torch.randn(shape, generator=g)
    return out


def _flat(d: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.flatten() for t in d.values()])


def _total(d) -> int:
    return sum(t.numel() for t in d.values())


# --------------------------------------------------------------------------- kept_count


def test_kept_count_float_noise_and_edges():
    # 0.1 + 0.2 = 0.30000000000000004 and (0.1 + 0.2) * 10 = 3.0000000000000004: a naive
    # ceil would keep 4 of 10; 0.29 * 100 = 28.999999999999996 (below, ceil is right anyway).
    assert kept_count(0.3, 10) == 3
    assert (0.1 + 0.2) * 10 > 3
    assert kept_count(0.1 + 0.2, 10) == 3
    assert kept_count(0.29, 100) == 29
    for n in (1, 7, 10, 1000, 123457):
        assert kept_count(1.0, n) == n
        assert kept_count(0.0, n) == 0
    # ceil: 0.25 of 10 is 2.5 -> 3 weights kept; one weight out of 10**6 is kept for a tiny alpha.
    assert kept_count(0.25, 10) == 3
    assert kept_count(1e-6, 10**6) == 1
    assert kept_count(1.5e-6, 10**6) == 2


@pytest.mark.parametrize("alpha", [-1e-9, -0.5, 1.0 + 1e-9, 2.0, float("nan"), float("inf")])
def test_kept_count_out_of_range_raises(alpha):
    with pytest.raises(ValueError):
        kept_count(alpha, 10)


@given(n=st.integers(1, 10**6), data=st.data())
def test_kept_count_of_exact_fractions(n, data):
    # alpha = k/n (rounded to a float) must keep exactly k weights, and alpha = (k + 1/2)/n
    # must keep k + 1 (= ceil(k + 1/2)), whatever the float rounding of alpha * n.
    k = data.draw(st.integers(0, n))
    assert kept_count(k / n, n) == k
    if k < n:
        assert kept_count((k + 0.5) / n, n) == k + 1


@given(alpha=alphas, n=st.integers(1, 10**5))
def test_kept_count_is_the_ceiling_away_from_integers(alpha, n):
    # Exact rational ceiling of alpha * n; kept_count only forgives float noise within
    # 1e-6 of an integer, so compare where alpha * n is farther than that from one.
    exact = Fraction(alpha) * n
    if abs(exact - round(exact)) > Fraction(1, 10**5):
        assert kept_count(alpha, n) == math.ceil(exact)


# --------------------------------------------------------------------------- magnitude masks


@settings(max_examples=150, deadline=None)
@given(weights=weight_dicts(), alpha=alphas)
def test_magnitude_masks_keep_the_largest(weights, alpha):
    ranks = magnitude_ranks(weights)
    total = _total(weights)
    # ranks are a permutation of 0..|P|-1 with the tensors' shapes
    assert sorted(_flat(ranks).tolist()) == list(range(total))
    assert all(ranks[n].shape == w.shape for n, w in weights.items())
    masks = masks_from_ranks(ranks, alpha)
    m, w = _flat(masks), _flat(weights).abs()
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert int(m.sum()) == kept_count(alpha, total)
    kept, pruned = w[m == 1], w[m == 0]
    if len(kept) and len(pruned):
        assert kept.min() >= pruned.max()


@settings(max_examples=150, deadline=None)
@given(weights=weight_dicts(ties=True), alpha=alphas)
def test_magnitude_masks_exact_count_with_ties(weights, alpha):
    # Most entries share one of 3 magnitudes: a threshold on |w| could not give the
    # exact count, the ranking must.
    masks = masks_from_ranks(magnitude_ranks(weights), alpha)
    m, w = _flat(masks), _flat(weights).abs()
    assert int(m.sum()) == kept_count(alpha, _total(weights))
    kept, pruned = w[m == 1], w[m == 0]
    if len(kept) and len(pruned):
        assert kept.min() >= pruned.max()


def test_magnitude_ties_many_equal_weights():
    # 100 equal weights: ceil(0.37 * 100) = 37 kept, exactly.
    weights = {"a.weight": torch.ones(10, 5), "b.weight": -torch.ones(50)}
    masks = masks_from_ranks(magnitude_ranks(weights), 0.37)
    assert int(_flat(masks).sum()) == 37


@settings(max_examples=100, deadline=None)
@given(weights=weight_dicts(), a=alphas, b=alphas)
def test_magnitude_masks_are_nested(weights, a, b):
    a1, a2 = max(a, b), min(a, b)
    ranks = magnitude_ranks(weights)
    m1, m2 = masks_from_ranks(ranks, a1), masks_from_ranks(ranks, a2)
    for name in weights:
        assert torch.all(m2[name] <= m1[name])


def test_magnitude_ranks_by_hand():
    # |w| = [3, 1, 2 | 0.5, 4]: order of decreasing magnitude 4, 3, 2, 1, 0.5.
    weights = {"a": torch.tensor([3.0, -1.0, 2.0]), "b": torch.tensor([[0.5, -4.0]])}
    ranks = magnitude_ranks(weights)
    assert ranks["a"].tolist() == [1, 3, 2]
    assert ranks["b"].tolist() == [[4, 0]]
    masks = masks_from_ranks(ranks, 0.4)  # ceil(0.4 * 5) = 2: keep 4 and 3
    assert masks["a"].tolist() == [1.0, 0.0, 0.0]
    assert masks["b"].tolist() == [[0.0, 1.0]]


# --------------------------------------------------------------------------- random ranks


@settings(max_examples=100, deadline=None)
@given(weights=weight_dicts(), a=alphas, b=alphas, seed=st.integers(0, 10**6))
def test_random_masks_count_nested_reproducible(weights, a, b, seed):
    total = _total(weights)
    ranks = random_ranks(weights, seed)
    assert sorted(_flat(ranks).tolist()) == list(range(total))
    again = random_ranks(weights, seed)
    assert all(torch.equal(ranks[n], again[n]) for n in weights)
    a1, a2 = max(a, b), min(a, b)
    m1, m2 = masks_from_ranks(ranks, a1), masks_from_ranks(ranks, a2)
    assert int(_flat(m1).sum()) == kept_count(a1, total)
    assert int(_flat(m2).sum()) == kept_count(a2, total)
    for name in weights:
        assert torch.all(m2[name] <= m1[name])


def test_random_ranks_differ_between_seeds_and_ignore_magnitude():
    weights = {"a": torch.arange(600.0).view(20, 30), "b": torch.arange(400.0)}
    r0, r1 = random_ranks(weights, 0), random_ranks(weights, 1)
    assert not torch.equal(_flat(r0), _flat(r1))
    # Two random permutations of 1000 agree in ~1 place on average; far fewer than 100.
    assert int((_flat(r0) == _flat(r1)).sum()) < 100
    # Independent of the values: same ranks for other weights of the same shapes.
    other = {"a": torch.randn(20, 30), "b": torch.randn(400)}
    assert torch.equal(_flat(random_ranks(other, 0)), _flat(r0))
    # Half the kept entries of a 50% random mask fall in each half of the magnitude order
    # (not magnitude-based): the 50% largest |w| are not all kept.
    mask = _flat(masks_from_ranks(r0, 0.5))
    assert 0 < int(mask[500:].sum()) < 500


def test_layerwise_ranks_by_hand():
    # Layer a (4 entries) and layer b (2 entries). Within-layer ranks by |w|:
    #   a: |0.4| r0, |0.3| r1, |0.2| r2, |0.1| r3 -> scores 1/4, 2/4, 3/4, 4/4
    #   b: |5| r0, |1| r1                         -> scores 1/2, 2/2
    # global order by score (ties: a before b): a0 (.25), a1 (.5), b0 (.5), a2 (.75), a3 (1), b1 (1)
    weights = {"a": torch.tensor([0.1, -0.4, 0.3, -0.2]), "b": torch.tensor([-1.0, 5.0])}
    ranks = layerwise_magnitude_ranks(weights)
    assert ranks["a"].tolist() == [4, 0, 1, 3]
    assert ranks["b"].tolist() == [5, 2]
    # Kept fraction 1/2 -> k = 3: a keeps its 2 largest of 4, b its largest of 2.
    masks = masks_from_ranks(ranks, 0.5)
    assert masks["a"].tolist() == [0, 1, 1, 0] and masks["b"].tolist() == [0, 1]
    # whereas global magnitude keeps the 3 largest overall: 5, 1 (all of b) and 0.4
    glob = masks_from_ranks(magnitude_ranks(weights), 0.5)
    assert glob["a"].tolist() == [0, 1, 0, 0] and glob["b"].tolist() == [1, 1]


@given(weights=weight_dicts(), alpha=alphas)
def test_layerwise_masks_keep_each_layers_fraction_and_largest(weights, alpha):
    ranks = layerwise_magnitude_ranks(weights)
    masks = masks_from_ranks(ranks, alpha)
    total, layers = _total(weights), len(weights)
    assert int(_flat(masks).sum()) == kept_count(alpha, total)
    for name, w in weights.items():
        kept, n = int(masks[name].sum()), w.numel()
        # derivation in layerwise_magnitude_ranks: kept/n - alpha in (-1/n, (layers + 1)/total)
        assert -1 / n - 1e-9 < kept / n - alpha < (layers + 1) / total + 1e-9
        # within a layer the kept entries are the largest |w|
        if 0 < kept < n:
            assert w[masks[name].bool()].abs().min() >= w[~masks[name].bool()].abs().max()


@given(weights=weight_dicts(), a=alphas, b=alphas)
def test_layerwise_masks_are_nested(weights, a, b):
    lo, hi = sorted((a, b))
    ranks = layerwise_magnitude_ranks(weights)
    assert bool((_flat(masks_from_ranks(ranks, lo)) <= _flat(masks_from_ranks(ranks, hi))).all())


# --------------------------------------------------------------------------- Pruner


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3),  # weight 2x1x3x3 = 18 entries
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 2 * 2, 3),  # weight 3x8 = 24 entries
    )
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 2.0)
        net[1].bias.uniform_(-1, 1)
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2.0)
    return net


def test_prunable_weights_lists_exactly_conv_and_linear_weights():
    net = _net()
    pw = prunable_weights(net)
    assert list(pw) == ["0.weight", "4.weight"]
    assert pw["0.weight"] is net[0].weight and pw["4.weight"] is net[4].weight
    nested = nn.Sequential(nn.Sequential(nn.Conv1d(2, 3, 1), nn.BatchNorm1d(3)), nn.Linear(3, 1, bias=False), nn.Conv3d(1, 1, 1))
    assert list(prunable_weights(nested)) == ["0.0.weight", "1.weight", "2.weight"]


@pytest.mark.parametrize("alpha", [0.05, 0.3, 0.5, 0.99, 1.0])
def test_pruner_writes_masks_and_restores(alpha):
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ranks = magnitude_ranks(prunable_weights(net))
    pruner = Pruner(net, ranks)
    assert pruner.total == 18 + 24
    k = pruner.prune_to(alpha)
    assert k == kept_count(alpha, 42)
    masks = masks_from_ranks(ranks, alpha)
    sd = net.state_dict()
    for name in ("0.weight", "4.weight"):
        assert torch.equal(sd[name], before[name] * masks[name])
    assert int(sum((sd[n] != 0).sum() for n in ("0.weight", "4.weight"))) == k  # randn weights are nonzero
    for name in before:  # biases, BN affine parameters and buffers untouched
        if name not in ("0.weight", "4.weight"):
            assert torch.equal(sd[name], before[name]), name
    pruner.restore()
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_pruner_goes_back_up_from_the_original():
    # Pruning to 10% then to 90% gives original * mask(90%), not the 10%-pruned weights.
    net = _net()
    before = {k: v.clone() for k, v in prunable_weights(net).items()}
    ranks = magnitude_ranks(prunable_weights(net))
    pruner = Pruner(net, ranks)
    pruner.prune_to(0.1)
    pruner.prune_to(0.9)
    masks = masks_from_ranks(ranks, 0.9)
    for name, w in prunable_weights(net).items():
        assert torch.equal(w.detach(), before[name] * masks[name])


def test_pruner_rejects_mismatched_ranking():
    net = _net()
    ranks = magnitude_ranks({"0.weight": net[0].weight})
    with pytest.raises(ValueError):
        Pruner(net, ranks)


# --------------------------------------------------------------------------- sparsity_report


def test_sparsity_report_by_hand():
    masks = {"a": torch.tensor([1.0, 0.0, 1.0, 1.0]), "b": torch.zeros(2, 3)}
    rep = sparsity_report(masks)
    # 3 of 4 kept in a, 0 of 6 in b: 3 of 10 overall.
    assert rep["kept"] == 3 and rep["total"] == 10
    assert rep["kept_fraction"] == pytest.approx(0.3)
    assert rep["layers"] == {"a": {"kept": 3, "total": 4}, "b": {"kept": 0, "total": 6}}
    assert math.isnan(sparsity_report({})["kept_fraction"])


@settings(max_examples=50, deadline=None)
@given(weights=weight_dicts(), alpha=alphas)
def test_sparsity_report_matches_kept_count(weights, alpha):
    rep = sparsity_report(masks_from_ranks(magnitude_ranks(weights), alpha))
    assert rep["total"] == _total(weights)
    assert rep["kept"] == kept_count(alpha, rep["total"])


# --------------------------------------------------------------------------- loss_criterion


def test_loss_criterion_bound_by_hand():
    passes = loss_criterion(2.0, 0.1, 0.05)
    # bound = (1 + 0.1) * 2 + 0.05 = 2.25
    assert passes.bound == pytest.approx(2.25)
    assert passes(2.25 - 1e-9, 0.0)
    assert not passes(2.25 + 1e-9, 1.0)
    assert passes(0.0, 0.0)
    assert not passes(float("nan"), 1.0)
    assert not passes(float("inf"), 1.0)
    # zero tolerances: exactly the unpruned loss passes, anything larger fails
    # a non-finite unpruned loss gives a bound that nothing passes (inf <= inf is not enough)
    assert not loss_criterion(float("inf"), 0.0, 0.0)(float("inf"), 1.0)
    assert not loss_criterion(float("nan"), 0.0, 0.0)(1.0, 1.0)
    strict = loss_criterion(0.7, 0.0, 0.0)
    assert strict(0.7, 0.0) and not strict(np.nextafter(0.7, 1.0), 0.0)


@given(
    base=st.floats(0, 100, allow_nan=False),
    rel=st.floats(0, 2, allow_nan=False),
    abs_=st.floats(0, 2, allow_nan=False),
)
def test_loss_criterion_property(base, rel, abs_):
    passes = loss_criterion(base, rel, abs_)
    bound = (1 + rel) * base + abs_
    assert passes.bound == bound
    assert passes(bound, 0.0)
    assert passes(base, 0.0)  # the unpruned model itself always passes
    assert not passes(float(np.nextafter(bound, np.inf)), 1.0)
    assert not passes(float("nan"), 1.0)


# --------------------------------------------------------------------------- accuracy_criterion


def test_accuracy_criterion_by_hand():
    passes = accuracy_criterion(0.95, 0.01)
    # bound = 0.95 - 0.01 = 0.94: accuracy at or above it passes, whatever the loss
    assert passes.bound == pytest.approx(0.94)
    assert passes(float("inf"), 0.94 + 1e-12) and passes(0.0, 0.95)
    assert not passes(0.0, 0.94 - 1e-9)
    assert not passes(0.0, float("nan"))
    exact = accuracy_criterion(0.8, 0.0)
    assert exact(5.0, 0.8) and not exact(5.0, float(np.nextafter(0.8, 0.0)))


# --------------------------------------------------------------------------- robust_answer


def _points(pairs):
    return [dict(alpha=a, loss=l, acc=0.5) for a, l in pairs]


def test_robust_answer_by_hand():
    passes = loss_criterion(1.0, 0.0, 0.0)  # loss <= 1
    # unsorted on purpose; from the top: 1.0 ok, 0.5 ok, 0.3 fails -> answer 0.5, below 0.3;
    # the lucky 0.1 under the failure does not count
    curve = _points([(0.3, 2.0), (1.0, 0.0), (0.1, 0.0), (0.5, 1.0)])
    assert robust_answer(curve, passes) == (0.5, 0.3)
    # everything passes: the smallest point, nothing below
    assert robust_answer(_points([(1.0, 0.0), (0.2, 0.5)]), passes) == (0.2, None)
    # the top point fails: NaN, and it is the failing point
    answer, below = robust_answer(_points([(1.0, 3.0), (0.5, 0.0)]), passes)
    assert math.isnan(answer) and below == 1.0


# --------------------------------------------------------------------------- search_prunability


def _recording(fn):
    calls = []

    def evaluate(alpha):
        calls.append(alpha)
        return fn(alpha), 0.5

    return evaluate, calls


def test_sweep_alphas():
    assert sweep_alphas(0.25, 0.1) == [1.0, 0.75, 0.5, 0.25]
    assert sweep_alphas(0.1, 0.1) == pytest.approx([1.0 - 0.1 * i for i in range(10)])
    assert sweep_alphas(0.001, 0.001)[-1] == 0.001 and len(sweep_alphas(0.001, 0.001)) == 1000
    assert all(a == round(a, 12) for a in sweep_alphas(0.001, 0.001))  # no 0.30000000000000004


def test_search_inverse_loss_closed_form():
    # loss(alpha) = 1/alpha, criterion loss <= 4  <=>  alpha >= 1/4: on the sweep of
    # spacing 1e-3 the answer is exactly 0.25, found by evaluating 1, 0.999, ..., 0.25
    # and stopping at the first failure, 0.249.
    total, h = 10**6, 1e-3
    evaluate, calls = _recording(lambda a: 1.0 / a)
    passes = loss_criterion(4.0, 0.0, 0.0)
    res = search_prunability(evaluate, {"loss": passes}, total, h, 1e-3)
    assert res.alphas["loss"] == 0.25
    assert res.kept("loss") == kept_count(0.25, total) == 250_000
    assert res.total == total and not res.at_lower_limit["loss"]
    assert [c["alpha"] for c in res.curve] == calls == sweep_alphas(h, 1e-3)[:752]
    assert calls[-1] == 0.249
    for c in res.curve:
        assert c["loss"] == pytest.approx(1.0 / c["alpha"])
        assert c["acc"] == 0.5 and c["kept"] == kept_count(c["alpha"], total)


def test_search_non_monotone_curve_reports_the_top_failure():
    # A curve that fails in a narrow pocket [0.70, 0.702] far above the main threshold
    # (0.3): a coarse grid (..., 0.8, 0.6, ...) plus bisection would report ~0.3 and
    # never see the pocket; the sweep evaluates 0.702, 0.701 and 0.700, so the answer
    # is 0.703, the smallest fraction with no failing sweep point above it.
    def loss(a):
        return 10.0 if (0.6995 < a < 0.7025 or a < 0.3) else 0.0

    evaluate, calls = _recording(loss)
    res = search_prunability(evaluate, {"loss": loss_criterion(1.0, 0.0, 0.0)}, 10**6, 1e-3, 1e-3)
    assert res.alphas["loss"] == 0.703
    assert calls[-1] == 0.702  # stops at the first failure from the top
    # The robust rule on the stored curve agrees, as the offline re-analysis needs.
    assert robust_answer(res.curve, loss_criterion(1.0, 0.0, 0.0)) == (0.703, 0.702)


def test_search_isolated_passing_point_below_a_failure_does_not_count():
    # Passes below 0.15 (a lucky region), fails on [0.15, 0.25), passes above: the
    # answer is 0.25 and nothing under the first failure is evaluated.
    def loss(a):
        return 0.0 if (a < 0.15 or a >= 0.25) else 10.0

    evaluate, calls = _recording(loss)
    res = search_prunability(evaluate, {"loss": loss_criterion(1.0, 0.0, 0.0)}, 10**6, 0.05, 1e-3)
    assert res.alphas["loss"] == 0.25
    assert calls == [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2]


def test_search_every_point_passes_is_at_lower_limit():
    evaluate, calls = _recording(lambda a: 0.0)
    res = search_prunability(evaluate, {"loss": loss_criterion(0.0, 0.0, 0.0)}, 5000, 0.1, 0.05)
    assert res.at_lower_limit["loss"]
    assert res.alphas["loss"] == 0.1  # the last sweep point above alpha_min = 0.05
    assert res.kept("loss") == 500
    assert len(calls) == 10
    # alpha_min on the sweep is included
    res = search_prunability(evaluate, {"loss": loss_criterion(0.0, 0.0, 0.0)}, 5000, 0.1, 0.1)
    assert res.alphas["loss"] == 0.1 and res.at_lower_limit["loss"]


def test_search_unpruned_model_fails_gives_nan():
    evaluate, _ = _recording(lambda a: float("nan"))
    res = search_prunability(evaluate, {"loss": loss_criterion(1.0, 0.0, 0.0)}, 100, 1e-3, 1e-3)
    assert math.isnan(res.alphas["loss"]) and math.isnan(res.kept("loss"))
    assert not res.at_lower_limit["loss"]
    assert len(res.curve) == 1  # alpha = 1 fails: nothing below can count


def test_search_never_finer_than_one_weight():
    # total = 10, h = 1e-3: the sweep's 1000 points hold only 10 distinct kept counts;
    # each count is evaluated once, at the largest sweep point with that count, and
    # recorded at the smallest (k - 1)/10 + 0.001, as the robust rule on the whole
    # sweep would. The loss passes iff at least 5 of 10 weights are kept.
    total = 10
    evaluate, calls = _recording(lambda a: 0.0 if kept_count(a, total) >= 5 else 1.0)
    res = search_prunability(evaluate, {"loss": loss_criterion(0.0, 0.0, 0.0)}, total, 1e-3, 1e-3)
    assert [kept_count(a, total) for a in calls] == [10, 9, 8, 7, 6, 5, 4]
    assert calls == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    assert [c["alpha"] for c in res.curve] == [0.901, 0.801, 0.701, 0.601, 0.501, 0.401, 0.301]
    assert res.kept("loss") == 5 and res.alphas["loss"] == 0.401


def test_search_several_criteria_and_recomputable_from_the_curve():
    # loss(alpha) = 1/alpha; criteria loss <= 2 (alpha >= 1/2), loss <= 5 (alpha >= 1/5)
    # and acc(alpha) = alpha >= 0.3. The sweep goes down until the loosest (1/5) fails;
    # robust_answer on the stored curve gives the same answers, which is how other
    # tolerances are recomputed offline, exactly for any tolerance up to the loosest.
    def evaluate(alpha):
        return 1.0 / alpha, alpha

    criteria = {
        "strict": loss_criterion(2.0, 0.0, 0.0),
        "loose": loss_criterion(5.0, 0.0, 0.0),
        "acc": accuracy_criterion(0.3, 0.0),
    }
    res = search_prunability(evaluate, criteria, 10**6, 1e-3, 1e-3)
    assert res.alphas == {"strict": 0.5, "loose": 0.2, "acc": 0.3}
    for name in criteria:
        assert robust_answer(res.curve, criteria[name])[0] == res.alphas[name]
    assert min(c["alpha"] for c in res.curve) == 0.199
    between, _ = robust_answer(res.curve, loss_criterion(3.0, 0.0, 0.0))
    assert between == 0.334  # the smallest sweep point >= 1/3


@given(
    curve=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=60),
    h=st.sampled_from([0.01, 0.02, 0.05]),
    bound=st.floats(0.1, 1.9),
    total=st.sampled_from([7, 30, 10**7]),
)
@settings(max_examples=150, deadline=None)
def test_search_equals_brute_force_on_any_curve(curve, h, bound, total):
    # Any curve, monotone or not, as a function of the kept count: the search's answer
    # equals the robust rule applied to every point of the sweep (brute force).
    alphas = sweep_alphas(h, h)

    def loss(a):
        return curve[min(total - kept_count(a, total), len(curve) - 1)]

    passes = loss_criterion(bound, 0.0, 0.0)
    res = search_prunability(lambda a: (loss(a), 1.0), {"loss": passes}, total, h, h)
    brute, _ = robust_answer([dict(alpha=a, loss=loss(a), acc=1.0) for a in alphas], passes)
    assert res.alphas["loss"] == brute or (math.isnan(brute) and math.isnan(res.alphas["loss"]))
