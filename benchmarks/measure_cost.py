"""What each measure family costs, as a fraction of training time, and what share of
the training and measure jobs' time goes to start-up.

    python benchmarks/measure_cost.py                 # report on results/digits-nin
    python benchmarks/measure_cost.py --run           # run the default study from scratch first
    python benchmarks/measure_cost.py --run --published   # the same with the schema's published settings
    python benchmarks/measure_cost.py --study-dir results/<study>

Both times come from the same workflow run on the same machine: a model's training
loop (train.json ``wall_time_s``) and each family's in-process time for that model
(``measure_costs.csv``, written by collect_table from the families' JSON records).
Process start-up (Python + torch import, Snakemake's script preamble, loading the
split and the models; paid once per job) is reported apart, from the jobs' Snakemake
benchmark files: start-up share = 1 - in-process time / job time over the train_model
and measure_* jobs (resources.axes_within_job sets how many cells share one job). ``--run`` copies the workflow to a temporary
directory and runs it with one core, so parallel jobs do not slow each other down.
The issue's target: all families together at most 25% of training time on CPU.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.25


def run_default_study(workdir: Path, published: bool) -> Path:
    for name in ("Snakefile", "config.yaml", "workflow", "envs", "profiles", "src"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, workdir / name)
    if published:  # drop the default study's lighter measure settings: the schema defaults apply
        config = yaml.safe_load((workdir / "config.yaml").read_text())
        config["measures"] = {"families": config["measures"]["families"]}
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"running the default study in {workdir} with --cores 1 ...", flush=True)
    subprocess.run([sys.executable, "-m", "snakemake", "all", "--cores", "1", "--quiet"], cwd=workdir, check=True)
    return next((workdir / "results").iterdir())


def job_times(study: Path) -> pd.DataFrame:
    """Wall-clock seconds of every train/measure job (start-up included), by rule."""
    rows = []
    for tsv in (study / "benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(study / "benchmarks").parts[0]
        rows.append({"rule": rule, "job_s": pd.read_csv(tsv, sep="\t")["s"].iloc[0]})
    return pd.DataFrame(rows, columns=["rule", "job_s"])


def report(study: Path) -> None:
    costs = pd.read_csv(study / "measure_costs.csv")
    train = costs.drop_duplicates("model")["train_time_s"]
    jobs = job_times(study).groupby("rule")["job_s"].agg(["sum", "count"])
    print(f"study {study.name}: {len(train)} models, training loops {train.sum():.1f} s in all")
    print(f"{'family':<14}{'in-process s':>13}{'of training':>13}{'median/model':>14}{'jobs s':>9}{'start-up s/job':>16}")
    total = 0.0
    for family, group in costs.groupby("family"):
        seconds = group["measure_time_s"].sum()
        total += seconds
        rule = f"measure_{family}"
        job_s = jobs.loc[rule, "sum"] if rule in jobs.index else float("nan")
        startup = (job_s - seconds) / jobs.loc[rule, "count"] if rule in jobs.index else float("nan")
        print(f"{family:<14}{seconds:>13.1f}{seconds / train.sum():>13.1%}{group['fraction_of_training'].median():>14.1%}{job_s:>9.1f}{startup:>16.2f}")
    verdict = "meets" if total / train.sum() <= TARGET else "misses"
    print(f"{'all families':<14}{total:>13.1f}{total / train.sum():>13.1%}   ({verdict} the {TARGET:.0%} target)")
    worked = jobs[(jobs.index == "train_model") | jobs.index.str.startswith("measure_")]
    job_s, in_process = worked["sum"].sum(), train.sum() + total
    print(f"start-up share of the training and measure jobs: {1 - in_process / job_s:.1%} "
          f"({int(worked['count'].sum())} jobs: {job_s:.0f} s of job time, {in_process:.0f} s training and measuring)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study-dir", type=Path, default=REPO / "results" / "digits-nin")
    parser.add_argument("--run", action="store_true", help="run the default study from scratch (one core) first")
    parser.add_argument("--published", action="store_true", help="with --run: the schema's (published) measure settings")
    args = parser.parse_args()
    if args.run:
        with tempfile.TemporaryDirectory(prefix="measure-cost-") as tmp:
            report(run_default_study(Path(tmp), args.published))
    else:
        report(args.study_dir)


if __name__ == "__main__":
    main()
