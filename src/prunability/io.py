"""Atomic writes and safe loading.

Every file a job writes goes to a temporary name in the same directory and is
renamed into place, so a killed job never leaves a half-written file that looks
finished (rename is atomic on POSIX file systems).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


class InputFileError(ValueError):
    """A job's input file that is missing, damaged or does not fit the job: an error of
    the run, so the job fails naming it (it is never recorded as a property of a model)."""


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; results are shared as any file is
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically. Non-finite floats are written as NaN/Infinity
    (Python's json reads them back; a diverged model's numbers stay visible)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def load_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def keep_result(path: str | os.PathLike, fingerprint: str, obj: Any) -> None:
    """Keep a finished part of a job's work outside its declared outputs (which
    Snakemake deletes when the job fails), so that a rerun can take it back."""
    save_json(path, {"fingerprint": fingerprint, "result": obj})


def kept_result(path: str | os.PathLike, fingerprint: str) -> Any | None:
    """What ``keep_result`` kept at ``path`` under this fingerprint; None if nothing, if
    it was kept under another, or if the file cannot be read (the work is done again)."""
    try:
        kept = load_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("fingerprint") != fingerprint:
        return None
    return kept.get("result")


# torch is imported where it is used: the analysis jobs (table, statistics,
# figures) run in an environment without it.


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | os.PathLike, map_location="cpu") -> Any:
    """Load tensors and plain containers only (no pickled code)."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def save_csv(path: str | os.PathLike, frame) -> None:
    """``DataFrame.to_csv`` atomically, without the index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def redirect_output(log_path: str | os.PathLike) -> None:
    """Send this job's stdout and stderr (progress lines, warnings, tracebacks) to its log file."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    stream = open(log_path, "a", buffering=1)
    sys.stdout = sys.stderr = stream
