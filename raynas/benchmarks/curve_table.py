"""The shipped learning-curve dataset: per-epoch curves of NB201 cells trained on CIFAR-10.

``nb201_cifar10_curves.parquet`` (see ATTRIBUTION.md for how it was generated) holds one row
per architecture, seed and epoch: ``arch`` (NB201 string), ``seed``, ``epoch`` (1..E) and the
metrics the ``train`` trainable reported for that epoch (``train_loss``, ``train_acc``,
``val_loss``, ``val_acc``, ``tse``, ``tse_ema``, ``params_m``, ``flops_m``, ``cost_s``). Every
curve is complete: all E epochs. ``table()`` checks that and returns a ``CurveTable``; the
``curves`` trainable replays it, ``points_to_evaluate`` lists its architectures as configs of
the nb201 space in a seeded random order (the way to run "the stored architectures" as a
search: Tune's random searcher evaluates given points first).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

FILE = "nb201_cifar10_curves.parquet"
#: Columns every curve table must have.
REQUIRED = ("arch", "seed", "epoch", "train_loss", "val_acc", "cost_s")
#: Metric columns replayed when present (besides the required ones), in report order.
METRICS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "tse",
    "tse_ema",
    "params_m",
    "flops_m",
    "cost_s",
)


def shipped_path() -> Path:
    """Path of the shipped parquet file (inside the installed package)."""
    return Path(str(resources.files("raynas.benchmarks") / FILE))


@dataclass(frozen=True)
class CurveTable:
    """Complete learning curves by ``(arch, seed)``; each curve a list of per-epoch dicts."""

    path: str
    epochs: int
    columns: tuple[str, ...]
    curves: dict[tuple[str, int], list[dict[str, Any]]]

    @property
    def archs(self) -> list[str]:
        """Stored architecture strings, sorted, each once."""
        return sorted({arch for arch, _ in self.curves})

    @property
    def seeds(self) -> list[int]:
        """Stored training seeds, sorted."""
        return sorted({seed for _, seed in self.curves})

    def __len__(self) -> int:
        return len(self.archs)

    def curve(self, arch: str, seed: int | None = None) -> list[dict[str, Any]]:
        """The curve of ``arch`` (epoch 1 first); ``seed`` None: the lowest stored seed.

        Raises:
            ValueError: no curve stored for ``arch`` (or for it with ``seed``).
        """
        seeds = [s for a, s in self.curves if a == arch]
        if not seeds:
            raise ValueError(
                f"no stored learning curve for architecture {arch!r}: {self.path} holds "
                f"{len(self)} architectures (raynas.benchmarks.curve_table.points_to_evaluate() "
                "lists them as configs)"
            )
        if seed is None:
            seed = min(seeds)
        if (arch, seed) not in self.curves:
            raise ValueError(
                f"no stored learning curve for architecture {arch!r} with seed {seed}; "
                f"stored seeds of it: {', '.join(map(str, sorted(seeds)))}"
            )
        return self.curves[(arch, seed)]

    def final(self, metric: str = "val_acc", seed: int | None = None) -> dict[str, float]:
        """``arch -> metric`` at the last epoch."""
        return {a: float(self.curve(a, seed)[-1][metric]) for a in self.archs}

    def frame(self):
        """All rows as a pandas DataFrame (arch, seed, epoch order)."""
        import pandas as pd

        rows = [
            {"arch": a, "seed": s, **r}
            for (a, s), rows in sorted(self.curves.items())
            for r in rows
        ]
        return pd.DataFrame(rows)


def _load(path: Path) -> CurveTable:
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(
            f"learning-curve table not found: {path} (generate it with "
            "benchmarks/curves/nb201_cifar10.yaml and benchmarks/curves/export.py)"
        )
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise ValueError(f"cannot read learning-curve table {path}: {e}") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(
            f"learning-curve table {path} lacks column(s) {', '.join(missing)}; "
            f"required: {', '.join(REQUIRED)}"
        )
    if frame.empty:
        raise ValueError(f"learning-curve table {path} has no rows")
    columns = tuple(c for c in METRICS if c in frame.columns)
    frame = frame.sort_values(["arch", "seed", "epoch"], kind="stable")
    epochs = int(frame["epoch"].max())
    curves: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for (arch, seed), group in frame.groupby(["arch", "seed"], sort=False):
        got = group["epoch"].to_numpy()
        if not np.array_equal(got, np.arange(1, epochs + 1)):
            raise ValueError(
                f"learning-curve table {path}: the curve of {arch!r} (seed {seed}) has epochs "
                f"{got.tolist()}, expected 1..{epochs} once each"
            )
        records = group[list(columns)].to_dict("records")
        for r in records:
            r["epoch"] = int(r["epoch"])
        curves[(str(arch), int(seed))] = records
    return CurveTable(str(path), epochs, columns, curves)


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int) -> CurveTable:
    del mtime_ns  # part of the cache key: a rewritten file is read again
    return _load(Path(path))


def table(path: str | os.PathLike | None = None) -> CurveTable:
    """The learning-curve table at ``path`` (default: the shipped one), loaded once per process.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable parquet file, lacks a required column, or
            holds an incomplete curve.
    """
    p = shipped_path() if path is None else Path(path).expanduser().resolve()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        return _load(p)  # raises FileNotFoundError with the explanation
    return _cached(str(p), mtime)


def arch_order(
    seed: int, n: int | None = None, path: str | os.PathLike | None = None
) -> list[str]:
    """The stored architectures in a random order drawn from ``seed`` (the first ``n``).

    Raises:
        ValueError: ``n`` < 1 or more than the number of stored architectures.
    """
    archs = table(path).archs
    if n is not None and not 1 <= n <= len(archs):
        raise ValueError(f"n must be in [1, {len(archs)}] (stored architectures), got {n}")
    order = np.random.default_rng(seed).permutation(len(archs))
    return [archs[i] for i in order[: n or len(archs)]]


def points_to_evaluate(
    seed: int = 0, n: int | None = None, path: str | os.PathLike | None = None
) -> list[dict[str, str]]:
    """Configs of the nb201 space for the stored architectures, in a seeded random order.

    Give them to Tune's random searcher (``raynas.searchers.make("random", space,
    points_to_evaluate=...)`` or ``searcher: {name: random, options: {points_to_evaluate:
    [...]}}`` in an experiment file) with ``num_samples = len(points)``: the searcher
    proposes exactly these architectures, in this order, so every trial has a stored curve
    and the order of trials is a function of ``seed``.
    """
    import search_spaces

    space = search_spaces.get("nb201")
    return [space.encode(space.from_str(a)) for a in arch_order(seed, n, path)]
