"""Model builders, registered by name so a config can pick one.

NiN follows the PyTorch reimplementation of Jiang et al.'s Network-in-Network by
Dziugaite et al. 2020 (adapted from data/generation/models.py of
https://github.com/nitarshan/robust-generalization-measures): each block is
conv3x3/stride 2 -> [BN] -> ReLU -> conv1x1 -> [BN] -> ReLU -> conv1x1 -> [BN] -> ReLU,
followed by dropout when p > 0; ``depth`` blocks of ``base_width * width``
channels; the head is conv1x1 to the classes -> [BN] -> (ReLU, as in that code, optional)
-> global average pool.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    def decorator(fn):
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = fn
        return fn

    return decorator


def build_model(arch: str, **kwargs) -> nn.Module:
    if arch not in MODELS:
        raise KeyError(f"unknown model architecture {arch!r}; known: {sorted(MODELS)}")
    return MODELS[arch](**kwargs)


class NiNBlock(nn.Sequential):
    def __init__(self, in_channels: int, channels: int, batchnorm: bool, dropout: float):
        layers: list[nn.Module] = []
        for i in range(3):
            conv = (
                nn.Conv2d(in_channels, channels, kernel_size=3, stride=2, padding=1)
                if i == 0
                else nn.Conv2d(channels, channels, kernel_size=1)
            )
            layers.append(conv)
            if batchnorm:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class NiN(nn.Module):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int,
        width: int | float,
        base_width: int,
        batchnorm: bool,
        dropout: float,
        head_relu: bool,
    ):
        super().__init__()
        channels = int(round(base_width * width))
        if depth < 1 or channels < 1:
            raise ValueError(f"NiN needs depth >= 1 and channels >= 1, got depth={depth}, channels={channels}")
        blocks = [NiNBlock(in_channels, channels, batchnorm, dropout)]
        blocks += [NiNBlock(channels, channels, batchnorm, dropout) for _ in range(depth - 1)]
        self.blocks = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Conv2d(channels, num_classes, kernel_size=1)]
        if batchnorm:
            head.append(nn.BatchNorm2d(num_classes))
        if head_relu:
            head.append(nn.ReLU())
        head += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


@register_model("nin")
def nin(
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    depth: int,
    width: float,
    batchnorm: bool,
    dropout: float,
    base_width: int = 8,
    head_relu: bool = False,
) -> nn.Module:
    return NiN(in_channels, num_classes, depth, width, base_width, batchnorm, dropout, head_relu)


@register_model("mlp")
def mlp(
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    depth: int,
    width: float,
    batchnorm: bool,
    dropout: float,
    base_width: int = 8,
    head_relu: bool = False,
) -> nn.Module:
    """A small fully connected net (tests and quick checks); ``depth`` hidden layers."""
    hidden = int(round(base_width * width))
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = in_channels * image_size * image_size
    for _ in range(depth):
        layers.append(nn.Linear(fan_in, hidden))
        if batchnorm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        fan_in = hidden
    layers.append(nn.Linear(fan_in, num_classes))
    if head_relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3 -> [BN] -> ReLU -> conv3x3 -> [BN], plus the shortcut
    (identity, or conv1x1 -> [BN] when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int, batchnorm: bool):
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if batchnorm else (lambda c: nn.Identity())
        # Convs have a bias only without BN (BN's beta plays its part).
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=not batchnorm),
            norm(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=not batchnorm),
            norm(channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=not batchnorm), norm(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


@register_model("resnet18k")
def resnet18k(
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    depth: int,
    width: float,
    batchnorm: bool,
    dropout: float,
    base_width: int = 8,
    head_relu: bool = False,
) -> nn.Module:
    """ResNet18-k (Nakkiran et al. 2020): the CIFAR ResNet18 (conv3x3 stem,
    no max-pool) with stage widths [k, 2k, 4k, 8k], k = round(base_width * width); k = 64
    is the standard ResNet18. Two basic blocks per stage, stride 2 from the second stage,
    global average pool and a linear head. ``depth`` is not used (the depth is fixed at
    18 layers; check_config rejects a depth axis); dropout, if > 0, acts before the head.
    Nakkiran et al. may have used the pre-activation variant; this is the post-activation
    one (He et al. 2016a)."""
    k = int(round(base_width * width))
    if k < 1:
        raise ValueError(f"ResNet18-k needs k >= 1, got k = {k} (base_width {base_width} x width {width})")
    stem = nn.Sequential(
        nn.Conv2d(in_channels, k, 3, padding=1, bias=not batchnorm),
        nn.BatchNorm2d(k) if batchnorm else nn.Identity(),
        nn.ReLU(),
    )
    stages, channels = [], k
    for i, out in enumerate((k, 2 * k, 4 * k, 8 * k)):
        stride = 1 if i == 0 else 2
        stages += [BasicBlock(channels, out, stride, batchnorm), BasicBlock(out, out, 1, batchnorm)]
        channels = out
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout > 0:
        head.append(nn.Dropout(dropout))
    head.append(nn.Linear(channels, num_classes))
    if head_relu:
        head.append(nn.ReLU())
    return nn.Sequential(stem, *stages, *head)


# --------------------------------------------------------------------------- BatchNorm folding

_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every BatchNorm folded into the Conv/Linear layer
    directly before it (same container) and replaced by ``nn.Identity``.

    For BN(y) = gamma (y - mu) / sqrt(var + eps) + beta after y = W x + b, the
    folded layer has W' = s W (per output channel), b' = s (b - mu) + beta with
    s = gamma / sqrt(var + eps); the network function in eval mode is unchanged.
    Adapted from ``_reparam`` in Dziugaite et al. 2020's code,
    https://github.com/nitarshan/robust-generalization-measures/blob/master/data/generation/measures.py
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


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, _BATCHNORMS) for m in model.modules())
