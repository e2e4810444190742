"""The scheduler decision log: ``<experiment dir>/scheduler_decisions.jsonl``.

raynas's schedulers (``schedulers.lce``, ``schedulers.tse``) append one JSON line per result:
the trial, ``t`` (the ``time_attr`` value), what the scheduler saw (``obs``), the decision, its
reason and the numbers behind it, and how long the decision took. This module holds the file's
name and how it is appended to, found (local or remote storage) and read back; the schedulers
and the report (``raynas.decision_report``) both use it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from raynas.atomic import json_default

log = logging.getLogger(__name__)

DECISIONS_FILE = "scheduler_decisions.jsonl"


def append_records(path: str, records: Iterable[Mapping[str, Any]]) -> None:
    """Append JSON lines to ``path`` (opened and closed per call: nothing to pickle)."""
    text = "".join(json.dumps(r, default=json_default) + "\n" for r in records)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def parse_lines(text: str, source: str = "") -> list[dict[str, Any]]:
    """JSON objects of a JSONL text; malformed lines (a torn last line) are skipped."""
    out = []
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(item, dict):
            out.append(item)
    if bad:
        log.warning("skipped %d malformed line(s) of %s", bad, source or "a JSONL file")
    return out


def read_fs(fs, path: str) -> str | None:
    """Text of ``path`` on the pyarrow filesystem ``fs``; None when it does not exist."""
    try:
        import pyarrow.fs as pafs

        if fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with fs.open_input_stream(path) as f:
            return f.readall().decode("utf-8", errors="replace")
    except Exception as e:  # unreachable storage: schedule on without the history
        log.warning("cannot read %s: %s", path, e)
        return None


def locate_log(trial) -> tuple[str | None, tuple[Any, str] | None]:
    """Where the decision log of ``trial``'s experiment lives.

    Returns:
        ``(append_path, (filesystem, read_path))``. With local storage both are
        ``<experiment dir>/scheduler_decisions.jsonl``. With remote storage (``s3://``...)
        lines are appended to Tune's driver staging folder, which Tune uploads to the
        experiment folder together with its own state, and an earlier log is read from the
        experiment folder. ``(None, None)`` for trials without storage (tests).
    """
    storage = getattr(trial, "storage", None)
    if storage is None:
        return None, None
    try:
        fs = storage.storage_filesystem
        remote = (fs, f"{storage.experiment_fs_path}/{DECISIONS_FILE}")
    except Exception:
        return None, None
    if fs.type_name == "local":
        return remote[1], remote
    try:
        return os.path.join(trial.local_experiment_path, DECISIONS_FILE), remote
    except Exception:
        return None, remote


def stored_results(trial) -> list[dict[str, Any]]:
    """The results a trial reported before (its ``result.json``); [] when there are none."""
    storage = getattr(trial, "storage", None)
    if storage is None:
        return []
    text = None
    try:
        text = read_fs(storage.storage_filesystem, f"{trial.path}/result.json")
    except Exception:  # trial folder not named yet
        pass
    if text is None:
        try:
            local = os.path.join(trial.local_path, "result.json")
            if os.path.isfile(local):
                text = Path(local).read_text(encoding="utf-8", errors="replace")
        except Exception:
            pass
    return parse_lines(text, f"result.json of trial {trial.trial_id}") if text else []


def read_decisions(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a decision log (``path`` is the file or the experiment folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / DECISIONS_FILE
    if not path.is_file():
        return []
    return parse_lines(path.read_text(encoding="utf-8", errors="replace"), str(path))
