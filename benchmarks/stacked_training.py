"""Several same-architecture cells trained in one process as one stacked model (issue
12, "going beyond"): parameters and BatchNorm buffers stacked with
``torch.func.stack_module_state`` and every step ``vmap``-ed over the models, checked
against the per-model loop and timed beside it.

    python benchmarks/stacked_training.py                      # 8 default-study NiNs on digits, CPU
    python benchmarks/stacked_training.py --models 4 --steps 100 --device cuda

Each model has its own seed (initialisation and data order) and its own learning
rate, as grid cells that differ in lr or seed do; they share the architecture and the
batch size (a vmap needs one batch shape). The per-model loop is the textbook one
(torch.optim.SGD with momentum 0.9, as the default study). The stacked loop applies
the same SGD update by hand to the stacked tensors. Printed: the largest difference
between the stacked and the per-model weights after --steps steps (0 = bit-identical),
and the time of each, interleaved over --repeats runs.

This is a measurement, not a package feature: the workflow still trains one model per
cell.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad_and_value, stack_module_state

from prunability.data import build_split
from prunability.train import DeviceData, model_for

HP = dict(depth=2, width=1, batchnorm=True, dropout=0.0)
MODEL = dict(arch="nin", base_width=16, head_relu=True)
DATA = dict(source="digits", test_fraction=0.3, split_seed=0, max_train=None, max_test=None, local_dir=None,
            label_noise=0.0, label_noise_seed=0)
MOMENTUM = 0.9


def build(models: int, data: DeviceData, device) -> list[torch.nn.Module]:
    built = []
    for seed in range(models):
        torch.manual_seed(seed)
        built.append(model_for(HP, MODEL, data).to(device).train())
    return built


def batches(models: int, n: int, batch_size: int, steps: int, device) -> torch.Tensor:
    """(steps, models, batch) indices: each model's own seeded shuffles, epoch after epoch."""
    per_model = []
    for seed in range(models):
        generator, order = torch.Generator().manual_seed(seed), []
        while len(order) < steps * batch_size:
            shuffled = torch.randperm(n, generator=generator)
            order.extend(shuffled[: n - n % batch_size].tolist())  # whole batches only: one shape for vmap
        per_model.append(torch.tensor(order[: steps * batch_size]).view(steps, batch_size))
    return torch.stack(per_model, dim=1).to(device)


def per_model_loop(models, x, y, index, lrs) -> list[torch.nn.Module]:
    models = [copy.deepcopy(m) for m in models]
    for k, (model, lr) in enumerate(zip(models, lrs)):
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)
        for step in range(index.shape[0]):
            idx = index[step, k]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return models


def stacked_loop(models, x, y, index, lrs) -> tuple[dict, dict]:
    params, buffers = stack_module_state([copy.deepcopy(m) for m in models])
    base = copy.deepcopy(models[0]).to("meta")
    lr = torch.tensor(lrs, device=x.device)

    def loss_of(p, b, xb, yb):
        return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    # BatchNorm updates its running statistics in place: each model's slice of the stacked buffers
    step_fn = torch.func.vmap(grad_and_value(loss_of), in_dims=(0, 0, 0, 0), randomness="different")
    momentum = {name: None for name in params}
    for step in range(index.shape[0]):
        idx = index[step]  # (models, batch)
        grads, _ = step_fn(params, buffers, x[idx], y[idx])
        with torch.no_grad():
            for name, p in params.items():
                g = grads[name]
                buf = momentum[name]
                momentum[name] = g.clone() if buf is None else buf.mul_(MOMENTUM).add_(g)
                shape = (-1,) + (1,) * (p.dim() - 1)
                p.sub_(lr.view(shape) * momentum[name])
    return params, buffers


def largest_difference(models, params, buffers) -> tuple[float, float, str]:
    """The largest |stacked - per-model| entry over every weight and BN buffer, that
    difference relative to the tensor's largest |entry|, and the tensor's name."""
    worst = (0.0, 0.0, "")
    for k, model in enumerate(models):
        state = model.state_dict()
        for name, stacked in list(params.items()) + list(buffers.items()):
            if stacked.dtype.is_floating_point:
                diff = (stacked[k] - state[name]).abs().max().item()
                if diff > worst[0]:
                    worst = (diff, diff / state[name].abs().max().item(), f"{name} of model {k}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = DeviceData.from_split(build_split(DATA), device)
    x, y = data.normalized("train"), data.y_train
    models = build(args.models, data, device)
    lrs = [0.1 if k % 2 == 0 else 0.02 for k in range(args.models)]  # the default grid's two rates
    index = batches(args.models, len(y), args.batch_size, args.steps, device)
    print(f"{args.models} NiNs (depth 2, base width 16, BN) on digits, {args.steps} steps of batch {args.batch_size}, "
          f"lr {sorted(set(lrs))}, {device}, {args.threads} thread(s), torch {torch.__version__}")

    trained = per_model_loop(models, x, y, index, lrs)
    params, buffers = stacked_loop(models, x, y, index, lrs)
    diff, relative, where = largest_difference(trained, params, buffers)
    print(f"largest |stacked - per-model| over weights and BN buffers after {args.steps} steps: {diff:.3g} "
          f"({relative:.2g} of that tensor's largest entry; {where})")

    times = {"per-model": [], "stacked": []}
    for repeat in range(args.repeats):
        for name in ("per-model", "stacked") if repeat % 2 == 0 else ("stacked", "per-model"):
            run = per_model_loop if name == "per-model" else stacked_loop
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            run(models, x, y, index, lrs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"median of {args.repeats}: per-model {median['per-model']:.2f} s, stacked {median['stacked']:.2f} s; "
          f"speed-up {median['per-model'] / median['stacked']:.2f}x")


if __name__ == "__main__":
    main()
