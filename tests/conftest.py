"""Shared fixtures: one real local Ray (num_cpus=2, bound to 127.0.0.1) for the session."""

from __future__ import annotations

import os

# Must be set before Ray is imported: every Ray process of the tests binds to loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_address():
    """Address of a local Ray cluster shared by the whole session; shut down at the end."""
    import ray

    # "local": a Ray of our own, even when a `ray start` cluster runs on this machine (a plain
    # ray.init() would attach to it).
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
