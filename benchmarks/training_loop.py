"""The package's training loop against a minimal hand-written PyTorch loop.

Both train the same model (a cell of the default study: NiN, depth 2, width 1, base
width 16, BatchNorm) on the same data (the digits split of config.yaml) with the same
optimizer (SGD, momentum 0.9, lr 0.1, batch 32), the same number of steps, and the
same per-epoch evaluation (training and test loss and accuracy, eval mode). The runs
are interleaved (ours, plain, ours, plain, ...) in one process on one thread, so a
machine that slows down slows both; the ratio of the medians is printed:
plain time / our time (>= 1.0: ours is at least as fast).

    python benchmarks/training_loop.py [--epochs 5] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from prunability.data import build_split
from prunability.train import DeviceData, make_optimizer, model_for, train_model

HP = dict(depth=2, width=1, batchnorm=True, dropout=0.0, optimizer="momentum", lr=0.1, batch_size=32,
          weight_decay=0.0, augment=False, seed=0)
MODEL = dict(arch="nin", base_width=16, head_relu=True)
DATA = dict(source="digits", test_fraction=0.3, split_seed=0, max_train=None, max_test=None, local_dir=None,
            label_noise=0.0, label_noise_seed=0)


def train_config(epochs: int) -> dict:
    return dict(ce_target=0.01, max_epochs=epochs, stopping="budget", eval_batch_size=2048, checkpoint_every=1,
                checkpoint_min_interval_s=60, augment_pad=4, augment_flip=False, deterministic=True, fp32_precision="ieee", device="cpu")


def ours(split: dict, epochs: int) -> float:
    """Seconds for train_model (budget: exactly ``epochs`` epochs), checkpoints included."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        train_model(HP, MODEL, train_config(epochs), split, Path(folder) / "ckpt.pt", log=lambda line: None)
        return time.perf_counter() - start


@torch.no_grad()
def plain_evaluate(model, x, y, batch_size=2048) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])
        loss += F.cross_entropy(logits, y[start : start + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[start : start + batch_size]).sum().item()
    model.train()
    return loss / len(y), correct / len(y)


def plain(split: dict, epochs: int) -> float:
    """Seconds for the textbook loop: data normalised once, shuffle, step, evaluate."""
    start = time.perf_counter()
    data = DeviceData.from_split(split, "cpu")
    x_train, x_test = data.normalize(data.x_train), data.normalize(data.x_test)
    torch.manual_seed(HP["seed"])
    model = model_for(HP, MODEL, data)
    optimizer = make_optimizer(HP["optimizer"], model.parameters(), HP["lr"], HP["weight_decay"])
    generator = torch.Generator().manual_seed(HP["seed"])
    n = len(data.y_train)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, HP["batch_size"]):
            idx = order[i : i + HP["batch_size"]]
            loss = F.cross_entropy(model(x_train[idx]), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        plain_evaluate(model, x_train, data.y_train)
        plain_evaluate(model, x_test, data.y_test)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = build_split(DATA)
    steps = args.epochs * -(-len(split["y_train"]) // HP["batch_size"])
    print(f"NiN depth 2 width 1 (base width 16, BN) on digits ({len(split['y_train'])} training images), "
          f"{args.epochs} epochs = {steps} steps, batch {HP['batch_size']}, {args.threads} thread(s), torch {torch.__version__}")
    ours(split, 1), plain(split, 1)  # warm-up: allocator, kernels
    times = {"ours": [], "plain": []}
    for repeat in range(args.repeats):
        times["ours"].append(ours(split, args.epochs))
        times["plain"].append(plain(split, args.epochs))
        print(f"  repeat {repeat + 1}: ours {times['ours'][-1]:.3f} s, plain {times['plain'][-1]:.3f} s")
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"median: ours {median['ours']:.3f} s, plain {median['plain']:.3f} s")
    print(f"speed ratio (plain time / our time): {median['plain'] / median['ours']:.2f}x")


if __name__ == "__main__":
    main()
