"""Writing an archive: where a finished study's files are, the export rule's inputs (a
study that is not finished stops the run before any job), and ``export_study``, which
packs them with reproducible bytes into ``<study>-<version>.tar.gz``."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml

from .. import __version__
from ..io import atomic_path, file_sha256, load_json, load_torch
from .descriptions import column_descriptions, datasheet, measure_descriptions
from .layout import (
    DATASHEET,
    FORMAT,
    INFO,
    MANIFEST,
    MODEL_FILES,
    ExportError,
    _json_bytes,
    _sha256,
    content_version,
    manifest_lines,
)
from .split import split_files


def _member(name: str, size: int) -> tarfile.TarInfo:
    """A regular file's header with fixed times and owners, so the bytes are reproducible."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@dataclass
class StudyFiles:
    """Where a finished study's files are (the export rule's inputs)."""

    table: Path
    split: Path
    label_noise: Path
    models: Path  # results/<study>/models
    measures: Path  # results/<study>/measures
    platform: Path | None = None

    @classmethod
    def of(cls, results: str | Path) -> "StudyFiles":
        """The files of ``results/<study>`` as the workflow writes them."""
        results = Path(results)
        data = results / "data"
        return cls(results / "table.csv", data / "split.pt", data / "label_noise.csv", results / "models",
                   results / "measures", results / "platform.json")


def missing_files(files: StudyFiles, cells: list[str], families: list[str]) -> list[str]:
    """Every file an export of these cells and families needs that does not exist."""
    needed = [files.table, files.split, files.label_noise]
    for cell in cells:
        needed += [files.models / cell / name for name in MODEL_FILES]
        needed += [files.measures / cell / f"{family}.json" for family in families]
    return [str(path) for path in needed if not Path(path).exists()]


def _not_finished(study: str, missing: list[str]) -> ExportError:
    shown = "\n  ".join(missing[:10]) + (f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else "")
    return ExportError(f"cannot export the study {study!r}: it is not finished, {len(missing)} of its files are "
                       f"missing:\n  {shown}\nRun the study first (snakemake --cores all with the same "
                       "--configfile), then export.")


def study_inputs(results: str | Path, study: str, cells: list[str], families: list[str]) -> dict:
    """The export rule's inputs: every file the archive is made from (platform.json
    where the study recorded one). A study that is not finished raises ExportError
    naming what is missing, so the run stops before any job: an export never starts
    (or finishes) the study itself."""
    files = StudyFiles.of(results)
    missing = missing_files(files, cells, families)
    if missing:
        raise _not_finished(study, missing)
    inputs = {
        "table": str(files.table),
        "split": str(files.split),
        "label_noise": str(files.label_noise),
        "models": [str(files.models / cell / name) for cell in cells for name in MODEL_FILES],
        "measures": [str(files.measures / cell / f"{family}.json") for cell in cells for family in families],
    }
    if files.platform.exists():
        inputs["platform"] = str(files.platform)
    return inputs


def export_study(dest: str | Path, study: str, config: dict, cells: list[str], families: list[str],
                 files: StudyFiles, log: Callable[[str], None] = print) -> Path:
    """Write ``dest/<study>-<version>.tar.gz`` from a finished study; return its path."""
    missing = missing_files(files, cells, families)
    if missing:
        raise _not_finished(study, missing)
    table = pd.read_csv(files.table)
    if sorted(table["model"]) != sorted(cells):
        raise ExportError(f"{files.table} holds other models than the configuration's {len(cells)} cells: "
                          "rerun collect_table")

    # Generated files (bytes) and copied ones (paths), by their path in the archive.
    generated: dict[str, bytes] = {}
    copied: dict[str, Path] = {"table.csv": Path(files.table), "split/label_noise.csv": Path(files.label_noise)}
    for cell in cells:
        copied.update({f"models/{cell}/{name}": files.models / cell / name for name in MODEL_FILES})
        copied.update({f"measures/{cell}/{family}.json": files.measures / cell / f"{family}.json" for family in families})
    platform = None
    if files.platform is not None and Path(files.platform).exists():
        copied["platform.json"] = Path(files.platform)
        platform = load_json(files.platform)

    measures = measure_descriptions(families, config["measures"])
    in_table = [c.removeprefix("measure.") for c in table.columns if c.startswith("measure.")]
    unknown = sorted(set(in_table) - set(measures["name"]))
    if unknown:
        raise ExportError(f"the table's measures {unknown} are not in the measure registry of this package version: "
                          "the measures were computed by other code; rerun them (snakemake --forcerun measure_<family>)")
    measures = measures[measures["name"].isin(in_table)].reset_index(drop=True)
    orientation = dict(zip(measures["name"], measures["orientation"]))
    for family in families:
        record = load_json(files.measures / cells[0] / f"{family}.json")
        changed = sorted(n for n, o in record["orientation"].items() if n in orientation and orientation[n] != o)
        if changed:
            raise ExportError(f"the orientation of {changed} in the {family} records differs from the measure "
                              "registry's: rerun that family (snakemake --forcerun measure_" + family + ")")
    columns = column_descriptions(list(table.columns), measures)

    split = load_torch(files.split)
    generated.update(split_files(split))
    generated["measures.csv"] = measures.to_csv(index=False).encode()
    generated["columns.csv"] = columns.to_csv(index=False).encode()
    generated["config.yaml"] = yaml.safe_dump(config, sort_keys=False).encode()

    log(f"hashing {len(copied)} files of results/{study}")
    hashes = {path: file_sha256(source) for path, source in copied.items()}
    hashes.update({path: _sha256(data) for path, data in generated.items()})
    version = content_version(hashes)
    train_platform = any("platform" in load_json(files.models / cell / "train.json") for cell in cells)
    info = {"format": FORMAT, "study": study, "version": version, "package_version": __version__,
            "cells": cells, "families": families, "n_models": len(cells), "platform": platform is not None}
    generated[INFO] = _json_bytes(info)
    generated[DATASHEET] = datasheet(info, config, table, columns, measures, json.loads(generated["split/split.json"]),
                                     platform, train_platform).encode()
    for path in (INFO, DATASHEET):
        hashes[path] = _sha256(generated[path])
    generated[MANIFEST] = manifest_lines(hashes).encode()

    top = f"{study}-{version}"
    archive = Path(dest) / f"{top}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(archive) as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for path in sorted({*generated, *copied}):
                    if path in generated:
                        tar.addfile(_member(f"{top}/{path}", len(generated[path])), io.BytesIO(generated[path]))
                    else:
                        source = copied[path]
                        with open(source, "rb") as f:
                            tar.addfile(_member(f"{top}/{path}", source.stat().st_size), f)
    log(f"wrote {archive} ({archive.stat().st_size / 1e6:.1f} MB, {len(hashes) + 1} files, version {version})")
    return archive
