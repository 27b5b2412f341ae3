"""An earlier run of a study: its Snakemake benchmark totals per rule, its counts per
trained cell (epochs, sweep evaluations, halvings, Hessian-vector products) and its
in-process times, turned into seconds per FLOP of each kind."""

from __future__ import annotations

import copy
import csv
import json
import re
import statistics
from pathlib import Path

from ..grid import cell_hyperparameters, parse_cell
from .passes import assumed_outcomes, images


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
