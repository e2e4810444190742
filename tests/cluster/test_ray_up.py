"""`ray up` of the shipped clusters/local.yaml, end to end, on a confined local "host".

The flow (benchmarks/ray_up.py, which also times it): an sshd on 127.0.0.1 in its own PID,
network and mount namespaces; ``ray up -y`` of clusters/local.yaml with only the host, SSH
access and cluster name filled in; ``ray exec`` of ``raynas run ... --address auto`` and of
``raynas report``; ``ray down -y``. ``ray down``'s ``ray stop`` sees only the node's processes,
so the machine's other Ray instances (this session's included) are never touched.
"""

from __future__ import annotations

import pytest
from helpers import load_benchmark

RAY_UP = load_benchmark("ray_up")
SAMPLES = 12

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One run of the flow; the node is stopped before the tests look at what it left."""
    why = RAY_UP.missing_requirements()
    if why:
        pytest.skip(why)
    run = RAY_UP.ClusterRun(tmp_path_factory.mktemp("ray-up"), samples=SAMPLES)
    try:
        run.setup()
        for step in (run.up, run.run_experiment, run.report):
            if step().returncode != 0:
                break
        else:
            run.exec(
                "gcs probe",
                'python -c "from raynas.auth import requires_token; '
                "print('requires token:', requires_token('127.0.0.1:6379', None))\"",
            )
        run.down()
    finally:
        run.close()
    print("\n" + RAY_UP.format_table([run.flow], SAMPLES))
    return run


def _step(cluster, name: str):
    step = cluster.flow.steps[name]
    assert step.returncode == 0, f"{name} exited {step.returncode}:\n{step.output[-4000:]}"
    return step


def test_ray_up_exec_run_and_report_finish_every_trial(cluster):
    from raynas import results

    for name in ("ray up", "raynas run", "raynas report", "ray down"):
        _step(cluster, name)
    summary = results.load(cluster.flow.exp_dir)
    assert summary.states == {"TERMINATED": SAMPLES}
    report = cluster.flow.steps["raynas report"].output
    assert f"trials: {SAMPLES} of num_samples={SAMPLES}   terminated: {SAMPLES}" in report
    assert cluster.flow.first_result_s is not None
    assert cluster.flow.first_result_s <= cluster.flow.steps["raynas run"].wall_s


def test_node_install_keeps_the_images_torch(cluster):
    import torch

    out = _step(cluster, "ray up").output
    line = next(x for x in out.splitlines() if "install.sh: raynas ready" in x)
    # The node's venv (--system-site-packages on this venv's Python) uses the torch it found.
    site = torch.__file__.rsplit("/torch/", 1)[0]
    assert f"torch {torch.__version__} from {site}" in line
    assert "installing torch" not in out


def test_ray_down_leaves_no_process_of_the_cluster(cluster):
    _step(cluster, "ray down")
    started = cluster.flow.ray_pids_up
    assert any("gcs_server" in c for c in started.values())
    assert any("raylet" in c for c in started.values())
    assert cluster.flow.ray_pids_down == {}


def test_token_auth_is_on_and_the_token_file_private_on_the_node(cluster):
    assert cluster.flow.node_token_mode == 0o600
    probe = _step(cluster, "gcs probe").output
    assert "requires token: True" in probe


def test_dashboard_listens_on_the_heads_loopback_only(cluster):
    listen = cluster.flow.dashboard_listen
    assert [a for a in listen if a.endswith(":8265")] == ["127.0.0.1:8265"]


def test_token_appears_in_no_output_or_log(cluster):
    token = cluster.flow.token
    assert len(token) >= 32
    assert token not in cluster.flow.outputs()
    node = cluster.node
    files = [
        *node.tmp_ray.glob("session_*/logs/**/*"),
        *(node.home / "raynas_results").rglob("*"),
    ]
    readable = [f for f in files if f.is_file() and f.stat().st_size < 50_000_000]
    assert len(readable) > 10
    leaked = [str(f) for f in readable if token.encode() in f.read_bytes()]
    assert leaked == []
