"""prunability.families: what each measure family declares the workflow gives its jobs,
read from the family modules' source without importing them."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from prunability import measures
from prunability.families import (FamilySpecError, baseline_measures, family_order, family_specs, measures_with_role,
                                  read_spec, with_role)

TOY = '''import torch  # never imported by the reader
FAMILY = {"name": "toy", "cost": "quick", "cluster_group": None, "inputs": {"table": "data/toy.csv"}, "order": 9,
          "roles": ["flatness"]}
'''


def test_every_registered_family_is_declared_and_in_its_order():
    assert set(family_specs()) == set(measures.FAMILIES)
    assert family_order() == ["pruning", "norms", "flatness", "hessian", "optimization", "prune_potential"]
    specs = family_specs()
    assert {name for name, spec in specs.items() if spec["cost"] == "sweep"} == {"pruning", "flatness", "prune_potential"}
    assert {name for name, spec in specs.items() if spec["cluster_group"]} == {"norms", "hessian", "optimization"}
    assert specs["prune_potential"]["inputs"] == {"corruptions": "data/corruptions.npz"}
    assert (with_role("prunability"), with_role("norm"), with_role("flatness")) == (["pruning"], ["norms"], ["flatness"])


def test_the_specs_are_copies():
    family_specs()["pruning"]["roles"].append("norm")
    assert with_role("norm") == ["norms"]


def test_a_toy_family_module_is_read_without_being_imported(tmp_path):
    (tmp_path / "toy.py").write_text(TOY)
    (tmp_path / "helpers.py").write_text("X = 1\n")  # declares no family: not one
    specs = family_specs(tmp_path)
    assert list(specs) == ["toy"]
    assert specs["toy"] == {"name": "toy", "cost": "quick", "cluster_group": None, "inputs": {"table": "data/toy.csv"},
                            "order": 9, "roles": ["flatness"], "module": "toy"}
    assert with_role("flatness", tmp_path) == ["toy"] and with_role("norm", tmp_path) == []


def test_the_roles_select_measures_of_a_measure_info_table():
    info = pd.DataFrame({"name": ["prunability", "l2", "pacbayes_sigma", "speed"],
                         "family": ["pruning", "norms", "flatness", "optimization"]})
    assert measures_with_role(info, "norm") == ["l2"]
    assert measures_with_role(info, "flatness") == ["pacbayes_sigma"]
    assert baseline_measures(info) == ["l2", "pacbayes_sigma", "speed"]
    with pytest.raises(ValueError, match="unknown role 'speed'"):
        with_role("speed")


@pytest.mark.parametrize("declaration, message", [
    ('FAMILY = dict(name="toy")', "FAMILY must be a literal dict"),
    ('FAMILY = {"name": "toy"}', "exactly the keys"),
    ('FAMILY = ["toy"]', "exactly the keys"),
    (TOY.splitlines()[1] + TOY.splitlines()[2].replace('"flatness"', '"speed"'), "unknown roles ['speed']"),
    (TOY.splitlines()[1].replace('"quick"', '"slow"') + TOY.splitlines()[2], "'cost'] = 'slow'"),
    (TOY.splitlines()[1].replace('"order": 9', '"order": True') + TOY.splitlines()[2], "'order'] = True has the wrong type"),
    (TOY.splitlines()[1].replace('"data/toy.csv"', '3') + TOY.splitlines()[2], "maps names to paths"),
])
def test_a_bad_declaration_is_refused_naming_the_file(tmp_path, declaration, message):
    path = tmp_path / "toy.py"
    path.write_text(declaration + "\n")
    with pytest.raises(FamilySpecError, match="toy.py") as error:
        read_spec(path)
    assert message in str(error.value)


def test_a_declaration_runs_no_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "toy.py"
    path.write_text(f'FAMILY = __import__("pathlib").Path({str(marker)!r}).touch()\n')
    with pytest.raises(FamilySpecError, match="literal"):
        read_spec(path)
    assert not marker.exists()


def test_a_family_declared_twice_is_refused(tmp_path):
    (tmp_path / "a.py").write_text(TOY)
    (tmp_path / "b.py").write_text(TOY)
    with pytest.raises(FamilySpecError, match="family 'toy' declared twice"):
        family_specs(tmp_path)


def test_reading_the_specs_needs_no_torch():
    # the Snakefile and the analysis jobs read them in interpreters without torch
    code = ("import sys; sys.modules['torch'] = None\n"
            "from prunability.families import family_order; print(family_order())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "prune_potential" in result.stdout
