"""The prune_potential family end to end: corrupted test sets made once per study, the
family's measure jobs, its measures in the table and the statistics, its figures and
the report; which settings rerun what; and that it is off by default."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from conftest import copy_workflow, job_counts, load_preset, snakemake, write_config

pytestmark = pytest.mark.workflow

# The smoke preset cut down: 2 tiny models on 400 digits, a coarse pruning sweep, and the
# family with 3 corruptions at 2 severities and a small input-noise test.
STUDY = load_preset("smoke")
STUDY["study"] = "pp"
STUDY["grid"] = {"depth": [2, 3]}
STUDY["hyperparameters"]["batchnorm"] = True
STUDY["resources"] = {"axes_within_job": ["depth"]}  # one job per stage
STUDY["measures"] = {
    "families": ["pruning", "prune_potential"],
    "pruning": {"resolution": 0.05, "random_seeds": 1, "rel_tol_sweep": [0.5], "instability_fractions": [0.5]},
    "prune_potential": {"resolution": 0.1, "prune_ratio_max": 0.9, "corruptions": ["gaussian_noise", "contrast", "jpeg_compression"],
                        "severities": [1, 3], "noise_eps": [0.0, 0.2], "noise_images": 50, "noise_samples": 2},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("prune_potential"))
    write_config(root / "pp.yaml", STUDY)
    snakemake(root, "--cores", "2", "--configfile", "pp.yaml")
    return root, root / "results" / "pp"


def test_corrupted_sets_measures_statistics_and_figures(study):
    root, results = study
    with np.load(results / "data" / "corruptions.npz", allow_pickle=False) as f:
        assert f["images"].shape == (3, 2, 540, 1, 8, 8) and f["images"].dtype == np.uint8
        assert f["names"].tolist() == ["gaussian_noise", "contrast", "jpeg_compression"] and f["severities"].tolist() == [1, 3]
        assert int(f["pixel_max"]) == 16 and str(f["table"]) == "cifar10c"
    table = pd.read_csv(results / "table.csv")
    assert len(table) == 2
    for name in ("prune_potential_test", "prune_potential_train", "prune_potential_corrupt_mean_s3",
                 "prune_potential_corrupt_min_s1", "excess_error_slope_s3", "noise_agreement_eps0.2",
                 "noise_commensurate_prune_ratio_eps0"):
        values = table[f"measure.{name}"]
        assert values.notna().all(), name
    potentials = table[[c for c in table if c.startswith("measure.prune_potential_")]].to_numpy()
    assert ((potentials >= 0) & (potentials <= 0.9 + 1e-12)).all()
    on_grid = table[["measure.prune_potential_test", "measure.prune_potential_train", "measure.prune_potential_corrupt_min_s3"]]
    assert (np.round(on_grid.to_numpy() * 10, 9) % 1 == 0).all()  # one grid ratio each (the means need not be)
    info = pd.read_csv(results / "measure_info.csv").set_index("name")
    assert info.loc["prune_potential_test", "family"] == "prune_potential"
    assert info.loc["prune_potential_test", "orientation"] == -1 and info.loc["excess_error_slope_s1", "orientation"] == 1
    summary = pd.read_csv(results / "stats" / "summary.csv")
    assert "prune_potential_test" in set(summary["measure"])
    per_distribution = pd.read_csv(results / "stats" / "prune_potential.csv").set_index("distribution")
    assert set(per_distribution.index) == {"train", "test"} | {f"{c}/s{s}" for c in ("gaussian_noise", "contrast", "jpeg_compression") for s in (1, 3)}
    assert per_distribution.loc["test", "mean"] == pytest.approx(table["measure.prune_potential_test"].mean())
    for figure in ("prune_potential", "excess_error", "noise_agreement"):
        assert (results / "figures" / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
    log = (results / "logs" / "corrupt_data.log").read_text()
    assert "6 sets in" in log


def test_report_has_the_family(study):
    root, _ = study
    result = snakemake(root, "--configfile", "pp.yaml", "--report", "report.html")
    assert "(ERROR/" not in result.stdout + result.stderr
    html = (root / "report.html").read_text()
    for name in ("prune_potential.png", "excess_error.png", "noise_agreement.png", "prune_potential.csv"):
        assert name in html


def test_the_figures_run_without_torch(study, without_torch):
    root, results = study
    before = (results / "stats" / "prune_potential.csv").read_text()
    result = snakemake(root, "prune_potential_figures", "--cores", "1", "--configfile", "pp.yaml", "--forcerun",
                       "prune_potential_figures", env=without_torch)
    assert "Finished jobid" in result.stdout + result.stderr
    assert (results / "stats" / "prune_potential.csv").read_text() == before


def test_a_setting_reruns_only_what_it_invalidates(study):
    root, _ = study
    noise = copy.deepcopy(STUDY)
    noise["measures"]["prune_potential"]["noise_samples"] = 3
    write_config(root / "noise.yaml", noise)
    counts = job_counts(snakemake(root, "-n", "--configfile", "noise.yaml").stdout)
    assert counts.get("measure_prune_potential") == 1
    assert "corrupt_data" not in counts and "train_model" not in counts and "measure_pruning" not in counts
    table = copy.deepcopy(STUDY)
    table["measures"]["prune_potential"]["severity_table"] = "imagenetc"
    write_config(root / "table.yaml", table)
    counts = job_counts(snakemake(root, "-n", "--configfile", "table.yaml").stdout)
    assert counts.get("corrupt_data") == 1 and counts.get("measure_prune_potential") == 1
    assert "train_model" not in counts and "measure_pruning" not in counts


def test_off_by_default(study):
    root, _ = study
    plain = copy.deepcopy(STUDY)
    plain["measures"]["families"] = ["pruning"]
    write_config(root / "plain.yaml", plain)
    counts = job_counts(snakemake(root, "-n", "--forceall", "--configfile", "plain.yaml").stdout)
    assert "corrupt_data" not in counts and "prune_potential_figures" not in counts and "measure_prune_potential" not in counts
    assert counts.get("measure_pruning") == 1


@pytest.fixture(scope="module")
def bare_workflow(tmp_path_factory):
    """A copy of the workflow with no results, for dry runs of configurations."""
    return copy_workflow(tmp_path_factory.mktemp("prune_potential_config"))


@pytest.mark.parametrize(
    "settings,message",
    [
        # JSON Schema's range checks let NaN (YAML .nan) and, where unbounded, infinity through
        (dict(delta=float("nan")), "measures.prune_potential.delta"),
        (dict(resolution=float("nan")), "measures.prune_potential.resolution"),
        (dict(prune_ratio_max=float("nan")), "measures.prune_potential.prune_ratio_max"),
        (dict(excess_error_max_prune_ratio=float("nan")), "measures.prune_potential.excess_error_max_prune_ratio"),
        (dict(noise_eps=[0.0, float("inf")]), "measures.prune_potential.noise_eps"),
        # a grid of the unpruned net alone; a slope fitted to no ratio (NaN for every model)
        (dict(resolution=0.5, prune_ratio_max=0.3), "measures.prune_potential.resolution"),
        (dict(excess_error_max_prune_ratio=0.05), "measures.prune_potential.excess_error_max_prune_ratio"),
        # the schema takes 3.0 for an integer: measures named "_s3.0", or the noise test failing (NaN)
        (dict(severities=[1, 3.0]), "measures.prune_potential.severities.1"),
        (dict(noise_samples=2.0), "measures.prune_potential.noise_samples"),
        (dict(noise_images=50.0), "measures.prune_potential.noise_images"),
        (dict(eval_batch_size=256.0), "measures.prune_potential.eval_batch_size"),
        (dict(seed=1.0), "measures.prune_potential.seed"),
        # two values of one measure name (noise_agreement_eps0.1): one would overwrite the other
        (dict(noise_eps=[0.1, 0.1000001]), "measures.prune_potential.noise_eps"),
    ],
)
def test_inconsistent_settings_stop_the_run_naming_the_key(bare_workflow, settings, message):
    bad = copy.deepcopy(STUDY)
    bad["measures"]["prune_potential"].update(settings)
    write_config(bare_workflow / "bad.yaml", bad)
    result = snakemake(bare_workflow, "-n", "--configfile", "bad.yaml", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid configuration" in output and message in output
    assert "Job stats" not in output
