"""Reference pages written from the code, so that no list of measures or settings is
typed by hand:

    python -m prunability.reference_pages --out docs

writes ``docs/measures.md`` (every registered measure: name, family, orientation, the
equation in Jiang et al. 2020 where there is one, description) and ``docs/config.md``
(every key of workflow/schemas/config.schema.yaml: path, type, default, description).
tests/test_reference_pages.py fails when the committed pages differ from what this
writes, so a measure or key added without regenerating is caught.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import yaml

__all__ = ["REGENERATE", "measures_page", "config_page", "pages", "main"]

REGENERATE = "python -m prunability.reference_pages --out docs"
GENERATED = f"<!-- Written by `{REGENERATE}`; do not edit by hand. -->"

MEASURES_INTRO = """\
Every measure the workflow computes, one row per entry of the measure registry
(`src/prunability/measures/`). **Orientation** +1: a larger value predicts a larger
gap (worse generalization); -1: a smaller one. The statistics use orientation x value,
so a positive tau means the measure predicts in the direction it claims. **Equation**:
the number in [Jiang et al. 2020](references.md#jiang-et-al-2020); "(FFT)" is the same
quantity with each conv layer's exact operator norm. A name with `<setting>` is a
template: one measure per value of that list setting of the family (for example
`instability_test_0.1`). How each family computes its measures, and prunability's
search: [method.md](method.md#the-measures); their settings: [config.md](config.md#measures)."""


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def measures_page(measures, family_order=()) -> str:
    """The measures table for an iterable of registry entries (prunability.measures.Measure)."""
    order = {family: i for i, family in enumerate(family_order)}
    rows = sorted(measures, key=lambda m: (order.get(m.family, len(order)), m.family))  # stable: registry order within
    lines = ["# Measures", "", GENERATED, "", MEASURES_INTRO, "",
             "| measure | family | orientation | equation | description |", "|---|---|---|---|---|"]
    for m in rows:
        name = re.sub(r"\{[^}]*\}", f"<{m.over}>", m.name) if m.over else m.name
        lines.append(f"| `{name}` | {m.family} | {m.orientation:+d} | {_cell(m.equation or '')} | {_cell(m.description)} |")
    return "\n".join(lines) + "\n"


def _resolve(node: dict, schema: dict) -> dict:
    """A schema node with its $ref (and allOf of $refs) merged in, its own keys winning."""
    parts = [node, *node.get("allOf", [])]
    merged: dict = {}
    for part in reversed(parts):
        if "$ref" in part:
            merged.update(_resolve(schema["$defs"][part["$ref"].rsplit("/", 1)[1]], schema))
        merged.update({k: v for k, v in part.items() if k not in ("$ref", "allOf")})
    return merged


def _type(node: dict, schema: dict) -> str:
    node = _resolve(node, schema)
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    kinds = node.get("type", "")
    kinds = " or ".join(kinds) if isinstance(kinds, list) else kinds
    if "array" in kinds and "items" in node:
        kinds = kinds.replace("array", f"array of {_type(node['items'], schema)}")
    return kinds


def _rows(properties: dict, schema: dict, prefix: str, required=()):
    for key, raw in properties.items():
        node = _resolve(raw, schema)
        path = f"{prefix}{key}"
        items = _resolve(node.get("items", {}), schema)
        description = node.get("description") or items.get("description", "")
        if key in required:
            default = "(required)"
        elif "default" in node and node.get("type") != "object":
            default = f"`{json.dumps(node['default'])}`"
        else:
            default = ""
        yield f"| `{path}` | {_type(raw, schema)} | {_cell(default)} | {_cell(description)} |"
        if "properties" in node:
            yield from _rows(node["properties"], schema, f"{path}.", node.get("required", ()))
        if "properties" in items:
            yield from _rows(items["properties"], schema, f"{path}[].", items.get("required", ()))


def config_page(schema: dict) -> str:
    """Every key of a configuration schema, one table per top-level key."""
    lines = ["# Configuration keys", "", GENERATED, "", _cell(schema.get("description", "")), "",
             "A preset replaces `config.yaml`; a second `--configfile` is merged into the first key by key "
             "([cluster.md](cluster.md#several-configuration-files)). Unknown keys and bad values stop the run "
             "before any job ([troubleshooting.md](troubleshooting.md#bad-input-and-faults))."]
    for key, raw in schema["properties"].items():
        lines += ["", f"## {key}", "", "| key | type | default | description |", "|---|---|---|---|",
                  *_rows({key: raw}, schema, "", schema.get("required", ()))]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """{file name: content} of every reference page, from the installed code."""
    from .config import SCHEMA_PATH
    from .measures import MEASURES

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    families = schema["properties"]["measures"]["properties"]["families"]["items"]["enum"]
    return {"measures.md": measures_page(MEASURES.values(), families), "config.md": config_page(schema)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prunability.reference_pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs", help="folder to write the pages into (default: docs)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
