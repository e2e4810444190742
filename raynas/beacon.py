"""The driver's beacon: ``<experiment>/.raynas-driver``, whether a driver runs the experiment.

``raynas run`` and ``raynas resume`` write it when they start, refresh it every ``period_s``
seconds while Tune steps (``DriverBeacon``, a Tune callback) and mark it stopped when they
return or are interrupted (``mark_stopped``). A driver killed with SIGKILL leaves a beacon that
stops being refreshed, so ``raynas status`` tells a running experiment from an abandoned one
by the beacon's age (``driver_state``), from any machine that sees the storage.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Any

from ray.tune import Callback

from raynas.storage import Location, locate

log = logging.getLogger(__name__)

# JSON inside, but no .json name: Tune copies every top-level *.json and *.pkl of the
# experiment into its staging folder on resume and back at each save (a stale beacon).
BEACON_FILE = ".raynas-driver"
#: Seconds between refreshes of the beacon while the driver runs.
PERIOD_S = 10.0


def _write(loc: Location, record: dict[str, Any]) -> None:
    try:
        loc.write_text(BEACON_FILE, json.dumps(record))
    except OSError as e:  # the beacon is a courtesy: never end an experiment over it
        log.warning("cannot write %s in %s: %s", BEACON_FILE, loc.shown, e)


def _record(
    state: str, started: float, first: float | None = None, before_s: float = 0.0
) -> dict[str, Any]:
    return {
        "state": state,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": started,
        "beat": time.time(),
        # across `raynas resume`s: when the first run started, how long the earlier drivers ran
        "first_started": started if first is None else first,
        "before_s": before_s,
    }


def times(beacon: dict[str, Any] | None) -> tuple[float, float, float] | None:
    """``(first start, active seconds, last beat)`` of an experiment from its beacon: when
    its first driver started, how long all its drivers ran (up to the last beat of the
    latest), and that last beat."""
    if not beacon:
        return None
    try:
        started, beat = float(beacon["started"]), float(beacon["beat"])
        first = float(beacon.get("first_started", started))
        return first, float(beacon.get("before_s", 0.0)) + max(beat - started, 0.0), beat
    except (KeyError, TypeError, ValueError):
        return None


class DriverBeacon(Callback):
    """Refreshes the beacon of the experiment at ``experiment`` (a path or URI)."""

    def __init__(self, experiment: str, period_s: float = PERIOD_S) -> None:
        self.experiment = experiment
        self.period_s = period_s
        self._started = time.time()
        self._first: float | None = None
        self._before_s = 0.0
        self._last = 0.0
        self._loc: Location | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_loc"] = None  # a filesystem client: resolved again where it is used
        return state

    def beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.period_s:
            return
        self._last = now
        if self._loc is None:
            self._loc = locate(self.experiment)
        _write(self._loc, _record("running", self._started, self._first, self._before_s))

    def setup(self, **info) -> None:
        self._started = time.time()
        self._loc = locate(self.experiment)
        earlier = times(read(self._loc))
        self._first, self._before_s = earlier[:2] if earlier else (None, 0.0)
        self.beat(force=True)

    def on_step_end(self, iteration, trials, **info) -> None:
        self.beat()


def mark_stopped(experiment: str) -> None:
    """Record that the driver of ``experiment`` (a path or URI) has stopped."""
    loc = locate(experiment)
    previous = read(loc) or {}
    record = _record(
        "stopped",
        previous.get("started", time.time()),
        previous.get("first_started"),
        previous.get("before_s", 0.0),
    )
    _write(loc, record)


def read(loc: Location) -> dict[str, Any] | None:
    """The beacon of the experiment at ``loc``; None when there is none or it is unreadable."""
    try:
        data = json.loads(loc.read_text(BEACON_FILE))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def driver_state(beacon: dict[str, Any] | None, now: float | None = None) -> str | None:
    """``running``, ``stopped`` or ``gone`` (killed: no refresh for 3 periods); None without a
    beacon. A beacon of this host whose process no longer exists is ``gone`` at once."""
    if not beacon:
        return None
    if beacon.get("state") == "stopped":
        return "stopped"
    now = time.time() if now is None else now
    if beacon.get("host") == socket.gethostname() and isinstance(beacon.get("pid"), int):
        try:
            os.kill(beacon["pid"], 0)
        except ProcessLookupError:
            return "gone"
        except PermissionError:
            pass  # another user's live process
    beat = beacon.get("beat")
    if not isinstance(beat, int | float) or now - beat > 3 * PERIOD_S:
        return "gone"
    return "running"
