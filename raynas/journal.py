"""The trial journal: an append-only, synced record of the trials a driver created and finished.

Tune saves its experiment state every few seconds; the journal records, between two saves,
every trial the driver created (before the trial starts training) and every trial that
finished (with its final result, flushed to the disk), each line written before the driver
goes on.
``raynas resume`` merges it into the last saved state (``raynas.recovery``), so a driver
killed at any moment loses no finished trial and forgets no created one.

The file is ``<experiment>/.raynas-record/journal.jsonl``, one JSON object per line::

    {"event": "created", "trial_id": "...", "time": 1.7e9, "trial": [trial_json, meta_json]}
    {"event": "finished", "trial_id": "...", "time": 1.7e9, "trial": [trial_json, meta_json]}
    {"event": "errored", "trial_id": "...", "time": 1.7e9, "trial": [trial_json, meta_json]}

``errored`` is a trial that failed for good (its retries, ``max_failures``, used up): Tune 2.60
can save such a trial as still RUNNING (when its actor was already gone), so the journal is
what tells it apart from one a crash interrupted.

``trial`` is Tune's own serialisation of the trial (``Trial.get_json_state()``: the trial's
JSON and its run metadata JSON, which holds ``last_result``), the form Tune's experiment state
keeps in ``trial_data``. A kill can cut the last line short; ``read`` skips such a line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORD_DIR = ".raynas-record"
JOURNAL_FILE = "journal.jsonl"
EVENTS = ("created", "finished", "errored")


def journal_path(exp_dir: str | Path) -> Path:
    """Where the journal of the experiment in ``exp_dir`` lives."""
    return Path(exp_dir) / RECORD_DIR / JOURNAL_FILE


class Journal:
    """Appends events to one journal file; each ``append`` is on disk when it returns.

    Picklable (Tune pickles callbacks): the file descriptor is reopened after unpickling.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_fd": None}

    def append(
        self, event: str, trial_id: str, trial: tuple[str, str] | list[str], sync: bool = True
    ) -> None:
        """Write one event line; with ``sync``, flush it to the disk (``fdatasync``) too.

        A written line survives a kill of the process (it is in the page cache); ``sync``
        makes it survive a crash of the machine as well.

        Raises:
            ValueError: an unknown event.
            OSError: the journal cannot be written (full disk, lost folder).
        """
        if event not in EVENTS:
            raise ValueError(f"unknown journal event {event!r}; expected one of {EVENTS}")
        line = json.dumps(
            {"event": event, "trial_id": trial_id, "time": time.time(), "trial": list(trial)}
        )
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        data = (line + "\n").encode()
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk mid-line: the line is cut, so say so
            raise OSError(f"journal {self.path}: wrote {written} of {len(data)} bytes")
        if sync:
            os.fdatasync(self._fd)  # the line and the file size: ~0.2 ms, fsync ~5 ms here

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read(path: str | Path) -> list[dict[str, Any]]:
    """The whole events of a journal, in order; [] when there is none.

    A line that does not decode (the last one, cut short by a kill) is skipped.
    """
    return list(_events(Path(path)))


def _events(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") in EVENTS and "trial" in event:
            yield event
