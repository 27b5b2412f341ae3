"""A finished study's results as a Markdown page, written from its own tables.

    python -m prunability.results_page results/<study> --out docs/results/<study>.md

The page states the study's answer (each claim's verdict with its value and interval),
the population (models, converged, the spread of the gap, the seed oracle), every
measure's Kendall tau and granulated Psi against the main target with their bootstrap
intervals, the seed spread of each measure where the study has replicates, and the
platform the run was made on. Every number on it is read from ``table.csv`` and
``stats/``: rerun the study, rerun this, and the page follows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from pathlib import Path

import pandas as pd

__all__ = ["answer_frame", "answer_rst", "results_page", "main"]


def _f(value, digits: int = 2) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _interval(low, high) -> str:
    return f"[{_f(low)}, {_f(high)}]" if _f(low) and _f(high) else ""


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def recorded_level(claims: pd.DataFrame) -> float | None:
    """The bootstrap level the claims were tested at, as their rules state it ("the 95%
    interval of ..."); None if they state none or several."""
    found = {float(m) for rule in claims.get("rule", pd.Series(dtype=str)).dropna()
             for m in re.findall(r"the (\d+(?:\.\d+)?)% interval", str(rule))}
    return found.pop() / 100 if len(found) == 1 else None


def _level_text(level: float | None) -> str:
    return f"{100 * level:g}% " if level is not None else ""


def answer_frame(claims: pd.DataFrame, level: float | None) -> pd.DataFrame:
    """The claims table as it is read: claim, statistic, value, interval, verdict."""
    return pd.DataFrame({
        "claim": claims["claim"], "statistic": claims["statistic"],
        "value": [_f(v) for v in claims["value"]],
        f"{_level_text(level)}interval": [_interval(a, b) for a, b in zip(claims["ci_low"], claims["ci_high"])],
        "verdict": claims["verdict"]})


def _rst_cell(value) -> str:
    # A cell's text must not open RST markup (emphasis, a role, a substitution, a
    # reference), nor a Jinja tag: Snakemake's report renders the page as a template, so
    # each brace becomes an expression that prints it.
    text = str(value).replace("\\", "\\\\")
    for char in "*`|_":
        text = text.replace(char, "\\" + char)
    text = "".join('{{ "%s" }}' % char if char in "{}" else char for char in text)
    return text or " "


def answer_rst(claims: pd.DataFrame, level: float, study: str) -> str:
    """The report's first section: each claim's verdict with its value and interval (RST)."""
    frame = answer_frame(claims, level)
    rows = [list(frame.columns), *frame.astype(str).values.tolist()]
    table = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        table += [f"   * - {_rst_cell(row[0])}", *[f"     - {_rst_cell(cell)}" for cell in row[1:]]]
    verdicts = claims["verdict"].value_counts(sort=False)  # in the order of the claims
    counts = ", ".join(f"{n} {verdict}" for verdict, n in verdicts.items())
    return "\n".join([
        f"**The answer of study {_rst_cell(study)}** ({counts}). Each claim of Kuhn et al. (2021) is tested "
        f"by one statistic with its {100 * level:g}% bootstrap interval; a verdict needs the whole interval "
        "on one side of the claim's threshold (Results → Tables → claims.csv has each rule).", "",
        *table, "", ""])


def _platforms(study: Path) -> list[str]:
    """One line per distinct platform of the study's records (platform.json)."""
    path = study / "platform.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    keys = ("cpu_model", "cpu_capability", "cuda_device", "torch", "numpy", "python", "torch_threads")
    lines = []
    for entry in record.get("platforms", []):
        platform = entry["platform"]
        described = ", ".join(f"{k} {platform[k]}" for k in keys if platform.get(k) not in (None, ""))
        lines.append(f"{described} ({len(entry['cells'])} models)")
    if record.get("n_unrecorded"):
        lines.append(f"{record['n_unrecorded']} records (jobs) written without a platform record")
    return lines or ["not recorded by this run"]


def _sensitivity(study: Path) -> list[str]:
    """The study's sensitivity/*.csv (python -m prunability.sensitivity): each measure's tau on
    the remeasured models with the study's settings and with the other ones."""
    lines = []
    for path in sorted((study / "sensitivity").glob("*.csv")):
        frame = pd.read_csv(path)
        family, _, setting = path.stem.partition("-")
        lines += ["", f"### {family} with {setting.replace('-', ', ')}", "",
                  f"On {frame['n_models'].max()} models; largest |tau change| {_f(frame['tau_change'].abs().max(), 3)}.", "",
                  _markdown(pd.DataFrame({
                      "measure": frame["measure"], "models": frame["n_models"],
                      "tau, study's settings": [_f(v, 3) for v in frame["tau_study"]],
                      "tau, these settings": [_f(v, 3) for v in frame["tau_new"]],
                      "change": [_f(v, 3) for v in frame["tau_change"]]}))]
    if lines:
        lines = ["", "## Do the lighter settings matter?", "",
                 "Measures remeasured on a subset of the models with other settings "
                 "(`python -m prunability.sensitivity`), tau against the main target on that subset.", *lines]
    return lines


def _fingerprints(study: Path) -> list[str]:
    """SHA-256 of table.csv and each stats/*.csv: a rerun matches the run bit for bit if these do."""
    paths = [study / "table.csv", *sorted((study / "stats").glob("*.csv")), *sorted((study / "sensitivity").glob("*.csv"))]
    return [f"| `{p.relative_to(study)}` | `{hashlib.sha256(p.read_bytes()).hexdigest()[:16]}` |" for p in paths]


def results_page(study: Path, target: str = "gen.acc_gap") -> str:
    table = pd.read_csv(study / "table.csv")
    stats = study / "stats"
    summary = pd.read_csv(stats / "summary.csv")
    claims = pd.read_csv(stats / "claims.csv")
    level = recorded_level(claims)
    converged = table["is.converged"].eq(True)
    gap = table.loc[converged, target]
    lines = [f"# Results: {study.name}", "",
             f"Written by `python -m prunability.results_page` from `results/{study.name}`; every number below is read from "
             "the run's `table.csv` and `stats/`.", "",
             "## The answer", "",
             _markdown(answer_frame(claims, level)), "",
             "## The population", "",
             f"- {len(table)} models, {int(converged.sum())} converged (used by the statistics)",
             f"- {target}: {_f(gap.min(), 3)} to {_f(gap.max(), 3)}, median {_f(gap.median(), 3)}"]
    for column in ("gen.train_acc", "gen.test_acc"):
        if column in table:
            values = table.loc[converged, column]
            lines.append(f"- {column}: {_f(values.min(), 3)} to {_f(values.max(), 3)}, median {_f(values.median(), 3)}")
    oracle_path = stats / "seed_oracle.csv"
    oracle = pd.read_csv(oracle_path) if oracle_path.is_file() else pd.DataFrame()
    oracle = oracle[oracle["target"] == target] if len(oracle) else oracle
    for row in oracle.itertuples(index=False):
        lines.append(f"- seed oracle ({row.replicate_a} against {row.replicate_b}, {row.n_used} cells): "
                     f"tau {_f(row.tau_a)}, Psi {_f(row.Psi)}: how well one seed's gaps rank the other's; "
                     "no measure can be told apart from seed noise above it")
    rows = summary[summary["target"] == target].sort_values("tau_a", ascending=False)
    # a measure defined on a few models only (a training speed that few models reach) goes last
    few = rows["n_used"] < converged.sum() / 2
    rows = pd.concat([rows[~few], rows[few]])
    lines += ["", f"## Every measure against {target}", "",
              f"Kendall's tau (tau-a) and granulated Psi over the converged models, with {_level_text(level)}percentile "
              "bootstrap intervals (models resampled); by tau, the measures defined on fewer than half of "
              "the models last.", "",
              _markdown(pd.DataFrame({
                  "measure": rows["measure"], "models": rows["n_used"],
                  "tau": [_f(v) for v in rows["tau_a"]],
                  "tau interval": [_interval(a, b) for a, b in zip(rows["tau_a_low"], rows["tau_a_high"])],
                  "Psi": [_f(v) for v in rows["Psi"]],
                  "Psi interval": [_interval(a, b) for a, b in zip(rows["Psi_low"], rows["Psi_high"])]}))]
    spread_path = stats / "replicate_spread.csv"
    spread = pd.read_csv(spread_path) if spread_path.is_file() else pd.DataFrame()
    spread = spread[spread["target"] == target] if len(spread) else spread
    if len(spread):
        spread = spread.set_index("measure").loc[[m for m in rows["measure"] if m in set(spread["measure"])]]
        lines += ["", "## Within each seed", "",
                  "Kendall's tau computed within each seed's models: the range over the seeds.", "",
                  _markdown(pd.DataFrame({
                      "measure": spread.index, "seeds": spread["tau_a_n"],
                      "tau min": [_f(v) for v in spread["tau_a_min"]], "tau max": [_f(v) for v in spread["tau_a_max"]],
                      "Psi min": [_f(v) for v in spread["Psi_min"]], "Psi max": [_f(v) for v in spread["Psi_max"]]}))]
    lines += _sensitivity(study)
    lines += ["", "## Platform", "", *[f"- {line}" for line in _platforms(study)],
              "", "## Fingerprints", "",
              "The first 16 hex digits of each file's SHA-256 (`sha256sum results/<study>/table.csv "
              "results/<study>/stats/*.csv`). The statistics are identical on a rerun on the same platform, or "
              "after a change to the code that should change no number; table.csv also holds each model's "
              "training wall time (`train.wall_time_s`), which no statistic reads, so its digest differs from "
              "run to run.", "",
              "| file | sha256 |", "|---|---|", *_fingerprints(study), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prunability.results_page", description=__doc__.split("\n\n")[0])
    parser.add_argument("study_dir", help="results/<study> of a finished run")
    parser.add_argument("--out", help="write the page here (default: print it)")
    parser.add_argument("--target", default="gen.acc_gap",
                        help="the target of the tau and Psi tables (default gen.acc_gap, the schema's main_target)")
    args = parser.parse_args(argv)
    study = Path(args.study_dir)
    missing = [p for p in (study / "table.csv", study / "stats" / "summary.csv", study / "stats" / "claims.csv") if not p.is_file()]
    if missing:
        print(f"error: {', '.join(map(str, missing))} missing: run the study to the end first", file=sys.stderr)
        return 2
    page = results_page(study, args.target)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(page)
    else:
        print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
