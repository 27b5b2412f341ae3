"""prunability.reference_pages: docs/measures.md and docs/config.md are written from the
measure registry and the configuration schema, and the committed pages are current."""

from __future__ import annotations

import pytest

from conftest import REPO
from prunability.measures import Measure
from prunability.reference_pages import REGENERATE, config_page, main, measures_page, pages


@pytest.mark.parametrize("name", ["measures.md", "config.md"])
def test_the_committed_page_is_what_the_code_writes(name):
    committed = (REPO / "docs" / name).read_text(encoding="utf-8")
    assert committed == pages()[name], (
        f"docs/{name} differs from what the measure registry and the config schema give now: "
        f"run `{REGENERATE}` and commit the result")


def test_pages_of_a_tiny_registry_and_schema(tmp_path):
    fn = lambda ctx: 0.0  # noqa: E731
    measures = [
        Measure("speed", "optimization", +1, None, "Steps to CE 0.1.", fn),
        Measure("drop_{:g}", "pruning", -1, "7 (FFT)", "Drop |a - b| at this fraction.", fn, over="fractions"),
        Measure("kept", "pruning", +1, None, "", fn),
    ]
    page = measures_page(measures, family_order=["pruning", "norms"])
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert rows == [  # pruning first (the given order), registry order within a family, unknown families last
        "| `drop_<fractions>` | pruning | -1 | 7 (FFT) | Drop \\|a - b\\| at this fraction. |",
        "| `kept` | pruning | +1 |  |  |",
        "| `speed` | optimization | +1 |  | Steps to CE 0.1. |",
    ]
    assert REGENERATE in page

    schema = {
        "description": "A study.", "required": ["study"],
        "$defs": {"seed": {"type": "integer", "description": "A seed."}},
        "properties": {
            "study": {"type": "string", "description": "Its name."},
            "train": {"type": "object", "default": {}, "description": "Training.", "properties": {
                "mode": {"enum": ["a", "b"], "default": "a", "description": "Which."},
                "seed": {"$ref": "#/$defs/seed", "default": 3},
                "cap": {"type": ["integer", "null"], "default": None, "description": "A cap."},
                "steps": {"type": "array", "items": {"type": "object", "required": ["at"], "properties": {
                    "at": {"type": "integer", "description": "When."}}}, "default": [], "description": "Steps."}}},
            "grid": {"type": "object", "properties": {
                "seed": {"allOf": [{"type": "array"}], "items": {"$ref": "#/$defs/seed"}}}},
        },
    }
    page = config_page(schema)
    assert "## study\n\n| key | type | default | description |\n|---|---|---|---|\n" \
           "| `study` | string | (required) | Its name. |\n" in page
    for row in ["| `train` | object |  | Training. |",
                "| `train.mode` | `a` \\| `b` | `\"a\"` | Which. |",
                "| `train.seed` | integer | `3` | A seed. |",
                "| `train.cap` | integer or null | `null` | A cap. |",
                "| `train.steps` | array of object | `[]` | Steps. |",
                "| `train.steps[].at` | integer | (required) | When. |",
                "| `grid.seed` | array of integer |  | A seed. |"]:
        assert row + "\n" in page
    assert page.index("## study") < page.index("## train") < page.index("## grid")

    assert main(["--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.md", "measures.md"]
