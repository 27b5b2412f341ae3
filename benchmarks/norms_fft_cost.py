"""Time of the norms family on one paper-grid NiN: the library's conv_spectral_norm
(one SVD for a 1x1 kernel) against the per-frequency computation for every kernel
(Sedghi et al. 2019, https://arxiv.org/abs/1805.10408: an SVD at each of the h x w
frequencies), side by side in one run, and whether every value is the same.

    python benchmarks/norms_fft_cost.py                 # width 1.0 (192 channels), ~5 min on 2 CPU cores
    python benchmarks/norms_fft_cost.py --width 2.0     # the widest cell (384 channels), far longer on a CPU
    python benchmarks/norms_fft_cost.py --repeats 3 --device cuda

The model is configs/paper-nin-cifar10.yaml's (schema defaults filled in: NiN, depth
3, base width 192 x --width, BatchNorm unless --no-batchnorm), at its seeded
initialisation, with a second seed as the initial model; the data are CIFAR-shaped
random uint8 images (3x32x32, 10 classes; nothing is downloaded), --examples of
them for the margin. The norms settings are the preset's. Each repeat runs both
variants back to back, the per-frequency one first; the ratio is the median of the
per-pair ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from unittest import mock

import torch

from prunability.config import load_config_file, with_defaults
from prunability.grid import cell_hyperparameters
from prunability.measures import compute_family
from prunability.measures import norms as norms_module
from prunability.train import DeviceData, model_for

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "configs" / "paper-nin-cifar10.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@torch.no_grad()
def per_frequency_spectral_norm(kernel: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Sedghi et al.'s value for any kernel: the DFT of the kernel wrapped onto the grid,
    an SVD at every frequency, the largest singular value."""
    out_c, in_c, kh, kw = kernel.shape
    h, w = grid
    wrapped = torch.zeros(out_c, in_c, h, w, dtype=kernel.dtype, device=kernel.device)
    for i in range(kh):
        for j in range(kw):
            wrapped[:, :, i % h, j % w] += kernel[:, :, i, j]
    coefficients = torch.fft.fft2(wrapped).permute(2, 3, 0, 1)
    return torch.linalg.matrix_norm(coefficients, ord=2).max()


def setup(width: float, batchnorm: bool, examples: int, device: str):
    config = with_defaults(load_config_file(PRESET), SCHEMA)
    hp = cell_hyperparameters(config["hyperparameters"], {"width": width, "batchnorm": batchnorm, "dropout": 0.0})
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (examples, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (examples,), generator=g)
    mean, std = torch.full((1, 3, 1, 1), 120.0), torch.full((1, 3, 1, 1), 64.0)
    data = DeviceData(x.to(device), y.to(device), x.to(device), y.to(device), mean.to(device), std.to(device), 10)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(model_for({**hp, "seed": seed}, config["model"], data).to(device).eval())
    return models[0], models[1], data, config["measures"]["norms"]


def svd_counts(model, data) -> tuple[int, int]:
    """(1x1, all) per-frequency SVDs of one set of kernels (the family does two: W and W - W^0)."""
    grids = norms_module.circular_grids(model, data.normalize(data.x_train[:1]))
    kernels = {name: m.weight for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    sizes = {name: (grids[f"{name}.weight"][0] * grids[f"{name}.weight"][1], k.shape[-2:] == (1, 1)) for name, k in kernels.items()}
    return sum(n for n, one in sizes.values() if one), sum(n for n, _ in sizes.values())


def timed(model, init, data, settings) -> tuple[float, dict]:
    started = time.perf_counter()
    record = compute_family("norms", model, init, data, settings, log=lambda _msg: None)
    seconds = time.perf_counter() - started
    assert record["errors"] == {}, record["errors"]
    return seconds, record["values"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=1.0, help="the grid's width multiplier (1.0, 1.5, 2.0)")
    parser.add_argument("--no-batchnorm", action="store_true")
    parser.add_argument("--examples", type=int, default=512, help="training images for the margin")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model, init, data, settings = setup(args.width, not args.no_batchnorm, args.examples, args.device)
    one, total = svd_counts(model, data)
    print(f"NiN width {args.width} (base 192), batchnorm {not args.no_batchnorm}, {args.examples} images, "
          f"{args.device}, {torch.get_num_threads()} threads")
    print(f"per-frequency SVDs per kernel set: {total}, of them {one} for 1x1 kernels (x2: W and W - W^0)")
    before, after, ratios = [], [], []
    for _ in range(args.repeats):
        with mock.patch.object(norms_module, "conv_spectral_norm", per_frequency_spectral_norm):
            t_before, v_before = timed(model, init, data, settings)
        t_after, v_after = timed(model, init, data, settings)
        before.append(t_before)
        after.append(t_after)
        ratios.append(t_before / t_after)
        differ = {k: (v_before[k], v_after[k]) for k in v_before if v_before[k] != v_after[k]}
        print(f"  per-frequency {t_before:8.2f} s   1x1 shortcut {t_after:8.2f} s   ratio {t_before / t_after:5.2f}   "
              f"values: {len(v_before) - len(differ)} of {len(v_before)} bit-identical")
        for name, (b, a) in differ.items():
            print(f"    {name}: {b!r} -> {a!r} (relative {abs(a - b) / abs(b):.1e})")
    print(f"median: per-frequency {statistics.median(before):.2f} s, 1x1 shortcut {statistics.median(after):.2f} s, "
          f"ratio {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
