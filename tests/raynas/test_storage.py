"""Experiments at a URI: ``file://`` and a real S3-compatible server (moto's, on 127.0.0.1).

A run keeps its config and its state backup at the URI, and ``report``, ``export``,
``status``, ``tensorboard`` and ``resume`` take the URI itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from helpers import EXAMPLES, RAYNAS, cli_env

from raynas import cli, experiment, storage
from raynas.config import ConfigError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


# ----------------------------------------------------------------------------- pure helpers
def test_redact_masks_credentials_of_a_uri():
    uri = "s3://AKIA:s3cr3t@bucket/x?endpoint_override=h:9&secret_key=k3y&region=eu"
    shown = storage.redact(uri)
    assert "s3cr3t" not in shown and "k3y" not in shown and "AKIA" not in shown
    assert shown.startswith("s3://***@bucket/x?") and "region=eu" in shown
    assert storage.has_secret(uri) and not storage.has_secret("s3://bucket/x?region=eu")
    assert storage.redact("/plain/path") == "/plain/path"


def test_location_writes_whole_files_and_lists_names(tmp_path):
    loc = storage.locate(f"file://{tmp_path}/exp")
    assert loc.is_local and not loc.exists()
    loc.write_text("a.json", "{}")
    loc.child("sub").write_text("b.txt", "x")
    assert loc.names() == ["a.json"] and loc.read_text("a.json") == "{}"
    assert (tmp_path / "exp" / "sub" / "b.txt").read_text() == "x"
    assert not [p for p in (tmp_path / "exp").iterdir() if p.name.startswith(".")]


def test_a_storage_path_that_is_a_file_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        storage.check_writable(storage.locate(blocker / "exp"))


@pytest.mark.parametrize(
    ("nodes", "fs_type", "refused"),
    [
        (["10.0.0.1"], "ext4", False),  # one node: the driver's own
        (["10.0.0.1", "10.0.0.1"], "ext4", False),  # several nodes on this machine
        (["10.0.0.1", "10.0.0.2"], "ext4", True),  # a node on another host
        (["10.0.0.1", "10.0.0.2"], "nfs4", False),  # ... but the folder is on NFS
        (["10.0.0.1", "10.0.0.2"], "fuse.s3fs", False),
        (["10.0.0.1", "10.0.0.2"], None, True),
    ],
)
def test_a_local_storage_path_is_refused_when_nodes_on_other_hosts_cannot_see_it(
    nodes, fs_type, refused
):
    why = experiment.shared_storage_problem("/data/results", nodes, "10.0.0.1", fs_type)
    assert (why is not None) == refused
    if refused:
        assert "10.0.0.2" in why and "s3://" in why and "file://" in why


def test_filesystem_type_reads_the_mount_table(tmp_path):
    mounts = Path("/proc/mounts")
    if not mounts.is_file():
        pytest.skip("no /proc/mounts here")
    root_type = next(
        line.split()[2] for line in mounts.read_text().splitlines() if line.split()[1] == "/"
    )
    assert experiment.filesystem_type("/") == root_type
    assert experiment.filesystem_type(str(tmp_path)) is not None


# -------------------------------------------------------------------------------- file://
@pytest.fixture(scope="module")
def file_uri_run(ray_address, tmp_path_factory):
    """A finished 6-trial run whose storage_path is a file:// URI."""
    root = tmp_path_factory.mktemp("uri")
    uri = f"file://{root}/remote"
    code = cli.main(
        [
            "run",
            str(EXAMPLES / "nb201_random.yaml"),
            "--storage-path",
            uri,
            "--name",
            "uri",
            "--set",
            "num_samples=6",
            "--address",
            ray_address,
            "-q",
        ]
    )
    assert code == 0
    return f"{uri}/uri", root / "remote" / "uri"


def test_a_uri_run_keeps_its_config_and_crash_record_in_the_experiment_folder(file_uri_run):
    _, folder = file_uri_run  # file://: on this machine, so the crash record is kept
    assert (folder / "raynas.yaml").is_file()
    assert (folder / ".raynas-record" / "state.json").is_file()
    assert len(list(folder.glob("table_trainable_*"))) == 6


@pytest.mark.parametrize("command", ["report", "status", "export"])
def test_reading_commands_take_the_uri(file_uri_run, command, capsys):
    uri, _ = file_uri_run
    code, out, err = run_cli([command, uri], capsys)
    assert code == 0, err
    if command == "export":
        assert json.loads(out)["space"] == "nb201"
    elif command == "report":
        assert "trials: 6 of num_samples=6   terminated: 6" in out
    else:
        assert "finished" in out.splitlines()[0] and "trials: 6 of 6 finished" in out


def test_resume_of_a_uri_without_an_experiment_is_a_user_error(tmp_path, capsys):
    code, _, err = run_cli(["resume", f"file://{tmp_path}/nothing"], capsys)
    assert code == 2 and "experiment folder not found" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["resume", f"file://{tmp_path}/empty"], capsys)
    assert code == 2 and "not a raynas experiment folder" in err


# ------------------------------------------------------------------------------ resume safety
def _finished_copy(file_uri_run, tmp_path) -> Path:
    _, folder = file_uri_run
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return copy


def test_resume_refuses_a_folder_other_users_can_write(file_uri_run, tmp_path, capsys):
    copy = _finished_copy(file_uri_run, tmp_path)
    copy.chmod(0o777)
    code, _, err = run_cli(["resume", str(copy)], capsys)
    assert code == 2 and f"{copy} is writable by other users" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    copy.chmod(0o755)
    state = next(copy.glob("searcher-state-*.pkl"), None) or next(copy.glob("*.pkl"))
    state.chmod(state.stat().st_mode | stat.S_IWOTH)
    code, _, err = run_cli(["resume", str(copy)], capsys)
    assert code == 2 and f"{state} is writable by other users" in err


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a file to another user")
def test_resume_refuses_a_folder_with_files_of_another_user(file_uri_run, tmp_path, capsys):
    copy = _finished_copy(file_uri_run, tmp_path)
    trial = next(copy.glob("table_trainable_*/result.json"))
    os.chown(trial, 54321, 54321)
    code, _, err = run_cli(["resume", str(copy)], capsys)
    assert code == 2 and f"{trial} is owned by another user (uid 54321)" in err


# ------------------------------------------------------------------------------ errored trials
def test_a_run_with_errored_trials_names_them_and_exits_3(ray_address, tmp_path, capsys):
    # The curves trainable can replay only its stored cells: a random NB201 cell errors.
    exp = tmp_path / "errors.yaml"
    exp.write_text(
        "space: nb201\nsearcher: random\ntrainable: curves\nmetric: val_acc\nmode: max\n"
        "num_samples: 2\nmax_failures: 0\nseed: 3\n"
    )
    code, out, err = run_cli(
        ["run", str(exp), "--storage-path", str(tmp_path), "--address", ray_address, "-q"],
        capsys,
    )
    assert code == cli.EXIT_TRIALS_ERRORED, err
    assert "errored trials (2;" in out and "ValueError" in out and "error.txt" in out
    assert "2 of 2 trials errored" in err and f"raynas resume {tmp_path / 'errors'}" in err


# ----------------------------------------------------------------------------------- S3
@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 with a bucket; yields (uri of the bucket, env)."""
    # The one installed with this Python's moto (a `moto_server` on PATH may be another's).
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(server), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.time() < deadline, "moto did not start"
                time.sleep(0.2)
        query = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        fs, _ = pafs.FileSystem.from_uri(f"s3://raynas-test?{query}&allow_bucket_creation=true")
        fs.create_dir("raynas-test")
        yield f"s3://raynas-test/results?{query}", query
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _exp_uri(root: str, name: str) -> str:
    base, _, query = root.partition("?")
    return f"{base}/{name}?{query}"


def test_a_missing_bucket_is_one_line_and_exit_2_before_ray_starts(s3, tmp_path):
    _, query = s3
    out = subprocess.run(
        [
            *RAYNAS,
            "run",
            str(EXAMPLES / "nb201_random.yaml"),
            "--storage-path",
            f"s3://no-such-bucket/x?{query}",
            "-q",
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write to storage s3://no-such-bucket/x" in lines[0]
    assert "Bucket 'no-such-bucket' not found" in lines[0]
    assert "Ray" not in out.stderr and "Request ID" not in out.stderr


@pytest.mark.slow
def test_s3_run_interrupted_then_status_report_and_resume_by_uri(s3, tmp_path, capsys):
    root, _ = s3
    # A secret in the URI on purpose (moto ignores it): it must reach neither raynas.yaml
    # nor the console.
    root_with_key = root.replace("s3://", "s3://testing:SECRETMARKER@", 1)
    name = "s3run"
    proc = subprocess.Popen(
        [
            *RAYNAS,
            "run",
            str(EXAMPLES / "nb201_random.yaml"),
            "--storage-path",
            root_with_key,
            "--name",
            name,
            "-q",
            "--set",
            "num_samples=8",
            "--set",
            "max_concurrent=1",
            "--set",
            "trainable.options.delay_s=1.0",
        ],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    uri = _exp_uri(root, name)
    loc = storage.locate(uri)
    deadline = time.time() + 180
    while len(list(storage.mirror(loc).glob("table_trainable_*/result.json"))) < 3:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no results at the URI in time"
        time.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "SECRETMARKER" not in out + err
    assert "SECRETMARKER" not in loc.read_text("raynas.yaml")
    assert "raynas resume s3://***@raynas-test/results/s3run?" in err

    code, text, _ = run_cli(["status", uri], capsys)
    assert code == 0 and "not running" in text.splitlines()[0]
    assert "nodes (from the trials' results):" in text

    resumed = subprocess.run(
        [*RAYNAS, "resume", uri], env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    code, text, _ = run_cli(["report", uri], capsys)
    assert code == 0 and "trials: 8 of num_samples=8   terminated: 8" in text
    assert loc.exists(".raynas-state") and loc.child(".raynas-state").names()


@pytest.mark.slow
def test_tensorboard_serves_an_experiment_at_an_s3_uri(s3, tmp_path, capsys):
    root, _ = s3
    # Its own Ray (a subprocess): the workers must see the S3 credentials of the environment.
    run = subprocess.run(
        [
            *RAYNAS,
            "run",
            str(EXAMPLES / "nb201_random.yaml"),
            "--storage-path",
            root,
            "--name",
            "tb",
            "-q",
            "--set",
            "num_samples=4",
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    port = _free_port()
    env = {**cli_env(), "RAYNAS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [*RAYNAS, "tensorboard", _exp_uri(root, "tb"), "--port", str(port), "--refresh-s", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, tags = time.time() + 90, {}
        while time.time() < deadline and "search" not in tags:
            try:
                url = f"http://127.0.0.1:{port}/data/plugin/scalars/tags"
                with urllib.request.urlopen(url, timeout=2) as resp:
                    tags = json.loads(resp.read())
            except OSError:
                pass
            time.sleep(1)
        assert "search/best_val_acc" in tags.get("search", {}), tags
        assert len([r for r in tags if r.startswith("table_trainable_")]) == 4
        # the images the driver drew at the end of the experiment reached the bucket too
        url = f"http://127.0.0.1:{port}/data/plugin/images/tags"
        with urllib.request.urlopen(url, timeout=5) as resp:
            images = json.loads(resp.read())
        assert set(images.get("search", {})) == {"search/best_so_far", "search/op_frequency"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
