"""The shipped NAS-Bench-201 (12-epoch) accuracy table and analytic cost model.

``NB201Table`` answers the validation and test accuracy of any NB201 cell on CIFAR-10,
CIFAR-100 and ImageNet16-120 in microseconds. ``params_m``/``flops_m`` are computed
analytically for the NB201 macro network (C=16, N=5, the table's setting) and are checked
against the built network in the tests. ``cost_s`` is simulated, see ``simulated_cost_s``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
_COLUMN = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet"}
#: Classes, input resolution and training-set size of each dataset (NB201 v1.1 splits).
DATASET_INFO = {
    "cifar10": {"classes": 10, "resolution": 32, "train_images": 50_000},
    "cifar100": {"classes": 100, "resolution": 32, "train_images": 50_000},
    "imagenet16-120": {"classes": 120, "resolution": 16, "train_images": 151_700},
}
EPOCHS = 12
#: Assumed sustained throughput of the simulated accelerator, in multiply-accumulates per second.
SIMULATED_MACS_PER_S = 1.0e12
#: Fixed per-epoch overhead of the simulated training (data loading, evaluation), seconds.
SIMULATED_EPOCH_OVERHEAD_S = 2.0


def check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ValueError(
            f"unknown nb201 dataset {dataset!r}; choose one of: {', '.join(DATASETS)}"
        )
    return dataset


@dataclass(frozen=True)
class Entry:
    index: int
    val_acc: float
    test_acc: float


class NB201Table:
    """Lookup of the shipped table: ``arch_str -> Entry`` per dataset."""

    def __init__(self) -> None:
        import pandas as pd

        path = resources.files("raynas.benchmarks") / "nb201_12epoch.parquet"
        with resources.as_file(path) as p:
            frame = pd.read_parquet(p)
        self.arch_strs: list[str] = frame["arch_str"].tolist()
        self.indices = frame["index"].to_numpy()
        self._row = {a: i for i, a in enumerate(self.arch_strs)}
        self._val = {d: frame[f"{_COLUMN[d]}-val"].to_numpy() for d in DATASETS}
        self._test = {d: frame[f"{_COLUMN[d]}-test"].to_numpy() for d in DATASETS}

    def __len__(self) -> int:
        return len(self.arch_strs)

    def lookup(self, arch: str, dataset: str = "cifar10") -> Entry:
        """Accuracies (%) of the architecture string ``arch`` on ``dataset``."""
        check_dataset(dataset)
        row = self._row.get(arch)
        if row is None:
            raise KeyError(f"architecture not in the NB201 table: {arch!r}")
        return Entry(
            int(self.indices[row]), float(self._val[dataset][row]), float(self._test[dataset][row])
        )

    def val(self, dataset: str) -> np.ndarray:
        return self._val[check_dataset(dataset)]

    def test(self, dataset: str) -> np.ndarray:
        return self._test[check_dataset(dataset)]

    def optimum(self, dataset: str, split: str = "val") -> tuple[str, float]:
        """Best architecture by ``split`` accuracy and its value."""
        values = self.val(dataset) if split == "val" else self.test(dataset)
        row = int(np.argmax(values))
        return self.arch_strs[row], float(values[row])


@functools.lru_cache(maxsize=1)
def table() -> NB201Table:
    """The table, loaded once per process."""
    return NB201Table()


_CONV = {"nor_conv_3x3": 9, "nor_conv_1x1": 1}


def params_and_macs(
    ops: tuple[str, ...],
    C: int = 16,
    N: int = 5,
    classes: int = 10,
    resolution: int = 32,
    in_channels: int = 3,
) -> tuple[int, int]:
    """Exact parameter count and conv/linear multiply-accumulates of the NB201 network.

    Counts what ``raynas.nn.nb201.NB201Network`` holds: convolutions, BatchNorm affine
    parameters and the classifier (the pooling ops have no parameters and their adds are
    not counted as MACs, as in NB201's own FLOP counts).
    """
    params = in_channels * C * 9 + 2 * C
    macs = resolution * resolution * in_channels * C * 9
    channels, res = C, resolution
    for stage in range(3):
        if stage:
            a, b = channels, channels * 2
            res = (res + 1) // 2
            params += 9 * a * b + 2 * b + 9 * b * b + 2 * b + a * b
            macs += res * res * (9 * a * b + 9 * b * b + a * b)
            channels = b
        k_sum = sum(_CONV.get(op, 0) for op in ops)
        n_conv = sum(op in _CONV for op in ops)
        params += N * (k_sum * channels * channels + n_conv * 2 * channels)
        macs += N * res * res * k_sum * channels * channels
    params += 2 * channels + channels * classes + classes
    macs += channels * classes
    return params, macs


def simulated_cost_s(macs: int, dataset: str, epochs: int = EPOCHS) -> float:
    """Simulated seconds to train ``epochs`` epochs: 3 x MACs (forward + backward) per image
    over the dataset's training set at ``SIMULATED_MACS_PER_S``, plus a fixed per-epoch
    overhead. A deterministic stand-in for wall time, good for comparing budgets."""
    images = DATASET_INFO[check_dataset(dataset)]["train_images"]
    return epochs * (3.0 * macs * images / SIMULATED_MACS_PER_S + SIMULATED_EPOCH_OVERHEAD_S)
