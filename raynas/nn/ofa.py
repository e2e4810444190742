"""The Once-for-All elastic MobileNetV3 supernet (Cai et al., "Once-for-All", ICLR 2020).

One set of weights serves every subnet of the ``mobilenetv3`` space (the skeleton of
``raynas.nn.mobilenetv3``):

* elastic kernel: each depthwise conv holds a 7x7 kernel; 5x5 is its centre and 3x3 the centre
  of the 5x5, each passed through a learned kernel transformation matrix (25x25 for 5x5, 9x9 for
  3x3, one per layer, shared by all channels, initialised to the identity) as in OFA's
  ``DynamicSeparableConv2d``; ``kernel_transform=False`` takes plain centre crops instead.
* elastic expand: a block with expand ratio ``e`` uses the first
  ``make_divisible(round(c_in * e))`` middle channels of the expand conv, depthwise conv,
  squeeze-excite and projection, and BatchNorm over those channels only (``sort_channels``
  puts the most important channels first, as OFA's ``re_organize_middle_weights``).
* elastic depth: a stage with depth ``d`` runs its first ``d`` blocks.

``set_active(stages)`` picks the subnet ``forward`` runs; ``subnet(stages)`` copies it out as a
standalone ``MobileNetV3Network`` with the same outputs. ``stages`` is, per searchable stage,
the ``(kernel, expand)`` of its active blocks (``MobileNetV3Genotype.blocks``); any object with
a ``.blocks`` attribute is read as a genotype.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from raynas.nn.mobilenetv3 import (
    FIRST_BLOCK_WIDTH,
    SE_RATIO,
    STAGES,
    BlockSpec,
    MBConv,
    MobileNetV3Network,
    block_specs,
    head_layers,
    init_weights,
    make_divisible,
    stem_layer,
)

# The supernet's elastic range: OFA-MobileNetV3's (the ``mobilenetv3`` space uses the same
# values; this layer does not import search spaces).
KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANDS: tuple[int, ...] = (3, 4, 6)
DEPTHS: tuple[int, ...] = (2, 3, 4)
NUM_STAGES = len(STAGES)
MAX_KERNEL = max(KERNELS)
MAX_EXPAND = max(EXPANDS)
MAX_DEPTH = max(DEPTHS)

Stages = tuple[tuple[tuple[int, int], ...], ...]

#: The largest subnet: every stage at depth 4, kernel 7, expand 6.
LARGEST: Stages = tuple(((MAX_KERNEL, MAX_EXPAND),) * MAX_DEPTH for _ in range(NUM_STAGES))
#: The smallest subnet: every stage at depth 2, kernel 3, expand 3.
SMALLEST: Stages = tuple(((min(KERNELS), min(EXPANDS)),) * min(DEPTHS) for _ in range(NUM_STAGES))

_ACTIVATIONS = {"relu": F.relu, "h_swish": F.hardswish}


def _mid_channels(c_in: int, expand: int) -> int:
    return make_divisible(round(c_in * expand))


def _se_channels(mid: int) -> int:
    return make_divisible(mid * SE_RATIO)


def check_stages(stages: Any) -> Stages:
    """``stages`` (or a genotype's ``.blocks``) as plain int tuples, checked against the range.

    Raises:
        ValueError: naming the stage/block slot and the value outside the elastic range.
    """
    stages = getattr(stages, "blocks", stages)
    if isinstance(stages, str | bytes) or not isinstance(stages, Sequence):
        raise ValueError(f"stages must be {NUM_STAGES} lists of (kernel, expand), got {stages!r}")
    if len(stages) != NUM_STAGES:
        raise ValueError(f"the supernet has {NUM_STAGES} stages, got {len(stages)}")
    checked = []
    for s, stage in enumerate(stages, start=1):
        if isinstance(stage, str | bytes) or not isinstance(stage, Sequence):
            raise ValueError(f"stage s{s} must be a list of (kernel, expand), got {stage!r}")
        if len(stage) not in DEPTHS:
            raise ValueError(
                f"stage s{s} has depth {len(stage)}, outside the supernet's elastic range "
                f"{', '.join(map(str, DEPTHS))}"
            )
        pairs = []
        for b, pair in enumerate(stage, start=1):
            if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(f"block s{s}.b{b} needs (kernel, expand), got {pair!r}")
            kernel, expand = pair
            for name, value, allowed in (("kernel", kernel, KERNELS), ("expand", expand, EXPANDS)):
                if isinstance(value, bool) or value not in allowed:
                    raise ValueError(
                        f"s{s}.b{b}.{name} {value!r} is outside the supernet's elastic range "
                        f"{', '.join(map(str, allowed))}"
                    )
            pairs.append((int(kernel), int(expand)))
        checked.append(tuple(pairs))
    return tuple(checked)


def random_stages(
    rng: np.random.Generator,
    kernels: Sequence[int] = KERNELS,
    expands: Sequence[int] = EXPANDS,
    depths: Sequence[int] = DEPTHS,
) -> Stages:
    """A random subnet: per stage a depth from ``depths``, per block a kernel and expand ratio.

    Each value is drawn uniformly from its list (as OFA's ``sample_active_subnet``); pass a
    single-value list to hold a dimension fixed (e.g. ``expands=(6,)`` in the kernel phase).

    Args:
        rng: the source of randomness.
        kernels: kernel sizes to draw from.
        expands: expand ratios to draw from.
        depths: stage depths to draw from.

    Returns:
        The stages of the subnet, checked against the elastic range.
    """
    stages = []
    for _ in range(NUM_STAGES):
        depth = int(rng.choice(depths))
        stages.append(
            tuple((int(rng.choice(kernels)), int(rng.choice(expands))) for _ in range(depth))
        )
    return check_stages(stages)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Re-estimate every BatchNorm's running statistics of ``model`` as the exact average over
    ``batches`` (train-mode forwards without gradients), as OFA does before scoring a subnet
    with inherited weights. Leaves the model in eval mode, momenta as they were.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: every batch weighs the same
    model.train()
    try:
        for x in batches:
            model(x)
    finally:
        for bn, momentum in zip(norms, momenta, strict=True):
            bn.momentum = momentum
        model.eval()


def _batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn`` over the first ``x.shape[1]`` channels (running stats updated in place)."""
    c = x.shape[1]
    training = bn.training or bn.running_mean is None
    if bn.training and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    return F.batch_norm(
        x,
        bn.running_mean[:c],
        bn.running_var[:c],
        bn.weight[:c],
        bn.bias[:c],
        training,
        bn.momentum,
        bn.eps,
    )


def _copy_bn(src: nn.BatchNorm2d, dst: nn.BatchNorm2d, index: torch.Tensor | slice) -> None:
    dst.weight.data.copy_(src.weight.data[index])
    dst.bias.data.copy_(src.bias.data[index])
    dst.running_mean.copy_(src.running_mean[index])
    dst.running_var.copy_(src.running_var[index])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)


class ElasticMBConv(nn.Module):
    """An MBConv block at the largest size (kernel 7, expand 6) serving every smaller one.

    Args:
        spec: the block's shape at the largest size (channels, stride, activation, SE).
        kernel_transform: learned kernel transformation matrices (else plain centre crops).
    """

    def __init__(self, spec: BlockSpec, kernel_transform: bool = True) -> None:
        super().__init__()
        self.spec = spec
        self.kernel_transform = kernel_transform
        mid = _mid_channels(spec.in_channels, MAX_EXPAND)
        self.max_mid = mid
        self.expand_conv = nn.Conv2d(spec.in_channels, mid, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(mid)
        self.depthwise = nn.Parameter(torch.empty(mid, 1, MAX_KERNEL, MAX_KERNEL))
        self.depthwise_bn = nn.BatchNorm2d(mid)
        if kernel_transform:
            # OFA's "5to7_matrix" / "3to5_matrix": one per smaller kernel, shared by channels.
            self.transforms = nn.ParameterDict(
                {str(k): nn.Parameter(torch.eye(k * k)) for k in KERNELS if k < MAX_KERNEL}
            )
        if spec.se:
            se_mid = _se_channels(mid)
            self.se_reduce = nn.Conv2d(mid, se_mid, 1)
            self.se_expand = nn.Conv2d(se_mid, mid, 1)
        self.project_conv = nn.Conv2d(mid, spec.out_channels, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(spec.out_channels)
        self.kernel = MAX_KERNEL
        self.expand = MAX_EXPAND

    def mid_channels(self, expand: int) -> int:
        """Middle channels at expand ratio ``expand``."""
        return _mid_channels(self.spec.in_channels, expand)

    def kernel_weight(self, kernel: int, channels: int) -> torch.Tensor:
        """The ``kernel`` x ``kernel`` depthwise weight of the first ``channels`` channels."""
        weight = self.depthwise[:channels]
        size = MAX_KERNEL
        # 7 -> 5 -> 3: crop the centre of the previous size, then transform (OFA's chain).
        for target in sorted((k for k in KERNELS if kernel <= k < MAX_KERNEL), reverse=True):
            start = (size - target) // 2
            weight = weight[:, :, start : start + target, start : start + target]
            if self.kernel_transform:
                flat = weight.reshape(channels, target * target)
                weight = F.linear(flat, self.transforms[str(target)]).view(
                    channels, 1, target, target
                )
            size = target
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec, act = self.spec, _ACTIVATIONS[self.spec.activation]
        mid = self.mid_channels(self.expand)
        out = act(_batch_norm(self.expand_bn, F.conv2d(x, self.expand_conv.weight[:mid])))
        weight = self.kernel_weight(self.kernel, mid)
        out = F.conv2d(out, weight, None, spec.stride, self.kernel // 2, 1, mid)
        out = act(_batch_norm(self.depthwise_bn, out))
        if spec.se:
            se_mid = _se_channels(mid)
            gate = F.adaptive_avg_pool2d(out, 1)
            gate = F.conv2d(
                gate, self.se_reduce.weight[:se_mid, :mid], self.se_reduce.bias[:se_mid]
            )
            gate = F.conv2d(
                F.relu(gate), self.se_expand.weight[:mid, :se_mid], self.se_expand.bias[:mid]
            )
            out = out * F.hardsigmoid(gate)
        out = _batch_norm(self.project_bn, F.conv2d(out, self.project_conv.weight[:, :mid]))
        return out + x if spec.residual else out

    def copy_to(self, block: MBConv) -> None:
        """Copy the active weights into the static ``block`` of the same kernel and expand."""
        mid = self.mid_channels(self.expand)
        first = slice(0, mid)
        block.expand[0].weight.data.copy_(self.expand_conv.weight.data[first])
        _copy_bn(self.expand_bn, block.expand[1], first)
        block.depthwise[0].weight.data.copy_(self.kernel_weight(self.kernel, mid).detach())
        _copy_bn(self.depthwise_bn, block.depthwise[1], first)
        if self.spec.se:
            se_mid = _se_channels(mid)
            block.se.reduce.weight.data.copy_(self.se_reduce.weight.data[:se_mid, :mid])
            block.se.reduce.bias.data.copy_(self.se_reduce.bias.data[:se_mid])
            block.se.expand.weight.data.copy_(self.se_expand.weight.data[:mid, :se_mid])
            block.se.expand.bias.data.copy_(self.se_expand.bias.data[:mid])
        block.project[0].weight.data.copy_(self.project_conv.weight.data[:, first])
        _copy_bn(self.project_bn, block.project[1], slice(None))

    def sort_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Order the middle channels (and the SE's) by importance, largest first.

        Importance is the L1 norm of a channel's projection (for SE units: SE-expand) input
        weights, as OFA's ``re_organize_middle_weights``. The block at expand 6 computes the
        same function after the permutation; a smaller expand ratio then keeps the most
        important channels. Tensors in ``optimizer``'s state for these parameters (e.g. SGD
        momentum) are permuted alike.
        """
        with torch.no_grad():
            importance = self.project_conv.weight.abs().sum(dim=(0, 2, 3))
            order = torch.argsort(importance, descending=True, stable=True)
            moves: list[tuple[torch.Tensor, int]] = [
                (self.expand_conv.weight, 0),
                (self.expand_bn.weight, 0),
                (self.expand_bn.bias, 0),
                (self.expand_bn.running_mean, 0),
                (self.expand_bn.running_var, 0),
                (self.depthwise, 0),
                (self.depthwise_bn.weight, 0),
                (self.depthwise_bn.bias, 0),
                (self.depthwise_bn.running_mean, 0),
                (self.depthwise_bn.running_var, 0),
                (self.project_conv.weight, 1),
            ]
            if self.spec.se:
                moves += [
                    (self.se_reduce.weight, 1),
                    (self.se_expand.weight, 0),
                    (self.se_expand.bias, 0),
                ]
            _permute(moves, order, optimizer)
            if self.spec.se:
                se_importance = self.se_expand.weight.abs().sum(dim=(0, 2, 3))
                se_order = torch.argsort(se_importance, descending=True, stable=True)
                se_moves = [
                    (self.se_reduce.weight, 0),
                    (self.se_reduce.bias, 0),
                    (self.se_expand.weight, 1),
                ]
                _permute(se_moves, se_order, optimizer)


def _permute(
    moves: Iterable[tuple[torch.Tensor, int]],
    order: torch.Tensor,
    optimizer: torch.optim.Optimizer | None,
) -> None:
    for tensor, dim in moves:
        tensor.data.copy_(tensor.data.index_select(dim, order))
        state = optimizer.state.get(tensor, {}) if optimizer is not None else {}
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.shape == tensor.shape:
                value.copy_(value.index_select(dim, order))


class OFASupernet(nn.Module):
    """The elastic OFA-MobileNetV3 supernet.

    Args:
        width_mult: channel multiplier (as ``MobileNetV3Network``'s).
        num_classes: classifier outputs.
        in_channels: image channels.
        dropout: dropout rate before the classifier.
        kernel_transform: smaller kernels through OFA's learned transformation matrices
            (else plain centre crops of the 7x7 kernel).
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 3,
        dropout: float = 0.1,
        kernel_transform: bool = True,
    ) -> None:
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"width_mult must be > 0, got {width_mult}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes}")
        self.width_mult = float(width_mult)
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.dropout = float(dropout)
        self.kernel_transform = bool(kernel_transform)
        specs = block_specs(LARGEST, self.width_mult)
        if specs[0].out_channels != make_divisible(FIRST_BLOCK_WIDTH * width_mult):
            raise RuntimeError("block_specs changed its first block")  # pragma: no cover
        self.first_conv = stem_layer(in_channels, width_mult)
        self.first_block = MBConv(specs[0])
        self.stages = nn.ModuleList(
            nn.ModuleList(
                ElasticMBConv(spec, self.kernel_transform) for spec in specs if spec.stage == s
            )
            for s in range(1, NUM_STAGES + 1)
        )
        for name, layer in head_layers(specs[-1].out_channels, width_mult, dropout, num_classes):
            self.add_module(name, layer)
        self._init_weights()
        self._active: Stages = LARGEST
        self.set_active(LARGEST)

    def _init_weights(self) -> None:
        # As MobileNetV3Network's; the kernel transformation matrices stay the identity.
        init_weights(self)
        for module in self.modules():
            if isinstance(module, ElasticMBConv):
                nn.init.kaiming_normal_(module.depthwise, mode="fan_out")

    @staticmethod
    def check_stages(stages: Any) -> Stages:
        """``stages`` as plain int tuples; ValueError naming a slot outside the elastic range."""
        return check_stages(stages)

    @property
    def active(self) -> Stages:
        """The stages of the subnet ``forward`` runs."""
        return self._active

    def set_active(self, stages: Any) -> None:
        """Make ``forward`` run the subnet ``stages`` (or a genotype)."""
        stages = check_stages(stages)
        for blocks, active in zip(self.stages, stages, strict=True):
            for block, (kernel, expand) in zip(blocks, active, strict=False):
                block.kernel, block.expand = kernel, expand
        self._active = stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_block(self.first_conv(x))
        for blocks, active in zip(self.stages, self._active, strict=True):
            for block in blocks[: len(active)]:
                x = block(x)
        x = self.feature_mix(self.pool(self.final_expand(x)))
        return self.classifier(torch.flatten(x, 1))

    def subnet(self, stages: Any) -> MobileNetV3Network:
        """A standalone ``MobileNetV3Network`` of ``stages`` with the supernet's weights.

        Weights and BatchNorm statistics are copied (the transformed kernels for 5x5 and 3x3),
        so in eval mode its outputs equal the supernet's with ``set_active(stages)``. The
        supernet's active subnet is left unchanged. The copy is in the supernet's train/eval
        mode, on its device.
        """
        stages = check_stages(stages)
        previous = self._active
        self.set_active(stages)
        device = next(self.parameters()).device
        net = MobileNetV3Network(
            stages,
            width_mult=self.width_mult,
            dropout=self.dropout,
            num_classes=self.num_classes,
            in_channels=self.in_channels,
        ).to(device)
        with torch.no_grad():
            net.first_conv.load_state_dict(self.first_conv.state_dict())
            net.blocks[0].load_state_dict(self.first_block.state_dict())
            static = iter(net.blocks[1:])
            for blocks, active in zip(self.stages, stages, strict=True):
                for block in blocks[: len(active)]:
                    block.copy_to(next(static))
            net.final_expand.load_state_dict(self.final_expand.state_dict())
            net.feature_mix.load_state_dict(self.feature_mix.state_dict())
            net.classifier.load_state_dict(self.classifier.state_dict())
        self.set_active(previous)
        return net.train(self.training)

    def sort_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Sort every elastic block's middle channels by importance (``ElasticMBConv``).

        The largest subnet's function is unchanged. Pass the training ``optimizer`` to permute
        its per-parameter state (momentum) with the weights.
        """
        for blocks in self.stages:
            for block in blocks:
                block.sort_channels(optimizer)

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match to load into this supernet."""
        return {
            "space": "mobilenetv3",
            "width_mult": self.width_mult,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "kernel_transform": self.kernel_transform,
        }
