"""Corrupted test sets in the style of CIFAR-10-C (Hendrycks & Dietterich 2019), seeded,
for prune potential under distribution shift (Liebenwein et al. 2021).

Eight corruptions, each at severities 1-5: Gaussian, shot and impulse noise, Gaussian
blur, contrast, brightness, pixelation and JPEG compression. The formulas are those of
Hendrycks' ``make_cifar_c.py`` (hendrycks/robustness, ImageNet-C/create_c/, commit
ca360085), written here on whole batches with a seeded ``numpy.random.Generator``
instead of NumPy's global random state. Two severity tables:

- ``cifar10c`` (the default): the constants of ``make_cifar_c.py``, the ones that made
  CIFAR-10-C, the data set Liebenwein et al. report (severity 3 for every corruption);
- ``imagenetc``: the constants of ``make_imagenet_c.py`` as shipped by the maintained
  ``imagecorruptions-imaug`` package; meant for 224-pixel images, they erase most of a
  32x32 image at the top severities (Gaussian blur sigma 6, pixelation to 8x8).

Why not call ``imagecorruptions-imaug`` itself: its constants are fixed to ImageNet-C's
inside each function, so it cannot make CIFAR-10-C's severities; its noises draw from
NumPy's global state; its ``corrupt`` refuses images under 32 pixels (digits are 8x8);
and it imports OpenCV and numba, which none of these eight corruptions need. A test
checks this module against the package at the ``imagenetc`` table when it is installed.

Images are uint8 N x C x H x W (the split file's layout) with pixel values 0..pixel_max
(255 for CIFAR-10, 16 for scikit-learn's digits). They are first scaled to 0..255 (for
digits: round(x * 255 / 16)), corrupted as H x W x C images in [0, 1], and truncated to
uint8 as ``make_cifar_c.py`` does (``np.uint8`` of the 0..255 float). The result stays
in the 0..255 scale: divide by ``value_scale(pixel_max)`` before normalising with the
split's statistics. One-channel images (digits) are corrupted as they are, not
replicated to three channels: for contrast, blur, pixelation and brightness (HSV value
of a grey pixel is the pixel) the result is identical either way, JPEG codes a grey
image as its luma, and replicating then averaging would divide the variance of the
independent per-channel noises by three.
"""

from __future__ import annotations

import io
import zipfile
from typing import Callable

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from .io import InputFileError, atomic_path

# Stable ids: a (corruption, severity) set is drawn from the generator seeded with
# (seed, id, severity), so adding or removing a corruption changes no other set.
CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "gaussian_blur",
    "contrast",
    "brightness",
    "pixelate",
    "jpeg_compression",
)
SEVERITIES = (1, 2, 3, 4, 5)

# The constant c of each corruption at severities 1..5.
SEVERITY_TABLES = {
    # Adapted from https://github.com/hendrycks/robustness/blob/master/ImageNet-C/create_c/make_cifar_c.py
    "cifar10c": {
        "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # std of additive noise, [0, 1] scale
        "shot_noise": (500, 250, 100, 75, 50),  # Poisson rate per unit intensity (smaller: noisier)
        "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),  # share of values set to 0 or 1
        "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),  # sigma in pixels
        "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # factor on the deviation from the channel mean
        "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to the HSV value
        "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),  # side of the downsampled image, as a fraction
        "jpeg_compression": (80, 65, 58, 50, 40),  # JPEG quality
    },
    # imagecorruptions-imaug 1.1.5 (= make_imagenet_c.py)
    "imagenetc": {
        "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
        "shot_noise": (60, 25, 12, 5, 3),
        "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
        "gaussian_blur": (1, 2, 3, 4, 6),
        "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
        "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
        "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
        "jpeg_compression": (25, 18, 15, 10, 7),
    },
}
# make_cifar_c.py upsamples a pixelated image with a box filter, make_imagenet_c.py with
# nearest neighbours.
PIXELATE_UPSAMPLE = {"cifar10c": Image.Resampling.BOX, "imagenetc": Image.Resampling.NEAREST}


# The largest pixel value of each data source (config data.source).
PIXEL_MAX = {"digits": 16, "cifar10": 255}


def value_scale(pixel_max: int) -> float:
    """Factor from the split's pixel values to the 0..255 scale of the corrupted sets."""
    return 255.0 / pixel_max


# --------------------------------------------------------------------------- corruptions
# Each takes a float batch N x H x W x C in [0, 1] (or, for the PIL ones, uint8), the
# constant c and a generator, and returns the batch in the 0..255 scale.


def gaussian_noise(x: np.ndarray, c: float, rng: np.random.Generator, table: str) -> np.ndarray:
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x, c, rng, table):
    return np.clip(rng.poisson(x * c) / c, 0, 1) * 255


def impulse_noise(x, c, rng, table):
    """Salt and pepper as scikit-image's random_noise('s&p', amount=c): each value is
    replaced with probability c, by 1 or 0 with equal probability."""
    hit = rng.random(x.shape) < c
    salt = rng.random(x.shape) < 0.5
    out = x.copy()
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return np.clip(out, 0, 1) * 255


def gaussian_blur(x, c, rng, table):
    """scikit-image's gaussian (mode 'nearest', truncate 4) over H and W only."""
    return np.clip(gaussian_filter(x, sigma=(0, c, c, 0), mode="nearest", truncate=4.0), 0, 1) * 255


def contrast(x, c, rng, table):
    means = x.mean(axis=(1, 2), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def brightness(x, c, rng, table):
    """HSV value + c. A pixel's channels are proportional to its value V = max channel at
    fixed hue and saturation, so the round trip through HSV scales them by V' / V
    (V' = min(V + c, 1)); a black pixel (V = 0, no hue) becomes grey V'."""
    v = x.max(axis=-1, keepdims=True)
    v_new = np.minimum(v + c, 1.0)
    scaled = np.where(v > 0, x * (v_new / np.where(v > 0, v, 1.0)), v_new)
    return np.clip(scaled, 0, 1) * 255


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def _from_pil(image: Image.Image, channels: int) -> np.ndarray:
    out = np.asarray(image, dtype=np.float64)
    return out[..., None] if channels == 1 else out


def pixelate(x_uint8, c, rng, table):
    """Box-downsample to int(side * c) pixels per side, then back up."""
    n, h, w, ch = x_uint8.shape
    small = (max(1, int(w * c)), max(1, int(h * c)))
    return np.stack(
        [_from_pil(_pil(im).resize(small, Image.Resampling.BOX).resize((w, h), PIXELATE_UPSAMPLE[table]), ch) for im in x_uint8]
    )


def jpeg_compression(x_uint8, c, rng, table):
    def once(im: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        _pil(im).save(buffer, "JPEG", quality=int(c))
        with Image.open(buffer) as decoded:
            return _from_pil(decoded.convert("L" if im.shape[-1] == 1 else "RGB"), im.shape[-1])

    return np.stack([once(im) for im in x_uint8])


FUNCTIONS: dict[str, Callable] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "brightness": brightness,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}
ON_UINT8 = {"pixelate", "jpeg_compression"}  # these work on PIL images


def check(name: str, severity: int, table: str) -> None:
    if name not in FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    if table not in SEVERITY_TABLES:
        raise ValueError(f"unknown severity table {table!r}; known: {', '.join(SEVERITY_TABLES)}")


def corrupt(images: np.ndarray, name: str, severity: int, rng: np.random.Generator, table: str = "cifar10c", pixel_max: int = 255) -> np.ndarray:
    """One corruption of a batch: uint8 N x C x H x W with values 0..pixel_max in, uint8
    N x C x H x W in the 0..255 scale out."""
    check(name, severity, table)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 N x C x H x W images with 1 or 3 channels, got {images.dtype} {images.shape}")
    if images.size and int(images.max()) > pixel_max:
        raise ValueError(f"pixel values reach {int(images.max())}, above pixel_max = {pixel_max}")
    hwc = np.transpose(images, (0, 2, 3, 1))
    if pixel_max != 255:
        hwc = np.round(hwc.astype(np.float64) * value_scale(pixel_max)).astype(np.uint8)
    c = SEVERITY_TABLES[table][name][severity - 1]
    x = hwc if name in ON_UINT8 else hwc / 255.0
    out = FUNCTIONS[name](x, c, rng, table)
    return np.ascontiguousarray(np.transpose(np.uint8(out), (0, 3, 1, 2)))


def generator(seed: int, name: str, severity: int) -> np.random.Generator:
    """The generator of one (corruption, severity) set, independent of the others."""
    return np.random.default_rng([seed, CORRUPTIONS.index(name), severity])


def corrupt_all(
    images: np.ndarray,
    names: list[str],
    severities: list[int],
    seed: int,
    table: str = "cifar10c",
    pixel_max: int = 255,
    log: Callable[[str], None] = print,
) -> np.ndarray:
    """Every (corruption, severity) set: uint8, len(names) x len(severities) x N x C x H x W."""
    for name in names:
        for severity in severities:
            check(name, severity, table)
    out = np.empty((len(names), len(severities), *images.shape), dtype=np.uint8)
    for i, name in enumerate(names):
        for j, severity in enumerate(severities):
            out[i, j] = corrupt(images, name, severity, generator(seed, name, severity), table, pixel_max)
        log(f"{name}: severities {list(severities)} done ({len(images)} images each)")
    return out


# --------------------------------------------------------------------------- the file


def save_corruptions(path, images: np.ndarray, names, severities, seed: int, table: str, pixel_max: int) -> None:
    """One .npz (no pickled objects), written atomically: the sets, their names,
    severities and how they were made."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: savez would append ".npz" to a name
        np.savez_compressed(
            f,
            images=images,
            names=np.array(list(names), dtype=str),
            severities=np.array(list(severities), dtype=np.int64),
            seed=np.int64(seed),
            table=np.array(table),
            pixel_max=np.int64(pixel_max),
        )


def load_corruptions(path) -> dict:
    """The file of ``save_corruptions`` as a dict (``allow_pickle=False``: it cannot run code).
    A file that cannot be read (truncated, not an .npz, a member missing) raises ValueError
    naming it."""
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {
                "images": f["images"],
                "names": [str(n) for n in f["names"]],
                "severities": [int(s) for s in f["severities"]],
                "seed": int(f["seed"]),
                "table": str(f["table"]),
                "pixel_max": int(f["pixel_max"]),
            }
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise InputFileError(f"{path}: not a readable file of corrupted sets ({type(error).__name__}: {error}); "
                         "delete it and rerun corrupt_data") from error
    if out["images"].shape[:2] != (len(out["names"]), len(out["severities"])):
        raise ValueError(f"{path}: images of shape {out['images'].shape} for {len(out['names'])} corruptions x {len(out['severities'])} severities")
    return out
