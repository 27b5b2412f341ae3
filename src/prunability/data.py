"""Data sets and the split file every later job reads.

A split file (``torch.save`` of plain tensors, loaded with ``weights_only=True``) holds

- ``x_train``, ``x_test``: uint8 images, N x C x H x W;
- ``y_train``, ``y_test``: int64 labels;
- ``mean``, ``std``: float32 per-channel statistics of the *training* images (in the
  uint8 value scale), used to normalise both splits;
- ``classes``: class names; ``source``: where the data came from.

Sources:

- ``digits``: scikit-learn's 8x8 digits (1797 images, pixel values 0..16, shipped
  with scikit-learn, so it works offline); a stratified split seeded by
  ``split_seed`` with ``test_fraction`` of the images held out.
- ``cifar10``: the official python-batches release, either downloaded (the archive's
  MD5 is checked against the published one) or read from a local folder in the
  same format (no MD5: a local copy may be a subset; a ``SHA256SUMS`` file in the
  folder is checked when present).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import tarfile
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from .config import (
    CIFAR10_FILES,
    CIFAR10_FOLDER,
    CIFAR10_META_FILE,
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    cifar10_batch_folder,
)
from .io import atomic_path, load_torch, save_torch

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"


class DataError(ValueError):
    """A data set that is missing, corrupt or not in the expected format."""


# --------------------------------------------------------------------------- digits


def digits_split(test_fraction: float, split_seed: int) -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)[:, None, :, :]  # N x 1 x 8 x 8, values 0..16
    labels = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=test_fraction, random_state=split_seed, stratify=labels
    )
    return _split(x_tr, y_tr, x_te, y_te, [str(c) for c in digits.target_names], "sklearn digits")


# --------------------------------------------------------------------------- CIFAR-10


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download_cifar10(url: str, archive: str | Path, md5: str, log: Callable[[str], None] = print) -> Path:
    """Download the CIFAR-10 archive to ``archive`` and verify its MD5.

    An existing file with the right checksum is kept; a file with a wrong checksum
    (corrupt or truncated download) is never left at ``archive``.
    """
    archive = Path(archive)
    md5 = md5.lower()
    if archive.exists():
        if md5sum(archive) == md5:
            log(f"{archive} already present, MD5 verified")
            return archive
        log(f"{archive} has the wrong MD5; removing it and downloading again")
        archive.unlink()
    log(f"downloading {url}")
    with atomic_path(archive) as tmp:
        try:
            with urllib.request.urlopen(url) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, length=1 << 20)
        except (OSError, ValueError) as exc:  # ValueError: a malformed URL
            raise DataError(f"could not download CIFAR-10 from {url}: {exc}") from exc
        got = md5sum(tmp)
        if got != md5:
            raise DataError(
                f"MD5 mismatch for the archive downloaded from {url}: expected {md5}, got {got} "
                "(corrupt or truncated download); nothing was kept"
            )
    log(f"saved {archive} ({archive.stat().st_size} bytes), MD5 verified")
    return archive


# Everything a CIFAR-10 python batch refers to: numpy arrays (module path numpy.core
# before NumPy 2, numpy._core after), and the bytes of a protocol-2 pickle written by
# Python 3 (_codecs.encode, a pure function; torch's weights_only loader allows it too).
# Any other global in a batch file is refused before it is called, so a crafted file
# cannot run code.
BATCH_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in BATCH_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: not part of a CIFAR-10 batch")
        return super().find_class(module, name)


def _unpickle(raw: bytes, name: str) -> dict:
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # pickle raises many types on garbage
        raise DataError(f"{name}: not a readable CIFAR-10 python batch ({exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{name}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch_arrays(batch: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    if "data" not in batch or "labels" not in batch:
        raise DataError(f"{name}: missing 'data' or 'labels' (keys: {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{name}: 'data' must be a uint8 N x 3072 array, got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise DataError(f"{name}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{name}: labels must lie in 0..9, got {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar10_from_files(read: Callable[[str], bytes], where: str) -> dict:
    """Assemble the split from a reader of the official batch files."""
    parts = [_batch_arrays(_unpickle(read(f), f"{where}/{f}"), f"{where}/{f}") for f in CIFAR10_TRAIN_FILES]
    x_te, y_te = _batch_arrays(_unpickle(read(CIFAR10_TEST_FILE), f"{where}/{CIFAR10_TEST_FILE}"), f"{where}/{CIFAR10_TEST_FILE}")
    meta = _unpickle(read(CIFAR10_META_FILE), f"{where}/{CIFAR10_META_FILE}")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta.get("label_names", range(10))]
    if len(classes) != 10:
        raise DataError(f"{where}/{CIFAR10_META_FILE}: {len(classes)} label names, CIFAR-10 has 10")
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return _split(x_tr, y_tr, x_te, y_te, classes, f"CIFAR-10 ({where})")


def read_cifar10_archive(archive: str | Path) -> dict:
    """Read the batches straight out of the official ``.tar.gz`` (nothing is extracted)."""
    archive = Path(archive)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> bytes:
                member = members.get(f"{CIFAR10_FOLDER}/{name}")
                if member is None:
                    raise DataError(f"{archive}: no {CIFAR10_FOLDER}/{name} inside the archive")
                return tar.extractfile(member).read()

            return _cifar10_from_files(read, str(archive))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{archive}: corrupt or truncated archive ({exc})") from exc


def verify_sha256sums(folder: Path) -> bool:
    """Check the files named in ``folder/SHA256SUMS``; False when there is none."""
    sums = folder / "SHA256SUMS"
    if not sums.exists():
        sums = folder.parent / "SHA256SUMS"
        if not sums.exists():
            return False
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            raise DataError(f"{sums}: malformed line {line!r} (expected '<sha256>  <file>')")
        digest, name = fields
        path = sums.parent / name.lstrip("*")
        if not path.exists():
            continue  # SHA256SUMS may list files outside this data set
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        if got != digest:
            raise DataError(f"{path}: SHA-256 {got} does not match {sums}")
    return True


def read_cifar10_folder(folder: str | Path) -> dict:
    """Read a local folder in the official python-batches format (no MD5 check)."""
    folder = cifar10_batch_folder(folder)
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 folder {folder} does not exist")
    missing = [f for f in CIFAR10_FILES if not (folder / f).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 folder {folder} lacks {', '.join(missing)}")
    verify_sha256sums(folder)
    return _cifar10_from_files(lambda name: (folder / name).read_bytes(), str(folder))


# --------------------------------------------------------------------------- the split


def _split(x_tr, y_tr, x_te, y_te, classes: Iterable[str], source: str) -> dict:
    x_tr = torch.from_numpy(np.ascontiguousarray(x_tr))
    x_te = torch.from_numpy(np.ascontiguousarray(x_te))
    mean, std = channel_stats(x_tr)
    return {
        "x_train": x_tr,
        "y_train": torch.from_numpy(np.asarray(y_tr, dtype=np.int64)),
        "x_test": x_te,
        "y_test": torch.from_numpy(np.asarray(y_te, dtype=np.int64)),
        "mean": mean,
        "std": std,
        "classes": list(classes),
        "source": source,
    }


def channel_stats(x_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation (training images only)."""
    x = x_uint8.to(torch.float64)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return mean.float(), std.float()


def subsample(split: dict, max_train: int | None, max_test: int | None, seed: int) -> dict:
    """Keep a seeded random subset of each split (None keeps all); statistics are
    recomputed on the kept training images."""
    g = torch.Generator().manual_seed(seed)
    out = dict(split)
    for part, cap in (("train", max_train), ("test", max_test)):
        n = len(split[f"y_{part}"])
        if cap is not None and cap < n:
            idx = torch.randperm(n, generator=g)[:cap].sort().values
            out[f"x_{part}"] = split[f"x_{part}"][idx].contiguous()
            out[f"y_{part}"] = split[f"y_{part}"][idx].contiguous()
    out["mean"], out["std"] = channel_stats(out["x_train"])
    return out


def add_label_noise(split: dict, fraction: float, seed: int) -> dict:
    """Replace the labels of exactly round(fraction * n) training examples by a class
    drawn uniformly from the *other* classes (never the true one), seeded. Test labels
    stay clean. The change is recorded with the split: ``label_noise`` holds the
    indices, their original and their new labels (empty tensors at fraction 0)."""
    n_classes = len(split["classes"])
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"data.label_noise must lie in [0, 1), got {fraction}")
    if fraction > 0 and n_classes < 2:
        raise DataError("data.label_noise needs at least two classes (a noisy label is another class)")
    y = split["y_train"].clone()
    g = torch.Generator().manual_seed(seed)
    indices = torch.randperm(len(y), generator=g)[: round(fraction * len(y))].sort().values
    # An offset in 1..C-1 added modulo C gives each other class with probability 1/(C-1).
    offsets = torch.randint(1, max(n_classes, 2), (len(indices),), generator=g)
    original = y[indices].clone()
    y[indices] = (original + offsets) % n_classes
    out = dict(split, y_train=y)
    out["label_noise"] = {"fraction": fraction, "seed": seed, "indices": indices, "original": original, "new": y[indices].clone()}
    return out


def build_split(data_cfg: dict, archive: str | Path | None = None) -> dict:
    """The split for a ``data`` config section (see the config schema)."""
    source = data_cfg["source"]
    if source == "digits":
        split = digits_split(data_cfg["test_fraction"], data_cfg["split_seed"])
    elif source == "cifar10":
        if data_cfg.get("local_dir"):
            split = read_cifar10_folder(data_cfg["local_dir"])
        elif archive is not None:
            split = read_cifar10_archive(archive)
        else:
            raise DataError("data.source is cifar10 but neither data.local_dir nor a downloaded archive was given")
    else:
        raise DataError(f"unknown data.source {source!r}")
    split = subsample(split, data_cfg.get("max_train"), data_cfg.get("max_test"), data_cfg["split_seed"])
    return add_label_noise(split, data_cfg.get("label_noise", 0.0), data_cfg.get("label_noise_seed", 0))


def save_split(path: str | Path, split: dict) -> None:
    save_torch(path, split)


def load_split(path: str | Path) -> dict:
    return load_torch(path)


def describe(split: dict) -> dict:
    """A small JSON-able summary of a split (shapes, class counts, statistics)."""
    return {
        "source": split["source"],
        "n_train": int(len(split["y_train"])),
        "n_test": int(len(split["y_test"])),
        "image_shape": list(split["x_train"].shape[1:]),
        "classes": split["classes"],
        "train_class_counts": torch.bincount(split["y_train"], minlength=len(split["classes"])).tolist(),
        "test_class_counts": torch.bincount(split["y_test"], minlength=len(split["classes"])).tolist(),
        "mean": split["mean"].tolist(),
        "std": split["std"].tolist(),
        "label_noise": {
            "fraction": split["label_noise"]["fraction"],
            "seed": split["label_noise"]["seed"],
            "n_noisy": int(len(split["label_noise"]["indices"])),
        } if "label_noise" in split else None,
    }
