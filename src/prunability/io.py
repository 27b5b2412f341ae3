"""Atomic writes and safe loading.

Every file a job writes goes to a temporary name in the same directory and is
renamed into place, so a killed job never leaves a half-written file that looks
finished (rename is atomic on POSIX file systems).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


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
