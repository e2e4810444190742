"""NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).

A cell is a DAG on 4 nodes; each of the 6 edges ``j<-i`` (i < j) carries one of 5 ops. The
canonical string lists the edges node by node: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
Tune keys are ``edge.1<-0``, ``edge.2<-0``, ``edge.2<-1``, ``edge.3<-0``, ``edge.3<-1``,
``edge.3<-2`` in that order. The macro network (stem, 3 stages of N cells with C, 2C, 4C
channels, residual reduction blocks, BN-ReLU, global pooling, classifier) is built by
``build``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from raynas.nn.layout import NB201_EDGES, NB201_OPS
from search_spaces.base import SearchSpace, choice

OPS = NB201_OPS
EDGES = NB201_EDGES
KEYS = tuple(f"edge.{j}<-{i}" for j, i in EDGES)


@dataclass(frozen=True)
class NB201Genotype:
    """Ops of the 6 edges, in the order of ``EDGES``."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES):
            raise ValueError(f"an nb201 genotype has {len(EDGES)} ops, got {len(self.ops)}")
        for key, op in zip(KEYS, self.ops, strict=True):
            if op not in OPS:
                raise ValueError(f"invalid op {op!r} for {key!r}; allowed: {', '.join(OPS)}")


def genotype_to_str(genotype: NB201Genotype) -> str:
    ops = dict(zip(EDGES, genotype.ops, strict=True))
    nodes = ["|".join(f"{ops[(j, i)]}~{i}" for i in range(j)) for j in (1, 2, 3)]
    return "+".join(f"|{n}|" for n in nodes)


def str_to_genotype(text: str) -> NB201Genotype:
    ops: dict[tuple[int, int], str] = {}
    nodes = text.split("+")
    if len(nodes) != 3:
        raise ValueError(f"not an nb201 architecture string: {text!r}")
    for j, node in enumerate(nodes, start=1):
        for item in filter(None, node.split("|")):
            op, _, src = item.partition("~")
            if not src.isdigit():
                raise ValueError(f"not an nb201 architecture string: {text!r}")
            if (j, int(src)) in ops:
                raise ValueError(f"nb201 architecture string has edge {src}->{j} twice: {text!r}")
            ops[(j, int(src))] = op
    if set(ops) != set(EDGES):
        raise ValueError(f"not an nb201 architecture string: {text!r}")
    return NB201Genotype(tuple(ops[e] for e in EDGES))


class NB201Space(SearchSpace):
    """NAS-Bench-201: 6 edges x 5 ops = 15,625 cells.

    Args:
        C: default initial channels of ``build``.
        N: default cells per stage of ``build`` (int, or 3 ints for per-stage counts).
        ops: candidate ops (a subset of the five NB201 ops), e.g. to drop ``none``.
    """

    name = "nb201"

    def __init__(self, C: int = 16, N: int | Sequence[int] = 5, ops: Sequence[str] = OPS):
        bad = [o for o in ops if o not in OPS]
        if bad or not ops:
            raise ValueError(f"invalid nb201 op {bad[:1] or ops!r}; allowed: {', '.join(OPS)}")
        self.C = int(C)
        self.N = N
        self.ops = tuple(ops)

    def tune_space(self) -> dict[str, Any]:
        return {key: choice(self.ops) for key in KEYS}

    def decode(self, config: Mapping[str, Any]) -> NB201Genotype:
        self.check_config(config)
        return NB201Genotype(tuple(config[k] for k in KEYS))

    def encode(self, genotype: NB201Genotype) -> dict[str, Any]:
        return dict(zip(KEYS, genotype.ops, strict=True))

    def to_str(self, genotype: NB201Genotype) -> str:
        return genotype_to_str(genotype)

    def from_str(self, text: str) -> NB201Genotype:
        return str_to_genotype(text)

    def build(
        self,
        genotype: NB201Genotype,
        num_classes: int = 10,
        in_channels: int = 3,
        C: int | None = None,
        N: int | Sequence[int] | None = None,
    ):
        """The NB201 macro network of ``genotype`` (a ``torch.nn.Module``)."""
        from raynas.nn.nb201 import NB201Network

        return NB201Network(
            genotype.ops,
            C=self.C if C is None else int(C),
            N=self.N if N is None else N,
            num_classes=num_classes,
            in_channels=in_channels,
        )
