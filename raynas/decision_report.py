"""The text ``raynas report`` and ``raynas status`` print about a scheduler decision log."""

from __future__ import annotations

import os
from typing import Any

from ray.tune.schedulers import TrialScheduler

from raynas.decision_log import read_decisions

STOP = TrialScheduler.STOP


def summarise_decisions(path: str | os.PathLike, top: int = 20) -> str:
    """Plain-text summary of a decision log, for ``raynas report``.

    Args:
        path: the experiment folder or its ``scheduler_decisions.jsonl``.
        top: how many early-stopped trials to list with their reason.

    Returns:
        A few lines: decisions and trials per scheduler, the early-stopped trials with the
        reason of each stop, and the decision time (median and max); "" when the folder has
        no decision log (e.g. a FIFO or ASHA experiment).
    """
    records = read_decisions(path)
    if not records:
        return ""
    latest: dict[tuple, dict[str, Any]] = {}
    events: dict[tuple, str] = {}
    for r in records:
        key = (r.get("scheduler"), r.get("trial_id"))
        if "event" in r:
            events[key] = str(r["event"])
        elif r.get("t") is not None and not r.get("repeat"):
            latest[(*key, r["t"])] = r
    lines = []
    for kind in sorted({k[0] for k in latest} | {k[0] for k in events}, key=str):
        mine = [r for k, r in latest.items() if k[0] == kind]
        trials = {r["trial_id"] for r in mine} | {k[1] for k in events if k[0] == kind}
        early: dict[str, dict[str, Any]] = {}
        finished, ended = set(), set()
        for r in sorted(mine, key=lambda r: r["t"]):
            if r.get("decision") == STOP and r.get("early"):
                early.setdefault(r["trial_id"], r)
            elif r.get("decision") == STOP and r.get("reached_max_t", True):
                finished.add(r["trial_id"])
            elif r.get("decision") == STOP:  # a final result before max_t
                ended.add(r["trial_id"])
        ended -= finished | set(early)
        errored = sum(1 for k, e in events.items() if k[0] == kind and e == "error")
        time_attr = next((r.get("time_attr") for r in mine), "t")
        lines.append(
            f"scheduler decisions ({kind}): {len(mine)} results of {len(trials)} trials; "
            f"{len(early)} stopped early, {len(finished)} reached max_t, "
            + (f"{len(ended)} ended by themselves before max_t, " if ended else "")
            + f"{errored} errored"
        )
        ms = sorted(float(r["ms"]) for r in mine if isinstance(r.get("ms"), int | float))
        checks = sorted(
            float(r["ms"])
            for r in mine
            if isinstance(r.get("ms"), int | float) and ("p_beat" in r or "rank" in r)
        )
        if ms:
            text = f"decision time per result: median {ms[len(ms) // 2]:.2f} ms"
            if checks:
                text += (
                    f"; of the {len(checks)} that fitted or ranked: median "
                    f"{checks[len(checks) // 2]:.1f} ms, max {checks[-1]:.1f} ms"
                )
            lines.append(text)
        if early:
            lines.append(f"stopped early (trial, {time_attr}, reason):")
            rows = sorted(early.values(), key=lambda r: (r["t"], str(r["trial_id"])))
            width = max(len(str(r["trial_id"])) for r in rows[:top])
            for r in rows[:top]:
                lines.append(f"  {str(r['trial_id']).ljust(width)}  {r['t']!s:>5}  {r['reason']}")
            if len(rows) > top:
                lines.append(f"  ... and {len(rows) - top} more")
    return "\n".join(lines)
