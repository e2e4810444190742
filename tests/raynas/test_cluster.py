"""The shipped cluster files pass Ray's own checks and raynas's provider-key check."""

from __future__ import annotations

import copy

import pytest
import yaml
from helpers import REPO

from raynas import cli, cluster
from raynas.config import ConfigError

SHIPPED = [REPO / "cluster.yaml", REPO / "clusters" / "local.yaml"]
MISSPELT = {"aws": ("region", "regoin"), "local": ("head_ip", "head_iP")}


def _load(path):
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_file_passes_rays_prepare_and_validate(path):
    prepared = cluster.validate_with_ray(_load(path))
    assert prepared["head_node_type"] in prepared["available_node_types"]
    summary = cluster.check_file(path)
    assert summary.token_auth


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_file_secures_the_cluster(path):
    config = _load(path)
    text = path.read_text()
    assert "STATUS" not in text and "starting point" not in text
    # The user's token travels to every node and is made private there.
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    setup = config["setup_commands"]
    assert any("chmod 600 ~/.ray/auth_token" in c for c in setup)
    assert any("echo 'export RAY_AUTH_MODE=token' >> ~/.bashrc" in c for c in setup)
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token ray start" in c for c in starts)
    (head_start,) = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in head_start
    # The venv sees the image's packages (its CUDA torch) and gets the cluster extra.
    (install,) = [c for c in setup if "scripts/install.sh" in c]
    assert "VENV_SYSTEM_SITE=1" in install and "RAYNAS_EXTRAS=cluster" in install
    # The project is synced without the local venv and git data.
    assert config["file_mounts"]["~/raynas-src"] == "."
    assert ".gitignore" in config["rsync_filter"]


def test_aws_file_autoscales_gpu_workers_from_zero_behind_a_cpu_head():
    summary = cluster.check_file(SHIPPED[0])
    assert summary.provider == "aws"
    assert summary.node_types["head"] == (0, 0)
    assert summary.node_types["gpu_worker"][0] == 0 and summary.node_types["gpu_worker"][1] >= 1
    types = _load(SHIPPED[0])["available_node_types"]
    assert types["gpu_worker"]["node_config"]["InstanceType"].startswith(("g", "p"))
    assert "s3://YOUR-BUCKET/raynas" in SHIPPED[0].read_text()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_misspelt_provider_key_is_rejected_though_ray_accepts_it(path, tmp_path):
    config = _load(path)
    good, bad = MISSPELT[config["provider"]["type"]]
    broken = copy.deepcopy(config)
    broken["provider"][bad] = broken["provider"][good]
    if config["provider"]["type"] == "aws":
        del broken["provider"][good]  # Ray falls back to its default region, silently
    cluster.validate_with_ray(broken)  # Ray's own checks pass
    with pytest.raises(ConfigError) as err:
        cluster.check_provider_keys(broken)
    message = str(err.value)
    assert f"unknown provider key {bad!r}" in message and good in message


def test_check_cluster_cli_summarises_a_good_file(capsys):
    assert cli.main(["check-cluster", str(SHIPPED[1])]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "provider local" in out and "token authentication: on" in out


def test_check_cluster_cli_bad_key_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "cluster.yaml"
    bad.write_text(SHIPPED[0].read_text().replace("  region:", "  regoin:"))
    assert cli.main(["check-cluster", str(bad)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "unknown provider key 'regoin'" in lines[0]
    assert "valid keys:" in lines[0] and "region" in lines[0]
    assert captured.out == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "cluster file not found"),
        ("provider: [aws]\n", "needs a `provider:` mapping"),
        ("- a list\n", "must be a YAML mapping"),
        ("max_workers: {\n", "invalid YAML"),
    ],
)
def test_check_cluster_cli_unusable_file_is_one_line_and_exit_2(text, expected, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    if text is not None:
        path.write_text(text)
    assert cli.main(["check-cluster", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_rays_schema_error_names_the_field(tmp_path, capsys):
    config = _load(SHIPPED[1])
    config["max_workers"] = "four"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["check-cluster", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_workers" in err[0] and "'four'" in err[0]
