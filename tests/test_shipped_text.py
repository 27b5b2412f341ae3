"""Shipped text cites the papers themselves (docs/references.md), never the private
reading digest the package was written from, its source labels, or the tracker's
issue numbers: a user has none of these.

The files come from ``git ls-files``, so a new tracked file is checked too.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The digest's file name, split so that this file does not match itself.
DIGEST = re.compile(re.escape("papers" + ".md"))
# Its source labels as it cites them: "[V:S1,S3]", "[S:S4]", "(S5)", "as S5's",
# "S5: 10", "S5 - 0.1". A label sits after a bracket, a comma, a semicolon or a
# space, and before a closing bracket, a comma, a semicolon, a colon, an
# apostrophe or a space; an identifier or a shape such as "xS1" or "S1x" is not one.
SOURCE_LABEL = re.compile(r"\[[VS]:|(?:^|(?<=[\[(,;\s]))S\d{1,2}(?=[\]),;:'’\s]|$)", re.MULTILINE)
# Issue numbers of the project's tracker: "issue 12", "issues 3", "PR 7", "#14".
# "#" after a word character ("snakemake#281", an upstream reference), a slash, "&"
# or "$", and six-digit colours ("#4c72b0", "#000000") are not.
ISSUE = re.compile(r"\b(?:issues?|PR)\s*#?\d+\b|(?<![\w/&$#])#\d{1,5}\b", re.IGNORECASE)


def _shipped_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    names = [n for n in out.decode().split("\0") if n]
    files = []
    for name in names:
        path = ROOT / name
        if path.is_file() and path != Path(__file__).resolve():  # its examples are offences on purpose
            files.append(path)
    return files


def _offences(pattern: re.Pattern) -> list[str]:
    found = []
    for path in _shipped_files():
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            for match in pattern.finditer(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r} in {line.strip()[:120]}")
    return found


def test_no_file_cites_the_private_digest():
    offences = _offences(DIGEST)
    assert not offences, "cite the paper (docs/references.md) instead:\n" + "\n".join(offences)


def test_no_file_cites_a_digest_source_label():
    offences = _offences(SOURCE_LABEL)
    assert not offences, "name the paper or code the label stood for:\n" + "\n".join(offences)


def test_no_file_cites_an_issue_number():
    offences = _offences(ISSUE)
    assert not offences, "say why, not which issue:\n" + "\n".join(offences)


@pytest.mark.parametrize(
    "text, pattern, hit",
    [
        ("as reimplemented by Dziugaite et al., S5)", SOURCE_LABEL, True),
        ("[V:S1,S3]", SOURCE_LABEL, True),
        ("(S5 - 0.1)", SOURCE_LABEL, True),
        ("as in S5's NiN", SOURCE_LABEL, True),
        ("mc_draws: 3  # default study (S5: 10)", SOURCE_LABEL, True),
        ("x.view(B, S, 3)", SOURCE_LABEL, False),
        ("a tensor of shape S1xS2", SOURCE_LABEL, False),
        ("the paper's claims K1-K6", SOURCE_LABEL, False),
        ("the loop (issue 12).", ISSUE, True),
        ("see #14 for this", ISSUE, True),
        ("no device id (snakemake#281)", ISSUE, False),
        ('{"train": "#8c8c8c", "test": "#4c72b0"}', ISSUE, False),
        ('color="#000000"', ISSUE, False),
        ("the " + "papers" + ".md digest", DIGEST, True),
    ],
)
def test_patterns(text, pattern, hit):
    assert bool(pattern.search(text)) is hit
