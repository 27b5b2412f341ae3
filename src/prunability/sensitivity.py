"""Do a study's lighter measure settings move its answer? Remeasure a subset of models.

    python -m prunability.sensitivity results/cifar10-demogen-cpu \\
        --configfile configs/cifar10-demogen-cpu.yaml --family pruning --set resolution=0.001 --models 16

A CPU study measures with lighter settings than the schema's (a coarser pruning sweep,
fewer Monte Carlo draws): this recomputes one family on a subset of the study's trained
models with other settings, and prints, for every measure of the family, Kendall's tau
against the study's main target on that subset with the study's values and with the new
ones, and the change. The subset is spread over the study's converged models (every k-th
in the table's order). It writes ``<study>/sensitivity/<family>-<key>=<value>....csv``; it changes
nothing else of the study (its own jobs never read that folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .config import ConfigError, config_error_message, filled_and_validated, load_preset, schema_validate

__all__ = ["spread_subset", "tau_change", "main"]


def spread_subset(models: list[str], n: int) -> list[str]:
    """``n`` of ``models`` spread evenly over their order (all of them if n >= len)."""
    if n >= len(models):
        return list(models)
    picks = np.linspace(0, len(models) - 1, n).round().astype(int)
    return [models[i] for i in sorted(set(picks.tolist()))]


def tau_change(before: pd.DataFrame, after: pd.DataFrame, target: pd.Series, orientation: dict[str, int]) -> pd.DataFrame:
    """Per measure: Kendall's tau-a of the oriented values against the target, with the
    study's values (``before``) and the new ones (``after``), both on the models where
    both are finite; and the change."""
    from .analysis.ranking import kendall_tau_a

    rows = []
    for name in after.columns:
        ok = np.isfinite(before[name].to_numpy(float)) & np.isfinite(after[name].to_numpy(float))
        sign = orientation.get(name, 1)
        t_before = kendall_tau_a(sign * before[name].to_numpy(float)[ok], target.to_numpy(float)[ok])
        t_after = kendall_tau_a(sign * after[name].to_numpy(float)[ok], target.to_numpy(float)[ok])
        rows.append({"measure": name, "n_models": int(ok.sum()), "tau_study": t_before, "tau_new": t_after,
                     "tau_change": t_after - t_before,
                     "largest_value_change": float(np.nanmax(np.abs(after[name] - before[name]))) if ok.any() else np.nan})
    return pd.DataFrame(rows)


def parse_setting(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. resolution=0.001")
    return key, yaml.safe_load(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prunability.sensitivity", description=__doc__.split("\n\n")[0])
    parser.add_argument("study_dir", help="results/<study> of a finished run")
    parser.add_argument("--configfile", nargs="+", required=True, help="the preset the study ran with")
    parser.add_argument("--family", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting of the family")
    parser.add_argument("--models", type=int, default=16, help="how many models to remeasure (spread over the grid)")
    args = parser.parse_args(argv)
    import jsonschema

    try:
        return run(args)
    except (ConfigError, jsonschema.ValidationError) as error:
        print(f"error: {config_error_message(error)}", file=sys.stderr)
        return 2


def run(args) -> int:
    import torch

    from .data import load_split
    from .measures import FAMILIES, compute_family
    from .numerics import configure_numerics
    from .train import DeviceData, load_model

    study = Path(args.study_dir)
    config = load_preset(args.configfile, schema_validate)
    if args.family not in FAMILIES:
        raise ConfigError(f"--family {args.family!r}: known families are {sorted(FAMILIES)}")
    settings = dict(config["measures"][args.family])
    changes = dict(parse_setting(s) for s in args.set)
    unknown = sorted(set(changes) - set(settings))
    if unknown:
        raise ConfigError(f"--set: {unknown} not among measures.{args.family}'s settings {sorted(settings)}")
    settings.update(changes)
    # the new values are checked as the workflow checks a configuration
    filled_and_validated({**config, "measures": {**config["measures"], args.family: settings}}, schema_validate)
    table_path = study / "table.csv"
    if not table_path.is_file():
        raise ConfigError(f"{table_path} does not exist: run the study to the end first")
    table = pd.read_csv(table_path).set_index("model")
    target = "gen." + config["statistics"]["main_target"]
    # the models the statistics use: converged ones (diverged models have no measures)
    cells = spread_subset(list(table.index[table["is.converged"].eq(True)]), args.models)
    for cell in cells:
        for name in ("final.pt", "init.pt", "train.json"):
            if not (study / "models" / cell / name).is_file():
                raise ConfigError(f"{study / 'models' / cell / name} does not exist")

    torch.set_num_threads(1)  # as every measure job
    configure_numerics(config["train"]["deterministic"], config["measures"]["fp32_precision"])
    data = DeviceData.from_split(load_split(study / "data" / "split.pt"), torch.device("cpu"))
    before, after, orientation = {}, {}, {}
    started = time.perf_counter()
    for i, cell in enumerate(cells):
        folder = study / "models" / cell
        hp = json.loads((folder / "train.json").read_text())["hyperparameters"]
        model = load_model(hp, config["model"], data, folder / "final.pt")
        init = load_model(hp, config["model"], data, folder / "init.pt")
        record = compute_family(args.family, model, init, data, settings, log=lambda _: None)
        study_record = json.loads((study / "measures" / cell / f"{args.family}.json").read_text())
        after[cell] = record["values"]
        before[cell] = {name: study_record["values"].get(name, np.nan) for name in record["values"]}
        orientation.update(record.get("orientation", {}))
        print(f"[{i + 1}/{len(cells)}] {cell}: {record['wall_time_s']:.1f} s ({time.perf_counter() - started:.0f} s in all)",
              flush=True)
    before_frame = pd.DataFrame.from_dict(before, orient="index", dtype=float)
    after_frame = pd.DataFrame.from_dict(after, orient="index", dtype=float)
    result = tau_change(before_frame, after_frame, table.loc[cells, target], orientation)
    label = "-".join(f"{k}={v}" for k, v in changes.items()) or "same"
    out = study / "sensitivity" / f"{args.family}-{label}.csv"
    out.parent.mkdir(exist_ok=True)
    result.to_csv(out, index=False)
    print(f"\n{args.family} with {changes} on {len(cells)} of {len(table)} models, tau against {target}:")
    print(result.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"largest |tau change|: {result['tau_change'].abs().max():.3f}; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
