"""The ``supernet`` trainable and ``load_supernet``, the reader of its checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from raynas.errors import ConfigError
from raynas.nn.ofa import SMALLEST, OFASupernet
from raynas.torch_state import single_thread
from raynas.trainables.supernet import CHECKPOINT_FILE, load_supernet

WIDTH = 0.35


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def _save(folder: Path, net: OFASupernet, epoch: int = 1, **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "model": net.state_dict(),
        "identity": net.identity(),
        "dropout": net.dropout,
        "options": {"dataset": "digits", "seed": 0},
        "epoch": epoch,
        **extra,
    }
    torch.save(state, folder / CHECKPOINT_FILE)
    return folder / CHECKPOINT_FILE


def _same_outputs(a: OFASupernet, b: OFASupernet) -> bool:
    x = torch.randn(2, 3, 16, 16)
    a.eval().set_active(SMALLEST)
    b.eval().set_active(SMALLEST)
    return torch.allclose(a(x), b(x))


def test_load_supernet_reads_a_file_and_a_checkpoint_folder(tmp_path):
    torch.manual_seed(0)
    net = OFASupernet(width_mult=WIDTH)
    file = _save(tmp_path / "checkpoint_000001", net, epoch=3)
    for source in (file, file.parent, str(file)):
        loaded, meta = load_supernet(source, width_mult=WIDTH)
        assert not loaded.training
        assert meta["identity"] == net.identity()
        assert meta["epoch"] == 3
        assert meta["options"]["dataset"] == "digits"
        assert meta["path"] == str(file)
        assert _same_outputs(loaded, net)


def test_load_supernet_picks_the_best_trials_latest_checkpoint(tmp_path):
    # The layout Tune writes: <experiment>/<trial>/checkpoint_NNNNNN/ and <trial>/result.json.
    nets = {}
    for trial, accs in (("trial_a", [40.0, 55.0]), ("trial_b", [60.0, 50.0])):
        for epoch in range(1, len(accs) + 1):
            torch.manual_seed(epoch * 10 + len(trial))
            nets[trial, epoch] = OFASupernet(width_mult=WIDTH)
            _save(tmp_path / trial / f"checkpoint_{epoch - 1:06d}", nets[trial, epoch], epoch)
        lines = [json.dumps({"epoch": e, "val_acc_largest": a}) for e, a in enumerate(accs, 1)]
        (tmp_path / trial / "result.json").write_text("\n".join(lines) + "\n")
    loaded, meta = load_supernet(tmp_path)
    # trial_a ends higher (55 > 50) although trial_b had the best epoch.
    assert meta["path"].endswith(f"trial_a/checkpoint_000001/{CHECKPOINT_FILE}")
    assert meta["epoch"] == 2
    assert _same_outputs(loaded, nets["trial_a", 2])


def test_missing_checkpoint_is_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="no such file or folder"):
        load_supernet(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no supernet checkpoint in .*empty"):
        load_supernet(tmp_path / "empty")


def test_truncated_checkpoint_is_one_clear_line(tmp_path):
    file = _save(tmp_path, OFASupernet(width_mult=WIDTH))
    file.write_bytes(file.read_bytes()[:5000])
    with pytest.raises(ConfigError, match=f"{file} is truncated") as err:
        load_supernet(file)
    assert "\n" not in str(err.value)


def test_checkpoint_of_another_space_or_width_is_refused(tmp_path):
    net = OFASupernet(width_mult=WIDTH)
    file = _save(tmp_path / "w", net)
    with pytest.raises(ConfigError, match=rf"{file} has width_mult {WIDTH}, not 0.5"):
        load_supernet(file, width_mult=0.5)
    torch.save({"model": {}, "identity": {"space": "nb201"}}, tmp_path / "nb201.pt")
    with pytest.raises(ConfigError, match="is for space 'nb201', not 'mobilenetv3'"):
        load_supernet(tmp_path / "nb201.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not an OFA supernet checkpoint"):
        load_supernet(tmp_path / "other.pt")
