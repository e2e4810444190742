"""``raynas status``: one screen on an experiment, while it runs or after.

Read from the experiment folder (local or a URI), so it works from any terminal that sees the
storage, e.g. a second shell on a cluster's head: trials by state, the rate and what is left,
the best so far, the nodes the trials ran on, the scheduler's decisions, and how long ago the
last result and the last state snapshot were written (the driver snapshots every 2 s, so an old
snapshot of an unfinished experiment means the driver is gone: resume it). With a Ray address
it also lists the cluster's nodes as Ray sees them (alive or dead, CPUs and GPUs).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from raynas import beacon, results, storage

#: Without a driver beacon (experiments of older raynas): a snapshot older than this (s) while
#: trials are unfinished means the driver is not running.
STALE_AFTER_S = 60.0


@dataclass
class Status:
    """What ``raynas status`` shows (``collect``), printed by ``format_status``."""

    summary: results.Summary
    snapshot_age_s: float | None
    last_result_age_s: float | None
    now: float
    driver: str | None = None  # beacon.driver_state: running | stopped | gone | None
    cluster_nodes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> int:
        return self.summary.states.get("TERMINATED", 0) + self.summary.states.get("ERROR", 0)

    @property
    def state(self) -> str:
        """``finished``, ``running`` or ``not running`` (interrupted, driver gone)."""
        cfg = self.summary.config
        unfinished = sum(
            n for s, n in self.summary.states.items() if s not in ("TERMINATED", "ERROR")
        )
        total = results.expected_trials(cfg)
        if self.finished >= total and not unfinished and self.driver != "running":
            return "finished"
        if self.driver is not None:
            return "running" if self.driver == "running" else "not running"
        if self.snapshot_age_s is not None and self.snapshot_age_s <= STALE_AFTER_S:
            return "running"
        return "not running"


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else max(0.0, now - then)


def collect(path: str, address: str | None = None) -> Status:
    """Read the experiment at ``path`` (folder or URI); with ``address`` also Ray's nodes."""
    loc = storage.locate(path)
    summary = results.load(path)
    now = time.time()
    snapshot = None
    for info in loc.list():
        if info.base_name.startswith("experiment_state-") and info.mtime_ns:
            snapshot = max(snapshot or 0.0, info.mtime_ns / 1e9)
    stamps = pd.to_numeric(summary.trials.get("timestamp", pd.Series(dtype=float)), "coerce")
    last = float(stamps.max()) if stamps.notna().any() else None
    nodes = _cluster_nodes(address) if address else []
    driver = beacon.driver_state(beacon.read(loc), now)
    return Status(summary, _age(now, snapshot), _age(now, last), now, driver, nodes)


def _cluster_nodes(address: str) -> list[dict[str, Any]]:
    """Ray's view of the cluster's nodes (connects to ``address``; never starts a Ray)."""
    import ray

    from raynas.experiment import init_ray

    init_ray(address)
    try:
        return [
            {
                "address": n.get("NodeManagerAddress"),
                "node_id": n.get("NodeID", "")[:8],
                "alive": bool(n.get("Alive")),
                "cpu": n.get("Resources", {}).get("CPU", 0),
                "gpu": n.get("Resources", {}).get("GPU", 0),
            }
            for n in ray.nodes()
        ]
    finally:
        ray.shutdown()


def _seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if value < 90:
        return f"{value:.0f} s"
    if value < 5400:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _nodes_table(trials: pd.DataFrame, now: float) -> list[str]:
    """Trials per node (Tune's ``node_ip`` and ``hostname`` of each trial's last result)."""
    if trials.empty or "node_ip" not in trials:
        return ["nodes: (no trial has reported yet)"]
    df = trials.assign(
        node=trials["node_ip"].astype(str)
        + " ("
        + trials.get("hostname", pd.Series("?", index=trials.index)).astype(str)
        + ")"
    )
    df = df[trials["node_ip"].notna()]
    lines = ["nodes (from the trials' results):"]
    width = max(len(n) for n in df["node"])
    for node, group in df.groupby("node", sort=True):
        running = int((group["status"] == "RUNNING").sum())
        stamps = pd.to_numeric(group.get("timestamp"), "coerce")
        last = _age(now, float(stamps.max())) if stamps.notna().any() else None
        lines.append(
            f"  {node.ljust(width)}  {len(group):>4} trials  {running:>3} running  "
            f"last result {_seconds(last)} ago"
        )
    return lines


def format_status(status: Status) -> str:
    """The screen ``raynas status`` prints."""
    s = status.summary
    cfg = s.config
    states = s.states
    lines = [
        f"experiment: {cfg.name}   {status.state}   ({s.location})",
        f"searcher: {cfg.searcher.name}   scheduler: {cfg.scheduler.name}   "
        f"trainable: {cfg.trainable.name}   metric: {cfg.metric} ({cfg.mode})",
    ]
    order = ("TERMINATED", "RUNNING", "PENDING", "PAUSED", "ERROR")
    shown = [f"{k.lower()} {states[k]}" for k in order if states.get(k)]
    shown += [f"{k.lower()} {n}" for k, n in sorted(states.items()) if k not in order]
    total = results.expected_trials(cfg)
    lines.append(f"trials: {status.finished} of {total} finished   " + "   ".join(shown))
    if s.wall_s > 0 and status.finished:
        rate = status.finished / s.wall_s * 60
        left = total - status.finished
        eta = (
            f"   ~{_seconds(left / rate * 60)} left"
            if left > 0 and status.state == "running"
            else ""
        )
        lines.append(f"rate: {rate:.1f} trials/min over {_seconds(s.wall_s)}{eta}")
    lines.append(
        f"last result: {_seconds(status.last_result_age_s)} ago   "
        f"last state snapshot: {_seconds(status.snapshot_age_s)} ago"
    )
    if status.state == "not running":
        why = {"gone": " (it stopped without a word: killed?)", "stopped": ""}.get(
            status.driver or "", ""
        )
        lines.append(f"the driver is not running{why}; continue with: raynas resume {s.location}")
    ranked = s.ranked()
    if ranked.empty:
        lines.append(f"best: (no trial reported {cfg.metric} yet)")
    else:
        top = ranked.iloc[0]
        value = results._fmt(top[cfg.metric])
        lines.append(f"best: {cfg.metric} {value}  trial {top['trial_id']}  {top.get('arch', '')}")
    lines += _nodes_table(s.trials, status.now)
    if status.cluster_nodes:
        lines.append("cluster nodes (Ray):")
        for n in status.cluster_nodes:
            lines.append(
                f"  {n['address']}  {n['node_id']}  {'alive' if n['alive'] else 'DEAD '}  "
                f"CPU {n['cpu']:g}  GPU {n['gpu']:g}"
            )
    errors = results.format_errors(s, top=5)
    if errors:
        lines.append(errors)
    if s.path is not None:
        from raynas.decision_report import summarise_decisions

        decisions = summarise_decisions(s.path, top=5)
        if decisions:
            lines.append(decisions)
    return "\n".join(lines)
