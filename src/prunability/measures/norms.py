"""Norm-, margin- and count-based measures of Jiang et al. 2020 (papers.md §1.6),
keyed by Jiang's equation numbers and following Dziugaite et al.'s reimplementation
(source S5):

- with ``fold_bn`` (default, as S5) every BatchNorm is first folded into the
  Conv/Linear layer before it, which is exact in eval mode;
- "weights" are the Conv/Linear weight tensors W_1..W_d (no biases, no BN), conv
  kernels reshaped to (out, in * kh * kw); d is their number;
- values are reported *raw*: S5's final size adjustment (sqrt(v/m), or
  (v - log m)/2 for log measures) is monotone for one data set, so rank statistics
  do not change, and raw values are easier to check.
"""

from __future__ import annotations

import copy
import math
from functools import cached_property

import torch
from torch import nn

from ..pruning import prunable_weights
from . import register, register_family

_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every BatchNorm folded into the Conv/Linear layer
    directly before it (same container) and replaced by ``nn.Identity``.

    For BN(y) = gamma (y - mu) / sqrt(var + eps) + beta after y = W x + b, the
    folded layer has W' = s W (per output channel), b' = s (b - mu) + beta with
    s = gamma / sqrt(var + eps); the network function in eval mode is unchanged.
    """
    model = copy.deepcopy(model).eval()
    for parent in model.modules():
        children = list(parent.named_children())
        for i, (name, child) in enumerate(children):
            if not isinstance(child, _BATCHNORMS):
                continue
            prev = children[i - 1][1] if i > 0 else None
            if not isinstance(prev, _FOLDABLE):
                raise ValueError(f"cannot fold BatchNorm {name!r}: it does not directly follow a Conv/Linear layer")
            gamma = child.weight if child.affine else torch.ones_like(child.running_var)
            beta = child.bias if child.affine else torch.zeros_like(child.running_mean)
            scale = gamma / torch.sqrt(child.running_var + child.eps)
            shape = (-1,) + (1,) * (prev.weight.dim() - 1)
            prev.weight.mul_(scale.view(shape))
            bias = prev.bias if prev.bias is not None else torch.zeros_like(child.running_mean)
            new_bias = scale * (bias - child.running_mean) + beta
            prev.bias = nn.Parameter(new_bias)
            setattr(parent, name, nn.Identity())
    return model


def margins(model: nn.Module, data, batch_size: int) -> torch.Tensor:
    """Per training example: correct-class logit minus the largest other logit (eval mode)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(data.y_train), batch_size):
            logits = model(data.normalize(data.x_train[start : start + batch_size])).double()
            y = data.y_train[start : start + batch_size]
            correct = logits.gather(1, y[:, None]).squeeze(1)
            others = logits.scatter(1, y[:, None], float("-inf"))
            out.append(correct - others.max(1).values)
    return torch.cat(out)


@register_family("norms")
class NormsContext:
    def __init__(self, model, init_model, data, settings, log):
        self.settings, self.data, self.log = settings, data, log
        fold = fold_batchnorm if settings["fold_bn"] else (lambda m: copy.deepcopy(m).eval())
        self.model = fold(model)
        self.init_model = fold(init_model)

    @staticmethod
    def _matrices(model: nn.Module) -> list[torch.Tensor]:
        return [w.detach().double().reshape(w.shape[0], -1) for w in prunable_weights(model).values()]

    @cached_property
    def weights(self) -> list[torch.Tensor]:
        return self._matrices(self.model)

    @cached_property
    def distances(self) -> list[torch.Tensor]:
        return [w - w0 for w, w0 in zip(self.weights, self._matrices(self.init_model))]

    @property
    def depth(self) -> int:
        return len(self.weights)

    @cached_property
    def spec(self) -> torch.Tensor:
        """sigma_max(W_l)^2 of the reshaped matrices."""
        return torch.stack([torch.linalg.matrix_norm(w, ord=2) ** 2 for w in self.weights])

    @cached_property
    def fro(self) -> torch.Tensor:
        """||W_l||_F^2."""
        return torch.stack([(w**2).sum() for w in self.weights])

    @cached_property
    def margin(self) -> float:
        """gamma = |k-th smallest training margin|, k = max(1, floor(m * margin_quantile))."""
        values = margins(self.model, self.data, self.settings["eval_batch_size"])
        k = max(1, int(math.floor(len(values) * self.settings["margin_quantile"])))
        return abs(torch.kthvalue(values.cpu(), k).values.item())


@register("norms", "params", equation="20")
def params(ctx: NormsContext) -> float:
    """Number of weight entries (Conv/Linear weights)."""
    return float(sum(w.numel() for w in ctx.weights))


@register("norms", "inverse_margin", equation="22")
def inverse_margin(ctx: NormsContext) -> float:
    """1 / gamma^2 with gamma the 10th-percentile training margin."""
    return 1.0 / ctx.margin**2 if ctx.margin > 0 else math.inf


@register("norms", "log_prod_of_spec", equation="32")
def log_prod_of_spec(ctx: NormsContext) -> float:
    """sum_l log sigma_max(W_l)^2."""
    return ctx.spec.log().sum().item()


@register("norms", "log_sum_of_spec", equation="35")
def log_sum_of_spec(ctx: NormsContext) -> float:
    """log d + (1/d) sum_l log sigma_max(W_l)^2."""
    return math.log(ctx.depth) + ctx.spec.log().sum().item() / ctx.depth


@register("norms", "log_prod_of_fro", equation="37")
def log_prod_of_fro(ctx: NormsContext) -> float:
    """sum_l log ||W_l||_F^2."""
    return ctx.fro.log().sum().item()


@register("norms", "log_sum_of_fro", equation="39")
def log_sum_of_fro(ctx: NormsContext) -> float:
    """log d + (1/d) sum_l log ||W_l||_F^2."""
    return math.log(ctx.depth) + ctx.fro.log().sum().item() / ctx.depth


@register("norms", "fro_dist", equation="40")
def fro_dist(ctx: NormsContext) -> float:
    """Distance from initialisation: sum_l ||W_l - W_l^0||_F^2."""
    return sum((d**2).sum().item() for d in ctx.distances)


@register("norms", "param_norm", equation="42")
def param_norm(ctx: NormsContext) -> float:
    """Sum of squared weights: sum_l ||W_l||_F^2."""
    return ctx.fro.sum().item()


@register("norms", "path_norm", equation="44")
def path_norm(ctx: NormsContext) -> float:
    """Sum of the outputs, on an all-ones input, of the network with every parameter squared (eval mode)."""
    model = copy.deepcopy(ctx.model).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.pow_(2)
        x = torch.ones((1, *ctx.data.x_train.shape[1:]), device=ctx.data.x_train.device)
        return model(x).double().sum().item()
