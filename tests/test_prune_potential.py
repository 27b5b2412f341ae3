"""Tests for the prune_potential measure family (Liebenwein et al. 2021): prune potential
on hand-built curves, excess error and its slope on hand numbers, top-1 agreement, the
whole family on a hand-built linear model whose every value is computed by hand, the
figures' tables, and the config section."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from snakemake.utils import validate as snakemake_validate
from torch import nn

from prunability.analysis.prune_potential import prune_potential_frame, prune_potential_summary
from prunability.corruptions import save_corruptions
from prunability.measures import MEASURES, RunError, compute_family, instances_of
from prunability.measures.prune_potential import (
    excess_error,
    prune_potential,
    prune_ratio_grid,
    slope_through_origin,
    top1_agreement,
)
from prunability.train import DeviceData

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"

# --------------------------------------------------------------------------- plain functions


def test_prune_ratio_grid():
    assert prune_ratio_grid(0.25, 0.9) == [0.0, 0.25, 0.5, 0.75]
    assert prune_ratio_grid(0.02, 0.98)[:3] == [0.0, 0.02, 0.04] and prune_ratio_grid(0.02, 0.98)[-1] == 0.98
    assert len(prune_ratio_grid(0.02, 0.98)) == 50


def test_prune_potential_is_the_largest_ratio_within_delta():
    ratios = [0.0, 0.1, 0.2, 0.3, 0.4]
    # base 0.9, bound 0.895: 0.1 and 0.2 pass, 0.3 fails
    assert prune_potential(ratios, [0.9, 0.91, 0.896, 0.894, 0.5], 0.005) == 0.2
    # every ratio passes: the largest of the grid (an upper bound)
    assert prune_potential(ratios, [0.9, 0.9, 0.9, 0.9, 0.899], 0.005) == 0.4
    # even the first pruned ratio fails: 0
    assert prune_potential(ratios, [0.9, 0.8, 0.9, 0.9, 0.9], 0.005) == 0.0
    # a larger delta lets 0.3 through
    assert prune_potential(ratios, [0.9, 0.91, 0.896, 0.894, 0.5], 0.01) == 0.3


def test_prune_potential_follows_the_robust_rule_on_a_non_monotone_curve():
    # 0.2 fails, 0.3 and 0.4 pass again: an isolated lucky pocket past a failure does not count
    assert prune_potential([0.0, 0.1, 0.2, 0.3, 0.4], [0.9, 0.9, 0.85, 0.9, 0.9], 0.005) == 0.1
    # order of the points does not matter
    assert prune_potential([0.4, 0.0, 0.3, 0.1, 0.2], [0.9, 0.9, 0.9, 0.9, 0.85], 0.005) == 0.1


def test_prune_potential_counts_an_exact_tie_as_within_delta():
    # 1000 images, delta 0.005 = 5 images: 895/1000 against 900/1000 is exactly delta below
    assert prune_potential([0.0, 0.5], [900 / 1000, 895 / 1000], 0.005) == 0.5
    assert prune_potential([0.0, 0.5], [900 / 1000, 894 / 1000], 0.005) == 0.0


def test_prune_potential_needs_the_unpruned_network_and_skips_nan():
    with pytest.raises(ValueError, match="ratio 0"):
        prune_potential([0.1, 0.2], [0.9, 0.9], 0.005)
    assert prune_potential([0.0, 0.1, 0.2], [0.9, float("nan"), 0.9], 0.005) == 0.0


def test_excess_error_by_hand():
    # err shifted 0.2, 0.3, 0.5; err nominal 0.1, 0.12, 0.2; their gap 0.1, 0.18, 0.3, minus the unpruned 0.1
    assert excess_error([0.8, 0.7, 0.5], [0.9, 0.88, 0.8]) == pytest.approx([0.0, 0.08, 0.2])
    # a shift that costs the pruned net exactly what it costs the unpruned one: no excess error
    assert excess_error([0.7, 0.6, 0.5], [0.9, 0.8, 0.7]) == pytest.approx([0, 0, 0])


def test_slope_through_origin_by_hand():
    # (0.1 * 0.08 + 0.2 * 0.2) / (0.01 + 0.04) = 0.048 / 0.05
    assert slope_through_origin([0.1, 0.2], [0.08, 0.2]) == pytest.approx(0.96)
    # points exactly on y = 3x
    assert slope_through_origin([1, 2, 3], [3, 6, 9]) == pytest.approx(3.0)
    assert math.isnan(slope_through_origin([0.0], [1.0]))


def test_top1_agreement():
    assert top1_agreement([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert top1_agreement(torch.tensor([1, 0, 3, 0]), torch.tensor([1, 2, 3, 4])) == 0.5
    with pytest.raises(ValueError, match="shapes differ"):
        top1_agreement([1, 2], [1, 2, 3])


# --------------------------------------------------------------------------- the family on a hand-built model
#
# A bias-free linear model on 1x2x2 images (mean 0, std 1: the inputs are the pixel values):
#   logit 0 = 3 x0,  logit 1 = 2 x1 + 1 x3   (the other 5 weights are 0)
# Global magnitude keeps 3, then 2, then 1, then the zeros: pruning changes nothing until
# k = ceil(8 (1 - r)) drops to 2 (r = 0.75: the weight 1 goes) and 1 (r = 0.875: the 2 goes).
#
#   image      label  unpruned    r = 0.75    r = 0.875
#   A 1,1,0,2    1    3 < 4 -> 1   3 > 2 -> 0   3 > 0 -> 0
#   B 2,1,0,0    0    6 > 2 -> 0   0            0
#   C 1,3,0,0    1    3 < 6 -> 1   3 < 6 -> 1   3 > 0 -> 0
#   D 1,0,0,4    1    3 < 4 -> 1   3 > 0 -> 0   0
# clean accuracy 1 (r <= 0.625), 0.5, 0.25. The corrupted set replaces D by D' = 2,0,0,1
# (6 > 1 -> 0 at every ratio): accuracy 0.75, 0.5, 0.25.

CLEAN = [[1, 1, 0, 2], [2, 1, 0, 0], [1, 3, 0, 0], [1, 0, 0, 4]]
CORRUPTED = [[1, 1, 0, 2], [2, 1, 0, 0], [1, 3, 0, 0], [2, 0, 0, 1]]
LABELS = [1, 0, 1, 1]
RATIOS = [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]


def hand_model() -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[3.0, 0, 0, 0], [0, 2.0, 0, 1.0]]))
    return model.eval()


def hand_data() -> DeviceData:
    x = torch.tensor(CLEAN, dtype=torch.uint8).view(4, 1, 2, 2)
    y = torch.tensor(LABELS)
    return DeviceData(x_train=x, y_train=y, x_test=x.clone(), y_test=y.clone(), mean=torch.zeros(1, 1, 1, 1),
                      std=torch.ones(1, 1, 1, 1), num_classes=2)


def hand_settings(tmp_path, **overrides) -> dict:
    images = np.array(CORRUPTED, dtype=np.uint8).reshape(1, 1, 4, 1, 2, 2)
    path = tmp_path / "corruptions.npz"
    save_corruptions(path, images, ["contrast"], [3], seed=0, table="cifar10c", pixel_max=255)
    settings = dict(delta=0.005, resolution=0.125, prune_ratio_max=0.875, corruptions=["contrast"], severities=[3],
                    severity_table="cifar10c", seed=0, excess_error_max_prune_ratio=1.0, noise_eps=[0.0, 0.01],
                    noise_images=4, noise_samples=3, eval_batch_size=3, corruptions_file=str(path))
    return settings | overrides


def quiet(message: str) -> None:
    pass


def test_the_family_on_a_hand_built_model(tmp_path):
    record = compute_family("prune_potential", hand_model(), hand_model(), hand_data(), hand_settings(tmp_path), quiet)
    assert record["errors"] == {}
    details = record["details"]
    assert details["prune_ratios"] == RATIOS
    assert details["accuracy_curves"]["test"] == [1.0] * 6 + [0.5, 0.25]
    assert details["accuracy_curves"]["train"] == [1.0] * 6 + [0.5, 0.25]
    assert details["accuracy_curves"]["contrast/s3"] == [0.75] * 6 + [0.5, 0.25]
    v = record["values"]
    assert v["prune_potential_test"] == 0.625
    assert v["prune_potential_train"] == 0.625
    assert v["prune_potential_corrupt_mean_s3"] == 0.625 and v["prune_potential_corrupt_min_s3"] == 0.625
    # excess error: gap (corrupted - clean error) is 0.25 up to 0.625, then 0 and 0: -0.25 at 0.75 and 0.875
    assert details["excess_error"]["mean/s3"] == pytest.approx([0] * 6 + [-0.25, -0.25])
    # slope through the origin: (0.75 + 0.875) * -0.25 / sum of the squared ratios (2.1875) = -13/70
    assert v["excess_error_slope_s3"] == pytest.approx(-13 / 70)
    # the margins are at least 1 and the weights sum to 3 per logit: noise of 0.01 changes no prediction
    for eps in (0, 0.01):
        assert v[f"noise_agreement_eps{eps:g}"] == 1.0  # pruned to 0.625 = the unpruned function
        assert v[f"noise_commensurate_prune_ratio_eps{eps:g}"] == 0.625
    agreement = np.array(details["noise"]["agreement"])  # [ratio][eps]
    assert agreement[0].tolist() == [1.0, 1.0]  # the unpruned net agrees with itself
    assert agreement[RATIOS.index(0.75)].tolist() == [0.5, 0.5]  # A and D change their prediction
    assert agreement[RATIOS.index(0.875)].tolist() == [0.25, 0.25]  # only B keeps its prediction
    assert details["noise"]["accuracy"][RATIOS.index(0.875)] == [0.25, 0.25]


def test_the_slope_is_fitted_only_up_to_its_maximum_ratio(tmp_path):
    settings = hand_settings(tmp_path, excess_error_max_prune_ratio=0.5)
    record = compute_family("prune_potential", hand_model(), hand_model(), hand_data(), settings, quiet)
    assert record["values"]["excess_error_slope_s3"] == 0.0  # no excess error below 0.75


def test_large_noise_lowers_agreement_and_the_result_is_seeded(tmp_path):
    settings = hand_settings(tmp_path, noise_eps=[3.0], noise_samples=20)
    model, data = hand_model(), hand_data()
    a = compute_family("prune_potential", model, model, data, settings, quiet)
    b = compute_family("prune_potential", model, model, data, settings, quiet)
    agreement = np.array(a["details"]["noise"]["agreement"])
    assert agreement[0, 0] == 1.0 and agreement[RATIOS.index(0.75), 0] < 1.0
    assert a["details"]["noise"] == b["details"]["noise"]
    c = compute_family("prune_potential", model, model, data, settings | {"seed": 1}, quiet)
    assert c["details"]["noise"]["accuracy"] != a["details"]["noise"]["accuracy"]


def test_the_model_is_restored_after_measuring(tmp_path):
    model = hand_model()
    compute_family("prune_potential", model, model, hand_data(), hand_settings(tmp_path), quiet)
    assert model[1].weight.tolist() == [[3.0, 0, 0, 0], [0, 2.0, 0, 1.0]]


def test_a_file_without_the_wanted_sets_fails_the_family_naming_it(tmp_path):
    # an input that does not fit is an error of the run, never a NaN of the model
    settings = hand_settings(tmp_path, severities=[3, 5])
    with pytest.raises(RunError, match="corruptions.npz lacks contrast/s5: rerun corrupt_data"):
        compute_family("prune_potential", hand_model(), hand_model(), hand_data(), settings, quiet)


def test_measures_registered_with_orientation_and_templates():
    settings = dict(severities=[1, 3], noise_eps=[0.0, 0.1])
    names = [name for name, _, _ in instances_of("prune_potential", settings)]
    assert names == ["prune_potential_test", "prune_potential_train", "prune_potential_corrupt_mean_s1",
                     "prune_potential_corrupt_mean_s3", "prune_potential_corrupt_min_s1", "prune_potential_corrupt_min_s3",
                     "excess_error_slope_s1", "excess_error_slope_s3", "noise_commensurate_prune_ratio_eps0",
                     "noise_commensurate_prune_ratio_eps0.1", "noise_agreement_eps0", "noise_agreement_eps0.1"]
    assert MEASURES["prune_potential_test"].orientation == -1
    assert MEASURES["excess_error_slope_s{}"].orientation == +1
    assert all(MEASURES[m].description for m in MEASURES if MEASURES[m].family == "prune_potential")
    # no noise grid: no noise measures
    assert not [n for n, _, _ in instances_of("prune_potential", dict(severities=[3], noise_eps=[])) if "noise" in n]


# --------------------------------------------------------------------------- the figures' table


def test_summary_table_by_hand():
    records = [{"details": {"prune_potentials": {"test": 0.5, "train": 0.6, "contrast/s3": 0.2}}},
               {"details": {"prune_potentials": {"test": 0.3, "train": 0.6, "contrast/s3": 0.4}}}]
    frame = prune_potential_frame(records)
    assert len(frame) == 6
    row = frame[frame["distribution"] == "contrast/s3"].iloc[0]
    assert (row["corruption"], row["severity"], row["split"]) == ("contrast", 3, "test")
    summary = prune_potential_summary(frame, resamples=200, level=0.95, seed=0).set_index("distribution")
    assert summary.loc["test", "mean"] == pytest.approx(0.4)
    assert summary.loc["test", "std"] == pytest.approx(math.sqrt(0.02))
    assert (summary.loc["test", "min"], summary.loc["test", "max"]) == (0.3, 0.5)
    assert 0.3 <= summary.loc["test", "mean_low"] <= 0.4 <= summary.loc["test", "mean_high"] <= 0.5
    assert summary.loc["train", "mean_low"] == summary.loc["train", "mean_high"] == pytest.approx(0.6)


# --------------------------------------------------------------------------- the config section


def measures_section(**settings) -> dict:
    return {"families": ["pruning", "prune_potential"], "prune_potential": settings}


def validate(measures: dict) -> dict:
    """The config after the schema's checks, with its defaults filled in."""
    config = {"study": "t", "grid": {"depth": [1]}, "measures": copy.deepcopy(measures)}
    snakemake_validate(config, str(SCHEMA))
    return config


def test_defaults_are_filled_in_and_off_by_default():
    config = validate(measures_section())
    pp = config["measures"]["prune_potential"]
    assert pp["delta"] == 0.005 and pp["severities"] == [1, 2, 3, 4, 5] and pp["severity_table"] == "cifar10c"
    assert len(pp["noise_eps"]) == 15 and pp["noise_eps"][-1] == 0.7
    assert pp["noise_images"] == 1000 and pp["noise_samples"] == 100
    default = validate({})
    assert "prune_potential" not in default["measures"]["families"]


@pytest.mark.parametrize(
    "settings,key",
    [
        (dict(delta=-0.1), "delta"),
        (dict(corruptions=["fog"]), "corruptions"),
        (dict(severities=[6]), "severities"),
        (dict(severities=[]), "severities"),
        (dict(severity_table="cifar100c"), "severity_table"),
        (dict(prune_ratio_max=1.0), "prune_ratio_max"),
        (dict(resolution=0), "resolution"),
        (dict(noise_samples=0), "noise_samples"),
        (dict(noise_eps=[-0.1]), "noise_eps"),
        (dict(seed=2**62), "seed"),  # seed * 1_000_003 + draw would overflow torch's 64-bit generator seed
        (dict(unknown_key=1), "unknown_key"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(settings, key):
    with pytest.raises(Exception) as info:
        validate(measures_section(**settings))
    cause = info.value
    while cause is not None and not isinstance(cause, jsonschema.ValidationError):
        cause = cause.__cause__ or cause.__context__
    assert cause is not None
    assert key in str(cause.message) + "/".join(map(str, cause.absolute_path))
