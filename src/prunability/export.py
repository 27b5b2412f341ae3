"""A finished study as a versioned, self-contained archive, and reading one back.

``export_study`` packs one study's population of trained models with their measures
into ``<study>-<version>.tar.gz``; ``StudyArchive`` (and ``load_model``) read a model,
the table and the split's description from that file alone, without the results
folder. docs/export.md is the user's page.

Layout: one top folder ``<study>-<version>/`` holding only regular files:

- ``DATASHEET.md``: written by ``datasheet``: what each column is, how the models were
  trained, how to load one;
- ``MANIFEST``: ``<sha256>  <path>`` of every other file (``sha256sum -c MANIFEST``
  checks them from inside the top folder);
- ``export.json``: the study, the version, the cells and families;
- ``config.yaml``: the resolved configuration (the schema's defaults filled in);
- ``table.csv``; ``measures.csv`` (name, family, orientation, equation, description,
  from the measure registry); ``columns.csv`` (every column of the table, described);
- ``split/split.json`` (source, classes, shape, normalisation statistics, the hash
  convention), ``split/train.csv`` and ``split/test.csv`` (index, label, SHA-256 of
  every image: the images themselves are not in the archive),
  ``split/label_noise.csv``;
- ``models/<cell>/`` ``init.pt``, ``final.pt`` (state_dicts), ``train.json``,
  ``curve.csv``; ``measures/<cell>/<family>.json``;
- ``platform.json`` where the study recorded one.

Version: ``<package version>+<content hash>``, the hash being the first 12 hex digits
of the SHA-256 of the MANIFEST lines of every file except the three that name the
version (DATASHEET.md, export.json, MANIFEST). The same study exported twice gets the
same version and the same bytes (fixed member order, times, owners and gzip header);
any changed file gives another version.

Nothing read from an archive runs code: checkpoints load with
``torch.load(..., weights_only=True)``; members must be regular files under the top
folder (no absolute paths, no ``..``, no links), each must match the MANIFEST, and
``extract`` uses tarfile's ``data`` filter.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Callable

import pandas as pd
import yaml

from . import __version__
from .io import atomic_path, file_sha256, load_json, load_torch

FORMAT = 1
DATASHEET, MANIFEST, INFO = "DATASHEET.md", "MANIFEST", "export.json"
# The files that name the version, so are left out of the content hash.
VERSIONED = (DATASHEET, INFO, MANIFEST)
HASH_DIGITS = 12
MODEL_FILES = ("init.pt", "final.pt", "train.json", "curve.csv")
KUHN = "Kuhn, Lyle, Gomez, Rothfuss, Gal (2021), Robustness to Pruning Predicts Generalization in Deep Neural Networks, https://arxiv.org/abs/2103.06002"


class ExportError(ValueError):
    """A study that cannot be exported as it is (unfinished, or its files disagree)."""


class ArchiveError(ValueError):
    """An archive that is unsafe, damaged, or not an export of this package."""


# --------------------------------------------------------------------------- the split


def image_sha256(x_uint8) -> list[str]:
    """SHA-256 of each image's bytes: uint8, C x H x W, row-major (C order)."""
    array = x_uint8.contiguous().numpy()
    return [hashlib.sha256(image.tobytes()).hexdigest() for image in array]


def split_files(split: dict) -> dict[str, bytes]:
    """The split as the archive describes it: positions, labels and image hashes per
    part, and a JSON of everything else needed to use it (never the images)."""
    from .data import describe

    files, parts = {}, {}
    for part in ("train", "test"):
        x, y = split[f"x_{part}"], split[f"y_{part}"]
        frame = pd.DataFrame({"index": range(len(y)), "label": y.numpy(), "sha256": image_sha256(x)})
        files[f"split/{part}.csv"] = frame.to_csv(index=False).encode()
        parts[part] = {
            "n": int(len(y)),
            "images_sha256": hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest(),
            "labels_sha256": hashlib.sha256(y.contiguous().numpy().tobytes()).hexdigest(),
        }
    description = describe(split)
    description.update(
        dtype=str(split["x_train"].dtype).removeprefix("torch."),
        parts=parts,
        hashes=(
            "split/<part>.csv: index = position in the split (the order the models saw; label_noise.csv's "
            "train_index), label = the label the models were trained or tested with, sha256 = SHA-256 of the "
            "image's uint8 bytes, C x H x W, row-major. parts.<part>.images_sha256 / labels_sha256: SHA-256 of "
            "the whole N x C x H x W uint8 tensor / the int64 labels, little-endian."
        ),
    )
    files["split/split.json"] = _json_bytes(description)
    return files


def check_split(description: dict, split: dict) -> dict:
    """``split`` (e.g. rebuilt from the source data by ``prunability.data.build_split``
    with the archive's configuration) if its images and labels are the archived ones;
    otherwise ArchiveError naming the part and the first differing position."""
    for part, expected in description["parts"].items():
        x, y = split[f"x_{part}"], split[f"y_{part}"]
        if len(y) != expected["n"]:
            raise ArchiveError(f"the {part} split has {len(y)} images, the archive's {expected['n']}")
        if hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest() != expected["images_sha256"]:
            raise ArchiveError(f"the {part} images differ from the archive's (see split/{part}.csv's sha256 for which)")
        if hashlib.sha256(y.contiguous().numpy().tobytes()).hexdigest() != expected["labels_sha256"]:
            raise ArchiveError(f"the {part} labels differ from the archive's (see split/{part}.csv)")
    return split


# --------------------------------------------------------------------------- descriptions


def measure_descriptions(families: list[str], settings: dict[str, dict]) -> pd.DataFrame:
    """name, family, orientation, equation, description of every measure of ``families``
    under their ``settings``, from the measure registry."""
    from .measures import instances_of

    rows = [
        {"name": name, "family": family, "orientation": m.orientation, "equation": m.equation, "description": m.description}
        for family in families
        for name, m, _ in instances_of(family, settings[family])
    ]
    return pd.DataFrame(rows, columns=["name", "family", "orientation", "equation", "description"])


GEN = {
    "gen.train_acc": "accuracy on the training split (eval mode, no augmentation)",
    "gen.test_acc": "accuracy on the test split",
    "gen.train_loss": "mean cross-entropy on the training split (eval mode, no augmentation)",
    "gen.test_loss": "mean cross-entropy on the test split",
    "gen.acc_gap": "generalization gap in accuracy: train acc - test acc",
    "gen.loss_gap": "generalization gap in loss: test loss - train loss",
    "gen.test_error": "1 - test acc",
}
TRAIN = {
    "train.epochs": "epochs trained",
    "train.steps": "optimizer steps taken",
    "train.steps_to_ce_0.1": "steps until the training cross-entropy first fell below 0.1 (checked at epoch ends; empty if never)",
    "train.steps_to_ce_0.01": "steps until the training cross-entropy first fell below 0.01 (empty if never)",
    "train.wall_time_s": "training wall time in seconds",
    "train.n_parameters": "number of parameters",
    "train.n_prunable": "number of prunable Conv/Linear weights |P|",
}
IS = {
    "is.converged": "reached the cross-entropy target (train.ce_target; with train.stopping budget: trained every epoch without diverging)",
    "is.diverged": "the training loss became non-finite",
    "is.finite": "every gen.* and measure.* value of the row is finite",
}


def column_descriptions(columns: list[str], measures: pd.DataFrame) -> pd.DataFrame:
    """column, description of every table column: measures from the registry, the rest
    by name or by prefix."""
    by_measure = measures.set_index("name")
    rows = []
    for column in columns:
        prefix, _, name = column.partition(".")
        if column == "model":
            text = "the model's grid cell, its folder under models/ and measures/ (axis~value/...)"
        elif column in GEN or column in TRAIN or column in IS:
            text = {**GEN, **TRAIN, **IS}[column]
        elif prefix == "hp":
            text = f"hyperparameter {name} of the model (a grid axis or the configuration's fixed value)"
        elif prefix == "measure" and name in by_measure.index:
            m = by_measure.loc[name]
            equation = f", Jiang et al. 2020 eq. {m.equation}" if isinstance(m.equation, str) and m.equation else ""
            text = f"{m.description} ({m.family} family, orientation {int(m.orientation):+d}{equation})"
        else:
            text = "(not described by this version of the package)"
        rows.append({"column": column, "description": text})
    return pd.DataFrame(rows, columns=["column", "description"])


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return "" if value is None or (isinstance(value, float) and value != value) else str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _settings(section: dict) -> str:
    return "\n".join(f"- `{key}`: `{json.dumps(value)}`" for key, value in section.items())


def datasheet(info: dict, config: dict, table: pd.DataFrame, columns: pd.DataFrame, measures: pd.DataFrame,
              split: dict, platform: dict | None, train_platform: bool) -> str:
    """DATASHEET.md of an archive (in the spirit of Gebru et al. 2021, Datasheets for
    Datasets, https://arxiv.org/abs/1803.09010), written from its own files."""
    study, version = info["study"], info["version"]
    name = f"{study}-{version}"
    cell = info["cells"][0]
    family = "norms" if "norms" in info["families"] else info["families"][0]
    grid = "\n".join(f"- `{axis}`: {', '.join(f'`{v}`' for v in values)}" for axis, values in config["grid"].items())
    fixed = {k: v for k, v in config["hyperparameters"].items() if k not in config["grid"]}
    noise = split.get("label_noise") or {}
    if platform is not None:
        shown = {k: v for k, v in platform.items() if not isinstance(v, (dict, list))}
        where = "`platform.json` records the machine and software the study ran on" + (
            ":\n\n" + _settings(shown) if shown else "."
        )
    else:
        where = "The study recorded no `platform.json`."
    if train_platform:
        where += " Each model's `train.json` records the platform it was trained on (its `platform` key)."
    return f"""# {name}

A population of {len(table)} trained networks with {len(measures)} generalization measures each
(families {", ".join(f"`{f}`" for f in measures["family"].unique())}), exported from the study `{study}` by prunability {info["package_version"]}, the Snakemake reproduction of
{KUHN}.

- Version `{version}`: the package version and the first {HASH_DIGITS} hex digits of the SHA-256 of
  the MANIFEST lines of every file but DATASHEET.md, export.json and MANIFEST. The same files
  give the same version; check with
  `grep -v -e '  DATASHEET.md$' -e '  export.json$' MANIFEST | sha256sum`.
- Check every file: `sha256sum -c MANIFEST` in this folder.
- Models: {int(table["is.converged"].sum())} converged, {int(table["is.diverged"].sum())} diverged,
  {int(table["is.finite"].sum())} with every value finite.

## Files

- `table.csv`: one row per model; its columns are described below (also in `columns.csv`).
- `measures.csv`: every measure's name, family, orientation (+1: a larger value predicts a
  larger generalization gap), equation number in Jiang et al. 2020 (Fantastic Generalization
  Measures and Where to Find Them, https://arxiv.org/abs/1912.02178) and description.
- `models/<cell>/`: `init.pt` and `final.pt` (PyTorch state_dicts of plain tensors),
  `train.json` (hyperparameters, convergence, steps, losses and accuracies, device),
  `curve.csv` (per-epoch train/test loss and accuracy).
- `measures/<cell>/<family>.json`: each family's values, orientation, settings, errors,
  timings and details (e.g. every pruning-curve evaluation).
- `split/`: the data split without its images: `train.csv` and `test.csv` (index, label,
  SHA-256 of each image), `split.json` (source, classes, shape, normalisation statistics,
  hashes of the whole tensors), `label_noise.csv` (training labels replaced by label noise).
- `config.yaml`: the study's resolved configuration, every default filled in.

## The data

{split["source"]}: {split["n_train"]} training and {split["n_test"]} test images of shape
{split["image_shape"]} ({split["dtype"]}), {len(split["classes"])} classes; label noise: fraction
{noise.get("fraction", 0.0)}, {noise.get("n_noisy", 0)} training labels replaced. The images are not
in the archive: rebuild them from the source with the configuration's `data` section
(`prunability.data.build_split`) and check them against the hashes (below).

## How the models were trained

Architecture `{config["model"]["arch"]}` (model settings:
{", ".join(f"`{k}`: `{json.dumps(v)}`" for k, v in config["model"].items())}), one model per cell of
the full-factorial grid:

{grid}

Fixed hyperparameters:

{_settings(fixed)}

Training (the configuration's `train` section): each model trains until its training
cross-entropy (eval mode, whole training split, checked after every epoch) is below
`ce_target`, or for `max_epochs` epochs (`stopping: budget`: every model for `max_epochs`).

{_settings(config["train"])}

Device: `{config["device"]}`. {where}

## The columns of table.csv

{_markdown_table(columns)}

## Loading a model

With the package at version {info["package_version"]} installed (`pip install -e .` in a checkout of
it), from the archive alone:

```python
from prunability.export import StudyArchive

archive = StudyArchive("{name}.tar.gz")  # checks every file against MANIFEST
model = archive.model("{cell}")  # final weights, eval mode; "init" for the initialisation
row = archive.table.set_index("model").loc["{cell}"]
```

`prunability.export.load_model("{name}.tar.gz", "{cell}")` does the same in one call.
To recompute a measure, rebuild the split from its source and check it against the
archive, then run the family as the workflow did:

```python
import torch
from prunability.data import build_split
from prunability.measures import compute_family
from prunability.numerics import configure_numerics
from prunability.train import DeviceData

record = archive.measures("{cell}", "{family}")
config = archive.config
configure_numerics(config["train"]["deterministic"], config["measures"]["fp32_precision"])  # as the measure jobs
torch.set_num_threads(1)
split = archive.check_split(build_split(archive.config["data"]))  # cifar10: archive=<cifar-10-python.tar.gz>
data = DeviceData.from_split(split, "cpu")
values = compute_family("{family}", model, archive.model("{cell}", "init"), data, record["settings"])["values"]
```
"""


# --------------------------------------------------------------------------- writing


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


# --------------------------------------------------------------------------- reading


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
        from .train import model_for

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
