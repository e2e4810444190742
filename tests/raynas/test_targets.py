"""raynas.hardware.targets: named latency tables per hardware target, and their CLI."""

from __future__ import annotations

import subprocess

import pytest
import torch
from helpers import RAYNAS, cli_env

from raynas.hardware import LatencyTable, targets
from raynas.hardware.targets import Target, TargetTableError

FAST = dict(probes=9, warmup=0, repeats=1, rounds=1, calibration_repeats=1, calibration_subnets=0)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("cpu-b1", Target("cpu-b1", "cpu", 1, 1)),
        ("cpu-b64", Target("cpu-b64", "cpu", 64, 1)),
        ("cpu-b8-t2", Target("cpu-b8-t2", "cpu", 8, 2)),
        ("cuda-b64", Target("cuda-b64", "cuda", 64, None)),
    ],
)
def test_target_names_parse(name, expected):
    assert targets.parse(name) == expected
    assert expected.metric == f"latency_ms_{name}"


@pytest.mark.parametrize("name", ["gpu-b1", "cpu-1", "cpu-b0", "cuda-b64-t2", "", 3])
def test_bad_target_names_are_named(name):
    with pytest.raises(ValueError, match="hardware target"):
        targets.parse(name)


def test_targets_must_be_distinct():
    with pytest.raises(ValueError, match="distinct"):
        targets.parse_all(["cpu-b1", "cpu-b1"])
    assert [t.name for t in targets.parse_all("cpu-b1")] == ["cpu-b1"]


def test_missing_table_says_how_to_build_it(tmp_path):
    with pytest.raises(TargetTableError) as err:
        targets.table("cpu-b64", 8, 0.35, cache_dir=tmp_path)
    text = str(err.value)
    assert "\n" not in text
    assert "raynas latency-table cpu-b64 --resolution 8 --width-mult 0.35" in text


def test_built_table_is_read_back_and_other_resolution_is_named(tmp_path):
    built = targets.table("cpu-b1", 8, 0.35, cache_dir=tmp_path, build=True, **FAST)
    assert not built.from_cache and built.batch_size == 1 and built.meta["threads"] == 1
    again = targets.table("cpu-b1", 8, 0.35, cache_dir=tmp_path)
    assert again.from_cache and again.rows == built.rows
    with pytest.raises(TargetTableError) as err:
        targets.table("cpu-b1", 16, 0.35, cache_dir=tmp_path)
    text = str(err.value)
    assert "built at resolution 8, width_mult 0.35, not at the experiment's resolution 16" in text
    # the batch-64 target is another table on the same device
    with pytest.raises(TargetTableError, match="has no latency table"):
        targets.table("cpu-b64", 8, 0.35, cache_dir=tmp_path)


def test_batch_64_table_predicts_more_than_batch_1(tmp_path):
    b1 = targets.table("cpu-b1", 8, 0.35, cache_dir=tmp_path, build=True, **FAST)
    b64 = targets.table("cpu-b64", 8, 0.35, cache_dir=tmp_path, build=True, **FAST)
    assert isinstance(b64, LatencyTable) and b64.batch_size == 64
    assert b64.row_sum(targets_largest()) > b1.row_sum(targets_largest())


def targets_largest():
    from search_spaces.mobilenetv3 import MobileNetV3Genotype

    return MobileNetV3Genotype((4,) * 5, (((7, 6),) * 4,) * 5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_target_without_gpu_is_one_line(tmp_path):
    with pytest.raises(TargetTableError, match="needs a CUDA GPU and this machine has none"):
        targets.table("cuda-b64", 8, 0.35, cache_dir=tmp_path)


@pytest.mark.parametrize(
    "target, needle",
    [
        ("gpu-b1", "unknown hardware target 'gpu-b1'"),
        *([] if torch.cuda.is_available() else [("cuda-b64", "needs a CUDA GPU")]),
    ],
)
def test_latency_table_cli_bad_target_is_exit_2(tmp_path, target, needle):
    env = {**cli_env(), "RAYNAS_LATENCY_CACHE": str(tmp_path)}
    proc = subprocess.run(
        [*RAYNAS, "latency-table", target, "--resolution", "8", "--width-mult", "0.35"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
