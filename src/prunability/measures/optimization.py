"""Optimization-speed measures of Jiang et al. 2020: optimizer steps
until the training cross-entropy first fell below 0.1, steps from 0.1 to 0.01, and
the gradient noise at the end of training.

The step counts come from the trainer (train.json); the training CE is checked at
epoch ends (prunability.train), so they have the resolution of one epoch. A model that
never reached a milestone gets NaN.

Gradient noise = (1/B) sum_b ||g_b - g_mean||^2: the total variance of the
minibatch gradients of the training cross-entropy over one seeded pass through
the training set in B full batches (a last partial batch is dropped so every
gradient has the same batch size), at the final weights, which are not updated.
``batch_size`` null means the cell's own training batch size; ``mode`` "train"
takes the gradients as the optimizer saw them (dropout on, BN batch statistics),
"eval" without either. The exact protocol of Jiang et al. is not known.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import register, register_family

# What the workflow gives this family's jobs (prunability.families).
FAMILY = {"name": "optimization", "cost": "quick", "cluster_group": "train_and_quick_measures", "inputs": {},
          "order": 4, "roles": []}


def gradient_noise(model: nn.Module, data, batch_size: int, train_mode: bool, seed: int) -> float:
    """Total variance of full-size minibatch gradients over one seeded pass (weights unchanged)."""
    model = copy.deepcopy(model).train(train_mode)  # a copy: train mode updates BN running stats
    params = [p for p in model.parameters() if p.requires_grad]
    n = len(data.y_train)
    batches = n // batch_size
    if batches < 2:
        raise ValueError(f"gradient noise needs at least 2 full batches; the training set has {n} examples, batch size {batch_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(data.y_train.device)
    total, total_sq = None, 0.0
    devices = [data.y_train.device] if data.y_train.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # seeds the dropout masks, leaves the caller's RNG alone
        torch.manual_seed(seed)
        for b in range(batches):
            idx = order[b * batch_size : (b + 1) * batch_size]
            loss = F.cross_entropy(model(data.normalized("train")[idx]), data.y_train[idx])
            g = torch.cat([t.flatten() for t in torch.autograd.grad(loss, params)]).double()
            total = g if total is None else total + g
            total_sq += (g * g).sum().item()
    mean = total / batches
    return max(0.0, total_sq / batches - (mean * mean).sum().item())


def _steps(summary: dict, threshold: str) -> float:
    value = summary.get(f"steps_to_ce_{threshold}")
    return math.nan if value is None else float(value)


@register_family(FAMILY["name"])
class OptimizationContext:
    def __init__(self, model, init_model, data, settings, log, summary):
        self.model, self.data, self.settings, self.summary = model, data, settings, summary

    @property
    def batch_size(self) -> int:
        return self.settings["batch_size"] or self.summary["hyperparameters"]["batch_size"]


# Orientation +1: slower optimization and noisier final gradients are taken to predict
# a larger gap (Jiang et al.'s hypotheses); the statistics show the measured sign.
@register("optimization", "steps_to_ce_0.1", orientation=+1)
def steps_to_ce_01(ctx: OptimizationContext) -> float:
    """Optimizer steps until the training cross-entropy first fell below 0.1 (epoch resolution)."""
    return _steps(ctx.summary, "0.1")


@register("optimization", "steps_ce_0.1_to_0.01", orientation=+1)
def steps_01_to_001(ctx: OptimizationContext) -> float:
    """Optimizer steps from training CE 0.1 to 0.01 (epoch resolution)."""
    return _steps(ctx.summary, "0.01") - _steps(ctx.summary, "0.1")


@register("optimization", "grad_noise", orientation=+1)
def grad_noise(ctx: OptimizationContext) -> float:
    """Total variance of minibatch gradients of the training loss at the final weights."""
    s = ctx.settings
    return gradient_noise(ctx.model, ctx.data, ctx.batch_size, s["mode"] == "train", s["seed"])
