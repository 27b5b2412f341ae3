"""The data split as an archive describes it, without its images: the positions, labels
and SHA-256 of every image per part, and the check that a split rebuilt from the source
data is the archived one."""

from __future__ import annotations

import hashlib

import pandas as pd

from .layout import ArchiveError, _json_bytes


def image_sha256(x_uint8) -> list[str]:
    """SHA-256 of each image's bytes: uint8, C x H x W, row-major (C order)."""
    array = x_uint8.contiguous().numpy()
    return [hashlib.sha256(image.tobytes()).hexdigest() for image in array]


def split_files(split: dict) -> dict[str, bytes]:
    """The split as the archive describes it: positions, labels and image hashes per
    part, and a JSON of everything else needed to use it (never the images)."""
    from ..data import describe

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
