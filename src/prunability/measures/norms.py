"""Norm-, margin- and count-based measures of Jiang et al. 2020, keyed by Jiang's
equation numbers and following Dziugaite et al. 2020's reimplementation (adapted from
https://github.com/nitarshan/robust-generalization-measures/blob/master/data/generation/measures.py):

- with ``fold_bn`` (default, as that code) every BatchNorm is first folded into the
  Conv/Linear layer before it, which is exact in eval mode;
- "weights" are the Conv/Linear weight tensors W_1..W_d (no biases, no BN), conv
  kernels reshaped to (out, in * kh * kw); d is their number;
- spectral norms come in two variants: sigma_max of the reshaped matrix (that
  code's default) and, with the suffix ``_fft``, the operator norm of the convolution from
  the 2-D DFT of its kernel (Sedghi et al. 2019: the largest singular value, over all
  frequencies, of the out x in matrix of kernel DFT coefficients). Sedghi's value is
  exact for a stride-1 circular convolution. A zero-padded, strided conv is a
  restriction of the circular convolution on its *padded* input grid, so that grid
  is used and the value is an upper bound on the layer's operator norm (that code instead
  uses the image size for every layer, and numbers these variants 129-135, 141).
  A 1x1 conv and a Linear layer give the same value in both variants;
- values are reported *raw*: that code's final size adjustment (sqrt(v/m), or
  (v - log m)/2 for log measures) is monotone for one data set, so rank statistics
  do not change, and raw values are easier to check.
"""

from __future__ import annotations

import copy
import math
from functools import cached_property

import torch
from torch import nn

from ..models import fold_batchnorm
from ..pruning import prunable_weights
from . import register, register_family

# What the workflow gives this family's jobs (prunability.families).
FAMILY = {"name": "norms", "cost": "quick", "cluster_group": "train_and_quick_measures", "inputs": {}, "order": 1,
          "roles": ["norm"]}


def margins(model: nn.Module, data, batch_size: int) -> torch.Tensor:
    """Per training example: correct-class logit minus the largest other logit (eval mode)."""
    out = []
    with torch.no_grad():
        for start in range(0, len(data.y_train), batch_size):
            logits = model(data.normalized("train")[start : start + batch_size]).double()
            y = data.y_train[start : start + batch_size]
            correct = logits.gather(1, y[:, None]).squeeze(1)
            others = logits.scatter(1, y[:, None], float("-inf"))
            out.append(correct - others.max(1).values)
    return torch.cat(out)


@torch.no_grad()
def conv_spectral_norm(kernel: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Largest singular value of the circular convolution with ``kernel`` (out, in, kh, kw)
    on a ``grid`` = (h, w) input (Sedghi et al. 2019). Taps beyond the grid wrap around,
    as they do in a circular convolution."""
    out_c, in_c, kh, kw = kernel.shape
    if kh == kw == 1:
        # The DFT of a 1x1 kernel is kernel[:, :, 0, 0] at every frequency, whatever the
        # grid, so one SVD is the max over all of them. Taken as complex, as fft2 returns
        # it, so the value is bit for bit the per-frequency one (a real SVD can differ in
        # the last bit).
        matrix = kernel[:, :, 0, 0]
        return torch.linalg.matrix_norm(torch.complex(matrix, torch.zeros_like(matrix)), ord=2)
    h, w = grid
    wrapped = torch.zeros(out_c, in_c, h, w, dtype=kernel.dtype, device=kernel.device)
    for i in range(kh):
        for j in range(kw):
            wrapped[:, :, i % h, j % w] += kernel[:, :, i, j]
    coefficients = torch.fft.fft2(wrapped).permute(2, 3, 0, 1)  # (h, w, out, in)
    return torch.linalg.matrix_norm(coefficients, ord=2).max()


def circular_grids(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    """For every Conv2d (by weight name), the grid on which it is a restriction of a
    circular convolution: its input's spatial size plus the zero padding on both sides
    (none for circular padding). One forward pass records the input sizes."""
    grids, hooks = {}, []

    def record(name: str, module: nn.Conv2d, inputs) -> None:
        h, w = inputs[0].shape[-2:]
        if module.padding_mode == "circular" or module.padding == "valid":
            extra = (0, 0)
        elif module.padding == "same":
            extra = tuple(d * (k - 1) for d, k in zip(module.dilation, module.kernel_size))
        else:
            extra = tuple(2 * p for p in module.padding)
        grids[f"{name}.weight"] = (h + extra[0], w + extra[1])

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_pre_hook(lambda mod, inputs, name=name: record(name, mod, inputs)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return grids


@register_family(FAMILY["name"])
class NormsContext:
    def __init__(self, model, init_model, data, settings, log, summary):
        self.settings, self.data, self.log = settings, data, log
        fold = fold_batchnorm if settings["fold_bn"] else (lambda m: copy.deepcopy(m).eval())
        self.model = fold(model)
        self.init_model = fold(init_model)
        self.kernels = {k: w.detach().double() for k, w in prunable_weights(self.model).items()}
        self.init_kernels = {k: w.detach().double() for k, w in prunable_weights(self.init_model).items()}

    @cached_property
    def weights(self) -> list[torch.Tensor]:
        """W_l reshaped to (out, in * kh * kw)."""
        return [w.reshape(w.shape[0], -1) for w in self.kernels.values()]

    @cached_property
    def distances(self) -> list[torch.Tensor]:
        return [(w - self.init_kernels[k]).reshape(w.shape[0], -1) for k, w in self.kernels.items()]

    @property
    def depth(self) -> int:
        return len(self.weights)

    @staticmethod
    def _spec(matrices: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([torch.linalg.matrix_norm(w, ord=2) ** 2 for w in matrices])

    @cached_property
    def spec(self) -> torch.Tensor:
        """sigma_max(W_l)^2 of the reshaped matrices."""
        return self._spec(self.weights)

    @cached_property
    def dist_spec(self) -> torch.Tensor:
        """sigma_max(W_l - W_l^0)^2 of the reshaped matrices."""
        return self._spec(self.distances)

    @cached_property
    def grids(self) -> dict[str, tuple[int, int]]:
        return circular_grids(self.model, self.data.normalize(self.data.x_train[:1]))

    def _spec_fft(self, kernels: dict[str, torch.Tensor]) -> torch.Tensor:
        values = []
        for name, k in kernels.items():
            if k.dim() == 4:
                values.append(conv_spectral_norm(k, self.grids[name]) ** 2)
            else:
                values.append(torch.linalg.matrix_norm(k.reshape(k.shape[0], -1), ord=2) ** 2)
        return torch.stack(values)

    @cached_property
    def spec_fft(self) -> torch.Tensor:
        """Squared exact operator norms of the layers (Sedghi et al.'s FFT for convs)."""
        return self._spec_fft(self.kernels)

    @cached_property
    def dist_spec_fft(self) -> torch.Tensor:
        return self._spec_fft({k: w - self.init_kernels[k] for k, w in self.kernels.items()})

    @cached_property
    def fro(self) -> torch.Tensor:
        """||W_l||_F^2."""
        return torch.stack([(w**2).sum() for w in self.weights])

    @cached_property
    def dist_fro(self) -> torch.Tensor:
        """||W_l - W_l^0||_F^2."""
        return torch.stack([(d**2).sum() for d in self.distances])

    @cached_property
    def margin(self) -> float:
        """gamma = |k-th smallest training margin|, k = max(1, floor(m * margin_quantile))."""
        values = margins(self.model, self.data, self.settings["eval_batch_size"])
        k = max(1, int(math.floor(len(values) * self.settings["margin_quantile"])))
        return abs(torch.kthvalue(values.cpu(), k).values.item())

    @property
    def log_margin2(self) -> float:
        """2 log gamma (-inf for a zero margin, which makes the over-margin measures +inf)."""
        return 2 * math.log(self.margin) if self.margin > 0 else -math.inf

    @cached_property
    def path_norm(self) -> float:
        model = copy.deepcopy(self.model).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.pow_(2)
            x = torch.ones((1, *self.data.x_train.shape[1:]), device=self.data.x_train.device)
            return model(x).double().sum().item()


# --------------------------------------------------------------------------- counts, margin, Frobenius, path


@register("norms", "params", equation="20")
def params(ctx: NormsContext) -> float:
    """Number of weight entries (Conv/Linear weights)."""
    return float(sum(w.numel() for w in ctx.weights))


@register("norms", "inverse_margin", equation="22")
def inverse_margin(ctx: NormsContext) -> float:
    """1 / gamma^2 with gamma the 10th-percentile training margin."""
    return 1.0 / ctx.margin**2 if ctx.margin > 0 else math.inf


@register("norms", "log_prod_of_fro_over_margin", equation="36")
def log_prod_of_fro_over_margin(ctx: NormsContext) -> float:
    """sum_l log ||W_l||_F^2 - 2 log gamma."""
    return ctx.fro.log().sum().item() - ctx.log_margin2


@register("norms", "log_prod_of_fro", equation="37")
def log_prod_of_fro(ctx: NormsContext) -> float:
    """sum_l log ||W_l||_F^2."""
    return ctx.fro.log().sum().item()


@register("norms", "log_sum_of_fro_over_margin", equation="38")
def log_sum_of_fro_over_margin(ctx: NormsContext) -> float:
    """log d + (1/d) (sum_l log ||W_l||_F^2 - 2 log gamma)."""
    return math.log(ctx.depth) + (ctx.fro.log().sum().item() - ctx.log_margin2) / ctx.depth


@register("norms", "log_sum_of_fro", equation="39")
def log_sum_of_fro(ctx: NormsContext) -> float:
    """log d + (1/d) sum_l log ||W_l||_F^2."""
    return math.log(ctx.depth) + ctx.fro.log().sum().item() / ctx.depth


@register("norms", "fro_dist", equation="40")
def fro_dist(ctx: NormsContext) -> float:
    """Distance from initialisation: sum_l ||W_l - W_l^0||_F^2."""
    return ctx.dist_fro.sum().item()


@register("norms", "param_norm", equation="42")
def param_norm(ctx: NormsContext) -> float:
    """Sum of squared weights: sum_l ||W_l||_F^2."""
    return ctx.fro.sum().item()


@register("norms", "path_norm_over_margin", equation="43")
def path_norm_over_margin(ctx: NormsContext) -> float:
    """Path norm (44) / gamma^2."""
    return ctx.path_norm / ctx.margin**2 if ctx.margin > 0 else math.inf


@register("norms", "path_norm", equation="44")
def path_norm(ctx: NormsContext) -> float:
    """Sum of the outputs, on an all-ones input, of the network with every parameter squared (eval mode)."""
    return ctx.path_norm


@register("norms", "l2")
def l2(ctx: NormsContext) -> float:
    """||w||_2 over all Conv/Linear weights (the square root of 42)."""
    return math.sqrt(ctx.fro.sum().item())


@register("norms", "l2_dist")
def l2_dist(ctx: NormsContext) -> float:
    """||w - w^0||_2 over all Conv/Linear weights (the square root of 40)."""
    return math.sqrt(ctx.dist_fro.sum().item())


# --------------------------------------------------------------------------- spectral, two variants
# Each spectral measure is registered twice: on the reshaped-matrix norms (``spec``,
# ``dist_spec``) and on the exact conv operator norms (``spec_fft``, ``dist_spec_fft``).


def _log_prod_of_spec(ctx, spec, dist_spec):
    return spec.log().sum().item()


def _log_prod_of_spec_over_margin(ctx, spec, dist_spec):
    return spec.log().sum().item() - ctx.log_margin2


def _fro_over_spec(ctx, spec, dist_spec):
    return (ctx.fro / spec).sum().item()


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _log_spec_init_main(ctx, spec, dist_spec):
    return _log_prod_of_spec_over_margin(ctx, spec, dist_spec) + _log((ctx.dist_fro / spec).sum().item())


def _log_spec_orig_main(ctx, spec, dist_spec):
    return _log_prod_of_spec_over_margin(ctx, spec, dist_spec) + _log(_fro_over_spec(ctx, spec, dist_spec))


def _log_sum_of_spec_over_margin(ctx, spec, dist_spec):
    return math.log(ctx.depth) + _log_prod_of_spec_over_margin(ctx, spec, dist_spec) / ctx.depth


def _log_sum_of_spec(ctx, spec, dist_spec):
    return math.log(ctx.depth) + spec.log().sum().item() / ctx.depth


def _dist_spec_init(ctx, spec, dist_spec):
    return dist_spec.sum().item()


SPECTRAL_MEASURES = [  # (name, Jiang equation, formula, function)
    ("log_spec_init_main", "29", "log prod of spec over margin + log sum_l ||W_l - W_l^0||_F^2 / s_l", _log_spec_init_main),
    ("log_spec_orig_main", "30", "log prod of spec over margin + log sum_l ||W_l||_F^2 / s_l", _log_spec_orig_main),
    ("log_prod_of_spec_over_margin", "31", "sum_l log s_l - 2 log gamma", _log_prod_of_spec_over_margin),
    ("log_prod_of_spec", "32", "sum_l log s_l", _log_prod_of_spec),
    ("fro_over_spec", "33", "sum_l ||W_l||_F^2 / s_l", _fro_over_spec),
    ("log_sum_of_spec_over_margin", "34", "log d + (1/d) (sum_l log s_l - 2 log gamma)", _log_sum_of_spec_over_margin),
    ("log_sum_of_spec", "35", "log d + (1/d) sum_l log s_l", _log_sum_of_spec),
    ("dist_spec_init", "41", "sum_l sigma_max(W_l - W_l^0)^2", _dist_spec_init),
]


def _register_spectral(suffix: str, spec: str, dist_spec: str, norm: str) -> None:
    for name, equation, formula, fn in SPECTRAL_MEASURES:
        measure = lambda ctx, fn=fn: fn(ctx, getattr(ctx, spec), getattr(ctx, dist_spec))  # noqa: E731
        measure.__doc__ = f"{formula}; s_l = sigma_max(W_l)^2 {norm}."
        register("norms", name + suffix, equation=equation + (" (FFT)" if suffix else ""))(measure)


_register_spectral("", "spec", "dist_spec", "of the reshaped matrix")
_register_spectral("_fft", "spec_fft", "dist_spec_fft", "of the conv operator (Sedghi et al.'s FFT)")
