"""Seconds per image of each kind: FLOPs counted by torch at an assumed throughput, or
each kind timed on random images of the preset's shape with the package's own code and
batch sizes; and the start-up of one job."""

from __future__ import annotations

import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .assumptions import ASSUMED_DEVICE


def _data(shape: tuple[int, int, int], n: int, classes: int, device):
    import torch

    from ..data import channel_stats
    from ..train import DeviceData

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    mean, std = channel_stats(x)
    return DeviceData(x.to(device), y.to(device), x[:2].to(device), y[:2].to(device),
                      mean.to(device).view(1, -1, 1, 1), std.to(device).view(1, -1, 1, 1), classes)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, min_s: float = 0.05, min_calls: int = 3, max_calls: int = 10) -> float:
    """Median seconds per call of ``fn`` after one warm-up call (the median: a busy
    neighbour on a shared machine slows some calls, not the cost model)."""
    fn()
    _sync(device)
    calls, started = [], time.perf_counter()
    while len(calls) < max_calls and (len(calls) < min_calls or time.perf_counter() - started < min_s):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        calls.append(time.perf_counter() - t0)
    return statistics.median(calls)


def svd_work(model, data) -> float:
    """Multiply-adds of the norms family's SVDs, ~ m n min(m, n) per matrix (measures/norms.py:
    spec and spec_fft, of the weights and of their distance from init; a conv of kernel
    > 1x1 has one SVD per frequency of its padded grid)."""
    from ..measures.norms import circular_grids
    from ..pruning import prunable_weights

    grids = circular_grids(model, data.normalize(data.x_train[:1]))
    work = 0.0
    for name, w in prunable_weights(model).items():
        m, rest = w.shape[0], w[0].numel()
        work += m * rest * min(m, rest)  # spec: the reshaped matrix
        if w.dim() == 4:
            freqs = grids[name][0] * grids[name][1] if w.shape[2] * w.shape[3] > 1 else 1
            work += freqs * m * w.shape[1] * min(m, w.shape[1])  # spec_fft
        else:
            work += m * rest * min(m, rest)
    return 2 * work  # the weights and their distance from init


def flop_counts(config: dict, hp: dict, shape, classes: int) -> dict:
    """FLOPs per image of each kind (torch's counter: convolutions and matrix products), and
    the norms family's SVD work, for one cell's model on the CPU."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from ..measures.hessian import hessian_vector_product
    from ..train import model_for

    data = _data(shape, 2, classes, "cpu")
    torch.manual_seed(0)
    model = model_for(hp, config["model"], data)
    x, y = data.normalized("train"), data.y_train
    counts = {}
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model.train()(x), y).backward()
    counts["step"] = counts["grad"] = counter.get_total_flops() / 2
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(x)
    counts["forward"] = counts["folded"] = counter.get_total_flops() / 2
    hvp, n_params = hessian_vector_product(model, data, 2, 2)
    with FlopCounterMode(display=False) as counter:
        hvp(torch.ones(n_params, dtype=torch.float64).numpy())
    counts["hvp"] = counter.get_total_flops() / 2
    counts["svd"] = svd_work(model, data)
    return counts


def assumed_seconds(config: dict, hp: dict, flops: dict, device: str) -> dict:
    """Seconds per image of each kind (and per model for the SVDs) at ASSUMED_DEVICE."""
    a = ASSUMED_DEVICE[device]
    eval_batch = config["measures"]["pruning"]["eval_batch_size"]
    return {
        "step": flops["step"] / a["flops"] + a["step_s"] / hp["batch_size"],
        "grad": flops["grad"] / a["flops"] + a["step_s"] / config["measures"]["flatness"]["ascent_batch_size"],
        "forward": flops["forward"] / a["flops"] + a["batch_s"] / eval_batch,
        "folded": flops["folded"] / a["flops"] + a["batch_s"] / eval_batch,
        "hvp": flops["hvp"] / a["flops"] + a["hvp_batch_s"] / config["measures"]["hessian"]["eval_batch_size"],
        "svd": flops["svd"] * 8 / a["svd_flops"],  # ~8 real flops per complex multiply-add
    }


# On a CPU, a timed call handles at most this many FLOPs (a second or two on one core);
# on a GPU every call has the size the jobs use.
CPU_FLOPS_PER_CALL = 2e10


def measure_seconds(config: dict, hp: dict, n: int, flops: dict, shape, classes: int, device) -> dict:
    """Seconds per image of each kind for one cell's model on ``device``, timed on random
    images with the code and batch sizes the jobs use: a training step, an ascent
    gradient, ``evaluate()`` of the training set (its loss and accuracy included; the
    BN-folded model for the measures), a Hessian-vector product over the Hessian's
    subset; and the norms family on a handful of images (its SVDs), per model."""
    import torch
    import torch.nn.functional as F

    from ..measures import compute_family
    from ..measures.hessian import hessian_vector_product
    from ..models import fold_batchnorm, has_batchnorm
    from ..train import evaluate, make_optimizer, model_for

    def images(real: int, kind: str) -> int:  # the images of one timed call
        return real if device.type != "cpu" else max(1, min(real, int(CPU_FLOPS_PER_CALL // flops[kind])))

    m = config["measures"]
    step_batch, grad_batch = hp["batch_size"], min(m["flatness"]["ascent_batch_size"], n)
    data = _data(shape, max(step_batch, grad_batch), classes, device)
    torch.manual_seed(hp["seed"])
    model = model_for(hp, config["model"], data).to(device)
    optimizer = make_optimizer(hp["optimizer"], model.parameters(), hp["lr"], hp["weight_decay"])
    x, y = data.normalized("train"), data.y_train

    def step():
        loss = F.cross_entropy(model(x[:step_batch]), y[:step_batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def grad():
        torch.autograd.grad(F.cross_entropy(model(x[:grad_batch]), y[:grad_batch]), list(model.parameters()))

    seconds = {"step": _timed(step, device) / step_batch, "grad": _timed(grad, device) / grad_batch}
    model.eval()
    folded = fold_batchnorm(model) if has_batchnorm(model) else model
    evaluated = _data(shape, images(n, "forward"), classes, device)
    for kind, net, batch in (("forward", model, config["train"]["eval_batch_size"]),
                             ("folded", folded, m["pruning"]["eval_batch_size"])):
        seconds[kind] = _timed(lambda: evaluate(net, evaluated, "train", batch), device) / len(evaluated.y_train)
    subset = images(min(m["hessian"]["max_examples"] or n, n), "hvp")
    hvp, n_params = hessian_vector_product(model, _data(shape, subset, classes, device), m["hessian"]["eval_batch_size"], subset)
    vector = torch.randn(n_params, dtype=torch.float64).numpy()
    seconds["hvp"] = _timed(lambda: hvp(vector), device, min_calls=1) / subset
    torch.manual_seed(hp["seed"] + 1)
    init = model_for(hp, config["model"], data).to(device)
    settings = dict(m["norms"], eval_batch_size=4)
    small = _data(shape, 4, classes, device)  # the norms family but for its margins pass: the SVDs
    seconds["svd"] = _timed(lambda: compute_family("norms", model, init, small, settings, log=lambda _: None), device, min_calls=1)
    return seconds


def startup_seconds(device: str) -> float:
    """One job's start-up: a one-rule Snakemake workflow whose script imports what the
    training and measure jobs import (and starts CUDA on a GPU), timed by Snakemake's own
    benchmark as the jobs are; without Snakemake, the imports in a fresh Python."""
    imports = "import torch, pandas, prunability.measures, prunability.train, prunability.data, prunability.io\n"
    if device == "cuda":
        imports += "torch.zeros(1, device='cuda')\n"
    with tempfile.TemporaryDirectory(prefix="prunability-cost-") as tmp:
        folder = Path(tmp)
        (folder / "job.py").write_text(imports + "open(snakemake.output[0], 'w').close()\n")
        (folder / "Snakefile").write_text('rule job:\n    output: "done"\n    benchmark: "job.tsv"\n    script: "job.py"\n')
        result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--quiet"], cwd=folder,
                                capture_output=True, text=True)
        if result.returncode == 0 and (folder / "job.tsv").is_file():
            with open(folder / "job.tsv", newline="") as f:
                return float(next(csv.DictReader(f, delimiter="\t"))["s"])
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", imports], check=True)
        return time.perf_counter() - started
