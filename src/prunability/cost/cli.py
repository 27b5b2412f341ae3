"""The plan the command prints: the jobs per rule from a Snakemake dry run, seconds per
image from ``--calibrate``, ``--from-run`` or the assumptions, the passes and seconds
per stage and rule, the wall time and the CPU- or GPU-hours; and the command line."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from ..config import ConfigError, load_preset
from . import __doc__ as USAGE  # the package's docstring: what --help prints
from .assumptions import ASSUMED_DEVICE
from .earlier_run import benchmark_totals, run_cells, seconds_from_run
from .passes import KINDS, assumed_outcomes, images, stability_images
from .preset import cells_per_job, data_shape, grid_cells, stability_model
from .seconds import assumed_seconds, flop_counts, measure_seconds, startup_seconds

MODEL_HP = ("depth", "width", "batchnorm", "dropout")


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
        from ..numerics import configure_numerics

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
    parser = argparse.ArgumentParser(prog="python -m prunability.cost", description=USAGE,
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
