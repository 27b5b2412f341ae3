"""Tests for prunability.data: CIFAR-10 download/archive/folder readers, the digits
split, subsampling, the split file and its summary.

Nothing here touches the network: the CIFAR-10 "downloads" are served from tiny
archives the tests build themselves, through ``file://`` URLs.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import json
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from prunability.data import (
    DataError,
    add_label_noise,
    build_split,
    channel_stats,
    describe,
    digits_split,
    download_cifar10,
    load_split,
    md5sum,
    read_cifar10_archive,
    read_cifar10_folder,
    save_split,
    subsample,
    verify_sha256sums,
)

# --------------------------------------------------------------------------- a tiny CIFAR-10

FOLDER = "cifar-10-batches-py"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# images per training batch (12 training images in all) and test images
TRAIN_SIZES = (2, 3, 2, 3, 2)
N_TRAIN = sum(TRAIN_SIZES)
TEST_IDS = (50, 51, 52, 53)  # "global" image ids of the test images (distinct from the training ids)
TEST_LABELS = [9, 0, 5, 3]
# one marker pixel in the blue channel, at (row, col) = (3, 17): checks the orientation
MARK_ROW, MARK_COL, MARK_VALUE = 3, 17, 255


def _row(k: int) -> np.ndarray:
    """The official channel-major row for image id ``k``: 1024 red values (all k),
    1024 green (all 100 + k), 1024 blue (all 200 + k, except the marker pixel),
    each plane row-major 32 x 32."""
    red = np.full(1024, k, dtype=np.uint8)
    green = np.full(1024, 100 + k, dtype=np.uint8)
    blue = np.full(1024, 200 + k, dtype=np.uint8)
    blue[MARK_ROW * 32 + MARK_COL] = MARK_VALUE
    return np.concatenate([red, green, blue])


def _image(k: int) -> np.ndarray:
    """The same image built directly as 3 x 32 x 32 (independently of any reshape)."""
    img = np.empty((3, 32, 32), dtype=np.uint8)
    img[0] = k
    img[1] = 100 + k
    img[2] = 200 + k
    img[2, MARK_ROW, MARK_COL] = MARK_VALUE
    return img


def _train_ids() -> list[int]:
    return list(range(N_TRAIN))


def _train_labels() -> list[int]:
    return [k % 10 for k in _train_ids()]


def _batches() -> dict[str, dict]:
    """name -> the pickled dict of the official release."""
    out = {}
    start = 0
    for i, n in enumerate(TRAIN_SIZES, start=1):
        ids = list(range(start, start + n))
        start += n
        out[f"data_batch_{i}"] = {
            "batch_label": f"training batch {i} of 5",
            "labels": [k % 10 for k in ids],
            "data": np.stack([_row(k) for k in ids]),
            "filenames": [f"img_{k:05d}.png" for k in ids],
        }
    out["test_batch"] = {
        "batch_label": "testing batch 1 of 1",
        "labels": list(TEST_LABELS),
        "data": np.stack([_row(k) for k in TEST_IDS]),
        "filenames": [f"img_{k:05d}.png" for k in TEST_IDS],
    }
    out["batches.meta"] = {"num_cases_per_batch": 3, "label_names": list(CLASSES), "num_vis": 3072}
    return out


def _write_folder(root: Path, batches: dict[str, dict] | None = None) -> Path:
    """Write ``root/cifar-10-batches-py/*``; returns the batches folder."""
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name, obj in (batches or _batches()).items():
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    return folder


def _fixed(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _write_archive(path: Path, folder: Path, skip: tuple[str, ...] = ()) -> Path:
    """Pack ``folder`` as the official ``cifar-10-python.tar.gz`` (with its directory
    entry); byte-for-byte reproducible (fixed times and owners)."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            tar.add(folder, arcname=FOLDER, recursive=False, filter=_fixed)
            for f in sorted(folder.iterdir()):
                if f.name not in skip:
                    tar.add(f, arcname=f"{FOLDER}/{f.name}", filter=_fixed)
    return path


def _write_sha256sums(root: Path, folder: Path) -> Path:
    """A ``SHA256SUMS`` in ``root`` (the parent), like the real subset's."""
    lines = [
        f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.relative_to(root).as_posix()}"
        for f in sorted(folder.iterdir())
    ]
    sums = root / "SHA256SUMS"
    sums.write_text("\n".join(lines) + "\n")
    return sums


@pytest.fixture
def cifar(tmp_path):
    """A tiny CIFAR-10 in the official layout: the batches folder and the archive."""
    src = tmp_path / "src"
    folder = _write_folder(src)
    archive = _write_archive(tmp_path / "cifar-10-python.tar.gz", folder)
    return {"root": src, "folder": folder, "archive": archive, "md5": md5sum(archive)}


def _expected_train() -> np.ndarray:
    return np.stack([_image(k) for k in _train_ids()])


def _expected_test() -> np.ndarray:
    return np.stack([_image(k) for k in TEST_IDS])


def _check_tiny_split(split: dict) -> None:
    """Everything read from the tiny CIFAR-10 is what was written."""
    assert split["x_train"].dtype == torch.uint8 and split["x_test"].dtype == torch.uint8
    assert split["y_train"].dtype == torch.int64 and split["y_test"].dtype == torch.int64
    assert tuple(split["x_train"].shape) == (N_TRAIN, 3, 32, 32)
    assert tuple(split["x_test"].shape) == (len(TEST_IDS), 3, 32, 32)
    assert split["y_train"].tolist() == _train_labels()
    assert split["y_test"].tolist() == TEST_LABELS
    np.testing.assert_array_equal(split["x_train"].numpy(), _expected_train())
    np.testing.assert_array_equal(split["x_test"].numpy(), _expected_test())
    # explicit spot checks of the channel order and the orientation
    x = split["x_train"]
    assert x[5, 0, 0, 0] == 5 and x[5, 1, 31, 31] == 105 and x[5, 2, 0, 0] == 205
    assert x[5, 2, MARK_ROW, MARK_COL] == MARK_VALUE
    assert x[5, 2, MARK_COL, MARK_ROW] == 205  # transposed position is not the marker
    assert split["x_test"][2, 0, 10, 10] == TEST_IDS[2]
    assert split["classes"] == CLASSES
    # statistics of the training images only (float64, sample std), in the uint8 scale
    tr = _expected_train().astype(np.float64)
    mean = tr.mean(axis=(0, 2, 3))
    std = np.array([tr[:, c].std(ddof=1) for c in range(3)])
    assert split["mean"].dtype == torch.float32 and split["std"].dtype == torch.float32
    np.testing.assert_allclose(split["mean"].numpy(), mean, rtol=1e-6)
    np.testing.assert_allclose(split["std"].numpy(), std, rtol=1e-5)
    # and they are not the statistics of train + test together
    both = np.concatenate([tr, _expected_test().astype(np.float64)])
    assert not np.allclose(split["mean"].numpy(), both.mean(axis=(0, 2, 3)), rtol=1e-3)


def _ls(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- the fixture itself


def test_tiny_archive_has_the_official_layout(cifar):
    with tarfile.open(cifar["archive"], "r:gz") as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
        raw = tar.extractfile(f"{FOLDER}/data_batch_2").read()
    assert names == sorted(
        [f"{FOLDER}/data_batch_{i}" for i in range(1, 6)] + [f"{FOLDER}/test_batch", f"{FOLDER}/batches.meta"]
    )
    batch = pickle.loads(raw, encoding="latin1")
    assert batch["data"].shape == (3, 3072) and batch["data"].dtype == np.uint8
    assert batch["labels"] == [2, 3, 4]


# --------------------------------------------------------------------------- download_cifar10


def test_download_from_file_url_and_read(cifar, tmp_path):
    dest = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    logs: list[str] = []
    got = download_cifar10(cifar["archive"].as_uri(), dest, cifar["md5"], log=logs.append)
    assert Path(got) == dest
    assert dest.read_bytes() == cifar["archive"].read_bytes()
    assert _ls(dest.parent) == [dest.name]  # no temporary file left behind
    assert any("MD5 verified" in line for line in logs)
    _check_tiny_split(read_cifar10_archive(dest))


def test_download_wrong_md5_keeps_nothing(cifar, tmp_path):
    dest = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    with pytest.raises(DataError, match="MD5") as info:
        download_cifar10(cifar["archive"].as_uri(), dest, "0" * 32, log=lambda s: None)
    assert cifar["md5"] in str(info.value)  # reports what it got
    assert not dest.exists()
    assert _ls(dest.parent) == []


def test_download_truncated_archive_is_rejected(cifar, tmp_path):
    served = tmp_path / "served" / "cifar-10-python.tar.gz"
    served.parent.mkdir()
    raw = cifar["archive"].read_bytes()
    served.write_bytes(raw[: len(raw) // 2])
    dest = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    with pytest.raises(DataError, match="MD5 mismatch"):
        download_cifar10(served.as_uri(), dest, cifar["md5"], log=lambda s: None)
    assert not dest.exists()
    assert _ls(dest.parent) == []


def test_existing_archive_with_right_md5_is_reused(cifar, tmp_path):
    logs: list[str] = []
    before = cifar["archive"].stat().st_mtime_ns
    got = download_cifar10("file:///nonexistent/cifar-10-python.tar.gz", cifar["archive"], cifar["md5"], log=logs.append)
    assert Path(got) == cifar["archive"]
    assert cifar["archive"].stat().st_mtime_ns == before
    assert md5sum(cifar["archive"]) == cifar["md5"]
    assert any("already present" in line for line in logs)
    assert not any("downloading" in line for line in logs)


def test_existing_archive_with_wrong_md5_is_replaced(cifar, tmp_path):
    dest = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    dest.parent.mkdir()
    dest.write_bytes(b"a stale, truncated download")
    download_cifar10(cifar["archive"].as_uri(), dest, cifar["md5"], log=lambda s: None)
    assert dest.read_bytes() == cifar["archive"].read_bytes()
    assert _ls(dest.parent) == [dest.name]


def test_download_unreachable_url(tmp_path):
    dest = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    url = (tmp_path / "no-such-dir" / "cifar-10-python.tar.gz").as_uri()
    with pytest.raises(DataError) as info:
        download_cifar10(url, dest, "0" * 32, log=lambda s: None)
    assert url in str(info.value)
    assert not dest.exists()
    assert _ls(dest.parent) == []


# An *existing* file with the wrong MD5 must not stay at ``archive`` when the fresh
# download then fails (unreachable URL or MD5 mismatch).
@pytest.mark.parametrize("failure", ["unreachable", "md5 mismatch"])
def test_existing_bad_archive_is_not_left_when_redownload_fails(cifar, tmp_path, failure):
    dest = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    dest.parent.mkdir()
    dest.write_bytes(b"a stale, truncated download")
    if failure == "unreachable":
        url, md5 = "file:///nonexistent/cifar-10-python.tar.gz", cifar["md5"]
    else:
        url, md5 = cifar["archive"].as_uri(), "0" * 32
    with pytest.raises(DataError):
        download_cifar10(url, dest, md5, log=lambda s: None)
    assert not dest.exists(), "a file with the wrong MD5 was left at the destination"


# --------------------------------------------------------------------------- read_cifar10_archive


def test_read_archive(cifar):
    split = read_cifar10_archive(cifar["archive"])
    _check_tiny_split(split)
    assert str(cifar["archive"]) in split["source"]


def test_read_archive_garbage(tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(b"this is not a gzip file at all\n" * 50)
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_cifar10_archive(bad)


def test_read_archive_missing_file(tmp_path):
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_cifar10_archive(tmp_path / "absent.tar.gz")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_read_archive_truncated_gzip(cifar, tmp_path, fraction):
    raw = cifar["archive"].read_bytes()
    bad = tmp_path / "truncated.tar.gz"
    bad.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_cifar10_archive(bad)


def test_read_archive_without_test_batch(cifar, tmp_path):
    bad = _write_archive(tmp_path / "no-test.tar.gz", cifar["folder"], skip=("test_batch",))
    with pytest.raises(DataError, match=f"{FOLDER}/test_batch"):
        read_cifar10_archive(bad)


def test_read_archive_with_a_garbage_batch(cifar, tmp_path):
    (cifar["folder"] / "data_batch_4").write_bytes(b"\x80\x04garbage, not a pickle")
    bad = _write_archive(tmp_path / "garbage-batch.tar.gz", cifar["folder"])
    with pytest.raises(DataError, match="data_batch_4"):
        read_cifar10_archive(bad)


def _gzip_corrupt_after(tar_bytes: bytes, keep: int) -> bytes:
    """A gzip file whose deflate stream holds ``tar_bytes[:keep]`` intact and then an
    invalid deflate block (BTYPE 11): reading past ``keep`` raises a zlib error."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = z.compress(tar_bytes[:keep]) + z.flush(zlib.Z_FULL_FLUSH) + b"\xff" * 64
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body  # gzip header, mtime 0


# A gzip stream that is corrupt (not truncated) can make tarfile raise a bare
# ``zlib.error`` (from the seek over the last member's data, or from reading a member);
# it must become a DataError("corrupt or truncated archive"). Corruption early in the
# stream is wrapped by tarfile itself as ReadError, hence the two cases.
@pytest.mark.parametrize("member", ["data_batch_1", "test_batch"])
def test_read_archive_corrupt_deflate_stream(cifar, tmp_path, member):
    tar_bytes = gzip.decompress(cifar["archive"].read_bytes())
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        info = tar.getmember(f"{FOLDER}/{member}")
    assert info.size > 200
    bad = tmp_path / "corrupt.tar.gz"
    bad.write_bytes(_gzip_corrupt_after(tar_bytes, info.offset_data + 100))
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_cifar10_archive(bad)


# --------------------------------------------------------------------------- read_cifar10_folder


def test_read_folder_batches_folder_and_parent(cifar):
    for where in (cifar["folder"], cifar["root"], str(cifar["root"])):
        split = read_cifar10_folder(where)
        _check_tiny_split(split)
        assert str(cifar["folder"]) in split["source"]


def test_read_folder_matches_archive(cifar):
    a = read_cifar10_folder(cifar["folder"])
    b = read_cifar10_archive(cifar["archive"])
    for key in ("x_train", "y_train", "x_test", "y_test", "mean", "std"):
        assert torch.equal(a[key], b[key]), key
    assert a["classes"] == b["classes"]


def test_read_folder_does_not_exist(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_cifar10_folder(tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["data_batch_3", "test_batch", "batches.meta"])
def test_read_folder_missing_batch(cifar, name):
    (cifar["folder"] / name).unlink()
    with pytest.raises(DataError, match=name):
        read_cifar10_folder(cifar["folder"])


def _rewrite(folder: Path, name: str, **changes) -> None:
    batch = _batches()[name]
    batch.update(changes)
    (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize("labels", [[2, 10, 4], [2, -1, 4]])
def test_read_folder_labels_out_of_range(cifar, labels):
    _rewrite(cifar["folder"], "data_batch_2", labels=labels)
    with pytest.raises(DataError, match=r"data_batch_2.*0\.\.9"):
        read_cifar10_folder(cifar["folder"])


def test_read_folder_wrong_number_of_labels(cifar):
    _rewrite(cifar["folder"], "test_batch", labels=[1, 2, 3])
    with pytest.raises(DataError, match="test_batch"):
        read_cifar10_folder(cifar["folder"])


@pytest.mark.parametrize(
    "bad_data",
    [
        np.zeros((3, 3071), dtype=np.uint8),  # wrong row length
        np.zeros((3, 3, 32, 32), dtype=np.uint8),  # already reshaped
        np.zeros((3, 3072), dtype=np.int64),  # wrong dtype
    ],
    ids=["3071", "4d", "int64"],
)
def test_read_folder_wrong_data_shape(cifar, bad_data):
    _rewrite(cifar["folder"], "data_batch_5", data=bad_data)
    with pytest.raises(DataError, match="data_batch_5"):
        read_cifar10_folder(cifar["folder"])


def test_read_folder_missing_keys_and_not_a_dict(cifar):
    batch = _batches()["data_batch_1"]
    del batch["labels"]
    (cifar["folder"] / "data_batch_1").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match="data_batch_1.*missing"):
        read_cifar10_folder(cifar["folder"])
    (cifar["folder"] / "data_batch_1").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataError, match="data_batch_1.*dict"):
        read_cifar10_folder(cifar["folder"])


def test_read_folder_garbage_batch(cifar):
    (cifar["folder"] / "data_batch_4").write_bytes(b"garbage, not a pickle")
    with pytest.raises(DataError, match="data_batch_4"):
        read_cifar10_folder(cifar["folder"])


def test_read_folder_bytes_keys_like_python2_pickles(cifar):
    """The official release was pickled by Python 2: its keys load as bytes."""
    batch = _batches()["data_batch_1"]
    batch = {k.encode(): v for k, v in batch.items()}
    (cifar["folder"] / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    _check_tiny_split(read_cifar10_folder(cifar["folder"]))


class _WritesAFile:
    """Unpickling this calls pathlib.Path.touch: a payload that leaves a trace."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


@pytest.mark.parametrize("name", ["data_batch_2", "test_batch", "batches.meta"])
def test_a_batch_that_would_run_code_is_refused_before_it_runs(cifar, tmp_path, name):
    trace = tmp_path / "payload-ran"
    (cifar["folder"] / name).write_bytes(pickle.dumps({"data": _WritesAFile(trace), "labels": []}))
    with pytest.raises(DataError, match=rf"{name}: not a readable CIFAR-10 python batch \(refused to load pathlib"):
        read_cifar10_folder(cifar["folder"])
    assert not trace.exists()


def test_read_folder_meta_with_too_few_label_names(cifar):
    (cifar["folder"] / "batches.meta").write_bytes(pickle.dumps({"label_names": list(CLASSES)[:9]}))
    with pytest.raises(DataError, match="batches.meta: 9 label names, CIFAR-10 has 10"):
        read_cifar10_folder(cifar["folder"])


def test_read_folder_meta_without_label_names(cifar):
    (cifar["folder"] / "batches.meta").write_bytes(pickle.dumps({"num_vis": 3072}))
    split = read_cifar10_folder(cifar["folder"])
    assert split["classes"] == [str(i) for i in range(10)]


def test_sha256sums_in_parent_that_match(cifar):
    _write_sha256sums(cifar["root"], cifar["folder"])
    assert verify_sha256sums(cifar["folder"]) is True
    _check_tiny_split(read_cifar10_folder(cifar["folder"]))
    _check_tiny_split(read_cifar10_folder(cifar["root"]))


def test_no_sha256sums_is_fine(cifar):
    assert verify_sha256sums(cifar["folder"]) is False


@pytest.mark.parametrize("via_parent", [False, True])
def test_sha256sums_tampered_digest(cifar, via_parent):
    sums = _write_sha256sums(cifar["root"], cifar["folder"])
    lines = sums.read_text().splitlines()
    i = next(j for j, line in enumerate(lines) if line.endswith("/data_batch_1"))
    digest, name = lines[i].split(maxsplit=1)
    lines[i] = f"{'0' if digest[0] != '0' else '1'}{digest[1:]}  {name}"
    sums.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="data_batch_1"):
        read_cifar10_folder(cifar["root"] if via_parent else cifar["folder"])


def test_sha256sums_detects_a_modified_file(cifar):
    _write_sha256sums(cifar["root"], cifar["folder"])
    _rewrite(cifar["folder"], "test_batch", labels=[0, 0, 0, 0])  # valid, but not what was summed
    with pytest.raises(DataError, match="test_batch"):
        read_cifar10_folder(cifar["folder"])


def test_sha256sums_in_the_folder_itself(cifar):
    """A SHA256SUMS next to the batches, with bare names (``sha256sum *`` run inside)."""
    sums = cifar["folder"] / "SHA256SUMS"
    sums.write_text(
        "".join(
            f"{hashlib.sha256(f.read_bytes()).hexdigest()} *{f.name}\n"
            for f in sorted(cifar["folder"].iterdir())
            if f.name != "SHA256SUMS"
        )
    )
    read_cifar10_folder(cifar["folder"])
    lines = sums.read_text().splitlines()
    lines[0] = "f" * 64 + " *" + lines[0].split("*", 1)[1]
    sums.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="SHA-256"):
        read_cifar10_folder(cifar["folder"])


# --------------------------------------------------------------------------- build_split


def _cifar_cfg(local_dir, **over):
    cfg = {
        "source": "cifar10",
        "local_dir": local_dir,
        "split_seed": 0,
        "max_train": None,
        "max_test": None,
        "test_fraction": 0.2,
    }
    cfg.update(over)
    return cfg


def test_build_split_cifar10_local_dir(cifar):
    _check_tiny_split(build_split(_cifar_cfg(str(cifar["folder"]))))
    _check_tiny_split(build_split(_cifar_cfg(str(cifar["root"]))))


def test_build_split_cifar10_archive(cifar):
    split = build_split(_cifar_cfg(None), archive=cifar["archive"])
    _check_tiny_split(split)
    assert str(cifar["archive"]) in split["source"]


def test_build_split_local_dir_wins_over_archive(cifar, tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not an archive")
    _check_tiny_split(build_split(_cifar_cfg(str(cifar["folder"])), archive=garbage))


def test_build_split_cifar10_neither(tmp_path):
    with pytest.raises(DataError, match="local_dir"):
        build_split(_cifar_cfg(None))
    with pytest.raises(DataError, match="local_dir"):
        build_split(_cifar_cfg(""))


def test_build_split_cifar10_caps(cifar):
    split = build_split(_cifar_cfg(str(cifar["folder"]), max_train=5, max_test=2))
    assert len(split["y_train"]) == 5 and len(split["x_train"]) == 5
    assert len(split["y_test"]) == 2 and len(split["x_test"]) == 2
    # the kept images are real ones, with their own labels
    for x, y in zip(split["x_train"], split["y_train"]):
        k = int(x[0, 0, 0])
        assert k in _train_ids() and int(y) == k % 10
    mean, std = channel_stats(split["x_train"])
    assert torch.equal(split["mean"], mean) and torch.equal(split["std"], std)


def test_build_split_unknown_source():
    with pytest.raises(DataError, match="mnist"):
        build_split({"source": "mnist", "split_seed": 0, "test_fraction": 0.2})


def test_build_split_digits():
    cfg = {"source": "digits", "split_seed": 3, "test_fraction": 0.25, "max_train": None, "max_test": None}
    split = build_split(cfg)
    ref = digits_split(0.25, 3)
    for key in ("x_train", "y_train", "x_test", "y_test", "mean", "std"):
        assert torch.equal(split[key], ref[key]), key
    capped = build_split({**cfg, "max_train": 100, "max_test": 30})
    assert len(capped["y_train"]) == 100 and len(capped["y_test"]) == 30


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits_ref():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


def _multiset(x: torch.Tensor, y: torch.Tensor) -> collections.Counter:
    xs = x.numpy()
    return collections.Counter((xs[i].tobytes(), int(y[i])) for i in range(len(y)))


def test_digits_sizes_and_values(digits_ref):
    split = digits_split(0.2, 0)
    n_test = int(np.ceil(1797 * 0.2))
    assert len(split["y_train"]) + len(split["y_test"]) == 1797
    assert len(split["y_test"]) == n_test and len(split["x_test"]) == n_test
    assert len(split["x_train"]) == 1797 - n_test
    assert tuple(split["x_train"].shape[1:]) == (1, 8, 8) and tuple(split["x_test"].shape[1:]) == (1, 8, 8)
    assert split["x_train"].dtype == torch.uint8 and split["x_test"].dtype == torch.uint8
    assert split["y_train"].dtype == torch.int64
    assert int(split["x_train"].max()) == 16 and int(split["x_train"].min()) == 0
    assert int(split["x_test"].max()) <= 16
    assert split["classes"] == [str(i) for i in range(10)]
    assert set(split["y_train"].tolist()) == set(range(10))
    # the pixel values are the data set's (not rescaled): compare the whole multiset
    images, target = digits_ref
    full = torch.from_numpy(images.astype(np.uint8)[:, None])
    assert np.array_equal(images, images.astype(np.uint8))  # integer-valued
    assert _multiset(split["x_train"], split["y_train"]) + _multiset(split["x_test"], split["y_test"]) == _multiset(
        full, torch.from_numpy(target)
    )


@pytest.mark.parametrize("fraction", [0.2, 0.3])
def test_digits_stratified(digits_ref, fraction):
    split = digits_split(fraction, 1)
    _, target = digits_ref
    total = np.bincount(target, minlength=10)
    test = np.bincount(split["y_test"].numpy(), minlength=10)
    share = test / total
    # each class's share is within one image of the requested fraction
    assert np.all(np.abs(share - fraction) <= 1.0 / total + 1e-9), share


def test_digits_deterministic_and_seeded():
    a, b, c = digits_split(0.2, 7), digits_split(0.2, 7), digits_split(0.2, 8)
    for key in ("x_train", "y_train", "x_test", "y_test", "mean", "std"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["x_test"], c["x_test"])
    assert _multiset(a["x_test"], a["y_test"]) != _multiset(c["x_test"], c["y_test"])


def test_digits_train_and_test_disjoint(digits_ref):
    split = digits_split(0.2, 0)
    images, target = digits_ref
    full = _multiset(torch.from_numpy(images.astype(np.uint8)[:, None]), torch.from_numpy(target))
    train = _multiset(split["x_train"], split["y_train"])
    test = _multiset(split["x_test"], split["y_test"])
    assert sum(train.values()) + sum(test.values()) == sum(full.values()) == 1797
    # no (image, label) is used more often across the two splits than it occurs in the data
    for key in set(train) | set(test):
        assert train[key] + test[key] == full[key]


def test_digits_statistics_of_training_images():
    split = digits_split(0.2, 0)
    tr = split["x_train"].numpy().astype(np.float64)
    assert split["mean"].shape == (1,) and split["std"].shape == (1,)
    np.testing.assert_allclose(split["mean"].numpy(), [tr.mean()], rtol=1e-6)
    np.testing.assert_allclose(split["std"].numpy(), [tr.std(ddof=1)], rtol=1e-5)
    te = split["x_test"].numpy().astype(np.float64)
    assert not np.isclose(split["mean"].item(), te.mean(), rtol=1e-6)


# --------------------------------------------------------------------------- channel_stats, subsample


def test_channel_stats_independent():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (7, 3, 5, 4), generator=g, dtype=torch.uint8)
    mean, std = channel_stats(x)
    xn = x.numpy().astype(np.float64)
    np.testing.assert_allclose(mean.numpy(), [xn[:, c].mean() for c in range(3)], rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), [xn[:, c].std(ddof=1) for c in range(3)], rtol=1e-5)
    # a constant channel does not give a zero std (later used as a divisor)
    mean, std = channel_stats(torch.full((4, 2, 3, 3), 9, dtype=torch.uint8))
    assert torch.equal(mean, torch.tensor([9.0, 9.0])) and bool((std > 0).all())


def _toy_split(n_train=40, n_test=20) -> dict:
    # image i is constant, equal to i (train) / 100 + i (test): identifies each image
    x_tr = torch.arange(n_train, dtype=torch.uint8)[:, None, None, None].expand(n_train, 2, 3, 3).clone()
    x_tr[:, 1] *= 2
    x_te = (100 + torch.arange(n_test, dtype=torch.uint8))[:, None, None, None].expand(n_test, 2, 3, 3).clone()
    y_tr = torch.arange(n_train) % 10
    y_te = torch.arange(n_test) % 10
    mean, std = channel_stats(x_tr)
    return {
        "x_train": x_tr,
        "y_train": y_tr,
        "x_test": x_te,
        "y_test": y_te,
        "mean": mean,
        "std": std,
        "classes": [str(i) for i in range(10)],
        "source": "toy",
    }


def test_subsample_sizes_and_membership():
    split = _toy_split()
    out = subsample(split, 15, 6, seed=0)
    assert len(out["x_train"]) == len(out["y_train"]) == 15
    assert len(out["x_test"]) == len(out["y_test"]) == 6
    ids = out["x_train"][:, 0, 0, 0].long()
    assert len(set(ids.tolist())) == 15  # no repeats
    assert ids.tolist() == sorted(ids.tolist())  # original order kept
    assert torch.equal(out["y_train"], ids % 10)  # labels stay with their images
    assert torch.equal(out["x_train"][:, 1, 0, 0].long(), 2 * ids)
    tids = out["x_test"][:, 0, 0, 0].long() - 100
    assert len(set(tids.tolist())) == 6 and torch.equal(out["y_test"], tids % 10)
    assert out["classes"] == split["classes"] and out["source"] == "toy"
    # the input split is not modified
    assert len(split["y_train"]) == 40 and len(split["y_test"]) == 20


def test_subsample_statistics_recomputed():
    split = _toy_split()
    out = subsample(split, 5, None, seed=1)
    kept = out["x_train"].numpy().astype(np.float64)
    np.testing.assert_allclose(out["mean"].numpy(), kept.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(out["std"].numpy(), [kept[:, c].std(ddof=1) for c in range(2)], rtol=1e-5)
    assert not torch.allclose(out["mean"], split["mean"])
    assert torch.equal(out["x_test"], split["x_test"])  # None keeps all


def test_subsample_seeded():
    split = _toy_split()
    a, b, c = subsample(split, 10, 5, 3), subsample(split, 10, 5, 3), subsample(split, 10, 5, 4)
    assert torch.equal(a["x_train"], b["x_train"]) and torch.equal(a["x_test"], b["x_test"])
    assert not torch.equal(a["x_train"], c["x_train"])


@pytest.mark.parametrize("caps", [(None, None), (40, 20), (1000, 1000)])
def test_subsample_no_cap_keeps_everything(caps):
    split = _toy_split()
    out = subsample(split, *caps, seed=0)
    for key in ("x_train", "y_train", "x_test", "y_test", "mean", "std"):
        assert torch.equal(out[key], split[key]), key


# --------------------------------------------------------------------------- save/load, describe


def test_save_load_round_trip(cifar, tmp_path):
    split = read_cifar10_folder(cifar["folder"])
    path = tmp_path / "out" / "split.pt"
    save_split(path, split)
    assert _ls(path.parent) == ["split.pt"]  # written atomically, no leftovers
    loaded = load_split(path)
    again = torch.load(path, weights_only=True)  # loadable without unpickling code
    for got in (loaded, again):
        assert set(got) == set(split)
        for key in ("x_train", "y_train", "x_test", "y_test", "mean", "std"):
            assert got[key].dtype == split[key].dtype and torch.equal(got[key], split[key]), key
        assert got["classes"] == CLASSES and got["source"] == split["source"]


def test_save_load_digits_round_trip(tmp_path):
    split = digits_split(0.2, 0)
    save_split(tmp_path / "d.pt", split)
    loaded = load_split(tmp_path / "d.pt")
    assert torch.equal(loaded["x_train"], split["x_train"]) and torch.equal(loaded["y_test"], split["y_test"])
    assert loaded["classes"] == split["classes"]


def test_describe_counts(cifar):
    split = read_cifar10_folder(cifar["folder"])
    d = describe(split)
    assert d["n_train"] == N_TRAIN and d["n_test"] == len(TEST_IDS)
    assert d["image_shape"] == [3, 32, 32]
    assert d["classes"] == CLASSES
    assert d["train_class_counts"] == [sum(1 for y in _train_labels() if y == c) for c in range(10)]
    assert d["test_class_counts"] == [TEST_LABELS.count(c) for c in range(10)]
    assert sum(d["test_class_counts"]) == len(TEST_IDS)
    assert d["mean"] == pytest.approx(split["mean"].tolist()) and len(d["std"]) == 3
    json.dumps(d)  # JSON-able


def test_describe_digits():
    split = digits_split(0.2, 0)
    d = describe(split)
    assert d["image_shape"] == [1, 8, 8]
    assert d["n_train"] + d["n_test"] == 1797
    assert d["train_class_counts"] == np.bincount(split["y_train"].numpy(), minlength=10).tolist()
    assert sum(d["train_class_counts"]) == d["n_train"]


# --------------------------------------------------------------------------- the real subset

REAL_SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-subset" / FOLDER


@pytest.fixture(scope="module")
def real_subset():
    if not REAL_SUBSET.is_dir():
        pytest.skip(f"the real CIFAR-10 subset is not present at {REAL_SUBSET}")
    return read_cifar10_folder(REAL_SUBSET)


def test_real_subset_sha256sums_checked():
    if not REAL_SUBSET.is_dir():
        pytest.skip(f"the real CIFAR-10 subset is not present at {REAL_SUBSET}")
    assert (REAL_SUBSET.parent / "SHA256SUMS").is_file()
    assert verify_sha256sums(REAL_SUBSET) is True


def test_real_subset(real_subset):
    s = real_subset
    assert tuple(s["x_train"].shape) == (5085, 3, 32, 32)
    assert tuple(s["x_test"].shape) == (1017, 3, 32, 32)
    assert s["x_train"].dtype == torch.uint8
    assert len(s["y_train"]) == 5085 and len(s["y_test"]) == 1017
    assert int(s["y_train"].min()) == 0 and int(s["y_train"].max()) == 9
    assert set(s["y_test"].tolist()) == set(range(10))
    assert s["classes"] == CLASSES
    # close to uniform classes (83..120 per class per batch)
    counts = torch.bincount(s["y_train"], minlength=10)
    assert int(counts.min()) >= 5 * 83 and int(counts.max()) <= 5 * 120
    # CIFAR-10's well-known channel means (~125.3, 123.0, 113.9): red > green > blue
    # holds when the channels are read in the right order
    assert s["mean"].tolist() == pytest.approx([125.3, 123.0, 113.9], abs=4.0)
    assert s["mean"][0] > s["mean"][2] + 5


# --------------------------------------------------------------------------- label noise


@pytest.mark.parametrize("fraction, n_noisy", [(0.0, 0), (0.15, 189), (0.2, 251), (0.5, 628)])
def test_label_noise_exact_count_never_the_true_class(fraction, n_noisy):
    split = digits_split(0.3, 0)  # 1257 training images: round(0.15 * 1257) = 189
    noisy = add_label_noise(split, fraction, seed=3)
    changed = (noisy["y_train"] != split["y_train"]).nonzero().flatten()
    record = noisy["label_noise"]
    assert len(changed) == n_noisy == len(record["indices"])  # exact in count, and every one really changed
    assert torch.equal(changed, record["indices"])
    assert torch.equal(record["original"], split["y_train"][changed])
    assert torch.equal(record["new"], noisy["y_train"][changed])
    assert (record["new"] != record["original"]).all()
    assert torch.equal(noisy["y_test"], split["y_test"]) and torch.equal(noisy["x_train"], split["x_train"])
    assert torch.equal(split["y_train"], digits_split(0.3, 0)["y_train"])  # the input split is not modified


def test_label_noise_is_seeded():
    split = digits_split(0.3, 0)
    a, b, c = (add_label_noise(split, 0.2, seed) for seed in (1, 1, 2))
    assert torch.equal(a["y_train"], b["y_train"])
    assert not torch.equal(a["y_train"], c["y_train"])


def test_label_noise_new_labels_are_uniform_over_the_other_classes():
    # 2000 noisy labels of true class 0 over 10 classes: each of classes 1..9 ~ 222 times.
    # A chi-square test at 9 - 1 degrees of freedom; the statistic is far below the 0.1%
    # critical value 26.1 for a uniform draw (a seeded draw, so the test is deterministic).
    split = {"y_train": torch.zeros(2000, dtype=torch.long), "classes": list(range(10))}
    new = add_label_noise(split, 0.999, seed=0)["label_noise"]["new"]
    counts = torch.bincount(new, minlength=10).double()
    assert counts[0] == 0
    expected = len(new) / 9
    chi2 = float(((counts[1:] - expected) ** 2 / expected).sum())
    assert chi2 < 26.1


def test_label_noise_bad_fraction_or_one_class():
    with pytest.raises(DataError, match="label_noise"):
        add_label_noise(digits_split(0.3, 0), 1.0, 0)
    one_class = {"y_train": torch.zeros(10, dtype=torch.long), "classes": ["only"]}
    with pytest.raises(DataError, match="at least two classes"):
        add_label_noise(one_class, 0.5, 0)
    assert len(add_label_noise(one_class, 0.0, 0)["label_noise"]["indices"]) == 0


def test_build_split_applies_and_records_label_noise(tmp_path):
    split = build_split({"source": "digits", "test_fraction": 0.3, "split_seed": 0, "label_noise": 0.1, "label_noise_seed": 5})
    assert len(split["label_noise"]["indices"]) == round(0.1 * 1257) == 126
    save_split(tmp_path / "split.pt", split)
    loaded = load_split(tmp_path / "split.pt")  # weights_only loading keeps the record
    assert torch.equal(loaded["label_noise"]["indices"], split["label_noise"]["indices"])
    assert describe(split)["label_noise"] == {"fraction": 0.1, "seed": 5, "n_noisy": 126}
