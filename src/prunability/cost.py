"""What a preset costs, before it is launched.

    python -m prunability.cost                                   # the default study
    python -m prunability.cost --configfile configs/paper-nin-cifar10.yaml --device cuda --gpus 4
    python -m prunability.cost --configfile configs/cifar10-subset.yaml --calibrate
    python -m prunability.cost --configfile configs/cifar10-subset.yaml --calibrate --from-run results/cifar10-subset

Prints the jobs per rule (from a Snakemake dry run of the whole preset), then a small
cost model: for every grid cell, the images each stage pushes through the model, split
by what is done with them (``KINDS``: a training step, a gradient, a forward pass, a
Hessian-vector product), times seconds per image of that kind; plus one start-up per
job; then the wall time with the given cores or GPUs and the CPU- or GPU-hours.

Seconds per image come from one of
- ``--calibrate``: each kind timed on random images of the preset's shape, with the
  package's own code and batch sizes, for every distinct model of the grid (and batch
  size) as the jobs build it, on ``--device`` with one thread on a CPU (every job runs
  with ``threads: 1``); and the start-up of a one-rule Snakemake job;
- ``--from-run results/<study>``: an earlier run's in-process times (train.json and
  each family's JSON) over the images its counts imply, per FLOP so that they carry to
  other model sizes; start-up from its Snakemake benchmark files;
- neither: FLOPs (counted by torch on one image) at an assumed sustained throughput
  plus an assumed per-batch overhead (``ASSUMED_DEVICE``), stated in the output.

How many epochs a model trains to the CE target, where each pruning sweep stops, how
many halvings a flatness search takes and how many Hessian-vector products ARPACK needs
are properties of the trained models, not of the settings: the model takes the
assumptions below (the epoch cap, an upper bound), and ``--from-run`` also prints the
estimate with that run's own counts next to its measured totals per rule.
"""

from __future__ import annotations

import argparse
import copy
import csv
import itertools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from .config import SCHEMA_PATH, ConfigError, cell_hyperparameters, load_preset, parse_cell

REPO = SCHEMA_PATH.parents[2]
# What an image costs depends on what is done with it (and at which batch size):
# step: a training step (forward, backward, optimizer) at the cell's batch size;
# grad: a gradient of a flatness ascent minibatch (measures.flatness.ascent_batch_size);
# forward: eval-mode forward (inference); folded: the same on the BatchNorm-folded model;
# hvp: a Hessian-vector product (forward, backward with graph, second backward).
KINDS = ("step", "grad", "forward", "folded", "hvp")
MODEL_HP = ("depth", "width", "batchnorm", "dropout")

# --------------------------------------------------------------------------- assumptions

# Outcomes of training, not settings: the model's guesses, replaced by a run's counts with
# --from-run. Pruning: the kept fraction at which each sweep has failed every criterion
# (on the project's first 64-model NiN grid on digits, trained to CE 0.01, a relative
# tolerance of 0.1 let only 10-30% of the weights go and random masks failed at once;
# the magnitude sweep runs on to the loosest tolerance of rel_tol_sweep and to the
# accuracy criterion: where that is, is a guess).
ASSUMED_SWEEP_STOP = {"magnitude": 0.5, "layerwise": 0.8, "bn_folded": 0.8, "random": 0.99}
# Flatness: halvings per scale search (at most search_iterations; a guess).
ASSUMED_BISECTION_STEPS = 10
# Hessian: implicit restarts of ARPACK after its first Lanczos factorization of ncv
# vectors (each restart costs ncv - k more products). The CPU presets needed none
# (21 products for k = 5, ncv = 20); the paper's tol 0.001 and k = 10 may need some.
ASSUMED_ARPACK_RESTARTS = 0

# Without --calibrate or --from-run: sustained float32 FLOP/s of one job, and the fixed
# cost of a batch (kernel launches, Python), per kind. Assumptions, not measurements:
# cuda is ~22% of an H100 SXM's 67 TFLOP/s float32 peak (train.fp32_precision ieee: no
# TF32) and ~1 ms per training step of a NiN (about 100 kernel launches with the
# optimizer); cpu is one core at ~10 GFLOP/s. SVD work (norms) at svd_flops.
ASSUMED_DEVICE = {
    "cuda": {"flops": 15e12, "step_s": 1e-3, "batch_s": 3e-4, "hvp_batch_s": 3e-3, "svd_flops": 5e9, "startup_s": 10.0},
    "cpu": {"flops": 10e9, "step_s": 2e-3, "batch_s": 1e-3, "hvp_batch_s": 5e-3, "svd_flops": 2e9, "startup_s": 5.0},
}
# The GPU in a cost is held for the whole job: start-up (imports, CUDA context, loading
# the split and models) counts as GPU time.


# --------------------------------------------------------------------------- the preset


def data_shape(config: dict, root: Path) -> tuple[int, int, tuple[int, int, int], int, str]:
    """(training images, test images, image shape, classes, where the sizes come from)."""
    data = config["data"]
    if data["source"] == "digits":
        n = 1797  # scikit-learn's digits; train_test_split holds out ceil(fraction * n)
        n_test = math.ceil(data["test_fraction"] * n)
        n_train, n_test, shape, how = n - n_test, n_test, (1, 8, 8), "scikit-learn digits"
    else:
        n_train, n_test, shape, how = 50_000, 10_000, (3, 32, 32), "CIFAR-10 (50000/10000)"
        if data["local_dir"]:
            from .data import read_cifar10_folder

            folder = Path(data["local_dir"])
            try:
                split = read_cifar10_folder(folder if folder.is_absolute() else root / folder)
                n_train, n_test, how = len(split["y_train"]), len(split["y_test"]), f"read from {folder}"
            except Exception as error:  # a folder that is elsewhere on the cluster: full CIFAR-10 assumed
                how = f"{folder} not readable here ({type(error).__name__}); full CIFAR-10 assumed"
    n_train = min(n_train, data["max_train"] or n_train)
    n_test = min(n_test, data["max_test"] or n_test)
    return n_train, n_test, shape, 10, how


def grid_cells(config: dict) -> list[dict]:
    """Every cell's hyperparameters, in the grid's order."""
    grid = config["grid"]
    return [cell_hyperparameters(config["hyperparameters"], dict(zip(grid, values)))
            for values in itertools.product(*grid.values())]


def cells_per_job(config: dict) -> int:
    return math.prod(len(config["grid"][axis]) for axis in config["resources"]["axes_within_job"])


def stability_model(config: dict) -> tuple[dict, list[dict]]:
    """(hyperparameters, runs) of the generalization-stability branch (no runs when off)."""
    section = config["generalization_stability"]
    if not section["enabled"]:
        return {}, []
    from .stability_analysis import plan_runs

    recipe = section["train"]
    hp = dict(config["hyperparameters"], optimizer=recipe["optimizer"], lr=recipe["lr"], batch_size=recipe["batch_size"])
    return hp, list(plan_runs(section).values())


# --------------------------------------------------------------------------- the pass model


def sweep_evaluations(settings: dict, stop: float) -> int:
    """Loss evaluations of one pruning sweep that stops at kept fraction ``stop``: every
    point of 1, 1 - h, ... down to the first failure (pruning.search_prunability; the
    point alpha = 1 is the unpruned loss, already known). Points that share a kept count
    share an evaluation, which matters only for nets of a few thousand weights."""
    from .pruning import sweep_alphas

    points = sweep_alphas(settings["resolution"], settings["alpha_min"])[1:]
    return min(sum(alpha >= stop for alpha in points) + 1, len(points))


def assumed_outcomes(config: dict, epochs: float | None = None) -> dict:
    """The counts the settings do not fix, as the model assumes them."""
    train = config["train"]
    measures = config["measures"]
    k = measures["hessian"]["top_k"]
    ncv = max(2 * k + 1, 20)  # scipy's eigsh default (the parameter count is larger)
    return {
        # ce_target stops at the first epoch below the target: the cap is an upper bound
        "epochs": train["max_epochs"] if epochs is None else epochs,
        "evaluations": {name: sweep_evaluations(measures["pruning"], stop) for name, stop in ASSUMED_SWEEP_STOP.items()},
        "bisection": {name: min(ASSUMED_BISECTION_STEPS, measures["flatness"]["search_iterations"])
                      for name in ("sigma", "sigma_mag", "alpha", "alpha_mag")},
        # the first factorization (ncv products, one more to check it), then each restart
        "hvps": ncv + 1 + ASSUMED_ARPACK_RESTARTS * (ncv - k),
    }


def images(config: dict, hp: dict, n: int, n_test: int, outcome: dict) -> dict[str, Counter]:
    """Images per model, by stage and kind (KINDS): the pass-count model. Each line names
    the code it counts."""
    m = config["measures"]
    bn = bool(hp["batchnorm"])
    stages: dict[str, Counter] = {}
    E = outcome["epochs"]
    # train.train_model: a step on every training image per epoch, then the stopping
    # rule's evaluate() of the training and the test set (unfolded model)
    stages["train_model"] = Counter(step=E * n, forward=E * (n + n_test))
    if "pruning" in m["families"]:
        s, ev = m["pruning"], outcome["evaluations"]
        searches = ev["magnitude"] + ev["layerwise"] + (ev["bn_folded"] if bn else 0) + s["random_seeds"] * ev["random"]
        stages["measure_pruning"] = Counter(folded=(
            n + n_test  # measures/pruning.py: the unpruned train loss (base) and test accuracy
            + searches * n  # _search: one evaluate() of the training set per sweep point
            + len(s["instability_fractions"]) * (n + n_test)))  # instability: one train, one test pass per fraction
    if "flatness" in m["families"]:
        s, b = m["flatness"], outcome["bisection"]
        kind = "folded" if s["fold_bn"] and bn else "forward"
        noise, ascent = b["sigma"] + b["sigma_mag"], b["alpha"] + b["alpha_mag"]
        batch = min(s["ascent_batch_size"], n)
        stages["measure_flatness"] = Counter({
            kind: n  # measures/flatness.py: base_acc
            + noise * s["mc_draws"] * n  # _noise_drop: one evaluate() per Monte Carlo draw per halving
            + ascent * s["restarts"] * (n + batch),  # _ascent_drop: evaluate() at the ascent's end, its last loss
            # worst_case_perturbation: ascent_steps gradients of a minibatch per restart per halving
            "grad": ascent * s["restarts"] * s["ascent_steps"] * batch})
    if "hessian" in m["families"]:
        s = m["hessian"]
        subset = n if s["max_examples"] is None else min(s["max_examples"], n)
        # measures/hessian.py: every ARPACK matvec is one Hessian-vector product over the subset
        stages["measure_hessian"] = Counter(hvp=outcome["hvps"] * subset)
    if "optimization" in m["families"]:
        batch = m["optimization"]["batch_size"] or hp["batch_size"]
        # measures/optimization.py gradient_noise: one gradient per full batch of one pass
        stages["measure_optimization"] = Counter(step=(n // batch) * batch)
    if "norms" in m["families"]:
        # measures/norms.py: the margins, one pass (plus the SVDs: seconds per model apart)
        stages["measure_norms"] = Counter({"folded" if m["norms"]["fold_bn"] and bn else "forward": n})
    if "prune_potential" in m["families"]:
        s = m["prune_potential"]
        from .measures.prune_potential import prune_ratio_grid

        ratios = len(prune_ratio_grid(s["resolution"], s["prune_ratio_max"]))
        sets = len(s["corruptions"]) * len(s["severities"])
        noise_images = min(s["noise_images"], n_test)
        # measures/prune_potential.py: at every ratio the train, test and corrupted sets
        # (curves), and noise_samples draws per eps of noise_images test images (noise)
        stages["measure_prune_potential"] = Counter({"folded" if bn else "forward": ratios * (
            n + n_test * (1 + sets) + s["noise_samples"] * len(s["noise_eps"]) * noise_images)})
    return stages


def stability_images(config: dict, run: dict, n: int, n_test: int) -> Counter:
    """Images of one generalization-stability run (stability.train_run): a step per
    training image per epoch, evaluate() of train and test after each epoch, and one more
    test pass before each epoch's pruning (the union of the layers' pruning epochs)."""
    from .stability import pruning_epochs

    section = config["generalization_stability"]
    epochs = section["train"]["epochs"]
    events = set()
    if run["kind"] != "baseline":
        for layer in section["layers"]:
            events.update(pruning_epochs(layer["start_epoch"], layer["end_epoch"], run["retrain_period"]))
    return Counter(step=epochs * n, forward=epochs * (n + n_test) + len(events) * n_test)


# --------------------------------------------------------------------------- seconds per image


def _data(shape: tuple[int, int, int], n: int, classes: int, device):
    import torch

    from .data import channel_stats
    from .train import DeviceData

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    mean, std = channel_stats(x)
    return DeviceData(x.to(device), y.to(device), x[:2].to(device), y[:2].to(device),
                      mean.to(device).view(1, -1, 1, 1), std.to(device).view(1, -1, 1, 1), classes)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, min_s: float = 0.05, min_calls: int = 3, max_calls: int = 10) -> float:
    """Median seconds per call of ``fn`` after one warm-up call (the median: a busy
    neighbour on a shared machine slows some calls, not the cost model)."""
    fn()
    _sync(device)
    calls, started = [], time.perf_counter()
    while len(calls) < max_calls and (len(calls) < min_calls or time.perf_counter() - started < min_s):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        calls.append(time.perf_counter() - t0)
    return statistics.median(calls)


def svd_work(model, data) -> float:
    """Multiply-adds of the norms family's SVDs, ~ m n min(m, n) per matrix (measures/norms.py:
    spec and spec_fft, of the weights and of their distance from init; a conv of kernel
    > 1x1 has one SVD per frequency of its padded grid)."""
    from .measures.norms import circular_grids
    from .pruning import prunable_weights

    grids = circular_grids(model, data.normalize(data.x_train[:1]))
    work = 0.0
    for name, w in prunable_weights(model).items():
        m, rest = w.shape[0], w[0].numel()
        work += m * rest * min(m, rest)  # spec: the reshaped matrix
        if w.dim() == 4:
            freqs = grids[name][0] * grids[name][1] if w.shape[2] * w.shape[3] > 1 else 1
            work += freqs * m * w.shape[1] * min(m, w.shape[1])  # spec_fft
        else:
            work += m * rest * min(m, rest)
    return 2 * work  # the weights and their distance from init


def flop_counts(config: dict, hp: dict, shape, classes: int) -> dict:
    """FLOPs per image of each kind (torch's counter: convolutions and matrix products), and
    the norms family's SVD work, for one cell's model on the CPU."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from .measures.hessian import hessian_vector_product
    from .train import model_for

    data = _data(shape, 2, classes, "cpu")
    torch.manual_seed(0)
    model = model_for(hp, config["model"], data)
    x, y = data.normalized("train"), data.y_train
    counts = {}
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model.train()(x), y).backward()
    counts["step"] = counts["grad"] = counter.get_total_flops() / 2
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(x)
    counts["forward"] = counts["folded"] = counter.get_total_flops() / 2
    hvp, n_params = hessian_vector_product(model, data, 2, 2)
    with FlopCounterMode(display=False) as counter:
        hvp(torch.ones(n_params, dtype=torch.float64).numpy())
    counts["hvp"] = counter.get_total_flops() / 2
    counts["svd"] = svd_work(model, data)
    return counts


def assumed_seconds(config: dict, hp: dict, flops: dict, device: str) -> dict:
    """Seconds per image of each kind (and per model for the SVDs) at ASSUMED_DEVICE."""
    a = ASSUMED_DEVICE[device]
    eval_batch = config["measures"]["pruning"]["eval_batch_size"]
    return {
        "step": flops["step"] / a["flops"] + a["step_s"] / hp["batch_size"],
        "grad": flops["grad"] / a["flops"] + a["step_s"] / config["measures"]["flatness"]["ascent_batch_size"],
        "forward": flops["forward"] / a["flops"] + a["batch_s"] / eval_batch,
        "folded": flops["folded"] / a["flops"] + a["batch_s"] / eval_batch,
        "hvp": flops["hvp"] / a["flops"] + a["hvp_batch_s"] / config["measures"]["hessian"]["eval_batch_size"],
        "svd": flops["svd"] * 8 / a["svd_flops"],  # ~8 real flops per complex multiply-add
    }


# On a CPU, a timed call handles at most this many FLOPs (a second or two on one core);
# on a GPU every call has the size the jobs use.
CPU_FLOPS_PER_CALL = 2e10


def measure_seconds(config: dict, hp: dict, n: int, flops: dict, shape, classes: int, device) -> dict:
    """Seconds per image of each kind for one cell's model on ``device``, timed on random
    images with the code and batch sizes the jobs use: a training step, an ascent
    gradient, ``evaluate()`` of the training set (its loss and accuracy included; the
    BN-folded model for the measures), a Hessian-vector product over the Hessian's
    subset; and the norms family on a handful of images (its SVDs), per model."""
    import torch
    import torch.nn.functional as F

    from .measures import compute_family
    from .measures.hessian import hessian_vector_product
    from .models import fold_batchnorm, has_batchnorm
    from .train import evaluate, make_optimizer, model_for

    def images(real: int, kind: str) -> int:  # the images of one timed call
        return real if device.type != "cpu" else max(1, min(real, int(CPU_FLOPS_PER_CALL // flops[kind])))

    m = config["measures"]
    step_batch, grad_batch = hp["batch_size"], min(m["flatness"]["ascent_batch_size"], n)
    data = _data(shape, max(step_batch, grad_batch), classes, device)
    torch.manual_seed(hp["seed"])
    model = model_for(hp, config["model"], data).to(device)
    optimizer = make_optimizer(hp["optimizer"], model.parameters(), hp["lr"], hp["weight_decay"])
    x, y = data.normalized("train"), data.y_train

    def step():
        loss = F.cross_entropy(model(x[:step_batch]), y[:step_batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def grad():
        torch.autograd.grad(F.cross_entropy(model(x[:grad_batch]), y[:grad_batch]), list(model.parameters()))

    seconds = {"step": _timed(step, device) / step_batch, "grad": _timed(grad, device) / grad_batch}
    model.eval()
    folded = fold_batchnorm(model) if has_batchnorm(model) else model
    evaluated = _data(shape, images(n, "forward"), classes, device)
    for kind, net, batch in (("forward", model, config["train"]["eval_batch_size"]),
                             ("folded", folded, m["pruning"]["eval_batch_size"])):
        seconds[kind] = _timed(lambda: evaluate(net, evaluated, "train", batch), device) / len(evaluated.y_train)
    subset = images(min(m["hessian"]["max_examples"] or n, n), "hvp")
    hvp, n_params = hessian_vector_product(model, _data(shape, subset, classes, device), m["hessian"]["eval_batch_size"], subset)
    vector = torch.randn(n_params, dtype=torch.float64).numpy()
    seconds["hvp"] = _timed(lambda: hvp(vector), device, min_calls=1) / subset
    torch.manual_seed(hp["seed"] + 1)
    init = model_for(hp, config["model"], data).to(device)
    settings = dict(m["norms"], eval_batch_size=4)
    small = _data(shape, 4, classes, device)  # the norms family but for its margins pass: the SVDs
    seconds["svd"] = _timed(lambda: compute_family("norms", model, init, small, settings, log=lambda _: None), device, min_calls=1)
    return seconds


def startup_seconds(device: str) -> float:
    """One job's start-up: a one-rule Snakemake workflow whose script imports what the
    training and measure jobs import (and starts CUDA on a GPU), timed by Snakemake's own
    benchmark as the jobs are; without Snakemake, the imports in a fresh Python."""
    imports = "import torch, pandas, prunability.measures, prunability.train, prunability.data, prunability.io\n"
    if device == "cuda":
        imports += "torch.zeros(1, device='cuda')\n"
    with tempfile.TemporaryDirectory(prefix="prunability-cost-") as tmp:
        folder = Path(tmp)
        (folder / "job.py").write_text(imports + "open(snakemake.output[0], 'w').close()\n")
        (folder / "Snakefile").write_text('rule job:\n    output: "done"\n    benchmark: "job.tsv"\n    script: "job.py"\n')
        result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--quiet"], cwd=folder,
                                capture_output=True, text=True)
        if result.returncode == 0 and (folder / "job.tsv").is_file():
            with open(folder / "job.tsv", newline="") as f:
                return float(next(csv.DictReader(f, delimiter="\t"))["s"])
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", imports], check=True)
        return time.perf_counter() - started


# --------------------------------------------------------------------------- an earlier run


def benchmark_totals(study: Path) -> dict[str, tuple[int, float]]:
    """rule -> (jobs, seconds) from Snakemake's benchmark files (column s)."""
    totals: dict[str, tuple[int, float]] = {}
    for tsv in sorted((study / "benchmarks").rglob("*.tsv")):
        rule = tsv.relative_to(study / "benchmarks").parts[0]
        with open(tsv, newline="") as f:
            seconds = float(next(csv.DictReader(f, delimiter="\t"))["s"])
        jobs, total = totals.get(rule, (0, 0.0))
        totals[rule] = (jobs + 1, total + seconds)
    return totals


def run_cells(study: Path, config: dict) -> list[tuple[dict, dict, dict]]:
    """(hyperparameters, outcome counts, in-process seconds by stage) of every trained cell
    of an earlier run: epochs from train.json, sweep evaluations and halvings from the
    families' JSON details, Hessian-vector products from the Hessian jobs' logs (mean)."""
    models = study / "models"
    hvps = [int(v) for log in (study / "logs" / "measure_hessian").rglob("*.log")
            for v in re.findall(r"from (\d+) Hessian-vector products", log.read_text())]
    assumed = assumed_outcomes(config)
    cells = []
    for summary_path in sorted(models.rglob("train.json")):
        cell = summary_path.parent.relative_to(models).as_posix()
        summary = json.loads(summary_path.read_text())
        hp = cell_hyperparameters(config["hyperparameters"], parse_cell(cell))
        outcome = copy.deepcopy(assumed)
        outcome["epochs"] = summary["epochs"]
        seconds = {"train_model": summary["wall_time_s"]}
        if hvps:
            outcome["hvps"] = statistics.mean(hvps)
        for family in config["measures"]["families"]:
            path = study / "measures" / cell / f"{family}.json"
            if not path.is_file():
                continue
            record = json.loads(path.read_text())
            seconds[f"measure_{family}"] = record["wall_time_s"]
            details = record.get("details") or {}
            if family == "pruning" and "curves" in details:
                curves = details["curves"]
                random = [len(c) - 1 for name, c in curves.items() if name.startswith("random_seed_")]
                outcome["evaluations"] = {
                    "magnitude": len(curves["magnitude"]) - 1, "layerwise": len(curves["layerwise"]) - 1,
                    "bn_folded": len(curves.get("bn_folded", [None])) - 1,
                    "random": statistics.mean(random) if random else 0}
            if family == "flatness" and "histories" in details:
                outcome["bisection"] = {name: len(h) for name, h in details["histories"].items()}
        cells.append((hp, outcome, seconds))
    return cells


def seconds_from_run(config: dict, cells, flops_of, n: int, n_test: int) -> dict[str, float]:
    """Seconds per FLOP of each kind from a run's in-process times: the folded forward from
    the pruning family (nothing but evaluations), the step from training once its
    evaluations are taken off at that rate, Hessian-vector products from the Hessian
    family, the SVDs from the norms family minus its margins pass."""
    def total(stage, kind, fn=lambda hp, o: images(config, hp, n, n_test, o)):
        return sum(fn(hp, o)[stage][kind] * flops_of(hp)[kind] for hp, o, s in cells if stage in s)

    def spent(stage):
        return sum(s[stage] for hp, o, s in cells if stage in s)

    rate = {}
    if total("measure_pruning", "folded"):
        rate["folded"] = rate["forward"] = spent("measure_pruning") / total("measure_pruning", "folded")
    if "forward" in rate and total("train_model", "step"):
        evaluations = total("train_model", "forward") * rate["forward"]
        rate["step"] = max(spent("train_model") - evaluations, 0.0) / total("train_model", "step")
    if "forward" in rate and total("measure_flatness", "grad"):
        evaluations = (total("measure_flatness", "folded") + total("measure_flatness", "forward")) * rate["forward"]
        rate["grad"] = max(spent("measure_flatness") - evaluations, 0.0) / total("measure_flatness", "grad")
    if total("measure_hessian", "hvp"):
        rate["hvp"] = spent("measure_hessian") / total("measure_hessian", "hvp")
    svd = sum(flops_of(hp)["svd"] for hp, o, s in cells if "measure_norms" in s)
    if svd and "forward" in rate:
        margins = sum(n * flops_of(hp)["forward"] for hp, o, s in cells if "measure_norms" in s) * rate["forward"]
        rate["svd"] = max(spent("measure_norms") - margins, 0.0) / svd
    return rate


# --------------------------------------------------------------------------- the plan


def snakemake_job_counts(configfiles: list[str], root: Path) -> tuple[dict[str, int] | None, str]:
    """rule -> jobs of a dry run of the whole preset (--forceall), and a note."""
    command = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--forceall", "--cores", "1"]
    if configfiles:
        command += ["--configfile", *[str(Path(p).resolve()) for p in configfiles]]
    try:
        result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"snakemake dry run failed ({error})"
    if "No module named snakemake" in result.stderr:
        return None, "snakemake is not installed here: no job counts (the estimate counts jobs from the grid)"
    counts: dict[str, int] = {}
    table = result.stdout.split("Job stats:")[1].splitlines()[3:] if "Job stats:" in result.stdout else []
    for line in table:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    if result.returncode != 0 or not counts:
        lines = [line.strip() for line in (result.stdout + "\n" + result.stderr).splitlines()
                 if line.strip() and not line.startswith(("Using ", "  File"))]
        return None, "snakemake dry run failed: " + " ".join(lines[:2]) + "; the estimate counts the jobs from the grid"
    return counts, f"snakemake -n --forceall in {root}"


def fmt_s(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def key_of(hp: dict) -> tuple:
    """What the time per image depends on: the model and the training batch size."""
    return tuple(hp[k] for k in (*MODEL_HP, "batch_size"))


def seconds_per_image(args, config, device, keys, flops, measured_cells, run, n, n_test, shape, classes):
    """(seconds per image of each kind by key, start-up seconds per job, where they come from)."""
    import torch

    seconds: dict[tuple, dict] = {}
    if args.calibrate:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--calibrate --device cuda: torch finds no CUDA device here (calibrate on the GPU "
                              "machine, or leave --calibrate out for the assumed GPU throughput)")
        from .numerics import configure_numerics

        configure_numerics(config["train"]["deterministic"], config["train"]["fp32_precision"])
        if dev.type == "cpu":
            torch.set_num_threads(1)  # every job runs with threads: 1
        started = time.perf_counter()
        for key in sorted(keys, key=lambda k: flops[k]["step"]):  # the smallest first: within the budget
            if seconds and time.perf_counter() - started > args.calibrate_seconds:
                break
            seconds[key] = measure_seconds(config, keys[key], n, flops[key], shape, classes, dev)
        startup = startup_seconds(device)
        how = (f"calibrated on {device} ({torch.get_num_threads()} thread(s)) in {time.perf_counter() - started:.1f} s: "
               f"{len(seconds)} of {len(keys)} distinct models timed")
        if len(seconds) < len(keys):
            how += ", the larger ones scaled by FLOPs from the largest timed"
        biggest = max(seconds, key=lambda k: flops[k]["step"])
        for key in keys:
            if key not in seconds:
                seconds[key] = {kind: seconds[biggest][kind] * flops[key][kind] / flops[biggest][kind] for kind in (*KINDS, "svd")}
    elif run is not None:
        rate = seconds_from_run(config, measured_cells, lambda hp: flops[key_of(hp)], n, n_test)
        for key in keys:
            # a kind the run has no family for: a gradient costs a step, the SVDs nothing
            seconds[key] = {kind: rate.get(kind, rate.get("step", 0.0) if kind == "grad" else 0.0) * flops[key][kind]
                            for kind in (*KINDS, "svd")}
        bench = benchmark_totals(run)
        in_process = Counter()
        for _, _, spent in measured_cells:
            in_process.update(spent)
        worked = [r for r in bench if r in in_process]
        startup = (sum(bench[r][1] - in_process[r] for r in worked) / sum(bench[r][0] for r in worked)) if worked else 0.0
        how = f"from the run in {run}: its in-process times per FLOP of each kind; start-up from its benchmark files"
    else:
        a = ASSUMED_DEVICE[device]
        for key, hp in keys.items():
            seconds[key] = assumed_seconds(config, hp, flops[key], device)
        startup = a["startup_s"]
        how = (f"ASSUMED, not measured: {a['flops'] / 1e12:g} TFLOP/s sustained float32 per job, "
               f"{a['step_s'] * 1e3:g} ms per training step, {a['batch_s'] * 1e3:g} ms per evaluation batch, "
               f"SVDs at {a['svd_flops'] / 1e9:g} GFLOP/s, {startup:g} s start-up per job; --calibrate measures them")
    return seconds, startup, how


def plan(args) -> int:
    import torch

    root = Path(args.directory).resolve()
    configfiles = args.configfile or [str(root / "config.yaml")]
    config = load_preset(configfiles)
    run = Path(args.from_run) if args.from_run else None
    if run is not None and not (run / "models").is_dir():
        raise ConfigError(f"--from-run {run}: no models/ folder there (expected results/<study> of a run)")
    device = args.device or ("cuda" if config["device"] == "cuda" or (config["device"] == "auto" and torch.cuda.is_available()) else "cpu")
    n, n_test, shape, classes, data_how = data_shape(config, root)
    cells = grid_cells(config)
    per_job = cells_per_job(config)
    stab_hp, stab_runs = stability_model(config)  # stab_runs: the runs' settings
    out = print
    out(f"cost plan: study {config['study']} ({', '.join(configfiles)}) on {device}")
    out(f"data: {n} training and {n_test} test images of shape {shape} ({data_how}); "
        f"{len(cells)} models, {per_job} per job" + (f"; {len(stab_runs)} generalization-stability runs" if stab_runs else ""))

    counts, note = snakemake_job_counts(configfiles, root)
    out(f"\njobs per rule ({note}):")
    if counts:
        out(table([[rule, jobs] for rule, jobs in counts.items()], ["rule", "jobs"]))
    # the model's own count of jobs, for the start-ups (and when Snakemake is absent)
    modelled_jobs = {"train_model": len(cells) // per_job,
                     **{f"measure_{f}": len(cells) // per_job for f in config["measures"]["families"]}}
    if stab_runs:
        modelled_jobs["stability_run"] = len(stab_runs)
    jobs = dict(counts or {"prepare_data": 1, **modelled_jobs})

    if run is not None and run.name != config["study"]:
        out(f"note: --from-run {run} is not results/{config['study']}: its models may not be this preset's")
    measured_cells = run_cells(run, config) if run else []
    # seconds per image, per distinct model and batch size
    keys = {}
    for hp in cells + ([stab_hp] if stab_runs else []) + [hp for hp, _, _ in measured_cells]:
        keys.setdefault(key_of(hp), hp)
    # FLOPs depend on the layers only (not on dropout or the batch size)
    by_layers: dict[tuple, dict] = {}
    for key, hp in keys.items():
        layers = (hp["depth"], hp["width"], hp["batchnorm"])
        if layers not in by_layers:
            by_layers[layers] = flop_counts(config, hp, shape, classes)
    flops = {key: by_layers[(hp["depth"], hp["width"], hp["batchnorm"])] for key, hp in keys.items()}
    seconds, startup, how = seconds_per_image(args, config, device, keys, flops, measured_cells, run, n, n_test, shape, classes)
    out(f"\nseconds per image ({how}):")
    rows = []
    for key, hp in keys.items():
        s = seconds[key]
        rows.append([", ".join(f"{k}={hp[k]}" for k in (*MODEL_HP, "batch_size")), f"{flops[key]['forward'] / 1e6:.3g}",
                     *(f"{s[kind] * 1e6:.3g}" for kind in KINDS), f"{s['svd']:.3g}"])
    if len(rows) > 12:
        rows = rows[:6] + [["..."] + [""] * (len(rows[0]) - 1)] + rows[-5:]
    out(table(rows, ["model", "MFLOP fwd", *(f"{k} us" for k in KINDS), "SVDs s/model"]))
    out(f"start-up: {startup:.2f} s per job")

    def estimate(cell_outcomes, stability: bool) -> tuple[dict[str, float], dict[str, Counter]]:
        """Seconds per rule (in-process, start-up apart) and images per stage over the cells."""
        per_rule: dict[str, float] = Counter()
        passes: dict[str, Counter] = {}
        for hp, outcome in cell_outcomes:
            s = seconds[key_of(hp)]
            for stage, count in images(config, hp, n, n_test, outcome).items():
                per_rule[stage] += sum(count[k] * s[k] for k in count)
                passes.setdefault(stage, Counter()).update(count)
            if "norms" in config["measures"]["families"]:
                per_rule["measure_norms"] += s["svd"]
        if stability:
            s, passes["stability_run"] = seconds[key_of(stab_hp)], Counter()
            for run in stab_runs:
                count = stability_images(config, run, n, n_test)
                per_rule["stability_run"] += sum(count[k] * s[k] for k in count)
                passes["stability_run"].update(count)
        return per_rule, passes

    outcome = assumed_outcomes(config, args.epochs)
    per_rule, passes = estimate([(hp, outcome) for hp in cells], bool(stab_runs))
    out("\nimage passes per model (passes over the training set by kind, mean over the grid's cells):")
    epochs_how = ("stopping: budget" if config["train"]["stopping"] == "budget" else
                  "--epochs" if args.epochs else "the max_epochs cap, an upper bound")
    out(f"assumed: epochs {outcome['epochs']} ({epochs_how}), "
        f"pruning sweep evaluations {outcome['evaluations']}, flatness halvings {outcome['bisection']}, "
        f"Hessian-vector products {outcome['hvps']}")
    rows = []
    for stage, count in passes.items():
        models = len(stab_runs) if stage == "stability_run" else len(cells)
        rows.append([stage, *(f"{count[k] / models / n:.4g}" if count[k] else "" for k in KINDS),
                     fmt_s(per_rule[stage] / models)])
    out(table(rows, ["stage", *KINDS, "per model"]))

    measured = benchmark_totals(run) if run else {}
    run_rule = {}
    if measured_cells:
        run_rule, _ = estimate([(hp, o) for hp, o, s in measured_cells], bool(stab_runs) and "stability_run" in measured)
    device_rules = [r for r in jobs if r in per_rule]  # training, measure and stability jobs
    rule_seconds = {rule: per_rule.get(rule, 0.0) + (0 if rule == "all" else count) * startup for rule, count in jobs.items()}
    rows = []
    for rule, count in jobs.items():
        row = [rule, count, fmt_s(rule_seconds[rule])]
        if run:
            done, spent = measured.get(rule, (0, math.nan))
            with_counts = run_rule[rule] + done * startup if rule in run_rule else math.nan
            row += [fmt_s(with_counts) if rule in run_rule else "", fmt_s(spent) if done else "",
                    f"{rule_seconds[rule] * done / count / spent:.2f}" if done else "",
                    f"{with_counts / spent:.2f}" if done and rule in run_rule else ""]
        rows.append(row)
    header = ["rule", "jobs", "estimate"]
    if run:
        header += ["with run's counts", "measured", "ratio", "ratio (counts)"]
    out("\nseconds per rule (in-process estimate + one start-up per job; other rules: start-up only):")
    out(table(rows, header))
    if run and measured:
        spent = sum(s for _, s in measured.values())
        estimated = sum(rule_seconds[r] * measured[r][0] / jobs[r] for r in measured if r in jobs)
        with_counts = sum(run_rule[r] + measured[r][0] * startup for r in measured if r in run_rule)
        out(f"benchmarked rules ({', '.join(measured)}): estimate {fmt_s(estimated)}, with the run's counts "
            f"{fmt_s(with_counts)}, measured {fmt_s(spent)}; ratio {estimated / spent:.2f}, with the run's counts "
            f"{with_counts / spent:.2f} (estimate / measured, scaled to the jobs measured)")

    total = sum(rule_seconds.values())
    parallel = sum(rule_seconds[r] for r in device_rules)
    slots = args.gpus * config["resources"]["jobs_per_gpu"] if device == "cuda" else args.cores
    # one job's cells, trained then measured: no run can be shorter than its longest chain
    chain = max([(per_rule.get("train_model", 0.0) + max([per_rule[r] for r in per_rule if r.startswith("measure_")], default=0.0))
                 * per_job / len(cells) + 2 * startup]
                + ([per_rule["stability_run"] / len(stab_runs) + startup] if stab_runs else []))
    wall = (total - parallel) + max(parallel / slots, chain)
    out(f"\ntotal: {fmt_s(total)} of job time; wall time about {fmt_s(wall)} with {slots} job(s) at once "
        f"({'GPUs x resources.jobs_per_gpu' if device == 'cuda' else '--cores, one thread per job'})")
    if device == "cuda":
        out(f"GPU-hours: {parallel / 3600:.1f} (training, measure and stability jobs, start-up included: a job "
            "holds its GPU for its life; jobs sharing a GPU are taken to split it, neither gaining nor losing)")
    else:
        out(f"CPU-hours: {total / 3600:.2f} (one thread per job)")
    out("\nassumptions: " + "; ".join([
        "ce_target training runs to the max_epochs cap (an upper bound; --epochs sets the expected number)"
        if config["train"]["stopping"] == "ce_target" and not args.epochs else f"{outcome['epochs']} epochs per model",
        "seconds per image do not depend on the weights (pruned or perturbed models cost the same)",
        "a gradient-noise gradient costs a training step per image (it takes no optimizer step: a little less)",
        "parallel jobs do not slow each other down (memory bandwidth, a shared GPU)",
        "analysis jobs (tables, statistics, figures) cost their start-up only; the data preparation likewise",
        f"wall = the other jobs one after another + max(device job time / {slots}, one job's training and longest measure job)",
    ]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prunability.cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", nargs="+", help="the preset (several: merged as Snakemake merges them); default config.yaml")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: the preset's (auto: cuda if torch finds one)")
    parser.add_argument("--calibrate", action="store_true", help="time every distinct model of the grid on --device")
    parser.add_argument("--calibrate-seconds", type=float, default=30.0, help="time budget of --calibrate (default 30)")
    parser.add_argument("--from-run", metavar="results/<study>", help="an earlier run: its counts, and its seconds unless --calibrate")
    parser.add_argument("--epochs", type=float, help="expected epochs per model (default: the max_epochs cap)")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="CPU jobs at once (default: all cores)")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs (jobs at once: GPUs x resources.jobs_per_gpu)")
    parser.add_argument("--directory", default=".", help="the workflow's folder (where the Snakefile is); default .")
    args = parser.parse_args(argv)
    try:
        return plan(args)
    except ConfigError as error:
        print(f"prunability.cost: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
