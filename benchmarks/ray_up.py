"""`ray up clusters/local.yaml` -> `raynas run` -> `raynas report` -> `ray down`, timed.

The "host" is an sshd on 127.0.0.1 inside new PID, network and mount namespaces (root only):

- ``ray down`` runs ``ray stop`` on the head, which kills every Ray process it can see; in the
  node's PID namespace it sees only the node's own processes, never the machine's other Rays.
- the node has its own loopback (Ray's default ports cannot clash) and no network, so its
  install step must work offline;
- root's home directory is a folder of this run (a copy of /etc/passwd bind-mounted inside),
  and so is the node's /tmp/ray (Ray's session files, ``ray_current_cluster``);
- the client reaches sshd with ``ssh_proxy_command: nsenter --target PID --net nc ...``.

The cluster file is ``clusters/local.yaml`` as shipped, with only ``provider`` (head_ip),
``auth`` (user, key, proxy command) and ``cluster_name`` replaced. Its setup commands run as
written; the host's site settings (sshd ``SetEnv``) make them fast and offline: ``PYTHON`` is
this venv's Python, so the node's venv (``--system-site-packages``) sees torch, Ray and the
other dependencies as a GPU image's venv would, and ``PIP_NO_INDEX`` with ``PIP_FIND_LINKS``
(a setuptools wheel repacked from this venv) builds raynas without an index.

The client side has its own HOME whose ``~/.ray/auth_token`` comes from
``ray get-auth-token --generate``, as a user's laptop would.

    python benchmarks/ray_up.py                      # one run, 20 table trials
    python benchmarks/ray_up.py --samples 50 --runs 3 --out benchmarks/results/ray_up.txt
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from local_cluster import live_glob  # noqa: E402

LOCAL_FILE = REPO / "clusters" / "local.yaml"
TOOLS = ("sshd", "ssh", "ssh-keygen", "rsync", "nc", "unshare", "nsenter", "ip", "ss")
SSH_PORT = 22  # inside the node's own network namespace: nothing else listens there
EXPERIMENT = "examples/nb201_random.yaml"  # relative to the project folder on the node


def missing_requirements() -> str | None:
    """Why this machine cannot run the flow (None when it can)."""
    if os.geteuid() != 0:
        return "needs root (PID/network/mount namespaces, sshd)"
    missing = [t for t in TOOLS if not shutil.which(t, path=os.environ["PATH"] + ":/usr/sbin")]
    if missing:
        debs = "openssh-server rsync netcat-openbsd iproute2 util-linux"
        return f"missing tools: {', '.join(missing)} (apt-get install {debs})"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "--net", "true"], capture_output=True
    )
    if probe.returncode != 0:
        return f"cannot create namespaces: {probe.stderr.decode().strip()}"
    return None


def offline_wheelhouse(dest: Path) -> Path:
    """A find-links folder holding this venv's setuptools as a wheel (raynas's build backend),
    so ``pip install -e .`` works with ``PIP_NO_INDEX=1``."""
    dest.mkdir(parents=True, exist_ok=True)
    dist = importlib.metadata.distribution("setuptools")
    root = Path(dist.locate_file(""))
    name, version = dist.metadata["Name"], dist.version
    record_name = f"{name}-{version}.dist-info/RECORD"
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for f in dist.files or []:
            rel = str(f)
            path = root / f
            skip = rel.startswith("..") or "__pycache__" in rel or rel == record_name
            if skip or not path.is_file():
                continue
            data = path.read_bytes()
            z.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{rel},sha256={digest.decode()},{len(data)}")
        z.writestr(record_name, "\n".join([*records, f"{record_name},,"]) + "\n")
    return dest


def _proc_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@dataclass
class Node:
    """One SSH-reachable "host" in its own PID, network and mount namespaces."""

    root: Path
    unshare: subprocess.Popen | None = None
    sshd_pid: int = 0

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp_ray(self) -> Path:
        return self.root / "tmp-ray"

    @property
    def key(self) -> Path:
        return self.root / "etc" / "user_key"

    @property
    def proxy_command(self) -> str:
        return f"nsenter --target {self.sshd_pid} --net nc 127.0.0.1 {SSH_PORT}"

    def start(self, env: dict[str, str]) -> None:
        """Start sshd with its own host key, user key and config; ``env`` is set (sshd
        ``SetEnv``) for every session, like a host's site settings."""
        etc = self.root / "etc"
        etc.mkdir(parents=True)
        (self.home / ".ssh").mkdir(parents=True, mode=0o700)
        self.tmp_ray.mkdir(mode=0o777)
        for key in ("host_key", "user_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(etc / key)], check=True
            )
        (self.home / ".ssh" / "authorized_keys").write_text((etc / "user_key.pub").read_text())
        # root's home on the node is self.home: a copy of /etc/passwd, bind-mounted inside.
        passwd = [
            ":".join([*f.split(":")[:5], str(self.home), f.split(":")[6]])
            if f.startswith("root:")
            else f
            for f in Path("/etc/passwd").read_text().splitlines()
        ]
        (etc / "passwd").write_text("\n".join(passwd) + "\n")
        set_env = " ".join(f"{k}={v}" for k, v in env.items())
        (etc / "sshd_config").write_text(
            f"Port {SSH_PORT}\nListenAddress 127.0.0.1\nHostKey {etc / 'host_key'}\n"
            f"PidFile {etc / 'sshd.pid'}\nAuthorizedKeysFile {self.home}/.ssh/authorized_keys\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            f"SetEnv {set_env}\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        Path("/tmp/ray").mkdir(mode=0o777, exist_ok=True)  # mount point only
        script = (
            f"mount --bind {etc / 'passwd'} /etc/passwd && "
            f"mount --bind {self.tmp_ray} /tmp/ray && ip link set lo up && "
            f"exec /usr/sbin/sshd -D -e -f {etc / 'sshd_config'}"
        )
        self.unshare = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--net", "--propagation", "private"]
            + ["sh", "-c", script],
            stdout=open(self.root / "sshd.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            children = _children(self.unshare.pid)
            if children and "sshd" in _cmdline(children[0]):
                self.sshd_pid = children[0]
                if self._listening():
                    return
            if self.unshare.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"sshd did not start: {(self.root / 'sshd.log').read_text()}")

    def _listening(self) -> bool:
        out = self.ns_run(["ss", "-ltn"])
        return f"127.0.0.1:{SSH_PORT} " in out

    def ns_run(self, cmd: list[str]) -> str:
        """``cmd``'s stdout, run in the node's network namespace."""
        full = ["nsenter", "--target", str(self.sshd_pid), "--net", *cmd]
        return subprocess.run(full, capture_output=True, text=True).stdout

    def pids(self) -> dict[int, str]:
        """Every process of the node (its PID namespace): host pid -> command line."""
        ns = _proc_ns(self.sshd_pid)
        out = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _proc_ns(int(entry.name)) == ns:
                out[int(entry.name)] = _cmdline(int(entry.name))
        return out

    def ray_pids(self) -> dict[int, str]:
        """The node's processes other than sshd (its listener and sessions): Ray's, and
        whatever else a command left running."""
        return {pid: cmd for pid, cmd in self.pids().items() if cmd and not cmd.startswith("sshd")}

    def stop(self) -> None:
        """Stop sshd (PID 1 of the namespace: the kernel then kills every process in it)."""
        if self.unshare is None:
            return
        if self.sshd_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.sshd_pid, signal.SIGKILL)
        try:
            self.unshare.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.unshare.kill()
            self.unshare.wait()
        self.unshare = None


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cluster_file(node: Node, dest: Path, cluster_name: str) -> Path:
    """``clusters/local.yaml`` with this node's address, SSH access and a unique name."""
    config = copy.deepcopy(yaml.safe_load(LOCAL_FILE.read_text()))
    config["cluster_name"] = cluster_name
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    config["auth"] = {
        "ssh_user": "root",
        "ssh_private_key": str(node.key),
        "ssh_proxy_command": node.proxy_command,
    }
    dest.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


@dataclass
class Step:
    """One timed command of the flow."""

    name: str
    cmd: list[str]
    returncode: int
    wall_s: float
    output: str


@dataclass
class Flow:
    """Everything a run of the flow measured and captured."""

    steps: dict[str, Step] = field(default_factory=dict)
    first_result_s: float | None = None
    ray_pids_up: dict[int, str] = field(default_factory=dict)
    ray_pids_down: dict[int, str] = field(default_factory=dict)
    exp_dir: Path | None = None
    token: str = ""
    node_token_mode: int | None = None
    dashboard_listen: list[str] = field(default_factory=list)
    install_s: float | None = None
    load_avg: float | None = None  # the machine's 1-minute load average after the run

    def outputs(self) -> str:
        return "\n".join(s.output for s in self.steps.values())


class ClusterRun:
    """Client side: a HOME with a Ray token, the `ray` CLI of this venv, the flow's steps."""

    def __init__(self, workdir: Path, samples: int, name: str = "ray-up"):
        self.workdir = workdir
        self.samples = samples
        self.name = name
        self.cluster_name = f"raynas-test-{os.getpid()}-{int(time.time() * 1000) % 10**6}"
        self.node = Node(workdir / "node")
        self.client_home = workdir / "client"
        self.ray = str(Path(sys.executable).parent / "ray")
        local_ray = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS", "RAY_AUTH_MODE")
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in local_ray and not k.startswith("RAY_AUTH_TOKEN")
        }
        self.env["HOME"] = str(self.client_home)
        self.file: Path | None = None
        self.flow = Flow()

    def _run(self, name: str, args: list[str], timeout: float = 600) -> Step:
        start = time.monotonic()
        proc = subprocess.run(
            [self.ray, *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        step = Step(
            name, args, proc.returncode, time.monotonic() - start, proc.stdout + proc.stderr
        )
        self.flow.steps[name] = step
        return step

    def exec(self, name: str, command: str, timeout: float = 600) -> Step:
        return self._run(name, ["exec", "--no-config-cache", str(self.file), command], timeout)

    def setup(self) -> None:
        """Start the node, write the cluster file, create the client's token."""
        self.client_home.mkdir(parents=True)
        wheels = offline_wheelhouse(self.workdir / "wheels")
        self.node.start(
            {"PYTHON": sys.executable, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
        )
        self.file = cluster_file(self.node, self.workdir / "cluster.yaml", self.cluster_name)
        gen = subprocess.run(
            [self.ray, "get-auth-token", "--generate"], env=self.env, capture_output=True
        )
        if gen.returncode != 0:
            raise RuntimeError(f"ray get-auth-token failed: {gen.stderr.decode()}")
        token_file = self.client_home / ".ray" / "auth_token"
        token_file.chmod(0o600)
        self.flow.token = token_file.read_text().strip()

    def up(self) -> Step:
        step = self._run("ray up", ["up", "-y", "--no-config-cache", str(self.file)])
        self.flow.ray_pids_up = self.node.ray_pids()
        self.flow.install_s = _install_seconds(step.output)
        token = self.node.home / ".ray" / "auth_token"
        if token.exists():
            self.flow.node_token_mode = token.stat().st_mode & 0o777
        self.flow.dashboard_listen = [
            line.split()[3] for line in self.node.ns_run(["ss", "-ltn"]).splitlines()[1:]
        ]
        return step

    def run_experiment(self) -> Step:
        """``raynas run`` on the head; records when the first trial result appeared."""
        self.flow.exp_dir = self.node.home / "raynas_results" / self.name
        command = (
            f"raynas run raynas-src/{EXPERIMENT} --address auto --name {self.name} "
            f"--set num_samples={self.samples} -q"
        )
        args = ["exec", "--no-config-cache", str(self.file), command]
        start = time.monotonic()
        proc = subprocess.Popen(
            [self.ray, *args],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        with _drain(proc) as out:
            while proc.poll() is None:
                if self.flow.first_result_s is None and self._any_result():
                    self.flow.first_result_s = time.monotonic() - start
                time.sleep(0.05)
        step = Step("raynas run", args, proc.returncode, time.monotonic() - start, "".join(out))
        if self.flow.first_result_s is None and self._any_result():
            self.flow.first_result_s = step.wall_s
        self.flow.steps[step.name] = step
        return step

    def _any_result(self) -> bool:
        # Tune's trial loggers write result.json in the driver's staging folder (the node's
        # /tmp/ray) and copy it to the experiment folder every couple of seconds.
        staged = live_glob(
            self.node.tmp_ray, f"session_*/artifacts/*/{self.name}/driver_artifacts/*"
        )
        stored = (self.node.home / "raynas_results" / self.name).glob("*")
        for trial in (*staged, *stored):
            result = trial / "result.json"
            with contextlib.suppress(OSError):
                if result.stat().st_size > 0:
                    return True
        return False

    def report(self) -> Step:
        return self.exec("raynas report", f"raynas report raynas_results/{self.name}")

    def down(self) -> Step:
        step = self._run("ray down", ["down", "-y", str(self.file)])
        deadline = time.monotonic() + 10  # `ray stop` has returned; let exits settle
        while time.monotonic() < deadline:
            alive = {p: c for p, c in self.flow.ray_pids_up.items() if _proc_ns(p) is not None}
            if not alive and not self.node.ray_pids():
                break
            time.sleep(0.2)
        self.flow.ray_pids_down = {
            **{p: c for p, c in self.flow.ray_pids_up.items() if _proc_ns(p) is not None},
            **self.node.ray_pids(),
        }
        return step

    def close(self) -> None:
        """Stop the node; remove the client-side state files of this cluster."""
        self.node.stop()
        for suffix in ("state", "lock"):
            with contextlib.suppress(OSError):
                Path(f"/tmp/ray/cluster-{self.cluster_name}.{suffix}").unlink()
        # `ray down` caches the prepared config in $TMPDIR/ray-config-<hash>.
        for cache in Path(tempfile.gettempdir()).glob("ray-config-*"):
            with contextlib.suppress(OSError):
                if f'"{self.cluster_name}"' in cache.read_text():
                    cache.unlink()


def _install_seconds(log: str) -> float | None:
    """Seconds from the start of setup command (1/4) (install.sh) to that of (2/4), from the
    timestamps of ray up's log lines."""
    stamps: dict[str, float] = {}
    for line in log.splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\s+INFO", line)
        for tag in ("(1/4)", "(2/4)"):
            if m and tag in line and tag not in stamps:
                stamps[tag] = time.mktime(time.strptime(m[1], "%Y-%m-%d %H:%M:%S"))
                stamps[tag] += int(m[2]) / 1000
    if len(stamps) == 2:
        return stamps["(2/4)"] - stamps["(1/4)"]
    return None


@contextlib.contextmanager
def _drain(proc: subprocess.Popen) -> Iterator[list[str]]:
    """Read ``proc``'s stdout in a thread (so a full pipe never blocks it) into a list."""
    import threading

    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(proc.stdout.readline, "")))
    reader.start()
    try:
        yield chunks
    finally:
        proc.wait()
        reader.join()


def run_flow(workdir: Path, samples: int) -> Flow:
    """The whole flow on a fresh node; the node is stopped at the end in every case."""
    run = ClusterRun(workdir, samples)
    try:
        run.setup()
        for step in (run.up, run.run_experiment, run.report):
            if step().returncode != 0:
                break
        run.down()
    finally:
        run.close()
    run.flow.load_avg = os.getloadavg()[0]
    return run.flow


ROWS = (
    ("ray up", "ray up -y (sync, install, ray start)"),
    ("install", "  of which install.sh on the node"),
    ("first result", "first trial result (from ray exec start)"),
    ("raynas run", "whole raynas run (ray exec)"),
    ("raynas report", "raynas report (ray exec)"),
    ("ray down", "ray down -y"),
    ("load", "machine load average (1 min) after the run"),
)


def _row_values(flow: Flow) -> dict[str, float | None]:
    return {
        "ray up": flow.steps["ray up"].wall_s if "ray up" in flow.steps else None,
        "install": flow.install_s,
        "first result": flow.first_result_s,
        "raynas run": flow.steps["raynas run"].wall_s if "raynas run" in flow.steps else None,
        "raynas report": (
            flow.steps["raynas report"].wall_s if "raynas report" in flow.steps else None
        ),
        "ray down": flow.steps["ray down"].wall_s if "ray down" in flow.steps else None,
        "load": flow.load_avg,
    }


def format_table(flows: list[Flow], samples: int) -> str:
    """Wall times per step (seconds), one column per run, then the median."""
    head = f"{'step':<42}" + "".join(f"{'run ' + str(i + 1):>9}" for i in range(len(flows)))
    lines = [head + f"{'median':>9}"]
    for key, label in ROWS:
        values = [_row_values(f)[key] for f in flows]
        cells = "".join(f"{v:>9.1f}" if v is not None else f"{'-':>9}" for v in values)
        known = sorted(v for v in values if v is not None)
        median = f"{known[len(known) // 2]:>9.1f}" if known else f"{'-':>9}"
        lines.append(f"{label:<42}{cells}{median}")
    ok = [all(s.returncode == 0 for s in f.steps.values()) and not f.ray_pids_down for f in flows]
    lines.append(
        f"\n{samples} NB201 table trials (examples/nb201_random.yaml) on a 1-node "
        f"clusters/local.yaml; all steps exit 0 and no Ray process left: {ok}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20, help="trials per raynas run")
    parser.add_argument("--runs", type=int, default=1, help="fresh nodes, one flow each")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    why = missing_requirements()
    if why:
        print(f"ray_up.py: cannot run: {why}", file=sys.stderr)
        return 2
    flows = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="raynas-ray-up-") as tmp:
            flow = run_flow(Path(tmp), args.samples)
        flows.append(flow)
        failed = [s for s in flow.steps.values() if s.returncode != 0]
        for s in failed:
            print(
                f"run {i + 1}: {s.name} exited {s.returncode}:\n{s.output[-3000:]}",
                file=sys.stderr,
            )
    table = format_table(flows, args.samples)
    header = (
        f"# benchmarks/ray_up.py --samples {args.samples} --runs {args.runs}\n"
        f"# {platform.node()}: {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end; seconds\n"
    )
    print(header + table)
    if args.out:
        Path(args.out).write_text(header + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
