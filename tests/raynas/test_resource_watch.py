"""The unplaceable-trial warning: per-node comparison and its one line."""

from __future__ import annotations

import pytest

from raynas.config import ConfigError
from raynas.resource_watch import ResourceWatch, fits, unplaceable_message

CPU_NODES = [{"CPU": 1.0, "memory": 1e9}, {"CPU": 1.0, "memory": 1e9}, {"CPU": 0.0}]


def test_a_request_some_node_can_hold_gets_no_warning():
    assert unplaceable_message({"CPU": 1.0, "GPU": 0.0}, CPU_NODES, waiting=3) is None


def test_gpu_trial_on_cpu_nodes_is_named_with_what_the_cluster_has():
    message = unplaceable_message({"CPU": 1.0, "GPU": 1.0}, CPU_NODES, waiting=2)
    assert message.startswith("2 trials wait (PENDING) for resources no node of the cluster")
    assert "each asks {cpu: 1, gpu: 1}" in message
    assert "the largest of the 3 live nodes has {cpu: 1, gpu: 0}" in message
    assert "(cluster total {cpu: 2, gpu: 0})" in message
    assert "\n" not in message


def test_the_check_is_per_node_not_against_the_cluster_total():
    # 2 CPUs in all, 1 per node: a 2-CPU trial can never be placed
    assert fits({"CPU": 2.0}, {"CPU": 2.0}) and not fits({"CPU": 2.0}, {"CPU": 1.0})
    assert unplaceable_message({"CPU": 2.0}, CPU_NODES, waiting=1) is not None
    assert unplaceable_message({"CPU": 2.0}, [*CPU_NODES, {"CPU": 2.0}], waiting=1) is None


def test_no_live_node_is_unplaceable():
    assert "of the 0 live nodes has {cpu: 0}" in unplaceable_message({"CPU": 1}, [], waiting=1)


def test_period_must_be_positive():
    with pytest.raises(ValueError, match="period_s must be > 0, got 0"):
        ResourceWatch(period_s=0)


def test_period_comes_from_the_environment_when_not_given(monkeypatch):
    monkeypatch.delenv("RAYNAS_RESOURCE_WATCH_S", raising=False)
    assert ResourceWatch().period_s == 5.0
    monkeypatch.setenv("RAYNAS_RESOURCE_WATCH_S", "0.5")
    assert ResourceWatch().period_s == 0.5
    assert ResourceWatch(period_s=2).period_s == 2.0


@pytest.mark.parametrize("bad", ["0", "-1", "five", "nan", "inf"])
def test_a_bad_period_in_the_environment_is_a_user_error(monkeypatch, bad):
    monkeypatch.setenv("RAYNAS_RESOURCE_WATCH_S", bad)
    with pytest.raises(ConfigError, match=f"RAYNAS_RESOURCE_WATCH_S .* got '{bad}'"):
        ResourceWatch()
