"""A Ray cluster of several nodes on 127.0.0.1, whose worker nodes can be lost on purpose.

Used by ``node_loss.py``, ``cluster_throughput.py`` and ``tests/cluster/test_node_loss.py``.
``LocalCluster`` wraps ``ray.cluster_utils.Cluster`` (``connect=False``, so the process that
starts it keeps any Ray session it already has) and adds what those need:

- **Which node ran what.** On one machine every node has the same IP and hostname, so Tune's
  ``node_ip``/``hostname`` in a result cannot tell nodes apart; its ``pid`` can. Every Ray
  worker process is a child of its node's raylet, so a thread records, every 0.1 s, which
  raylet is the parent of each process (``/proc``); ``node_of(pid)`` names the node of a
  result's pid afterwards, also for nodes that were killed since. Trial actors live for the
  whole trial, so a 0.1 s poll sees each one.
- **Losing a node.** ``kill(name)`` sends SIGKILL to the node's raylet and, by default, to
  every process the raylet started (the trial workers), all at once: what the loss of a
  machine does. ``kill(name, workers=False)`` kills the raylet alone; its workers then keep
  running, and reporting, until the head declares the node dead (health checks) and the
  worker processes exit.
- **Fast failure detection** (``fast_detection=True``): the head checks each raylet every
  0.5 s and declares it dead after 3 missed checks (Ray's defaults: every 3 s, 5 misses), so
  a test sees the loss within ~2 s instead of ~15 s. Benchmarks that report recovery times
  keep the defaults.
- **Private files.** All nodes keep their session files under a private temporary folder
  (``RAY_TMPDIR`` while a node starts), so the cluster never becomes the target of another
  process's ``ray.init(address="auto")`` on the same machine; ``close()`` stops the nodes it
  started, by their processes, and removes that folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

#: Raylet children that are Ray's own agents, not workers that can run a trial.
_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::IDLE")


def live_glob(root: Path, pattern: str, tries: int = 20) -> list[Path]:
    """``root.glob(pattern)`` over folders a running Ray changes: pathlib raises
    FileNotFoundError when a folder it listed is gone (or ``session_latest`` is repointed)
    before it scans it, so the walk is retried; ``[]`` if it never completes."""
    for _ in range(tries):
        try:
            return list(root.glob(pattern))
        except FileNotFoundError:
            time.sleep(0.05)
    return []


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process readable in /proc."""
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:  # the process ended while we looked
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        ppid = int(stat.rpartition(")")[2].split()[1])
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def _title(pid: int) -> str:
    """The process title (Ray renames its workers ``ray::<Actor>.<method>``)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class LocalCluster:
    """Head plus worker nodes on 127.0.0.1 (see the module docstring).

    Args:
        workers: worker nodes started at once, named ``w1``, ``w2``, ...
        cpus: CPUs of each worker node.
        head_cpus: CPUs of the head (0: trials run on worker nodes only, as on a cluster whose
            head only runs the driver).
        fast_detection: declare a lost node dead within ~2 s (see the module docstring).
    """

    def __init__(
        self,
        workers: int = 2,
        cpus: float = 1,
        head_cpus: float = 0,
        fast_detection: bool = True,
    ) -> None:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        from ray.cluster_utils import Cluster

        self.cpus = cpus
        self._tmp = tempfile.mkdtemp(prefix="raynas-nodes-")
        self._nodes: dict[str, object] = {}
        self._raylets: dict[str, int] = {}
        self._pid_node: dict[int, str] = {}
        self._killed: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        system = (
            {"health_check_period_ms": 500, "health_check_failure_threshold": 3}
            if fast_detection
            else {}
        )
        try:
            with self._private_tmp():
                self._cluster = Cluster(
                    initialize_head=True,
                    connect=False,
                    head_node_args={
                        "num_cpus": head_cpus,
                        "include_dashboard": False,
                        **({"_system_config": system} if system else {}),
                    },
                )
            self._register("head", self._cluster.head_node)
            for _ in range(workers):
                self.add_worker()
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ nodes
    @contextlib.contextmanager
    def _private_tmp(self):
        old = os.environ.get("RAY_TMPDIR")
        os.environ["RAY_TMPDIR"] = self._tmp
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("RAY_TMPDIR", None)
            else:
                os.environ["RAY_TMPDIR"] = old

    def _register(self, name: str, node) -> None:
        import ray._private.ray_constants as rc

        self._nodes[name] = node
        self._raylets[name] = node.all_processes[rc.PROCESS_TYPE_RAYLET][0].process.pid

    @property
    def session_root(self) -> Path:
        """The folder of the nodes' Ray session files (``session_*``)."""
        return Path(self._tmp) / "ray"

    @property
    def address(self) -> str:
        """The GCS address (``127.0.0.1:port``) for ``raynas run --address``."""
        return self._cluster.address

    def add_worker(self) -> str:
        """Start one more worker node (``cpus`` CPUs) and return its name once it is up."""
        name = f"w{sum(1 for n in self._nodes if n != 'head') + 1}"
        with self._private_tmp():
            node = self._cluster.add_node(num_cpus=self.cpus)
        with self._lock:
            self._register(name, node)
        return name

    def ensure_workers(self, count: int) -> None:
        """Add worker nodes until ``count`` of them are alive (not killed)."""
        while len(self.workers()) < count:
            self.add_worker()

    def node_id(self, name: str) -> str:
        """Ray's node id (hex) of node ``name``."""
        return self._nodes[name].node_id

    def workers(self, alive: bool = True) -> list[str]:
        """Names of the worker nodes (only those not killed, by default)."""
        return [n for n in self._nodes if n != "head" and not (alive and n in self._killed)]

    # ------------------------------------------------------------------ where trials run
    def _watch(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(0.1)

    def poll(self) -> None:
        """Record the node of every process a live raylet has started (the thread's step)."""
        children = _children()
        with self._lock:
            for name, raylet in self._raylets.items():
                if name in self._killed:
                    continue
                for pid in children.get(raylet, []):
                    self._pid_node.setdefault(pid, name)

    def node_of(self, pid: int | None) -> str | None:
        """The node whose raylet started process ``pid`` (a result's ``pid``), if seen."""
        if pid is None:
            return None
        with self._lock:
            return self._pid_node.get(int(pid))

    def trial_hosts(self) -> list[str]:
        """Worker nodes that run a trial actor now (a raylet child other than Ray's agents
        and idle workers)."""
        children = _children()
        hosts = []
        for name in self.workers():
            for pid in children.get(self._raylets[name], []):
                title = _title(pid)
                if title.startswith("ray::") and not title.startswith(_AGENTS):
                    hosts.append(name)
                    break
        return hosts

    # ------------------------------------------------------------------ losing a node
    def kill(self, name: str, workers: bool = True) -> list[int]:
        """SIGKILL node ``name``: its raylet and (``workers``) every process it started.

        Returns:
            The pids killed.
        """
        if name == "head":
            raise ValueError("kill a worker node, not the head (it holds the GCS)")
        self.poll()  # the node's last processes are recorded before they go
        raylet = self._raylets[name]
        pids = list(_children().get(raylet, [])) if workers else []
        with self._lock:
            self._killed.add(name)
        for pid in [*pids, raylet]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return [*pids, raylet]

    def wait_dead(self, name: str, timeout_s: float = 60) -> float:
        """Block until the head reports node ``name`` dead; returns the seconds waited."""
        start = time.monotonic()
        node_id = self.node_id(name)
        while time.monotonic() - start < timeout_s:
            alive = {n["NodeID"] for n in self._cluster.global_state.node_table() if n["Alive"]}
            if node_id not in alive:
                return time.monotonic() - start
            time.sleep(0.1)
        raise TimeoutError(f"node {name} still alive {timeout_s} s after it was killed")

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        """Stop every node (killed ones are reaped), then remove the private folder.

        Unlike ``Cluster.shutdown`` this does not reset the Ray state of the calling process,
        so a Ray session it holds keeps working.
        """
        self._stop.set()
        if getattr(self, "_thread", None) is not None:
            self._thread.join(timeout=2)
        cluster = getattr(self, "_cluster", None)
        if cluster is not None:
            with self._private_tmp():
                for node in list(cluster.worker_nodes):
                    cluster.remove_node(node, allow_graceful=False)
                if cluster.head_node is not None:
                    cluster.remove_node(cluster.head_node, allow_graceful=False)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
