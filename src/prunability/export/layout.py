"""What every archive holds and how it is named: its format number, the files that are
always there, the MANIFEST lines and the content version computed from them, and the
errors for a study that cannot be exported and an archive that cannot be read."""

from __future__ import annotations

import hashlib
import json

from .. import __version__

FORMAT = 1
DATASHEET, MANIFEST, INFO = "DATASHEET.md", "MANIFEST", "export.json"
# The files that name the version, so are left out of the content hash.
VERSIONED = (DATASHEET, INFO, MANIFEST)
HASH_DIGITS = 12
MODEL_FILES = ("init.pt", "final.pt", "train.json", "curve.csv")


class ExportError(ValueError):
    """A study that cannot be exported as it is (unfinished, or its files disagree)."""


class ArchiveError(ValueError):
    """An archive that is unsafe, damaged, or not an export of this package."""


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_lines(hashes: dict[str, str]) -> str:
    return "".join(f"{hashes[path]}  {path}\n" for path in sorted(hashes))


def content_version(hashes: dict[str, str]) -> str:
    """``<package version>+<first 12 hex digits of the payload's manifest hash>``."""
    payload = {path: digest for path, digest in hashes.items() if path not in VERSIONED}
    return f"{__version__}+{_sha256(manifest_lines(payload).encode())[:HASH_DIGITS]}"
