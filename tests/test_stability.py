"""Tests for the generalization-stability branch (Bartoldson et al. 2020): the pruning
schedule, filter choice and masks (BatchNorm channel included), masks that survive
optimizer steps, the noise control, the instability bookkeeping, the statistics across
runs, the planned runs and the configuration checks. Expected values are worked out by
hand in the comments."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import validate
from torch import nn

from conftest import REPO, quiet
from prunability.config import ConfigError, check_config, check_whole_numbers
from prunability import stability as stability_mod
from prunability.data import digits_split
from prunability.stability import (
    NoiseControl,
    SchedulePruner,
    StabilityError,
    choose,
    filter_scores,
    final_kept,
    following_batchnorm,
    kept_at,
    pruning_epochs,
    targetable_convs,
    targeted_layers,
    train_run,
)
from prunability.stability_analysis import (
    correlation,
    correlations,
    instability,
    last_pruning_epoch,
    mean_stability,
    plan_runs,
    run_group,
    run_outcome,
    stability_percent,
)

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")

# --------------------------------------------------------------------------- schedule


def test_pruning_epochs_follow_the_official_range():
    # range(start, end + 1, period)
    assert pruning_epochs(3, 25, 10) == [3, 13, 23]
    assert pruning_epochs(4, 151, 40) == [4, 44, 84, 124]
    assert pruning_epochs(5, 5, 4) == [5]
    for start, end, period in [(0, 5, 1), (6, 5, 1), (1, 5, 0)]:
        with pytest.raises(StabilityError):
            pruning_epochs(start, end, period)


def test_kept_counts_match_hand_computed_ceilings():
    # N = 10, prune_frac 0.9: final = ceil(0.1 * 10) = 1; T = 4:
    # t=1: ceil(1 + 9 * 3/4) = ceil(7.75) = 8; t=2: ceil(5.5) = 6; t=3: ceil(3.25) = 4; t=4: 1
    assert final_kept(10, 0.9) == 1
    assert [kept_at(10, 0.9, t, 4) for t in range(1, 5)] == [8, 6, 4, 1]
    # N = 64, prune_frac 0.3: final = ceil(44.8) = 45; T = 3:
    # t=1: ceil(45 + 19 * 2/3) = ceil(57.67) = 58; t=2: ceil(51.33) = 52; t=3: 45
    assert [kept_at(64, 0.3, t, 3) for t in range(1, 4)] == [58, 52, 45]
    # a single event goes straight to the final count
    assert kept_at(512, 0.95, 1, 1) == math.ceil(0.05 * 512) == 26


def test_kept_counts_are_exact_where_floats_are_not():
    # (1 - 0.7) * 10 = 3.0000000000000004 in floats, whose ceiling is 4; exactly it is 3
    assert math.ceil((1 - 0.7) * 10) == 4
    assert final_kept(10, 0.7) == 3
    with pytest.raises(StabilityError):
        kept_at(10, 0.5, 0, 3)


def test_kept_counts_never_grow_and_end_at_final():
    for n in (1, 7, 64, 100):
        for frac in (0.05, 0.25, 0.4, 0.95):
            for total in (1, 2, 5, 37):
                counts = [n] + [kept_at(n, frac, t, total) for t in range(1, total + 1)]
                assert all(a >= b for a, b in zip(counts, counts[1:]))
                assert counts[-1] == final_kept(n, frac)


# --------------------------------------------------------------------------- layers and choice


def conv_bn(weights, bias=True) -> nn.Sequential:
    """Conv2d(1 -> len(weights), 1x1) with the given filter values, then BN and ReLU."""
    conv = nn.Conv2d(1, len(weights), 1, bias=bias)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights, dtype=torch.float32).view(-1, 1, 1, 1))
        if bias:
            conv.bias.fill_(0.5)
    return nn.Sequential(conv, nn.BatchNorm2d(len(weights)), nn.ReLU())


def test_filter_scores_l2_and_l1():
    weight = torch.tensor([[3.0, -4.0], [0.0, 1.0]]).view(2, 2, 1, 1)
    assert filter_scores(weight, "l2").tolist() == [5.0, 1.0]
    assert filter_scores(weight, "l1").tolist() == [7.0, 1.0]


def test_choose_smallest_largest_random_among_kept_filters():
    scores = filter_scores(conv_bn([3.0, 1.0, 4.0, 2.0])[0].weight)  # |w| = 3, 1, 4, 2
    alive = torch.ones(4, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    assert choose(scores, alive, 2, "smallest", g).tolist() == [1, 3]
    assert choose(scores, alive, 2, "largest", g).tolist() == [0, 2]
    alive[1] = False  # filter 1 is gone: the smallest kept is filter 3 (score 2)
    assert choose(scores, alive, 1, "smallest", g).tolist() == [3]
    assert choose(scores, alive, 1, "largest", g).tolist() == [2]
    drawn = choose(scores, alive, 2, "random", torch.Generator().manual_seed(5))
    assert len(set(drawn.tolist())) == 2 and 1 not in drawn.tolist()
    assert drawn.tolist() == choose(scores, alive, 2, "random", torch.Generator().manual_seed(5)).tolist()
    with pytest.raises(StabilityError):
        choose(scores, alive, 4, "smallest", g)


def test_choose_properties_on_random_scores():
    rng = torch.Generator().manual_seed(1)
    for _ in range(200):
        n = int(torch.randint(1, 20, (1,), generator=rng))
        scores = torch.rand(n, generator=rng)
        alive = torch.rand(n, generator=rng) < 0.7
        k = int(torch.randint(0, int(alive.sum()) + 1, (1,), generator=rng))
        for target in ("smallest", "largest", "random"):
            gone = choose(scores, alive, k, target, rng)
            assert len(set(gone.tolist())) == k and bool(alive[gone].all())
            kept = alive.clone()
            kept[gone] = False
            if k and kept.any() and target != "random":
                if target == "smallest":
                    assert scores[gone].max() <= scores[kept].min()
                else:
                    assert scores[gone].min() >= scores[kept].max()


def test_kept_counts_accept_numpy_fractions():
    assert final_kept(10, np.float64(0.7)) == 3


def test_ties_go_to_the_lower_index():
    scores = torch.tensor([1.0, 1.0, 1.0])
    assert choose(scores, torch.ones(3, dtype=torch.bool), 2, "smallest", None).tolist() == [0, 1]


def test_targetable_convs_skip_the_nin_head_and_resnet_shortcuts():
    from prunability.models import build_model

    nin = build_model("nin", in_channels=1, num_classes=10, image_size=8, depth=2, width=1, batchnorm=True,
                      dropout=0.0, base_width=4)
    names = list(targetable_convs(nin))
    assert len(names) == 6 and not any(n.startswith("head") for n in names)
    assert following_batchnorm(nin, names[-1])[0] == "blocks.1.7"
    resnet = build_model("resnet18k", in_channels=3, num_classes=10, image_size=32, depth=1, width=1,
                         batchnorm=True, dropout=0.0, base_width=2)
    names = list(targetable_convs(resnet))
    assert len(names) == 1 + 8 * 2 and not any("shortcut" in n for n in names)
    no_bn = build_model("nin", in_channels=1, num_classes=10, image_size=8, depth=1, width=1, batchnorm=False,
                        dropout=0.0, base_width=4)
    assert following_batchnorm(no_bn, "blocks.0.0") is None


def test_layer_index_out_of_range_or_twice_is_refused():
    model = conv_bn([1.0, 2.0])
    with pytest.raises(StabilityError, match=r"layers\[0\].index: 1 is out of range"):
        targeted_layers(model, [{"index": 1, "prune_frac": 0.5, "start_epoch": 1, "end_epoch": 1}], 1)
    twice = [{"index": 0, "prune_frac": 0.5, "start_epoch": 1, "end_epoch": 1},
             {"index": -1, "prune_frac": 0.5, "start_epoch": 1, "end_epoch": 1}]
    with pytest.raises(StabilityError, match="already targeted"):
        targeted_layers(model, twice, 1)


def one_layer(model, frac=0.5, start=1, end=1, period=1):
    return targeted_layers(model, [{"index": 0, "prune_frac": frac, "start_epoch": start, "end_epoch": end}], period)


def test_structured_pruning_masks_the_filter_bias_and_bn_channel():
    model = conv_bn([3.0, 1.0, 4.0, 2.0])
    pruner = SchedulePruner(model, one_layer(model), "smallest", "l2", torch.Generator().manual_seed(0))
    # one event: keep ceil(0.5 * 4) = 2, remove the two smallest filters (1 and 3)
    assert pruner.prune(1) == 2
    conv, bn = model[0], model[1]
    assert conv.weight.flatten().tolist() == [3.0, 0.0, 4.0, 0.0]
    assert conv.bias.tolist() == [0.5, 0.0, 0.5, 0.0]
    assert bn.weight.tolist() == [1.0, 0.0, 1.0, 0.0] and bn.bias.tolist() == [0.0] * 4
    assert pruner.kept() == {"0": 2}
    x = torch.randn(8, 1, 3, 3)
    for mode in (model.train, model.eval):
        mode()
        out = model(x)
        assert torch.all(out[:, [1, 3]] == 0) and torch.any(out[:, [0, 2]] != 0)
    assert pruner.prune(2) == 0  # not a pruning epoch


def test_largest_and_magnitude_targets():
    model = conv_bn([3.0, 1.0, 4.0, 2.0])
    SchedulePruner(model, one_layer(model, frac=0.25), "largest", "l2", None).prune(1)
    assert model[0].weight.flatten().tolist() == [3.0, 1.0, 0.0, 2.0]  # keep ceil(0.75 * 4) = 3
    # unstructured: weights of a 2 x 3 layer, keep ceil(0.5 * 6) = 3 of largest |w|; BN untouched
    model = nn.Sequential(nn.Conv2d(3, 2, 1, bias=False), nn.BatchNorm2d(2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, -5.0, 0.3], [2.0, -0.2, 0.05]]).view(2, 3, 1, 1))
    pruner = SchedulePruner(model, one_layer(model), "magnitude", "l2", None)
    assert pruner.prune(1) == 3
    assert model[0].weight.flatten().tolist() == pytest.approx([0.0, -5.0, 0.3, 2.0, 0.0, 0.0])
    assert model[1].weight.tolist() == [1.0, 1.0]


def test_a_removed_filter_stays_zero_through_optimizer_steps():
    torch.manual_seed(0)
    model = conv_bn([3.0, 1.0, 4.0, 2.0])
    pruner = SchedulePruner(model, one_layer(model), "smallest", "l2", None)
    pruner.prune(1)
    kept_before = model[0].weight[[0, 2]].detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 1, 3, 3), torch.randn(16, 4, 3, 3)
    for _ in range(5):
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        pruner.after_step()
        for tensor in (model[0].weight[[1, 3]], model[0].bias[[1, 3]], model[1].weight[[1, 3]], model[1].bias[[1, 3]]):
            assert torch.all(tensor == 0)
    assert not torch.equal(model[0].weight[[0, 2]], kept_before)  # the kept filters did train


def test_iterative_schedule_reaches_the_final_count():
    model = conv_bn([float(i + 1) for i in range(10)])
    layers = one_layer(model, frac=0.9, start=2, end=8, period=2)  # epochs 2, 4, 6, 8: T = 4
    pruner = SchedulePruner(model, layers, "smallest", "l2", None)
    removed = [pruner.prune(epoch) for epoch in range(1, 10)]
    # kept 8, 6, 4, 1 (test above): removed 2, 2, 2, 3 at epochs 2, 4, 6, 8
    assert removed == [0, 2, 0, 2, 0, 2, 0, 3, 0]
    assert model[0].weight.flatten().tolist() == [0.0] * 9 + [10.0]


# --------------------------------------------------------------------------- noise control


def noise_model():
    model = conv_bn([3.0, 1.0, 4.0, 2.0])
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        model[1].bias.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
        model[1].running_mean.copy_(torch.tensor([1.0, 1.0, 1.0, 1.0]))
    return model


def test_zero_noise_with_restore_holds_then_restores_after_n_batches():
    model = noise_model()
    control = NoiseControl(model, one_layer(model, frac=0.25), "largest", "l2", "zero", 2, "new", True, None)
    assert control.event(1) == 1  # keep ceil(0.75 * 4) = 3: filter 2 (|w| = 4) is held
    conv, bn = model[0], model[1]
    assert conv.weight.flatten().tolist() == [3.0, 1.0, 0.0, 2.0] and conv.bias[2] == 0
    assert bn.weight[2] == 0 and bn.bias[2] == 0
    for _ in range(2):  # the two held batches; training meanwhile moves the values
        control.before_batch()
        assert conv.weight[2].item() == 0 and bn.weight[2] == 0
        with torch.no_grad():
            conv.weight.add_(1.0)
            bn.running_mean.add_(1.0)
    control.before_batch()  # the batch after the hold: the values saved at the event are back
    assert conv.weight[2].item() == 4.0 and conv.bias[2].item() == 0.5
    assert (bn.weight[2].item(), bn.bias[2].item(), bn.running_mean[2].item()) == (3.0, pytest.approx(0.3), 1.0)
    assert conv.weight[0].item() == 5.0  # the other filters keep what training gave them
    assert not control.active and control.targeted["0"].tolist() == [False, False, True, False]


def test_zero_noise_without_restore_lets_the_filter_regrow_and_never_touches_bn():
    model = noise_model()
    control = NoiseControl(model, one_layer(model, frac=0.25), "largest", "l2", "zero", 1, "new", False, None)
    control.event(1)
    assert model[0].weight[2].item() == 0 and model[1].weight[2].item() == 3.0
    control.before_batch()
    with torch.no_grad():
        model[0].weight.add_(0.5)  # a training step
    control.before_batch()  # hold over: nothing restored
    assert model[0].weight[2].item() == 0.5 and not control.active


def test_cumulative_hold_targets_every_filter_so_far():
    model = noise_model()
    layers = one_layer(model, frac=0.5, start=1, end=2, period=1)  # T = 2: keep ceil(2 + 2/2) = 3, then 2
    control = NoiseControl(model, layers, "largest", "l2", "zero", 1, "all", True, None)
    assert control.event(1) == 1 and control.held["0"].tolist() == [2]  # |w| = 4
    control.before_batch()
    assert control.event(2) == 1  # the earlier hold ends (restored), then filters 2 and 0 (|w| = 3) are held
    assert control.held["0"].tolist() == [0, 2]
    assert model[0].weight.flatten().tolist() == [0.0, 1.0, 0.0, 2.0]
    control.before_batch()
    control.before_batch()
    assert model[0].weight.flatten().tolist() == [3.0, 1.0, 4.0, 2.0]


def test_gaussian_noise_uses_the_first_untargeted_filters_std_and_leaves_others_alone():
    model = nn.Sequential(nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 3.0], [10.0, 10.0], [0.0, 2.0]]).view(3, 2, 1, 1))
    control = NoiseControl(model, one_layer(model, frac=0.3), "largest", "l2", "gaussian", 0, "new", True,
                           torch.Generator().manual_seed(0))
    assert control.event(1) == 0  # keep ceil((1 - 0.3) * 3) = ceil(2.1) = 3 of 3: nothing to target
    assert control.held == {} and not control.active
    control = NoiseControl(model, one_layer(model, frac=0.5), "largest", "l2", "gaussian", 0, "new", True,
                           torch.Generator().manual_seed(0))
    assert control.event(1) == 1  # keep ceil(1.5) = 2: filter 1 (norm 14.1) targeted
    # std of filter 0's weights [1, 3] (unbiased) = sqrt(2); the noise added is g * sqrt(2)
    expected = torch.tensor([10.0, 10.0]) + torch.randn(2, generator=torch.Generator().manual_seed(0)) * math.sqrt(2)
    assert model[0].weight[1].flatten().tolist() == pytest.approx(expected.tolist())
    assert model[0].weight[[0, 2]].flatten().tolist() == [1.0, 3.0, 0.0, 2.0]
    control.before_batch()  # batches 0: restored before the first batch
    assert model[0].weight[1].flatten().tolist() == [10.0, 10.0]


def test_a_hold_lasts_its_batches_when_another_layer_is_pruned_meanwhile():
    # two layers on staggered schedules: layer 0 at epoch 1, layer 1 at epoch 2; a hold of
    # 5 batches from layer 0's event must not end at layer 1's event two batches later
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
    with torch.no_grad():
        for conv in (model[0], model[2]):
            conv.weight.copy_(torch.arange(1.0, 1.0 + conv.weight.numel()).view_as(conv.weight))
    layers = targeted_layers(model, [{"index": 0, "prune_frac": 0.25, "start_epoch": 1, "end_epoch": 1},
                                     {"index": 1, "prune_frac": 0.25, "start_epoch": 2, "end_epoch": 2}], 1)
    control = NoiseControl(model, layers, "largest", "l2", "zero", 5, "new", True, None)
    assert control.event(1) == 1  # layer 0: filter 3 (the largest) held
    for _ in range(2):
        control.before_batch()
    assert control.event(2) == 1  # layer 1: its filter 3 held; layer 0's hold goes on
    assert model[0].weight[3].item() == 0 and model[2].weight[3].abs().sum().item() == 0
    for batch in range(3, 6):  # layer 0's batches 3-5, layer 1's 1-3
        control.before_batch()
        assert model[0].weight[3].item() == 0, batch
    control.before_batch()  # layer 0's hold is over: restored; layer 1 still held (its batch 4)
    assert model[0].weight[3].item() == 4.0 and model[2].weight[3].abs().sum().item() == 0
    control.before_batch()
    control.before_batch()  # layer 1's hold is over too
    assert model[2].weight[3].flatten().tolist() == [13.0, 14.0, 15.0, 16.0] and not control.active


# --------------------------------------------------------------------------- bookkeeping


def log(stabilities: dict, test_acc, train_acc=None) -> pd.DataFrame:
    """A per-epoch log: epochs 1..n, pruning at the epochs in ``stabilities``."""
    n = len(test_acc)
    train_acc = train_acc or [1.0] * n
    return pd.DataFrame({
        "epoch": range(1, n + 1), "train_acc": train_acc, "test_acc": test_acc,
        "pruned_epoch": [e in stabilities for e in range(1, n + 1)],
        "stability": [stabilities.get(e, np.nan) for e in range(1, n + 1)],
    })


def test_instability_and_stability_on_hand_numbers():
    assert instability(0.80, 0.60) == pytest.approx(0.25)
    assert stability_percent(0.25) == pytest.approx(75.0)
    assert instability(0.50, 0.55) == pytest.approx(-0.1)  # accuracy rose: stability 110%
    assert stability_percent(-0.1) == pytest.approx(110.0)
    assert math.isnan(instability(0.0, 0.1))


def test_mean_stability_best_accuracy_and_gap_after_pruning():
    epochs = log({2: 75.0, 4: 90.0}, [0.5, 0.9, 0.6, 0.7, 0.8, 0.75], [0.6, 0.95, 0.7, 0.8, 0.9, 1.0])
    assert mean_stability(epochs) == pytest.approx(82.5)  # (75 + 90) / 2
    assert last_pruning_epoch(epochs) == 4
    outcome = run_outcome(epochs)
    # best test accuracy from epoch 4 on: 0.8 at epoch 5 (0.9 at epoch 2 is before the end of pruning)
    assert (outcome["best_test_acc"], outcome["best_epoch"]) == (0.8, 5)
    assert outcome["gap_at_best"] == pytest.approx(0.1)  # 0.9 - 0.8
    assert outcome["pruning_epochs"] == 2 and outcome["final_test_acc"] == 0.75


def test_runs_without_pruning_or_pruned_only_at_the_start_get_100_percent():
    never = log({}, [0.5, 0.9, 0.7])
    at_start = log({1: 60.0}, [0.5, 0.9, 0.7])
    for epochs in (never, at_start):
        assert mean_stability(epochs) == 100.0
        assert last_pruning_epoch(epochs) == 0
        outcome = run_outcome(epochs)
        assert (outcome["best_test_acc"], outcome["best_epoch"]) == (0.9, 2)  # every epoch counts
    assert run_outcome(log({3: 80.0}, [0.5, 0.9, 0.7, 0.7]))["best_epoch"] == 3  # first of equal maxima


# --------------------------------------------------------------------------- across runs


def test_kendall_and_pearson_on_a_hand_example():
    # x = 1, 2, 3, 4; y = 1, 3, 2, 4: 5 concordant pairs, 1 discordant: tau = (5 - 1) / 6;
    # Pearson: deviations (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5): r = 4 / 5
    x, y = [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]
    row = correlation(x, y, np.ones((3, 4), dtype=int), 0.95)  # every resample = the sample itself
    assert row["kendall_tau_b"] == pytest.approx(4 / 6) and row["kendall_tau_a"] == pytest.approx(4 / 6)
    assert row["pearson_r"] == pytest.approx(0.8)
    assert (row["pearson_r_low"], row["pearson_r_high"]) == (pytest.approx(0.8), pytest.approx(0.8))
    assert (row["kendall_tau_b_low"], row["kendall_tau_b_high"]) == (pytest.approx(4 / 6), pytest.approx(4 / 6))
    # a resample drawing runs 1, 1, 2, 4 (counts 2, 1, 0, 1): x 1, 1, 2, 4 and y 1, 1, 3, 4;
    # tau_b: 5 concordant, 1 pair tied in both; n0 = 6, n1 = n2 = 1: 5 / sqrt(5 * 5) = 1
    row = correlation(x, y, np.array([[2, 1, 0, 1]]), 0.95)
    assert row["kendall_tau_b_low"] == pytest.approx(1.0)
    assert correlation([1.0], [2.0], np.ones((2, 1)), 0.95) == {"n": 1}


def test_pearson_is_nan_in_a_resample_where_stability_or_accuracy_is_constant():
    # runs 0 and 1 share stability 88.4; a resample drawing only them (counts 2, 1, 0) has a
    # constant x, so r is undefined there (NaN, as scipy's pearsonr), not the +-1 or 0 that
    # rounding in the weighted mean would give; likewise a constant y (runs 1, 2 at 0.95)
    x, y = [88.4, 88.4, 97.25], [0.9537037, 0.95, 0.95]
    row = correlation(x, y, np.array([[2, 1, 0], [0, 0, 3], [0, 2, 1]]), 0.95)
    assert math.isnan(row["pearson_r_low"]) and math.isnan(row["pearson_r_high"])
    row = correlation(x, y, np.array([[2, 1, 0], [1, 1, 1]]), 0.95)
    assert row["pearson_r_low"] == row["pearson_r_high"] == pytest.approx(row["pearson_r"])
    assert math.isnan(correlation([88.4] * 3, [0.9, 0.95, 0.97], np.ones((2, 3), dtype=int), 0.95)["pearson_r"])


def test_correlations_per_set_of_runs():
    runs = pd.DataFrame({
        "kind": ["prune", "prune", "prune", "baseline", "noise", "noise"],
        "mean_stability": [90.0, 95.0, 99.0, 100.0, 97.0, 98.0],
        "best_test_acc": [0.8, 0.7, 0.75, 0.6, 0.65, 0.7],
        "gap_at_best": [0.1, 0.2, 0.15, 0.3, 0.2, 0.25],
    })
    table = correlations(runs, {"resamples": 50, "seed": 0, "level": 0.9})
    assert set(zip(table["runs"], table["y"])) == {(s, y) for s in ("pruning", "noise", "all")
                                                   for y in ("best_test_acc", "gap_at_best")}
    pruning = table[(table["runs"] == "pruning") & (table["y"] == "best_test_acc")].iloc[0]
    # stability 90, 95, 99, 100 against 0.8, 0.7, 0.75, 0.6: concordant (95, 99) only -> (1 - 5) / 6
    assert pruning["n"] == 4 and pruning["kendall_tau_b"] == pytest.approx(-4 / 6)
    assert pruning["kendall_tau_b_low"] <= pruning["kendall_tau_b_high"]
    only_pruning = correlations(runs.iloc[:4], {"resamples": 10, "seed": 0, "level": 0.9})
    assert set(only_pruning["runs"]) == {"pruning"}  # "all" would repeat the same runs


def test_plan_runs_names_and_settings():
    settings = {"targets": ["smallest", "magnitude"], "retrain_periods": [4, 40], "seeds": [0, 1], "baseline": True,
                "noise": {"modes": ["zero"], "target": "largest"}}
    runs = plan_runs(settings)
    assert len(runs) == 2 * 2 * 2 + 1 * 2 * 2 + 2
    assert runs["magnitude-p40-s1"] == {"kind": "prune", "target": "magnitude", "retrain_period": 40, "seed": 1}
    assert runs["noise-zero-p4-s0"] == {"kind": "noise", "target": "largest", "mode": "zero", "retrain_period": 4,
                                        "seed": 0}
    assert runs["baseline-s1"]["kind"] == "baseline"
    assert [run_group(runs[n]) for n in ("smallest-p4-s0", "noise-zero-p4-s0", "baseline-s0")] == [
        "smallest", "noise-zero", "baseline"]


# --------------------------------------------------------------------------- a run


SETTINGS = {
    "score": "l2",
    "layers": [{"index": -1, "prune_frac": 0.5, "start_epoch": 2, "end_epoch": 3}],
    "noise": {"batches": 3, "filters": "new", "restore": True},
    "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 64, "weight_decay": 0.0, "epochs": 4,
              "lr_milestones": [3], "lr_decay": 0.1, "eval_batch_size": 512},
}
MODEL = {"arch": "nin", "base_width": 8, "head_relu": False}
ARCH = {"depth": 1, "width": 1, "batchnorm": True, "dropout": 0.0}


@pytest.fixture(scope="module")
def split():
    return digits_split(0.3, 0)


def test_a_run_logs_each_event_and_is_deterministic(split):
    run = {"kind": "prune", "target": "largest", "retrain_period": 1, "seed": 0}
    result = train_run(run, SETTINGS, MODEL, ARCH, split, "cpu", True, log=quiet)
    epochs = pd.DataFrame(result.epochs)
    assert epochs["pruned_epoch"].tolist() == [False, True, True, False]
    # 8 filters, keep ceil(0.5 * 8) = 4 in two events: ceil(4 + 4/2) = 6, then 4
    assert epochs["removed"].tolist() == [0, 2, 2, 0] and epochs["kept.blocks.0.6"].tolist() == [8, 6, 4, 4]
    events = epochs[epochs["pruned_epoch"]]
    expected = (events["pre_prune_test_acc"] - events["test_acc"]) / events["pre_prune_test_acc"]
    assert events["instability"].tolist() == pytest.approx(expected.tolist())
    assert epochs["lr"].tolist() == pytest.approx([0.01, 0.01, 0.01, 0.001])
    assert result.summary["mean_stability"] == pytest.approx(100 * (1 - expected).mean())
    assert result.summary["last_pruning_epoch"] == 3 and result.summary["best_epoch"] >= 3
    again = train_run(run, SETTINGS, MODEL, ARCH, split, "cpu", True, log=quiet)
    assert pd.DataFrame(again.epochs).drop(columns="wall_time_s").equals(epochs.drop(columns="wall_time_s"))


def test_baseline_and_noise_runs(split):
    baseline = train_run({"kind": "baseline", "target": None, "retrain_period": None, "seed": 0},
                         {"train": SETTINGS["train"]}, MODEL, ARCH, split, "cpu", True, log=quiet)
    assert baseline.summary["mean_stability"] == 100.0 and baseline.summary["pruning_epochs"] == 0
    noise = train_run({"kind": "noise", "target": "largest", "mode": "zero", "retrain_period": 1, "seed": 0},
                      SETTINGS, MODEL, ARCH, split, "cpu", True, log=quiet)
    epochs = pd.DataFrame(noise.epochs)
    assert epochs["removed"].tolist() == [0, 2, 2, 0]  # targeted on the same schedule, never removed
    assert noise.summary["pruning_epochs"] == 2


# --------------------------------------------------------------------------- configuration


def config_with(**section) -> dict:
    config = yaml.safe_load((REPO / "configs" / "stability-cpu.yaml").read_text())
    config["generalization_stability"].update(section)
    validate(config, SCHEMA)
    return config


def test_the_branch_is_off_by_default_and_the_presets_pass():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(config, SCHEMA)
    assert config["generalization_stability"]["enabled"] is False
    assert config["generalization_stability"]["train"]["epochs"] == 325
    check_config(config_with())


@pytest.mark.parametrize("change, message", [
    ({"layers": [{"index": -1, "prune_frac": 0.5, "start_epoch": 5, "end_epoch": 4}]},
     r"layers\[0\].end_epoch: 4 is before start_epoch 5"),
    ({"layers": [{"index": -1, "prune_frac": 0.5, "start_epoch": 5, "end_epoch": 61}]},
     r"layers\[0\].end_epoch: 61 is after the last epoch"),
    ({"layers": [{"index": -1, "prune_frac": 0.5, "start_epoch": 1, "end_epoch": 4},
                 {"index": -1, "prune_frac": 0.3, "start_epoch": 1, "end_epoch": 4}]}, "an index is given twice"),
    ({"targets": [], "baseline": False, "noise": {"modes": []}}, "no runs"),
])
def test_cross_key_errors_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        check_config(config_with(**change))


def test_milestones_and_architecture_are_checked():
    config = config_with()
    config["generalization_stability"]["train"]["lr_milestones"] = [50, 25]
    with pytest.raises(ConfigError, match="lr_milestones"):
        check_config(config)
    config = config_with()
    config["model"]["arch"] = "mlp"
    with pytest.raises(ConfigError, match="generalization_stability.enabled: model.arch mlp"):
        check_config(config)
    config["generalization_stability"]["enabled"] = False
    check_config(config)  # the section is not checked when the branch is off


@pytest.mark.parametrize("key, value, message", [
    (("layers", 0, "prune_frac"), float("nan"), r"layers.0.prune_frac: nan is not a finite number"),
    (("train", "lr"), float("nan"), r"train.lr: nan is not a finite number"),
    (("train", "lr"), float("inf"), r"train.lr: inf is not a finite number"),
    (("train", "weight_decay"), float("nan"), r"train.weight_decay: nan"),
    (("train", "lr_decay"), float("nan"), r"train.lr_decay: nan"),
    (("layers", 0, "start_epoch"), 2.0, r"layers.0.start_epoch: 2.0 is not a whole number"),
    (("layers", 1, "index"), -3.0, r"layers.1.index: -3.0 is not a whole number"),
    (("retrain_periods", 0), 2.0, r"retrain_periods.0: 2.0 is not a whole number"),
    (("seeds", 1), 1.0, r"seeds.1: 1.0 is not a whole number"),
    (("noise", "batches"), 16.0, r"noise.batches: 16.0 is not a whole number"),
    (("train", "epochs"), 60.0, r"train.epochs: 60.0 is not a whole number"),
    (("train", "batch_size"), 32.0, r"train.batch_size: 32.0 is not a whole number"),
    (("train", "lr_milestones", 0), 45.0, r"train.lr_milestones.0: 45.0 is not a whole number"),
])
def test_values_the_schema_lets_through_but_no_run_could_use_name_the_key(key, value, message):
    # the schema takes .nan and .inf for numbers and 2.0 for integers: every run's job
    # would fail (a nan learning rate "diverges", range(2.0, ...) raises), so stop first
    config = config_with()
    section = config["generalization_stability"]
    for part in key[:-1]:
        section = section[part]
    section[key[-1]] = value
    validate(config, SCHEMA)
    with pytest.raises(ConfigError, match="generalization_stability." + message):
        check_whole_numbers(config, SCHEMA)
        check_config(config)


def test_the_schema_refuses_a_seed_torch_cannot_take():
    config = config_with()
    config["generalization_stability"]["seeds"] = [2**64]
    with pytest.raises(Exception, match=r"(?s)greater than the maximum.*\['generalization_stability'\]\['seeds'\]"):
        validate(config, SCHEMA)
    config["generalization_stability"]["seeds"] = [2**64 - 1]
    validate(config, SCHEMA)


@pytest.mark.parametrize("bad", [
    {"targets": ["biggest"]}, {"retrain_periods": [0]}, {"seeds": []}, {"score": "l3"},
    {"layers": [{"index": -1, "prune_frac": 1.0, "start_epoch": 1, "end_epoch": 2}]},
    {"layers": [{"index": -1, "prune_frac": 0.5, "start_epoch": 1}]},
    {"noise": {"modes": ["uniform"]}}, {"noise": {"batches": -1}}, {"train": {"lr_decay": 2.0}},
    {"unknown_key": 1},
])
def test_schema_refuses_bad_values(bad):
    config = yaml.safe_load((REPO / "configs" / "stability-cpu.yaml").read_text())
    config["generalization_stability"] = copy.deepcopy(bad)
    with pytest.raises(Exception, match="generalization_stability"):
        validate(config, SCHEMA)


# --------------------------------------------------------------------------- figures


def test_figures_on_full_and_degenerate_inputs(tmp_path):
    from prunability.figures import stability as figures

    runs = pd.DataFrame({
        "run": ["smallest-p2-s0", "noise-zero-p2-s0", "baseline-s0"], "kind": ["prune", "noise", "baseline"],
        "group": ["smallest", "noise-zero", "baseline"], "retrain_period": [2, 2, None], "seed": [0, 0, 0],
        "mean_stability": [90.0, 97.0, 100.0], "best_test_acc": [0.8, 0.85, 0.9], "gap_at_best": [0.2, 0.15, 0.1],
    })
    epochs = pd.concat([log({2: 90.0}, [0.5, 0.8, 0.8]).assign(run=name, pre_prune_test_acc=[np.nan, 0.88, np.nan])
                        for name in runs["run"]], ignore_index=True)
    table = correlations(runs, {"resamples": 20, "seed": 0, "level": 0.9})
    for name, frame, corr in [("full", runs, table), ("one", runs.iloc[:1], table.iloc[:0]),
                              ("baseline", runs.iloc[2:], table.iloc[:0]), ("none", runs.iloc[:0], table.iloc[:0])]:
        figures.stability_vs_accuracy(frame, corr, tmp_path / f"scatter-{name}.png")
        figures.stability_curves(epochs, frame, tmp_path / f"curves-{name}.png")
        for figure in ("scatter", "curves"):
            assert (tmp_path / f"{figure}-{name}.png").read_bytes()[:4] == b"\x89PNG"
    constant = runs.assign(mean_stability=100.0)  # tau undefined: the title says so
    figures.stability_vs_accuracy(constant, correlations(constant, {"resamples": 5, "seed": 0, "level": 0.9}),
                                tmp_path / "constant.png")


def test_the_scatter_takes_more_retrain_periods_than_it_has_markers(tmp_path):
    # retrain_periods has no upper length; with 8 periods (7 markers) the figure must still draw
    from prunability.figures import stability as figures

    periods = list(range(1, 9))
    runs = pd.DataFrame({
        "run": [f"smallest-p{p}-s0" for p in periods] + ["baseline-s0"], "kind": ["prune"] * 8 + ["baseline"],
        "group": ["smallest"] * 8 + ["baseline"], "retrain_period": periods + [None], "seed": [0] * 9,
        "mean_stability": [90.0 + p for p in periods] + [100.0], "best_test_acc": [0.8 + p / 100 for p in periods] + [0.9],
        "gap_at_best": [0.1] * 9,
    })
    table = correlations(runs, {"resamples": 20, "seed": 0, "level": 0.9})
    figures.stability_vs_accuracy(runs, table, tmp_path / "scatter.png")
    assert (tmp_path / "scatter.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- resume


class Interrupt(Exception):
    pass


def interrupt_at(epoch: int, lines: list[str]):
    """A log callback that stops the run when epoch ``epoch`` is logged (before that
    epoch's checkpoint is written, so the newest checkpoint is of the epoch before)."""

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith(f"epoch {epoch:4d}/"):
            raise Interrupt(line)

    return log


# 1257 training images in batches of 64: 20 batches per epoch. Layer -1 is pruned (or
# held) at the end of epochs 2 and 4, layer -2 at the end of epoch 2; a hold lasts 30
# batches, so the holds of epoch 2 are still on (10 batches to go) at the checkpoint of
# epoch 3, the one an interruption at epoch 4 resumes from. Dropout draws from the global RNG.
RESUME_SETTINGS = {
    "score": "l2",
    "layers": [{"index": -2, "prune_frac": 0.5, "start_epoch": 2, "end_epoch": 2},
               {"index": -1, "prune_frac": 0.5, "start_epoch": 2, "end_epoch": 4}],
    "noise": {"batches": 30, "filters": "new", "restore": True},
    "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 64, "weight_decay": 0.0, "epochs": 5,
              "lr_milestones": [3], "lr_decay": 0.1, "eval_batch_size": 512},
}
RESUME_ARCH = dict(ARCH, dropout=0.2)
RESUME_RUNS = {
    "prune": {"kind": "prune", "target": "random", "retrain_period": 2, "seed": 0},
    "gaussian": {"kind": "noise", "target": "largest", "mode": "gaussian", "retrain_period": 2, "seed": 0},
    "zero": {"kind": "noise", "target": "largest", "mode": "zero", "retrain_period": 2, "seed": 1},
}


def resumable(run, split, checkpoint, settings=RESUME_SETTINGS, log=quiet, **kw):
    return train_run(run, settings, MODEL, RESUME_ARCH, split, "cpu", True, log=log, checkpoint=checkpoint, **kw)


def same_epochs(a, b):
    pd.testing.assert_frame_equal(pd.DataFrame(a.epochs).drop(columns="wall_time_s"),
                                  pd.DataFrame(b.epochs).drop(columns="wall_time_s"), check_exact=True)


def same_state(a, b):
    """Equal nested checkpoint contents: tensors bit for bit, numbers exactly (NaN = NaN)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            same_state(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same_state(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b)
    else:
        assert a == b


def final_state(path):
    """A finished run's checkpoint (the last epoch is checkpointed too), less wall times."""
    state = torch.load(path, weights_only=True)
    del state["elapsed"]
    for row in state["epochs"]:
        del row["wall_time_s"]
    return state


@pytest.mark.parametrize("name", list(RESUME_RUNS))
def test_an_interrupted_run_resumes_bit_identical(split, tmp_path, name):
    run = RESUME_RUNS[name]
    straight = resumable(run, split, tmp_path / "straight.pt")
    assert straight.summary["resumed_from_epoch"] is None
    checkpoint = tmp_path / "killed.pt"
    lines = []
    with pytest.raises(Interrupt):
        resumable(run, split, checkpoint, log=interrupt_at(4, lines))
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["epoch"] == 3 and len(saved["epochs"]) == 3
    if run["kind"] == "noise":  # both layers' holds of epoch 2 are in progress, 10 batches to go
        assert saved["noise"]["remaining"] == {"blocks.0.3": 10, "blocks.0.6": 10} and saved["noise"]["saved"]
    else:
        assert saved["pruner"]["masks"] and not all(alive.all() for alive in saved["pruner"]["alive"].values())
    lines = []
    resumed = resumable(run, split, checkpoint, log=lines.append)
    assert resumed.summary["resumed_from_epoch"] == 3
    assert [line[:11] for line in lines if line.startswith("epoch ")] == ["epoch    4/", "epoch    5/"]
    same_epochs(resumed, straight)
    assert pd.DataFrame(straight.epochs)["pruned_epoch"].tolist() == [False, True, False, True, False]
    drop = ("wall_time_s", "resumed_from_epoch")
    assert ({k: v for k, v in resumed.summary.items() if k not in drop}
            == {k: v for k, v in straight.summary.items() if k not in drop})
    # weights, optimizer, schedule, RNGs and the pruner's or noise control's state, bit for bit
    same_state(final_state(checkpoint), final_state(tmp_path / "straight.pt"))


def test_a_checkpoint_of_other_settings_or_another_run_is_ignored(split, tmp_path):
    run = RESUME_RUNS["prune"]
    checkpoint = tmp_path / "other.pt"
    with pytest.raises(Interrupt):
        resumable(run, split, checkpoint, log=interrupt_at(3, []))
    fresh = resumable(run, split, tmp_path / "fresh.pt", settings={**RESUME_SETTINGS, "score": "l1"})
    for other_run, settings in [(run, {**RESUME_SETTINGS, "score": "l1"}), (dict(run, seed=1), RESUME_SETTINGS)]:
        lines = []
        again = resumable(other_run, split, checkpoint, settings=settings, log=lines.append)
        assert f"ignoring {checkpoint}: it belongs to other settings" in lines
        assert again.summary["resumed_from_epoch"] is None and len(again.epochs) == 5
        if other_run is run:
            same_epochs(again, fresh)
        with pytest.raises(Interrupt):  # put back a checkpoint of the first settings
            resumable(run, split, checkpoint, log=interrupt_at(3, []))
    # when to checkpoint is not part of the settings
    kept = resumable(run, split, checkpoint, checkpoint_every=5, checkpoint_min_interval_s=3600)
    assert kept.summary["resumed_from_epoch"] == 2


@pytest.mark.parametrize("damage", [b"", b"not a checkpoint", "truncated"])
def test_a_damaged_run_checkpoint_is_set_aside(split, tmp_path, damage):
    run = RESUME_RUNS["gaussian"]
    fresh = resumable(run, split, tmp_path / "fresh.pt")
    checkpoint = tmp_path / "damaged.pt"
    checkpoint.write_bytes((tmp_path / "fresh.pt").read_bytes()[:300] if damage == "truncated" else damage)
    original = checkpoint.read_bytes()
    lines = []
    again = resumable(run, split, checkpoint, log=lines.append)
    warning = [line for line in lines if line.startswith("WARNING: cannot read the checkpoint")]
    assert len(warning) == 1 and "damaged.pt.corrupt" in warning[0]
    assert (tmp_path / "damaged.pt.corrupt").read_bytes() == original
    assert again.summary["resumed_from_epoch"] is None
    same_epochs(again, fresh)


def test_checkpoints_are_spaced_and_change_no_result(split, tmp_path):
    run = RESUME_RUNS["zero"]
    every = resumable(run, split, tmp_path / "every.pt")
    saves = []
    real = stability_mod.save_torch
    mp = pytest.MonkeyPatch()
    mp.setattr(stability_mod, "save_torch", lambda path, obj: (saves.append(obj["epoch"]), real(path, obj)))
    try:
        spaced = resumable(run, split, tmp_path / "spaced.pt", checkpoint_every=2, checkpoint_min_interval_s=0)
        assert saves == [2, 4, 5]  # every second epoch, and the last
        saves.clear()
        resumable(run, split, tmp_path / "timed.pt", checkpoint_min_interval_s=3600)
        assert saves == [5]  # the interval is longer than the run: only the last epoch
    finally:
        mp.undo()
    same_epochs(spaced, every)
    same_state(final_state(tmp_path / "spaced.pt"), final_state(tmp_path / "every.pt"))
