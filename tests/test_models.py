"""Tests for ``prunability.models``: NiN and MLP shapes, parameter counts by hand,
options (BatchNorm, dropout, head ReLU, width) and the model registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunability import models
from prunability.models import MODELS, NiN, build_model, register_model


def nin(depth=1, width=1.0, batchnorm=True, dropout=0.0, head_relu=False, base_width=4, in_channels=1, image_size=8):
    return build_model("nin", in_channels=in_channels, num_classes=10, image_size=image_size, depth=depth,
                       width=width, batchnorm=batchnorm, dropout=dropout, base_width=base_width, head_relu=head_relu)


def mlp(depth=1, width=1.0, batchnorm=True, dropout=0.0, head_relu=False, base_width=8, in_channels=1, image_size=8):
    return build_model("mlp", in_channels=in_channels, num_classes=10, image_size=image_size, depth=depth,
                       width=width, batchnorm=batchnorm, dropout=dropout, base_width=base_width, head_relu=head_relu)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count(model: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


# --------------------------------------------------------------------------- NiN


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("in_channels, size", [(1, 8), (3, 32)])
@pytest.mark.parametrize("batchnorm", [True, False])
def test_nin_output_shape(depth, in_channels, size, batchnorm):
    torch.manual_seed(0)
    model = nin(depth=depth, in_channels=in_channels, image_size=size, batchnorm=batchnorm)
    x = torch.randn(3, in_channels, size, size)
    assert model(x).shape == (3, 10)
    assert model.eval()(x).shape == (3, 10)


def test_nin_parameter_count_by_hand():
    # in_channels 3, channels round(2 * 1.5) = 3, 10 classes, depth 2.
    # block 1: conv3x3 3->3: 3*3*9 + 3 = 84; two conv1x1 3->3: 2 * (9 + 3) = 24   -> 108
    # block 2: conv3x3 3->3: 84;               two conv1x1:            24   -> 108
    # head: conv1x1 3->10: 30 + 10 = 40
    # BatchNorm: 3 per block x (gamma + beta of 3 channels) = 18 per block, head 2 * 10 = 20
    no_bn = 108 + 108 + 40
    with_bn = no_bn + 18 + 18 + 20
    assert no_bn == 256 and with_bn == 312
    kw = dict(depth=2, width=1.5, base_width=2, in_channels=3, image_size=32)
    assert n_params(nin(batchnorm=False, **kw)) == no_bn
    assert n_params(nin(batchnorm=True, **kw)) == with_bn


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("c, k", [(1, 4), (3, 5)])
def test_nin_parameter_count_formula(depth, batchnorm, c, k):
    per_block_tail = 2 * (k * k + k) + (6 * k if batchnorm else 0)
    expected = (c * k * 9 + k + per_block_tail) + (depth - 1) * (k * k * 9 + k + per_block_tail)
    expected += k * 10 + 10 + (20 if batchnorm else 0)
    model = nin(depth=depth, batchnorm=batchnorm, base_width=k, in_channels=c)
    assert n_params(model) == expected
    assert count(model, nn.Conv2d) == 3 * depth + 1
    assert count(model, nn.BatchNorm2d) == ((3 * depth + 1) if batchnorm else 0)


def test_nin_174_parameters_for_the_test_configuration():
    # 1 channel, 4 channels, depth 1, BN: (36+4) + 2*(16+4) + 24 + (40+10) + 20 = 174
    assert n_params(nin()) == 174


@pytest.mark.parametrize("base_width, width, channels", [(4, 1, 4), (4, 2, 8), (4, 1.3, 5), (8, 0.5, 4), (3, 1.75, 5)])
def test_nin_channels_are_rounded_product(base_width, width, channels):
    model = nin(base_width=base_width, width=width, depth=2)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs[:-1]] == [channels] * 6
    assert convs[-1].in_channels == channels and convs[-1].out_channels == 10
    assert convs[0].kernel_size == (3, 3) and convs[0].stride == (2, 2)
    assert all(m.kernel_size == (1, 1) for i, m in enumerate(convs) if i % 3 != 0)


def test_nin_rejects_zero_channels_and_depth():
    with pytest.raises(ValueError):
        nin(base_width=1, width=0.2)
    with pytest.raises(ValueError):
        nin(depth=0)


@pytest.mark.parametrize("dropout, expected", [(0.0, 0), (0.1, 1), (0.5, 1)])
@pytest.mark.parametrize("depth", [1, 3])
def test_nin_dropout_layers_iff_positive(dropout, expected, depth):
    model = nin(depth=depth, dropout=dropout)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == expected * depth
    assert all(d.p == dropout for d in drops)


def test_nin_head_relu_gives_nonnegative_outputs():
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    torch.manual_seed(1)
    with_relu = nin(head_relu=True, depth=2)
    torch.manual_seed(1)
    without = nin(head_relu=False, depth=2)
    for mode in (True, False):
        assert (with_relu.train(mode)(x) >= 0).all()
        assert (without.train(mode)(x) < 0).any()
    assert count(with_relu.head, nn.ReLU) == 1 and count(without.head, nn.ReLU) == 0
    # the ReLU has no parameters
    assert n_params(with_relu) == n_params(without)


def test_nin_is_nin_class():
    assert isinstance(nin(), NiN)


# --------------------------------------------------------------------------- MLP


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_mlp_shapes(depth):
    model = mlp(depth=depth, in_channels=3, image_size=4)
    assert model(torch.randn(5, 3, 4, 4)).shape == (5, 10)
    assert count(model, nn.Linear) == depth + 1


def test_mlp_parameter_count_by_hand():
    # 1 x 8 x 8 = 64 inputs, hidden round(8 * 2) = 16, depth 2, 10 classes
    # Linear 64->16: 1040; Linear 16->16: 272; Linear 16->10: 170; BN: 2 * 16 per hidden layer
    assert n_params(mlp(depth=2, width=2, batchnorm=False)) == 1040 + 272 + 170 == 1482
    assert n_params(mlp(depth=2, width=2, batchnorm=True)) == 1482 + 32 + 32 == 1546
    # the training tests' MLP: 64 -> 32 -> 10 with BN
    assert n_params(mlp(depth=1, base_width=32)) == 64 * 32 + 32 + 64 + 320 + 10 == 2474


def test_mlp_options():
    assert count(mlp(depth=2, dropout=0.3), nn.Dropout) == 2
    assert count(mlp(depth=2, dropout=0.0), nn.Dropout) == 0
    assert count(mlp(depth=2, batchnorm=True), nn.BatchNorm1d) == 2
    assert count(mlp(depth=2, batchnorm=False), nn.BatchNorm1d) == 0
    torch.manual_seed(0)
    x = torch.randn(8, 1, 8, 8)
    assert (mlp(head_relu=True)(x) >= 0).all()
    assert (mlp(head_relu=False)(x) < 0).any()
    first = next(m for m in mlp(base_width=4, width=1.3).modules() if isinstance(m, nn.Linear))
    assert first.out_features == 5 and first.in_features == 64


# --------------------------------------------------------------------------- registry


def test_build_model_unknown_arch_names_known_ones():
    with pytest.raises(KeyError) as info:
        build_model("resnet", in_channels=1)
    message = str(info.value)
    assert "resnet" in message and "'mlp'" in message and "'nin'" in message


def test_register_twice_raises_and_keeps_the_first(monkeypatch):
    monkeypatch.setattr(models, "MODELS", dict(MODELS))
    original = models.MODELS["nin"]
    with pytest.raises(ValueError, match="registered twice"):
        register_model("nin")(lambda **kw: nn.Identity())
    assert models.MODELS["nin"] is original

    @register_model("helper_identity")
    def identity(**kw):
        return nn.Identity()

    assert isinstance(build_model("helper_identity"), nn.Identity)
    with pytest.raises(ValueError):
        register_model("helper_identity")(identity)
    assert "helper_identity" not in MODELS  # the real registry is untouched


# --------------------------------------------------------------------------- ResNet18-k


def resnet(width=1.0, base_width=64, batchnorm=True, dropout=0.0, in_channels=3, image_size=32):
    return build_model("resnet18k", in_channels=in_channels, num_classes=10, image_size=image_size, depth=2,
                       width=width, batchnorm=batchnorm, dropout=dropout, base_width=base_width)


def test_resnet18k_with_k64_is_the_standard_cifar_resnet18():
    # By hand, for 10 classes (convs without bias, BN with 2 parameters per channel):
    stem = 3 * 64 * 9 + 2 * 64  # 1,856
    stage1 = 2 * (2 * 64 * 64 * 9 + 2 * 2 * 64)  # two blocks of two 64->64 convs: 147,968
    stage2 = (64 * 128 * 9 + 128 * 128 * 9 + 2 * 2 * 128 + 64 * 128 + 2 * 128) + (2 * 128 * 128 * 9 + 2 * 2 * 128)
    stage3 = (128 * 256 * 9 + 256 * 256 * 9 + 2 * 2 * 256 + 128 * 256 + 2 * 256) + (2 * 256 * 256 * 9 + 2 * 2 * 256)
    stage4 = (256 * 512 * 9 + 512 * 512 * 9 + 2 * 2 * 512 + 256 * 512 + 2 * 512) + (2 * 512 * 512 * 9 + 2 * 2 * 512)
    head = 512 * 10 + 10
    assert (stem, stage1, stage2, stage3, stage4) == (1_856, 147_968, 525_568, 2_099_712, 8_393_728)
    assert n_params(resnet()) == stem + stage1 + stage2 + stage3 + stage4 + head == 11_173_962


@pytest.mark.parametrize("k", [1, 2, 5])
def test_resnet18k_widths_and_output(k):
    model = resnet(width=k, base_width=1).eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 8 * 2 + 3  # stem, 8 blocks of 2, 3 projection shortcuts
    assert sorted({c.out_channels for c in convs}) == [k, 2 * k, 4 * k, 8 * k]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)  # any image size: global pooling


def test_resnet18k_without_batchnorm_has_biases_and_dropout_before_the_head():
    model = resnet(width=2, base_width=1, batchnorm=False, dropout=0.3)
    assert count(model, nn.BatchNorm2d) == 0
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert isinstance(list(model.children())[-2], nn.Dropout)
    with pytest.raises(ValueError, match="k >= 1"):
        resnet(width=0.1, base_width=1)
