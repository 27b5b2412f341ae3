"""The double-descent branch end to end: a tiny width sweep of an MLP on noisy digits
(sweep statistics, the interpolation threshold, the two figures, K5 in the claims
table, the report), and the GPU preset's DAG on a CPU."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from conftest import copy_workflow, load_preset, snakemake, write_config

pytestmark = pytest.mark.workflow

# The CPU preset cut down: 400 noisy training images, 4 widths, a 30-epoch budget and
# the families that the figures read (prunability and kappa; params; effective dimensionality).
SWEEP = load_preset("double-descent-cpu")
SWEEP["study"] = "sweep"
SWEEP["data"]["max_train"] = 400
SWEEP["grid"] = {"width": [4, 16, 64, 256]}
SWEEP["resources"] = {"axes_within_job": ["width"]}  # one training job
SWEEP["train"] = {"stopping": "budget", "max_epochs": 30}
SWEEP["measures"] = {"families": ["pruning", "norms", "hessian"], "pruning": {"resolution": 0.01, "random_seeds": 1},
                     "hessian": {"top_k": 3, "max_examples": 128}}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("sweep"))
    write_config(root / "sweep.yaml", SWEEP)
    snakemake(root, "--cores", "2", "--configfile", "sweep.yaml")
    return root, root / "results" / "sweep"


def test_sweep_statistics_claim_and_figures(sweep):
    root, results = sweep
    table = pd.read_csv(results / "table.csv")
    assert sorted(table["hp.width"]) == [4, 16, 64, 256]
    assert (table["train.epochs"] == 30).all() and table["is.converged"].all()  # the budget rule
    correlations = pd.read_csv(results / "stats" / "double_descent.csv")
    assert set(correlations["target"]) == {"gen.test_loss", "gen.test_error"}
    prunability = correlations.set_index(["measure", "target"]).loc[("prunability", "gen.test_loss")]
    assert prunability["n_used"] == 4
    assert prunability["tau_a_low"] <= prunability["tau_a"] <= prunability["tau_a_high"]
    claims = pd.read_csv(results / "stats" / "claims.csv").set_index("claim")
    k5 = claims.loc["K5"]
    assert k5["verdict"] in ("supported", "not supported")
    assert k5["value"] == pytest.approx(prunability["tau_a"])  # the same statistic and resamples
    assert (k5["ci_low"], k5["ci_high"]) == (pytest.approx(prunability["tau_a_low"]), pytest.approx(prunability["tau_a_high"]))
    means = pd.read_csv(results / "stats" / "double_descent_means.csv")
    assert means["hp.width"].tolist() == [4, 16, 64, 256]
    assert (means["gen.test_loss_count"] == 1).all()
    log = (results / "logs" / "double_descent.log").read_text()
    assert "interpolation threshold (width with mean training error <= 0.01)" in log
    for figure in ("double_descent", "double_descent_scatter"):
        assert (results / "figures" / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
    # the split records the noise: 20% of the 400 training labels, each moved to another class
    noise = pd.read_csv(results / "data" / "label_noise.csv")
    assert len(noise) == 80 and (noise["original_label"] != noise["new_label"]).all()


def test_report_has_the_sweep(sweep):
    root, _ = sweep
    result = snakemake(root, "--configfile", "sweep.yaml", "--report", "report.html")
    assert "(ERROR/" not in result.stdout + result.stderr
    html = (root / "report.html").read_text()
    for name in ("double_descent.png", "double_descent_scatter.png", "double_descent.csv", "double_descent_means.csv"):
        assert name in html


def test_a_study_without_a_sweep_has_no_double_descent_jobs(sweep):
    root, _ = sweep
    plain = copy.deepcopy(SWEEP)
    plain["double_descent"] = {"sweep_axis": None}
    write_config(root / "plain.yaml", plain)
    out = snakemake(root, "-n", "--configfile", "plain.yaml").stdout
    assert "double_descent" not in out.split("Job stats:")[1].split("Reasons:")[0]


def test_gpu_preset_plans_every_width_on_cpu(tmp_path):
    # The GPU preset's DAG (a dry run, CIFAR-10 read from a local folder that exists only
    # as an empty directory here): every width trained, measured and in the sweep.
    root = copy_workflow(tmp_path)
    (root / "cifar").mkdir()
    out = snakemake(root, "-n", "--configfile", "configs/double-descent.yaml",
                    "--config", "device=cpu", "data={local_dir: cifar}").stdout
    jobs = out.split("Job stats:")[1].split("Reasons:")[0]
    assert any(line.split() == ["train_model", "22"] for line in jobs.splitlines())
    assert any(line.split() == ["double_descent", "1"] for line in jobs.splitlines())
    preset = load_preset("double-descent")
    assert (preset["data"]["label_noise"], preset["hyperparameters"]["optimizer"], preset["hyperparameters"]["lr"],
            preset["hyperparameters"]["batch_size"], preset["train"]["max_epochs"]) == (0.15, "adam", 1e-4, 128, 4000)
    assert json.dumps(preset["grid"]["width"]).startswith("[1, 2, 3")
