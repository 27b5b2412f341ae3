"""What each measure family needs from the workflow, as its own module declares it.

A family module in ``prunability/measures/`` declares at its top level a literal::

    FAMILY = {"name": "pruning", "cost": "sweep", "cluster_group": None, "inputs": {},
              "order": 0, "roles": ["prunability"]}

- ``cost``: ``"sweep"`` (a search over many evaluations of the model) or ``"quick"``:
  the runtime class of its jobs (``MINUTES_PER_CELL`` in ``workflow/rules/common.smk``);
- ``cluster_group``: the Snakemake group its jobs join on a cluster
  (``"train_and_quick_measures"``: one cluster job with the training), or None;
- ``inputs``: extra input files of its measure jobs by name, relative to
  ``results/<study>/``; each reaches the family's settings as ``<name>_file``;
- ``order``: where its measures stand in the figures (smaller first);
- ``roles``: what the claims and figures select families by: ``"prunability"`` (the
  measure under test), ``"norm"`` (K1's count and norm measures), ``"flatness"`` (K6's
  rival).

The declarations are read from the modules' source with ``ast.literal_eval``, without
importing them: the Snakefile and the analysis jobs, which have no torch, know them
too, and reading them runs no code.
"""

from __future__ import annotations

import ast
import copy
from functools import lru_cache
from pathlib import Path

MEASURES_DIR = Path(__file__).resolve().parent / "measures"
KEYS = {"name": str, "cost": str, "cluster_group": (str, type(None)), "inputs": dict, "order": int, "roles": list}
COSTS = ("sweep", "quick")
ROLES = ("prunability", "norm", "flatness")


class FamilySpecError(ValueError):
    """A family module's FAMILY declaration is missing a key, has a wrong one or is not a literal."""


def read_spec(path: Path) -> dict | None:
    """The FAMILY literal of the module at ``path``, checked; None if it declares none."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "FAMILY" for t in node.targets):
            try:
                spec = ast.literal_eval(node.value)
            except ValueError as error:
                raise FamilySpecError(f"{path}: FAMILY must be a literal dict ({error})") from None
            return _checked(spec, path)
    return None


def _checked(spec, path) -> dict:
    if not isinstance(spec, dict) or set(spec) != set(KEYS):
        keys = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise FamilySpecError(f"{path}: FAMILY must have exactly the keys {sorted(KEYS)}, not {keys}")
    for key, kind in KEYS.items():
        if not isinstance(spec[key], kind) or (kind is int and isinstance(spec[key], bool)):
            raise FamilySpecError(f"{path}: FAMILY[{key!r}] = {spec[key]!r} has the wrong type")
    if spec["cost"] not in COSTS:
        raise FamilySpecError(f"{path}: FAMILY['cost'] = {spec['cost']!r}; one of {list(COSTS)}")
    if unknown := set(spec["roles"]) - set(ROLES):
        raise FamilySpecError(f"{path}: FAMILY['roles'] has unknown roles {sorted(unknown)}; known: {list(ROLES)}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in spec["inputs"].items()):
        raise FamilySpecError(f"{path}: FAMILY['inputs'] maps names to paths (text)")
    return spec


def family_specs(folder: str | Path = MEASURES_DIR) -> dict[str, dict]:
    """Every family declared in ``folder``, by name, in ``order`` (copies: the cache stays as read)."""
    return copy.deepcopy(dict(_specs(str(Path(folder).resolve()))))


@lru_cache(maxsize=None)
def _specs(folder: str) -> tuple[tuple[str, dict], ...]:
    specs = {}
    for path in sorted(Path(folder).glob("*.py")):
        spec = read_spec(path)
        if spec is None:
            continue
        if spec["name"] in specs:
            raise FamilySpecError(f"{path}: family {spec['name']!r} declared twice")
        specs[spec["name"]] = dict(spec, module=path.stem)
    return tuple(sorted(specs.items(), key=lambda item: (item[1]["order"], item[0])))


def with_role(role: str, folder: str | Path = MEASURES_DIR) -> list[str]:
    """The families that declare ``role``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {list(ROLES)}")
    return [name for name, spec in family_specs(folder).items() if role in spec["roles"]]


def family_order(folder: str | Path = MEASURES_DIR) -> list[str]:
    """The families in the order the figures list them."""
    return list(family_specs(folder))


def measures_with_role(info, role: str) -> list[str]:
    """The measures of a measure_info table (columns name, family) whose family declares ``role``."""
    return info.loc[info["family"].isin(with_role(role)), "name"].tolist()


def baseline_measures(info) -> list[str]:
    """The measures of a measure_info table of every family but the one under test (role prunability)."""
    return info.loc[~info["family"].isin(with_role("prunability")), "name"].tolist()
