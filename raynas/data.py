"""Datasets for every trainable: a registry of in-memory image datasets with fixed splits.

``load(name, root=..., ...)`` returns a ``Splits`` of uint8/float tensors (train, val, test)
with deterministic, class-balanced splits from a seed; ``Loader`` iterates batches with the
standard CIFAR augmentation (random crop with 4-pixel padding, horizontal flip, optional
cutout) applied on the fly, and normalisation.

Datasets:

- ``cifar10`` / ``cifar100``: the official "python version" layout read directly (any subset of
  ``data_batch_1..5`` for CIFAR-10), from ``root``, which may be the batches folder itself or
  its parent. ``root`` defaults to ``$RAYNAS_DATA``. ``download=True`` fetches the official
  archive with torchvision where it is installed and online.
- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 1 channel).
- ``synthetic``: class-dependent Gaussian blobs, for tests.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

NAMES = ("cifar10", "cifar100", "digits", "synthetic")
ENV_ROOT = "RAYNAS_DATA"

_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "label_key": "labels",
        "classes": 10,
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "label_key": "fine_labels",
        "classes": 100,
        "mean": (0.5071, 0.4865, 0.4409),
        "std": (0.2673, 0.2564, 0.2762),
    },
}


class DatasetError(ValueError):
    """A user-facing problem with a dataset (missing folder, corrupt file, bad option)."""


@dataclass
class Split:
    """Images (N, C, H, W; uint8 for images, float32 otherwise) and int64 labels."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Splits:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool  # crop + flip make sense (natural images)

    @property
    def image_size(self) -> int:
        return int(self.train.x.shape[-1])

    def resized(self, size: int) -> Splits:
        """The same splits with images resized once to ``size`` x ``size`` (area average for
        downsampling), so per-batch work stays at the smaller size."""
        if size < 1:
            raise DatasetError(f"image_size must be >= 1, got {size}")
        if size == self.image_size:
            return self

        def resize(split: Split) -> Split:
            x = split.x.float()
            mode = "area" if size < x.shape[-1] else "bilinear"
            kwargs = {} if mode == "area" else {"align_corners": False}
            out = torch.nn.functional.interpolate(x, size=(size, size), mode=mode, **kwargs)
            if split.x.dtype == torch.uint8:
                out = out.round().clamp(0, 255).to(torch.uint8)
            return Split(out.contiguous(), split.y)

        return dataclasses.replace(
            self, train=resize(self.train), val=resize(self.val), test=resize(self.test)
        )


def _find_cifar_dir(name: str, root: str | os.PathLike | None) -> Path:
    info = _CIFAR[name]
    from_env = not root  # None or "": the folder comes from $RAYNAS_DATA
    if from_env:
        root = os.environ.get(ENV_ROOT)
        if not root:
            raise DatasetError(
                f"{name}: no data folder given; set ${ENV_ROOT} or the option root to a folder "
                f"holding {info['folder']}/"
            )
    root = Path(root).expanduser()
    if not root.is_dir():
        where = f"${ENV_ROOT}" if from_env else "root"
        raise DatasetError(
            f"{name}: data folder {root} ({where}) "
            f"{'is not a folder' if root.exists() else 'does not exist'}; it should hold "
            f"{info['folder']}/ (the official python version)"
        )
    for candidate in (root, root / info["folder"], root / "cifar-10-mini" / info["folder"]):
        if candidate.is_dir() and any((candidate / f).is_file() for f in info["test"]):
            return candidate
    raise DatasetError(
        f"{name}: no {info['folder']} files under {root}; expected "
        f"{', '.join(info['train'])} and {', '.join(info['test'])} (official python version)"
    )


def _read_batches(
    folder: Path, files: list[str], label_key: str, classes: int
) -> tuple[np.ndarray, ...]:
    xs, ys = [], []
    for f in files:
        path = folder / f
        if not path.is_file():
            continue
        try:
            with open(path, "rb") as fh:
                batch = pickle.load(fh, encoding="latin1")
            data = np.asarray(batch["data"], dtype=np.uint8)
            labels = np.asarray(batch[label_key], dtype=np.int64)
        except OSError as e:
            raise DatasetError(f"cannot read dataset file {path}: {e.strerror or e}") from None
        except Exception as e:  # noqa: BLE001 - any unpickling failure means a corrupt file
            raise DatasetError(f"corrupt dataset file {path}: {type(e).__name__}: {e}") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
            raise DatasetError(f"corrupt dataset file {path}: data shape {data.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise DatasetError(
                f"corrupt dataset file {path}: labels outside 0..{classes - 1} "
                f"(found {labels.min()}..{labels.max()})"
            )
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    if not xs:
        raise DatasetError(f"none of {', '.join(files)} found in {folder}")
    return np.concatenate(xs), np.concatenate(ys)


def check(name: str, root: str | os.PathLike | None = None) -> None:
    """Check that dataset ``name`` can be loaded from ``root`` without loading it for a run.

    For CIFAR: the folder is found (``root`` or ``$RAYNAS_DATA``), and every batch file present
    is read and validated, so a missing folder, an unreadable or truncated file fails here,
    named, before any trial starts. ``digits`` and ``synthetic`` need nothing.

    Raises:
        DatasetError: unknown name, missing folder or files, corrupt file.
    """
    if name not in NAMES:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(NAMES)}")
    if name in _CIFAR:
        _load_cifar(name, root, download=False)


def _download_cifar(name: str, root: str | os.PathLike | None) -> None:
    try:
        import torchvision
    except ImportError:
        raise DatasetError(f"{name}: download=True needs torchvision installed") from None
    if root is None:
        raise DatasetError(f"{name}: download=True needs root=... to download into")
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        cls(str(root), train=True, download=True)
    except Exception as e:  # noqa: BLE001 - network errors come in many types
        raise DatasetError(f"{name}: download failed: {e}") from None


def _load_cifar(name: str, root, download: bool):
    info = _CIFAR[name]
    if download:
        _download_cifar(name, root)
    folder = _find_cifar_dir(name, root)
    x_train, y_train = _read_batches(folder, info["train"], info["label_key"], info["classes"])
    x_test, y_test = _read_batches(folder, info["test"], info["label_key"], info["classes"])
    return x_train, y_train, x_test, y_test, info["classes"], info["mean"], info["std"]


def _load_digits(seed: int):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None]
    y = digits.target.astype(np.int64)
    test = _stratified(y, 0.2, np.random.default_rng(10_000 + seed))
    mask = np.zeros(len(y), bool)
    mask[test] = True
    return x[~mask], y[~mask], x[mask], y[mask], 10, (0.5,), (0.5,)


def _load_synthetic(seed: int, n: int = 512, classes: int = 4, size: int = 8):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, size=(classes, 3, size, size)).astype(np.float32)
    y = np.arange(n) % classes
    x = centers[y] + rng.normal(0, 1.0, size=(n, 3, size, size)).astype(np.float32)
    cut = n * 4 // 5
    return x[:cut], y[:cut], x[cut:], y[cut:], classes, (0.0,) * 3, (1.0,) * 3


def _stratified(y: np.ndarray, amount: float | int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-balanced sample: a fraction (0, 1] or a count."""
    classes = np.unique(y)
    total = int(round(amount * len(y))) if isinstance(amount, float) else int(amount)
    per_class = {c: total // len(classes) for c in classes}
    for c in classes[: total % len(classes)]:
        per_class[c] += 1
    picks = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        picks.append(rng.permutation(idx)[: min(per_class[c], len(idx))])
    return np.sort(np.concatenate(picks))


def _check_amount(name: str, value, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DatasetError(f"{name} must be a fraction in (0, 1] or a count >= 1, got {value!r}")
    if isinstance(value, float) and not 0 < value <= 1:
        raise DatasetError(f"{name} must be a fraction in (0, 1] or a count >= 1, got {value!r}")
    if isinstance(value, int) and value < 1:
        raise DatasetError(f"{name} must be a fraction in (0, 1] or a count >= 1, got {value!r}")


def load(
    name: str,
    root: str | os.PathLike | None = None,
    val_fraction: float | int = 0.1,
    subset: float | int | None = None,
    test_subset: float | int | None = None,
    seed: int = 0,
    download: bool = False,
    image_size: int | None = None,
) -> Splits:
    """Load dataset ``name`` with deterministic class-balanced train/val/test splits.

    Args:
        name: cifar10 | cifar100 | digits | synthetic.
        root: data folder for CIFAR (None or empty: ``$RAYNAS_DATA``).
        val_fraction: fraction (or count) of the training files held out for validation.
        subset: keep a class-balanced fraction (or count) of the remaining training images
            (the subset-training fidelity).
        test_subset: same for the test split.
        seed: seed of the splits.
        download: fetch the official CIFAR archive with torchvision first.
        image_size: resize every split to this height = width (``Splits.resized``); None
            keeps the dataset's size.

    Raises:
        DatasetError: unknown name, missing folder/files, corrupt file, bad option.
    """
    if name not in NAMES:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(NAMES)}")
    _check_amount("val_fraction", val_fraction, allow_none=False)
    if isinstance(val_fraction, float) and val_fraction >= 1:
        raise DatasetError(
            f"val_fraction must leave training images: a fraction in (0, 1) or a count, "
            f"got {val_fraction!r}"
        )
    _check_amount("subset", subset)
    _check_amount("test_subset", test_subset)
    if name in _CIFAR:
        loaded = _load_cifar(name, root, download)
    elif name == "digits":
        loaded = _load_digits(seed)
    else:
        loaded = _load_synthetic(seed)
    x_train, y_train, x_test, y_test, classes, mean, std = loaded
    n_train, n_test = len(y_train), len(y_test)
    rng = np.random.default_rng(seed)
    val_idx = _stratified(y_train, val_fraction, rng)
    train_mask = np.ones(len(y_train), bool)
    train_mask[val_idx] = False
    train_idx = np.flatnonzero(train_mask)
    if subset is not None:
        train_idx = train_idx[_stratified(y_train[train_idx], subset, rng)]
    if test_subset is not None:
        # its own generator: the test images must not depend on the training fidelity
        keep = _stratified(y_test, test_subset, np.random.default_rng([seed, 2]))
        x_test, y_test = x_test[keep], y_test[keep]
    for split_name, size, options in (
        ("training", len(train_idx), "val_fraction and subset"),
        ("validation", len(val_idx), "val_fraction"),
        ("test", len(y_test), "test_subset"),
    ):
        if size == 0:
            raise DatasetError(
                f"{name}: the {split_name} split is empty ({n_train} training and "
                f"{n_test} test images before splitting); check {options}"
            )

    def split(x, y) -> Split:
        return Split(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y))

    splits = Splits(
        name=name,
        train=split(x_train[train_idx], y_train[train_idx]),
        val=split(x_train[val_idx], y_train[val_idx]),
        test=split(x_test, y_test),
        num_classes=classes,
        in_channels=int(x_train.shape[1]),
        mean=mean,
        std=std,
        augment=name in _CIFAR,
    )
    return splits if image_size is None else splits.resized(image_size)


class Loader:
    """Batches of one split, normalised, optionally augmented, shuffled from a generator.

    Iterating is deterministic given ``generator``'s state, which the train trainable
    checkpoints so a resumed run sees the same batches.
    """

    def __init__(
        self,
        splits: Splits,
        split: str,
        batch_size: int,
        train: bool,
        generator: torch.Generator | None = None,
        cutout: int = 0,
    ) -> None:
        if batch_size < 1:
            raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
        self.data: Split = getattr(splits, split)
        self.batch_size = batch_size
        self.train = train
        self.generator = generator or torch.Generator().manual_seed(0)
        self.augment = train and splits.augment
        self.cutout = cutout if train else 0
        self.mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
        self.std = torch.tensor(splits.std).view(1, -1, 1, 1)
        self.pad = max(1, splits.image_size // 8)  # 4 pixels at 32x32, as in CIFAR training

    def __len__(self) -> int:
        return (self._used() + self.batch_size - 1) // self.batch_size

    def _used(self) -> int:
        """Images an epoch uses: all, except that a final training batch of one image is left
        out (BatchNorm cannot train on one image of a 1x1 map: DARTS's auxiliary head,
        MobileNetV3 at 32x32); it is shuffled into another batch next epoch."""
        n = len(self.data)
        return n - 1 if self.train and n > 1 and n % self.batch_size == 1 else n

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if self.augment:
            x = _random_crop_flip(x, self.pad, self.generator)
        x = (x - self.mean) / self.std
        if self.cutout:
            x = _cutout(x, self.cutout, self.generator)
        return x

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.data)
        order = torch.randperm(n, generator=self.generator) if self.train else torch.arange(n)
        end = self._used()
        for start in range(0, end, self.batch_size):
            idx = order[start : min(start + self.batch_size, end)]
            yield self._prepare(self.data.x[idx]), self.data.y[idx]


def _random_crop_flip(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def _cutout(x: torch.Tensor, length: int, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=gen)
    cx = torch.randint(0, w, (n,), generator=gen)
    x = x.clone()
    for i in range(n):
        y0, y1 = max(0, cy[i] - length // 2), min(h, cy[i] + length // 2)
        x0, x1 = max(0, cx[i] - length // 2), min(w, cx[i] + length // 2)
        x[i, :, y0:y1, x0:x1] = 0.0
    return x


def nested_order(y: torch.Tensor | np.ndarray, seed: int) -> np.ndarray:
    """An order of the indices of labels ``y`` whose every prefix is class-balanced.

    Each class's indices are permuted with a generator seeded from ``seed``, then the classes
    are interleaved round-robin, so the first ``k`` indices are a class-balanced subset of
    ``k`` images and a larger prefix always contains a smaller one (nested subsets).
    """
    y = np.asarray(y)
    rng = np.random.default_rng([seed, 3])
    parts, rank, cls = [], [], []
    for i, c in enumerate(np.unique(y)):
        idx = rng.permutation(np.flatnonzero(y == c))
        parts.append(idx)
        rank.append(np.arange(len(idx)))
        cls.append(np.full(len(idx), i))
    if not parts:
        return np.zeros(0, dtype=np.int64)
    idx, rank, cls = np.concatenate(parts), np.concatenate(rank), np.concatenate(cls)
    return idx[np.lexsort((cls, rank))]


def check_subset_amounts(name: str, amounts: list) -> None:
    """DatasetError unless every amount is a fraction in (0, 1] or a count >= 1 and amounts
    of the same kind never decrease (fractions against counts need the data size: see
    ``subset_counts``)."""
    for value in amounts:
        _check_amount(name, value, allow_none=False)
    for kind in (float, int):
        same = [v for v in amounts if isinstance(v, kind)]
        for a, b in zip(same, same[1:], strict=False):
            if b < a:
                raise DatasetError(f"{name} must not decrease, but {b!r} follows {a!r}")


def subset_counts(name: str, amounts: list, n: int) -> list[int]:
    """Image counts of ``amounts`` (fractions of ``n`` or counts); DatasetError when a count
    exceeds the ``n`` images or the counts decrease."""
    check_subset_amounts(name, amounts)
    counts = [max(1, int(round(a * n))) if isinstance(a, float) else int(a) for a in amounts]
    for amount, count in zip(amounts, counts, strict=True):
        if count > n:
            raise DatasetError(f"{name}: {amount!r} exceeds the {n} images of the training split")
    for i in range(1, len(counts)):
        (a, ca), (b, cb) = (amounts[i - 1], counts[i - 1]), (amounts[i], counts[i])
        if cb < ca:
            raise DatasetError(
                f"{name} must not decrease, but {b!r} ({cb} images) follows {a!r} ({ca} images)"
            )
    return counts
