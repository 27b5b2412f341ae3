"""Flatness measures: PAC-Bayes sigma and magnitude-aware sigma' (Jiang et al. 2020,
eqs. 48/49/53, 56/57/61, as reimplemented by Dziugaite et al. 2020,
https://github.com/nitarshan/robust-generalization-measures) and worst-case sharpness
alpha and magnitude-aware alpha'.

Every search finds the perturbation scale at which the training accuracy drops by
``target_drop`` (0.1) to within ``drop_tol`` (0.01): bisection on [0, scale_max]
starting at scale_max / 2, at most ``search_iterations`` halvings (Dziugaite et al.'s
code: [0, 2], 15). The model is BN-folded first (``fold_bn``, as that code does),
evaluated in eval mode on the whole training set.

Noise convention (Jiang's definition, *not* Dziugaite et al.'s code's): the PAC-Bayes
posterior is N(w, sigma^2 I), i.e. each parameter gets noise of standard deviation sigma; the
magnitude-aware one has per-entry variance sigma'^2 w_i^2 + eps^2. That code passes sigma^2
(and sigma'^2 w_i^2 + eps^2) as the standard deviation; rankings by 1/sigma^2 are the
same, the bound values (48/49/56/57) are not. Noise goes on every parameter; the
bounds' norms are over the Conv/Linear weights (as in that code).

Worst-case sharpness: for a scale a, start from a uniform point of the box
|u_i| <= a (sharpness) or |u_i| <= a |w_i| + eps (magnitude-aware), take
``ascent_steps`` projected signed-gradient ascent steps on the training
cross-entropy (minibatches of ``ascent_batch_size``), and take the worst training
accuracy over ``restarts`` starts. The measures are 1/alpha^2 and 1/alpha'^2 (Jiang's
sharpness "flatness" measures; their equation numbers and the inner loop's details
are our reading of Jiang et al. 2020, not checked against their code).

Randomness comes from generators seeded by ``seed``; the same noise directions are
reused at every scale of a search (common random numbers), which makes the accuracy
drop a smooth, reproducible function of the scale.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models import fold_batchnorm
from ..pruning import prunable_weights
from ..train import evaluate
from . import register, register_family

# What the workflow gives this family's jobs (prunability.families).
FAMILY = {"name": "flatness", "cost": "sweep", "cluster_group": None, "inputs": {}, "order": 2, "roles": ["flatness"]}


# --------------------------------------------------------------------------- the scale search


@dataclass
class ScaleSearch:
    scale: float  # the last scale tried: the answer
    hit_target: bool  # its drop was within the tolerance of the target
    history: list[dict] = field(default_factory=list)  # scale, drop of every step


def search_scale(drop: Callable[[float], float], target: float, tol: float, scale_max: float, iterations: int) -> ScaleSearch:
    """Bisection for the scale at which ``drop(scale)`` (an accuracy drop that grows
    with the scale) is within ``tol`` of ``target``.

    Adapted from the ``_pacbayes_sigma`` loop of
    https://github.com/nitarshan/robust-generalization-measures/blob/master/data/generation/measures.py
    """
    lower, upper = 0.0, scale_max
    history = []
    for _ in range(iterations):
        scale = 0.5 * (lower + upper)
        d = drop(scale)
        history.append({"scale": scale, "drop": d})
        if abs(d - target) < tol:
            return ScaleSearch(scale, True, history)
        if d > target:
            upper = scale
        else:
            lower = scale
    return ScaleSearch(history[-1]["scale"], False, history)


# --------------------------------------------------------------------------- bounds


def pacbayes_bound(reference: torch.Tensor, sigma: float, m: int) -> float:
    """Jiang eqs. 48/49: ||ref||^2 / (4 sigma^2) + log(m / sigma) + 10."""
    return (reference.double().norm() ** 2).item() / (4 * sigma**2) + math.log(m / sigma) + 10


def mag_pacbayes_bound(reference: torch.Tensor, distance: torch.Tensor, sigma: float, m: int, eps: float) -> float:
    """Jiang eqs. 56/57 as Dziugaite et al.'s code: 1/4 sum_i log[(eps^2 + (sigma^2 + 1)
    ||ref||^2 / omega) / (eps^2 + sigma^2 (w_i - w0_i)^2)] + log(m / sigma) + 10, omega = number of weights."""
    reference, distance = reference.double(), distance.double()
    numerator = eps**2 + (sigma**2 + 1) * (reference.norm() ** 2) / reference.numel()
    denominator = eps**2 + sigma**2 * distance**2
    return 0.25 * torch.log(numerator / denominator).sum().item() + math.log(m / sigma) + 10


# --------------------------------------------------------------------------- perturbing a model


class Perturbed:
    """Sets a model's parameters to w + u and back; ``w`` are the parameters at creation."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.params = list(model.parameters())
        self.original = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def set(self, deltas: list[torch.Tensor]) -> None:
        for p, w, u in zip(self.params, self.original, deltas):
            p.copy_(w + u)

    def restore(self) -> None:
        self.set([torch.zeros_like(w) for w in self.original])


def _generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def worst_case_perturbation(
    perturbed: Perturbed,
    box: list[torch.Tensor],
    data,
    steps: int,
    step_size: float,
    batch_size: int,
    generator: torch.Generator,
) -> tuple[list[torch.Tensor], list[float]]:
    """Projected signed-gradient *ascent* of the training cross-entropy inside the box
    |u_i| <= box_i, from a uniform random start. Leaves the model at w + u and returns
    u and the minibatch loss before every step (and after the last) so callers can
    check the direction."""
    device = perturbed.original[0].device
    u = [(2 * torch.rand(b.shape, generator=generator, device=device) - 1) * b for b in box]
    n = len(data.y_train)
    losses = []
    batch = torch.randperm(n, generator=generator, device=device)[: min(batch_size, n)]
    for step in range(steps + 1):
        perturbed.set(u)
        x, y = data.normalized("train")[batch], data.y_train[batch]
        loss = F.cross_entropy(perturbed.model(x), y)
        losses.append(loss.item())
        if step == steps:
            break
        grads = torch.autograd.grad(loss, perturbed.params)
        with torch.no_grad():
            u = [torch.clamp(ui + step_size * b * g.sign(), -b, b) for ui, b, g in zip(u, box, grads)]
        batch = torch.randperm(n, generator=generator, device=device)[: min(batch_size, n)]
    return u, losses


# --------------------------------------------------------------------------- the family


@register_family(FAMILY["name"])
class FlatnessContext:
    def __init__(self, model, init_model, data, settings, log, summary):
        self.settings, self.data, self.log = settings, data, log
        fold = fold_batchnorm if settings["fold_bn"] else copy.deepcopy
        self.model = fold(model).eval()
        init = fold(init_model)
        self.weights = torch.cat([w.detach().flatten() for w in prunable_weights(self.model).values()])
        self.distance = self.weights - torch.cat([w.detach().flatten() for w in prunable_weights(init).values()])
        self.m = len(data.y_train)
        self.perturbed = Perturbed(self.model)
        self.device = self.weights.device
        self.base_acc = self._accuracy()  # now, before any perturbation

    def _accuracy(self) -> float:
        return evaluate(self.model, self.data, "train", self.settings["eval_batch_size"])[1]

    def _search(self, drop: Callable[[float], float], label: str) -> ScaleSearch:
        s = self.settings
        try:
            result = search_scale(drop, s["target_drop"], s["drop_tol"], s["scale_max"], s["search_iterations"])
        finally:
            self.perturbed.restore()
        last = result.history[-1]
        self.log(
            f"{label}: scale {result.scale:.5g}, accuracy drop {last['drop']:.4f} after {len(result.history)} steps"
            + ("" if result.hit_target else f" (target {s['target_drop']} +- {s['drop_tol']} not reached)")
        )
        return result

    def _noise_drop(self, std: Callable[[float, torch.Tensor], torch.Tensor]) -> Callable[[float], float]:
        """Mean training-accuracy drop over ``mc_draws`` Gaussian draws of per-entry std ``std(scale, w)``."""

        def drop(scale: float) -> float:
            accuracies = []
            for k in range(self.settings["mc_draws"]):
                g = _generator(self.device, self.settings["seed"] * 1000 + k)
                self.perturbed.set([std(scale, w) * torch.randn(w.shape, generator=g, device=self.device) for w in self.perturbed.original])
                accuracies.append(self._accuracy())
            return self.base_acc - sum(accuracies) / len(accuracies)

        return drop

    @cached_property
    def sigma(self) -> ScaleSearch:
        return self._search(self._noise_drop(lambda s, w: torch.full_like(w, s)), "PAC-Bayes sigma")

    @cached_property
    def sigma_mag(self) -> ScaleSearch:
        eps = self.settings["mag_eps"]
        return self._search(self._noise_drop(lambda s, w: torch.sqrt(s**2 * w**2 + eps**2)), "magnitude-aware PAC-Bayes sigma'")

    def _ascent_drop(self, box: Callable[[float, torch.Tensor], torch.Tensor]) -> Callable[[float], float]:
        """Training-accuracy drop at the worst of ``restarts`` ascents in the box ``box(scale, w)``."""
        s = self.settings

        def drop(scale: float) -> float:
            worst = 1.0
            for r in range(s["restarts"]):
                g = _generator(self.device, s["seed"] * 1000 + r)
                boxes = [box(scale, w) for w in self.perturbed.original]
                # leaves the model at w + u, the end point of the ascent
                worst_case_perturbation(self.perturbed, boxes, self.data, s["ascent_steps"], s["ascent_step_size"], s["ascent_batch_size"], g)
                worst = min(worst, self._accuracy())
            return self.base_acc - worst

        return drop

    @cached_property
    def alpha(self) -> ScaleSearch:
        return self._search(self._ascent_drop(lambda s, w: torch.full_like(w, s)), "worst-case sharpness alpha")

    @cached_property
    def alpha_mag(self) -> ScaleSearch:
        eps = self.settings["mag_eps"]
        return self._search(self._ascent_drop(lambda s, w: s * w.abs() + eps), "magnitude-aware worst-case sharpness alpha'")

    def details(self) -> dict:
        searches = {"sigma": self.sigma, "sigma_mag": self.sigma_mag, "alpha": self.alpha, "alpha_mag": self.alpha_mag}
        return {
            "base_train_acc": self.base_acc,
            "scales": {k: v.scale for k, v in searches.items()},
            "hit_target": {k: v.hit_target for k, v in searches.items()},
            "histories": {k: v.history for k, v in searches.items()},
        }


@register("flatness", "pacbayes_init", equation="48")
def pacbayes_init(ctx: FlatnessContext) -> float:
    """||w - w0||^2 / (4 sigma^2) + log(m / sigma) + 10, sigma from the PAC-Bayes search."""
    return pacbayes_bound(ctx.distance, ctx.sigma.scale, ctx.m)


@register("flatness", "pacbayes_orig", equation="49")
def pacbayes_orig(ctx: FlatnessContext) -> float:
    """||w||^2 / (4 sigma^2) + log(m / sigma) + 10."""
    return pacbayes_bound(ctx.weights, ctx.sigma.scale, ctx.m)


@register("flatness", "pacbayes_flatness", equation="53")
def pacbayes_flatness(ctx: FlatnessContext) -> float:
    """1 / sigma^2: sigma is the noise std at which training accuracy drops by the target."""
    return 1.0 / ctx.sigma.scale**2


@register("flatness", "pacbayes_mag_init", equation="56")
def pacbayes_mag_init(ctx: FlatnessContext) -> float:
    """Magnitude-aware PAC-Bayes bound around the initialisation, sigma' from its search."""
    return mag_pacbayes_bound(ctx.distance, ctx.distance, ctx.sigma_mag.scale, ctx.m, ctx.settings["mag_eps"])


@register("flatness", "pacbayes_mag_orig", equation="57")
def pacbayes_mag_orig(ctx: FlatnessContext) -> float:
    """Magnitude-aware PAC-Bayes bound around the origin."""
    return mag_pacbayes_bound(ctx.weights, ctx.distance, ctx.sigma_mag.scale, ctx.m, ctx.settings["mag_eps"])


@register("flatness", "pacbayes_mag_flatness", equation="61")
def pacbayes_mag_flatness(ctx: FlatnessContext) -> float:
    """1 / sigma'^2 for noise of variance sigma'^2 w_i^2 + eps^2."""
    return 1.0 / ctx.sigma_mag.scale**2


@register("flatness", "sharpness_flatness")
def sharpness_flatness(ctx: FlatnessContext) -> float:
    """1 / alpha^2: alpha is the box half-width |u_i| <= alpha at which worst-case ascent drops training accuracy by the target."""
    return 1.0 / ctx.alpha.scale**2


@register("flatness", "sharpness_mag_flatness")
def sharpness_mag_flatness(ctx: FlatnessContext) -> float:
    """1 / alpha'^2 for the magnitude-aware box |u_i| <= alpha' |w_i| + eps."""
    return 1.0 / ctx.alpha_mag.scale**2
