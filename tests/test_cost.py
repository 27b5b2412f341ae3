"""Tests for ``prunability.cost``: the job counts it prints are a dry run's, the pass-count
model against counts worked out by hand, the calibrated CLI, an earlier run's counts,
and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, copy_workflow, job_counts, snakemake

from prunability import cost
from prunability.config import with_defaults


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("cost") / "workflow")


def printed_job_counts(output: str) -> dict[str, int]:
    """The "jobs per rule" table of the command's output."""
    lines = output.split("jobs per rule")[1].splitlines()[3:]
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2:
            break
        counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.parametrize("preset", ["config.yaml", "configs/paper-nin-cifar10.yaml"])
def test_job_counts_are_a_dry_runs(workflow, preset, capsys):
    dry = job_counts(snakemake(workflow, "-n", "--configfile", preset).stdout)
    dry.pop("total")
    assert cost.main(["--directory", str(workflow), "--configfile", str(workflow / preset)]) == 0
    assert printed_job_counts(capsys.readouterr().out) == dry


def tiny_config() -> dict:
    return with_defaults({
        "study": "tiny",
        "data": {"source": "digits"},
        "model": {"arch": "nin", "base_width": 4},
        "hyperparameters": {"batchnorm": True, "batch_size": 32},
        "grid": {"depth": [1]},
        "train": {"max_epochs": 9},
        "measures": {
            "families": ["pruning", "norms", "flatness", "hessian", "optimization"],
            "pruning": {"random_seeds": 3, "instability_fractions": [0.5, 0.2], "resolution": 0.1, "alpha_min": 0.05},
            "flatness": {"mc_draws": 4, "restarts": 2, "ascent_steps": 3, "ascent_batch_size": 50},
            "hessian": {"max_examples": 40, "top_k": 5},
        },
    })


def test_pass_counts_by_hand():
    config = tiny_config()
    hp = cost.grid_cells(config)[0]
    outcome = {
        "epochs": 7,
        "evaluations": {"magnitude": 30, "layerwise": 10, "bn_folded": 5, "random": 2},
        "bisection": {"sigma": 3, "sigma_mag": 4, "alpha": 5, "alpha_mag": 6},
        "hvps": 25,
    }
    n, n_test = 100, 20
    stages = cost.images(config, hp, n, n_test, outcome)
    # a step per training image per epoch, then the train and test sets evaluated
    assert stages["train_model"] == {"step": 7 * 100, "forward": 7 * 120}
    # base train + test, (30 + 10 + 5 + 3 seeds x 2) sweep points, 2 fractions x (train + test)
    assert stages["measure_pruning"] == {"folded": 120 + (30 + 10 + 5 + 3 * 2) * 100 + 2 * 120}
    # base, (3 + 4) halvings x 4 draws, (5 + 6) halvings x 2 restarts x (train set + last minibatch loss);
    # gradients: 11 halvings x 2 restarts x 3 steps x 50 images
    assert stages["measure_flatness"] == {"folded": 100 + 7 * 4 * 100 + 11 * 2 * (100 + 50), "grad": 11 * 2 * 3 * 50}
    assert stages["measure_hessian"] == {"hvp": 25 * 40}
    assert stages["measure_optimization"] == {"step": 3 * 32}  # full batches of 32 of 100 images
    assert stages["measure_norms"] == {"folded": 100}
    # without BatchNorm: no BN-folded search, and the evaluations run on the model as it is
    plain = cost.images(config, dict(hp, batchnorm=False), n, n_test, outcome)
    assert plain["measure_pruning"] == {"folded": 120 + (30 + 10 + 3 * 2) * 100 + 2 * 120}
    assert set(plain["measure_flatness"]) == {"forward", "grad"}


def test_assumed_counts_by_hand():
    config = tiny_config()
    # the sweep 1, 0.9, ..., 0.1: points below 1 down to the stop, plus the failing one
    assert cost.sweep_evaluations(config["measures"]["pruning"], 0.5) == 6  # 0.9 .. 0.5, then 0.4
    assert cost.sweep_evaluations(config["measures"]["pruning"], 0.0) == 9  # never fails: all 9
    outcome = cost.assumed_outcomes(config)
    assert outcome["epochs"] == 9  # the cap
    assert cost.assumed_outcomes(config, epochs=4)["epochs"] == 4
    assert outcome["hvps"] == 20 + 1  # ARPACK's ncv = max(2k + 1, 20) products, and one more
    config["measures"]["hessian"]["top_k"] = 12
    assert cost.assumed_outcomes(config)["hvps"] == 25 + 1


def test_stability_run_images():
    config = with_defaults({"generalization_stability": {
        "enabled": True, "train": {"epochs": 10},
        "layers": [{"index": -1, "prune_frac": 0.5, "start_epoch": 2, "end_epoch": 4},
                   {"index": -2, "prune_frac": 0.5, "start_epoch": 3, "end_epoch": 7}]}})
    run = {"kind": "prune", "retrain_period": 2}
    # 10 epochs of steps and evaluations, one test pass more per pruning epoch: 2, 4 and 3, 5, 7
    assert cost.stability_images(config, run, 100, 20) == {"step": 1000, "forward": 10 * 120 + 5 * 20}
    assert cost.stability_images(config, {"kind": "baseline"}, 100, 20) == {"step": 1000, "forward": 10 * 120}


def test_counts_of_an_earlier_run(tmp_path):
    config = tiny_config()
    study = tmp_path / "tiny"
    cell = study / "models" / "depth~1"
    cell.mkdir(parents=True)
    (cell / "train.json").write_text(json.dumps({"epochs": 12, "wall_time_s": 3.0}))
    measures = study / "measures" / "depth~1"
    measures.mkdir(parents=True)
    curve = lambda k: [{"alpha": 1.0}] * (k + 1)  # noqa: E731 - the first point is the unpruned model
    (measures / "pruning.json").write_text(json.dumps({"wall_time_s": 2.0, "details": {"curves": {
        "magnitude": curve(40), "layerwise": curve(8), "bn_folded": curve(9),
        "random_seed_0": curve(1), "random_seed_1": curve(3)}}}))
    (measures / "flatness.json").write_text(json.dumps({"wall_time_s": 1.0, "details": {"histories": {
        "sigma": [{}] * 3, "sigma_mag": [{}] * 4, "alpha": [{}] * 5, "alpha_mag": [{}] * 6}}}))
    logs = study / "logs" / "measure_hessian"
    logs.mkdir(parents=True)
    (logs / "all.log").write_text("top 5 Hessian eigenvalues from 21 Hessian-vector products: [1]\n"
                                  "top 5 Hessian eigenvalues from 31 Hessian-vector products: [1]\n")
    bench = study / "benchmarks" / "train_model"
    bench.mkdir(parents=True)
    (bench / "all.tsv").write_text("s\th:m:s\n5.5\t0:00:05\n")
    [(hp, outcome, seconds)] = cost.run_cells(study, config)
    assert hp["depth"] == 1
    assert outcome["epochs"] == 12
    assert outcome["evaluations"] == {"magnitude": 40, "layerwise": 8, "bn_folded": 9, "random": 2}
    assert outcome["bisection"] == {"sigma": 3, "sigma_mag": 4, "alpha": 5, "alpha_mag": 6}
    assert outcome["hvps"] == 26
    assert seconds == {"train_model": 3.0, "measure_pruning": 2.0, "measure_flatness": 1.0}
    assert cost.benchmark_totals(study) == {"train_model": (1, 5.5)}


def test_calibrated_cli_prints_every_rule(workflow):
    dry = job_counts(snakemake(workflow, "-n").stdout)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "prunability.cost", "--calibrate", "--cores", "2"],
                            cwd=workflow, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "seconds per image (calibrated on cpu (1 thread(s))" in out
    per_rule = out.split("seconds per rule")[1]
    for rule in dry:
        if rule != "total":
            assert f"\n{rule} " in per_rule, rule
    assert "CPU-hours" in out and "wall time about" in out
    assert elapsed < 120, f"calibration took {elapsed:.0f} s"


def test_cifar10_subset_sizes():
    folder = REPO.parent / "shared" / "data" / "cifar10-subset" / "cifar-10-batches-py"
    if not folder.is_dir():
        pytest.skip(f"the CIFAR-10 subset is not present at {folder}")
    config = with_defaults({"data": {"source": "cifar10", "local_dir": str(folder), "max_train": 2000}})
    n, n_test, shape, classes, _ = cost.data_shape(config, REPO)
    assert (n, n_test, shape, classes) == (2000, 1017, (3, 32, 32), 10)


def test_a_bad_preset_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-preset.yaml"
    result = subprocess.run([sys.executable, "-m", "prunability.cost", "--configfile", str(missing)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"configuration file {str(missing)!r} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_run_folder_is_a_clear_error(tmp_path, capsys):
    assert cost.main(["--directory", str(REPO), "--from-run", str(tmp_path / "results" / "nothing")]) == 2
    assert "no models/ folder there" in capsys.readouterr().err
