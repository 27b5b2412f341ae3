"""The workflow end to end, on a tiny study, in a private copy of the repository.

- a full run: every stage's outputs, a diverged model recorded and excluded, the report;
- rerun triggers: a measure setting reruns only that family, never training;
- resume: a training job killed part-way and rerun ends with the same weights as an
  uninterrupted one;
- bad configurations stop the run before any job, naming the key.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import copy_workflow, load_preset, snakemake, write_config

pytestmark = pytest.mark.workflow

# The smoke preset plus a learning-rate axis whose second value makes Adam fail
# (mostly a NaN loss within a few epochs): 2 x 2 x 2 = 8 models.
E2E = load_preset("smoke")
E2E["study"] = "e2e"
E2E["grid"] = {"depth": [1, 2], "batchnorm": [True, False], "lr": [0.01, 1.0e8]}
# Smaller and shorter than the smoke preset (base width 8, 40 epochs), with a loose CE
# target that the four lr 0.01 models reach, so the statistics have models.
E2E["model"]["base_width"] = 8
E2E["train"].update(ce_target=1.2, max_epochs=40)
# Two cells per job (batchnorm on and off): 4 training jobs and 4 jobs per family.
E2E["resources"] = {"axes_within_job": ["batchnorm"]}
FAMILIES = ("pruning", "norms", "flatness", "hessian", "optimization")  # the schema's default list
# Every figure of the report, in its reading order (the report numbers them so).
FIGURES = ("claims", "prunability_vs_gap", "tau_psi", "psi_heatmap", "measures_vs_gap", "prediction_mi", "size_scaling",
           "cmi", "tolerance_sensitivity", "pruning_curves", "pruning_curves_all", "training_curves", "gap_by_axis",
           "measure_costs")
STATISTICS = {"statistics", "conditional_mutual_information", "prediction_mutual_information", "claims"}


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("e2e"))
    write_config(root / "e2e.yaml", E2E)
    snakemake(root, "--cores", "2", "--configfile", "e2e.yaml")
    return root, root / "results" / "e2e"


def job_of(cell: str) -> str:
    """The job (log and benchmark name) of a cell: its path without the within-job axis."""
    return "/".join(segment for segment in cell.split("/") if not segment.startswith("batchnorm~"))


def test_every_stage_writes_its_outputs(e2e):
    root, results = e2e
    cells = sorted(p.parent.relative_to(results / "models").as_posix() for p in (results / "models").rglob("train.json"))
    assert len(cells) == 8
    assert cells[0] == "depth~1/batchnorm~False/lr~0.01"
    split = torch.load(results / "data" / "split.pt", weights_only=True)
    assert split["x_train"].dtype == torch.uint8 and len(split["y_train"]) == 400
    assert len(split["label_noise"]["indices"]) == 0 and pd.read_csv(results / "data" / "label_noise.csv").empty
    for cell in cells:
        model_dir = results / "models" / cell
        summary = json.loads((model_dir / "train.json").read_text())
        for key in ("hyperparameters", "converged", "epochs", "steps_to_ce_0.1", "steps_to_ce_0.01", "train_loss",
                    "test_acc", "wall_time_s", "device"):
            assert key in summary
        assert len(pd.read_csv(model_dir / "curve.csv")) == summary["epochs"]
        assert set(torch.load(model_dir / "final.pt", weights_only=True)) == set(torch.load(model_dir / "init.pt", weights_only=True))
        for family in FAMILIES:
            record = json.loads((results / "measures" / cell / f"{family}.json").read_text())
            assert record["family"] == family and record["values"]
            assert (results / "benchmarks" / f"measure_{family}" / f"{job_of(cell)}.tsv").exists()
            log = (results / "logs" / f"measure_{family}" / f"{job_of(cell)}.log").read_text()
            assert f"{cell}/{family}.json" in log and log.count("measures in") == 2  # the job's two cells
        assert cell in (results / "logs" / "train_model" / f"{job_of(cell)}.log").read_text()
        # no in-progress checkpoint survives a finished job
        assert not (results / "checkpoints" / cell / "in_progress.pt").exists()
    for figure in FIGURES:
        data = (results / "figures" / f"{figure}.png").read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000


def test_table_and_statistics(e2e):
    _, results = e2e
    table = pd.read_csv(results / "table.csv")
    assert len(table) == 8
    for column in ("hp.depth", "hp.batchnorm", "hp.lr", "gen.acc_gap", "gen.loss_gap", "gen.test_error",
                   "gen.test_loss", "measure.prunability", "measure.prunability_random", "measure.kept_count",
                   "measure.path_norm", "measure.inverse_margin", "is.converged", "is.finite"):
        assert column in table
    assert (table["gen.acc_gap"] == table["gen.train_acc"] - table["gen.test_acc"]).all()

    # lr 1e8 never converges; most such models reach a NaN loss (diverged; one reaches
    # a finite 5e33). Diverged models are kept in the table and flagged; their
    # prunability is NaN (no finite reference loss), while norms of finite weights
    # are still computed.
    assert not table.loc[table["hp.lr"] > 1, "is.converged"].any()
    diverged = table[table["is.diverged"]]
    assert len(diverged) >= 2 and (diverged["hp.lr"] > 1).all()
    assert diverged["measure.prunability"].isna().all() and not diverged["is.finite"].any()
    assert table.loc[table["hp.lr"] < 1, "measure.prunability"].between(0, 1).all()

    summary = pd.read_csv(results / "stats" / "summary.csv")
    info = pd.read_csv(results / "measure_info.csv")
    assert len(summary) == len(info) * 4  # every measure against every target
    unconverged = int((~table["is.converged"]).sum())
    assert (summary["excluded_unconverged"] == unconverged).all()
    assert (summary["n_used"] + summary["excluded_unconverged"] + summary["excluded_nonfinite"] == 8).all()
    log = (results / "logs" / "statistics.log").read_text()
    assert f"{unconverged} not converged, excluded from every statistic" in log

    curves = pd.read_csv(results / "pruning_curves.csv")
    magnitude = curves[curves["curve"] == "magnitude"]
    # every model with finite weights has its curves (a diverged one's are NaN)
    assert set(table.loc[table["hp.lr"] < 1, "model"]) <= set(magnitude["model"])
    # each magnitude curve starts at the unpruned model and goes down the grid
    assert (magnitude.groupby("model")["alpha"].max() == 1.0).all()

    # prunability for every swept tolerance, from the stored curves; the configured
    # tolerance reproduces the measure's own tau
    sensitivity = pd.read_csv(results / "stats" / "tolerance_sensitivity.csv")
    assert sorted(sensitivity["rel_tol"].unique()) == [0.05, 0.1, 0.5]
    main = sensitivity[sensitivity["rel_tol"] == 0.1].set_index("target")["tau_a"]
    own = summary[summary["measure"] == "prunability"].set_index("target")["tau_a"]
    assert main.to_dict() == pytest.approx(own.to_dict(), nan_ok=True)

    for name in ("replicates", "replicate_spread", "seed_oracle"):  # the e2e grid has no seed axis
        assert pd.read_csv(results / "stats" / f"{name}.csv").empty

    costs = pd.read_csv(results / "measure_costs.csv")
    assert len(costs) == 8 * len(FAMILIES) and (costs["measure_time_s"] > 0).all()


def test_partial_grid_is_listed_and_flagged(e2e):
    # The lr 1e8 half of the grid never converges: the completeness table lists those
    # cells, and every Psi and CMI says it was computed on a partial grid.
    _, results = e2e
    table = pd.read_csv(results / "table.csv")
    completeness = pd.read_csv(results / "stats" / "completeness.csv")
    unconverged = set(table.loc[~table["is.converged"], "model"])
    assert set(completeness.loc[completeness["status"] == "not converged", "model"]) == unconverged
    assert set(completeness["status"]) == {"not converged"}
    summary = pd.read_csv(results / "stats" / "summary.csv")
    assert not summary["full_grid"].any()
    assert (summary["grid_cells_missing"] == 8 - summary["n_used"]).all()
    assert "grid incomplete (8 cells); Psi is computed on a partial grid" in (results / "logs" / "statistics.log").read_text()
    cmi = pd.read_csv(results / "stats" / "cmi.csv")
    info = pd.read_csv(results / "measure_info.csv")
    assert len(cmi) == len(info) * 4 and not cmi["full_grid"].any()
    # the lr 1e8 cells of every (h1, h2) pair that includes lr hold no model pair
    assert (cmi.loc[cmi["n_used"] > 0, "jiang_empty_cells"] > 0).all()


def test_intervals_claims_and_prediction_mi(e2e):
    _, results = e2e
    summary = pd.read_csv(results / "stats" / "summary.csv")
    finite = summary.dropna(subset=["tau_a_low", "tau_a_high"])
    assert len(finite) > 0
    assert (finite["tau_a_low"] <= finite["tau_a_high"]).all()
    assert finite[["tau_a_low", "tau_a_high"]].stack().between(-1, 1).all()
    claims = pd.read_csv(results / "stats" / "claims.csv")
    assert list(claims["claim"]) == ["K1", "K2", "K3", "K3", "K4", "K5", "K6", "K6"]
    assert set(claims["verdict"]) <= {"supported", "not supported", "not tested in this study"}
    own = summary[(summary["measure"] == "prunability") & (summary["target"] == "gen.acc_gap")].iloc[0]
    assert claims.iloc[2]["value"] == pytest.approx(own["tau_a"], nan_ok=True)
    mi = pd.read_csv(results / "stats" / "prediction_mi.csv")
    info = pd.read_csv(results / "measure_info.csv")
    assert len(mi) == len(info) ** 2
    assert mi[["mi", "cmi_given_base"]].stack().dropna().between(0, 1 + 1e-9).all()


def test_measures_are_reproducible_run_to_run(e2e):
    # Every randomised family (random masks, noise draws, ascent starts, Lanczos start,
    # gradient-noise batches) is seeded: forcing the jobs of one cell again gives the
    # same values, bit for bit.
    root, results = e2e
    cell = "depth~2/batchnorm~True/lr~0.01"
    outputs = [results / "measures" / cell / f"{family}.json" for family in FAMILIES]
    before = [json.loads(path.read_text())["values"] for path in outputs]
    snakemake(root, *(str(p.relative_to(root)) for p in outputs), "--force", "--cores", "2", "--configfile", "e2e.yaml")
    after = [json.loads(path.read_text())["values"] for path in outputs]
    assert json.dumps(after) == json.dumps(before)  # as text, so NaN (e.g. steps to CE 0.01) compares equal
    snakemake(root, "--cores", "2", "--configfile", "e2e.yaml")  # the later tests expect an up-to-date study


def test_the_study_lists_its_platforms(e2e):
    # Every model was trained and measured here: one platform, every cell with its
    # training job and each family's job, and the same platform in each record.
    from prunability.platform import describe

    _, results = e2e
    study = json.loads((results / "platform.json").read_text())
    cells = sorted(pd.read_csv(results / "table.csv")["model"])
    assert study["n_platforms"] == 1 and study["n_models"] == 8 and study["n_unrecorded"] == 0
    (entry,) = study["platforms"]
    assert sorted(entry["cells"]) == cells
    assert all(jobs == ["train", *FAMILIES] for jobs in entry["cells"].values())
    here = describe("cpu")
    for key in ("cpu_model", "cpu_flags", "cpu_capability", "torch", "numpy", "python", "kernel"):
        assert entry["platform"][key] == here[key]
    assert entry["platform"]["torch_threads"] == 1 and entry["platform"]["device_type"] == "cpu"  # threads: 1 per job
    assert json.loads((results / "models" / cells[0] / "train.json").read_text())["platform"] == entry["platform"]
    assert "1 platform(s) in platform.json; 0 records without one" in (results / "logs" / "collect_table.log").read_text()


def test_report(e2e):
    root, results = e2e
    result = snakemake(root, "--configfile", "e2e.yaml", "--report", "report.html", timeout=300)
    assert "(ERROR/" not in result.stdout + result.stderr  # docutils errors in a caption, e.g. |P| read as a substitution
    html = (root / "report.html").read_text()
    for name in (*(f"{figure}.png" for figure in FIGURES), "summary.csv", "claims.csv", "completeness.csv", "cmi.csv",
                 "replicates.csv", "replicate_spread.csv", "seed_oracle.csv", "table.csv", "platform.json"):
        assert name in html
    # the report lists a category's entries sorted by their labels: the number gives the reading order
    for number, figure in enumerate(FIGURES, start=1):
        assert f'"filename": "{figure}.png", "labels": {{"#": "{number:02d}", "figure": ' in html
    assert "Kuhn et al., 2021" in html  # the workflow description page
    # its first page states the answer: each claim with its verdict, from claims.csv
    claims = pd.read_csv(results / "stats" / "claims.csv")
    front = (results / "report" / "front.rst").read_text()
    assert front.endswith((root / "workflow" / "report" / "workflow.rst").read_text())
    assert front.count("   * - K") == len(claims) and "The answer of study" in html
    for verdict, n in claims["verdict"].value_counts().items():
        assert f"{n} {verdict}" in front


def test_analysis_jobs_run_without_torch(e2e, without_torch):
    # The table, statistics, claims and figures jobs rerun in interpreters that cannot
    # import torch (envs/analysis.yaml has none); training and measures are not rerun.
    root, results = e2e
    before = (results / "stats" / "summary.csv").read_text()
    result = snakemake(root, "--cores", "2", "--configfile", "e2e.yaml", "--forcerun", "collect_table",
                       env=without_torch)
    ran = set(re.findall(r"^Finished jobid: \d+ \(Rule: (\w+)\)", result.stdout + result.stderr, re.MULTILINE))
    assert ran == {"collect_table", *STATISTICS, "figures", "report_front", "all"}
    assert (results / "stats" / "summary.csv").read_text() == before


def test_a_changed_local_cifar10_folder_rebuilds_the_split(tmp_path):
    root = copy_workflow(tmp_path / "repo")
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta"):
        (folder / name).write_bytes(b"x")  # a dry run only looks at the files' times
    write_config(root / "local.yaml", {"study": "local", "grid": {"depth": [1]},
                                      "data": {"source": "cifar10", "local_dir": str(tmp_path / "cifar")}})
    data = root / "results" / "local" / "data"
    data.mkdir(parents=True)
    time.sleep(0.05)
    for name in ("split.pt", "summary.json", "label_noise.csv"):
        (data / name).write_bytes(b"x")
    assert "prepare_data" not in _scheduled_jobs(root, "local.yaml")
    time.sleep(0.05)
    (folder / "data_batch_3").write_bytes(b"y")
    out = snakemake(root, "-n", "--configfile", "local.yaml").stdout
    assert "prepare_data" in _scheduled_jobs(root, "local.yaml")
    assert "data_batch_3" in out


def _scheduled_jobs(root: Path, configfile: str) -> dict[str, int]:
    """Rule -> job count that a dry run would execute."""
    out = snakemake(root, "-n", "--configfile", configfile).stdout
    stats = out.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in out else ""
    jobs = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.MULTILINE)}
    jobs.pop("total", None)
    return jobs


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("pruning", "rel_tol", 0.3, {"measure_pruning"}),
        ("norms", "margin_quantile", 0.2, {"measure_norms"}),
        ("flatness", "mc_draws", 3, {"measure_flatness"}),
        ("hessian", "z", 2.0, {"measure_hessian"}),
        ("optimization", "mode", "eval", {"measure_optimization"}),
        (None, "max_epochs", 41, {"train_model", *(f"measure_{f}" for f in FAMILIES)}),  # the control
    ],
)
def test_a_setting_change_reruns_only_what_it_invalidates(e2e, section, key, value, expected):
    root, _ = e2e
    changed = copy.deepcopy(E2E)
    if section is None:
        changed["train"][key] = value
    else:
        changed["measures"].setdefault(section, {})[key] = value
    write_config(root / "changed.yaml", changed)
    jobs = _scheduled_jobs(root, "changed.yaml")
    downstream = {"collect_table", *STATISTICS, "figures", "report_front", "all"}
    assert set(jobs) == expected | downstream
    for rule in expected:
        assert jobs[rule] == 4  # 8 cells, 2 per job


@pytest.mark.parametrize("key, value", [("checkpoint_every", 5), ("checkpoint_min_interval_s", 1)])
def test_checkpoint_settings_rerun_nothing(e2e, key, value):
    root, _ = e2e
    changed = copy.deepcopy(E2E)
    changed["train"][key] = value
    write_config(root / "changed.yaml", changed)
    assert _scheduled_jobs(root, "changed.yaml") == {}


@pytest.mark.parametrize("axes_within_job, jobs_per_family", [([], 8), (["depth", "lr"], 2)])
def test_regrouping_cells_into_jobs_never_retrains(e2e, axes_within_job, jobs_per_family):
    # Each cell's hyperparameters come from its path, not from the job's params, so
    # regrouping the cells (1 per job on a cluster, or 4) leaves training up to date. The
    # measure jobs run again: their sets of input files (the cells' models) change.
    root, _ = e2e
    changed = copy.deepcopy(E2E)
    changed["resources"] = {"axes_within_job": axes_within_job}
    write_config(root / "changed.yaml", changed)
    jobs = _scheduled_jobs(root, "changed.yaml")
    assert "train_model" not in jobs
    assert {jobs[f"measure_{family}"] for family in FAMILIES} == {jobs_per_family}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"bootstrap": {"resamples": 50}}, {"statistics", "claims"}),
        ({"cmi_max_set_size": 1}, {"conditional_mutual_information"}),
        ({"claims": {"tau_threshold": 0.3}}, {"claims"}),
        ({"main_target": "test_loss"}, {"prediction_mutual_information", "claims"}),
    ],
)
def test_a_statistics_setting_reruns_only_its_statistics(e2e, change, expected):
    root, _ = e2e
    changed = copy.deepcopy(E2E)
    changed.setdefault("statistics", {}).update(change)
    write_config(root / "changed.yaml", changed)
    # the report's first page is rewritten when the claims are
    front = {"report_front"} if "claims" in expected else set()
    assert set(_scheduled_jobs(root, "changed.yaml")) == expected | front | {"figures", "all"}


# --------------------------------------------------------------------------- resume

RESUME = load_preset("smoke")
RESUME.update(study="resume", grid={"depth": [2]})
RESUME["model"]["base_width"] = 8
RESUME["data"]["max_train"] = None  # all 1257 images: epochs slow enough to kill mid-run
RESUME["hyperparameters"]["dropout"] = 0.2  # exercises the restored RNG state
RESUME["train"].update(ce_target=1.0e-9, max_epochs=25,  # never converges: runs all epochs
                       checkpoint_min_interval_s=0)  # a checkpoint every epoch, to be killed after
CELL = "depth~2"


def _final_state(root: Path) -> dict:
    return torch.load(root / "results" / "resume" / "models" / CELL / "final.pt", weights_only=True)


def test_killed_training_resumes_to_the_same_weights(tmp_path):
    straight = copy_workflow(tmp_path / "straight")
    killed = copy_workflow(tmp_path / "killed")
    for root in (straight, killed):
        write_config(root / "resume.yaml", RESUME)
    snakemake(straight, "train_all", "--cores", "1", "--configfile", "resume.yaml")

    checkpoint = killed / "results" / "resume" / "checkpoints" / CELL / "in_progress.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "train_all", "--cores", "1", "--configfile", "resume.yaml"],
        cwd=killed, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 240
    epoch = 0
    while epoch < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
        if checkpoint.exists():
            try:
                epoch = torch.load(checkpoint, weights_only=True)["epoch"]
            except (OSError, RuntimeError, EOFError, KeyError):
                pass  # replaced while being read; try again
    os.killpg(process.pid, signal.SIGKILL)  # snakemake and the training job with it
    process.wait()
    assert epoch >= 3, "training finished or never checkpointed before it could be killed"
    assert not (killed / "results" / "resume" / "models" / CELL / "final.pt").exists()

    snakemake(killed, "--unlock", "--configfile", "resume.yaml")
    snakemake(killed, "train_all", "--cores", "1", "--configfile", "resume.yaml")
    summary = json.loads((killed / "results" / "resume" / "models" / CELL / "train.json").read_text())
    assert summary["resumed_from_epoch"] >= 3 and summary["epochs"] == 25
    assert not checkpoint.exists()

    a, b = _final_state(straight), _final_state(killed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    curve_a = pd.read_csv(straight / "results" / "resume" / "models" / CELL / "curve.csv").drop(columns="wall_time_s")
    curve_b = pd.read_csv(killed / "results" / "resume" / "models" / CELL / "curve.csv").drop(columns="wall_time_s")
    pd.testing.assert_frame_equal(curve_a, curve_b)


# --------------------------------------------------------------------------- bad configs

BAD_CONFIGS = [
    ({"unknown_key": 1}, "(top level): Additional properties are not allowed ('unknown_key' was unexpected)"),
    ({"train": {"max_epoch": 3}}, "train: Additional properties are not allowed ('max_epoch' was unexpected)"),
    ({"grid": {"depth": [0, 1]}}, "grid.depth.0: 0 is less than the minimum of 1"),
    ({"grid": {}}, "grid: {} should be non-empty"),
    ({"grid": {"width": [1, 1]}}, "grid.width: [1, 1] has non-unique elements"),
    ({"measures": {"pruning": {"rel_tol": -0.1}}}, "measures.pruning.rel_tol: -0.1 is less than the minimum of 0"),
    ({"device": "gpu"}, "device: 'gpu' is not one of ['auto', 'cpu', 'cuda']"),
    ({"data": {"source": "cifar10", "local_dir": "no/such/folder"}}, "data.local_dir: folder 'no/such/folder' does not exist"),
    ({"figures": {"target": "test_loss"}, "statistics": {"targets": ["acc_gap"]}}, "figures.target 'test_loss' is not one of statistics.targets"),
    ({"study": "a b"}, "study: 'a b' does not match"),
    ({"study": ".."}, "study: '..' does not match"),
    ({"statistics": {"targets": ["acc_gap"], "main_target": "test_loss"}},
     "statistics.main_target 'test_loss' is not one of statistics.targets"),
    ({"statistics": {"bootstrap": {"level": 1.5}}}, "statistics.bootstrap.level: 1.5 is greater than or equal to the maximum of 1"),
    ({"resources": {"axes_within_job": ["lr"]}}, "resources.axes_within_job: ['lr'] are not grid axes"),
    ({"measures": {"pruning": {"resolution": 0}}}, "measures.pruning.resolution: 0 is less than or equal to the minimum of 0"),
    ({"train": {"max_epochs": 3.0}}, "train.max_epochs: 3.0 is not a whole number (write 3)"),
    ({"train": {"ce_target": float("nan")}}, "train.ce_target: nan is not a finite number"),
    ({"data": {"split_seed": -1}}, "data.split_seed: -1 is less than the minimum of 0"),
    ({"grid": {"seed": [0, 2**32]}}, "grid.seed.1: 4294967296 is greater than the maximum of 4294967295"),
]


@pytest.mark.parametrize("change, message", BAD_CONFIGS, ids=[m.split(":")[0] for _, m in BAD_CONFIGS])
def test_bad_config_is_rejected_before_any_job(e2e, change, message):
    root, _ = e2e
    config = {"study": "bad", "grid": {"depth": [1]}}
    config.update(change)
    write_config(root / "bad.yaml", config)
    result = snakemake(root, "--cores", "1", "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    assert f"invalid configuration: {message}" in result.stdout + result.stderr
    assert not (root / "results" / "bad").exists()


def test_a_key_given_twice_is_rejected_naming_the_line(e2e):
    root, _ = e2e
    (root / "twice.yaml").write_text("study: twice\ngrid:\n  depth: [1]\ntrain:\n  max_epochs: 3\ntrain:\n  max_epochs: 4\n")
    result = snakemake(root, "--cores", "1", "--configfile", "twice.yaml", check=False)
    assert result.returncode != 0
    assert re.search(r"invalid configuration: \S*twice\.yaml, line 6, column 1: key 'train' given twice \(first on line 4\)",
                     result.stdout + result.stderr)
    assert not (root / "results" / "twice").exists()


def test_sensitivity_remeasures_a_subset(e2e):
    """The same settings give the study's values back bit for bit (no tau moves); another
    setting is applied and written next to the study."""
    root, results = e2e
    command = [sys.executable, "-m", "prunability.sensitivity", str(results), "--configfile", str(root / "e2e.yaml"),
               "--family", "norms", "--models", "3"]
    # 0.1: the study's setting (the schema's default)
    same = subprocess.run([*command, "--set", "margin_quantile=0.1"], capture_output=True, text=True, cwd=root)
    assert same.returncode == 0, same.stderr
    table = pd.read_csv(results / "sensitivity" / "norms-margin_quantile=0.1.csv")
    assert (table["tau_change"].fillna(0) == 0).all() and (table["largest_value_change"].fillna(0) == 0).all()
    assert (table["n_models"] == 3).all()  # three of the four converged models
    other = subprocess.run([*command, "--set", "margin_quantile=0.5"], capture_output=True, text=True, cwd=root)
    assert other.returncode == 0, other.stderr
    moved = pd.read_csv(results / "sensitivity" / "norms-margin_quantile=0.5.csv").set_index("measure")
    assert moved.loc["inverse_margin", "largest_value_change"] > 0 and moved.loc["params", "largest_value_change"] == 0
    bad = subprocess.run([*command, "--set", "margin_quantile=2"], capture_output=True, text=True, cwd=root)
    assert bad.returncode == 2 and "margin_quantile" in bad.stderr
