"""Ray token authentication: a private token file, and one clear line for a missing token.

The cluster tests run a real token-mode head (`ray start --head --block`, RAY_AUTH_MODE=token,
private ports and temp dir on 127.0.0.1), stopped by the pids of its process tree.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import EXAMPLES, RAYNAS, cli_env

from raynas import auth
from raynas.config import ConfigError

AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A HOME of its own (``~/.ray/auth_token`` inside it), no auth settings inherited."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in AUTH_VARS:
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_world_readable_token_file_is_made_private_and_logged_once(home, caplog):
    token = home / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("a" * 64)
    token.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="raynas.auth"):
        auth.secure_token_file()
        auth.secure_token_file()
    assert _mode(token) == 0o600
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "0o644" in warnings[0] and str(token) in warnings[0]
    assert "a" * 64 not in caplog.text


def test_token_path_env_is_the_file_secured(home, monkeypatch):
    custom = home / "elsewhere" / "tok"
    custom.parent.mkdir()
    custom.write_text("b" * 64)
    custom.chmod(0o640)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(custom))
    assert auth.secure_token_file() == custom
    assert _mode(custom) == 0o600


def test_missing_token_is_created_private_for_a_new_local_ray(home):
    created = auth.create_private_token()
    assert created == home / ".ray" / "auth_token"
    assert _mode(created) == 0o600
    text = created.read_text()
    assert len(text) == 64 and int(text, 16) >= 0
    assert auth.create_private_token() is None  # never replaced
    assert created.read_text() == text


def test_no_token_file_is_created_when_auth_is_disabled_or_in_the_environment(home, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert auth.create_private_token() is None
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "c" * 64)
    assert auth.create_private_token() is None
    assert not (home / ".ray" / "auth_token").exists()


def _clean_env(home: Path) -> dict[str, str]:
    env = cli_env()
    env["HOME"] = str(home)
    for var in AUTH_VARS:
        env.pop(var, None)
    return env


@pytest.mark.slow
def test_new_local_ray_started_by_raynas_leaves_the_token_file_private(tmp_path):
    # A real embedded Ray (ray.init() makes the token file itself when none exists, 0644).
    code = (
        "from raynas.experiment import init_ray\n"
        "import ray\n"
        "init_ray(num_cpus=1)\n"
        "assert ray.is_initialized()\n"
        "ray.shutdown()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env(tmp_path), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    token = tmp_path / ".ray" / "auth_token"
    assert _mode(token) == 0o600
    assert token.read_text().strip() not in proc.stdout + proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        try:
            stack += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return out


def _stop_tree(proc: subprocess.Popen) -> None:
    pids = _tree(proc.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
    proc.wait()


@pytest.fixture(scope="module")
def token_head(tmp_path_factory):
    """A real token-mode Ray head on 127.0.0.1 (own ports and temp dir): (address, token)."""
    root = tmp_path_factory.mktemp("token-head")
    token = "0123456789abcdef" * 4
    token_file = root / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths
    env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token_file),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # one node only: every process on loopback
        HOME=str(root),
    )
    workers = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block"]
        + ["--node-ip-address=127.0.0.1", f"--port={port}", f"--temp-dir={temp_dir}"]
        + ["--num-cpus=1", "--include-dashboard=false"]
        + [f"--ray-client-server-port={_free_port()}"]
        + [f"--min-worker-port={workers}", f"--max-worker-port={workers + 30}"],
        env=env,
        stdout=open(root / "head.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while auth.requires_token(address, None) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"token head did not start: {(root / 'head.log').read_text()}")
            time.sleep(0.5)
        yield address, token
    finally:
        _stop_tree(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _run_cli(args: list[str], home: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*RAYNAS, *args], env=_clean_env(home), capture_output=True, text=True, timeout=timeout
    )


def _run_args(address: str, storage: Path) -> list[str]:
    return [
        "run",
        str(EXAMPLES / "nb201_random.yaml"),
        "--address",
        address,
        "--storage-path",
        str(storage),
        "--set",
        "num_samples=2",
        "-q",
    ]


def test_token_head_refuses_calls_without_its_token(token_head):
    address, token = token_head
    assert auth.requires_token(address, None) is True
    assert auth.requires_token(address, "f" * 64) is True
    assert auth.requires_token(address, token) is False


@pytest.mark.slow
def test_joining_a_token_cluster_without_a_token_is_one_line_and_exit_2(token_head, tmp_path):
    address, token = token_head
    proc = _run_cli(_run_args(address, tmp_path / "results"), tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"raynas: error: the Ray cluster at {address} requires an auth")
    assert "ray get-auth-token" in lines[0] and "~/.ray/auth_token" in lines[0]
    assert "RAY_AUTH_TOKEN" in lines[0]
    assert not (tmp_path / ".ray" / "auth_token").exists()  # none invented for a cluster


def test_joining_with_another_clusters_token_is_one_line_and_exit_2(token_head, tmp_path):
    address, token = token_head
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("f" * 64)
    (tmp_path / ".ray" / "auth_token").chmod(0o600)
    proc = _run_cli(_run_args(address, tmp_path / "results"), tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the auth token" in lines[0], proc.stderr
    assert "f" * 64 not in proc.stderr


@pytest.mark.slow
def test_token_file_here_joins_an_explicit_address_without_auth_mode_set(token_head, tmp_path):
    # Ray alone sends no token to an explicit address unless RAY_AUTH_MODE=token.
    address, token = token_head
    token_file = tmp_path / ".ray" / "auth_token"
    token_file.parent.mkdir()
    token_file.write_text(token + "\n")
    token_file.chmod(0o644)
    proc = _run_cli(_run_args(address, tmp_path / "results"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best architecture" in proc.stdout
    assert _mode(token_file) == 0o600
    assert token not in proc.stdout + proc.stderr


def test_check_cluster_token_names_a_disabled_auth_mode(token_head, home, monkeypatch):
    address, token = token_head
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(ConfigError, match="RAY_AUTH_MODE=disabled"):
        auth.check_cluster_token(address)
