"""The export target: a finished study as a versioned archive, read back alone.

- a tiny study (two models, two cheap families) is run to its table, then
  ``snakemake export``: the archive's files, MANIFEST, version and datasheet;
- the archive is moved away and the results folder deleted: a model loads from the
  archive alone and its norms measures are recomputed bit for bit as in the table;
- an unfinished study stops the export before any job, naming what is missing;
- unsafe or altered archives are refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import copy_workflow, load_preset, snakemake, write_config
from prunability import __version__
from prunability.data import build_split
from prunability.export import (
    ArchiveError,
    ExportError,
    StudyArchive,
    StudyFiles,
    export_study,
    extract,
    load_model,
    study_inputs,
)
from prunability.measures import compute_family
from prunability.numerics import configure_numerics
from prunability.train import DeviceData

pytestmark = pytest.mark.workflow

# The smoke preset cut to two small models (batchnorm on and off) and two cheap families.
TINY = load_preset("smoke")
TINY["study"] = "tiny-export"
TINY["grid"] = {"depth": [1], "batchnorm": [True, False]}
TINY["model"]["base_width"] = 8
TINY["train"].update(ce_target=1.2, max_epochs=40)
TINY["measures"]["families"] = ["norms", "optimization"]
CELLS = ["depth~1/batchnorm~True", "depth~1/batchnorm~False"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("export"))
    write_config(root / "tiny.yaml", TINY)
    snakemake(root, "collect_table", "--cores", "2", "--configfile", "tiny.yaml")
    snakemake(root, "export", "--cores", "1", "--configfile", "tiny.yaml")
    results = root / "results" / "tiny-export"
    archives = list((results / "export").glob("*.tar.gz"))
    assert len(archives) == 1
    return root, results, archives[0]


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_archive_holds_the_study_with_a_manifest_and_a_content_version(exported):
    _, results, archive = exported
    files = members(archive)
    top = archive.name.removesuffix(".tar.gz")
    version = top.removeprefix("tiny-export-")
    assert re.fullmatch(re.escape(__version__) + r"\+[0-9a-f]{12}", version)
    assert all(name.startswith(f"{top}/") for name in files)
    files = {name.removeprefix(f"{top}/"): data for name, data in files.items()}
    expected = {"DATASHEET.md", "MANIFEST", "export.json", "config.yaml", "table.csv", "measures.csv", "columns.csv",
                "split/split.json", "split/train.csv", "split/test.csv", "split/label_noise.csv", "platform.json"}
    for cell in CELLS:
        expected |= {f"models/{cell}/{name}" for name in ("init.pt", "final.pt", "train.json", "curve.csv")}
        expected |= {f"measures/{cell}/{family}.json" for family in ("norms", "optimization")}
    assert set(files) == expected

    # MANIFEST: sha256sum's format, every other file once, each hash right
    lines = files["MANIFEST"].decode().splitlines()
    manifest = dict(reversed(line.split("  ", 1)) for line in lines)
    assert set(manifest) == expected - {"MANIFEST"}
    assert all(hashlib.sha256(files[path]).hexdigest() == digest for path, digest in manifest.items())
    # the version's hash: the MANIFEST lines of every file that does not name the version
    payload = "".join(line + "\n" for line in lines if not line.endswith(("  DATASHEET.md", "  export.json")))
    assert version.endswith("+" + hashlib.sha256(payload.encode()).hexdigest()[:12])

    # copied files are the study's own bytes
    assert files["split/label_noise.csv"] == (results / "data" / "label_noise.csv").read_bytes()
    for path in ["table.csv", *(p for p in expected if p.startswith(("models/", "measures/")))]:
        assert files[path] == (results / path).read_bytes(), path
    info = json.loads(files["export.json"])
    assert info["version"] == version and info["cells"] == CELLS and info["families"] == ["norms", "optimization"]
    config = yaml.safe_load(files["config.yaml"])
    assert config["grid"] == TINY["grid"] and config["train"]["augment_pad"] is not None  # defaults filled in

    # the split: hashes of every image, no image
    split = torch.load(results / "data" / "split.pt", weights_only=True)
    for part in ("train", "test"):
        frame = pd.read_csv(io.BytesIO(files[f"split/{part}.csv"]))
        assert list(frame["index"]) == list(range(len(split[f"y_{part}"])))
        assert list(frame["label"]) == split[f"y_{part}"].tolist()
        assert frame["sha256"].iloc[3] == hashlib.sha256(split[f"x_{part}"][3].numpy().tobytes()).hexdigest()
    assert not any(path.startswith("split/") and path.endswith(".pt") for path in files)

    # every table column described, measures from the registry
    table = pd.read_csv(io.BytesIO(files["table.csv"]))
    columns = pd.read_csv(io.BytesIO(files["columns.csv"]))
    assert list(columns["column"]) == list(table.columns)
    assert not columns["description"].str.contains("not described").any()
    measures = pd.read_csv(io.BytesIO(files["measures.csv"]), dtype={"equation": str})
    assert sorted(measures["name"]) == sorted(c.removeprefix("measure.") for c in table if c.startswith("measure."))
    assert measures.set_index("name").loc["log_prod_of_fro", "equation"] == "37"
    sheet = files["DATASHEET.md"].decode()
    for text in (version, "| measure.path_norm |", "`ce_target`: `1.2`", "StudyArchive(", CELLS[0], "sha256sum -c MANIFEST"):
        assert text in sheet, text


def test_export_is_reproducible(exported, tmp_path):
    _, results, archive = exported
    config = yaml.safe_load(members(archive)[f"{archive.name.removesuffix('.tar.gz')}/config.yaml"])
    again = export_study(tmp_path, "tiny-export", config, CELLS, ["norms", "optimization"], StudyFiles.of(results),
                         log=lambda _: None)
    assert again.name == archive.name and again.read_bytes() == archive.read_bytes()


def test_a_recorded_platform_is_exported(exported, tmp_path):
    _, results, archive = exported
    with StudyArchive(archive) as opened:
        config = opened.config
    (tmp_path / "platform.json").write_text(json.dumps({"hostname": "node-7", "torch": "2.13.0", "cpus": {"n": 2}}))
    files = dataclasses.replace(StudyFiles.of(results), platform=tmp_path / "platform.json")
    with_platform = export_study(tmp_path / "out", "tiny-export", config, CELLS, ["norms", "optimization"], files,
                                 log=lambda _: None)
    assert with_platform.name != archive.name  # another content, another version
    with StudyArchive(with_platform) as opened:
        assert opened.json("platform.json")["hostname"] == "node-7" and opened.info["platform"]
        sheet = opened.read("DATASHEET.md").decode()
    assert "`platform.json` records" in sheet and '- `hostname`: `"node-7"`' in sheet


def test_a_model_from_the_archive_alone_gives_the_tables_measures(exported, tmp_path, monkeypatch):
    _, results, archive = exported
    moved = tmp_path / archive.name
    shutil.copy2(archive, moved)
    aside = results.with_name("aside")  # no results folder while the model is read back
    results.rename(aside)
    try:
        read_back_alone(moved)
        run_the_datasheets_code(moved, monkeypatch)
    finally:
        aside.rename(results)


def run_the_datasheets_code(moved: Path, monkeypatch) -> None:
    """The DATASHEET's Python, as a reader would paste it next to the archive."""
    with StudyArchive(moved) as opened:
        sheet = opened.read("DATASHEET.md").decode()
        expected = opened.measures(CELLS[0], "norms")["values"]
    code = "\n".join(re.findall(r"```python\n(.*?)```", sheet, flags=re.DOTALL))
    monkeypatch.chdir(moved.parent)
    namespace, threads = {}, torch.get_num_threads()
    try:
        exec(compile(code, "DATASHEET.md", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    assert namespace["row"]["measure.path_norm"] == expected["path_norm"]
    assert namespace["values"] == expected


def read_back_alone(moved: Path) -> None:
    cell = CELLS[0]
    model = load_model(moved, cell)
    assert not model.training and sum(p.numel() for p in model.parameters()) > 0
    with StudyArchive(moved) as opened:
        assert opened.version == moved.name.removesuffix(".tar.gz").removeprefix("tiny-export-")
        record = opened.measures(cell, "norms")
        config = opened.config
        split = opened.check_split(build_split(config["data"]))  # digits: rebuilt offline, checked by hash
        init_model = opened.model(cell, "init")
        row = opened.table.set_index("model").loc[cell]
        summary = opened.summary(cell)
        # a split that is not the archive's is refused
        with pytest.raises(ArchiveError, match="train labels differ"):
            opened.check_split(dict(split, y_train=split["y_train"].flip(0)))
    data = DeviceData.from_split(split, "cpu")
    assert model.state_dict().keys() == init_model.state_dict().keys()

    threads = torch.get_num_threads()
    try:
        configure_numerics(config["train"]["deterministic"], config["measures"]["fp32_precision"])
        torch.set_num_threads(1)  # as the measure job
        values = compute_family("norms", model, init_model, data, record["settings"], log=lambda _: None,
                                summary=summary)["values"]
    finally:
        torch.set_num_threads(threads)
    assert values.keys() == record["values"].keys()
    for name, value in values.items():  # bit for bit, as the table holds them
        assert value == record["values"][name] == row[f"measure.{name}"], name


def test_extract_and_read_the_folder(exported, tmp_path):
    _, _, archive = exported
    top = extract(archive, tmp_path)
    assert top == tmp_path / archive.name.removesuffix(".tar.gz")
    with StudyArchive(top) as folder, StudyArchive(archive) as packed:
        assert folder.cells == CELLS and folder.version == packed.version
        unpacked, original = folder.state_dict(CELLS[1], "init"), packed.state_dict(CELLS[1], "init")
        assert unpacked.keys() == original.keys() and all(torch.equal(unpacked[k], original[k]) for k in original)
    (top / "table.csv").write_text("altered\n")
    with pytest.raises(ArchiveError, match=r"changed \['table.csv'\]"):
        StudyArchive(top)


def test_exporting_an_unfinished_study_stops_before_any_job(tmp_path):
    root = copy_workflow(tmp_path / "wf")
    write_config(root / "tiny.yaml", TINY)
    result = snakemake(root, "export", "--cores", "1", "--configfile", "tiny.yaml", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "cannot export the study 'tiny-export': it is not finished" in output
    assert "results/tiny-export/table.csv" in output and "Run the study first" in output
    assert not (root / "results").exists()  # nothing ran, not even prepare_data

    # a study with one file missing names that file
    results = root / "results" / "tiny-export"
    files = StudyFiles.of(results)
    paths = [files.table, files.split, files.label_noise]
    for cell in CELLS:
        paths += [files.models / cell / n for n in ("init.pt", "final.pt", "train.json", "curve.csv")]
        paths += [files.measures / cell / f"{f}.json" for f in ("norms", "optimization")]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    assert set(study_inputs(results, "tiny-export", CELLS, ["norms", "optimization"])) == {
        "table", "split", "label_noise", "models", "measures"}
    files.platform.write_text("{}")
    assert study_inputs(results, "tiny-export", CELLS, ["norms", "optimization"])["platform"] == str(files.platform)
    (files.measures / CELLS[1] / "norms.json").unlink()
    with pytest.raises(ExportError, match=r"1 of its files are missing:\n  .*batchnorm~False/norms.json"):
        study_inputs(results, "tiny-export", CELLS, ["norms", "optimization"])


def tar_with(tmp_path: Path, name: str, add) -> Path:
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as tar:
        add(tar)
    return path


def regular(tar: tarfile.TarFile, name: str, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("name, match", [("../evil.txt", "unsafe member"), ("/etc/evil.txt", "unsafe member"),
                                         ("study-0.1.0+abc/../../evil.txt", "unsafe member")])
def test_unsafe_member_paths_are_refused(tmp_path, name, match):
    archive = tar_with(tmp_path, "bad.tar.gz", lambda tar: regular(tar, name))
    with pytest.raises(ArchiveError, match=match):
        StudyArchive(archive)
    with pytest.raises(ArchiveError):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def test_links_and_archives_without_a_manifest_are_refused(tmp_path):
    def link(tar):
        info = tarfile.TarInfo("study-0.1.0+abc/MANIFEST")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)

    with pytest.raises(ArchiveError, match="not a regular file"):
        StudyArchive(tar_with(tmp_path, "link.tar.gz", link))
    with pytest.raises(ArchiveError, match="no MANIFEST"):
        StudyArchive(tar_with(tmp_path, "plain.tar.gz", lambda tar: regular(tar, "study-0.1.0+abc/table.csv")))
    (tmp_path / "garbage.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(ArchiveError, match="cannot read the archive"):
        StudyArchive(tmp_path / "garbage.tar.gz")
