"""Reading an archive back alone: every member checked to be a regular file under one top
folder and to match the MANIFEST, then its table, configuration, split description,
records and models (``StudyArchive``, ``load_model``), or the whole archive unpacked
(``extract``); nothing read runs code."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pandas as pd
import yaml

from ..io import file_sha256, load_torch
from .layout import FORMAT, INFO, MANIFEST, ArchiveError, _sha256
from .split import check_split


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or not path.parts:
        raise ArchiveError(f"unsafe member {name!r} (an absolute path or '..'): refusing the archive")
    return path


def _check_members(tar: tarfile.TarFile) -> tuple[str, dict[str, tarfile.TarInfo]]:
    """The top folder and its regular files by their path under it; ArchiveError for
    any member that is not a regular file under one top folder."""
    members, tops = {}, set()
    for member in tar.getmembers():
        path = _safe_name(member.name)
        if member.isdir():
            continue
        if not member.isfile():
            raise ArchiveError(f"member {member.name!r} is not a regular file (a link or a device): refusing the archive")
        if len(path.parts) < 2:
            raise ArchiveError(f"member {member.name!r} is not inside the archive's top folder")
        tops.add(path.parts[0])
        inner = PurePosixPath(*path.parts[1:]).as_posix()
        if inner in members:
            raise ArchiveError(f"member {member.name!r} occurs twice")
        members[inner] = member
    if len(tops) != 1:
        raise ArchiveError(f"an export has one top folder; this archive has {sorted(tops) or 'none'}")
    return tops.pop(), members


def _parse_manifest(text: str) -> dict[str, str]:
    hashes = {}
    for line in text.splitlines():
        digest, sep, path = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ArchiveError(f"MANIFEST: malformed line {line!r}")
        hashes[path] = digest
    return hashes


class StudyArchive:
    """An exported study, read from its ``.tar.gz`` (or from the folder ``extract``
    made of it). Opening it checks every member against the MANIFEST (one pass)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._tar = None
        if self.path.is_dir():
            self._files = {p.relative_to(self.path).as_posix(): p for p in self.path.rglob("*") if p.is_file()}
            actual = {name: file_sha256(p) for name, p in self._files.items()}
            self.name = self.path.name
        else:
            try:
                self._tar = tarfile.open(self.path, "r:gz")
                self.name, self._members = _check_members(self._tar)
                actual = {name: _sha256(self._tar.extractfile(m).read()) for name, m in self._members.items()}
            except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as error:
                raise ArchiveError(f"{self.path}: cannot read the archive ({type(error).__name__}: {error})") from error
        if MANIFEST not in actual:
            raise ArchiveError(f"{self.path}: no MANIFEST: not an export of prunability")
        self.hashes = _parse_manifest(self._read(MANIFEST).decode())
        actual.pop(MANIFEST)
        missing, extra = sorted(set(self.hashes) - set(actual)), sorted(set(actual) - set(self.hashes))
        wrong = sorted(n for n in set(actual) & set(self.hashes) if actual[n] != self.hashes[n])
        if missing or extra or wrong:
            raise ArchiveError(f"{self.path} does not match its MANIFEST: missing {missing}, not listed {extra}, "
                               f"changed {wrong}")
        self.info = json.loads(self._read(INFO))
        if self.info.get("format") != FORMAT:
            raise ArchiveError(f"{self.path}: export format {self.info.get('format')}, this package reads {FORMAT}")

    def _read(self, name: str) -> bytes:
        if self._tar is None:
            if name not in self._files:
                raise KeyError(f"{self.path} has no file {name}")
            return self._files[name].read_bytes()
        if name not in self._members:
            raise KeyError(f"{self.path} has no file {name}")
        return self._tar.extractfile(self._members[name]).read()

    def read(self, name: str) -> bytes:
        """A file's bytes, checked against the MANIFEST."""
        data = self._read(name)
        if name != MANIFEST and _sha256(data) != self.hashes[name]:
            raise ArchiveError(f"{self.path}: {name} does not match its MANIFEST hash")
        return data

    def json(self, name: str):
        return json.loads(self.read(name))

    def csv(self, name: str) -> pd.DataFrame:
        return pd.read_csv(io.BytesIO(self.read(name)))

    @property
    def version(self) -> str:
        return self.info["version"]

    @property
    def cells(self) -> list[str]:
        return self.info["cells"]

    @property
    def config(self) -> dict:
        return yaml.safe_load(self.read("config.yaml"))

    @property
    def table(self) -> pd.DataFrame:
        """table.csv (pandas reads its floats back exactly)."""
        return self.csv("table.csv")

    @property
    def split(self) -> dict:
        """split/split.json: the data split's description (no images)."""
        return self.json("split/split.json")

    def check_split(self, split: dict) -> dict:
        """``split`` if its images and labels are this archive's (see ``check_split``)."""
        return check_split(self.split, split)

    def summary(self, cell: str) -> dict:
        return self.json(f"models/{self._cell(cell)}/train.json")

    def measures(self, cell: str, family: str) -> dict:
        return self.json(f"measures/{self._cell(cell)}/{family}.json")

    def _cell(self, cell: str) -> str:
        if cell not in self.cells:
            raise KeyError(f"{self.path} has no model {cell!r}; its cells: {self.cells}")
        return cell

    def state_dict(self, cell: str, which: str = "final") -> dict:
        """A model's state_dict (tensors only: ``weights_only=True``)."""
        if which not in ("init", "final"):
            raise ValueError(f"which must be 'init' or 'final', got {which!r}")
        return load_torch(io.BytesIO(self.read(f"models/{self._cell(cell)}/{which}.pt")))

    def model(self, cell: str, which: str = "final"):
        """The cell's model with its ``which`` ("final" or "init") weights, in eval mode
        on the CPU, built by the package's own ``model_for``."""
        from ..train import model_for

        split = self.split
        channels, size = split["image_shape"][0], split["image_shape"][-1]
        shape = SimpleNamespace(in_channels=channels, num_classes=len(split["classes"]), image_size=size)
        model = model_for(self.summary(cell)["hyperparameters"], self.config["model"], shape)
        model.load_state_dict(self.state_dict(cell, which))
        return model.eval()

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_model(archive: str | Path, cell: str, which: str = "final"):
    """One cell's model from an exported archive alone (see ``StudyArchive.model``)."""
    with StudyArchive(archive) as opened:
        return opened.model(cell, which)


def extract(archive: str | Path, dest: str | Path) -> Path:
    """Unpack an archive under ``dest`` after checking every member (see
    ``StudyArchive``), with tarfile's ``data`` filter; return its top folder."""
    with StudyArchive(archive) as opened, tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")
        top = Path(dest) / opened.name
    StudyArchive(top).close()  # what was written matches the MANIFEST
    return top
