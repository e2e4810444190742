"""The ``train`` trainable: real training, exact resume, NaN guard, real Tuner."""

from __future__ import annotations

import pytest
import torch
from ray import tune

import search_spaces
from raynas import trainables
from raynas.trainables.train import Trainer, TrainOptions

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
SMALL = {"C": 4, "N": 1}


def _trainer(**options) -> Trainer:
    space = search_spaces.get("nb201")
    opts = TrainOptions(**{"dataset": "digits", "epochs": 3, "build": SMALL, **options})
    return Trainer(space, space.encode(space.from_str(ARCH)), opts)


@pytest.mark.slow
def test_reports_standard_metrics_and_tse():
    trainer = _trainer(eval_test=True)
    first, second = trainer.step(), trainer.step()
    for key in (
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "tse",
        "tse_ema",
        "params_m",
        "flops_m",
        "arch",
        "cost_s",
        "test_acc",
    ):
        assert key in second
    assert second["epoch"] == 2 and second["arch"] == ARCH
    assert second["tse"] == pytest.approx(first["train_loss"] + second["train_loss"])
    # TSE-EMA (Ru et al.): sum_t 0.9**(T - t) * loss_t: the newer epoch weighs more
    assert second["tse_ema"] == pytest.approx(0.9 * first["train_loss"] + second["train_loss"])
    assert second["train_loss"] < first["train_loss"]


def test_image_size_resizes_the_data_the_network_sees():
    # image_size once did nothing here (the data stayed 8x8 and the FLOPs with it)
    full, small = _trainer(), _trainer(image_size=4)
    assert full.input_shape == (1, 8, 8) and small.input_shape == (1, 4, 4)
    assert small.splits.train.x.shape[-2:] == (4, 4)
    assert small.macs < full.macs / 2
    assert 0 <= small.step()["val_acc"] <= 100


@pytest.mark.slow
def test_resume_from_checkpoint_is_exact(tmp_path):
    straight = _trainer(cutout=2)
    expected = [straight.step() for _ in range(3)]

    interrupted = _trainer(cutout=2)
    got = [interrupted.step()]
    torch.save(interrupted.state_dict(), tmp_path / "state.pt")
    torch.manual_seed(1234)  # another process's RNG state must not matter
    resumed = _trainer(cutout=2)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=False))
    got += [resumed.step(), resumed.step()]
    keys = ("train_loss", "train_acc", "val_loss", "val_acc", "tse", "tse_ema", "lr")
    assert [[m[k] for k in keys] for m in got] == [[m[k] for k in keys] for m in expected]


@pytest.mark.slow
def test_lr_schedule_cosine_anneals_and_constant_keeps_the_rate():
    trainer = _trainer(lr=0.1)
    cosine = [trainer.step()["lr"] for _ in range(3)]
    # epoch t reports the rate it trained with, 0.1 * (1 + cos(pi (t - 1) / 3)) / 2, as darts does
    assert cosine == pytest.approx([0.1, 0.075, 0.025])
    trainer = _trainer(lr=0.1, lr_schedule="constant")
    assert [trainer.step()["lr"] for _ in range(3)] == pytest.approx([0.1, 0.1, 0.1])


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    state = _trainer().state_dict()
    space = search_spaces.get("nb201")
    other = Trainer(
        space,
        space.encode(space.from_str(ARCH.replace("none~2", "skip_connect~2"))),
        TrainOptions(dataset="digits", epochs=1, build=SMALL),
    )
    with pytest.raises(ValueError, match="checkpoint is for architecture"):
        other.load_state_dict(state)


def test_non_finite_loss_stops_with_clear_error():
    trainer = _trainer(lr=1e12, grad_clip=None, momentum=0.0, weight_decay=0.0)
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        for _ in range(3):
            trainer.step()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, "epochs must be > 0"),
        ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
        ({"device": "tpu"}, "device must be auto, cpu, cuda"),
        ({"image_size": 0}, "image_size must be >= 1 or null"),
        ({"lr_schedule": "step"}, "unknown lr_schedule 'step'; choose one of: cosine, constant"),
        ({"epoch": 3}, "unknown option 'epoch' for trainable 'train'"),
        ({"subset_schedule": [0.5, 0.25]}, "must not decrease, but 0.25 follows 0.5"),
        ({"subset_schedule": [100, 50]}, "must not decrease, but 50 follows 100"),
        ({"subset_schedule": [0.5, 1.5]}, "a fraction in \\(0, 1\\] or a count >= 1, got 1.5"),
        ({"subset_schedule": []}, "subset_schedule must not be empty"),
        ({"subset_schedule": {2: 0.5}}, "must start at epoch 1, got 2"),
        ({"subset_schedule": {0: 0.5}}, "epoch 0 must be an integer >= 1"),
        ({"subset_schedule": 0.5}, "must be a list of amounts or a mapping"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        trainables.make("train", search_spaces.get("nb201"), **options)


@pytest.mark.slow
def test_train_trainable_in_tuner_checkpoints_every_epoch(ray_address, tmp_path):
    space = search_spaces.get("nb201")
    trainable = trainables.make("train", space, dataset="digits", epochs=2, build=SMALL, threads=1)
    grid = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={**space.tune_space(), "edge.3<-2": tune.choice(["nor_conv_1x1", "none"])},
        tune_config=tune.TuneConfig(metric="val_acc", mode="max", num_samples=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="train", verbose=0),
    ).fit()
    assert not grid.errors
    for result in grid:
        assert result.metrics["training_iteration"] == result.metrics["epoch"] == 2
        assert result.checkpoint is not None
        assert len(result.metrics_dataframe) == 2


def _images(trainer: Trainer) -> set[bytes]:
    """The training images the trainer's next epoch uses, as bytes."""
    return {x.numpy().tobytes() for x in trainer._loader("train", train=True).data.x}


@pytest.mark.slow
def test_subset_schedule_grows_nested_subsets_and_resumes_at_its_position(tmp_path):
    # digits: 1,294 training images (after the test and val splits)
    schedule = {1: 0.25, 2: 0.5, 3: 1.0}
    straight = _trainer(subset_schedule={"1": 0.25, 2: 0.5, "3": 1.0})  # raynas.yaml: "1"
    n = len(straight.splits.train)
    seen, reports = [], []
    for _ in range(3):
        seen.append(_images(straight))
        reports.append(straight.step())
    assert [r["train_images"] for r in reports] == [round(n / 4), round(n / 2), n]
    assert [len(s) for s in seen] == [round(n / 4), round(n / 2), n]
    assert seen[0] < seen[1] < seen[2]  # nested: a promoted trial trains on a superset
    first = straight.subset_order[: round(n / 4)]
    counts = torch.bincount(straight.splits.train.y[torch.from_numpy(first)], minlength=10)
    assert counts.max() - counts.min() <= 1  # class-balanced

    interrupted = _trainer(subset_schedule=schedule)
    got = [interrupted.step()]
    torch.save(interrupted.state_dict(), tmp_path / "state.pt")
    resumed = _trainer(subset_schedule=schedule)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=False))
    assert len(_images(resumed)) == round(n / 2)  # continues at epoch 2's subset
    got += [resumed.step(), resumed.step()]
    keys = ("train_images", "train_loss", "val_acc", "tse")
    assert [[m[k] for k in keys] for m in got] == [[m[k] for k in keys] for m in reports]


def test_subset_schedule_counts_are_checked_against_the_data():
    from raynas.data import DatasetError
    from raynas.trainables.train import check_subset_schedule

    check_subset_schedule(TrainOptions(dataset="digits", subset_schedule=[100, 0.5, 1.0]))
    with pytest.raises(DatasetError, match="5000 exceeds the 1294 images of the training split"):
        check_subset_schedule(TrainOptions(dataset="digits", subset_schedule=[100, 5000]))
    with pytest.raises(DatasetError, match="0.01 \\(13 images\\) follows 100 \\(100 images\\)"):
        check_subset_schedule(TrainOptions(dataset="digits", subset_schedule=[100, 0.01]))
