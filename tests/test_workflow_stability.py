"""The generalization-stability branch end to end: a tiny study on digits (pruning,
unstructured, noise-control and baseline runs, the analysis table, correlations and
figures), what reruns when a setting changes, the branch in the default target only when
enabled, and the GPU preset's DAG on a CPU."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from conftest import copy_workflow, job_counts, load_preset, snakemake, write_config

pytestmark = pytest.mark.workflow

# The CPU preset cut down: 200 training images, 6 epochs, one period and one seed.
TINY = load_preset("stability-cpu")
TINY["study"] = "tiny-stability"
TINY["data"]["max_train"] = 200
TINY["model"]["base_width"] = 8
TINY["generalization_stability"].update(
    targets=["smallest", "magnitude"],
    retrain_periods=[1],
    seeds=[0],
    layers=[{"index": -2, "prune_frac": 0.5, "start_epoch": 2, "end_epoch": 3},
            {"index": -1, "prune_frac": 0.5, "start_epoch": 2, "end_epoch": 4}],
    noise={"modes": ["zero"], "target": "largest", "batches": 2},
    train={"optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 6, "lr_milestones": [5]},
)
TINY["statistics"] = {"bootstrap": {"resamples": 200}}
RUNS = ["smallest-p1-s0", "magnitude-p1-s0", "noise-zero-p1-s0", "baseline-s0"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("stability"))
    write_config(root / "tiny.yaml", TINY)
    snakemake(root, "stability_analysis", "--cores", "2", "--configfile", "tiny.yaml")
    return root, root / "results" / "tiny-stability"


def test_runs_table_correlations_and_figures(study):
    root, results = study
    runs = pd.read_csv(results / "stability" / "runs.csv").set_index("run")
    assert sorted(runs.index) == sorted(RUNS)
    assert runs.loc["baseline-s0", "mean_stability"] == 100.0
    assert runs.loc["baseline-s0", "pruning_epochs"] == 0
    for run in RUNS[:3]:
        # layer -2 pruned at epochs 2, 3; layer -1 at 2, 3, 4: three pruning epochs, the last is 4
        assert runs.loc[run, "pruning_epochs"] == 3 and runs.loc[run, "last_pruning_epoch"] == 4
        assert runs.loc[run, "best_epoch"] >= 4
        epochs = pd.read_csv(results / "stability" / "runs" / run / "epochs.csv")
        events = epochs[epochs["pruned_epoch"]]
        stability = 100 * (1 - (events["pre_prune_test_acc"] - events["test_acc"]) / events["pre_prune_test_acc"])
        assert runs.loc[run, "mean_stability"] == pytest.approx(stability.mean())
        best = epochs[epochs["epoch"] >= 4]["test_acc"].max()
        assert runs.loc[run, "best_test_acc"] == pytest.approx(best)
    # 8 filters per layer (NiN, base_width 8): ceil(0.5 * 8) = 4 kept in the end
    summary = json.loads((results / "stability" / "runs" / "smallest-p1-s0" / "summary.json").read_text())
    assert [layer["final_kept"] for layer in summary["layers"]] == [4, 4]
    assert [layer["pruning_epochs"] for layer in summary["layers"]] == [[2, 3], [2, 3, 4]]
    magnitude = json.loads((results / "stability" / "runs" / "magnitude-p1-s0" / "summary.json").read_text())
    assert [layer["count"] for layer in magnitude["layers"]] == [64, 64]  # 8 x 8 x 1 x 1 weights
    table = pd.read_csv(results / "stability" / "correlations.csv")
    assert set(table["runs"]) == {"pruning", "noise", "all"}
    row = table[(table["runs"] == "all") & (table["y"] == "best_test_acc")].iloc[0]
    assert row["n"] == 4
    if pd.notna(row["kendall_tau_b"]):
        assert row["kendall_tau_b_low"] <= row["kendall_tau_b_high"]
        assert -1 <= row["pearson_r"] <= 1
    for figure in ("stability_vs_accuracy", "stability_curves"):
        assert (results / "figures" / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
    log = (results / "logs" / "stability_run" / "smallest-p1-s0.log").read_text()
    # epoch 2: layer -2 (T = 2) keeps ceil(4 + 4 * 1/2) = 6, layer -1 (T = 3) ceil(4 + 4 * 2/3) = 7: 2 + 1 removed
    assert "epoch    2/6" in log and "pruned 3: test acc" in log


def test_the_analysis_runs_without_torch(study, without_torch):
    root, results = study
    before = (results / "stability" / "runs.csv").read_text()
    result = snakemake(root, "stability_analysis", "--cores", "1", "--configfile", "tiny.yaml", "--forcerun",
                       "stability_analysis", env=without_torch)
    assert "Finished jobid" in result.stdout + result.stderr
    assert (results / "stability" / "runs.csv").read_text() == before


def test_a_new_seed_adds_runs_and_reruns_none(study):
    root, _ = study
    more = copy.deepcopy(TINY)
    more["generalization_stability"]["seeds"] = [0, 1]
    write_config(root / "more.yaml", more)
    counts = job_counts(snakemake(root, "stability_analysis", "-n", "--configfile", "more.yaml").stdout)
    assert counts == {"stability_run": 4, "stability_analysis": 1, "total": 5}
    # a changed training recipe reruns every run
    longer = copy.deepcopy(TINY)
    longer["generalization_stability"]["train"]["epochs"] = 7
    write_config(root / "longer.yaml", longer)
    counts = job_counts(snakemake(root, "stability_analysis", "-n", "--configfile", "longer.yaml").stdout)
    assert counts["stability_run"] == 4
    # changed layers rerun the pruning and noise runs, not the baseline
    layers = copy.deepcopy(TINY)
    layers["generalization_stability"]["layers"][0]["prune_frac"] = 0.25
    write_config(root / "layers.yaml", layers)
    counts = job_counts(snakemake(root, "stability_analysis", "-n", "--configfile", "layers.yaml").stdout)
    assert counts["stability_run"] == 3


def test_the_default_target_has_the_branch_only_when_enabled(study):
    root, _ = study
    counts = job_counts(snakemake(root, "-n", "--configfile", "tiny.yaml").stdout)
    assert counts.get("stability_analysis") is None  # done above; the rest of the study is not
    assert counts["train_model"] == 1
    fresh = copy.deepcopy(TINY)
    fresh["study"] = "fresh"
    write_config(root / "fresh.yaml", fresh)
    assert job_counts(snakemake(root, "-n", "--configfile", "fresh.yaml").stdout)["stability_run"] == 4
    fresh["generalization_stability"]["enabled"] = False
    write_config(root / "off.yaml", fresh)
    counts = job_counts(snakemake(root, "-n", "--configfile", "off.yaml").stdout)
    assert "stability_run" not in counts and "stability_analysis" not in counts


def test_bad_settings_stop_before_any_job(study):
    root, _ = study
    bad = copy.deepcopy(TINY)
    bad["generalization_stability"]["layers"][0]["end_epoch"] = 60
    write_config(root / "bad.yaml", bad)
    result = snakemake(root, "-n", "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    assert "generalization_stability.layers[0].end_epoch: 60 is after the last epoch" in result.stdout + result.stderr


def test_report_has_the_branch(study):
    root, _ = study
    result = snakemake(root, "stability_analysis", "--configfile", "tiny.yaml", "--report", "report.html")
    assert "(ERROR/" not in result.stdout + result.stderr
    html = (root / "report.html").read_text()
    for name in ("stability_vs_accuracy.png", "stability_curves.png", "runs.csv", "correlations.csv"):
        assert name in html


def test_gpu_preset_plans_every_run_on_cpu(tmp_path):
    root = copy_workflow(tmp_path)
    (root / "cifar").mkdir()
    out = snakemake(root, "stability_analysis", "-n", "--configfile", "configs/stability.yaml",
                    "--config", "device=cpu", "data={local_dir: cifar}").stdout
    # 3 targets x 2 retrain periods x 10 seeds + 10 baselines
    assert job_counts(out)["stability_run"] == 70
    preset = load_preset("stability")
    gs = preset["generalization_stability"]
    assert (preset["model"]["arch"], preset["model"]["base_width"]) == ("resnet18k", 64)
    assert (gs["train"]["optimizer"], gs["train"]["lr"], gs["train"]["batch_size"], gs["train"]["epochs"],
            gs["train"]["lr_milestones"]) == ("adam", 0.001, 128, 325, [150, 300])
    assert [layer["prune_frac"] for layer in gs["layers"]] == [0.25, 0.4, 0.25, 0.95]
    assert [layer["start_epoch"] - 1 for layer in gs["layers"]] == [7, 8, 9, 10]  # the paper's 0-based epochs


# --------------------------------------------------------------------------- resume

KILLED = copy.deepcopy(TINY)
KILLED["study"] = "killed-stability"
KILLED["data"]["max_train"] = None  # all 1257 images: epochs slow enough to kill mid-run
KILLED["hyperparameters"]["dropout"] = 0.2  # exercises the restored global RNG
KILLED["train"] = {"checkpoint_min_interval_s": 0}  # a checkpoint every epoch, to be killed after
KILLED["generalization_stability"]["train"] = dict(TINY["generalization_stability"]["train"], epochs=20)
KILLED_RUN = "smallest-p1-s0"


def test_a_killed_run_resumes_to_the_same_epochs(tmp_path):
    straight, killed = copy_workflow(tmp_path / "straight"), copy_workflow(tmp_path / "killed")
    target = f"results/killed-stability/stability/runs/{KILLED_RUN}/summary.json"
    for root in (straight, killed):
        write_config(root / "killed.yaml", KILLED)
    snakemake(straight, target, "--cores", "1", "--configfile", "killed.yaml")

    checkpoint = killed / "results" / "killed-stability" / "checkpoints" / "stability" / KILLED_RUN / "in_progress.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "snakemake", target, "--cores", "1", "--configfile", "killed.yaml"],
        cwd=killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline, epoch = time.time() + 240, 0
    while epoch < 5 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
        if checkpoint.exists():
            try:
                epoch = torch.load(checkpoint, weights_only=True)["epoch"]
            except (OSError, RuntimeError, EOFError, KeyError):
                pass  # replaced while being read; try again
    os.killpg(process.pid, signal.SIGKILL)  # snakemake and the run's job with it
    process.wait()
    assert 5 <= epoch < 20, "the run finished or never checkpointed before it could be killed"
    assert not (killed / target).exists()

    snakemake(killed, "--unlock", "--configfile", "killed.yaml")
    snakemake(killed, target, "--cores", "1", "--configfile", "killed.yaml")
    summary = json.loads((killed / target).read_text())
    assert summary["resumed_from_epoch"] >= 5
    assert not checkpoint.exists()
    epochs = [pd.read_csv(root / target.replace("summary.json", "epochs.csv")).drop(columns="wall_time_s")
              for root in (straight, killed)]
    pd.testing.assert_frame_equal(*epochs, check_exact=True)
    assert len(epochs[0]) == 20 and epochs[0]["pruned_epoch"].sum() == 3
