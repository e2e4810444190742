"""The OFA-MobileNetV3 subnet (Cai et al., ICLR 2020), built as a plain static network.

Skeleton of OFA's MobileNetV3-Large supernet: a 3x3 stride-2 stem (16 channels, h-swish), a
fixed MBConv block (3x3, expand 1, 16 channels, ReLU), five searchable stages of MBConv blocks,
a 1x1 final expand conv to 960 channels (h-swish), global average pooling, a 1x1 feature-mix
conv to 1280 channels (h-swish, no BN) and a dropout + linear classifier. Every channel count
is ``make_divisible(c * width_mult, 8)``; the middle width of a block is
``make_divisible(round(in_channels * expand), 8)``, as in OFA's ``DynamicMBConvLayer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

#: Searchable stages: (base width, stride of the first block, activation, squeeze-excite).
STAGES: tuple[tuple[int, int, str, bool], ...] = (
    (24, 2, "relu", False),
    (40, 2, "relu", True),
    (80, 2, "h_swish", False),
    (112, 1, "h_swish", True),
    (160, 2, "h_swish", True),
)
STEM_WIDTH = 16
FIRST_BLOCK_WIDTH = 16
FINAL_EXPAND_WIDTH = 960
LAST_CHANNEL = 1280
SE_RATIO = 0.25
DIVISOR = 8

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "h_swish": nn.Hardswish}


def make_divisible(value: float, divisor: int = DIVISOR, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never more than 10% down.

    The rounding rule of the TensorFlow MobileNet reference, which OFA uses for every width.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _out_resolution(resolution: int, stride: int) -> int:
    # Odd kernel k with padding k // 2: out = floor((r - 1) / stride) + 1.
    return (resolution - 1) // stride + 1


@dataclass(frozen=True)
class BlockSpec:
    """Shape of one MBConv block of a subnet (what a latency lookup table is keyed on).

    Attributes:
        stage: 0 for the fixed first block, 1..5 for the searchable stages.
        index: position of the block in its stage, from 1.
        kernel: depthwise kernel size.
        expand: expand ratio (1 for the fixed first block).
        in_channels: input channels.
        mid_channels: channels of the depthwise conv.
        out_channels: output channels.
        stride: stride of the depthwise conv.
        in_resolution: input height (= width) for the given input resolution.
        activation: ``"relu"`` or ``"h_swish"``.
        se: whether the block has a squeeze-excite module.
        residual: whether the block adds its input (stride 1 and equal channels).
    """

    stage: int
    index: int
    kernel: int
    expand: int
    in_channels: int
    mid_channels: int
    out_channels: int
    stride: int
    in_resolution: int
    activation: str
    se: bool
    residual: bool


def _spec(stage, index, kernel, expand, c_in, c_out, stride, resolution, act, se) -> BlockSpec:
    mid = c_in if expand == 1 else make_divisible(round(c_in * expand))
    residual = stride == 1 and c_in == c_out
    return BlockSpec(
        stage, index, kernel, expand, c_in, mid, c_out, stride, resolution, act, se, residual
    )


def block_specs(
    stages: Sequence[Sequence[tuple[int, int]]], width_mult: float = 1.0, resolution: int = 224
) -> list[BlockSpec]:
    """Every MBConv block of a subnet, the fixed first block included, in forward order.

    Args:
        stages: for each of the 5 searchable stages, the (kernel, expand) of its active blocks.
        width_mult: multiplier applied to every channel count before ``make_divisible``.
        resolution: input image height (= width); only fills ``in_resolution``.

    Returns:
        One ``BlockSpec`` per block.
    """
    if len(stages) != len(STAGES):
        raise ValueError(f"a mobilenetv3 subnet has {len(STAGES)} stages, got {len(stages)}")
    if width_mult <= 0:
        raise ValueError(f"width_mult must be > 0, got {width_mult}")
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    res = _out_resolution(int(resolution), 2)  # after the stride-2 stem
    c_in = make_divisible(STEM_WIDTH * width_mult)
    c_out = make_divisible(FIRST_BLOCK_WIDTH * width_mult)
    specs = [_spec(0, 1, 3, 1, c_in, c_out, 1, res, "relu", False)]
    c_in = c_out
    for stage, ((width, first_stride, act, se), blocks) in enumerate(
        zip(STAGES, stages, strict=True), start=1
    ):
        c_out = make_divisible(width * width_mult)
        for index, (kernel, expand) in enumerate(blocks, start=1):
            stride = first_stride if index == 1 else 1
            specs.append(_spec(stage, index, kernel, expand, c_in, c_out, stride, res, act, se))
            res = _out_resolution(res, stride)
            c_in = c_out
    return specs


def init_weights(root: nn.Module) -> None:
    """OFA's initialisation of every conv, BatchNorm and linear layer under ``root``.

    Convs: Kaiming normal (fan out), zero bias; BatchNorm: weight 1, bias 0; linear: normal
    with std 0.01, zero bias.
    """
    for module in root.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


class ConvBNAct(nn.Sequential):
    """Conv (no bias, 'same' padding) -> BatchNorm -> activation (none when ``act`` is None)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        act: str | None = None,
        groups: int = 1,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if act is not None:
            layers.append(_ACTIVATIONS[act](inplace=True))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excite: pool -> 1x1 reduce -> ReLU -> 1x1 expand -> h-sigmoid."""

    def __init__(self, channels: int, ratio: float = SE_RATIO) -> None:
        super().__init__()
        mid = make_divisible(channels * ratio)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, mid, 1)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(mid, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> [SE] -> 1x1 linear projection."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.spec = spec
        mid = spec.mid_channels
        self.expand = (
            None if spec.expand == 1 else ConvBNAct(spec.in_channels, mid, 1, act=spec.activation)
        )
        self.depthwise = ConvBNAct(
            mid, mid, spec.kernel, spec.stride, act=spec.activation, groups=mid
        )
        self.se = SqueezeExcite(mid) if spec.se else None
        self.project = ConvBNAct(mid, spec.out_channels, 1)
        self.residual = spec.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return out + x if self.residual else out


def stem_layer(in_channels: int, width_mult: float) -> ConvBNAct:
    """The 3x3 stride-2 stem conv (h-swish)."""
    return ConvBNAct(in_channels, make_divisible(STEM_WIDTH * width_mult), 3, 2, act="h_swish")


def head_layers(
    c_in: int, width_mult: float, dropout: float, num_classes: int
) -> list[tuple[str, nn.Module]]:
    """The layers after the last block, named: ``final_expand``, ``pool``, ``feature_mix``,
    ``classifier``."""
    final_expand = make_divisible(FINAL_EXPAND_WIDTH * width_mult)
    last_channel = make_divisible(LAST_CHANNEL * width_mult)
    return [
        ("final_expand", ConvBNAct(c_in, final_expand, 1, act="h_swish")),
        ("pool", nn.AdaptiveAvgPool2d(1)),
        # OFA's feature-mix layer: 1x1 conv without bias or BN, then h-swish.
        (
            "feature_mix",
            nn.Sequential(
                nn.Conv2d(final_expand, last_channel, 1, bias=False), nn.Hardswish(inplace=True)
            ),
        ),
        ("classifier", nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channel, num_classes))),
    ]


class MobileNetV3Network(nn.Module):
    """An OFA-MobileNetV3 subnet.

    Args:
        stages: for each of the 5 searchable stages, the (kernel, expand) of its active blocks.
        width_mult: multiplier applied to every channel count before ``make_divisible``.
        dropout: dropout rate before the classifier.
        num_classes: classifier outputs.
        in_channels: image channels.
    """

    def __init__(
        self,
        stages: Sequence[Sequence[tuple[int, int]]],
        width_mult: float = 1.0,
        dropout: float = 0.1,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        specs = block_specs(stages, width_mult)
        self.first_conv = stem_layer(in_channels, width_mult)
        self.blocks = nn.Sequential(*(MBConv(spec) for spec in specs))
        for name, layer in head_layers(specs[-1].out_channels, width_mult, dropout, num_classes):
            self.add_module(name, layer)
        self._init_weights()

    def _init_weights(self) -> None:
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final_expand(self.blocks(self.first_conv(x)))
        x = self.feature_mix(self.pool(x))
        return self.classifier(torch.flatten(x, 1))
