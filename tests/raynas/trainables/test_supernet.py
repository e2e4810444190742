"""The ``supernet`` trainable (progressive shrinking, exact resume, a real Tuner) and
``load_supernet``, the reader of its checkpoints."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import RAYNAS, cli_env

import search_spaces
from raynas import trainables
from raynas.errors import ConfigError
from raynas.nn.ofa import EXPANDS, KERNELS, LARGEST, SMALLEST, OFASupernet
from raynas.oneshot.shrinking import ProgressiveShrinking, SupernetOptions, TrialSettings, _kd_loss
from raynas.torch_state import single_thread
from raynas.trainables.supernet import CHECKPOINT_FILE, load_supernet

WIDTH = 0.35
#: Tiny: 64 digits images (8x8) in batches of 32, 32 for validation, every phase one epoch.
TINY = {
    "dataset": "digits",
    "subset": 64,
    "val_fraction": 32,
    "batch_size": 32,
    "phases": {"full": 1, "kernel": 1, "depth": 1, "expand": 1},
    "eval_subnets": 1,
    "bn_batches": 1,
    "device": "cpu",
}


def _engine(**options) -> ProgressiveShrinking:
    return ProgressiveShrinking(SupernetOptions(**{**TINY, **options}), width_mult=WIDTH)


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


def test_each_phase_samples_its_own_range():
    engine = _engine(subnets_per_step=3)
    assert engine.step_subnets("full") == [LARGEST]
    seen = {phase: [] for phase in ("kernel", "depth", "expand")}
    for _ in range(30):
        for phase in seen:
            seen[phase] += engine.step_subnets(phase)
    blocks = {p: [b for st in subnets for s in st for b in s] for p, subnets in seen.items()}
    depths = {p: {len(s) for st in subnets for s in st} for p, subnets in seen.items()}
    assert {k for k, _ in blocks["kernel"]} == set(KERNELS)
    assert {e for _, e in blocks["kernel"]} == {6} and depths["kernel"] == {4}
    assert {e for _, e in blocks["depth"]} == {6} and depths["depth"] == {2, 3, 4}
    assert {e for _, e in blocks["expand"]} == set(EXPANDS) and depths["expand"] == {2, 3, 4}
    assert len(seen["kernel"]) == 90  # subnets_per_step random subnets per step


def test_sandwich_and_distillation_put_the_largest_first():
    sandwich = _engine(sandwich=True)
    subnets = sandwich.step_subnets("kernel")
    assert subnets[0] == LARGEST and len(subnets) == 3
    assert subnets[1] == (((3, 6),) * 4,) * 5  # the kernel phase's smallest
    assert _engine(kd_ratio=1.0).step_subnets("depth")[0] == LARGEST
    assert len(_engine().step_subnets("depth")) == 1


def test_kd_loss_is_zero_for_equal_outputs_and_grows_apart():
    a = torch.randn(4, 10)
    assert _kd_loss(a, a, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert _kd_loss(a, a + torch.randn(4, 10), 2.0).item() > 0


def test_lr_is_a_cosine_restarted_each_phase():
    phases = {"full": 2, "kernel": 2, "expand": 1}
    engine = _engine(lr=0.1, phase_lr={"kernel": 0.04}, phases=phases)
    assert engine.lr_at(0, 0.0) == pytest.approx(0.1)
    assert engine.lr_at(1, 0.0) == pytest.approx(0.05)
    assert engine.lr_at(2, 0.0) == pytest.approx(0.04)
    assert engine.lr_at(3, 0.5) == pytest.approx(0.02 * (1 + math.cos(math.pi * 0.75)))
    assert engine.lr_at(4, 0.0) == pytest.approx(0.0075 * 32 / 64)  # OFA's, batch 32
    with pytest.raises(ValueError, match="past the schedule"):
        engine.lr_at(5, 0.0)


def test_elastic_warmup_rises_linearly_then_runs_the_cosine():
    phases = {"full": 2, "kernel": 4, "depth": 1}
    engine = _engine(
        lr=0.1,
        phase_lr={"kernel": 0.04, "depth": 0.02},
        phases=phases,
        elastic_warmup=1.0,
        min_lr=0.0,
    )
    assert engine.lr_at(0, 0.0) == pytest.approx(0.1)  # the full phase has no warm-up
    assert engine.lr_at(2, 0.0) == pytest.approx(0.0)
    assert engine.lr_at(2, 0.5) == pytest.approx(0.02)
    assert engine.lr_at(3, 0.0) == pytest.approx(0.04)  # the cosine over the other 3 epochs
    assert engine.lr_at(4, 0.5) == pytest.approx(0.02 * (1 + math.cos(math.pi * 0.5)))
    # at most half a phase: the 1-epoch depth phase warms up over its first half
    assert engine.lr_at(6, 0.25) == pytest.approx(0.01)
    assert engine.lr_at(6, 0.5) == pytest.approx(0.02)


def test_epochs_report_phases_and_subnet_accuracies():
    engine = _engine(sandwich=True, kd_ratio=0.5)
    metrics = [engine.step() for _ in range(4)]
    assert [m["phase"] for m in metrics] == ["full", "kernel", "depth", "expand"]
    declared = trainables.metrics("supernet", search_spaces.get("mobilenetv3"))
    assert set(metrics[0]) == set(declared) - set(trainables.TUNE_METRICS)
    for m in metrics:
        assert m["val_acc"] == m["val_acc_largest"]
        for key in ("val_acc_largest", "val_acc_smallest", "val_acc_random"):
            assert 0 <= m[key] <= 100
        assert math.isfinite(m["train_loss"]) and m["params_m"] > 0


def test_resume_from_checkpoint_is_exact(tmp_path):
    # Two epochs straight vs. one, a save, a fresh process state and one more (the expand
    # phase: its channel sort, momentum permuted): the same metrics and weights.
    keys = ("phase", "train_loss", "val_acc_largest", "val_acc_smallest", "val_acc_random", "lr")
    options = {"sandwich": True, "kd_ratio": 1.0, "phases": {"kernel": 1, "expand": 1}}
    straight = _engine(**options)
    expected = [straight.step() for _ in range(2)]
    interrupted = _engine(**options)
    got = [interrupted.step()]
    torch.save(interrupted.state_dict(), tmp_path / CHECKPOINT_FILE)
    torch.manual_seed(1234)  # another process's RNG state must not matter
    resumed = _engine(**options)
    resumed.load_state_dict(torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False))
    got += [resumed.step()]
    assert [[m[k] for k in keys] for m in got] == [[m[k] for k in keys] for m in expected]
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    # ... and load_supernet reads that checkpoint with what the trial ran with.
    net, meta = load_supernet(tmp_path / CHECKPOINT_FILE, width_mult=WIDTH)
    assert meta["epoch"] == 1 and meta["phase"] == "kernel"
    assert meta["options"]["subset"] == 64 and meta["options"]["sandwich"] is True
    net.set_active(SMALLEST)
    interrupted.model.eval().set_active(SMALLEST)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(net(x), interrupted.model(x))


def test_checkpoint_of_another_supernet_is_refused():
    state = _engine(kd_ratio=1.0).state_dict()
    with pytest.raises(ValueError, match="checkpoint is for the supernet"):
        _engine().load_state_dict(state)


def test_phases_run_in_ofa_order_whatever_the_mapping_order():
    engine = _engine(phases={"expand": 2, "full": 1})
    assert [engine.phase_at(e)[0] for e in range(3)] == ["full", "expand", "expand"]


def test_config_keys_override_options():
    opts = SupernetOptions(**TINY)
    settings = TrialSettings.resolve(
        opts, {"supernet.seed": 3, "supernet.sandwich": True, "s1.depth": 2}
    )
    assert settings == TrialSettings(seed=3, sandwich=True, kd_ratio=0.0)
    with pytest.raises(ValueError, match="unknown config key 'supernet.lr'"):
        TrialSettings.resolve(opts, {"supernet.lr": 0.1})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"phases": {"full": 1, "shrink": 1}}, "unknown phase 'shrink'; choose from: full"),
        ({"phases": {"full": 0}}, "phases.full must be an integer >= 1, got 0"),
        ({"phases": {}}, "phases must be a non-empty mapping"),
        ({"kd_ratio": -1}, "kd_ratio must be a number >= 0"),
        ({"phase_lr": {"kernal": 0.1}}, "unknown phase 'kernal' in phase_lr"),
        ({"phase_lr": {"kernel": 0}}, "phase_lr.kernel must be a number > 0"),
        ({"elastic_warmup": -1}, "elastic_warmup must be >= 0, got -1"),
        ({"sweep": {"width": [1]}}, "unknown sweep key 'width'"),
        ({"subnets_per_step": 0}, "subnets_per_step must be an integer >= 1"),
        ({"epochs": 3}, "unknown option 'epochs' for trainable 'supernet'"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        trainables.make("supernet", search_spaces.get("mobilenetv3"), **options)


def test_other_spaces_are_refused():
    with pytest.raises(ValueError, match="needs the mobilenetv3 space, not 'nb201'"):
        trainables.make("supernet", search_spaces.get("nb201"))


def test_bad_phase_through_raynas_run_is_one_line_and_exit_2(tmp_path):
    experiment = {
        "name": "bad-phase",
        "space": {"name": "mobilenetv3", "options": {"width_mult": WIDTH}},
        "searcher": "random",
        "trainable": {"name": "supernet", "options": {"phases": {"full": 1, "shrink": 2}}},
        "metric": "val_acc",
        "mode": "max",
        "storage_path": str(tmp_path),
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    proc = subprocess.run(
        [*RAYNAS, "run", str(tmp_path / "exp.yaml")],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown phase 'shrink'" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_supernets_of_a_sweep_run_through_raynas_run_and_load_back(ray_address, tmp_path):
    # Two supernets (seeds 0 and 1) as trials of one experiment through the real CLI: exit 0,
    # a supernet.pt per epoch, export names the largest subnet (what val_acc scores), and
    # load_supernet picks the trial with the best final val_acc_largest.
    options = {**TINY, "phases": {"full": 1, "expand": 1}, "threads": 1, "sweep": {"seed": [0, 1]}}
    experiment = {
        "name": "ofa",
        "space": {"name": "mobilenetv3", "options": {"width_mult": WIDTH, "resolution": 8}},
        "searcher": "random",
        "trainable": {"name": "supernet", "options": options},
        "metric": "val_acc",
        "mode": "max",
        "num_samples": 1,  # one trial per grid value (the default, 20, ran 40 supernets)
        "max_concurrent": 2,
        "resources": {"cpu": 1, "gpu": 0},
        "storage_path": str(tmp_path),
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    run = subprocess.run(
        [*RAYNAS, "run", str(tmp_path / "exp.yaml"), "--address", ray_address, "-q"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    folder = tmp_path / "ofa"
    finals = {}
    trials = sorted(folder.glob("supernet_trainable_*"))
    assert len(trials) == 2, trials
    for trial in trials:
        results = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert [r["phase"] for r in results] == ["full", "expand"]
        assert [r["training_iteration"] for r in results] == [1, 2]
        assert len(list(trial.glob(f"checkpoint_*/{CHECKPOINT_FILE}"))) == 2
        finals[results[-1]["seed"]] = results[-1]["val_acc_largest"]
    assert sorted(finals) == [0, 1]
    export = subprocess.run(
        [*RAYNAS, "export", str(folder)], capture_output=True, text=True, env=cli_env()
    )
    assert export.returncode == 0, export.stderr
    space = search_spaces.get("mobilenetv3")
    assert space.from_str(json.loads(export.stdout)["arch"]).blocks == LARGEST
    net, meta = load_supernet(folder)
    if finals[0] != finals[1]:
        assert meta["options"]["seed"] == max(finals, key=finals.get)
    assert meta["epoch"] == 2 and net.identity()["width_mult"] == WIDTH
    assert np.isfinite(net(torch.randn(2, 1, 8, 8)).detach().numpy()).all()
