"""Shared fixtures: one real local Ray (num_cpus=2, bound to 127.0.0.1) for the session."""

from __future__ import annotations

import os

# Must be set before Ray is imported: every Ray process of the tests binds to loopback.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
# One torch (OpenMP) intra-op thread in the test process and in what it starts (CLI
# subprocesses, the session Ray's workers): the tests' networks are tiny, and on a 2-core
# machine that also runs Ray, a second thread spins waiting for a busy core (a DARTS order-2
# epoch of test_darts_search: 56 s with 2 threads, 2.4 s with 1, on 2 cores, one of them busy).
# Tests of code that changes the thread count set a count of their own first.
os.environ.setdefault("OMP_NUM_THREADS", "1")

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


@pytest.fixture
def two_torch_threads():
    """torch on 2 intra-op threads for one test (the session runs on 1), restored after: for
    tests that check code which changes the thread count puts the caller's count back."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
