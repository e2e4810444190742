"""Search-level TensorBoard logging and the ``raynas tensorboard`` server.

Per-trial scalars are written by Tune's own TensorBoardX logger into each trial folder.
``SearchProgressCallback`` adds the view of the search as a whole under ``<experiment>/search``:
the metric of every completed trial and the best so far, against the number of completed
trials, plus the best architecture as text. With a URI storage path the file is written into
Tune's driver staging folder, which Tune uploads to the experiment folder with its own state.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from typing import Any

from ray.tune import Callback

log = logging.getLogger(__name__)


def summary_writer(logdir: str):
    """An event-file writer for ``logdir`` whose ``flush()`` returns only once every event
    added before it is on disk.

    torch's ``SummaryWriter`` rather than tensorboardX's: tensorboardX queues events for a
    background thread and its ``flush()`` does not wait for that queue, so a trial stopped right
    after reporting (a scheduler's STOP, ``max_t``) lost its last epoch's images. torch's file
    names also carry the process id, so they cannot collide with the file Tune's own
    tensorboardX logger writes into the same trial folder in the same second.
    """
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(logdir)


class SearchProgressCallback(Callback):
    """Writes ``search/<metric>`` and ``search/best_<metric>`` per completed trial.

    Picklable: the writer is opened lazily and never pickled; the counters survive a resume
    through ``get_state``/``set_state``.
    """

    def __init__(self, experiment_dir: str | None, metric: str, mode: str) -> None:
        # None: the driver staging folder of the experiment, found from its trials
        self.logdir = None if experiment_dir is None else os.path.join(experiment_dir, "search")
        self.metric = metric
        self.mode = mode
        self.completed = 0
        self.best: float | None = None
        self.best_arch: str | None = None
        self._writer = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_writer"] = None
        return state

    def get_state(self) -> dict[str, Any]:
        return {"completed": self.completed, "best": self.best, "best_arch": self.best_arch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.completed = state.get("completed", 0)
        self.best = state.get("best")
        self.best_arch = state.get("best_arch")

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        result = trial.last_result or {}
        value = result.get(self.metric)
        if not isinstance(value, int | float) or math.isnan(value):
            log.warning("trial %s completed without a numeric %r", trial, self.metric)
            return
        self.completed += 1
        if self._better(value):
            self.best, self.best_arch = float(value), result.get("arch")
        writer = self._get_writer(trial)
        if writer is None:
            return
        writer.add_scalar(f"search/{self.metric}", value, self.completed)
        writer.add_scalar(f"search/best_{self.metric}", self.best, self.completed)
        if self.best_arch is not None:
            writer.add_text("search/best_arch", str(self.best_arch), self.completed)
        writer.flush()

    def _get_writer(self, trial):
        if self._writer is None:
            logdir = self.logdir
            if logdir is None:
                staging = getattr(trial.storage, "experiment_driver_staging_path", None)
                if staging is None:
                    return None
                logdir = os.path.join(staging, "search")
            self._writer = summary_writer(logdir)
        return self._writer

    def on_experiment_end(self, trials: list, **info) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def command(logdir: str, port: int = 6006, host: str = "127.0.0.1") -> list[str]:
    """The TensorBoard server command over ``logdir`` bound to ``host`` (loopback default)."""
    return [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        logdir,
        "--host",
        host,
        "--port",
        str(port),
    ]


def serve_mirrored(uri: str, port: int = 6006, host: str = "127.0.0.1", refresh_s: float = 30.0):
    """Serve TensorBoard over an experiment at a URI: a local mirror of its event files,
    refreshed every ``refresh_s`` seconds while TensorBoard runs; returns TensorBoard's exit
    code. Ctrl-C or SIGTERM stops both."""
    import signal
    import subprocess
    import time

    from raynas import storage

    loc = storage.locate(uri)
    local = storage.mirror(loc)
    print(
        f"TensorBoard at http://{host}:{port}/ over {loc.shown} (a local copy in {local}, "
        f"refreshed every {refresh_s:g} s; Ctrl-C to stop)",
        flush=True,
    )
    child = subprocess.Popen(command(str(local), port=port, host=host))

    def stop(signum, frame):
        child.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while child.poll() is None:
            deadline = time.monotonic() + refresh_s
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if child.poll() is None:
                try:
                    storage.mirror(loc, local)
                except Exception as e:  # storage away for a moment: serve what we have
                    log.warning("could not refresh the copy of %s: %s", loc.shown, e)
    except KeyboardInterrupt:
        child.terminate()
    finally:
        signal.signal(signal.SIGTERM, previous)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0 if child.returncode in (0, -signal.SIGTERM) else child.returncode
