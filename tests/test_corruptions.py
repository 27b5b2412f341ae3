"""Tests for ``prunability.corruptions``: the eight corruptions against hand-computed
values and closed forms, seeded determinism, shapes and ranges, severity ordering,
the digits handling, the file, and (when installed) the imagecorruptions-imaug package."""

from __future__ import annotations

import re

import numpy as np
import pytest

from prunability.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    SEVERITY_TABLES,
    corrupt,
    corrupt_all,
    generator,
    load_corruptions,
    save_corruptions,
    value_scale,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_images(n=6, channels=3, side=32, high=256, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, size=(n, channels, side, side), dtype=np.uint8)


def smooth_images(n=4, channels=3, side=32, seed=2) -> np.ndarray:
    """Natural-ish images: random 4x4 blocks, so blurring and pixelation have edges to act on."""
    blocks = np.random.default_rng(seed).integers(20, 236, size=(n, channels, side // 4, side // 4))
    return np.repeat(np.repeat(blocks, 4, axis=2), 4, axis=3).astype(np.uint8)


def grey(value: int, n=8, channels=3, side=32) -> np.ndarray:
    return np.full((n, channels, side, side), value, dtype=np.uint8)


def mean_abs_change(name, severity, images, pixel_max=255, table="cifar10c") -> float:
    out = corrupt(images, name, severity, rng(), table, pixel_max)
    scaled = np.round(images.astype(float) * value_scale(pixel_max))
    return float(np.abs(out.astype(float) - scaled).mean())


# --------------------------------------------------------------------------- hand-computed values


def test_contrast_by_hand():
    # one grey 2x2 image, half black, half white; mean 0.5; CIFAR-10-C severity 3: c = 0.4
    image = np.array([[[[0, 0], [255, 255]]]], dtype=np.uint8)
    out = corrupt(image, "contrast", 3, rng())
    # (0 - 0.5) * 0.4 + 0.5 = 0.3 -> 76.5 -> 76; (1 - 0.5) * 0.4 + 0.5 = 0.7 -> 178.5 -> 178 (truncated as make_cifar_c.py)
    assert out.tolist() == [[[[76, 76], [178, 178]]]]


def test_brightness_by_hand():
    # (100, 50, 0): HSV value 100/255; severity 1 (c = 0.05) scales every channel by (V + 0.05) / V;
    # a black pixel (no hue) becomes grey 0.05 * 255 = 12.75 -> 12; a white one stays white.
    image = np.array([[100, 0, 255], [50, 0, 255], [0, 0, 255]], dtype=np.uint8).reshape(1, 3, 1, 3)
    out = corrupt(image, "brightness", 1, rng())
    factor = (100 / 255 + 0.05) / (100 / 255)
    assert out[0, :, 0, 0].tolist() == [int(100 * factor), int(50 * factor), 0] == [112, 56, 0]
    assert out[0, :, 0, 1].tolist() == [12, 12, 12]
    assert out[0, :, 0, 2].tolist() == [255, 255, 255]


def test_pixelate_keeps_an_image_made_of_blocks_of_the_target_size():
    # CIFAR-10-C severity 5 (c = 0.65) pixelates 4x4 to int(4 * 0.65) = 2 pixels per side: an image of 2x2
    # blocks is unchanged, and a checkerboard becomes its 2x2 box means.
    blocks = np.array([[10, 10, 200, 200], [10, 10, 200, 200], [90, 90, 30, 30], [90, 90, 30, 30]], dtype=np.uint8)
    assert (corrupt(blocks.reshape(1, 1, 4, 4), "pixelate", 5, rng()) == blocks).all()
    checker = (np.indices((4, 4)).sum(axis=0) % 2 * 200).astype(np.uint8).reshape(1, 1, 4, 4)
    assert (corrupt(checker, "pixelate", 5, rng()) == 100).all()


def test_gaussian_blur_leaves_a_constant_image_and_smooths_a_step():
    assert (corrupt(grey(77), "gaussian_blur", 5, rng()) == 77).all()
    step = np.zeros((1, 1, 1, 8), dtype=np.uint8)
    step[..., 4:] = 255
    out = corrupt(step, "gaussian_blur", 5, rng())[0, 0, 0].astype(int)
    assert out[0] == 0 and out[-1] >= 254 and (np.diff(out) >= 0).all() and 0 < out[3] < out[4] < 255


def test_gaussian_noise_has_the_table_standard_deviation():
    # Mid-grey 128 keeps the noise away from the clipping bounds: the change is N(0, (c * 255)^2).
    for severity in (1, 5):
        c = SEVERITY_TABLES["cifar10c"]["gaussian_noise"][severity - 1]
        out = corrupt(grey(128, n=20), "gaussian_noise", severity, rng()).astype(float)
        assert out.mean() == pytest.approx(128 - 0.5, abs=0.5)  # truncation to uint8 lowers the mean by about 0.5
        assert out.std() == pytest.approx(c * 255, rel=0.02)


def test_shot_noise_is_poisson_with_the_table_rate():
    # x = 128/255, rate c: the output/255 is Poisson(x c)/c, with mean x and variance x / c.
    c = SEVERITY_TABLES["cifar10c"]["shot_noise"][4]
    out = corrupt(grey(128, n=20), "shot_noise", 5, rng()).astype(float) / 255
    x = 128 / 255
    assert out.mean() == pytest.approx(x, abs=0.005)
    assert out.std() == pytest.approx(np.sqrt(x / c), rel=0.03)


def test_impulse_noise_replaces_the_table_share_by_black_or_white():
    c = SEVERITY_TABLES["cifar10c"]["impulse_noise"][4]
    out = corrupt(grey(128, n=20), "impulse_noise", 5, rng())
    changed = out != 128
    assert changed.mean() == pytest.approx(c, rel=0.05)
    assert set(np.unique(out[changed]).tolist()) == {0, 255}
    assert (out[changed] == 255).mean() == pytest.approx(0.5, abs=0.03)


def test_the_cifar10c_table_is_hendrycks_make_cifar_c():
    # hendrycks/robustness ImageNet-C/create_c/make_cifar_c.py, severities 1..5
    table = SEVERITY_TABLES["cifar10c"]
    assert table["gaussian_noise"] == (0.04, 0.06, 0.08, 0.09, 0.10)
    assert table["jpeg_compression"] == (80, 65, 58, 50, 40)
    assert table["pixelate"] == (0.95, 0.9, 0.85, 0.75, 0.65)
    assert set(table) == set(SEVERITY_TABLES["imagenetc"]) == set(CORRUPTIONS)
    assert all(len(v) == len(SEVERITIES) for t in SEVERITY_TABLES.values() for v in t.values())


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize("channels,side,pixel_max", [(3, 32, 255), (1, 8, 16)], ids=["cifar", "digits"])
def test_shape_dtype_and_range_are_preserved(name, channels, side, pixel_max):
    images = random_images(n=3, channels=channels, side=side, high=pixel_max + 1)
    for severity in SEVERITIES:
        out = corrupt(images, name, severity, rng(), "cifar10c", pixel_max)
        assert out.shape == images.shape and out.dtype == np.uint8 and out.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_seeded_determinism(name):
    images = smooth_images()
    a = corrupt_all(images, [name], [1, 5], seed=3, log=lambda m: None)
    b = corrupt_all(images, [name], [1, 5], seed=3, log=lambda m: None)
    assert (a == b).all()
    if "noise" in name:  # the random ones differ under another seed
        c = corrupt_all(images, [name], [1, 5], seed=4, log=lambda m: None)
        assert (a != c).any()


def test_a_set_does_not_depend_on_the_other_corruptions_drawn():
    images = smooth_images()
    alone = corrupt_all(images, ["shot_noise"], [2], seed=0, log=lambda m: None)[0, 0]
    after = corrupt_all(images, ["gaussian_noise", "shot_noise"], [1, 2], seed=0, log=lambda m: None)[1, 1]
    assert (alone == after).all()
    assert (generator(0, "shot_noise", 2).random(3) == generator(0, "shot_noise", 2).random(3)).all()


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "gaussian_blur", "contrast", "brightness"])
def test_the_change_grows_with_severity(name):
    images = smooth_images(n=8)
    changes = [mean_abs_change(name, s, images) for s in SEVERITIES]
    assert all(a < b for a, b in zip(changes, changes[1:])), changes


@pytest.mark.parametrize("name", ["pixelate", "jpeg_compression"])
def test_the_change_does_not_shrink_with_severity_and_is_largest_at_5(name):
    images = random_images(n=4)
    changes = [mean_abs_change(name, s, images) for s in SEVERITIES]
    assert changes[-1] > changes[0] > 0
    assert changes == pytest.approx(sorted(changes), rel=0.05), changes


def test_imagenetc_is_stronger_than_cifar10c():
    images = smooth_images(n=8)
    for name in ("gaussian_noise", "gaussian_blur", "contrast"):
        assert mean_abs_change(name, 3, images, table="imagenetc") > mean_abs_change(name, 3, images, table="cifar10c")


# --------------------------------------------------------------------------- digits


def test_digits_are_scaled_to_0_255_and_back():
    assert value_scale(16) == 255 / 16
    digits = np.array([[[[0, 4], [8, 16]]]], dtype=np.uint8)
    # contrast at severity 3 (c = 0.4) on the scaled image: round(x * 255 / 16) = 0, 64, 128, 255
    scaled = np.array([0, 64, 128, 255]) / 255
    expected = np.uint8(np.clip((scaled - scaled.mean()) * 0.4 + scaled.mean(), 0, 1) * 255)
    out = corrupt(digits, "contrast", 3, rng(), pixel_max=16)
    assert out.ravel().tolist() == expected.tolist()
    # pixelation of 2x2 to int(2 * 0.95) = 1 pixel: the box mean (0 + 64 + 128 + 255) / 4 = 111.75, rounded by
    # PIL to 112, everywhere; back in the split's scale 112 * 16 / 255 = 7.03, the digits' mean 7 to within a level
    out = corrupt(digits, "pixelate", 1, rng(), pixel_max=16)
    assert out.ravel().tolist() == [112] * 4
    assert out.ravel()[0] / value_scale(16) == pytest.approx(7.0, abs=16 / 255)


def test_grey_digits_noise_keeps_its_nominal_strength_on_one_channel():
    # one channel corrupted as it is: the noise std is c * 255, not divided by sqrt(3) by channel averaging
    out = corrupt(np.full((50, 1, 8, 8), 8, dtype=np.uint8), "gaussian_noise", 5, rng(), pixel_max=16)
    assert out.astype(float).std() == pytest.approx(0.10 * 255, rel=0.05)


def test_pixel_values_above_pixel_max_are_refused():
    with pytest.raises(ValueError, match="above pixel_max = 16"):
        corrupt(np.full((1, 1, 8, 8), 17, dtype=np.uint8), "contrast", 1, rng(), pixel_max=16)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(name="fog"), "unknown corruption 'fog'"),
        (dict(severity=6), "severity must be one of"),
        (dict(table="cifar100c"), "unknown severity table"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, match):
    args = dict(name="contrast", severity=1, table="cifar10c") | kwargs
    with pytest.raises(ValueError, match=match):
        corrupt(smooth_images(n=1), args["name"], args["severity"], rng(), args["table"])


def test_bad_image_layout_is_refused():
    with pytest.raises(ValueError, match="uint8 N x C x H x W"):
        corrupt(np.zeros((2, 32, 32, 3), dtype=np.uint8), "contrast", 1, rng())
    with pytest.raises(ValueError, match="uint8 N x C x H x W"):
        corrupt(np.zeros((2, 3, 8, 8), dtype=np.float32), "contrast", 1, rng())


# --------------------------------------------------------------------------- the file


def test_file_round_trip_and_no_pickle(tmp_path):
    images = corrupt_all(smooth_images(n=2), ["contrast", "jpeg_compression"], [1, 3], seed=0, log=lambda m: None)
    path = tmp_path / "corruptions.npz"
    save_corruptions(path, images, ["contrast", "jpeg_compression"], [1, 3], 0, "cifar10c", 255)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corruptions.npz"]  # atomic: no temporary left
    back = load_corruptions(path)
    assert (back["images"] == images).all()
    assert back["names"] == ["contrast", "jpeg_compression"] and back["severities"] == [1, 3]
    assert (back["seed"], back["table"], back["pixel_max"]) == (0, "cifar10c", 255)
    # an object array (which needs pickle) is refused on loading
    np.savez(tmp_path / "evil.npz", images=np.array([object()], dtype=object), names=np.array(["x"]))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_corruptions(tmp_path / "evil.npz")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "member missing"])
def test_a_damaged_file_is_refused_naming_it(tmp_path, damage):
    path = tmp_path / "c.npz"
    save_corruptions(path, np.zeros((1, 1, 1, 1, 2, 2), dtype=np.uint8), ["contrast"], [1], 0, "cifar10c", 255)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file")
    else:
        np.savez(path, images=np.zeros((1, 1, 1, 1, 2, 2), dtype=np.uint8), names=np.array(["contrast"]))
    with pytest.raises(ValueError, match=re.escape(f"{path}: not a readable file of corrupted sets") + ".*rerun corrupt_data"):
        load_corruptions(path)


def test_file_with_inconsistent_shape_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    save_corruptions(path, np.zeros((2, 1, 1, 1, 2, 2), dtype=np.uint8), ["contrast"], [1], 0, "cifar10c", 255)
    with pytest.raises(ValueError, match="for 1 corruptions x 1 severities"):
        load_corruptions(path)


# --------------------------------------------------------------------------- the maintained package


@pytest.mark.parametrize("name", ["gaussian_blur", "contrast", "brightness", "pixelate", "jpeg_compression"])
def test_matches_imagecorruptions_imaug_at_imagenet_c_constants(name):
    """The deterministic corruptions equal the package's at its own (ImageNet-C) constants,
    to one grey level (brightness: the package's float HSV round trip truncates
    differently)."""
    package = pytest.importorskip("imagecorruptions")
    images = random_images(n=3)
    for severity in SEVERITIES:
        ours = corrupt(images, name, severity, rng(), "imagenetc")
        theirs = np.stack([package.corrupt(np.transpose(im, (1, 2, 0)), severity=severity, corruption_name=name)
                           for im in images]).transpose(0, 3, 1, 2)
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= (1 if name == "brightness" else 0)
