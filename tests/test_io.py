"""Tests for prunability.io: atomic writes keep the umask's permissions and leave
nothing half-written."""

from __future__ import annotations

import math
import os
import stat

import pandas as pd
import pytest

from prunability.io import atomic_path, load_json, save_csv, save_json


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o007, 0o660), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    save_json(tmp_path / "a.json", {"x": 1})
    save_csv(tmp_path / "b.csv", pd.DataFrame({"x": [1]}))
    for name in ("a.json", "b.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    save_json(path, {"kept": True})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert load_json(path) == {"kept": True}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_json_keeps_non_finite_numbers(tmp_path):
    save_json(tmp_path / "n.json", {"loss": float("nan"), "inf": float("inf")})
    back = load_json(tmp_path / "n.json")
    assert math.isnan(back["loss"]) and back["inf"] == float("inf")
