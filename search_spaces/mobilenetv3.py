"""OFA-MobileNetV3 space (Cai et al., "Once-for-All", ICLR 2020).

The skeleton is OFA's MobileNetV3-Large (see ``raynas.nn.mobilenetv3``); five stages are
searched. Each stage has a depth in {2, 3, 4}, and each of its 4 block slots a depthwise kernel
in {3, 5, 7} and an expand ratio in {3, 4, 6}. Only the first ``depth`` slots of a stage are
active, so per stage there are 9^2 + 9^3 + 9^4 = 7,371 sub-structures and 7,371^5 (about
2.2e19) distinct architectures.

Tune keys: ``s1.depth`` .. ``s5.depth``, then ``s{i}.b{j}.kernel`` and ``s{i}.b{j}.expand``
for every stage i and slot j (1..4). ``decode`` ignores the keys of inactive slots; ``encode``
fills them with the canonical value kernel 3, expand 3, so ``decode(encode(g)) == g`` and
``encode`` of equal architectures gives equal configs.

The canonical string gives the depths, then the active blocks stage by stage (``:`` between
stages, ``,`` between blocks): ``d2-3-2-4-2|k3e4,k5e6:k3e3,k7e4,k5e3:...``.

``sample`` (from the base class) draws every key uniformly, so each depth is equally likely,
as in OFA's subnet sampling; it is not uniform over the 2.2e19 architectures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from search_spaces.base import SearchSpace, choice

NUM_STAGES = 5
MAX_DEPTH = 4
DEPTHS = (2, 3, 4)
KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
#: Values that ``encode`` writes into the keys of inactive block slots.
CANONICAL_KERNEL = 3
CANONICAL_EXPAND = 3

DEPTH_KEYS = tuple(f"s{s}.depth" for s in range(1, NUM_STAGES + 1))


def _kernel_key(stage: int, block: int) -> str:
    return f"s{stage}.b{block}.kernel"


def _expand_key(stage: int, block: int) -> str:
    return f"s{stage}.b{block}.expand"


def _check(value: Any, allowed: tuple[int, ...], key: str) -> int:
    # `in` accepts numpy ints and 3.0; the genotype always stores plain ints.
    if isinstance(value, bool) or value not in allowed:
        raise ValueError(
            f"invalid value {value!r} for {key!r}; allowed: {', '.join(map(str, allowed))}"
        )
    return int(value)


@dataclass(frozen=True)
class MobileNetV3Genotype:
    """Depth of each of the 5 stages and (kernel, expand) of each active block.

    Lists are accepted (e.g. from JSON) and stored as tuples of ints.

    Attributes:
        depths: depth of each stage, each in ``DEPTHS``.
        blocks: per stage, one ``(kernel, expand)`` pair per active block
            (``len(blocks[i]) == depths[i]``).
    """

    depths: tuple[int, ...]
    blocks: tuple[tuple[tuple[int, int], ...], ...]

    def __post_init__(self) -> None:
        if len(self.depths) != NUM_STAGES or len(self.blocks) != NUM_STAGES:
            raise ValueError(
                f"a mobilenetv3 genotype has {NUM_STAGES} stages, got "
                f"{len(self.depths)} depths and {len(self.blocks)} block lists"
            )
        depths = tuple(
            _check(d, DEPTHS, key) for d, key in zip(self.depths, DEPTH_KEYS, strict=True)
        )
        stages = []
        for s, (depth, stage) in enumerate(zip(depths, self.blocks, strict=True), start=1):
            if not isinstance(stage, tuple | list) or len(stage) != depth:
                raise ValueError(
                    f"stage s{s} has depth {depth}; give one (kernel, expand) pair per active "
                    f"block, got {stage!r}"
                )
            pairs = []
            for b, pair in enumerate(stage, start=1):
                if not isinstance(pair, tuple | list) or len(pair) != 2:
                    raise ValueError(f"block s{s}.b{b} needs (kernel, expand), got {pair!r}")
                kernel = _check(pair[0], KERNELS, _kernel_key(s, b))
                expand = _check(pair[1], EXPANDS, _expand_key(s, b))
                pairs.append((kernel, expand))
            stages.append(tuple(pairs))
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "blocks", tuple(stages))


_STR_RE = re.compile(r"d(\d)-(\d)-(\d)-(\d)-(\d)\|(.*)")
_BLOCK_RE = re.compile(r"k(\d)e(\d)")


def genotype_to_str(genotype: MobileNetV3Genotype) -> str:
    """``d<depths>|<stage 1 blocks>:...:<stage 5 blocks>`` with blocks as ``k<k>e<e>``."""
    depths = "-".join(str(d) for d in genotype.depths)
    stages = ":".join(",".join(f"k{k}e{e}" for k, e in stage) for stage in genotype.blocks)
    return f"d{depths}|{stages}"


def str_to_genotype(text: str) -> MobileNetV3Genotype:
    """Inverse of ``genotype_to_str``; ValueError on anything but a canonical string."""
    match = _STR_RE.fullmatch(text)
    stages = match.group(6).split(":") if match else []
    if len(stages) != NUM_STAGES:
        raise ValueError(f"not a mobilenetv3 architecture string: {text!r}")
    blocks = []
    for stage in stages:
        pairs = [_BLOCK_RE.fullmatch(item) for item in stage.split(",")]
        if not all(pairs):
            raise ValueError(f"not a mobilenetv3 architecture string: {text!r}")
        blocks.append(tuple((int(p.group(1)), int(p.group(2))) for p in pairs))
    genotype = MobileNetV3Genotype(tuple(int(d) for d in match.groups()[:NUM_STAGES]), blocks)
    if genotype_to_str(genotype) != text:
        raise ValueError(f"not a canonical mobilenetv3 architecture string: {text!r}")
    return genotype


class MobileNetV3Space(SearchSpace):
    """OFA-MobileNetV3: 5 stages x (depth 2-4, kernel 3/5/7, expand 3/4/6 per block).

    Args:
        width_mult: default channel multiplier of ``build`` and ``blocks``.
        resolution: default input image size (height = width), e.g. for latency tables.
        dropout: default dropout rate before the classifier in ``build``.
    """

    name = "mobilenetv3"

    def __init__(self, width_mult: float = 1.0, resolution: int = 224, dropout: float = 0.1):
        if not width_mult > 0:
            raise ValueError(f"width_mult must be > 0, got {width_mult}")
        if isinstance(resolution, bool) or int(resolution) != resolution or resolution < 1:
            raise ValueError(f"resolution must be an integer >= 1, got {resolution}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.width_mult = float(width_mult)
        self.resolution = int(resolution)
        self.dropout = float(dropout)

    def tune_space(self) -> dict[str, Any]:
        space: dict[str, Any] = {key: choice(DEPTHS) for key in DEPTH_KEYS}
        for s in range(1, NUM_STAGES + 1):
            for b in range(1, MAX_DEPTH + 1):
                space[_kernel_key(s, b)] = choice(KERNELS)
                space[_expand_key(s, b)] = choice(EXPANDS)
        return space

    def decode(self, config: Mapping[str, Any]) -> MobileNetV3Genotype:
        self.check_config(config)
        depths = tuple(int(config[key]) for key in DEPTH_KEYS)
        blocks = tuple(
            tuple(
                (int(config[_kernel_key(s, b)]), int(config[_expand_key(s, b)]))
                for b in range(1, depth + 1)
            )
            for s, depth in enumerate(depths, start=1)
        )
        return MobileNetV3Genotype(depths, blocks)

    def encode(self, genotype: MobileNetV3Genotype) -> dict[str, Any]:
        config: dict[str, Any] = dict(zip(DEPTH_KEYS, genotype.depths, strict=True))
        for s, stage in enumerate(genotype.blocks, start=1):
            for b in range(1, MAX_DEPTH + 1):
                kernel, expand = (
                    stage[b - 1] if b <= len(stage) else (CANONICAL_KERNEL, CANONICAL_EXPAND)
                )
                config[_kernel_key(s, b)] = kernel
                config[_expand_key(s, b)] = expand
        return config

    def to_str(self, genotype: MobileNetV3Genotype) -> str:
        return genotype_to_str(genotype)

    def from_str(self, text: str) -> MobileNetV3Genotype:
        return str_to_genotype(text)

    def size(self) -> int:
        """Distinct architectures: ``(sum over depths d of 9^d) ** 5`` (inactive slots ignored)."""
        per_block = len(KERNELS) * len(EXPANDS)
        return sum(per_block**d for d in DEPTHS) ** NUM_STAGES

    def build(
        self,
        genotype: MobileNetV3Genotype,
        num_classes: int = 10,
        in_channels: int = 3,
        width_mult: float | None = None,
        dropout: float | None = None,
    ):
        """The OFA-MobileNetV3 subnet of ``genotype`` (a ``torch.nn.Module``).

        Args:
            genotype: the architecture.
            num_classes: classifier outputs.
            in_channels: image channels.
            width_mult: channel multiplier; the space's ``width_mult`` when None.
            dropout: dropout before the classifier; the space's ``dropout`` when None.

        Returns:
            A ``raynas.nn.mobilenetv3.MobileNetV3Network``.
        """
        from raynas.nn.mobilenetv3 import MobileNetV3Network

        return MobileNetV3Network(
            genotype.blocks,
            width_mult=self.width_mult if width_mult is None else float(width_mult),
            dropout=self.dropout if dropout is None else float(dropout),
            num_classes=num_classes,
            in_channels=in_channels,
        )

    def blocks(
        self,
        genotype: MobileNetV3Genotype,
        resolution: int | None = None,
        width_mult: float | None = None,
    ) -> list[dict[str, Any]]:
        """Every MBConv block of the subnet, in forward order, as plain dicts.

        The fixed first block (stage 0, kernel 3, expand 1) comes first; then the active
        blocks of stages 1..5. The stem, final expand, feature-mix and classifier layers are
        not MBConv blocks and are not listed.

        Args:
            genotype: the architecture.
            resolution: input image size; the space's ``resolution`` when None.
            width_mult: channel multiplier; the space's ``width_mult`` when None.

        Returns:
            One dict per block with keys ``stage``, ``index`` (from 1 within the stage),
            ``kernel``, ``expand``, ``in_channels``, ``mid_channels``, ``out_channels``,
            ``stride``, ``in_resolution`` (input height = width), ``activation`` (``"relu"``
            or ``"h_swish"``), ``se`` and ``residual``.
        """
        from raynas.nn.mobilenetv3 import block_specs

        specs = block_specs(
            genotype.blocks,
            width_mult=self.width_mult if width_mult is None else float(width_mult),
            resolution=self.resolution if resolution is None else int(resolution),
        )
        return [asdict(spec) for spec in specs]
