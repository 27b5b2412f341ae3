"""Share of the training and measure jobs' time spent outside the work itself.

Run it after a study, on the study's results folder:

    python benchmarks/startup_share.py results/digits-nin

For each rule it adds up the jobs' wall time (Snakemake's benchmark files) and the
time spent in the training loop (train.json's wall_time_s) or in the measure
families (each measure JSON's wall_time_s), both from the same run, and prints

    start-up share = 1 - in-process time / job time

the time each job spends starting Python, importing torch and Snakemake's script
preamble, and loading the split and the models. resources.axes_within_job sets how
many cells share one job, and so one start-up.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def job_seconds(results: Path) -> pd.DataFrame:
    """rule, jobs, job_s: the benchmark files of the train and measure rules, summed per rule."""
    rows = []
    for path in (results / "benchmarks").rglob("*.tsv"):
        rule = path.relative_to(results / "benchmarks").parts[0]
        if rule == "train_model" or rule.startswith("measure_"):
            rows.append({"rule": rule, "job_s": float(pd.read_csv(path, sep="\t")["s"].iloc[0])})
    if not rows:
        raise SystemExit(f"no benchmark files of train_model or measure_* under {results / 'benchmarks'}")
    frame = pd.DataFrame(rows)
    return frame.groupby("rule").agg(jobs=("job_s", "size"), job_s=("job_s", "sum"))


def in_process_seconds(results: Path) -> pd.Series:
    """rule -> seconds inside the training loop or the measure families, over every cell."""
    seconds: dict[str, float] = {}
    for path in (results / "models").rglob("train.json"):
        seconds["train_model"] = seconds.get("train_model", 0.0) + json.loads(path.read_text())["wall_time_s"]
    for path in (results / "measures").rglob("*.json"):
        record = json.loads(path.read_text())
        rule = f"measure_{record['family']}"
        seconds[rule] = seconds.get(rule, 0.0) + record["wall_time_s"]
    return pd.Series(seconds, name="in_process_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a study's results folder, e.g. results/digits-nin")
    results = parser.parse_args().results
    table = job_seconds(results).join(in_process_seconds(results), how="left")
    table.loc["all"] = table.sum()
    table["startup_share"] = 1.0 - table["in_process_s"] / table["job_s"]
    pd.set_option("display.float_format", "{:.2f}".format)
    print(table.to_string())
    print(f"\nstart-up share of the training and measure jobs: {table.loc['all', 'startup_share']:.1%} "
          f"({int(table.loc['all', 'jobs'])} jobs, {table.loc['all', 'job_s']:.0f} s of job time)")


if __name__ == "__main__":
    main()
