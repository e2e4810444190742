"""Dataset loaders on the shipped CIFAR-10 subset, digits, and missing/corrupt folders."""

from __future__ import annotations

import shutil

import pytest
import torch
from helpers import CIFAR_ROOT, HAS_CIFAR

from raynas import data

needs_cifar = pytest.mark.skipif(
    not HAS_CIFAR, reason="CIFAR-10 subset not found (set RAYNAS_DATA)"
)


@needs_cifar
def test_cifar10_subset_loads_with_balanced_deterministic_splits():
    splits = data.load("cifar10", root=CIFAR_ROOT, val_fraction=0.1, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (9000, 1000, 1000)
    assert splits.train.x.shape[1:] == (3, 32, 32) and splits.train.x.dtype == torch.uint8
    assert torch.bincount(splits.val.y).tolist() == [100] * 10
    again = data.load("cifar10", root=CIFAR_ROOT, val_fraction=0.1, seed=0)
    assert torch.equal(splits.val.y, again.val.y) and torch.equal(splits.train.x, again.train.x)
    other = data.load("cifar10", root=CIFAR_ROOT, val_fraction=0.1, seed=1)
    assert not torch.equal(splits.val.x, other.val.x)


@needs_cifar
def test_subset_fraction_and_count_are_class_balanced():
    frac = data.load("cifar10", root=CIFAR_ROOT, subset=0.1)
    assert torch.bincount(frac.train.y).tolist() == [90] * 10
    count = data.load("cifar10", root=CIFAR_ROOT, subset=250)
    assert len(count.train) == 250 and torch.bincount(count.train.y).max() <= 25


@needs_cifar
def test_loader_augments_train_only_and_normalises():
    splits = data.load("cifar10", root=CIFAR_ROOT, subset=128)
    gen = torch.Generator().manual_seed(0)
    train = next(iter(data.Loader(splits, "train", 128, train=True, generator=gen, cutout=8)))
    val = [b for b in data.Loader(splits, "val", 500, train=False)]
    assert train[0].shape == (128, 3, 32, 32)
    assert abs(float(val[0][0].mean())) < 0.5  # normalised
    assert len(val) == 2 and sum(len(y) for _, y in val) == 1000


def test_missing_folder_names_expected_files(tmp_path):
    with pytest.raises(data.DatasetError, match="expected data_batch_1, .* and test_batch"):
        data.load("cifar10", root=tmp_path)


def test_no_root_given_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("RAYNAS_DATA", raising=False)
    with pytest.raises(data.DatasetError, match="set \\$RAYNAS_DATA"):
        data.load("cifar10")


@needs_cifar
def test_corrupt_batch_file_is_named(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    shutil.copy(CIFAR_ROOT / "cifar-10-mini" / "cifar-10-batches-py" / "test_batch", folder)
    (folder / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(data.DatasetError, match="corrupt dataset file .*data_batch_1"):
        data.load("cifar10", root=tmp_path)


def test_digits_and_synthetic():
    digits = data.load("digits")
    assert digits.in_channels == 1 and digits.num_classes == 10
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    synth = data.load("synthetic")
    assert synth.num_classes == 4 and len(synth.test) > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "mnist"}, "unknown dataset 'mnist'"),
        ({"name": "digits", "subset": 0.0}, "subset must be a fraction"),
        ({"name": "digits", "val_fraction": -3}, "val_fraction must be a fraction"),
        ({"name": "digits", "val_fraction": 0.0003}, "the validation split is empty"),
        ({"name": "digits", "val_fraction": 1.0}, "val_fraction must leave training images"),
        ({"name": "digits", "val_fraction": 1500}, "the training split is empty"),
        (
            {"name": "digits", "test_subset": 0.0001},
            "the test split is empty .*; check test_subset",
        ),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(data.DatasetError, match=message):
        data.load(**kwargs)


def test_resized_splits_keep_dtype_labels_and_shape():
    digits = data.load("digits")
    small = digits.resized(4)
    assert small.train.x.shape[1:] == (1, 4, 4) and small.image_size == 4
    assert torch.equal(small.train.y, digits.train.y)
    assert small.train.x.dtype == digits.train.x.dtype
    assert digits.resized(8) is digits


def test_test_images_do_not_depend_on_the_training_subset():
    full = data.load("digits", test_subset=50)
    half = data.load("digits", test_subset=50, subset=0.5)
    assert torch.equal(full.test.x, half.test.x) and len(half.train) < len(full.train)


@needs_cifar
def test_labels_outside_the_classes_are_a_corrupt_file(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    source = CIFAR_ROOT / "cifar-10-mini" / "cifar-10-batches-py"
    shutil.copy(source / "test_batch", folder)
    with open(source / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    batch["labels"] = [97] + list(batch["labels"][1:])
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump(batch, f)
    with pytest.raises(data.DatasetError, match="data_batch_1: labels outside 0..9"):
        data.load("cifar10", root=tmp_path)


@pytest.mark.parametrize("size", [65, 64, 1])
def test_a_final_training_batch_of_one_image_is_left_out(size):
    splits = data.load("digits", subset=size, val_fraction=20)
    loader = data.Loader(splits, "train", 32, train=True)
    sizes = [len(y) for _, y in loader]
    assert len(sizes) == len(loader)
    assert sizes[-1] > 1 or size == 1  # one image alone is still a batch
    assert sum(sizes) == size - (1 if size % 32 == 1 and size > 1 else 0)
    assert sum(len(y) for _, y in data.Loader(splits, "train", 32, train=False)) == size
