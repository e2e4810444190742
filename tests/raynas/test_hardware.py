"""raynas.hardware: latency measurement and the mobilenetv3 latency lookup table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from raynas import hardware
from raynas.hardware import (
    FIXED_PARTS,
    LatencyCacheError,
    LatencyStats,
    LatencyTable,
    block_key,
    device_key,
    distinct_block_specs,
    measure_latency,
    network_segments,
    probe_genotypes,
)
from search_spaces.mobilenetv3 import MobileNetV3Space

RES = 32
WIDTH = 0.35
# The smallest table that exercises everything: 9 probes, one pass each.
FAST = dict(probes=9, warmup=0, repeats=1, rounds=1, calibration_repeats=1)


def _build(cache_dir, **overrides) -> LatencyTable:
    kwargs = dict(
        space=MobileNetV3Space(width_mult=WIDTH, resolution=RES),
        threads=1,
        cache_dir=cache_dir,
        calibration_subnets=3,
        **FAST,
    )
    kwargs.update(overrides)
    return LatencyTable.build(**kwargs)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> LatencyTable:
    return _build(tmp_path_factory.mktemp("latency"))


def _fail(*args, **kwargs):
    raise AssertionError("measured although a valid cache file exists")


# --------------------------------------------------------------------------- measurement
def test_interleaved_samples_share_the_calls_over_rounds():
    models = [nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 4))]
    samples = hardware.interleaved_latency_samples(models, (4,), repeats=7, rounds=3, warmup=1)
    assert [len(t) for t in samples] == [7, 7]
    assert all(ms > 0 and np.isfinite(ms) for t in samples for ms in t)
    with pytest.raises(ValueError, match="rounds"):
        hardware.interleaved_latency_samples(models, (4,), rounds=0)


def test_measure_latency_returns_sane_stats_on_tiny_model():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    model.train()
    stats = measure_latency(model, (8,), warmup=2, repeats=20)
    assert isinstance(stats, LatencyStats)
    assert stats.n == 20
    assert 0 < stats.min_ms <= stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.mean_ms > 0
    assert model.training, "the model's train/eval mode must be restored"


def test_measure_latency_restores_thread_count(two_torch_threads):
    before = torch.get_num_threads()
    assert before == 2
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(torch.get_num_threads())
            return x

    measure_latency(Probe(), (4,), warmup=0, repeats=2, threads=1)
    assert set(seen) == {1}
    assert torch.get_num_threads() == before


def test_measure_latency_runs_under_inference_mode_in_eval():
    modes = []

    class Probe(nn.Module):
        def forward(self, x):
            modes.append((self.training, torch.is_inference_mode_enabled(), x.shape))
            return x

    measure_latency(Probe(), (3, 5, 5), batch_size=4, warmup=1, repeats=2)
    assert modes == [(False, True, (4, 3, 5, 5))] * 3


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"device": "tpu"}, "'tpu'"),
        ({"device": "not a device"}, "'not a device'"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": -2}, "got -2"),
        ({"repeats": 0}, "repeats must be an integer >= 1, got 0"),
        ({"threads": 0}, "threads must be an integer >= 1, got 0"),
        ({"input_shape": ()}, "input_shape"),
        ({"input_shape": (3, 0)}, "(3, 0)"),
    ],
)
def test_measure_latency_rejects_bad_inputs(kwargs, needle):
    args = {"model": nn.Identity(), "input_shape": (4,), "warmup": 0, "repeats": 1}
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        measure_latency(**args)
    assert needle in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_measure_latency_on_missing_cuda_names_the_device():
    with pytest.raises(ValueError, match="'cuda:0'.*CUDA is not available"):
        measure_latency(nn.Identity(), (4,), device="cuda:0", repeats=1)


def test_device_key_names_cpu_and_threads():
    key = device_key("cpu", threads=3)
    assert key.startswith("cpu-") and key.endswith("-threads3")
    assert device_key("cpu", threads=1) != key


# ------------------------------------------------------------------------------ the table
def test_nine_probe_subnets_hold_every_distinct_block():
    space = MobileNetV3Space(width_mult=WIDTH, resolution=RES)
    covered = set()
    for genotype in probe_genotypes(9):
        covered |= {block_key(b) for b in space.blocks(genotype)[1:]}
    expected = {block_key(s) for s in distinct_block_specs(RES, WIDTH)}
    assert len(expected) == 90
    assert covered == expected


def test_network_segments_chained_equal_forward():
    space = MobileNetV3Space(width_mult=WIDTH, resolution=RES)
    genotype = space.sample(np.random.default_rng(3))
    net = space.build(genotype).eval()
    segments = network_segments(net, RES)
    keys = [key for key, _ in segments]
    blocks = space.blocks(genotype)
    assert keys == ["stem", *(block_key(b) for b in blocks[1:]), "final_expand", "head"]
    x = torch.randn(2, 3, RES, RES)
    with torch.inference_mode():
        h = x
        for _, module in segments:
            h = module(h)
        assert torch.equal(h, net(x))


def test_table_has_every_block_of_random_subnets(table):
    space = MobileNetV3Space(width_mult=WIDTH, resolution=RES)
    assert set(table.fixed) == set(FIXED_PARTS)
    assert 0 < len(table.rows) <= 90  # stage x position kind x kernel x expand
    rng = np.random.default_rng(0)
    for _ in range(30):
        genotype = space.sample(rng)
        for block in space.blocks(genotype)[1:]:  # the fixed first block is in "stem"
            assert block_key(block) in table.rows
        assert table.predict(genotype) > 0


def test_predict_is_scaled_sum_of_rows_and_fixed_parts(table):
    space = MobileNetV3Space(width_mult=WIDTH, resolution=RES)
    genotype = space.sample(np.random.default_rng(1))
    blocks = space.blocks(genotype)
    assert blocks[0]["stage"] == 0
    expected = sum(table.rows[block_key(b)].median_ms for b in blocks[1:])
    expected += sum(table.fixed[part].median_ms for part in FIXED_PARTS)
    assert table.row_sum(genotype) == pytest.approx(expected, rel=1e-12)
    assert table.predict(genotype) == pytest.approx(
        table.scale * expected + table.offset_ms, rel=1e-12
    )
    assert table.predict(space.to_str(genotype)) == table.predict(genotype)


def test_predict_without_calibration_is_the_plain_sum(tmp_path):
    table = _build(tmp_path, calibration_subnets=0)
    genotype = MobileNetV3Space().sample(np.random.default_rng(2))
    assert (table.scale, table.offset_ms) == (1.0, 0.0)
    assert table.predict(genotype) == table.row_sum(genotype)


def test_calibration_is_recorded(table):
    assert len(table.calibration) == 3
    assert {"arch", "row_sum_ms", "measured_ms"} <= set(table.calibration[0])
    assert hardware.SCALE_BOUNDS[0] <= table.scale <= hardware.SCALE_BOUNDS[1]


def test_second_build_reuses_cache_without_measuring(table, monkeypatch):
    assert not table.from_cache
    monkeypatch.setattr(hardware.measure, "latency_samples", _fail)
    again = _build(table.path.parents[1])
    assert again.from_cache
    assert again.path == table.path
    assert again.rows == table.rows and again.fixed == table.fixed
    assert (again.scale, again.offset_ms) == (table.scale, table.offset_ms)
    loaded = LatencyTable.load(
        resolution=RES, width_mult=WIDTH, threads=1, cache_dir=table.path.parents[1]
    )
    assert loaded.rows == table.rows


def test_cache_is_keyed_by_device_resolution_width_and_batch(table):
    cache_dir = table.path.parents[1]
    assert table.path.parent.name == device_key("cpu", threads=1)
    with pytest.raises(LatencyCacheError, match="no latency table"):
        LatencyTable.load(resolution=RES + 8, width_mult=WIDTH, threads=1, cache_dir=cache_dir)
    with pytest.raises(LatencyCacheError, match="no latency table"):
        LatencyTable.load(resolution=RES, width_mult=0.5, threads=1, cache_dir=cache_dir)
    with pytest.raises(LatencyCacheError, match="no latency table"):
        LatencyTable.load(
            resolution=RES, width_mult=WIDTH, batch_size=2, threads=1, cache_dir=cache_dir
        )
    with pytest.raises(LatencyCacheError, match="no latency table"):
        LatencyTable.load(resolution=RES, width_mult=WIDTH, threads=2, cache_dir=cache_dir)
    with pytest.raises(LatencyCacheError, match="no latency table"):
        LatencyTable.load(
            resolution=RES, width_mult=WIDTH, cache_dir=cache_dir, device_name="other-box"
        )


def test_cache_write_is_atomic_json(table):
    assert json.loads(table.path.read_text())["device"] == table.device
    assert [p.name for p in table.path.parent.iterdir()] == [table.path.name]


def test_corrupt_cache_load_raises_naming_the_file(tmp_path):
    built = _build(tmp_path, calibration_subnets=0)
    built.path.write_text('{"format": 1, "rows": ')
    with pytest.raises(LatencyCacheError, match="corrupt latency table") as err:
        LatencyTable.load(resolution=RES, width_mult=WIDTH, threads=1, cache_dir=tmp_path)
    assert str(built.path) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_corrupt_cache_build_measures_again_and_overwrites(tmp_path, caplog):
    built = _build(tmp_path, calibration_subnets=0)
    data = json.loads(built.path.read_text())
    del data["rows"]
    built.path.write_text(json.dumps(data))
    rebuilt = _build(tmp_path, calibration_subnets=0)
    assert not rebuilt.from_cache
    assert "measuring it again" in caplog.text
    assert LatencyTable.read(built.path).rows.keys() == built.rows.keys()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"device": "tpu"}, "'tpu'"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": -1}, "got -1"),
        ({"resolution": 0}, "resolution must be an integer >= 1, got 0"),
        ({"width_mult": 0.0}, "width_mult must be a number > 0, got 0.0"),
        ({"threads": 0}, "threads must be an integer >= 1, got 0"),
        ({"space": "nb201"}, "'nb201'"),
        ({"probes": 8}, "probes must be an integer >= 9, got 8"),
        ({"clock": "sundial"}, "unknown clock 'sundial'"),
    ],
)
def test_table_build_rejects_bad_inputs(tmp_path, monkeypatch, kwargs, needle):
    monkeypatch.setattr(hardware.measure, "latency_samples", _fail)
    with pytest.raises(ValueError) as err:
        _build(tmp_path, **kwargs)
    assert needle in str(err.value)


def test_predict_rejects_other_genotypes(table):
    with pytest.raises(ValueError, match="mobilenetv3"):
        table.predict("|avg_pool_3x3~0|")


def test_cpu_clock_measures_thread_time_with_one_thread():
    stats = measure_latency(nn.Linear(8, 8), (8,), warmup=1, repeats=5, threads=1, clock="cpu")
    assert stats.n == 5 and stats.median_ms >= 0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"clock": "sundial", "threads": 1}, "unknown clock 'sundial'"),
        ({"clock": "cpu", "threads": 2}, "clock 'cpu' needs device 'cpu' and threads=1"),
    ],
)
def test_measure_latency_rejects_bad_clocks(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        measure_latency(nn.Identity(), (4,), warmup=0, repeats=1, **kwargs)


def test_cache_is_keyed_by_clock(table, monkeypatch):
    cache_dir = table.path.parents[1]
    with pytest.raises(LatencyCacheError, match="no latency table"):
        LatencyTable.load(
            resolution=RES, width_mult=WIDTH, threads=1, cache_dir=cache_dir, clock="cpu"
        )
    cpu = _build(cache_dir, clock="cpu", calibration_subnets=0)
    assert cpu.clock == "cpu" and not cpu.from_cache and cpu.path != table.path
    monkeypatch.setattr(hardware.measure, "latency_samples", _fail)
    assert _build(cache_dir, clock="cpu", calibration_subnets=0).from_cache


def test_calibrate_fits_the_median_ratio_and_ignores_one_outlier(table):
    space = MobileNetV3Space(width_mult=WIDTH, resolution=RES)
    genotypes = [space.sample(np.random.default_rng(seed)) for seed in range(5)]
    factors = [1.5, 1.5, 1.5, 1.5, 1.95]  # one subnet timed while the machine was busy
    measured = [(g, f * table.row_sum(g)) for g, f in zip(genotypes, factors, strict=True)]
    fitted = table.calibrate(measured)
    assert fitted.scale == pytest.approx(1.5) and fitted.offset_ms == 0.0
    assert fitted.predict(genotypes[0]) == pytest.approx(1.5 * table.row_sum(genotypes[0]))
    assert fitted.rows is table.rows and len(fitted.calibration) == 5
    assert table.calibration != fitted.calibration  # the original is unchanged


def test_calibrate_clips_the_scale(table):
    genotype = MobileNetV3Space(width_mult=WIDTH, resolution=RES).sample(np.random.default_rng(0))
    fitted = table.calibrate([(genotype, 10.0 * table.row_sum(genotype))])
    assert fitted.scale == hardware.SCALE_BOUNDS[1]


def test_recalibrate_times_the_calibration_subnets_now(table):
    again = table.recalibrate(threads=1, subnets=2, repeats=2, rounds=2)
    assert len(again.calibration) == 2 and again.rows is table.rows
    expected = np.median([c["measured_ms"] / c["row_sum_ms"] for c in again.calibration])
    lo, hi = hardware.SCALE_BOUNDS
    assert again.scale == pytest.approx(min(max(expected, lo), hi))
    with pytest.raises(ValueError, match="subnets"):
        table.recalibrate(subnets=0)
