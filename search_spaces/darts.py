"""DARTS cell space (Liu et al., ICLR 2019): a normal and a reduction cell.

Each cell has 2 inputs (states 0 and 1: the outputs of the two previous cells) and 4
intermediate nodes; node ``n`` (state ``n + 2``) picks 2 distinct inputs among states
``0 .. n + 1`` and one of 7 ops for each (``OPS``: no ``none``, unlike the supernet). The cell
output is the concat of the 4 nodes, so ``normal_concat`` and ``reduce_concat`` are always
``[2, 3, 4, 5]``.

Tune keys (flat, 12 per cell, in this order for ``normal`` then ``reduce``)::

    normal.n0.inputs   "0,1"                     the unordered pair, lower index first
    normal.n0.op0      op on the lower input     (one of OPS)
    normal.n0.op1      op on the higher input
    normal.n1.inputs   "0,1" "0,2" "1,2"          C(n + 2, 2) pairs for node n
    ...

Every combination of values is a valid architecture, so the space works unchanged with Tune's
random search, OptunaSearch and HyperOptSearch, and configs map one-to-one to canonical
genotypes: ``size()`` = (1 * 3 * 6 * 10 * 7 ** 8) ** 2 = 1,076,746,950,455,072,400 (about
1.08e18; isomorphic cells, e.g. with two nodes swapped, count as distinct, as in the paper).

Genotypes use DARTS' own format, ``Genotype(normal=[(op, input), ... 8 pairs],
normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])``. ``encode``, ``to_str``,
``to_json`` and ``build`` accept published genotypes as written (pairs in either order inside a
node, ``range(2, 6)`` concats, any namedtuple with these fields); ``decode`` and ``from_str``
return the canonical form, in which each node's pair is sorted by input index and concats are
lists. ``to_str`` is the ``repr`` of the canonical form; ``from_str`` also reads the papers'
text (``range(2, 6)`` included). Genotypes outside the space (a node using the same input
twice, an op such as ``none``, a concat other than ``[2, 3, 4, 5]``) raise ValueError.

``build`` gives ``raynas.nn.darts.DartsNetwork`` (NetworkCIFAR); its defaults come from the
space options: ``C=36, layers=20`` (the paper's CIFAR-10 evaluation network; DARTS_V2 has
3.3M parameters without the auxiliary head), ``auxiliary=False``, ``drop_path_prob=0.0`` and
``reduction_layers=None`` (= cells ``layers // 3`` and ``2 * layers // 3``).
"""

from __future__ import annotations

import ast
import itertools
import numbers
from collections import namedtuple
from collections.abc import Mapping, Sequence
from typing import Any

from raynas.nn.layout import DARTS_CONCAT, DARTS_NODES, DARTS_OPS
from raynas.nn.layout import check_reduction_layers as check_reduction_layers
from raynas.nn.layout import default_reduction_layers as default_reduction_layers
from raynas.registry import check_int
from search_spaces.base import SearchSpace, choice

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

#: Candidate ops of the evaluation cells (DARTS' PRIMITIVES without ``none``).
OPS = DARTS_OPS
CELLS = ("normal", "reduce")
NODES = DARTS_NODES
CONCAT = DARTS_CONCAT
#: Allowed input pairs of each node, as ``"i,j"`` strings with ``i < j``.
PAIRS = tuple(
    tuple(f"{i},{j}" for i, j in itertools.combinations(range(n + 2), 2)) for n in range(NODES)
)
KEYS = tuple(
    f"{cell}.n{n}.{part}"
    for cell in CELLS
    for n in range(NODES)
    for part in ("inputs", "op0", "op1")
)

# Published genotypes, as listed in the papers' genotypes.py (pair order as published).
DARTS_V1 = Genotype(
    normal=[
        ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
        ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0),
    ],
    reduce_concat=[2, 3, 4, 5],
)  # fmt: skip
DARTS_V2 = Genotype(
    normal=[
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
        ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1),
    ],
    reduce_concat=[2, 3, 4, 5],
)  # fmt: skip
#: PC-DARTS (Xu et al., ICLR 2020), CIFAR-10 genotype (``PC_DARTS_cifar``).
PC_DARTS = Genotype(
    normal=[
        ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
        ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2),
    ],
    reduce_concat=[2, 3, 4, 5],
)  # fmt: skip
#: P-DARTS (Chen et al., ICCV 2019), CIFAR-10 genotype.
PDARTS = Genotype(
    normal=[
        ("skip_connect", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("dil_conv_5x5", 4),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2),
        ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("dil_conv_3x3", 1), ("dil_conv_5x5", 3),
    ],
    reduce_concat=[2, 3, 4, 5],
)  # fmt: skip
#: The published genotypes by name.
PUBLISHED = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2, "PC_DARTS": PC_DARTS, "PDARTS": PDARTS}


def _canonical_cell(cell: str, edges: Any) -> list[tuple[str, int]]:
    try:
        edges = list(edges)
    except TypeError:
        raise ValueError(f"{cell!r} must be a list of (op, input) pairs, got {edges!r}") from None
    if len(edges) != 2 * NODES:
        raise ValueError(
            f"{cell!r} must list {2 * NODES} (op, input) pairs (2 per node), got {len(edges)}"
        )
    out: list[tuple[str, int]] = []
    for n in range(NODES):
        pair = []
        for item in edges[2 * n : 2 * n + 2]:
            try:
                op, src = item
            except (TypeError, ValueError):
                raise ValueError(
                    f"{cell} node {n}: expected an (op, input) pair, got {item!r}"
                ) from None
            if op not in OPS:
                raise ValueError(
                    f"invalid op {op!r} in {cell} node {n} ({cell}.n{n}); "
                    f"allowed: {', '.join(OPS)}"
                )
            if (
                isinstance(src, bool)
                or not isinstance(src, numbers.Integral)
                or not (0 <= src <= n + 1)
            ):
                raise ValueError(
                    f"invalid input {src!r} in {cell} node {n} ({cell}.n{n}); allowed: 0..{n + 1}"
                )
            pair.append((str(op), int(src)))
        if pair[0][1] == pair[1][1]:
            raise ValueError(
                f"{cell} node {n} ({cell}.n{n}) uses input {pair[0][1]} twice; "
                "the two inputs of a node must be distinct"
            )
        out.extend(sorted(pair, key=lambda edge: edge[1]))
    return out


def _check_concat(cell: str, concat: Any) -> list[int]:
    try:
        values = list(concat)
    except TypeError:
        values = None
    if values != list(CONCAT):
        raise ValueError(
            f"{cell}_concat must be [2, 3, 4, 5] (the output of a cell concatenates all its "
            f"nodes in this space), got {concat!r}"
        )
    return list(CONCAT)


def canonical(genotype: Any) -> Genotype:
    """Validate a DARTS-format genotype and return its canonical form.

    Args:
        genotype: any object with ``normal``, ``normal_concat``, ``reduce`` and
            ``reduce_concat`` attributes (e.g. a published genotype).

    Returns:
        A ``Genotype`` whose nodes list their pair sorted by input index, with list concats.

    Raises:
        ValueError: missing field, wrong number of pairs, unknown op, input out of range,
            the same input twice in a node, or a concat other than ``[2, 3, 4, 5]``.
    """
    fields: dict[str, Any] = {}
    for cell in CELLS:
        try:
            edges = getattr(genotype, cell)
            concat = getattr(genotype, f"{cell}_concat")
        except AttributeError:
            raise ValueError(
                f"a DARTS genotype needs the fields {', '.join(Genotype._fields)}; "
                f"got {genotype!r}"
            ) from None
        fields[cell] = _canonical_cell(cell, edges)
        fields[f"{cell}_concat"] = _check_concat(cell, concat)
    return Genotype(**fields)


def _literal(node: ast.expr) -> Any:
    # The papers write concats as ``range(2, 6)``; allow exactly that call besides literals.
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and not node.keywords
    ):
        return list(range(*(int(ast.literal_eval(a)) for a in node.args)))
    return ast.literal_eval(node)


def parse_genotype(text: str) -> Genotype:
    """Parse ``Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])``.

    Keyword or positional fields are accepted, as is ``range(a, b)`` for a concat.

    Returns:
        The canonical genotype.

    Raises:
        ValueError: the text is not a genotype of this space.
    """
    bad = ValueError(f"not a DARTS genotype string: {text!r}")
    try:
        node = ast.parse(str(text).strip(), mode="eval").body
    except SyntaxError:
        raise bad from None
    func = getattr(node, "func", None)
    name = getattr(func, "id", None) or getattr(func, "attr", None)
    if not isinstance(node, ast.Call) or name != "Genotype" or len(node.args) > 4:
        raise bad
    nodes = dict(zip(Genotype._fields, node.args, strict=False))
    for kw in node.keywords:
        if kw.arg not in Genotype._fields or kw.arg in nodes:
            raise bad
        nodes[kw.arg] = kw.value
    if len(nodes) != len(Genotype._fields):
        raise bad
    try:
        values = {k: _literal(v) for k, v in nodes.items()}
    except (ValueError, TypeError, SyntaxError):
        raise bad from None
    return canonical(Genotype(**values))


def _check_options(
    C: int, layers: int, drop_path_prob: float, reduction_layers: Sequence[int] | None
) -> tuple[int, ...] | None:
    check_int("C", C, 1)
    check_int("layers", layers, 1)
    if not 0.0 <= float(drop_path_prob) < 1.0:
        raise ValueError(f"drop_path_prob must be in [0, 1), got {drop_path_prob!r}")
    if reduction_layers is None:
        return None
    return check_reduction_layers(int(layers), reduction_layers)


class DartsSpace(SearchSpace):
    """The DARTS space: 2 cells x 4 nodes, each node 2 distinct inputs x 7 ops (~1.08e18).

    Args:
        C: default initial channels of ``build`` (36 in the paper's CIFAR network).
        layers: default number of cells of ``build`` (20 in the paper's CIFAR network).
        auxiliary: default for ``build``: add DARTS' auxiliary head (train mode only).
        drop_path_prob: default initial drop-path probability of the built network.
        reduction_layers: default reduction-cell indices of ``build`` (sorted, distinct);
            ``None`` for ``(layers // 3, 2 * layers // 3)``.
    """

    name = "darts"

    def __init__(
        self,
        C: int = 36,
        layers: int = 20,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        reduction_layers: Sequence[int] | None = None,
    ) -> None:
        self.reduction_layers = _check_options(C, layers, drop_path_prob, reduction_layers)
        self.C = int(C)
        self.layers = int(layers)
        self.auxiliary = bool(auxiliary)
        self.drop_path_prob = float(drop_path_prob)

    def tune_space(self) -> dict[str, Any]:
        space: dict[str, Any] = {}
        for cell in CELLS:
            for n in range(NODES):
                space[f"{cell}.n{n}.inputs"] = choice(PAIRS[n])
                space[f"{cell}.n{n}.op0"] = choice(OPS)
                space[f"{cell}.n{n}.op1"] = choice(OPS)
        return space

    def decode(self, config: Mapping[str, Any]) -> Genotype:
        self.check_config(config)
        fields: dict[str, Any] = {}
        for cell in CELLS:
            edges = []
            for n in range(NODES):
                lo, hi = (int(i) for i in config[f"{cell}.n{n}.inputs"].split(","))
                edges.append((config[f"{cell}.n{n}.op0"], lo))
                edges.append((config[f"{cell}.n{n}.op1"], hi))
            fields[cell] = edges
            fields[f"{cell}_concat"] = list(CONCAT)
        return Genotype(**fields)

    def encode(self, genotype: Any) -> dict[str, Any]:
        genotype = canonical(genotype)
        config: dict[str, Any] = {}
        for cell in CELLS:
            edges = getattr(genotype, cell)
            for n in range(NODES):
                (op0, lo), (op1, hi) = edges[2 * n], edges[2 * n + 1]
                config[f"{cell}.n{n}.inputs"] = f"{lo},{hi}"
                config[f"{cell}.n{n}.op0"] = op0
                config[f"{cell}.n{n}.op1"] = op1
        return config

    def to_str(self, genotype: Any) -> str:
        return repr(canonical(genotype))

    def from_str(self, text: str) -> Genotype:
        return parse_genotype(text)

    def to_json(self, genotype: Any) -> dict[str, list]:
        """``{"normal": [[op, input], ...], "normal_concat": [2, 3, 4, 5], ...}`` (canonical)."""
        return super().to_json(canonical(genotype))

    def build(
        self,
        genotype: Any,
        num_classes: int = 10,
        in_channels: int = 3,
        C: int | None = None,
        layers: int | None = None,
        auxiliary: bool | None = None,
        drop_path_prob: float | None = None,
        reduction_layers: Sequence[int] | None = None,
    ):
        """The DARTS evaluation network of ``genotype`` (``raynas.nn.darts.DartsNetwork``).

        Args:
            genotype: a genotype of this space (published ones are accepted as written).
            num_classes: classifier outputs.
            in_channels: image channels.
            C: initial channels; default: the space's ``C``.
            layers: number of cells; default: the space's ``layers``.
            auxiliary: add the auxiliary head; default: the space's ``auxiliary``.
            drop_path_prob: initial drop-path probability; default: the space's.
            reduction_layers: sorted, distinct reduction-cell indices (``()`` for none);
                default: the space's, else ``(layers // 3, 2 * layers // 3)``.

        Returns:
            A ``torch.nn.Module``; in training mode with ``auxiliary`` its forward returns
            ``(logits, logits_aux)``, otherwise ``logits``.
        """
        from raynas.nn.darts import DartsNetwork

        C = self.C if C is None else C
        layers = self.layers if layers is None else layers
        drop_path_prob = self.drop_path_prob if drop_path_prob is None else drop_path_prob
        if reduction_layers is None:
            reduction_layers = self.reduction_layers
        reduction_layers = _check_options(C, layers, drop_path_prob, reduction_layers)
        return DartsNetwork(
            canonical(genotype),
            C=int(C),
            layers=int(layers),
            num_classes=num_classes,
            in_channels=in_channels,
            auxiliary=self.auxiliary if auxiliary is None else bool(auxiliary),
            drop_path_prob=float(drop_path_prob),
            reduction_layers=reduction_layers,
        )
