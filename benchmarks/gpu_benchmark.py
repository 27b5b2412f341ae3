"""GPU throughput of one paper-grid NiN: the package's training loop, a
plain PyTorch loop, the share of the device's peak, and models per hour with several
jobs sharing one GPU.

    python benchmarks/gpu_benchmark.py                         # on a CUDA machine (cuda)
    python benchmarks/gpu_benchmark.py --device cuda:1 --peak-tflops 756   # another GPU, e.g. an H100 PCIe
    python benchmarks/gpu_benchmark.py --device cpu --quick    # a smoke test of this script (< 1 min)

The model, optimiser and training settings are those of configs/paper-nin-cifar10.yaml
(with the schema's defaults): NiN, depth 3, base width 192 x --width, BatchNorm, no
dropout, SGD with momentum 0.9, lr 0.01, batch 32; no augmentation unless --augment.
The data are CIFAR-shaped random uint8 images (3x32x32, 10 classes; nothing is
downloaded), --steps batches of training images and a fifth as many test images
(CIFAR-10's 50,000 : 10,000).

Measured side by side in one run:

1. images/s of the package's loop: ``prunability.train.train_model`` with stopping
   "budget" for --epochs epochs, timed by its own per-epoch clock (curve
   ``wall_time_s``: the training steps and the stopping rule's evaluation of the
   whole training and test sets; model building and the final checkpoint excluded);
2. images/s of a minimal plain PyTorch loop doing the same work (same model, data,
   optimiser, steps and per-epoch evaluation), written below. The two run
   interleaved, --repeats times each after a warm-up run; medians are reported, and
   the ratio is the median of the per-pair ratios (a pair runs back to back, so a
   drifting clock or a busy neighbour affects both);
3. achieved FLOP/s: FLOPs of one training step and of one evaluation batch counted
   with torch.utils.flop_counter.FlopCounterMode (convolutions and matrix products
   only), times the images processed per second, as a fraction of --peak-tflops;
4. 1, 2, 4, 8 (--jobs) processes training at once on the same device, each its own
   model for --job-steps steps (train_model, one epoch): aggregate images/s, and
   models per hour for --epochs-per-model epochs of CIFAR-10 per model.

5. host synchronisations inside the training step (CUDA only): one epoch of the
   package's loop under ``torch.cuda.set_sync_debug_mode("warn")``, every warning
   counted; the epoch's own reads (the data order, the augmentation draws, the two
   evaluations, the divergence flag) are a handful per epoch, so syncs per step near
   0 mean the step itself never waits for the host;
6. variants of the plain loop that the package does not use by default: TF32
   (``train.fp32_precision: tf32``, a config choice; see docs/gpu.md), bf16 autocast,
   channels_last memory format, and both, each timed interleaved with the float32
   plain loop. The package adopts one only where it measurably pays;
7. with --to-ce DIR: one paper-grid model trained by the package to train CE 0.01
   (the preset's stopping rule, at most --to-ce-epochs epochs) on CIFAR-10 from a
   folder of the official python batches (e.g. ../shared/data/cifar10-subset/...):
   epochs, steps and wall time.

Both loops train in float32, as the package does (no bf16 autocast), so the fraction
of the bf16 peak says how far the loop is from what the GPU could do, not what
float32 allows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from prunability.config import load_config_file, with_defaults
from prunability.grid import cell_hyperparameters
from prunability.data import channel_stats, read_cifar10_folder
from prunability.numerics import configure_numerics, set_fp32_precision
from prunability.train import DeviceData, augment, model_for, resolve_device, train_model

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "configs" / "paper-nin-cifar10.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

# NVIDIA's datasheets give BF16 Tensor Core peaks "with sparsity" (2:4 structured), twice
# the dense rate: H100 SXM and H200 SXM 1,979 TFLOP/s -> 989.4 dense. A training loop
# without structured sparsity can reach the dense rate at most.
DEFAULT_PEAK_TFLOPS = 989.4
DEFAULT_PEAK_SOURCE = (
    "default: dense BF16 Tensor Core peak of an H100 SXM / H200 SXM (NVIDIA datasheets: 1,979 TFLOP/s with "
    "2:4 sparsity, half that dense). Other GPUs: pass --peak-tflops (dense BF16, e.g. H100 PCIe 756, "
    "H100 NVL and H200 NVL 835)"
)
CIFAR10_TRAIN_IMAGES = 50_000
CIFAR10_TEST_IMAGES = 10_000
# DEMOGEN trained each NiN for 150k steps of batch 32 = 96 epochs of CIFAR-10; the
# preset's models stop earlier or later (CE < 0.01, at most 300 epochs).
DEFAULT_EPOCHS_PER_MODEL = 150_000 * 32 / CIFAR10_TRAIN_IMAGES


# --------------------------------------------------------------------------- settings and data


def paper_settings(args) -> tuple[dict, dict, dict]:
    """(hyperparameters, model, train settings) of one cell of the paper grid, from
    the preset with the schema's defaults filled in, as the workflow reads them
    (``with_defaults``: no snakemake or jsonschema needed on the GPU machine)."""
    config = with_defaults(load_config_file(PRESET), SCHEMA)
    first_cell = {axis: values[0] for axis, values in config["grid"].items()}
    hp = cell_hyperparameters(
        config["hyperparameters"],
        dict(first_cell, width=args.width, batchnorm=True, dropout=0.0, augment=args.augment, weight_decay=0.0),
    )
    model_cfg = dict(config["model"], base_width=args.base_width or config["model"]["base_width"])
    train_cfg = dict(config["train"], stopping="budget", max_epochs=args.epochs, device=args.device)
    return hp, model_cfg, train_cfg


def random_cifar_split(n_train: int, seed: int) -> dict:
    """A split in prepare_data's format: random uint8 3x32x32 images, 10 classes."""
    generator = torch.Generator().manual_seed(seed)
    n_test = max(1, n_train * CIFAR10_TEST_IMAGES // CIFAR10_TRAIN_IMAGES)
    x_train = torch.randint(0, 256, (n_train, 3, 32, 32), dtype=torch.uint8, generator=generator)
    mean, std = channel_stats(x_train)
    return {
        "x_train": x_train,
        "y_train": torch.randint(0, 10, (n_train,), generator=generator),
        "x_test": torch.randint(0, 256, (n_test, 3, 32, 32), dtype=torch.uint8, generator=generator),
        "y_test": torch.randint(0, 10, (n_test,), generator=generator),
        "mean": mean,
        "std": std,
        "classes": [f"class{i}" for i in range(10)],
        "source": "random",
    }


def images_per_epoch(split: dict) -> tuple[int, int]:
    """(training images stepped on, images evaluated) in one epoch of the package's loop."""
    return len(split["y_train"]), len(split["y_train"]) + len(split["y_test"])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- the two loops


def package_loop_seconds(hp: dict, model_cfg: dict, train_cfg: dict, split: dict) -> float:
    """Seconds of train_model's epochs (steps and evaluations), by its own clock."""
    with tempfile.TemporaryDirectory() as folder:  # a fresh checkpoint: nothing to resume
        result = train_model(hp, model_cfg, train_cfg, split, Path(folder) / "checkpoint.pt", log=lambda line: None)
    return result.curve[-1]["wall_time_s"]


def plain_loop_seconds(hp: dict, model_cfg: dict, train_cfg: dict, split: dict,
                       bf16: bool = False, channels_last: bool = False, tf32: bool = False) -> float:
    """Seconds of a minimal hand-written loop doing the package's work: the same
    model, data, optimiser and steps, each epoch followed by the loss and accuracy on
    the whole training and test sets. No per-step checks, no checkpoints, and one
    device-to-host copy per evaluation instead of one per batch. ``bf16``: forward
    passes under bf16 autocast; ``channels_last``: model and images in NHWC memory;
    ``tf32``: float32 matmuls and convolutions in TF32 (``train.fp32_precision: tf32``)."""
    set_fp32_precision("tf32" if tf32 else train_cfg["fp32_precision"])
    try:
        return _plain_loop_seconds(hp, model_cfg, train_cfg, split, bf16, channels_last)
    finally:
        set_fp32_precision(train_cfg["fp32_precision"])


def _plain_loop_seconds(hp, model_cfg, train_cfg, split, bf16, channels_last) -> float:
    device = resolve_device(train_cfg["device"])
    data = DeviceData.from_split(split, device)
    torch.manual_seed(hp["seed"])
    model = model_for(hp, model_cfg, data).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext
    optimizer = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=0.9, weight_decay=hp["weight_decay"])
    generator = torch.Generator().manual_seed(hp["seed"])  # augment() draws on the CPU
    n, batch_size, eval_batch_size = len(data.y_train), hp["batch_size"], train_cfg["eval_batch_size"]
    synchronize(device)
    started = time.perf_counter()
    x_train = data.normalize(data.x_train).contiguous(memory_format=memory_format)
    x_test = data.normalize(data.x_test).contiguous(memory_format=memory_format)
    for _ in range(train_cfg["max_epochs"]):
        model.train()
        order = torch.randperm(n, device=device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if hp["augment"]:
                x = data.normalize(augment(data.x_train[idx], train_cfg["augment_pad"], train_cfg["augment_flip"], generator))
                x = x.contiguous(memory_format=memory_format)
            else:
                x = x_train[idx]
            with autocast():
                loss = F.cross_entropy(model(x).float(), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad(), autocast():
            for x, y in ((x_train, data.y_train), (x_test, data.y_test)):
                totals = torch.zeros(2, device=device)  # summed loss, correct predictions
                for start in range(0, len(y), eval_batch_size):
                    logits = model(x[start : start + eval_batch_size])
                    target = y[start : start + eval_batch_size]
                    totals[0] += F.cross_entropy(logits.float(), target, reduction="sum")
                    totals[1] += (logits.argmax(1) == target).sum()
                loss_sum, correct = totals.tolist()  # to the host, as the stopping rule needs them
    synchronize(device)
    return time.perf_counter() - started


def host_syncs_in_one_epoch(hp: dict, model_cfg: dict, train_cfg: dict, split: dict) -> int:
    """Synchronising CUDA calls during one epoch of the package's loop (steps and the
    epoch's evaluation), counted from set_sync_debug_mode's warnings."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            package_loop_seconds(hp, model_cfg, dict(train_cfg, max_epochs=1), split)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def seconds_to_ce_target(hp: dict, model_cfg: dict, train_cfg: dict, folder: str, max_epochs: int) -> dict:
    """One paper-grid model trained by the package to the preset's CE target on CIFAR-10."""
    split = read_cifar10_folder(folder)
    cfg = dict(train_cfg, stopping="ce_target", max_epochs=max_epochs)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_model(hp, model_cfg, cfg, split, Path(tmp) / "checkpoint.pt", log=lambda line: None)
    s = result.summary
    return {"images": len(split["y_train"]), "epochs": s["epochs"], "steps": s["steps"], "converged": s["converged"],
            "train_loss": s["train_loss"], "test_acc": s["test_acc"], "seconds": s["wall_time_s"]}


# --------------------------------------------------------------------------- FLOPs


def flops_per_image(hp: dict, model_cfg: dict, split: dict, device: torch.device) -> tuple[float, float]:
    """(FLOPs of one training image: forward and backward; of one evaluated image:
    forward), counted on one batch. The optimiser step has no convolutions or matrix
    products and counts nothing."""
    data = DeviceData.from_split(split, device)
    model = model_for(hp, model_cfg, data).to(device)
    x = data.normalize(data.x_train[: hp["batch_size"]])
    y = data.y_train[: hp["batch_size"]]
    with FlopCounterMode(display=False) as training:
        F.cross_entropy(model(x), y).backward()
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as evaluation:
        model(x)
    return training.get_total_flops() / len(y), evaluation.get_total_flops() / len(y)


def flops_per_epoch(split: dict, training_flops: float, evaluation_flops: float) -> float:
    trained, evaluated = images_per_epoch(split)
    return trained * training_flops + evaluated * evaluation_flops


# --------------------------------------------------------------------------- several jobs on one device


def run_worker(settings: dict) -> None:
    """One of the concurrent jobs: set up, say "ready", wait for "go" on stdin, train
    one epoch of ``job_steps`` steps with train_model, print its times as JSON."""
    torch.set_num_threads(1)
    hp, model_cfg, train_cfg = settings["hp"], settings["model"], dict(settings["train"], max_epochs=1)
    package_loop_seconds(hp, model_cfg, train_cfg, random_cifar_split(2 * hp["batch_size"], seed=99))  # warm-up
    split = random_cifar_split(settings["job_steps"] * hp["batch_size"], seed=settings["worker_index"])
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()  # wall clock: comparable across the processes
    loop_s = package_loop_seconds(hp, model_cfg, train_cfg, split)
    print(json.dumps({"start": started, "end": time.time(), "loop_s": loop_s, "images": len(split["y_train"])}), flush=True)


def run_concurrent_jobs(jobs: int, settings: dict) -> dict:
    """Start ``jobs`` workers (this script with --worker and the parent's settings), let
    them all set up, start them at once; aggregate throughput over the span from the
    first start to the last end (each job's model building and final checkpoint, a few
    milliseconds, included)."""
    workers = [
        subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(dict(settings, worker_index=i))],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for i in range(jobs)
    ]
    try:
        for worker in workers:
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a benchmark worker failed to start (exit status {worker.wait()})")
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            line = worker.stdout.readline()
            if worker.wait() != 0 or not line:
                raise RuntimeError(f"a benchmark worker failed (exit status {worker.returncode})")
            results.append(json.loads(line))
    finally:  # after a failure, the others would wait for "go" forever
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "images_per_s": sum(r["images"] for r in results) / span,
        "per_job_images_per_s": statistics.mean(r["images"] / r["loop_s"] for r in results),
    }


# --------------------------------------------------------------------------- report


def percent_of_peak(flops_per_s: float, peak_tflops: float | None) -> str:
    return f"{flops_per_s / (peak_tflops * 1e12):.2%}" if peak_tflops else "n/a"


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:<i> or cpu (default cuda)")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier, 1.0-2.0 in the grid (default 1.0)")
    parser.add_argument("--base-width", type=int, default=None, help="channels at width 1 (default: the preset's 192)")
    parser.add_argument("--augment", action="store_true", help="random crop and flip, as the grid's augment cells")
    parser.add_argument("--steps", type=int, default=300, help="training steps per timed run (default 300)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of --steps steps per timed run (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each loop (default 5)")
    parser.add_argument("--jobs", type=int, nargs="+", default=None,
                        help="numbers of concurrent jobs to measure (default 1 2 4 8; with --quick 1 2)")
    parser.add_argument("--job-steps", type=int, default=300, help="training steps of each concurrent job (default 300)")
    parser.add_argument("--epochs-per-model", type=float, default=DEFAULT_EPOCHS_PER_MODEL,
                        help="CIFAR-10 epochs a model trains, for models/hour (default 96: DEMOGEN's 150k steps of 32)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help=f"the device's dense BF16 peak in TFLOP/s (default on CUDA {DEFAULT_PEAK_TFLOPS}: H100/H200 SXM)")
    parser.add_argument("--to-ce", metavar="DIR", default=None,
                        help="also train one model to the CE target on the CIFAR-10 python batches in DIR")
    parser.add_argument("--to-ce-epochs", type=int, default=300, help="epoch cap of --to-ce (default: the preset's 300)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings to test the script: base width 8, 4 steps, 2 repeats, 1 and 2 jobs of 4 steps")
    parser.add_argument("--worker", metavar="SETTINGS", default=None, help=argparse.SUPPRESS)  # internal: one job
    args = parser.parse_args(argv)
    if args.quick:
        args.base_width, args.steps, args.repeats, args.job_steps = 8, 4, 2, 4
    if args.jobs is None:
        # each job is a new process importing torch; 1 + 2 of them keep --quick short on a CPU
        args.jobs = [1, 2] if args.quick else [1, 2, 4, 8]
    return args


def main() -> None:
    args = parse_args()
    if args.worker is not None:
        run_worker(json.loads(args.worker))
        return
    torch.set_num_threads(1)  # as a workflow job (threads: 1)
    hp, model_cfg, train_cfg = paper_settings(args)
    device = resolve_device(args.device)
    # as a training job sets them; the plain loop runs under the same
    numerics = configure_numerics(train_cfg["deterministic"], train_cfg["fp32_precision"])
    split = random_cifar_split(args.steps * hp["batch_size"], seed=0)
    trained, evaluated = images_per_epoch(split)
    training_flops, evaluation_flops = flops_per_image(hp, model_cfg, split, device)
    epoch_flops = flops_per_epoch(split, training_flops, evaluation_flops)

    if args.peak_tflops is not None:
        peak, peak_source = args.peak_tflops, "--peak-tflops"
    elif device.type == "cuda":
        peak, peak_source = DEFAULT_PEAK_TFLOPS, DEFAULT_PEAK_SOURCE
    else:
        peak, peak_source = None, "none for a CPU; pass --peak-tflops to get a fraction"
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    n_parameters = sum(p.numel() for p in model_for(hp, model_cfg, DeviceData.from_split(split, "cpu")).parameters())

    print(f"device: {device_name} ({device}), torch {torch.__version__}, 1 CPU thread per process")
    if device.type == "cuda" and args.peak_tflops is None and not any(g in device_name for g in ("H100", "H200")):
        print(f"WARNING: the default peak is an H100/H200 SXM's; this is a {device_name}: pass --peak-tflops")
    print(f"model: NiN depth {hp['depth']}, {model_cfg['base_width']} x width {hp['width']} channels, BatchNorm, "
          f"{n_parameters:,} parameters; SGD momentum 0.9, lr {hp['lr']}, batch {hp['batch_size']}, "
          f"augment {hp['augment']}, float32, deterministic {train_cfg['deterministic']}")
    print(f"float32 precision (train.fp32_precision {train_cfg['fp32_precision']!r}): "
          + ", ".join(f"{k} {v}" for k, v in numerics["fp32_precision"].items()))
    print(f"data: random uint8 3x32x32, 10 classes; a run = {args.epochs} epoch(s) of {args.steps} steps: "
          f"{trained} training images stepped on, then {evaluated} evaluated (training + test set), per epoch")
    print(f"FLOPs (FlopCounterMode, convolutions and matrix products): {training_flops / 1e6:.1f} M per training "
          f"image (forward + backward), {evaluation_flops / 1e6:.1f} M per evaluated image")
    print(f"peak: {f'{peak:g} TFLOP/s' if peak else 'n/a'} ({peak_source})")

    # Warm-up (CUDA context, allocator, kernel selection), then interleaved timed runs;
    # the order alternates so neither loop always runs second.
    package_loop_seconds(hp, model_cfg, train_cfg, split)
    plain_loop_seconds(hp, model_cfg, train_cfg, split)
    seconds = {"package": [], "plain": []}
    for repeat in range(args.repeats):
        for loop in ("package", "plain") if repeat % 2 == 0 else ("plain", "package"):
            run = package_loop_seconds if loop == "package" else plain_loop_seconds
            seconds[loop].append(run(hp, model_cfg, train_cfg, split))
    per_pair_ratio = statistics.median(plain / package for package, plain in zip(seconds["package"], seconds["plain"]))

    print(f"\n{'loop (median of ' + str(args.repeats) + ' interleaved runs)':<44}{'images/s':>10}{'min-max':>19}"
          f"{'TFLOP/s':>10}{'of peak':>10}")
    for loop, label in (("package", "package: prunability.train.train_model"), ("plain", "plain PyTorch loop")):
        rates = [args.epochs * trained / s for s in seconds[loop]]
        flops_per_s = args.epochs * epoch_flops / statistics.median(seconds[loop])
        print(f"{label:<44}{statistics.median(rates):>10.0f}{f'{min(rates):.0f}-{max(rates):.0f}':>19}"
              f"{flops_per_s / 1e12:>10.3f}{percent_of_peak(flops_per_s, peak):>10}")
    print(f"package speed / plain speed: {per_pair_ratio:.2f} (median over the {args.repeats} pairs; 1.00 = no overhead)")

    if device.type == "cuda":
        steps = args.steps
        syncs = host_syncs_in_one_epoch(hp, model_cfg, train_cfg, split)
        print(f"host synchronisations in one epoch of the package's loop ({steps} steps + evaluation): {syncs} "
              f"({syncs / steps:.3f} per step)")

    # Variants the package does not use by default, each against the float32 plain loop in the same pairs.
    variants = {"tf32 (train.fp32_precision: tf32)": dict(tf32=True),
                "bf16 autocast": dict(bf16=True), "channels_last": dict(channels_last=True),
                "bf16 + channels_last": dict(bf16=True, channels_last=True)}
    print(f"\n{'plain-loop variant (median of ' + str(args.repeats) + ' pairs)':<44}{'images/s':>10}{'vs float32':>12}")
    for label, options in variants.items():
        plain_loop_seconds(hp, model_cfg, train_cfg, split, **options)  # warm-up: its own kernels
        pairs = []
        for repeat in range(args.repeats):
            order = (False, True) if repeat % 2 == 0 else (True, False)
            timed = {v: plain_loop_seconds(hp, model_cfg, train_cfg, split, **(options if v else {})) for v in order}
            pairs.append((timed[False], timed[True]))
        ratio = statistics.median(base / variant for base, variant in pairs)
        rate = statistics.median(args.epochs * trained / variant for _, variant in pairs)
        print(f"{label:<44}{rate:>10.0f}{ratio:>11.2f}x")

    # Several jobs at once: each its own process, like the workflow's jobs sharing a GPU.
    worker_settings = {"hp": hp, "model": model_cfg, "train": train_cfg, "job_steps": args.job_steps}
    images_per_model = args.epochs_per_model * CIFAR10_TRAIN_IMAGES
    # per training image, each epoch's evaluation of the training and test sets included
    flops_per_trained_image = flops_per_epoch(split, training_flops, evaluation_flops) / trained
    print(f"\nseveral jobs on {device}: each trains its own model, {args.job_steps} steps then the evaluation "
          f"(train_model, one epoch); models/hour for {args.epochs_per_model:g} epochs of CIFAR-10 "
          f"({CIFAR10_TRAIN_IMAGES:,} training + {CIFAR10_TEST_IMAGES:,} test images evaluated per epoch) per model")
    print(f"{'jobs':>4}{'images/s (all)':>16}{'per job':>10}{f'vs {args.jobs[0]} job':>10}{'TFLOP/s':>10}{'of peak':>10}{'models/hour':>13}")
    first = None
    for jobs in args.jobs:
        result = run_concurrent_jobs(jobs, worker_settings)
        first = first or result["images_per_s"]
        flops_per_s = result["images_per_s"] * flops_per_trained_image
        print(f"{jobs:>4}{result['images_per_s']:>16.0f}{result['per_job_images_per_s']:>10.0f}"
              f"{result['images_per_s'] / first:>10.2f}{flops_per_s / 1e12:>10.3f}"
              f"{percent_of_peak(flops_per_s, peak):>10}{result['images_per_s'] * 3600 / images_per_model:>13.2f}")

    if args.to_ce:
        r = seconds_to_ce_target(hp, model_cfg, train_cfg, args.to_ce, args.to_ce_epochs)
        print(f"\none model to train CE < {train_cfg['ce_target']} on {r['images']} CIFAR-10 images ({args.to_ce}): "
              f"{'converged' if r['converged'] else 'NOT converged'} after {r['epochs']} epochs, {r['steps']} steps, "
              f"{r['seconds']:.0f} s (train CE {r['train_loss']:.4f}, test accuracy {r['test_acc']:.3f})")


if __name__ == "__main__":
    main()
