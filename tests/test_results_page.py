"""prunability.results_page: a study's page is its own tables, number for number."""

from __future__ import annotations

import json

import pandas as pd

from prunability.results_page import main, results_page


def write_study(root):
    study = root / "results" / "toy"
    (study / "stats").mkdir(parents=True)
    pd.DataFrame({"model": ["a", "b", "c"], "is.converged": [True, True, False],
                  "gen.acc_gap": [0.10, 0.30, 0.90], "gen.train_acc": [0.5, 1.0, 1.0]}).to_csv(study / "table.csv", index=False)
    pd.DataFrame({"measure": ["prunability", "l2", "speed"], "target": ["gen.acc_gap"] * 3, "n_used": [2, 2, 0],
                  "tau_a": [0.25, 0.5, 1.0], "tau_a_low": [-0.125, 0.0, 1.0], "tau_a_high": [0.75, 1.0, 1.0],
                  "Psi": [0.125, float("nan"), 1.0], "Psi_low": [0.0, float("nan"), 1.0], "Psi_high": [0.5, float("nan"), 1.0]}
                 ).to_csv(study / "stats" / "summary.csv", index=False)
    pd.DataFrame({"claim": ["K3", "K2"], "statistic": ["tau of prunability", "definition"], "value": [0.25, None],
                  "ci_low": [-0.125, None], "ci_high": [0.75, None], "verdict": ["not supported", "not tested"]}
                 ).to_csv(study / "stats" / "claims.csv", index=False)
    pd.DataFrame({"target": ["gen.acc_gap"], "pair": ["0-1"], "replicate_a": ["seed 0"], "replicate_b": ["seed 1"],
                  "n_used": [12], "tau_a": [0.8125], "Psi": [0.625]}).to_csv(study / "stats" / "seed_oracle.csv", index=False)
    return study


def test_the_page_holds_the_tables_numbers(tmp_path):
    study = write_study(tmp_path)
    page = results_page(study)
    assert "| K3 | tau of prunability | 0.25 | [-0.12, 0.75] | not supported |" in page
    assert "| K2 | definition |  |  | not tested |" in page
    assert "3 models, 2 converged" in page
    assert "gen.acc_gap: 0.100 to 0.300, median 0.200" in page  # the unconverged model's 0.9 left out
    assert "gen.train_acc: 0.500 to 1.000, median 0.750" in page  # a model far from fitting its data shows
    assert "seed oracle (seed 0 against seed 1, 12 cells): tau 0.81, Psi 0.62" in page
    rows = [line for line in page.splitlines() if line.startswith(("| l2 |", "| prunability |", "| speed |"))]
    assert rows == ["| l2 | 2 | 0.50 | [0.00, 1.00] |  |  |", "| prunability | 2 | 0.25 | [-0.12, 0.75] | 0.12 | [0.00, 0.50] |",
                    "| speed | 0 | 1.00 | [1.00, 1.00] | 1.00 | [1.00, 1.00] |"]  # by tau, but on too few models: last
    assert "not recorded by this run" in page


def test_the_platform_and_the_cli(tmp_path, capsys):
    study = write_study(tmp_path)
    (study / "platform.json").write_text(json.dumps({"platforms": [
        {"platform": {"cpu_model": "Some CPU", "torch": "2.13.0", "torch_threads": 1}, "cells": {"a": ["train"], "b": ["train"]}}],
        "n_unrecorded": 3}))
    out = tmp_path / "docs" / "toy.md"
    assert main([str(study), "--out", str(out)]) == 0
    page = out.read_text()
    assert "- cpu_model Some CPU, torch 2.13.0, torch_threads 1 (2 models)" in page
    assert "- 3 records (jobs) written without a platform record" in page
    assert main([str(tmp_path / "nothing")]) == 2
    assert "missing: run the study to the end first" in capsys.readouterr().err


def test_the_fingerprints_are_the_files_sha256(tmp_path):
    import hashlib

    study = write_study(tmp_path)
    page = results_page(study)
    for name in ("table.csv", "stats/claims.csv", "stats/seed_oracle.csv", "stats/summary.csv"):
        digest = hashlib.sha256((study / name).read_bytes()).hexdigest()[:16]
        assert f"| `{name}` | `{digest}` |" in page
    (study / "table.csv").write_text((study / "table.csv").read_text() + "\n")
    assert results_page(study) != page  # one byte more, another fingerprint


def test_a_sensitivity_run_is_on_the_page(tmp_path):
    study = write_study(tmp_path)
    assert "lighter settings" not in results_page(study)
    (study / "sensitivity").mkdir()
    pd.DataFrame({"measure": ["prunability", "kept_count"], "n_models": [10, 9], "tau_study": [0.5, 0.25],
                  "tau_new": [0.375, 0.25], "tau_change": [-0.125, 0.0], "largest_value_change": [0.01, 3.0]}
                 ).to_csv(study / "sensitivity" / "pruning-resolution=0.001-random_seeds=5.csv", index=False)
    page = results_page(study)
    assert "### pruning with resolution=0.001, random_seeds=5" in page
    assert "On 10 models; largest |tau change| 0.125." in page
    assert "| prunability | 10 | 0.500 | 0.375 | -0.125 |" in page
    assert "| `sensitivity/pruning-resolution=0.001-random_seeds=5.csv` |" in page


def test_the_report_front_page_states_each_claims_verdict(tmp_path):
    from prunability.results_page import answer_rst

    claims = pd.read_csv(write_study(tmp_path) / "stats" / "claims.csv")
    page = answer_rst(claims, 0.9, "toy")
    assert page.startswith("**The answer of study toy** (1 not supported, 1 not tested).")
    assert "its 90% bootstrap interval" in page
    lines = page.splitlines()
    table = lines[lines.index(".. list-table::"):]
    assert table[:9] == [".. list-table::", "   :header-rows: 1", "", "   * - claim", "     - statistic", "     - value",
                         "     - 90% interval", "     - verdict", "   * - K3"]
    assert table[9:13] == ["     - tau of prunability", "     - 0.25", "     - [-0.12, 0.75]", "     - not supported"]
    assert table[13:18] == ["   * - K2", "     - definition", "     -  ", "     -  ", "     - not tested"]


def test_the_report_front_page_cannot_open_markup_or_a_template_tag():
    import jinja2
    from docutils.core import publish_parts

    from prunability.results_page import answer_rst

    statistic = "tau_a of *x* {{ 7*7 }} {% if 1 %}{# `r` |s|"
    claims = pd.DataFrame({"claim": ["K1"], "statistic": [statistic], "value": [0.5],
                           "ci_low": [0.25], "ci_high": [0.75], "verdict": ["supported"]})
    page = jinja2.Environment().from_string(answer_rst(claims, 0.95, "study{%x%}")).render()  # as the report does
    html = publish_parts(page, writer_name="html")["html_body"]
    assert statistic.replace("<", "&lt;") in html and "study{%x%}" in html
    assert "<em>" not in html and "<cite>" not in html


def test_the_page_states_the_level_the_claims_were_tested_at(tmp_path):
    from prunability.results_page import recorded_level

    study = write_study(tmp_path)
    assert recorded_level(pd.read_csv(study / "stats" / "claims.csv")) is None  # no rule column
    assert "| claim | statistic | value | interval | verdict |" in results_page(study)
    claims = pd.read_csv(study / "stats" / "claims.csv").assign(
        rule=["supported iff the 90% interval of prunability's tau lies above 0.5", "a definition, not an empirical claim"])
    claims.to_csv(study / "stats" / "claims.csv", index=False)
    page = results_page(study)
    assert "| claim | statistic | value | 90% interval | verdict |" in page
    assert "with 90% percentile bootstrap intervals" in page
    assert recorded_level(claims.assign(rule=["the 90% interval", "the 95% interval"])) is None  # two levels: none
